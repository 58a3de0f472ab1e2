import ArgumentParser
import Host

#if canImport(Glibc)
import Glibc
#endif

struct Capture: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Capture packets on interfaces into a pcap file, and print the capture statistics.")

    @Option(name: [.short, .customLong("interface")],
            help: "Interface to capture on (repeat, or a comma list, for several; 'any' for all with af_packet or libpcap).")
    var interface: [String]

    @OptionGroup var live: LiveCaptureOptions

    @Option(name: .customLong("filter"), help: "BPF capture filter (tcpdump syntax).")
    var filter: String?

    @Option(name: .short, help: "Write packets to this pcap file.")
    var w: String?

    @Option(name: [.short, .customLong("count")], help: "Stop after this many packets.")
    var count: Int?

    @Option(name: .customLong("duration"), help: "Stop after this many seconds.")
    var duration: Double?

    func run() throws {
        let interfaces = LiveCapture.interfaces(interface)
        let source: CaptureBackend
        do {
            source = try LiveCapture.open(interfaces, options: live, filter: filter)
        } catch {
            throw fail(error.message)
        }
        var writer: PcapWriter?
        if let w {
            do { writer = try PcapWriter(path: w, linkType: source.linkType, snapLength: Int32(live.snapLength)) } catch {
                source.close()
                throw fail(error.message)
            }
        }
        let label = interfaces.joined(separator: ",")
        LiveStop.install(source, interface: label)
        var start = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        var seen = 0
        var failure: String?
        // Locals, not the parsed properties: their getters cost per batch at high rates.
        let count = self.count
        let duration = self.duration
        let gather = source.packetsValidUntilNextRead
        loop: while true {
            if let count, seen >= count { break }
            if let duration {
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                if Double(now.tv_sec - start.tv_sec) + Double(now.tv_nsec - start.tv_nsec) / 1e9 >= duration {
                    source.breakLoop()
                }
            }
            let limit = count.map { $0 - seen } ?? 256
            do {
                let outcome: CaptureReadOutcome
                if gather, let writer {
                    // The batch stays valid until the next read: one writev, no copy.
                    outcome = try source.read(maxPackets: min(limit, 256)) { packet in
                        writer.gather(packet)
                        seen += 1
                    }
                    writer.commit()
                } else {
                    outcome = try source.read(maxPackets: min(limit, 256)) { packet in
                        writer?.write(packet)
                        seen += 1
                    }
                }
                switch outcome {
                case .end: break loop
                case .packets, .timeout: continue
                }
            } catch {
                failure = error.message
                break loop
            }
        }
        if let problem = writer?.close() { failure = failure ?? problem }
        let s = source.statistics
        warn("\(source.name) on \(label): \(s.received) packets received, \(s.droppedByKernel) dropped by kernel, "
            + "\(s.droppedByUs) dropped by us, \(s.filtered) filtered"
            + "\(writer.map { ", \($0.written) written to \($0.path)" } ?? "")")
        if let xdp = source as? AFXDPBackend, s.droppedByKernel > 0 {
            let x = xdp.xdpStatistics
            warn("af_xdp drops: rx_dropped \(x.rxDropped), rx_ring_full \(x.rxRingFull), "
                + "rx_fill_ring_empty_descs \(x.fillRingEmpty), rx_invalid_descs \(x.invalid)")
        }
        source.close()
        if let failure { throw fail(failure) }
    }
}

/// Backend choice and tuning shared by `capture` and `dissect -i`.
struct LiveCaptureOptions: ParsableArguments {
    @Option(name: .customLong("capture"),
            help: "Backend: af_packet (TPACKET_V3 ring), af_xdp (XSK sockets on a tc mirror), libpcap, or auto (af_xdp, else af_packet, else libpcap); default: af_packet.")
    var chosenBackend: CaptureBackendChoice?

    /// The backend asked for, af_packet by default.
    var backend: CaptureBackendChoice { chosenBackend ?? .afPacket }

    @Option(name: .customLong("xdp-mode"), help: "af_xdp: native (driver) or generic (SKB) XDP; auto takes native where it attaches.")
    var xdpMode: XDPModeChoice = .auto

    @Flag(name: .customLong("xdp-zero-copy"), help: "af_xdp: ask for zero-copy (drivers with it only; not veth).")
    var xdpZeroCopy = false

    @Option(name: .customLong("xdp-queues"), help: "af_xdp: RX queues of the mirror, one XSK socket each.")
    var xdpQueues: Int = 1

    @Option(name: .customLong("fanout"), help: "af_packet: this many sockets in one PACKET_FANOUT group, each read by its own thread.")
    var fanout: Int = 1

    @Option(name: .customLong("snaplen"), help: "Bytes kept of each packet, as tcpdump's -s (64 to 262144).")
    var snapLength: Int = 262_144

    @Flag(name: .customLong("promisc"),
          help: "libpcap, af_packet: put the interfaces in promiscuous mode while capturing (off by default: pods' veths see their own traffic without it).")
    var promiscuous = false

    @Flag(name: .customLong("immediate"),
          help: "libpcap: immediate mode, each packet as it comes (more wake-ups; libpcap then uses small TPACKET_V2 slots and loses packets at high rates).")
    var immediate = false

    @Option(name: .customLong("buffer-size"),
            help: "libpcap, af_packet: capture buffer memory, a quantity (32Mi); af_packet splits it into --block-size blocks.")
    var bufferSize = "32Mi"

    @Option(name: .customLong("block-size"), help: "af_packet: TPACKET_V3 block size, a multiple of the page size (4Mi).")
    var blockSize = "4Mi"

    @Option(name: .customLong("block-count"), help: "af_packet: blocks in the ring (default: --buffer-size / --block-size).")
    var blockCount: Int?

