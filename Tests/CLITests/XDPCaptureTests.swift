import Foundation
import Host
import Testing

/// A network namespace joined to the host by a veth pair, with Python's
/// http.server listening in the namespace: the "pod" the capture tests watch.
final class PodNetwork {
    let namespace: String
    let hostSide: String
    let nsSide: String
    let hostAddress: String
    let podAddress: String
    let root: URL
    private var server: Process?

    /// `index` keeps several networks of one test apart (names and a /24 each).
    init(tag: String, index: Int) throws {
        let id = getpid() % 100000
        namespace = "kstest-\(tag)\(index)-\(getpid())"
        hostSide = "kt\(tag)\(id)\(index)a"
        nsSide = "kt\(tag)\(id)\(index)b"
        hostAddress = "10.234.\(40 + index).1"
        podAddress = "10.234.\(40 + index).2"
        root = FileManager.default.temporaryDirectory.appendingPathComponent("ks-\(tag)\(index)-\(getpid())")
        try? remove()
        try sh("ip netns add \(namespace)")
        try sh("ip link add \(hostSide) type veth peer name \(nsSide)")
        try sh("ip link set \(nsSide) netns \(namespace)")
        try sh("ip addr add \(hostAddress)/24 dev \(hostSide) && ip link set \(hostSide) up")
        try sh("ip netns exec \(namespace) ip addr add \(podAddress)/24 dev \(nsSide)")
        try sh("ip netns exec \(namespace) ip link set \(nsSide) up && ip netns exec \(namespace) ip link set lo up")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try Data("hello from the pod\n".utf8).write(to: root.appendingPathComponent("hello.txt"))
        let s = TestSupport.unblockedProcess(
            "/usr/sbin/ip", ["netns", "exec", namespace, TestSupport.which("python3") ?? "python3", "-m", "http.server", "8080",
                             "--bind", podAddress, "--directory", root.path])
        s.standardOutput = FileHandle.nullDevice
        s.standardError = FileHandle.nullDevice
        try s.run()
        server = s
    }

    /// GET /path from the host; the HTTP status, or 0.
    func get(_ path: String) -> Int {
        let r = try? TestSupport.run(TestSupport.which("curl")!, ["-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}",
                                                              "http://\(podAddress):8080\(path)"])
        return Int(r?.stdout ?? "") ?? 0
    }

    /// Waits for the server to answer.
    func waitUntilServing() -> Bool {
        for _ in 0..<50 {
            if get("/hello.txt") == 200 { return true }
            usleep(100_000)
        }
        return false
    }

    func remove() throws {
        if let server {
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
            self.server = nil
        }
        _ = try TestSupport.run("/bin/sh", ["-c", "ip netns pids \(namespace) 2>/dev/null | xargs -r kill -9; "
            + "ip netns del \(namespace) 2>/dev/null; ip link del \(hostSide) 2>/dev/null; true"])
        try? FileManager.default.removeItem(at: root)
    }

    deinit { try? remove() }
}

func sh(_ command: String) throws {
    let r = try TestSupport.run("/bin/sh", ["-c", command])
    if r.status != 0 { throw ShellFailure(message: "\(command): \(r.stderr)") }
}

struct ShellFailure: Error { var message: String }

/// What is missing for AF_XDP tests on this machine, or nil.
private let xdpMissing: String? = {
    if getuid() != 0 { return "needs root for network namespaces, tc and XDP" }
    for tool in ["ip", "tc", "curl", "tcpdump", "python3"] where TestSupport.which(tool) == nil {
        return "needs \(tool)"
    }
    if !FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/bpf/xsk_def_xdp_prog.o")
        && ProcessInfo.processInfo.environment["LIBXDP_OBJECT_PATH"] == nil {
        return "needs libxdp's BPF objects (package libxdp1)"
    }
    let fd = socket(44 /* AF_XDP */, Int32(SOCK_RAW.rawValue), 0)
    if fd < 0 { return "needs a kernel with AF_XDP sockets" }
    close(fd)
    return nil
}()

/// AF_XDP capture on a veth whose far end is a "pod" namespace: it sees what
/// tcpdump sees, leaves the pod's traffic alone, and leaves nothing behind.
@Suite("AF_XDP capture", .serialized, .enabled(if: xdpMissing == nil, "\(xdpMissing ?? "")"))
struct XDPCaptureTests {
    /// Starts `kubeshark capture ARGS` with SIGINT/SIGTERM deliverable and waits until it captures.
    static func startCapture(_ arguments: [String], environment: [String: String] = [:]) throws -> (Process, Pipe, String) {
        let p = TestSupport.unblockedProcess(TestSupport.kubeshark, ["capture"] + arguments)
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        let said = TestSupport.waitFor("capturing on", in: err)
        return (p, err, said)
    }

