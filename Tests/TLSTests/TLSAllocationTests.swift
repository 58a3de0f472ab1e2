import CTLSProbe
import Foundation
@testable import Host
import Testing
import TestKit

/// The TLS event path (ring buffer event → chunk → the worker's chunk log → a session's
/// read) allocates nothing per event in the steady state. Counted the way performance.md
/// counts the host's allocations: a uprobe on libc's `malloc`, here scoped to this thread
/// with `perf stat -t`.
extension TLSSuites {
@Suite("TLS event path allocations", .enabled(if: TestProcess.which("perf") != nil, "needs perf"))
struct TLSAllocationTests {
    /// A ring buffer event as the BPF program writes it: `payload` bytes of plaintext from nginx.
    static func event(payload: Int) -> [UInt8] {
        let header = ks_tls_event_header_size()
        var bytes = [UInt8](repeating: UInt8(ascii: "x"), count: header + payload)
        bytes.withUnsafeMutableBytes { raw in
            let e = raw.baseAddress!.assumingMemoryBound(to: ks_tls_event.self)
            e.pointee.timestamp_ns = 1_000_000
            e.pointee.ssl = 0x5555_0000
            e.pointee.pid = 4242
            e.pointee.tid = 4242
            e.pointee.length = UInt32(payload)
            e.pointee.offset = 0
            e.pointee.captured = UInt32(payload)
            e.pointee.fd = 7
            e.pointee.netns = 4_026_532_000
            e.pointee.direction = UInt8(KS_TLS_DIR_READ)
            e.pointee.family = 2
            e.pointee.local_port = 8443
            e.pointee.remote_port = 41234
            withUnsafeMutableBytes(of: &e.pointee.local_addr) { $0.copyBytes(from: [10, 0, 0, 2]) }
            withUnsafeMutableBytes(of: &e.pointee.remote_addr) { $0.copyBytes(from: [10, 0, 0, 1]) }
            withUnsafeMutableBytes(of: &e.pointee.comm) { $0.copyBytes(from: Array("nginx".utf8) + [0]) }
        }
        return bytes
    }

    /// The TID of the calling thread.
    static func threadID() -> Int32? {
        guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self") else { return nil }
        return link.split(separator: "/").last.flatMap { Int32($0) }
    }

    /// The libc this process maps.
    static func libc() -> String? {
        // Read to the end: /proc files report no size.
        let maps = FileHandle(forReadingAtPath: "/proc/self/maps").map { String(decoding: $0.readDataToEndOfFile(), as: UTF8.self) } ?? ""
        return maps.split(separator: "\n").lazy.compactMap { line in
            line.split(separator: " ", omittingEmptySubsequences: true).last.map(String.init)
        }.first { $0.hasSuffix("/libc.so.6") }
    }

    /// Calls of libc's `malloc` made by this thread while `body` runs (plus a few of the
    /// counting itself), through a uprobe of our own and `perf stat -t`.
    func mallocs(_ body: () -> Void) throws -> Int {
        let libc = try #require(Self.libc())
        let tid = try #require(Self.threadID())
        let name = "ksmalloc\(getpid())"
        let added = try TestProcess.run("/usr/bin/perf", ["probe", "-q", "-x", libc, "-a", "\(name)=malloc"])
        try #require(added.status == 0, "perf probe: \(added.stderr)")
        defer { _ = try? TestProcess.run("/usr/bin/perf", ["probe", "-q", "-d", "probe_libc:\(name)"]) }
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("ks-malloc-\(getpid()).csv").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        // SIGINT ends perf stat: started with it unblocked (the test runner blocks it).
        let perf = TestProcess.unblocked("/usr/bin/perf", [
            "stat", "-x", ",", "-I", "50", "-e", "probe_libc:\(name)", "-t", "\(tid)", "-o", output])
        perf.standardOutput = FileHandle.nullDevice
        perf.standardError = FileHandle.nullDevice
        try perf.run()
        // Counting has started once the first interval is written.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, !((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains("probe_libc") {
            usleep(20_000)
        }
        body()
        perf.interrupt()
        let pid = perf.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 10) { kill(pid, SIGKILL) }
        perf.waitUntilExit()
        let text = try String(contentsOfFile: output, encoding: .utf8)
        // Interval lines: time,count,unit,event,...
        return text.split(separator: "\n").reduce(0) { sum, line in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count > 3, fields[3].contains("probe_libc") else { return sum }
            return sum + (Int(fields[1]) ?? 0)
        }
    }

    @Test("in the steady state, events become chunks, go through the log and are read back without a malloc each")
    func steadyStateAllocatesNothingPerEvent() throws {
        let event = Self.event(payload: 1000)
        let pool = TLSPayloadPool.shared
        let receiver = TLSProbe.Receiver(clockOffsetNs: 0, pool: pool)
        // Room for about a thousand 1 KiB buffers: the log evicts (and recycles) all along.
        let log = TLSChunkLog(limitBytes: 1 << 20)
        var polled: [TLSChunk] = []
        var read: [TLSChunk] = []
        var cursor: UInt64 = 0
        var bytesRead = 0
        /// `events` events through the path, in polls of 64, as the tracer and a session do.
        func run(_ events: Int) {
            event.withUnsafeBytes { raw in
                let e = raw.baseAddress!.assumingMemoryBound(to: ks_tls_event.self)
                for i in 0..<events {
                    receiver.receive(e, size: raw.count)
                    guard i % 64 == 63 else { continue }
                    receiver.take(into: &polled)
                    log.append(taking: &polled)
                    log.read(from: &cursor, into: &read)
                    for i in read.indices { bytesRead += read[i].withUnsafeBytes { $0.count } }
                }
            }
        }
        run(20_480) // warm-up (320 polls): the pool, the log and the arrays reach their sizes
        let made = pool.buffersMade
        let events = 50_000
        let control = 50_000
        let counted = try mallocs {
            // A known number of mallocs first, so a broken count cannot pass as zero.
            for _ in 0..<control { free(malloc(32)) }
            run(events)
        }
        #expect(counted >= control, "the malloc uprobe did not count: \(counted)")
        // Before pooling each event made at least one (its data Array): 50,000 more.
        #expect(counted - control < events / 100, "\(counted - control) mallocs for \(events) events")
        #expect(pool.buffersMade == made, "buffers made in the steady state: \(pool.buffersMade - made)")
        // All but the events after the last poll of 64.
        #expect(bytesRead == (20_480 + events - events % 64) * 1000)
        #expect(log.evicted > 0)
    }
}
}
