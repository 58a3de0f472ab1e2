import Foundation
import Host
import Testing
import TestKit

/// The TLS tests, one at a time: each counts the probe programs loaded in the kernel.
@Suite("TLS", .serialized,
       .enabled(if: getuid() == 0, "needs root for uprobes and network namespaces"),
       .enabled(if: ["nginx", "openssl", "bpftool"].allSatisfy { TestProcess.which($0) != nil }, "needs nginx, openssl and bpftool"))
struct TLSSuites {}

extension TLSSuites {
/// `TLSTracer` in this process: attachment, scope, reports, detaching.
@Suite("TLS tracer")
struct TLSTracerTests {
    /// Drains `tracer` until `done` holds for what was read, or 5 s pass.
    func collect(_ tracer: TLSTracer, until done: ([TLSChunk]) -> Bool) -> [TLSChunk] {
        var chunks: [TLSChunk] = []
        let deadline = Date().addingTimeInterval(5)
        while !done(chunks) && Date() < deadline {
            chunks += tracer.drain()
            usleep(20_000)
        }
        return chunks
    }

    @Test("plaintext of both directions, with the process, its socket's addresses and the true lengths")
    func plaintextChunks() throws {
        let pod = try TLSServerPod(tag: "tlsc", subnet: 73)
        defer { pod.remove() }
        let tracer = try TLSTracer(scope: .namespaces(named: [pod.namespace]))
        defer { tracer.close() }
        #expect(tracer.statistics.links >= 12, "4 tracepoints and 8 uprobes at least: \(tracer.statistics)")
        #expect(pod.curl(["--http1.1", "/hello.txt"]) == 200)
        let chunks = collect(tracer) { c in c.contains { $0.outgoing } && c.contains { !$0.outgoing } }
        let request = chunks.first { !$0.outgoing }
        let response = chunks.first { $0.outgoing }
        #expect(request.map { String(decoding: $0.data, as: UTF8.self).hasPrefix("GET /hello.txt HTTP/1.1\r\n") } == true)
        #expect(response.map { String(decoding: $0.data, as: UTF8.self).hasPrefix("HTTP/1.1 200 OK\r\n") } == true)
        for c in chunks {
            #expect(c.process == "nginx")
            #expect(c.data.count == c.callLength && c.offset == 0)
            #expect(c.fd >= 0)
            #expect(c.localIsServer == true)
        }
        #expect(tracer.statistics.probe.lost == 0)
    }

    @Test("a large write is split into chunks that keep the call's true length")
    func largeWrite() throws {
        let pod = try TLSServerPod(tag: "tlsl", subnet: 74)
        defer { pod.remove() }
        // 40000 bytes: more than one 16 KiB chunk.
        try Data(repeating: UInt8(ascii: "x"), count: 40_000).write(to: pod.directory.appendingPathComponent("www/big.txt"))
        let tracer = try TLSTracer(scope: .namespaces(named: [pod.namespace]))
        defer { tracer.close() }
        #expect(pod.curl(["--http1.1", "/big.txt"]) == 200)
        let bodyBytes = { (c: [TLSChunk]) in c.filter { $0.outgoing }.reduce(0) { $0 + $1.data.count } }
        let chunks = collect(tracer) { bodyBytes($0) >= 40_000 }
        let written = chunks.filter { $0.outgoing }
        #expect(bodyBytes(chunks) >= 40_000, "\(written.map { ($0.offset, $0.data.count, $0.callLength) })")
        // Every chunk of a call knows the call's length and its place in it.
        for c in written { #expect(c.offset + c.data.count <= c.callLength && c.offset % 16384 == 0) }
        #expect(written.contains { $0.offset > 0 } || written.allSatisfy { $0.callLength <= 16384 })
    }

    @Test("a process using a TLS library the probes do not cover is reported, not silently missed")
    func unsupportedLibraryReported() throws {
        let netns = "kstest-tlsu-\(getpid())"
        _ = try TestProcess.run("/usr/sbin/ip", ["netns", "add", netns])
        defer { _ = try? TestProcess.run("/usr/sbin/ip", ["netns", "del", netns]) }
        // A process in the namespace that maps NSS (Mozilla's TLS library) and no OpenSSL.
        let nss = Process()
        nss.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        nss.arguments = ["netns", "exec", netns, "/usr/bin/python3", "-S", "-c",
                         "import ctypes, time; ctypes.CDLL('libnss3.so'); print('ready', flush=True); time.sleep(30)"]
        let out = Pipe()
        nss.standardOutput = out
        try nss.run()
        defer {
            kill(nss.processIdentifier, SIGKILL)
            nss.waitUntilExit()
        }
        #expect(TestProcess.waitFor("ready", in: out).contains("ready"))
        let tracer = try TLSTracer(scope: .namespaces(named: [netns]))
        defer { tracer.close() }
        let deadline = Date().addingTimeInterval(5)
        while tracer.findings.isEmpty && Date() < deadline { usleep(50_000) }
        let finding = tracer.findings.first { $0.process.hasPrefix("python3") }
        #expect(finding?.status == "unsupported" && finding?.detail.contains("NSS") == true, "\(tracer.findings)")
    }

    @Test("closing detaches every probe: bpftool lists none of its programs")
    func closeDetaches() throws {
        let me = getpid()
        #expect(tlsPrograms(heldBy: me).isEmpty, "probes of an earlier test still loaded: \(tlsPrograms(heldBy: me))")
        let tracer = try TLSTracer(scope: .allProcesses)
        #expect(tlsPrograms(heldBy: me).count == 8, "\(tlsPrograms(heldBy: me))")
        tracer.close()
        #expect(tlsPrograms(heldBy: me).isEmpty, "still held: \(tlsPrograms(heldBy: me))")
        #expect(orphanedTLSPrograms().isEmpty, "left behind: \(orphanedTLSPrograms())")
    }
}
}
