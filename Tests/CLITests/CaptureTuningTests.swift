import Foundation
import Host
import Testing

/// The tuning flags every backend shares or has of its own: snap length,
/// promiscuous mode, the AF_PACKET ring's geometry; and what a process that
/// exits without closing its AF_XDP capture leaves behind (nothing).
@Suite("Capture tuning",
       .enabled(if: getuid() == 0, "needs root for network namespaces and capture"),
       .enabled(if: TestSupport.which("tcpdump") != nil && TestSupport.which("curl") != nil, "needs tcpdump and curl"))
struct CaptureTuningTests {
    /// (captured bytes, length on the wire) of every packet in a capture file, and the file's snap length.
    static func records(_ path: String) throws -> (snapLength: UInt32, packets: [([UInt8], Int)]) {
        let header = try Data(contentsOf: URL(fileURLWithPath: path)).prefix(24)
        let snap = header.count == 24 ? header.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 16, as: UInt32.self) } : 0
        let file = try LibpcapBackend(file: path)
        defer { file.close() }
        var out: [([UInt8], Int)] = []
        while case .packets = try file.read(maxPackets: 256, { out.append((Array($0.data), $0.wireLength)) }) {}
        return (snap, out)
    }

    @Test("--snaplen cuts packets as tcpdump -s does, on every backend", arguments: ["libpcap", "af_packet", "af_xdp"])
    func snapLength(backend: String) throws {
        let pod = try PodNetwork(tag: "sn", index: backend == "libpcap" ? 15 : backend == "af_packet" ? 16 : 17)
        defer { try? pod.remove() }
        #expect(pod.waitUntilServing())
        let reference = pod.root.appendingPathComponent("tcpdump.pcap").path
        let written = pod.root.appendingPathComponent("ours.pcap").path
        let tcpdump = TestSupport.unblockedProcess(
            TestSupport.which("tcpdump")!, ["-i", pod.hostSide, "-s", "96", "--immediate-mode", "-U", "-w", reference, "tcp port 8080"])
        let tcpdumpErr = Pipe()
        tcpdump.standardOutput = FileHandle.nullDevice
        tcpdump.standardError = tcpdumpErr
        try tcpdump.run()
        let (capture, err, said) = try XDPCaptureTests.startCapture(
            ["-i", pod.hostSide, "--capture", backend, "--snaplen", "96", "--filter", "tcp port 8080", "-w", written])
        #expect(said.contains("with \(backend)"), "\(said)")
        #expect(TestSupport.waitFor("listening on", in: tcpdumpErr).contains("listening on"))
        usleep(500_000)
        for i in 0..<5 { #expect(pod.get("/hello.txt?n=\(i)") == 200) }
        usleep(1_500_000)
        XDPCaptureTests.interruptAndWait(tcpdump)
        let stats = XDPCaptureTests.stop(capture, err, said: said)
        #expect(capture.terminationStatus == 0, "\(stats)")

        let ours = try Self.records(written)
        let theirs = try Self.records(reference)
        #expect(ours.snapLength == 96 && theirs.snapLength == 96)
        #expect(ours.packets.allSatisfy { $0.0.count <= 96 && $0.0.count <= $0.1 })
        // The responses carry the file's bytes: some packets were really cut.
        #expect(ours.packets.contains { $0.1 > 96 && $0.0.count == 96 })
        let key: (([UInt8], Int)) -> [UInt8] = { $0.0 + withUnsafeBytes(of: UInt32($0.1).bigEndian, Array.init) }
        let mine = ours.packets.map(key).sorted { $0.lexicographicallyPrecedes($1) }
        let reference96 = theirs.packets.map(key).sorted { $0.lexicographicallyPrecedes($1) }
        let same = mine == reference96
        #expect(same && mine.count >= 5 * 6, "\(backend): \(mine.count) cut packets vs tcpdump's \(reference96.count)")
    }

    /// The interface's promiscuity counter, from `ip -d -j link`.
    static func promiscuity(_ interface: String) throws -> Int {
        let r = try TestSupport.run("/usr/sbin/ip", ["-d", "-j", "link", "show", "dev", interface])
        let links = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]]
        return links?.first?["promiscuity"] as? Int ?? -1
    }

    @Test("--promisc holds the interface in promiscuous mode while capturing, and only then",
          arguments: ["libpcap", "af_packet"])
    func promiscuous(backend: String) throws {
        let pod = try PodNetwork(tag: "pm", index: backend == "libpcap" ? 18 : 19)
        defer { try? pod.remove() }
        #expect(try Self.promiscuity(pod.hostSide) == 0)
        let (plain, plainErr, plainSaid) = try XDPCaptureTests.startCapture(["-i", pod.hostSide, "--capture", backend, "-w", "/dev/null"])
        #expect(try Self.promiscuity(pod.hostSide) == 0, "promiscuous without --promisc")
        _ = XDPCaptureTests.stop(plain, plainErr, said: plainSaid)
        let (capture, err, said) = try XDPCaptureTests.startCapture(
            ["-i", pod.hostSide, "--capture", backend, "--promisc", "-w", "/dev/null"])
        #expect(said.contains("with \(backend)"), "\(said)")
        #expect(try Self.promiscuity(pod.hostSide) == 1)
        let out = XDPCaptureTests.stop(capture, err, said: said)
        #expect(capture.terminationStatus == 0, "\(out)")
        #expect(try Self.promiscuity(pod.hostSide) == 0, "still promiscuous after the capture ended")
    }

    @Test("--promisc with af_xdp, or on 'any' with af_packet, is refused with the reason")
    func promiscuousRefused() throws {
        let xdp = try TestSupport.run(TestSupport.kubeshark, ["capture", "-i", "lo", "--capture", "af_xdp", "--promisc"])
        #expect(xdp.status != 0)
        #expect(xdp.stderr.contains("af_xdp: --promisc is not supported"), "\(xdp.stderr)")
        let any = try TestSupport.run(TestSupport.kubeshark, ["capture", "-i", "any", "--promisc"])
        #expect(any.status != 0)
        #expect(any.stderr == "kubeshark: af_packet: promiscuous mode is not supported on 'any'; name the interfaces\n", "\(any.stderr)")
    }

    /// Bytes of the packet ring the process has mapped (its `socket:[...]` mapping).
    static func mappedRing(pid: Int32) throws -> Int {
        let maps = try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)
        var total = 0
        for line in maps.split(separator: "\n") where line.hasSuffix("]") && line.contains("socket:[") {
            let range = line.split(separator: " ")[0].split(separator: "-").compactMap { Int($0, radix: 16) }
            if range.count == 2 { total += range[1] - range[0] }
        }
        return total
    }

    @Test("the AF_PACKET ring has the geometry the flags ask for",
          arguments: [(["--block-size", "1Mi", "--block-count", "3"], 3 << 20),
                      (["--buffer-size", "8Mi", "--block-size", "2Mi"], 8 << 20),
                      ([], 32 << 20)])
    func ringGeometry(flags: [String], bytes: Int) throws {
        let (capture, err, said) = try XDPCaptureTests.startCapture(
            ["-i", "lo", "--capture", "af_packet", "--block-timeout", "10", "-w", "/dev/null"] + flags)
        #expect(said.contains("with af_packet"), "\(said)")
        #expect(try Self.mappedRing(pid: capture.processIdentifier) == bytes)
        _ = XDPCaptureTests.stop(capture, err, said: said)
        #expect(capture.terminationStatus == 0)
    }

    @Test("bad ring and snap values fail with one line naming the flag")
    func badValues() throws {
        let cases: [([String], String)] = [
            (["--block-size", "6Ki"], "af_packet: block size 6144 must be a multiple of the page size"),
            (["--block-size", "lots"], "--block-size: 'lots' is not a quantity"),
            (["--block-count", "1"], "--block-count must be between 2 and 65536"),
            (["--block-timeout", "0"], "--block-timeout must be between 1 and 60000 ms"),
            (["--snaplen", "10"], "--snaplen must be between 64 and 262144"),
            (["--buffer-size", "1Ki"], "--buffer-size: '1Ki' is not a quantity between 1Mi and 16Gi"),
        ]
        for (flags, message) in cases {
            let r = try TestSupport.run(TestSupport.kubeshark, ["capture", "-i", "lo", "--duration", "0.1"] + flags)
            #expect(r.status != 0, "\(flags)")
            #expect(r.stderr.contains(message), "\(flags): \(r.stderr)")
        }
    }

    @Test("a worker that cannot open its ring exits with the reason, and its AF_XDP mirror goes with it (the exit hook)")
    func exitWithoutClose() throws {
        let pod = try PodNetwork(tag: "ex", index: 20)
        defer { try? pod.remove() }
        // The backend is open when the ring fails: nothing closes it but the exit hook.
        let r = try TestSupport.run(TestSupport.kubeshark, ["worker", "-i", pod.hostSide, "--capture", "af_xdp",
                                                            "--data-dir", "/dev/null/ring", "--port", "0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("/dev/null/ring"), "\(r.stderr)")
        // "af_xdp: generic mode, mirror ksx<pid>m0 -> ksx<pid>p0"
        let mirror = r.stderr.split(separator: "\n").first { $0.contains(", mirror ksx") }?
            .split(separator: " ").first { $0.hasPrefix("ksx") }.map(String.init)
        #expect(mirror != nil, "the mirror was never made: \(r.stderr)")
        if let mirror {
            let links = try TestSupport.run("/usr/sbin/ip", ["-o", "link", "show"]).stdout
            #expect(!links.contains(mirror), "\(mirror) is left: \(links)")
        }
        for hook in ["ingress", "egress"] {
            let filters = try TestSupport.run("/usr/sbin/tc", ["filter", "show", "dev", pod.hostSide, hook]).stdout
            #expect(filters.isEmpty, "\(hook) filters left on \(pod.hostSide): \(filters)")
        }
        let qdiscs = try TestSupport.run("/usr/sbin/tc", ["qdisc", "show", "dev", pod.hostSide]).stdout
        #expect(!qdiscs.contains("clsact"), "\(qdiscs)")
    }
}
