import CAFPacket
import CPcap
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Live capture through Linux AF_PACKET with a TPACKET_V3 memory-mapped ring:
/// the kernel fills blocks of packets, we read them in place and hand each
/// block back, with no copy and no system call per packet.
///
/// The filter (tcpdump syntax, compiled by libpcap) is attached before the
/// socket is bound, so not one unfiltered packet reaches the ring (in cooked
/// mode, `any`, it runs in user space: see `attach`). Several interfaces share
/// one socket bound to all of them with a kernel test of the ifindex. At stop,
/// the block the kernel is still filling is waited for (it retires after
/// `retireTimeoutMs`), so every packet handed over before the stop is read.
public final class AFPacketBackend: CaptureBackend {
    /// Ring geometry and behaviour.
    public struct Options: Sendable {
        public var blockSizeBytes: UInt32 = 4 << 20
        public var blockCount: UInt32 = 8
        /// A block that is not full is handed over after this long.
        public var retireTimeoutMs: UInt32 = 50
        /// How long one read waits for a block before reporting a timeout.
        public var pollTimeoutMs: Int32 = 100
        public var filter: String?
        /// Bytes kept of each packet (tcpdump's `-s`): the kernel cuts them (the
        /// filter's accept value); in cooked mode they are cut here.
        public var snapLength: UInt32 = 262_144
        /// Puts the named interfaces in promiscuous mode while capturing (not `any`).
        public var promiscuous = false
        /// Join this PACKET_FANOUT group (hash mode), so several readers share the traffic.
        public var fanoutGroup: UInt16?
        public init() {}
    }

    public let name = "af_packet"
    /// DLT_EN10MB for Ethernet-like interfaces; DLT_LINUX_SLL2 for `any`, or when
    /// one of several interfaces is not Ethernet-like (tcpdump -i any does the same).
    public let linkType: Int32
    private var fd: Int32 = -1
    private var ring: UnsafeMutableRawPointer?
    private let options: Options
    private var block = 0
    private var packetInBlock: UInt32 = 0
    private var offsetInBlock = 0
    /// How far into the current block cache lines were asked for.
    private var prefetchedTo = 0
    /// Measured on the capture benchmark: 4 KiB ahead, every line, cost 0.047-0.057 CPU
    /// s/Mpkt against 0.080-0.087 without (1, 2, 8 and 16 KiB, or every other line, did no better).
    private static let prefetchDistance = 4096
    private var stats = CaptureStatistics()
    private let stopRequested = Atomic<Bool>(false)
    private let interface: String
    /// Cooked mode: each packet is rewritten as SLL2 in place.
    private let cooked: Bool
    /// A filter the kernel cannot run (cooked mode), run here on each packet.
    private var userProgram = bpf_program()
    private var hasUserProgram = false

    /// Opens the ring on `interface` (an Ethernet-like interface, loopback included, or `any`).
    public convenience init(interface: String, options: Options = Options()) throws(CaptureError) {
        try self.init(interfaces: [interface], options: options)
    }