    /// SIGINT, then waits; SIGKILL after 15 s if the process ignores it (tcpdump).
    static func interruptAndWait(_ p: Process) {
        p.interrupt()
        let pid = p.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 15) { kill(pid, SIGKILL) }
        p.waitUntilExit()
    }

    static func stop(_ p: Process, _ err: Pipe, said: String, signal: Int32 = SIGINT) -> String {
        kill(p.processIdentifier, signal)
        let pid = p.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 15) { kill(pid, SIGKILL) }
        let rest = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return said + rest
    }

    /// Everything a capture with this pid may have left: mirror links, tc filters, state files.
    static func leftovers(pid: Int32, targets: [String], stateDirectory: String = "/run/kubeshark") throws -> [String] {
        var found: [String] = []
        let links = try TestSupport.run("/usr/sbin/ip", ["-o", "link", "show"]).stdout
        for line in links.split(separator: "\n") where line.contains("ksx\(pid)") { found.append(String(line)) }
        for target in targets {
            for hook in ["ingress", "egress"] {
                let f = try TestSupport.run("/usr/sbin/tc", ["filter", "show", "dev", target, hook]).stdout
                if f.contains("ksx") { found.append("\(target) \(hook): \(f)") }
            }
            let q = try TestSupport.run("/usr/sbin/tc", ["qdisc", "show", "dev", target]).stdout
            if q.contains("clsact") { found.append("\(target): \(q)") }
        }
        let state = (try? FileManager.default.contentsOfDirectory(atPath: stateDirectory)) ?? []
        found += state.filter { $0.hasPrefix("xdp-\(pid)-") }
        return found
    }

    @Test("every packet tcpdump sees, byte for byte, while the pod's requests keep succeeding",
          arguments: ["native", "generic"])
    func matchesTcpdump(mode: String) throws {
        let pod = try PodNetwork(tag: "xd", index: mode == "native" ? 1 : 2)
        defer { try? pod.remove() }
        #expect(pod.waitUntilServing(), "the HTTP server in the namespace never answered")
        let written = pod.root.appendingPathComponent("ours.pcap").path
        let reference = pod.root.appendingPathComponent("tcpdump.pcap").path
        let tcpdump = TestSupport.unblockedProcess(
            TestSupport.which("tcpdump")!, ["-i", pod.hostSide, "--immediate-mode", "-U", "-w", reference, "tcp port 8080"])
        let tcpdumpErr = Pipe()
        tcpdump.standardOutput = FileHandle.nullDevice
        tcpdump.standardError = tcpdumpErr
        try tcpdump.run()
        let (capture, err, said) = try Self.startCapture(
            ["-i", pod.hostSide, "--capture", "af_xdp", "--xdp-mode", mode, "--filter", "tcp port 8080", "-w", written])
        #expect(said.contains("capturing on \(pod.hostSide) with af_xdp") && said.contains("\(mode) mode"), "\(said)")
        #expect(TestSupport.waitFor("listening on", in: tcpdumpErr).contains("listening on"))
        usleep(500_000)

        // Passive: every request made while the XSK sockets are open succeeds.
        var statuses: [Int] = []
        for i in 0..<20 { statuses.append(pod.get("/hello.txt?n=\(i)")) }
        statuses.append(pod.get("/missing"))
        #expect(statuses == Array(repeating: 200, count: 20) + [404], "\(statuses)")
        // tcpdump (immediate mode or not) drops what its ring holds when interrupted: give it time.
        usleep(1_500_000)

        Self.interruptAndWait(tcpdump)
        let stats = Self.stop(capture, err, said: said)
        #expect(capture.terminationStatus == 0, "\(stats)")
        #expect(stats.contains("0 dropped by kernel, 0 dropped by us"), "\(stats)")

        let ours = try LiveCaptureTests.packets(written)
        let theirs = try LiveCaptureTests.packets(reference)
        #expect(ours.count == theirs.count && ours.count >= 21 * 6, "\(ours.count) packets vs tcpdump's \(theirs.count)")
        let identical = ours.sorted { $0.lexicographicallyPrecedes($1) } == theirs.sorted { $0.lexicographicallyPrecedes($1) }
        #expect(identical, "\(mode): packet bytes differ from tcpdump's")
        let left = try Self.leftovers(pid: capture.processIdentifier, targets: [pod.hostSide])
        #expect(left.isEmpty, "left behind after a normal exit: \(left)")
    }

    @Test("SIGTERM removes the mirror, the tc filters, the qdisc and the state file")
    func cleanupOnSIGTERM() throws {
        let pod = try PodNetwork(tag: "xt", index: 3)
        defer { try? pod.remove() }
        let (capture, err, said) = try Self.startCapture(["-i", pod.hostSide, "--capture", "af_xdp", "-w", "/dev/null"])
        #expect(said.contains("with af_xdp"), "\(said)")
        let during = try Self.leftovers(pid: capture.processIdentifier, targets: [pod.hostSide])
        #expect(during.count >= 5, "the mirror is not in place while capturing: \(during)")
        #expect(pod.waitUntilServing())
        let out = Self.stop(capture, err, said: said, signal: SIGTERM)
        #expect(capture.terminationStatus == 0, "\(out)")
        let left = try Self.leftovers(pid: capture.processIdentifier, targets: [pod.hostSide])
        #expect(left.isEmpty, "left behind after SIGTERM: \(left)")
    }

    @Test("after kill -9, the next capture removes what the dead one left")
    func cleanupAfterCrash() throws {
        let pod = try PodNetwork(tag: "xk", index: 4)
        defer { try? pod.remove() }
        // Captures started by other tests sweep what dead captures left, and would race
        // this test for it: this one keeps its state in a directory of its own, and is
        // stopped (still alive, so nobody sweeps it) while the leftovers are counted.
        let stateDirectory = pod.root.appendingPathComponent("state").path
        let environment = ["KUBESHARK_STATE_DIR": stateDirectory]
        let (capture, err, said) = try Self.startCapture(["-i", pod.hostSide, "--capture", "af_xdp", "-w", "/dev/null"],
                                                         environment: environment)
        #expect(said.contains("with af_xdp"), "\(said)")
        let dead = capture.processIdentifier
        kill(dead, SIGSTOP)
        let stale = try Self.leftovers(pid: dead, targets: [pod.hostSide], stateDirectory: stateDirectory)
        #expect(stale.count >= 5, "the mirror, filters, qdisc and state file should all be in place: \(stale)")
        kill(dead, SIGKILL)
        capture.waitUntilExit()
        _ = err.fileHandleForReading.readDataToEndOfFile()
        // The pod still works with the stale mirror (it only ever copied packets).
        #expect(pod.waitUntilServing())
        // Any live capture starts by sweeping.
        let next = try TestSupport.run(TestSupport.kubeshark, ["capture", "-i", pod.hostSide, "--capture", "af_packet",
                                                               "--duration", "0.2", "-w", "/dev/null"],
                                       environment: environment)
        #expect(next.status == 0, "\(next.stderr)")
        #expect(next.stderr.contains("removed what capture \(dead) left"), "\(next.stderr)")
        let left = try Self.leftovers(pid: dead, targets: [pod.hostSide], stateDirectory: stateDirectory)
        #expect(left.isEmpty, "still there after the next start: \(left)")
    }

    @Test("several interfaces mirrored into one capture")
    func multipleInterfaces() throws {
        let a = try PodNetwork(tag: "xm", index: 5)
        defer { try? a.remove() }
        let b = try PodNetwork(tag: "xm", index: 6)
        defer { try? b.remove() }
        #expect(a.waitUntilServing() && b.waitUntilServing())
        let written = a.root.appendingPathComponent("both.pcap").path
        let (capture, err, said) = try Self.startCapture(
            ["-i", "\(a.hostSide),\(b.hostSide)", "--capture", "af_xdp", "--filter", "tcp port 8080", "-w", written])
        #expect(said.contains("with af_xdp"), "\(said)")
        usleep(300_000)
        for i in 0..<3 {
            #expect(a.get("/hello.txt?a=\(i)") == 200)
            #expect(b.get("/hello.txt?b=\(i)") == 200)
        }
        usleep(300_000)
        let out = Self.stop(capture, err, said: said)
        #expect(capture.terminationStatus == 0, "\(out)")
        let packets = try LiveCaptureTests.packets(written)
        let text = packets.map { String(decoding: $0, as: UTF8.self) }
        for i in 0..<3 {
            #expect(text.contains { $0.contains("GET /hello.txt?a=\(i) ") }, "request \(i) to the first pod missing")
            #expect(text.contains { $0.contains("GET /hello.txt?b=\(i) ") }, "request \(i) to the second pod missing")
        }
        let left = try Self.leftovers(pid: capture.processIdentifier, targets: [a.hostSide, b.hostSide])
        #expect(left.isEmpty, "\(left)")
    }

    @Test("--capture auto takes af_xdp, or says why not and takes af_packet")
    func autoSelection() throws {
        let pod = try PodNetwork(tag: "xa", index: 7)
        defer { try? pod.remove() }
        let xdp = try TestSupport.run(TestSupport.kubeshark, ["capture", "-i", pod.hostSide, "--capture", "auto", "--duration", "0.3"])
        #expect(xdp.status == 0, "\(xdp.stderr)")
        #expect(xdp.stderr.contains("auto: took af_xdp") && xdp.stderr.contains("capturing on \(pod.hostSide) with af_xdp"), "\(xdp.stderr)")
        let noObjects = try TestSupport.run(TestSupport.kubeshark, ["capture", "-i", pod.hostSide, "--capture", "auto", "--duration", "0.3"],
                                            environment: ["LIBXDP_OBJECT_PATH": "/nonexistent"])
        #expect(noObjects.status == 0, "\(noObjects.stderr)")
        #expect(noObjects.stderr.contains("auto: af_xdp unavailable (af_xdp: libxdp's BPF objects (xsk_def_xdp_prog.o) are not in /nonexistent: install libxdp1 or set LIBXDP_OBJECT_PATH)"),
                "\(noObjects.stderr)")
        #expect(noObjects.stderr.contains("auto: took af_packet") && noObjects.stderr.contains("with af_packet"), "\(noObjects.stderr)")
        // Asked for explicitly, the same cause is one line and a failure.
        let explicit = try TestSupport.run(TestSupport.kubeshark, ["capture", "-i", pod.hostSide, "--capture", "af_xdp"],
                                           environment: ["LIBXDP_OBJECT_PATH": "/nonexistent"])
        #expect(explicit.status != 0)
        #expect(explicit.stderr == "kubeshark: af_xdp: libxdp's BPF objects (xsk_def_xdp_prog.o) are not in /nonexistent: install libxdp1 or set LIBXDP_OBJECT_PATH\n",
                "\(explicit.stderr)")
        let zeroCopy = try TestSupport.run(TestSupport.kubeshark, ["capture", "-i", pod.hostSide, "--capture", "af_xdp", "--xdp-zero-copy"])
        #expect(zeroCopy.status != 0)
        #expect(zeroCopy.stderr.hasSuffix("zero-copy is not supported by the mirror's driver (veth has none): leave out --xdp-zero-copy\n"), "\(zeroCopy.stderr)")
        let gone = try TestSupport.run(TestSupport.kubeshark, ["capture", "-i", "nosuch0", "--capture", "af_xdp"])
        #expect(gone.stderr == "kubeshark: af_xdp: no interface named nosuch0\n", "\(gone.stderr)")
        let left = try Self.leftovers(pid: 0, targets: [pod.hostSide])
        #expect(left.isEmpty, "\(left)")
    }
}

