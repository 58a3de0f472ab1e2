import Foundation
import Host
import Testing

/// `kubeshark dissect -i IFACE --capture BACKEND`: live capture on a veth pair
/// whose far end sits in a network namespace running a real HTTP server
/// (Python's http.server), with curl as the client, and tcpdump recording the
/// same interface at the same time as the reference.
@Suite("Live capture", .serialized,
       .enabled(if: getuid() == 0, "needs root for network namespaces and capture"),
       .enabled(if: TestSupport.which("ip") != nil && TestSupport.which("curl") != nil, "needs iproute2 and curl"))
struct LiveCaptureTests {
    @Test("entries from traffic seen live equal tcpdump's view, printed when the capture is stopped",
          arguments: ["libpcap", "af_packet"])
    func liveHTTP(backend: String) throws {
        let pod = try PodNetwork(tag: "lv", index: backend == "libpcap" ? 10 : 11)
        defer { try? pod.remove() }
        let root = pod.root
        let hostSide = pod.hostSide

        let capture = Process()
        capture.executableURL = URL(fileURLWithPath: TestSupport.kubeshark)
        capture.arguments = ["dissect", "--live", "-i", hostSide, "--capture", backend, "--bpf", "tcp port 8080",
                             "--output", "json"]
        let out = Pipe()
        let captureErr = Pipe()
        capture.standardOutput = out
        capture.standardError = captureErr
        try capture.run()
        let reference = root.appendingPathComponent("tcpdump.pcap").path
        let tcpdump = TestSupport.unblockedProcess(
            TestSupport.which("tcpdump") ?? "/usr/bin/tcpdump", ["-i", hostSide, "--immediate-mode", "-U", "-w", reference, "tcp port 8080"])
        let tcpdumpErr = Pipe()
        tcpdump.standardOutput = FileHandle.nullDevice
        tcpdump.standardError = tcpdumpErr
        try tcpdump.run()
        let written = root.appendingPathComponent("ours.pcap").path
        let recorder = Process()
        recorder.executableURL = URL(fileURLWithPath: TestSupport.kubeshark)
        recorder.arguments = ["capture", "-i", hostSide, "--capture", backend, "--filter", "tcp port 8080",
                              "-w", written]
        let recorderErr = Pipe()
        recorder.standardOutput = FileHandle.nullDevice
        recorder.standardError = recorderErr
        try recorder.run()
        // Every capturer says when it is capturing; only then does traffic start.
        let ready = [TestSupport.waitFor("capturing on", in: captureErr), TestSupport.waitFor("listening on", in: tcpdumpErr),
                     TestSupport.waitFor("capturing on", in: recorderErr)]
        #expect(ready[0].contains("capturing on") && ready[1].contains("listening on") && ready[2].contains("capturing on"),
                "capturers not ready: \(ready)")
        usleep(500_000)  // "listening" is printed a moment before the filter is in place

        // Wait for the server, then make requests.
        #expect(pod.waitUntilServing(), "the HTTP server in the namespace never answered")
        #expect(pod.get("/missing") == 404)
        for i in 0..<5 { #expect(pod.get("/hello.txt?n=\(i)") == 200) }
        usleep(1_000_000)
        tcpdump.interrupt()
        capture.interrupt()
        recorder.interrupt()
        let recorderPid = recorder.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 15) { kill(recorderPid, SIGKILL) }
        let tcpdumpPid = tcpdump.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 15) { kill(tcpdumpPid, SIGKILL) }
        tcpdump.waitUntilExit()
        // A capture that ignores the interrupt fails the test instead of hanging it.
        let pid = capture.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 15) { kill(pid, SIGKILL) }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        capture.waitUntilExit()
        #expect(capture.terminationStatus == 0)
        let entries = String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let ok = entries.filter { $0["summary"] as? String == "/hello.txt" && $0["status"] as? Int == 200 }
        let missing = entries.filter { $0["summary"] as? String == "/missing" && $0["status"] as? Int == 404 }
        #expect(!ok.isEmpty, "entries: \(entries.map { "\($0["method"] ?? "-") \($0["summary"] ?? "-") \($0["status"] ?? "-")" })")
        #expect(missing.count == 1)
        #expect((ok.first?["dst"] as? [String: Any])?["ip"] as? String == pod.podAddress)
        // The same traffic, recorded by tcpdump and dissected offline, gives the same exchanges.
        let (offline, _) = try TestSupport.dissect([reference])
        let live = exchanges(entries).map(\.description).sorted()
        let recorded = exchanges(offline).map(\.description).sorted()
        #expect(live == recorded, "\(backend) live vs tcpdump: \(live) vs \(recorded)")
        #expect(live.filter { $0.contains("/hello.txt?n=") }.count == 5)

        // `kubeshark capture -w` wrote the very packets tcpdump wrote, byte for byte.
        let stats = ready[2] + String(decoding: recorderErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        recorder.waitUntilExit()
        #expect(recorder.terminationStatus == 0, "\(stats)")
        #expect(stats.contains("0 dropped by kernel"), "\(stats)")
        let ours = try Self.packets(written)
        let theirs = try Self.packets(reference)
        let tcpdumpSaid = ready[1] + String(decoding: tcpdumpErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(ours.count == theirs.count && !ours.isEmpty,
                "\(backend): \(ours.count) packets vs tcpdump's \(theirs.count); tcpdump said: \(tcpdumpSaid)")
        // The same packets, as multisets: with two CPUs, a packet sent and one received at
        // the same moment can reach two packet sockets in either order.
        let sortedOurs = ours.sorted { $0.lexicographicallyPrecedes($1) }
        let sortedTheirs = theirs.sorted { $0.lexicographicallyPrecedes($1) }
        let identical = sortedOurs == sortedTheirs  // not inside #expect: it would print every packet
        #expect(identical, "\(backend): packet bytes differ from tcpdump's")
    }

    @Test("--capture auto skips af_xdp where it cannot work (lo's MTU, 'any') and says so, then takes af_packet")
    func autoBackend() throws {
        let lo = try TestSupport.run(TestSupport.kubeshark, ["capture", "-i", "lo", "--capture", "auto", "--duration", "0.3"])
        #expect(lo.status == 0)
        #expect(lo.stderr.contains("capturing on lo with af_packet"), "\(lo.stderr)")
        let any = try TestSupport.run(TestSupport.kubeshark, ["capture", "-i", "any", "--capture", "auto", "--duration", "0.3"])
        #expect(any.status == 0)
        #expect(any.stderr.contains("auto: af_xdp unavailable") && any.stderr.contains("capturing on any with af_packet"), "\(any.stderr)")
        let missing = try TestSupport.run(TestSupport.kubeshark, ["capture", "-i", "nosuch0", "--capture", "auto"])
        #expect(missing.status != 0)
        #expect(missing.stderr == "kubeshark: af_xdp: no interface named nosuch0\n", "\(missing.stderr)")
    }

    /// Every packet's bytes in a capture file, in order.
    static func packets(_ path: String) throws -> [[UInt8]] {
        let file = try LibpcapBackend(file: path)
        defer { file.close() }
        var all: [[UInt8]] = []
        while case .packets = try file.read(maxPackets: 256, { all.append(Array($0.data)) }) {}
        return all
    }
}