    /// Opens one ring for several interfaces, or for `any`: the socket is bound to
    /// every interface (ifindex 0) and, for named ones, a kernel filter keeps only
    /// theirs (SKF_AD_IFINDEX) before the user's filter.
    public init(interfaces: [String], options: Options = Options()) throws(CaptureError) {
        self.interface = interfaces.joined(separator: ",")
        self.names = interfaces.filter { $0 != "any" }
        self.options = options
        guard !interfaces.isEmpty else { throw CaptureError(.interfaceMissing, "af_packet: no interface given") }
        try Self.validate(options)
        let any = interfaces.contains("any")
        if any && interfaces.count > 1 {
            throw CaptureError(.other, "af_packet: 'any' already means every interface; give it alone")
        }
        var indices: [Int32] = []
        var allEthernet = true
        for name in interfaces where name != "any" {
            let ifindex = Int32(bitPattern: if_nametoindex(name))
            guard ifindex > 0 else {
                throw CaptureError(.interfaceMissing, "af_packet: no interface named \(name)")
            }
            indices.append(ifindex)
            let hardware = ks_afp_hardware_type(name)
            // ARPHRD_ETHER (1) and ARPHRD_LOOPBACK (772) deliver Ethernet framing.
            if hardware != 1 && hardware != 772 { allEthernet = false }
        }
        if interfaces.count == 1 && !any && !allEthernet {
            throw CaptureError(.other, "af_packet: \(interfaces[0]) is not an Ethernet-like interface (ARPHRD \(ks_afp_hardware_type(interfaces[0]))); use --capture libpcap")
        }
        cooked = any || !allEthernet
        linkType = cooked ? 276 : 1  // DLT_LINUX_SLL2 : DLT_EN10MB
        if options.promiscuous && any {
            throw CaptureError(.other, "af_packet: promiscuous mode is not supported on 'any'; name the interfaces")
        }
        if indices.count > 255 {
            throw CaptureError(.other, "af_packet: at most 255 named interfaces per socket; use 'any' with a filter")
        }
        let socket = ks_afp_socket()
        guard socket >= 0 else {
            if -socket == EPERM || -socket == EACCES {
                throw CaptureError(.permission, "af_packet on \(interface): permission denied (needs root or CAP_NET_RAW)")
            }
            throw CaptureError(.other, "af_packet: cannot open a packet socket: \(String(cString: strerror(-socket)))")
        }
        fd = socket
        if cooked {
            let r = ks_afp_set_reserve(fd, 32)
            guard r == 0 else {
                close()
                throw CaptureError(.other, "af_packet: cannot reserve headroom: \(String(cString: strerror(-r)))")
            }
        }
        var mapped: UnsafeMutableRawPointer?
        let rc = ks_afp_setup_ring(fd, options.blockSizeBytes, options.blockCount, 2048, options.retireTimeoutMs, &mapped)
        guard rc == 0, let mapped else {
            close()
            throw CaptureError(.other, "af_packet: cannot map a TPACKET_V3 ring of \(options.blockCount) x \(options.blockSizeBytes) bytes: \(String(cString: strerror(-rc)))")
        }
        ring = mapped
        do {
            try attach(filter: options.filter, interfaces: any || interfaces.count == 1 ? [] : indices)
        } catch {
            close()
            throw error
        }
        let b = ks_afp_bind(fd, interfaces.count == 1 && !any ? indices[0] : 0)
        guard b == 0 else {
            close()
            throw CaptureError(.other, "af_packet: cannot bind to \(interface): \(String(cString: strerror(-b)))")
        }
        if options.promiscuous {
            for (name, index) in zip(names, indices) {
                let p = ks_afp_promiscuous(fd, index)
                guard p == 0 else {
                    close()
                    throw CaptureError(.other, "af_packet: cannot put \(name) in promiscuous mode: \(String(cString: strerror(-p)))")
                }
            }
        }
        // The kernel takes a socket into a fanout group only once it is bound.
        if let group = options.fanoutGroup {
            let f = ks_afp_fanout(fd, group)
            guard f == 0 else {
                close()
                throw CaptureError(.other, "af_packet: cannot join fanout group \(group): \(String(cString: strerror(-f)))")
            }
        }
    }

    /// Checks the ring's geometry as the kernel will (TPACKET_V3 blocks are whole
    /// pages holding whole 2 KiB frames), so a bad value fails with its name.
    static func validate(_ options: Options) throws(CaptureError) {
        let page = UInt32(sysconf(Int32(_SC_PAGESIZE)))
        let size = options.blockSizeBytes
        guard size >= 4096, size % page == 0, size % 2048 == 0, size <= 1 << 30 else {
            throw CaptureError(.other, "af_packet: block size \(size) must be a multiple of the page size (\(page) bytes), at least 4 KiB and at most 1 GiB")
        }
        guard options.blockCount >= 2, UInt64(options.blockCount) * UInt64(size) <= 16 << 30 else {
            throw CaptureError(.other, "af_packet: \(options.blockCount) blocks of \(size) bytes: give at least 2 blocks and at most 16 GiB in all")
        }
        guard options.retireTimeoutMs >= 1, options.retireTimeoutMs <= 60_000 else {
            throw CaptureError(.other, "af_packet: block timeout \(options.retireTimeoutMs) ms must be between 1 and 60000")
        }
        guard options.snapLength >= 64 else {
            throw CaptureError(.other, "af_packet: snap length \(options.snapLength) is below 64 bytes")
        }
    }

