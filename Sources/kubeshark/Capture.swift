import ArgumentParser
import Host

#if canImport(Glibc)
import Glibc
#endif

struct Capture: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Capture packets on an interface into a pcap file, and print the capture statistics.")

    @Option(name: [.short, .customLong("interface")], help: "Interface to capture on.")
    var interface: String

    @Option(name: .customLong("capture"), help: "Backend: af_packet (TPACKET_V3 ring), libpcap, or auto (the first that starts).")
    var backend: CaptureBackendChoice = .afPacket

    @Option(name: .customLong("filter"), help: "BPF capture filter (tcpdump syntax).")
    var filter: String?

    @Option(name: .short, help: "Write packets to this pcap file.")
    var w: String?

    @Option(name: [.short, .customLong("count")], help: "Stop after this many packets.")
    var count: Int?

    @Option(name: .customLong("duration"), help: "Stop after this many seconds.")
    var duration: Double?

    func run() throws {
        let source: CaptureBackend
        do {
            source = try LiveCapture.open(interface, backend: backend, filter: filter)
        } catch {
            throw fail(error.message)
        }
        var writer: PcapWriter?
        if let w {
            do { writer = try PcapWriter(path: w, linkType: source.linkType) } catch { throw fail(error.message) }
        }
        LiveStop.install(source, interface: interface)
        var start = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        var seen = 0
        var failure: String?
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
                switch try source.read(maxPackets: min(limit, 256), { packet in
                    writer?.write(packet)
                    seen += 1
                }) {
                case .end: break loop
                case .packets, .timeout: continue
                }
            } catch {
                failure = error.message
                break
            }
        }
        if let problem = writer?.close() { failure = failure ?? problem }
        let s = source.statistics
        warn("\(source.name) on \(interface): \(s.received) packets received, \(s.droppedByKernel) dropped by kernel, "
            + "\(s.droppedByUs) dropped by us\(writer.map { ", \($0.written) written to \($0.path)" } ?? "")")
        source.close()
        if let failure { throw fail(failure) }
    }
}

/// Opening live backends, shared by `capture` and `dissect -i`.
enum LiveCapture {
    static func open(_ interface: String, backend: CaptureBackendChoice, filter: String?) throws(CaptureError)
        -> CaptureBackend
    {
        switch backend {
        case .libpcap:
            var options = LibpcapBackend.LiveOptions()
            options.filter = filter
            return try LibpcapBackend(interface: interface, options: options)
        case .afPacket:
            var options = AFPacketBackend.Options()
            options.filter = filter
            return try AFPacketBackend(interface: interface, options: options)
        case .auto:
            // AF_XDP comes first once it exists; a bad filter or a missing interface
            // fails the same way everywhere, so only other failures fall through.
            do {
                return try open(interface, backend: .afPacket, filter: filter)
            } catch where error.kind == .filter || error.kind == .interfaceMissing {
                throw error
            } catch {
                warn("auto: af_packet unavailable (\(error.message)); trying libpcap")
                return try open(interface, backend: .libpcap, filter: filter)
            }
        }
    }
}
