import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Keeps the packets of the flows a session produced entries for, when the
/// ring flushes the segments holding them: each evicted segment is read once
/// and those flows' packets are appended to the session's own pcap, which
/// lives until the session closes. Traffic nobody dissected is not kept.
public final class RetentionStore: RingEvictionObserver, @unchecked Sendable {
    /// The session's directory (removed by `close`).
    public let directory: String
    /// The pcap of retained packets (created with the first salvage).
    public var path: String { directory + "/retained.pcap" }
    private let linkType: Int32
    private let state = Mutex(State())

    private struct State {
        var flows: Set<FlowHash> = []
        var fd: Int32 = -1
        var packets: UInt64 = 0
        var bytes: Int64 = 0
        var failure: String?
    }

    public init(directory: String, linkType: Int32) throws(RingError) {
        self.directory = directory
        self.linkType = linkType
        try RingDirectory.create(directory)
    }

    /// Keeps `flow`'s packets from now on, whenever their segment is flushed.
    public func retain(_ flow: FlowHash) {
        state.withLock { _ = $0.flows.insert(flow) }
    }

    /// Flows retained so far.
    public var flows: Set<FlowHash> { state.withLock { $0.flows } }
    /// Packets and bytes copied out of flushed segments so far.
    public var retainedPackets: UInt64 { state.withLock { $0.packets } }
    public var retainedBytes: Int64 { state.withLock { $0.bytes } }
    /// Why salvaging stopped (disk full...), if it did.
    public var failure: String? { state.withLock { $0.failure } }

    public func segmentEvicted(path segmentPath: String, index: SegmentIndex) {
        let wanted = state.withLock { s -> Set<FlowHash> in
            index.flowsOverflowed ? s.flows : s.flows.intersection(index.flows)
        }
        guard !wanted.isEmpty, let reader = try? SegmentFileReader(path: segmentPath) else { return }
        var classifier = FlowClassifier()
        let out = RecordBuffer(capacity: 1 << 20)
        var copied: UInt64 = 0
        func drain() {
            guard out.count > 0 else { return }
            let problem = state.withLock { s -> String? in
                if s.fd < 0 {
                    do { s.fd = try RingDirectory.createSegment(path, linkType: linkType) } catch { return "\(error)" }
                    s.bytes = Int64(PcapFormat.fileHeaderSize)
                }
                if let failure = out.bytes.withUnsafeBytes({ RingDirectory.writeAll(s.fd, UnsafeRawBufferPointer(rebasing: $0[0..<out.count])) }) {
                    return failure
                }
                s.bytes += Int64(out.count)
                return nil
            }
            if let problem { state.withLock { $0.failure = $0.failure ?? "cannot keep retained packets in \(path): \(problem)" } }
            out.reset()
        }
        while case .packet(let packet) = reader.next(limit: Int64.max) {
            guard let flow = classifier.flow(of: packet), wanted.contains(flow) else { continue }
            if !out.append(packet, capturedLength: packet.data.count) {
                drain()
                _ = out.append(packet, capturedLength: packet.data.count)
            }
            copied += 1
        }
        drain()
        state.withLock { $0.packets &+= copied }
    }

    /// Deletes what the session kept.
    public func close() {
        state.withLock { s in
            if s.fd >= 0 { Glibc.close(s.fd) }
            s.fd = -1
        }
        unlink(path)
        rmdir(directory)
    }
}