    /// Compiles `filter` with libpcap's compiler (tcpdump syntax) and attaches it,
    /// behind a test of the receiving interface when `interfaces` is not empty. In
    /// cooked mode the kernel sees the packet without the SLL2 header the filter
    /// expects, so the filter runs in user space instead (and counts `filtered`).
    private func attach(filter: String?, interfaces: [Int32]) throws(CaptureError) {
        var code: [bpf_insn] = []
        if !interfaces.isEmpty {
            // ld ifindex; jeq each -> accept part; ret 0; then the rest.
            code.append(bpf_insn(code: 0x20, jt: 0, jf: 0, k: 0xffff_f008))  // BPF_LD|BPF_W|BPF_ABS, SKF_AD_OFF+SKF_AD_IFINDEX
            for (i, index) in interfaces.enumerated() {
                code.append(bpf_insn(code: 0x15, jt: UInt8(interfaces.count - i), jf: 0, k: UInt32(bitPattern: index)))  // BPF_JMP|BPF_JEQ|BPF_K
            }
            code.append(bpf_insn(code: 0x06, jt: 0, jf: 0, k: 0))  // BPF_RET|BPF_K: drop
        }
        if let filter, !filter.isEmpty {
            guard let dead = pcap_open_dead(linkType, Int32(min(options.snapLength, 262_144))) else {
                throw CaptureError(.filter, "af_packet: libpcap cannot compile filters here")
            }
            defer { pcap_close(dead) }
            var program = bpf_program()
            guard pcap_compile(dead, &program, filter, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
                throw CaptureError(.filter, "bad capture filter '\(filter)': \(String(cString: pcap_geterr(dead)))")
            }
            if cooked {
                userProgram = program
                hasUserProgram = true
            } else {
                defer { pcap_freecode(&program) }
                code += UnsafeBufferPointer(start: program.bf_insns, count: Int(program.bf_len))
            }
        }
        let cutsHere = !cooked && options.snapLength < 262_144
        if code.isEmpty && !cutsHere { return }
        if code.count == (interfaces.isEmpty ? 0 : interfaces.count + 2) {
            code.append(bpf_insn(code: 0x06, jt: 0, jf: 0, k: options.snapLength))  // accept, cut to the snap length
        }
        let rc = code.withUnsafeBufferPointer { ks_afp_attach_filter(fd, $0.baseAddress, UInt32($0.count)) }
        guard rc == 0 else {
            throw CaptureError(.filter, "af_packet: cannot attach filter '\(filter ?? "")': \(String(cString: strerror(-rc)))")
        }
    }

    private var blockAddress: UnsafeMutableRawPointer? {
        ring.map { $0 + block * Int(options.blockSizeBytes) }
    }

    /// Blocks read in the last call, handed back to the kernel at the next one, so
    /// the packets of a batch stay valid until then.
    private var heldBlocks: [UnsafeMutableRawPointer] = []
    private var stopDeadline: Int64?
    private var pastDeadline = false
    private var blocksAfterDeadline = 0
    /// The named interfaces (none for `any`), to notice one disappearing.
    private let names: [String]

    public var packetsValidUntilNextRead: Bool { true }

    private func releaseHeldBlocks() {
        for b in heldBlocks { ks_afp_block_release(b) }
        heldBlocks.removeAll(keepingCapacity: true)
    }