/// AF_PACKET on several interfaces at once (one socket, kernel ifindex test),
/// on `any` (Linux cooked v2), and with fanout reader threads: the same packets
/// tcpdump records on each interface.
@Suite("AF_PACKET several interfaces", .serialized,
       .enabled(if: getuid() == 0, "needs root for network namespaces and capture"),
       .enabled(if: TestSupport.which("tcpdump") != nil && TestSupport.which("curl") != nil, "needs tcpdump and curl"))
struct AFPacketMultiTests {
    /// Captures on both pods' host sides with `arguments`, alongside one tcpdump per side.
    func captureBoth(_ extra: [String], tag: String, tcpdumpArgs: (PodNetwork) -> [String]) throws
        -> (ours: [[UInt8]], theirs: [[UInt8]], said: String, a: PodNetwork, b: PodNetwork)
    {
        let a = try PodNetwork(tag: tag, index: 8)
        let b = try PodNetwork(tag: tag, index: 9)
        #expect(a.waitUntilServing() && b.waitUntilServing())
        let written = a.root.appendingPathComponent("ours.pcap").path
        var dumps: [(Process, Pipe, String)] = []
        for pod in extra.contains("any") ? [a] : [a, b] {
            let file = pod.root.appendingPathComponent("tcpdump.pcap").path
            let t = TestSupport.unblockedProcess(TestSupport.which("tcpdump")!, tcpdumpArgs(pod) + ["-w", file])
            let err = Pipe()
            t.standardOutput = FileHandle.nullDevice
            t.standardError = err
            try t.run()
            #expect(TestSupport.waitFor("listening on", in: err).contains("listening on"))
            dumps.append((t, err, file))
        }
        let (capture, err, said) = try XDPCaptureTests.startCapture(extra + ["-w", written])
        usleep(500_000)
        for i in 0..<4 {
            #expect(a.get("/hello.txt?a=\(i)") == 200)
            #expect(b.get("/hello.txt?b=\(i)") == 200)
        }
        usleep(1_500_000)
        for (t, _, _) in dumps {
            t.interrupt()
            t.waitUntilExit()
        }
        let out = XDPCaptureTests.stop(capture, err, said: said)
        #expect(capture.terminationStatus == 0, "\(out)")
        let ours = try LiveCaptureTests.packets(written)
        var theirs: [[UInt8]] = []
        for (_, _, file) in dumps { theirs += try LiveCaptureTests.packets(file) }
        return (ours, theirs, out, a, b)
    }

