/// The packets of a ring for an export, in order: a time range of everything
/// (`kubeshark pcapdump`), or one flow (the pcap of an entry's stream), in
/// which case the packets a session retained from flushed segments come first.
public final class RingPacketSource {
    public let linkType: Int32
    private let fromNs: Int64?
    private let toNs: Int64?
    private let flow: FlowHash?
    private var retained: SegmentFileReader?
    private var classifier = FlowClassifier()
    private let ring: RingReader

    public init(catalogue: RingCatalogue, fromNs: Int64? = nil, toNs: Int64? = nil, flow: FlowHash? = nil,
                retained: RetentionStore? = nil) {
        linkType = catalogue.linkType
        self.fromNs = fromNs
        self.toNs = toNs
        self.flow = flow
        if let retained, flow != nil { self.retained = try? SegmentFileReader(path: retained.path) }
        ring = RingReader(catalogue: catalogue, fromNs: fromNs, toNs: toNs, flow: flow)
    }

    /// Hands up to `maxPackets` packets to `handler`; `false` once there are no more.
    public func read(maxPackets: Int, _ handler: (CapturedPacket) -> Void) -> Bool {
        if let reader = retained {
            var n = 0
            while n < maxPackets {
                guard case .packet(let p) = reader.next(limit: Int64.max) else {
                    retained = nil
                    break
                }
                if let fromNs, p.timestampNs < fromNs { continue }
                if let toNs, p.timestampNs > toNs { continue }
                guard classifier.flow(of: p) == flow else { continue }
                handler(p)
                n += 1
            }
            if n > 0 { return true }
        }
        guard let outcome = try? ring.read(maxPackets: maxPackets, handler) else { return false }
        return outcome != .end
    }
}

/// Writes a ring's packets out as one pcap file.
public enum RingExport {
    /// - Returns: the number of packets written.
    @discardableResult
    public static func write(
        to path: String, catalogue: RingCatalogue, fromNs: Int64? = nil, toNs: Int64? = nil,
        flow: FlowHash? = nil, retained: RetentionStore? = nil
    ) throws(RingError) -> Int {
        let writer: PcapWriter
        do { writer = try PcapWriter(path: path, linkType: catalogue.linkType) } catch {
            throw .configuration(error.message)
        }
        let source = RingPacketSource(catalogue: catalogue, fromNs: fromNs, toNs: toNs, flow: flow, retained: retained)
        var written = 0
        while source.read(maxPackets: 512, { writer.write($0); written += 1 }) {}
        if let failure = writer.close() { throw .configuration(failure) }
        return written
    }
}

extension PcapFormat {
    /// A pcap file header as a public helper for streaming exports.
    public static func header(linkType: Int32) -> [UInt8] { fileHeader(linkType: linkType) }

    /// Appends one packet as a pcap record to `out`.
    public static func appendRecord(_ packet: CapturedPacket, to out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: recordHeaderSize))
        out.withUnsafeMutableBytes { raw in
            storeRecordHeader(into: raw.baseAddress! + start, timestampNs: packet.timestampNs,
                              capturedLength: packet.data.count, wireLength: packet.wireLength)
        }
        out.append(contentsOf: packet.data)
    }
}
