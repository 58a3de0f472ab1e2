import Foundation
import TestKit
import Testing

@testable import Host

/// The master PCAP ring: bounds, pcap validity (checked with tcpdump), torn
/// records, readers, retention, faults.
@Suite("Packet ring")
struct RingTests {
    static let dltRaw: Int32 = 12
    static let t0: Int64 = 1_700_000_000_000_000_000

    /// A raw IPv4/UDP packet from 10.0.0.1:`port` to 10.0.0.2:53 with `size` bytes of payload.
    static func udpPacket(port: UInt16, size: Int, fill: UInt8 = 0x61) -> [UInt8] {
        let total = 28 + size
        var b: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
        b += [UInt8(port >> 8), UInt8(port & 0xff), 0, 53, UInt8((size + 8) >> 8), UInt8((size + 8) & 0xff), 0, 0]
        return b + [UInt8](repeating: fill, count: size)
    }

    static func temporaryDirectory(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "ks-ring-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.removeItem(atPath: path)
        return path
    }

    static func append(_ ring: PacketRing, _ bytes: [UInt8], at ns: Int64) {
        bytes.withUnsafeBytes { raw in
            ring.append(CapturedPacket(timestampNs: ns, data: raw, wireLength: raw.count, linkType: dltRaw))
        }
    }

