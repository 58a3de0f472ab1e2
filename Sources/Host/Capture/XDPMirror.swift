import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The passive copy AF_XDP captures from.
///
/// An XSK socket gets packets by an XDP redirect, which takes them away from the
/// kernel: on a pod's interface it would cut the pod off. So the backend never
/// touches the target's XDP hook. It creates a veth pair of its own,
/// `ksx<pid>m<n>` (the mirror) and `ksx<pid>p<n>` (the peer), and on every target
/// interface adds a clsact qdisc (when there is none) and two tc filters, ingress
/// and egress, `bpf bytecode <the capture filter> action mirred egress mirror dev
/// <mirror> continue`: the kernel runs the user's filter (classic BPF compiled by
/// libpcap; cls_bpf shows it the Ethernet header on both hooks), clones each
/// matching packet into the mirror, and the original goes on untouched
/// (`continue` lets later filters, a CNI's for instance, still run). Kernels
/// without cls_bpf get a `u32` match-all instead and the filter runs in user space. The XDP
/// program and the XSK sockets sit on the peer, where every packet is a copy.
///
/// Everything created is listed, before it is created, in a state file under
/// `/run/kubeshark`, and removed by `teardown()` (normal exit, SIGINT, SIGTERM;
/// an `atexit` hook also covers a process that exits without closing);
/// after a crash the next capture's `sweepLeftovers()` replays the file of any
/// process that is gone, and also deletes `ksx*` interfaces whose owner is gone.
/// Deleting the veth pair also removes the XDP program on it.
final class XDPMirror {
    /// Where the cleanup state lives: `/run/kubeshark`, or `$KUBESHARK_STATE_DIR` (a
    /// node whose `/run` is read-only, or a test that must not share its state with
    /// other captures' sweeps).
    static var stateDirectory: String {
        if let dir = getenv("KUBESHARK_STATE_DIR"), dir.pointee != 0 { return String(cString: dir) }
        return "/run/kubeshark"
    }
    let mirror: String
    let peer: String
    let targets: [String]
    private let statePath: String
    /// What was created, in order; undone in reverse.
    private var created: [[String]] = []
    private var tornDown = false
    /// Counters of the mirror pair at start, to report its drops as kernel drops.
    private var baseDrops: UInt64 = 0

    /// The classic BPF program of the filter, as `tc ... bpf bytecode` takes it.
    private let bytecode: String
    /// True when the kernel filters (cls_bpf); false when the caller must (u32 fallback).
    private(set) var kernelFilters = true
    /// Packets the targets carried at start (rx + tx), to derive `filtered`.
    private var basePackets: UInt64 = 0

    /// Creates the pair (with `queues` RX queues on the peer) and mirrors `targets`
    /// into it, through `bytecode` (a classic BPF program "N,code jt jf k,...").
    init(targets: [String], queues: Int, instance: Int, bytecode: String) throws(CaptureError) {
        let pid = getpid()
        self.targets = targets
        self.bytecode = bytecode
        mirror = "ksx\(pid)m\(instance)"
        peer = "ksx\(pid)p\(instance)"
        statePath = "\(Self.stateDirectory)/xdp-\(pid)-\(instance).state"
        for tool in ["ip", "tc"] where SystemCommand.find(tool) == nil {
            throw CaptureError(.unsupported, "af_xdp: \(tool) (iproute2) is not installed; it sets up the capture mirror: install iproute2 or use --capture af_packet")
        }
        if mkdir(Self.stateDirectory, 0o700) != 0 && errno != EEXIST {
            let reason = String(cString: strerror(errno))
            throw CaptureError(errno == EACCES || errno == EPERM ? .permission : .other,
                "af_xdp: cannot create \(Self.stateDirectory) for its cleanup state (\(reason)): run as root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF)")
        }
        do {
            try setUp(queues: queues)
        } catch {
            teardown()
            throw error
        }
    }

