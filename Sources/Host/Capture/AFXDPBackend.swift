import CPcap
import CXDP
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Live capture through AF_XDP (libxdp's XSK API): one XSK socket per RX queue,
/// each with its own UMEM, fill, completion and RX rings, receive only.
///
/// Capture stays passive: the sockets sit on the peer of a veth pair the backend
/// owns, which receives a tc mirror of the targets' ingress and egress (see
/// `XDPMirror`); the targets' own XDP hooks are never touched. Several target
/// interfaces are mirrored into the one pair.
///
/// The filter (tcpdump syntax) is compiled by libpcap and run by the kernel in the
/// tc filters that feed the mirror, so packets out of scope are never copied;
/// `filtered` is then the targets' packet count less what the mirror carried.
/// (Where the kernel lacks cls_bpf, the mirror takes everything and the filter
/// runs here, in user space, on each frame.)
/// XDP gives no receive timestamp in copy mode: packets are stamped with the
/// realtime clock when their batch is read.
public final class AFXDPBackend: CaptureBackend {
    public enum Mode: String, Sendable, CaseIterable {
        /// Native (driver) XDP where the mirror's driver has it (veth does), else generic.
        case auto
        /// XDP_FLAGS_DRV_MODE only.
        case native
        /// XDP_FLAGS_SKB_MODE only.
        case generic
    }

    public struct Options: Sendable {
        public var mode: Mode = .auto
        /// Ask for zero-copy (not supported by veth; fails clearly there).
        public var zeroCopy = false
        /// RX queues on the mirror peer, one XSK socket each.
        public var queues = 1
        /// Descriptors in each RX and fill ring, and UMEM frames per socket. Every
        /// packet takes a whole frame, however small: with 2 KiB frames, 32768 is
        /// 64 MiB, about as many packets as AF_PACKET's 32 MiB ring holds at 500
        /// bytes each, some 100 ms at 300 kpps, enough to ride out a busy scheduler
        /// (16384 dropped packets on this shared machine under a load of 8).
        public var ringSize: UInt32 = 32768
        /// Bytes per UMEM frame, 2048 or 4096: the largest packet that fits is this
        /// less XDP's 256-byte headroom. nil: 2048 when every target's MTU fits, else 4096.
        public var frameSize: UInt32?
        public var pollTimeoutMs: Int32 = 100
        /// When the rings run empty right after a batch, sleep instead of polling
        /// (coalescing in user space): the sleep adapts so that each wake-up finds
        /// about an eighth of the ring, between 100 µs and this many microseconds,
        /// halving or better when traffic rises. While traffic flows this means tens
        /// to hundreds of wake-ups a second instead of one or two per packet; an idle
        /// ring is polled. 0 turns it off. (AF_PACKET's block timeout is 50 ms.)
        public var coalesceMicroseconds: UInt32 = 10_000
        public var filter: String?
        /// Bytes kept of each packet (tcpdump's `-s`), cut here: the mirror carries whole packets.
        public var snapLength: UInt32 = 262_144
        public init() {}
    }

    public let name = "af_xdp"
    public let linkType: Int32 = 1  // DLT_EN10MB: the mirror carries the targets' Ethernet frames
    /// The XDP mode in use.
    public private(set) var mode: Mode = .auto
    /// The veth pair the targets are mirrored into.
    public var mirrorInterfaces: (mirror: String, peer: String) { (mirrorSetup?.mirror ?? "", mirrorSetup?.peer ?? "") }

    private var sockets: [OpaquePointer] = []
    private var pollFds: [pollfd] = []
    private var mirrorSetup: XDPMirror?
    private var program = bpf_program()
    private var hasFilter = false
    /// The filter runs here (no cls_bpf in the kernel).
    private var userFilter = false
    private var stats = CaptureStatistics()
    private let stopRequested = Atomic<Bool>(false)
    private let options: Options
    private let frameSize: UInt32
    private var next = 0
    /// The last read found packets: the next empty ring is slept on, not polled.
    private var busy = false
    private var stopDeadline: Int64?
    private var pastDeadline = false
    private var readAfterDeadline = 0
    private let coalesce: UInt32
    private var sleepUs: UInt32 = 100
    private var sinceWake = 0
    private nonisolated(unsafe) static var instances = 0

    /// Captures what `interfaces` send and receive (each must exist; not `any`).
    public init(interfaces: [String], options: Options = Options()) throws(CaptureError) {
        self.options = options
        coalesce = options.coalesceMicroseconds
        for interface in interfaces {
            if interface == "any" {
                throw CaptureError(.unsupported, "af_xdp: 'any' is not supported (the mirror needs named interfaces); name them, or use --capture af_packet")
            }
            if XDPMirror.isMirrorName(interface) {
                throw CaptureError(.other, "af_xdp: \(interface) is a kubeshark mirror interface; capture on the interface it mirrors")
            }
            guard if_nametoindex(interface) != 0 else {
                throw CaptureError(.interfaceMissing, "af_xdp: no interface named \(interface)")
            }
        }
        guard !interfaces.isEmpty else { throw CaptureError(.interfaceMissing, "af_xdp: no interface given") }
        // A frame must hold a whole packet (after XDP's 256-byte headroom).
        let mtus = interfaces.map { Int(readFile("/sys/class/net/\($0)/mtu") ?? "") ?? 1500 }
        frameSize = options.frameSize ?? (mtus.allSatisfy { $0 <= 2048 - 256 - 18 } ? 2048 : 4096)
        let room = Int(frameSize) - 256 - 18
        for (interface, mtu) in zip(interfaces, mtus) {
            if mtu > room {
                throw CaptureError(.unsupported, "af_xdp: \(interface)'s MTU (\(mtu)) is larger than an XSK frame holds (\(room)); use --capture af_packet")
            }
        }
        try Self.checkEnvironment()
        if let filter = options.filter, !filter.isEmpty {
            guard let dead = pcap_open_dead(linkType, 262_144) else {
                throw CaptureError(.filter, "af_xdp: libpcap cannot compile filters here")
            }
            defer { pcap_close(dead) }
            guard pcap_compile(dead, &program, filter, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
                throw CaptureError(.filter, "bad capture filter '\(filter)': \(String(cString: pcap_geterr(dead)))")
            }
            hasFilter = true
        }
        XDPMirror.sweepLeftovers()
        Self.instances += 1
        var bytecode = "1,6 0 0 262144"  // accept everything
        if hasFilter, let insns = program.bf_insns {
            let list = (0..<Int(program.bf_len)).map { i -> String in
                let n = insns[i]
                return "\(n.code) \(n.jt) \(n.jf) \(n.k)"
            }
            bytecode = "\(list.count)," + list.joined(separator: ",")
        }
        let setup = try XDPMirror(targets: interfaces, queues: options.queues, instance: Self.instances, bytecode: bytecode)
        mirrorSetup = setup
        userFilter = hasFilter && !setup.kernelFilters
        do {
            try openSockets(on: setup.peer)
        } catch {
            close()
            throw error
        }
    }

    /// Fails early, with what to do, when the kernel, the privileges or libxdp's objects are missing.
    static func checkEnvironment() throws(CaptureError) {
        // libxdp: no multi-program dispatcher (the kernel here refuses it and the
        // fallback is noisy); its messages go to our errors, not to stderr.
        setenv("LIBXDP_SKIP_DISPATCHER", "1", 0)
        ks_xdp_quiet_logs()
        let probe = ks_xdp_socket_probe()
        if probe == -EAFNOSUPPORT {
            throw CaptureError(.unsupported, "af_xdp: this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS): use --capture af_packet")
        }
        if probe == -EPERM || probe == -EACCES {
            throw CaptureError(.permission, "af_xdp: permission denied (needs root or CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF)")
        }
        if probe < 0 {
            throw CaptureError(.other, "af_xdp: cannot open an AF_XDP socket: \(String(cString: strerror(-probe)))")
        }
        let directory = getenv("LIBXDP_OBJECT_PATH").map { String(cString: $0) } ?? "/usr/lib/x86_64-linux-gnu/bpf"
        let found = directory.split(separator: ":").contains { access("\($0)/xsk_def_xdp_prog.o", R_OK) == 0 }
        if !found {
            throw CaptureError(.unsupported, "af_xdp: libxdp's BPF objects (xsk_def_xdp_prog.o) are not in \(directory): install libxdp1 or set LIBXDP_OBJECT_PATH")
        }
    }

    private func openSockets(on peer: String) throws(CaptureError) {
        let modes: [Mode] = options.mode == .auto ? [.native, .generic] : [options.mode]
        var failures: [String] = []
        for candidate in modes {
            var config = ks_xsk_config(frames: options.ringSize, frame_size: frameSize, ring_size: options.ringSize,
                                       mode: candidate == .native ? Int32(KS_XDP_MODE_NATIVE) : Int32(KS_XDP_MODE_GENERIC),
                                       zerocopy: options.zeroCopy ? 1 : 0)
            var opened: [OpaquePointer] = []
            var failure: String?
            var failureCode: Int32 = 0
            for queue in 0..<max(1, options.queues) {
                var xsk: OpaquePointer?
                var err = [CChar](repeating: 0, count: 512)
                let rc = ks_xsk_open(peer, UInt32(queue), &config, &xsk, &err, err.count)
                if rc != 0 || xsk == nil {
                    failure = "\(candidate.rawValue) mode on queue \(queue): \(String(cString: err))"
                    failureCode = Int32(-rc)
                    break
                }
                opened.append(xsk!)
            }
            if failure == nil {
                sockets = opened
                mode = candidate
                pollFds = sockets.map { pollfd(fd: ks_xsk_fd($0), events: Int16(POLLIN), revents: 0) }
                return
            }
            for s in opened { ks_xsk_close(s) }
            if failureCode == EPERM || failureCode == EACCES {
                throw CaptureError(.permission, "af_xdp: permission denied attaching XDP (needs root or CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF)")
            }
            if options.zeroCopy && (failureCode == EOPNOTSUPP || failureCode == EINVAL) {
                throw CaptureError(.unsupported, "af_xdp: zero-copy is not supported by the mirror's driver (veth has none): leave out --xdp-zero-copy")
            }
            failures.append(failure!)
        }
        throw CaptureError(.other, "af_xdp: cannot open an XSK socket on \(peer): \(failures.joined(separator: "; then "))")
    }

    /// Descriptors read in the last call, given back (to the fill ring) at the
    /// next one, so the packets of a batch stay valid until then.
    private var held: [(OpaquePointer, UInt32, UInt32)] = []

    public var packetsValidUntilNextRead: Bool { true }

    private func releaseHeld() {
        for (xsk, first, count) in held { ks_xsk_rx_release(xsk, first, count) }
        held.removeAll(keepingCapacity: true)
    }

    public func read(maxPackets: Int, _ handler: (CapturedPacket) -> Void) throws(CaptureError) -> CaptureReadOutcome {
        guard !sockets.isEmpty else { return .end }
        releaseHeld()
        // At a stop, what is in flight on the mirror is waited for 50 ms and what
        // the rings hold is read; past that, no more is waited for and at most one
        // ring's worth is still read, so the capture ends even if traffic goes on.
        if stopRequested.load(ordering: .relaxed) {
            let now = Self.monotonicMs()
            if stopDeadline == nil { stopDeadline = now + 50 }
            if now >= stopDeadline! { pastDeadline = true }
            if pastDeadline && readAfterDeadline >= Int(options.ringSize) * sockets.count { return .end }
        }
        while true {
            let n = readReady(maxPackets: maxPackets, handler)
            if n > 0 {
                busy = true
                if pastDeadline { readAfterDeadline += n }
                sinceWake &+= n
                return .packets(n)
            }
            if stopRequested.load(ordering: .relaxed) {
                // Let what is in flight on the mirror land in the rings, then end.
                let now = Self.monotonicMs()
                if stopDeadline == nil { stopDeadline = now + 50 }
                if pastDeadline || now >= stopDeadline! { return .end }
                _ = poll(&pollFds, nfds_t(pollFds.count), 10)
                continue
            }
            if busy && coalesce > 0 {
                busy = false
                // Aim at an eighth of the ring per wake-up, from what the last interval brought.
                let target = Double(options.ringSize) / 8
                let wanted = Double(sleepUs) * target / Double(max(sinceWake, 1))
                let next = min(Double(sleepUs) * 2, max(Double(sleepUs) / 4, wanted))
                sleepUs = UInt32(min(Double(coalesce), max(100, next)))
                sinceWake = 0
                usleep(sleepUs)
                continue
            }
            let rc = poll(&pollFds, nfds_t(pollFds.count), options.pollTimeoutMs)
            if rc < 0 && errno != EINTR {
                throw CaptureError(.other, "af_xdp on \(mirrorSetup?.targets.joined(separator: ",") ?? "?") failed: \(String(cString: strerror(errno)))")
            }
            if rc == 0 && !stopRequested.load(ordering: .relaxed) {
                if let setup = mirrorSetup, setup.targets.contains(where: { if_nametoindex($0) == 0 }) {
                    let gone = setup.targets.filter { if_nametoindex($0) == 0 }
                    throw CaptureError(.interfaceMissing, "af_xdp: interface \(gone.joined(separator: ", ")) is gone")
                }
                return .timeout
            }
        }
    }

    /// Reads what the rings hold, socket after socket, up to `maxPackets`.
    private func readReady(maxPackets: Int, _ handler: (CapturedPacket) -> Void) -> Int {
        var n = 0
        let stamp = wallClockNanoseconds()
        for _ in 0..<sockets.count where n < maxPackets {
            let xsk = sockets[next]
            next = (next + 1) % sockets.count
            var first: UInt32 = 0
            let ready = ks_xsk_rx_peek(xsk, UInt32(min(maxPackets - n, 256)), &first)
            guard ready > 0 else { continue }
            let before = n
            for i in 0..<ready {
                var length: UInt32 = 0
                let data = ks_xsk_rx_data(xsk, first &+ i, &length)
                if userFilter && bpf_filter(program.bf_insns, data, length, length) == 0 {
                    stats.filtered &+= 1
                    continue
                }
                let kept = min(length, options.snapLength)
                stats.received &+= 1
                stats.bytes &+= UInt64(kept)
                handler(CapturedPacket(timestampNs: stamp, data: UnsafeRawBufferPointer(start: data, count: Int(kept)),
                                       wireLength: Int(length), linkType: linkType))
                n += 1
            }
            if n == before {
                ks_xsk_rx_release(xsk, first, ready)  // all filtered out: nothing to keep valid
            } else {
                held.append((xsk, first, ready))
            }
        }
        return n
    }

    /// Kernel drops are the sockets' XDP_STATISTICS (rx_dropped, rx_ring_full,
    /// rx_invalid_descs) plus clones the mirror pair dropped.
    public var statistics: CaptureStatistics {
        var s = stats
        var drops: UInt64 = 0
        for xsk in sockets {
            var st = ks_xsk_stats()
            if ks_xsk_stats_get(xsk, &st) == 0 {
                drops &+= st.rx_dropped &+ st.rx_ring_full &+ st.rx_invalid_descs
            }
        }
        s.droppedByKernel = max(lastKernelDrops, drops &+ (mirrorSetup?.pairDrops() ?? 0))
        lastKernelDrops = s.droppedByKernel
        if hasFilter && !userFilter, let setup = mirrorSetup {
            let carried = s.received &+ s.droppedByKernel
            let all = setup.targetPackets()
            s.filtered = max(lastFiltered, all > carried ? all - carried : 0)
            lastFiltered = s.filtered
        }
        return s
    }
    private var lastKernelDrops: UInt64 = 0
    private var lastFiltered: UInt64 = 0

    /// The XSK socket statistics, summed over queues, for logs.
    public var xdpStatistics: (rxDropped: UInt64, rxRingFull: UInt64, fillRingEmpty: UInt64, invalid: UInt64) {
        var total = (rxDropped: UInt64(0), rxRingFull: UInt64(0), fillRingEmpty: UInt64(0), invalid: UInt64(0))
        for xsk in sockets {
            var st = ks_xsk_stats()
            if ks_xsk_stats_get(xsk, &st) == 0 {
                total.rxDropped &+= st.rx_dropped
                total.rxRingFull &+= st.rx_ring_full
                total.fillRingEmpty &+= st.rx_fill_ring_empty_descs
                total.invalid &+= st.rx_invalid_descs
            }
        }
        return total
    }

    public func breakLoop() {
        stopRequested.store(true, ordering: .relaxed)
    }

    /// Closes the sockets (libxdp detaches its program), removes the mirror filters
    /// and qdiscs it added and the veth pair.
    public func close() {
        if !sockets.isEmpty {
            releaseHeld()
            _ = statistics
        }
        for s in sockets { ks_xsk_close(s) }
        sockets = []
        pollFds = []
        mirrorSetup?.teardown()
        mirrorSetup = nil
        if hasFilter {
            pcap_freecode(&program)
            hasFilter = false
        }
    }

    deinit { close() }

    /// Removes what crashed AF_XDP captures left on this node; one line per removal.
    @discardableResult
    public static func removeLeftovers() -> [String] { XDPMirror.sweepLeftovers() }

    private static func monotonicMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