    public func read(maxPackets: Int, _ handler: (CapturedPacket) -> Void) throws(CaptureError) -> CaptureReadOutcome {
        guard fd >= 0 else { return .end }
        releaseHeldBlocks()
        var n = 0
        // At a stop, the block being filled is waited for (it retires within the
        // timeout) and everything ready is read; past that grace period no more is
        // waited for, and at most one ring's worth of blocks is still read, so the
        // capture ends even if traffic goes on.
        if stopRequested.load(ordering: .relaxed) {
            let now = monotonicMs()
            if stopDeadline == nil { stopDeadline = now + Int64(options.retireTimeoutMs) * 2 + 20 }
            if now >= stopDeadline! { pastDeadline = true }
            if pastDeadline && blocksAfterDeadline >= Int(options.blockCount) { return .end }
        }
        while n < maxPackets {
            guard let address = blockAddress else { return .end }
            // A block whose packets this call handed over is not read again (the ring wrapped).
            if heldBlocks.contains(address) { return .packets(n) }
            let status = ks_afp_block_status(address)
            if ks_afp_status_user(status) == 0 {
                if n > 0 { return .packets(n) }
                if stopRequested.load(ordering: .relaxed) {
                    let now = monotonicMs()
                    if stopDeadline == nil { stopDeadline = now + Int64(options.retireTimeoutMs) * 2 + 20 }
                    if pastDeadline || now >= stopDeadline! { return .end }
                    _ = ks_afp_poll(fd, Int32(max(1, min(Int64(options.retireTimeoutMs), stopDeadline! - now))))
                    continue
                }
                let rc = ks_afp_poll(fd, options.pollTimeoutMs)
                if rc < 0 && -rc != EINTR {
                    throw CaptureError(.other, "af_packet on \(interface) failed: \(String(cString: strerror(-rc)))")
                }
                // A deleted interface makes poll report an error (or go quiet) with no
                // block to read: say so rather than spin or wait for ever.
                let idle = rc == 0 || ks_afp_status_user(ks_afp_block_status(address)) == 0
                if idle {
                    let gone = names.filter { if_nametoindex($0) == 0 }
                    if !gone.isEmpty {
                        throw CaptureError(.interfaceMissing, "af_packet: interface \(gone.joined(separator: ", ")) is gone")
                    }
                }
                if rc == 0 && !stopRequested.load(ordering: .relaxed) { return .timeout }
                continue
            }
            let count = ks_afp_block_packets(address)
            if packetInBlock == 0 { offsetInBlock = Int(ks_afp_block_first(address)) }
            let before = n
            while packetInBlock < count && n < maxPackets {
                // Keep the next few KiB of the block on their way into the cache.
                let ahead = min(offsetInBlock + Self.prefetchDistance, Int(options.blockSizeBytes))
                if prefetchedTo < ahead {
                    let from = max(prefetchedTo, offsetInBlock)
                    ks_afp_prefetch(address + from, ahead - from)
                    prefetchedTo = ahead
                }
                let header = address + offsetInBlock
                let p = ks_afp_packet_at(header)
                packetInBlock += 1
                offsetInBlock += Int(p.next_offset)
                var start = Int(p.mac)
                var caplen = p.snaplen
                var wire = p.len
                if cooked {
                    start = Int(ks_afp_to_sll2(header, &caplen, &wire))
                    caplen = min(caplen, options.snapLength)
                    if hasUserProgram {
                        let bytes = (header + start).assumingMemoryBound(to: UInt8.self)
                        if bpf_filter(userProgram.bf_insns, bytes, wire, caplen) == 0 {
                            stats.filtered &+= 1
                            continue
                        }
                    }
                }
                stats.received &+= 1
                stats.bytes &+= UInt64(caplen)
                handler(CapturedPacket(
                    timestampNs: Int64(p.sec) * 1_000_000_000 + Int64(p.nsec),
                    data: UnsafeRawBufferPointer(start: header + start, count: Int(caplen)),
                    wireLength: Int(wire), linkType: linkType))
                n += 1
            }
            if packetInBlock >= count {
                // Kept until the next read only when this call handed some of its packets over.
                if n > before { heldBlocks.append(address) } else { ks_afp_block_release(address) }
                if pastDeadline { blocksAfterDeadline += 1 }
                block = (block + 1) % Int(options.blockCount)
                packetInBlock = 0
                offsetInBlock = 0
                prefetchedTo = 0
            }
        }
        return .packets(n)
    }

    public var statistics: CaptureStatistics {
        var packets: UInt32 = 0
        var drops: UInt32 = 0
        if fd >= 0, ks_afp_stats(fd, &packets, &drops) == 0 {
            kernelDrops &+= UInt64(drops)
        }
        var s = stats
        s.droppedByKernel = kernelDrops
        return s
    }
    private var kernelDrops: UInt64 = 0

    public func breakLoop() {
        stopRequested.store(true, ordering: .relaxed)
    }

    public func close() {
        if ring != nil { releaseHeldBlocks() }
        if hasUserProgram {
            pcap_freecode(&userProgram)
            hasUserProgram = false
        }
        if let ring {
            _ = ks_afp_unmap(ring, Int(options.blockSizeBytes) * Int(options.blockCount))
        }
        ring = nil
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    deinit { close() }

    private func monotonicMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
