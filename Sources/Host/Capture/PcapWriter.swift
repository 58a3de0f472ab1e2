import CPcap

/// Writes packets to a pcap file (nanosecond timestamps) through libpcap, so
/// tcpdump and Wireshark read it.
public final class PcapWriter {
    private var dead: OpaquePointer?
    private var dumper: OpaquePointer?
    public let path: String
    public private(set) var written: UInt64 = 0

    /// Creates (or truncates) `path` for packets of `linkType` (DLT_*).
    public init(path: String, linkType: Int32, snapLength: Int32 = 262_144) throws(CaptureError) {
        self.path = path
        guard let d = pcap_open_dead_with_tstamp_precision(linkType, snapLength, UInt32(PCAP_TSTAMP_PRECISION_NANO)) else {
            throw CaptureError(.other, "cannot prepare a pcap writer for link type \(linkType)")
        }
        dead = d
        guard let out = pcap_dump_open(d, path) else {
            let reason = String(cString: pcap_geterr(d))
            pcap_close(d)
            dead = nil
            throw CaptureError(.other, "cannot write \(path): \(reason)")
        }
        dumper = out
    }

    /// Appends one packet.
    public func write(_ packet: CapturedPacket) {
        guard let dumper else { return }
        var header = pcap_pkthdr()
        header.ts.tv_sec = Int(packet.timestampNs / 1_000_000_000)
        // With nanosecond precision libpcap stores nanoseconds in tv_usec.
        header.ts.tv_usec = Int(packet.timestampNs % 1_000_000_000)
        header.caplen = UInt32(packet.data.count)
        header.len = UInt32(max(packet.wireLength, packet.data.count))
        let user = UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self)
        pcap_dump(user, &header, packet.data.baseAddress?.assumingMemoryBound(to: UInt8.self))
        written &+= 1
    }

    /// Flushes and closes the file; returns an error text if the disk refused.
    @discardableResult
    public func close() -> String? {
        var failure: String?
        if let dumper {
            if pcap_dump_flush(dumper) != 0 { failure = "cannot flush \(path) (disk full?)" }
            pcap_dump_close(dumper)
        }
        if let dead { pcap_close(dead) }
        dumper = nil
        dead = nil
        return failure
    }

    deinit { close() }
}