    private func setUp(queues: Int) throws(CaptureError) {
        // Recorded first: a crash between the two lines still leaves a trace to clean.
        try record(["link", mirror])
        let q = String(max(1, queues))
        let add = SystemCommand.run("ip", ["link", "add", mirror, "numtxqueues", q, "numrxqueues", q, "type", "veth",
                                           "peer", "name", peer, "numtxqueues", q, "numrxqueues", q])
        guard add.ok else {
            if add.output.contains("Operation not permitted") {
                throw CaptureError(.permission, "af_xdp: cannot create the mirror interface: permission denied (needs root or CAP_NET_ADMIN)")
            }
            throw CaptureError(.other, "af_xdp: cannot create the mirror veth pair \(mirror)/\(peer): \(add.output)")
        }
        // The pair is silent: no IPv6 autoconfiguration, no addresses.
        for name in [mirror, peer] {
            writeFile("/proc/sys/net/ipv6/conf/\(name)/disable_ipv6", "1")
        }
        // Segment GSO packets on their way into the mirror: an XSK frame holds one
        // page, a TSO super-packet does not fit.
        _ = SystemCommand.run("ethtool", ["-K", mirror, "tso", "off", "gso", "off"])
        let mtu = targets.compactMap { Int(readFile("/sys/class/net/\($0)/mtu") ?? "") }.max() ?? 1500
        for name in [mirror, peer] {
            let up = SystemCommand.run("ip", ["link", "set", name, "mtu", String(min(mtu, 65535)), "up"])
            guard up.ok else { throw CaptureError(.other, "af_xdp: cannot bring \(name) up: \(up.output)") }
        }
        baseDrops = pairDrops()
        basePackets = targetPackets()
        for target in targets {
            try mirrorTraffic(of: target)
        }
    }

    private func mirrorTraffic(of target: String) throws(CaptureError) {
        try record(["qdisc", target])  // removed at teardown only if we added it and it is empty
        let qdisc = SystemCommand.run("tc", ["qdisc", "add", "dev", target, "clsact"])
        if !qdisc.ok {
            created.removeLast()
            try saveState()
            if !qdisc.output.contains("File exists") && !qdisc.output.contains("Exclusivity flag on") {
                if if_nametoindex(target) == 0 {
                    throw CaptureError(.interfaceMissing, "af_xdp: no interface named \(target)")
                }
                throw CaptureError(.other, "af_xdp: cannot add a clsact qdisc to \(target): \(qdisc.output)")
            }
        }
        for hook in ["ingress", "egress"] {
            var done = false
            var lastError = ""
            // A preference of our own, after those a CNI usually takes; a few tries if it is in use.
            for attempt in 0..<8 where !done {
                let pref = String(49152 + Int((UInt32(getpid()) &* 31 &+ UInt32(attempt) &* 977) % 16000))
                try record(["filter", target, hook, pref])
                let classifier = kernelFilters ? ["bpf", "bytecode", bytecode] : ["u32", "match", "u32", "0", "0"]
                let r = SystemCommand.run("tc", ["filter", "add", "dev", target, hook, "pref", pref] + classifier
                                                 + ["action", "mirred", "egress", "mirror", "dev", mirror, "continue"])
                if !r.ok && kernelFilters && r.output.contains("classifier not found") {
                    kernelFilters = false  // no cls_bpf: match all, filter in user space
                    created.removeLast()
                    try saveState()
                    continue
                }
                if r.ok {
                    done = true
                } else {
                    created.removeLast()
                    try saveState()
                    lastError = r.output
                }
            }
            guard done else {
                throw CaptureError(.other, "af_xdp: cannot mirror \(hook) of \(target) with tc: \(lastError)")
            }
        }
    }

    /// Drops on the mirror path before XDP: clones the veth could not carry (the
    /// peer's queue full). The peer's own rx_dropped is not added: it counts the
    /// failed XSK redirects that XDP_STATISTICS already has.
    func pairDrops() -> UInt64 {
        let tx = UInt64(readFile("/sys/class/net/\(mirror)/statistics/tx_dropped") ?? "") ?? 0
        return tx &- min(baseDrops, tx)
    }

    /// Packets the targets received and sent since start (all of them, matching or not).
    func targetPackets() -> UInt64 {
        var total: UInt64 = 0
        for t in targets {
            for counter in ["rx_packets", "tx_packets"] {
                total &+= UInt64(readFile("/sys/class/net/\(t)/statistics/\(counter)") ?? "") ?? 0
            }
        }
        return total &- min(basePackets, total)
    }

    /// Removes everything this mirror created. Safe to call more than once.
    func teardown() {
        guard !tornDown else { return }
        tornDown = true
        let path = statePath
        _ = Self.alive.withLock { $0.removeValue(forKey: path) }
        Self.undo(created)
        unlink(statePath)
    }

    deinit { teardown() }

    private func record(_ step: [String]) throws(CaptureError) {
        created.append(step)
        try saveState()
    }

    /// Undo lists of the mirrors alive in this process, by state file, for `exit()`:
    /// a program that ends without closing its backend (a library user, a test)
    /// still leaves nothing behind.
    private static let alive = Mutex<[String: [[String]]]>([:])
    private static let exitHook: Bool = {
        atexit {
            let all = XDPMirror.alive.withLock { registry in
                let copy = registry
                registry.removeAll()
                return copy
            }
            for (path, steps) in all {
                XDPMirror.undo(steps)
                unlink(path)
            }
        }
        return true
    }()