    static func segmentFiles(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".pcap") }.sorted()
    }

    static func directoryBytes(_ dir: String) -> Int64 {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).reduce(0) { sum, name in
            let size = (try? FileManager.default.attributesOfItem(atPath: dir + "/" + name)[.size] as? Int64) ?? 0
            return sum + size
        }
    }

    /// Packets in a pcap file according to tcpdump.
    static func tcpdumpCount(_ path: String) throws -> Int {
        let r = try TestProcess.run("/usr/bin/tcpdump", ["-n", "-r", path])
        #expect(r.status == 0, "tcpdump could not read \(path): \(r.stderr)")
        return r.stdout.split(separator: "\n").count
    }

    static func readAll(_ catalogue: RingCatalogue, flow: FlowHash? = nil) throws -> [(Int64, [UInt8])] {
        let reader = RingReader(catalogue: catalogue, flow: flow)
        var out: [(Int64, [UInt8])] = []
        while try reader.read(maxPackets: 100, { out.append(($0.timestampNs, Array($0.data))) }) != .end {}
        return out
    }

    @Test("storage quantities are parsed like Kubernetes'")
    func quantities() {
        #expect(StorageQuantity("500Mi")?.bytes == 500 << 20)
        #expect(StorageQuantity("10Gi")?.bytes == 10 << 30)
        #expect(StorageQuantity("1G")?.bytes == 1_000_000_000)
        #expect(StorageQuantity("750k")?.bytes == 750_000)
        #expect(StorageQuantity("1.5Ki")?.bytes == 1536)
        #expect(StorageQuantity("4096")?.bytes == 4096)
        for bad in ["", "Mi", "-1Mi", "10 Mi", "1e3", "1.2.3Gi", "99999999999Pi", "5MB"] {
            #expect(StorageQuantity(bad) == nil, "\(bad)")
        }
        #expect(StorageQuantity(bytes: 500 << 20).description == "500Mi")
    }

    @Test("every packet lands in a pcap tcpdump reads, and the ring stays under its limit")
    func boundedAndReadable() throws {
        let dir = Self.temporaryDirectory("bounded")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = RingConfiguration(directory: dir, linkType: Self.dltRaw, storageLimit: 1 << 20)
        config.segmentBytes = 128 << 10
        let ring = try PacketRing(configuration: config)
        let count = 6000
        for i in 0..<count {
            Self.append(ring, Self.udpPacket(port: UInt16(1000 + i % 50), size: 300), at: Self.t0 + Int64(i) * 1000)
            if i % 500 == 0 {
                ring.sync()
                #expect(Self.directoryBytes(dir) <= config.storageLimit)
            }
        }
        ring.sync()
        let stats = ring.statistics
        #expect(stats.packetsWritten == UInt64(count))
        #expect(stats.droppedQueueFull == 0)
        #expect(stats.segmentsFlushed > 0, "6000 x 344 bytes must not fit 1 MiB")
        #expect(Self.directoryBytes(dir) <= config.storageLimit)
        #expect(stats.usageBytes <= config.storageLimit)
        // The live segment is readable while written, and every segment is a pcap.
        let segments = ring.segments()
        #expect(segments.last?.isLive == true)
        var onDisk = 0
        for name in Self.segmentFiles(dir) { onDisk += try Self.tcpdumpCount(dir + "/" + name) }
        let read = try Self.readAll(ring)
        #expect(read.count == onDisk)
        #expect(UInt64(onDisk) == segments.reduce(0) { $0 + $1.index.packets })
        // What is left is the newest packets, in order, ending with the last one.
        #expect(read.last?.0 == Self.t0 + Int64(count - 1) * 1000)
        #expect(zip(read, read.dropFirst()).allSatisfy { $0.0 < $1.0 })
        ring.close()
        // Closing writes the last index; reopening finds the same segments.
        let again = try PacketRing(configuration: config)
        #expect(again.segments().map(\.index.packets) == segments.map(\.index.packets))
        again.close()
    }

    @Test("a torn last record from a crash is cut at the next start, and the rest is kept")
    func tornRecord() throws {
        let dir = Self.temporaryDirectory("torn")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = RingConfiguration(directory: dir, linkType: Self.dltRaw, storageLimit: 4 << 20)
        let ring = try PacketRing(configuration: config)
        for i in 0..<100 { Self.append(ring, Self.udpPacket(port: 2000, size: 100), at: Self.t0 + Int64(i)) }
        ring.sync()
        let live = try #require(ring.segments().last)
        let path = ring.path(ofSegment: live.index.sequence)
        ring.close()
        // A crash between the index write and... simulate: no index, and half a record.
        try? FileManager.default.removeItem(atPath: dir + "/" + (path as NSString).lastPathComponent.replacingOccurrences(of: ".pcap", with: ".idx"))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data([0x10, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3]))
        handle.closeFile()
        let reopened = try PacketRing(configuration: config)
        #expect(reopened.statistics.tornBytesCut == 19)
        #expect(try Self.tcpdumpCount(path) == 100)
        #expect(try Self.readAll(reopened).count == 100)
        reopened.close()
    }

    @Test("a follower sees packets appended after it started; a flow filter picks one flow")
    func followAndFlow() throws {
        let dir = Self.temporaryDirectory("follow")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ring = try PacketRing(configuration: RingConfiguration(directory: dir, linkType: Self.dltRaw, storageLimit: 4 << 20))
        defer { ring.close() }
        for i in 0..<10 { Self.append(ring, Self.udpPacket(port: UInt16(3000 + i % 2), size: 10), at: Self.t0 + Int64(i)) }
        ring.sync()
        let follower = RingReader(catalogue: ring, follow: true)
        var seen = 0
        while case .packets(let n) = try follower.read(maxPackets: 100, { _ in }) { seen += n }
        #expect(seen == 10)
        for i in 10..<15 { Self.append(ring, Self.udpPacket(port: 3000, size: 10), at: Self.t0 + Int64(i)) }
        ring.sync()
        var later = 0
        for _ in 0..<20 where later < 5 {
            if case .packets(let n) = try follower.read(maxPackets: 100, { _ in }) { later += n }
        }
        #expect(later == 5)
        let flow = try #require(FlowHash(transport: "udp", source: "10.0.0.2", sourcePort: 53,
                                         destination: "10.0.0.1", destinationPort: 3001))
        #expect(try Self.readAll(ring, flow: flow).count == 5)
        #expect(try Self.readAll(ring, flow: flow).allSatisfy { $0.1[21] == 0xb9 })  // port 3001 = 0x0bb9
    }

    @Test("a disk that fills up drops and counts packets, and writing resumes when space returns",
          .enabled(if: getuid() == 0, "mounting a small tmpfs needs root"))
    func diskFull() throws {
        let dir = Self.temporaryDirectory("full")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer {
            _ = try? TestProcess.run("/bin/umount", [dir])
            try? FileManager.default.removeItem(atPath: dir)
        }
        let mount = try TestProcess.run("/bin/mount", ["-t", "tmpfs", "-o", "size=512k", "tmpfs", dir])
        try #require(mount.status == 0, "mount failed: \(mount.stderr)")
        // Someone else fills the disk; the ring's limit is far above it.
        let filler = dir + "/filler"
        try Data(count: 400 << 10).write(to: URL(fileURLWithPath: filler))
        var config = RingConfiguration(directory: dir + "/ring", linkType: Self.dltRaw, storageLimit: 64 << 20)
        config.segmentBytes = 8 << 20
        let ring = try PacketRing(configuration: config)
        defer { ring.close() }
        for i in 0..<2000 { Self.append(ring, Self.udpPacket(port: 4000, size: 200), at: Self.t0 + Int64(i)) }
        ring.sync()
        let full = ring.statistics
        #expect(full.droppedDiskError > 0)
        #expect(full.packetsWritten > 0)
        #expect(full.packetsWritten + full.droppedDiskError + full.droppedQueueFull == 2000, "nothing silently lost")
        // What was written is whole records: tcpdump reads all of it.
        let live = try #require(ring.segments().last)
        #expect(live.index.packets == full.packetsWritten)
        #expect(try Self.tcpdumpCount(ring.path(ofSegment: live.index.sequence)) == Int(full.packetsWritten))
        // Space comes back: writing resumes.
        try FileManager.default.removeItem(atPath: filler)
        for i in 0..<100 { Self.append(ring, Self.udpPacket(port: 4000, size: 200), at: Self.t0 + 10_000 + Int64(i)) }
        ring.sync()
        let after = ring.statistics
        #expect(after.packetsWritten == full.packetsWritten + 100)
        #expect(after.droppedDiskError == full.droppedDiskError)
        #expect(try Self.tcpdumpCount(ring.path(ofSegment: live.index.sequence)) == Int(after.packetsWritten))
    }

    @Test("a live segment deleted from under the ring is noticed and a new one started")
    func segmentDeletedUnderneath() throws {
        let dir = Self.temporaryDirectory("deleted")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ring = try PacketRing(configuration: RingConfiguration(directory: dir, linkType: Self.dltRaw, storageLimit: 4 << 20))
        defer { ring.close() }
        Self.append(ring, Self.udpPacket(port: 5000, size: 10), at: Self.t0)
        ring.sync()
        let first = try #require(ring.segments().last?.index.sequence)
        try FileManager.default.removeItem(atPath: ring.path(ofSegment: first))
        Thread.sleep(forTimeInterval: 1.1)  // the ring checks once a second
        Self.append(ring, Self.udpPacket(port: 5000, size: 10), at: Self.t0 + 1)
        ring.sync()
        #expect(ring.statistics.segmentsLost == 1)
        let live = try #require(ring.segments().last)
        #expect(live.index.sequence > first)
        #expect(try Self.tcpdumpCount(ring.path(ofSegment: live.index.sequence)) == 1)
    }

    @Test("a closed segment deleted from under the ring is skipped by readers and counted, the rest still read")
    func closedSegmentDeletedUnderneath() throws {
        let dir = Self.temporaryDirectory("closed-deleted")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = RingConfiguration(directory: dir, linkType: Self.dltRaw, storageLimit: 4 << 20)
        config.segmentBytes = 64 << 10
        let ring = try PacketRing(configuration: config)
        defer { ring.close() }
        for i in 0..<600 { Self.append(ring, Self.udpPacket(port: 7000, size: 300), at: Self.t0 + Int64(i)) }
        ring.sync()
        let segments = ring.segments()
        try #require(segments.count >= 3)
        let victim = segments[0].index
        try FileManager.default.removeItem(atPath: ring.path(ofSegment: victim.sequence))
        let reader = RingReader(catalogue: ring)
        var read = 0
        while try reader.read(maxPackets: 100, { _ in read += 1 }) != .end {}
        #expect(reader.segmentsMissed == 1)
        #expect(read == 600 - Int(victim.packets))
        // Flushing it later notices it was already gone.
        #expect(ring.flushOldest() == victim.sequence)
        #expect(ring.statistics.segmentsLost == 1)
    }

    @Test("a full queue drops and counts: appended = written + dropped")
    func queueFull() throws {
        let dir = Self.temporaryDirectory("queue")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = RingConfiguration(directory: dir, linkType: Self.dltRaw, storageLimit: 64 << 20)
        config.queueBytes = 4 << 10
        let ring = try PacketRing(configuration: config)
        let packet = Self.udpPacket(port: 6000, size: 1000)
        for i in 0..<20_000 { Self.append(ring, packet, at: Self.t0 + Int64(i)) }
        ring.sync()
        let s = ring.statistics
        #expect(s.packetsWritten + s.droppedQueueFull == 20_000)
        #expect(s.packetsWritten > 0)
        ring.close()
    }
}

