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
/// socket is bound, so not one unfiltered packet reaches the ring. At stop,
/// the block the kernel is still filling is waited for (it retires after
/// `retireTimeoutMs`), so every packet handed over before the stop is read.
public final class AFPacketBackend: CaptureBackend {
    /// Ring geometry and behaviour.
    public struct Options: Sendable {
        public var blockSizeBytes: UInt32 = 1 << 20
        public var blockCount: UInt32 = 32
        /// A block that is not full is handed over after this long.
        public var retireTimeoutMs: UInt32 = 50
        /// How long one read waits for a block before reporting a timeout.
        public var pollTimeoutMs: Int32 = 100
        public var filter: String?
        /// Join this PACKET_FANOUT group (hash mode), so several readers share the traffic.
        public var fanoutGroup: UInt16?
        public init() {}
    }

    public let name = "af_packet"
    public let linkType: Int32 = 1  // DLT_EN10MB
    private var fd: Int32
    private var ring: UnsafeMutableRawPointer?
    private let options: Options
    private var block = 0
    private var packetInBlock: UInt32 = 0
    private var offsetInBlock = 0
    private var stats = CaptureStatistics()
    private let stopRequested = Atomic<Bool>(false)
    private let interface: String

    /// Opens the ring on `interface` (an Ethernet-like interface, loopback included).
    public init(interface: String, options: Options = Options()) throws(CaptureError) {
        self.interface = interface
        self.options = options
        guard interface != "any" else {
            throw CaptureError(.other, "af_packet: capturing on 'any' is not supported yet; name an interface or use --capture libpcap")
        }
        let ifindex = Int32(bitPattern: if_nametoindex(interface))
        guard ifindex > 0 else {
            throw CaptureError(.interfaceMissing, "af_packet: no interface named \(interface)")
        }
        let hardware = ks_afp_hardware_type(interface)
        // ARPHRD_ETHER (1) and ARPHRD_LOOPBACK (772) deliver Ethernet framing.
        guard hardware == 1 || hardware == 772 else {
            throw CaptureError(.other, "af_packet: \(interface) is not an Ethernet-like interface (ARPHRD \(hardware)); use --capture libpcap")
        }
        let socket = ks_afp_socket()
        guard socket >= 0 else {
            if -socket == EPERM || -socket == EACCES {
                throw CaptureError(.permission, "af_packet on \(interface): permission denied (needs root or CAP_NET_RAW)")
            }
            throw CaptureError(.other, "af_packet: cannot open a packet socket: \(String(cString: strerror(-socket)))")
        }
        fd = socket
        var mapped: UnsafeMutableRawPointer?
        let rc = ks_afp_setup_ring(fd, options.blockSizeBytes, options.blockCount, 2048, options.retireTimeoutMs, &mapped)
        guard rc == 0, let mapped else {
            close()
            throw CaptureError(.other, "af_packet: cannot map a TPACKET_V3 ring of \(options.blockCount) x \(options.blockSizeBytes) bytes: \(String(cString: strerror(-rc)))")
        }
        ring = mapped
        if let filter = options.filter, !filter.isEmpty {
            do { try attach(filter: filter) } catch {
                close()
                throw error
            }
        }
        if let group = options.fanoutGroup {
            let f = ks_afp_fanout(fd, group)
            guard f == 0 else {
                close()
                throw CaptureError(.other, "af_packet: cannot join fanout group \(group): \(String(cString: strerror(-f)))")
            }
        }
        let b = ks_afp_bind(fd, ifindex)
        guard b == 0 else {
            close()
            throw CaptureError(.other, "af_packet: cannot bind to \(interface): \(String(cString: strerror(-b)))")
        }
    }

    /// Compiles `filter` with libpcap's compiler (tcpdump syntax) and attaches it.
    private func attach(filter: String) throws(CaptureError) {
        guard let dead = pcap_open_dead(linkType, 262_144) else {
            throw CaptureError(.filter, "af_packet: libpcap cannot compile filters here")
        }
        defer { pcap_close(dead) }
        var program = bpf_program()
        guard pcap_compile(dead, &program, filter, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            throw CaptureError(.filter, "bad capture filter '\(filter)': \(String(cString: pcap_geterr(dead)))")
        }
        defer { pcap_freecode(&program) }
        let rc = ks_afp_attach_filter(fd, program.bf_insns, program.bf_len)
        guard rc == 0 else {
            throw CaptureError(.filter, "af_packet: cannot attach filter '\(filter)': \(String(cString: strerror(-rc)))")
        }
    }

    private var blockAddress: UnsafeMutableRawPointer? {
        ring.map { $0 + block * Int(options.blockSizeBytes) }
    }

    public func read(maxPackets: Int, _ handler: (CapturedPacket) -> Void) throws(CaptureError) -> CaptureReadOutcome {
        guard fd >= 0 else { return .end }
        var n = 0
        var drainDeadline: Int64?
        while n < maxPackets {
            guard let address = blockAddress else { return .end }
            let status = ks_afp_block_status(address)
            if ks_afp_status_user(status) == 0 {
                if n > 0 { return .packets(n) }
                if stopRequested.load(ordering: .relaxed) {
                    // Wait for the block being filled to retire, then stop.
                    let now = monotonicMs()
                    if drainDeadline == nil { drainDeadline = now + Int64(options.retireTimeoutMs) * 2 + 20 }
                    if now >= drainDeadline! { return .end }
                    _ = ks_afp_poll(fd, Int32(options.retireTimeoutMs))
                    continue
                }
                let rc = ks_afp_poll(fd, options.pollTimeoutMs)
                if rc < 0 && -rc != EINTR {
                    throw CaptureError(.other, "af_packet on \(interface) failed: \(String(cString: strerror(-rc)))")
                }
                if rc == 0 && !stopRequested.load(ordering: .relaxed) { return .timeout }
                continue
            }
            let count = ks_afp_block_packets(address)
            if packetInBlock == 0 { offsetInBlock = Int(ks_afp_block_first(address)) }
            while packetInBlock < count && n < maxPackets {
                let header = address + offsetInBlock
                let p = ks_afp_packet_at(header)
                stats.received &+= 1
                stats.bytes &+= UInt64(p.snaplen)
                handler(CapturedPacket(
                    timestampNs: Int64(p.sec) * 1_000_000_000 + Int64(p.nsec),
                    data: UnsafeRawBufferPointer(start: header + Int(p.mac), count: Int(p.snaplen)),
                    wireLength: Int(p.len), linkType: linkType))
                n += 1
                packetInBlock += 1
                offsetInBlock += Int(p.next_offset)
            }
            if packetInBlock >= count {
                ks_afp_block_release(address)
                block = (block + 1) % Int(options.blockCount)
                packetInBlock = 0
                offsetInBlock = 0
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
