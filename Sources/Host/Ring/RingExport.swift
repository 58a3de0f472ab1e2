/// Writes packets of a ring out as one pcap file: a time range of everything
/// (`kubeshark pcapdump`), or one flow (the pcap of an entry's stream), in
/// which case packets a session retained from flushed segments come first.
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
        var written = 0
        if let retained, let flow, let reader = try? SegmentFileReader(path: retained.path) {
            var classifier = FlowClassifier()
            while case .packet(let p) = reader.next(limit: Int64.max) {
                if let fromNs, p.timestampNs < fromNs { continue }
                if let toNs, p.timestampNs > toNs { continue }
                guard classifier.flow(of: p) == flow else { continue }
                writer.write(p)
                written += 1
            }
        }
        let reader = RingReader(catalogue: catalogue, fromNs: fromNs, toNs: toNs, flow: flow)
        while true {
            guard let outcome = try? reader.read(maxPackets: 512, { writer.write($0); written += 1 }),
                outcome != .end
            else { break }
        }
        if let failure = writer.close() { throw .configuration(failure) }
        return written
    }
}