    /// Every packet of `theirs` is in `ours`, byte for byte (as multisets). Not
    /// equality: under load, tcpdump -i any (libpcap's immediate mode, V2 frames)
    /// was seen to lose a connection's last packets that we had.
    static func contains(_ ours: [[UInt8]], all theirs: [[UInt8]]) -> Bool {
        var pool: [[UInt8]: Int] = [:]
        for p in ours { pool[p, default: 0] += 1 }
        for p in theirs {
            guard let n = pool[p], n > 0 else { return false }
            pool[p] = n - 1
        }
        return true
    }

    @Test("-i a,b: one socket sees both interfaces, the packets tcpdump sees on each", arguments: [1, 2])
    func severalInterfaces(fanout: Int) throws {
        let tag = "pm"
        var args = ["--capture", "af_packet", "--filter", "tcp port 8080"]
        if fanout > 1 { args += ["--fanout", String(fanout)] }
        let id = getpid() % 100000
        args = ["-i", "kt\(tag)\(id)8a", "-i", "kt\(tag)\(id)9a"] + args
        let r = try captureBoth(args, tag: tag) { ["-i", $0.hostSide, "--immediate-mode", "-U", "tcp port 8080"] }
        defer { try? r.a.remove(); try? r.b.remove() }
        #expect(r.said.contains("capturing on \(r.a.hostSide),\(r.b.hostSide) with af_packet"), "\(r.said)")
        #expect(r.ours.count >= r.theirs.count && r.theirs.count >= 8 * 6, "\(r.ours.count) vs tcpdump's \(r.theirs.count)")
        let same = Self.contains(r.ours, all: r.theirs)
        #expect(same, "fanout \(fanout): a packet tcpdump saw is missing or differs")
    }