    @Option(name: .customLong("block-timeout"), help: "af_packet: a block that is not full is handed over after this many milliseconds.")
    var blockTimeoutMs = 50

    func validate() throws {
        if xdpQueues < 1 || xdpQueues > 64 { throw ValidationError("--xdp-queues must be between 1 and 64") }
        if fanout < 1 || fanout > 64 { throw ValidationError("--fanout must be between 1 and 64") }
        if snapLength < 64 || snapLength > 262_144 { throw ValidationError("--snaplen must be between 64 and 262144") }
        guard let buffer = StorageQuantity(bufferSize), buffer.bytes >= 1 << 20, buffer.bytes <= 16 << 30 else {
            throw ValidationError("--buffer-size: '\(bufferSize)' is not a quantity between 1Mi and 16Gi")
        }
        guard let block = StorageQuantity(blockSize), block.bytes >= 4096, block.bytes <= 1 << 30 else {
            throw ValidationError("--block-size: '\(blockSize)' is not a quantity between 4Ki and 1Gi")
        }
        if let blockCount, blockCount < 2 || blockCount > 65_536 {
            throw ValidationError("--block-count must be between 2 and 65536")
        }
        if blockTimeoutMs < 1 || blockTimeoutMs > 60_000 { throw ValidationError("--block-timeout must be between 1 and 60000 ms") }
    }

    /// The AF_PACKET ring these options ask for (sizes checked by `validate()`).
    var afPacketOptions: AFPacketBackend.Options {
        var o = AFPacketBackend.Options()
        let block = StorageQuantity(blockSize)?.bytes ?? Int64(o.blockSizeBytes)
        let buffer = StorageQuantity(bufferSize)?.bytes ?? 32 << 20
        o.blockSizeBytes = UInt32(block)
        o.blockCount = UInt32(blockCount ?? Int(max(2, buffer / block)))
        o.retireTimeoutMs = UInt32(blockTimeoutMs)
        o.snapLength = UInt32(snapLength)
        o.promiscuous = promiscuous
        return o
    }
}

enum XDPModeChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, native, generic
}

/// Opening live backends, shared by `capture` and `dissect -i`.
enum LiveCapture {
    /// `-i a -i b,c` -> [a, b, c], without repeats.
    static func interfaces(_ raw: [String]) -> [String] {
        var seen: [String] = []
        for name in raw.flatMap({ $0.split(separator: ",").map { String($0).trimmingSpaces } }) where !name.isEmpty {
            if !seen.contains(name) { seen.append(name) }
        }
        return seen
    }

    static func open(_ interfaces: [String], options: LiveCaptureOptions, filter: String?) throws(CaptureError)
        -> CaptureBackend
    {
        // What a crashed AF_XDP capture left on this node goes first, whatever the backend.
        for line in AFXDPBackend.removeLeftovers() { warn(line) }
        return try open(interfaces, backend: options.backend, options: options, filter: filter)
    }

    private static func open(_ interfaces: [String], backend: CaptureBackendChoice, options: LiveCaptureOptions,
                             filter: String?) throws(CaptureError) -> CaptureBackend {
        switch backend {
        case .libpcap:
            guard interfaces.count == 1 else {
                throw CaptureError(.other, "libpcap captures one interface (or 'any'); use --capture af_packet for several")
            }
            var o = LibpcapBackend.LiveOptions()
            o.filter = filter
            o.snapLength = Int32(options.snapLength)
            o.promiscuous = options.promiscuous
            o.immediate = options.immediate
            o.bufferSizeBytes = Int32(clamping: StorageQuantity(options.bufferSize)?.bytes ?? Int64(o.bufferSizeBytes))
            return try LibpcapBackend(interface: interfaces[0], options: o)
        case .afPacket:
            var o = options.afPacketOptions
            o.filter = filter
            if options.fanout > 1 {
                return try FanoutCapture(interfaces: interfaces, readers: options.fanout, options: o)
            }
            return try AFPacketBackend(interfaces: interfaces, options: o)
        case .afXDP:
            var o = AFXDPBackend.Options()
            o.filter = filter
            o.mode = AFXDPBackend.Mode(rawValue: options.xdpMode.rawValue) ?? .auto
            o.zeroCopy = options.xdpZeroCopy
            o.queues = options.xdpQueues
            o.snapLength = UInt32(options.snapLength)
            if options.promiscuous {
                throw CaptureError(.other, "af_xdp: --promisc is not supported (the mirror copies what the interfaces' stack receives); use --capture af_packet or libpcap")
            }
            let b = try AFXDPBackend(interfaces: interfaces, options: o)
            warn("af_xdp: \(b.mode.rawValue) mode, mirror \(b.mirrorInterfaces.mirror) -> \(b.mirrorInterfaces.peer)")
            return b
        case .auto:
            // A bad filter or a missing interface fails the same way everywhere,
            // so only other failures fall through to the next backend.
            var reasons: [String] = []
            for candidate in [CaptureBackendChoice.afXDP, .afPacket, .libpcap] {
                do {
                    let b = try open(interfaces, backend: candidate, options: options, filter: filter)
                    warn("auto: took \(candidate.rawValue)" + (reasons.isEmpty ? "" : " (\(reasons.joined(separator: "; ")))"))
                    return b
                } catch where error.kind == .filter || error.kind == .interfaceMissing || candidate == .libpcap {
                    throw error
                } catch {
                    reasons.append("\(candidate.rawValue) skipped: \(error.message)")
                    warn("auto: \(candidate.rawValue) unavailable (\(error.message)); trying \(candidate == .afXDP ? "af_packet" : "libpcap")")
                }
            }
            throw CaptureError(.other, "no capture backend starts here")
        }
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