    private func saveState() throws(CaptureError) {
        _ = Self.exitHook
        let steps = created
        let path = statePath
        Self.alive.withLock { $0[path] = steps }
        var text = "pid\t\(getpid())\n"
        for step in created { text += step.joined(separator: "\t") + "\n" }
        let tmp = statePath + ".tmp"
        guard writeFile(tmp, text, sync: true), rename(tmp, statePath) == 0 else {
            throw CaptureError(.permission, "af_xdp: cannot write \(statePath): \(String(cString: strerror(errno))) (run as root)")
        }
    }

    /// Undoes steps in reverse order, ignoring what is already gone.
    static func undo(_ steps: [[String]]) {
        for step in steps.reversed() {
            switch step.first {
            case "filter" where step.count == 4:
                _ = SystemCommand.run("tc", ["filter", "del", "dev", step[1], step[2], "pref", step[3]])
            case "qdisc" where step.count == 2:
                // Only when nothing else hangs off it: another tool may have added filters since.
                let ingress = SystemCommand.run("tc", ["filter", "show", "dev", step[1], "ingress"])
                let egress = SystemCommand.run("tc", ["filter", "show", "dev", step[1], "egress"])
                if ingress.ok && egress.ok && ingress.output.isEmpty && egress.output.isEmpty {
                    _ = SystemCommand.run("tc", ["qdisc", "del", "dev", step[1], "clsact"])
                }
            case "link" where step.count == 2:
                if if_nametoindex(step[1]) != 0 {
                    _ = SystemCommand.run("ip", ["link", "del", step[1]])
                }
            default:
                break
            }
        }
    }

    /// Whether `name` has the shape of a mirror interface, `ksx<pid>m<n>` or `ksx<pid>p<n>`.
    static func isMirrorName(_ name: String) -> Bool {
        mirrorOwner(name) != nil
    }

    /// The pid in a mirror interface's name.
    static func mirrorOwner(_ name: String) -> Int32? {
        guard name.hasPrefix("ksx") else { return nil }
        let rest = name.dropFirst(3)
        let digits = rest.prefix { $0.isNumber }
        let tail = rest.dropFirst(digits.count)
        guard let pid = Int32(digits), let kind = tail.first, kind == "m" || kind == "p",
              !tail.dropFirst().isEmpty, tail.dropFirst().allSatisfy({ $0.isNumber }) else { return nil }
        return pid
    }

    /// Whether `pid` is a live kubeshark process.
    static func isLiveKubeshark(_ pid: Int32) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        return (readFile("/proc/\(pid)/comm") ?? "").hasPrefix("kubeshark")
    }

    /// Removes what crashed captures left behind: their state files' steps, and
    /// `ksx<pid>...` interfaces of dead processes. Returns one line per removal.
    @discardableResult
    static func sweepLeftovers() -> [String] {
        var removed: [String] = []
        let me = getpid()
        if let dir = opendir(stateDirectory) {
            var files: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name.hasPrefix("xdp-") && name.hasSuffix(".state") { files.append(name) }
            }
            closedir(dir)
            for file in files {
                let path = "\(stateDirectory)/\(file)"
                guard let text = readFile(path) else { continue }
                let lines = text.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
                guard let owner = lines.first, owner.count == 2, owner[0] == "pid", let pid = Int32(owner[1]) else {
                    unlink(path)
                    continue
                }
                if pid == me || isLiveKubeshark(pid) { continue }
                let steps = Array(lines.dropFirst())
                undo(steps)
                unlink(path)
                removed.append("removed what capture \(pid) left (\(steps.map { $0.joined(separator: " ") }.joined(separator: ", ")))")
            }
        }
        if let dir = opendir("/sys/class/net") {
            var stale: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard let pid = mirrorOwner(name), pid != me, !isLiveKubeshark(pid) else { continue }
                stale.append(name)
            }
            closedir(dir)
            for name in stale where if_nametoindex(name) != 0 {
                _ = SystemCommand.run("ip", ["link", "del", name])
                removed.append("removed stale mirror interface \(name)")
            }
        }
        return removed
    }
}

/// The whole content of a small file, or nil.
func readFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    var text = String(decoding: bytes, as: UTF8.self)
    while text.last == "\n" { text.removeLast() }
    return text
}

@discardableResult
func writeFile(_ path: String, _ text: String, sync: Bool = false) -> Bool {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    let ok = text.utf8CString.withUnsafeBufferPointer { buffer in
        write(fd, buffer.baseAddress, buffer.count - 1) == buffer.count - 1
    }
    if sync { fsync(fd) }
    return ok
}