    @Test("-i any: Linux cooked v2, byte for byte what tcpdump -i any -y LINUX_SLL2 writes")
    func anyInterface() throws {
        let tag = "pa"
        let filter = "tcp port 8080 and host 10.234.48.2"
        let r = try captureBoth(["-i", "any", "--capture", "af_packet", "--filter", filter], tag: tag) { _ in
            ["-i", "any", "-y", "LINUX_SLL2", "--immediate-mode", "-U", filter]
        }
        defer { try? r.a.remove(); try? r.b.remove() }
        #expect(r.said.contains("capturing on any with af_packet"), "\(r.said)")
        #expect(r.ours.count >= r.theirs.count && r.theirs.count >= 4 * 6, "\(r.ours.count) vs tcpdump's \(r.theirs.count)")
        let same = Self.contains(r.ours, all: r.theirs)
        #expect(same, "any: a packet tcpdump saw is missing or differs")
        let file = try LibpcapBackend(file: r.a.root.appendingPathComponent("ours.pcap").path)
        #expect(file.linkType == 276)
        file.close()
    }
}

/// A stop is honoured while traffic keeps coming: the backends read what they hold,
/// then end, rather than following the traffic for ever.
@Suite("Stop under load", .serialized, .enabled(if: xdpMissing == nil, "\(xdpMissing ?? "")"))
struct StopUnderLoadTests {
    @Test("SIGINT ends the capture within seconds while a flood goes on", arguments: ["libpcap", "af_packet", "af_xdp"])
    func stopWhileFlooded(backend: String) throws {
        let pod = try PodNetwork(tag: "sl", index: backend == "libpcap" ? 12 : backend == "af_packet" ? 13 : 14)
        defer { try? pod.remove() }
        let (capture, err, said) = try XDPCaptureTests.startCapture(
            ["-i", pod.hostSide, "--capture", backend, "-w", "/dev/null"])
        #expect(said.contains("with \(backend)"), "\(said)")
        // UDP datagrams to the pod as fast as Python sends them, until killed.
        let flood = Process()
        flood.executableURL = URL(fileURLWithPath: TestSupport.which("python3")!)
        flood.arguments = ["-c", "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            + "while True:\n    s.sendto(b'x' * 200, ('\(pod.podAddress)', 9999))"]
        flood.standardOutput = FileHandle.nullDevice
        flood.standardError = FileHandle.nullDevice
        try flood.run()
        defer { kill(flood.processIdentifier, SIGKILL); flood.waitUntilExit() }
        usleep(1_000_000)
        let stopped = Date()
        let out = XDPCaptureTests.stop(capture, err, said: said)
        let seconds = Date().timeIntervalSince(stopped)
        #expect(capture.terminationStatus == 0 && seconds < 5, "\(backend) took \(seconds) s to stop: \(out)")
        #expect(out.contains("packets received"), "\(out)")
    }
}

/// Without privileges every backend fails with one line naming what is missing.
@Suite("Capture without privileges",
       .enabled(if: getuid() == 0 && TestSupport.which("setpriv") != nil, "needs root (to drop privileges with setpriv)"))
struct CapturePermissionTests {
    @Test("one line per backend naming the capability", arguments: [
        ("af_packet", "kubeshark: af_packet on IFACE: permission denied (needs root or CAP_NET_RAW)\n"),
        ("af_xdp", "kubeshark: af_xdp: permission denied (needs root or CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF)\n"),
        ("libpcap", "kubeshark: libpcap on IFACE: permission denied (needs root or CAP_NET_RAW and CAP_NET_ADMIN): socket: Operation not permitted\n"),
    ])
    func unprivileged(backend: String, expected: String) throws {
        let iface = "ktpm\(getpid() % 100000)\(backend.count)"
        try sh("ip link add \(iface) type veth peer name \(iface)p")
        defer { _ = try? TestSupport.run("/usr/sbin/ip", ["link", "del", iface]) }
        let r = try TestSupport.run(TestSupport.which("setpriv")!, [
            "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
            TestSupport.kubeshark, "capture", "-i", iface, "--capture", backend, "--duration", "0.1"])
        #expect(r.status == 1)
        #expect(r.stderr == expected.replacingOccurrences(of: "IFACE", with: iface), "\(r.stderr)")
    }
}

/// An interface deleted under a capture ends it with one line, and af_xdp's mirror goes too.
@Suite("Interface gone", .serialized, .enabled(if: xdpMissing == nil, "\(xdpMissing ?? "")"))
struct InterfaceGoneTests {
    @Test("the capture ends with 'interface ... is gone'", arguments: ["af_packet", "af_xdp"])
    func deleted(backend: String) throws {
        let iface = "ktgn\(getpid() % 100000)\(backend.count)"
        try sh("ip link add \(iface) type veth peer name \(iface)p && ip link set \(iface) up && ip link set \(iface)p up")
        defer { _ = try? TestSupport.run("/usr/sbin/ip", ["link", "del", iface]) }
        let (capture, err, said) = try XDPCaptureTests.startCapture(["-i", iface, "--capture", backend, "-w", "/dev/null"])
        #expect(said.contains("with \(backend)"), "\(said)")
        try sh("ip link del \(iface)")
        let pid = capture.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 15) { kill(pid, SIGKILL) }
        let out = said + String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        capture.waitUntilExit()
        #expect(capture.terminationStatus == 1, "\(out)")
        #expect(out.hasSuffix("kubeshark: \(backend): interface \(iface) is gone\n"), "\(out)")
        let left = try XDPCaptureTests.leftovers(pid: pid, targets: [])
        #expect(left.isEmpty, "\(left)")
    }
}
