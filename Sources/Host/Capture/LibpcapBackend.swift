import CPcap
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Packets through libpcap: capture files (pcap and pcapng, read streaming, never
/// loaded whole) and live interfaces.
public final class LibpcapBackend: CaptureBackend {
    public let name: String
    public let linkType: Int32
    private var handle: OpaquePointer?
    private let isFile: Bool
    private let path: String
    private var stats = CaptureStatistics()
    private var nanosecondPrecision: Bool
    /// Set by `breakLoop`. libpcap clears its own break flag when a read returns
    /// it, so a break that lands while a batch is half-read would otherwise be lost.
    private let stopRequested = Atomic<Bool>(false)
    /// For live capture: the descriptor to poll and how long one read waits.
    private var selectable: Int32 = -1
    private var pollTimeoutMs: Int32 = 100
    private var immediate = true
    private var stopDeadline: Int64?
    private var pastDeadline = false
    private var readAfterDeadline = 0
    private var bufferSize: Int32 = 8 << 20

    /// Options for live capture.
    public struct LiveOptions: Sendable {
        public var snapLength: Int32 = 262_144
        public var promiscuous = false
        /// Immediate mode makes libpcap use TPACKET_V2 with one frame per snap length
        /// (on interfaces with offloads, 256 KiB each): a few dozen slots, and heavy
        /// loss at high rates. Off by default, as in tcpdump; blocks are handed over
        /// within `timeoutMs` and the last one is waited for at stop.
        public var immediate = false
        /// 32 MiB, the memory of the AF_PACKET ring.
        public var bufferSizeBytes: Int32 = 32 << 20
        public var timeoutMs: Int32 = 100
        public var filter: String?
        public init() {}
    }

    /// Opens a pcap or pcapng file for streaming reads.
    public init(file path: String) throws(CaptureError) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let reason = String(cString: strerror(errno))
            throw CaptureError(errno == ENOENT ? .notFound : .other, "cannot open \(path): \(reason)")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG || (st.st_mode & S_IFMT) == S_IFIFO else {
            throw CaptureError(.notACapture, "\(path) is not a regular file")
        }
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        guard let h = pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errbuf) else {
            let reason = errorText(errbuf)
            let kind: CaptureError.Kind = reason.contains("truncated") ? .truncated : .notACapture
            throw CaptureError(kind, "\(path) is not a readable pcap/pcapng capture: \(reason)")
        }
        handle = h
        isFile = true
        self.path = path
        name = "pcap-file"
        linkType = pcap_datalink(h)
        nanosecondPrecision = pcap_get_tstamp_precision(h) == PCAP_TSTAMP_PRECISION_NANO
    }

    /// Opens a live capture on `interface` ("any" for every interface).
    public init(interface: String, options: LiveOptions = LiveOptions()) throws(CaptureError) {
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        guard let h = pcap_create(interface, &errbuf) else {
            throw CaptureError(.other, "libpcap cannot open \(interface): \(errorText(errbuf))")
        }
        pcap_set_snaplen(h, options.snapLength)
        pcap_set_promisc(h, options.promiscuous ? 1 : 0)
        pcap_set_timeout(h, options.timeoutMs)
        pcap_set_buffer_size(h, options.bufferSizeBytes)
        if options.immediate { pcap_set_immediate_mode(h, 1) }
        pcap_set_tstamp_precision(h, Int32(PCAP_TSTAMP_PRECISION_NANO))
        let status = pcap_activate(h)
        if status < 0 {
            let detail = String(cString: pcap_geterr(h))
            pcap_close(h)
            switch status {
            case PCAP_ERROR_PERM_DENIED:
                throw CaptureError(.permission,
                    "libpcap on \(interface): permission denied (needs root or CAP_NET_RAW and CAP_NET_ADMIN): \(detail)")
            case PCAP_ERROR_NO_SUCH_DEVICE:
                throw CaptureError(.interfaceMissing, "libpcap: no interface named \(interface): \(detail)")
            default:
                throw CaptureError(.other, "libpcap cannot capture on \(interface): \(detail)")
            }
        }
        // Non-blocking, with our own poll below: in immediate mode a blocking read
        // would wait forever for a packet, and a stop or a deadline could not be seen.
        var nbErr = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        _ = pcap_setnonblock(h, 1, &nbErr)
        selectable = pcap_get_selectable_fd(h)
        pollTimeoutMs = options.timeoutMs
        immediate = options.immediate
        bufferSize = options.bufferSizeBytes
        handle = h
        isFile = false
        path = interface
        name = "libpcap"
        linkType = pcap_datalink(h)
        nanosecondPrecision = pcap_get_tstamp_precision(h) == PCAP_TSTAMP_PRECISION_NANO
        if let filter = options.filter, !filter.isEmpty {
            try setFilter(filter)
        }
    }

    /// Compiles and installs a BPF filter (tcpdump syntax).
    public func setFilter(_ expression: String) throws(CaptureError) {
        guard let h = handle else { return }
        var program = bpf_program()
        guard pcap_compile(h, &program, expression, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            throw CaptureError(.filter, "bad capture filter '\(expression)': \(String(cString: pcap_geterr(h)))")
        }
        defer { pcap_freecode(&program) }
        guard pcap_setfilter(h, &program) == 0 else {
            throw CaptureError(.filter, "cannot install filter '\(expression)': \(String(cString: pcap_geterr(h)))")
        }
    }

    public func read(maxPackets: Int, _ handler: (CapturedPacket) -> Void) throws(CaptureError) -> CaptureReadOutcome {
        guard let h = handle else { return .end }
        // After a stop request, what libpcap already holds is still read (it is
        // non-blocking), and only then is the end reported: nothing handed over is lost.
        var stopping = stopRequested.load(ordering: .relaxed)
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        var n = 0
        // At a stop, reading goes on for at most two timeouts (the block being
        // filled retires within one), then ends even if traffic goes on.
        if stopping && !isFile {
            let now = Self.monotonicMs()
            if stopDeadline == nil { stopDeadline = now + Int64(pollTimeoutMs) * 2 + 20 }
            if now >= stopDeadline! { pastDeadline = true }
            // Past the grace period, at most a buffer's worth more (64-byte packets).
            if pastDeadline && readAfterDeadline >= Int(bufferSize / 64) { return .end }
        }
        let scale: Int64 = nanosecondPrecision ? 1 : 1000
        while n < maxPackets {
            let rc = pcap_next_ex(h, &header, &data)
            switch rc {
            case 1:
                guard let header, let data else { continue }
                let hdr = header.pointee
                let ts = Int64(hdr.ts.tv_sec) * 1_000_000_000 + Int64(hdr.ts.tv_usec) * scale
                let caplen = Int(hdr.caplen)
                stats.received &+= 1
                stats.bytes &+= UInt64(caplen)
                handler(CapturedPacket(
                    timestampNs: ts, data: UnsafeRawBufferPointer(start: data, count: caplen),
                    wireLength: Int(hdr.len), linkType: linkType))
                n += 1
                if pastDeadline { readAfterDeadline += 1 }
            case 0:
                if n > 0 { return .packets(n) }
                if stopping {
                    // Not immediate: the block being filled retires within the timeout; read it.
                    guard !isFile, !immediate, selectable >= 0 else { return .end }
                    let now = Self.monotonicMs()
                    if stopDeadline == nil { stopDeadline = now + Int64(pollTimeoutMs) * 2 + 20 }
                    if pastDeadline || now >= stopDeadline! { return .end }
                    var p = pollfd(fd: selectable, events: Int16(POLLIN), revents: 0)
                    _ = poll(&p, 1, Int32(max(1, min(Int64(pollTimeoutMs), stopDeadline! - now))))
                    continue
                }
                guard selectable >= 0 else { return .timeout }
                var p = pollfd(fd: selectable, events: Int16(POLLIN), revents: 0)
                let ready = poll(&p, 1, pollTimeoutMs)
                stopping = stopRequested.load(ordering: .relaxed)
                if ready <= 0 && !stopping { return .timeout }
                continue
            case PCAP_ERROR_BREAK:
                // pcap_breakloop: drain what is left on the next calls, then end.
                stopping = true
                if n > 0 { return .packets(n) }
                if isFile { return .end }
                continue
            default:
                let reason = String(cString: pcap_geterr(h))
                if isFile {
                    throw CaptureError(.truncated, "\(path): capture is damaged after packet \(stats.received): \(reason)")
                }
                throw CaptureError(.other, "capture on \(path) failed: \(reason)")
            }
        }
        return .packets(n)
    }

    public var statistics: CaptureStatistics {
        var s = stats
        if !isFile, let h = handle {
            var ps = pcap_stat()
            if pcap_stats(h, &ps) == 0 {
                s.droppedByKernel = UInt64(ps.ps_drop) + UInt64(ps.ps_ifdrop)
            }
        }
        return s
    }

    public func breakLoop() {
        stopRequested.store(true, ordering: .relaxed)
        if let h = handle { pcap_breakloop(h) }
    }

    public func close() {
        if let h = handle { pcap_close(h) }
        handle = nil
    }

    deinit { close() }

    private static func monotonicMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// The text in a C error buffer.
private func errorText(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