/// Sessions over the ring: entries from packets captured before and after the
/// session opened, and retention of their flows across a forced flush.
@Suite("Ring sessions")
struct RingSessionTests {
    final class Collect: EntrySink, @unchecked Sendable {
        let lock = NSLock()
        var entries: [String] = []
        func emit(_ entry: EntryView) {
            lock.lock()
            entries.append(String(decoding: entry.json, as: UTF8.self))
            lock.unlock()
        }
        var count: Int { lock.lock(); defer { lock.unlock() }; return entries.count }
    }

    static func fixture(_ name: String) -> String {
        TestProcess.repoRoot.appendingPathComponent("Tests/Fixtures/captures/\(name)").path
    }

    /// Appends every packet of a capture file to the ring.
    static func feed(_ ring: PacketRing, from file: String) throws -> Int {
        let source = try LibpcapBackend(file: file)
        var n = 0
        CaptureRunner.drain(source, into: { ring.append($0); n += 1 })
        ring.sync()
        return n
    }

    static func waitUntil(_ condition: () -> Bool) {
        for _ in 0..<200 where !condition() { Thread.sleep(forTimeInterval: 0.05) }
    }

    @Test("a session gets entries from before and after it opened, and keeps its flows through a flush")
    func retentionAcrossFlush() throws {
        let dir = RingTests.temporaryDirectory("session")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = Self.fixture("http1-pipelined.pcap")
        let link = try LibpcapBackend(file: file).linkType
        let ring = try PacketRing(configuration: RingConfiguration(directory: dir + "/ring", linkType: link, storageLimit: 4 << 20))
        defer { ring.close() }
        let packets = try Self.feed(ring, from: file)
        let sink = Collect()
        let plugin = try DissectionSessionTests.httpPlugin()
        let query = try KFLQuery.compile("http", macros: KFLMacros.from(plugins: [plugin]))
        let session = try RingSession(id: "s1", ring: ring, plugins: [plugin], query: query,
                                      storeDirectory: dir + "/sessions/s1", sink: sink, nowMs: { 0 })
        session.start()
        Self.waitUntil { session.current.caughtUp && session.current.packetsRead == UInt64(packets) }
        let before = sink.count
        #expect(before > 0, "\(session.current)")
        // Traffic after the session opened: the same capture again, later.
        let offline = Collect()
        let reference = DissectionSession(plugins: [plugin], sink: offline)
        CaptureRunner.drain(try LibpcapBackend(file: file), into: reference)
        reference.finish()
        _ = try Self.feed(ring, from: file)
        // A forced flush of everything written so far: the session must keep its flows.
        #expect(ring.flushOldest() != nil)
        Self.waitUntil { session.retention.retainedPackets > 0 }
        let retainedFlows = session.retention.flows
        #expect(!retainedFlows.isEmpty)
        #expect(session.retention.retainedPackets == UInt64(2 * packets),
                "every packet of the pipelined capture belongs to its one HTTP flow")
        // The stream's pcap is whole again from the retained store.
        let flow = try #require(retainedFlows.first)
        let out = dir + "/stream.pcap"
        let written = try RingExport.write(to: out, catalogue: ring, flow: flow, retained: session.retention)
        #expect(written == 2 * packets)
        #expect(try RingTests.tcpdumpCount(out) == 2 * packets)
        session.close()
        // Only the first copy's exchanges are complete before the second copy's
        // packets (same ports) arrive; count at least the offline count.
        #expect(sink.count >= offline.entries.count)
        #expect(!FileManager.default.fileExists(atPath: dir + "/sessions/s1/retained.pcap"), "closing deletes what was kept")
    }

    @Test("sessions side by side: their own queries and start times, a query that never matches retains nothing")
    func sideBySide() throws {
        let dir = RingTests.temporaryDirectory("sessions")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = Self.fixture("http1-get-query.pcap")
        let second = Self.fixture("http1-post-json.pcap")
        let link = try LibpcapBackend(file: first).linkType
        let ring = try PacketRing(configuration: RingConfiguration(directory: dir + "/ring", linkType: link, storageLimit: 4 << 20))
        defer { ring.close() }
        _ = try Self.feed(ring, from: first)
        _ = try Self.feed(ring, from: second)
        let plugin = try DissectionSessionTests.httpPlugin()
        let macros = KFLMacros.from(plugins: [plugin])
        // Where the second file's packets start in capture time.
        var secondStart: Int64 = 0
        CaptureRunner.drain(try LibpcapBackend(file: second), into: { p in if secondStart == 0 { secondStart = p.timestampNs } })
        var firstStart: Int64 = 0
        CaptureRunner.drain(try LibpcapBackend(file: first), into: { p in if firstStart == 0 { firstStart = p.timestampNs } })
        try #require(secondStart > firstStart, "the fixtures were recorded in this order")

        let all = Collect(), posts = Collect(), never = Collect(), late = Collect()
        let sessions = try [
            (all, "http", nil as Int64?), (posts, #"request.method == "POST""#, nil), (never, "response.status == 999", nil),
            (late, "http", secondStart),
        ].enumerated().map { i, spec in
            try RingSession(id: "s\(i)", ring: ring, plugins: [plugin], query: try KFLQuery.compile(spec.1, macros: macros),
                            fromNs: spec.2, storeDirectory: dir + "/sessions/s\(i)", sink: spec.0, nowMs: { 0 })
        }
        sessions.forEach { $0.start() }
        Self.waitUntil { sessions.allSatisfy { $0.current.caughtUp } }
        sessions.forEach { $0.close() }
        let offlineFirst = Collect(), offlineSecond = Collect()
        for (file, sink) in [(first, offlineFirst), (second, offlineSecond)] {
            let s = DissectionSession(plugins: [plugin], sink: sink)
            CaptureRunner.drain(try LibpcapBackend(file: file), into: s)
            s.finish()
        }
        #expect(all.count == offlineFirst.count + offlineSecond.count)
        #expect(late.count == offlineSecond.count, "from a time: only the later file's exchanges")
        #expect(posts.count > 0 && posts.entries.allSatisfy { $0.contains(#""method":"POST""#) })
        #expect(never.count == 0)
        #expect(sessions[2].retention.flows.isEmpty, "a query that matches nothing retains nothing")
    }
}

