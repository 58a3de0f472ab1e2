#if canImport(Glibc)
import Glibc
#endif

/// Where a reader finds segments: a running `PacketRing`, or a ring directory
/// read from outside (`RingDirectoryView`, for `pcapdump`).
public protocol RingCatalogue: AnyObject, Sendable {
    var directory: String { get }
    var linkType: Int32 { get }
    /// Segments oldest first; a segment with `isLive` set may still grow and its
    /// index bounds are not final.
    func segments() -> [RingSegment]
    /// Returns when segment `sequence` may have grown past `offset`, a newer
    /// segment may exist, or `timeoutNs` passed.
    func waitForData(beyond sequence: UInt64, offset: Int64, timeoutNs: Int64)
}

extension PacketRing: RingCatalogue {
    public var directory: String { configuration.directory }
    public var linkType: Int32 { configuration.linkType }
}

/// A ring directory seen from outside its writer (possibly while a worker writes it).
public final class RingDirectoryView: RingCatalogue {
    public let directory: String
    public let linkType: Int32

    /// Fails when the directory holds no readable segment.
    public init(directory: String) throws(RingError) {
        self.directory = directory
        var link: Int32?
        for name in try RingDirectory.list(directory).sorted() {
            guard case .segment(let n) = RingDirectory.classify(name),
                let reader = try? SegmentFileReader(path: RingDirectory.segmentPath(directory, n))
            else { continue }
            link = reader.header.linkType
            break
        }
        guard let link else { throw .configuration("\(directory) holds no ring segment") }
        linkType = link
    }

    public func segments() -> [RingSegment] {
        guard let names = try? RingDirectory.list(directory) else { return [] }
        var list: [RingSegment] = []
        for case .segment(let n) in names.map(RingDirectory.classify) {
            guard let size = RingDirectory.fileSize(RingDirectory.segmentPath(directory, n)) else { continue }
            if let bytes = RingDirectory.read(RingDirectory.indexPath(directory, n)), let index = SegmentIndex(json: bytes),
                index.fileBytes == size
            {
                list.append(RingSegment(index: index, isLive: false))
            } else {
                var index = SegmentIndex(sequence: n, linkType: linkType)
                index.fileBytes = size
                list.append(RingSegment(index: index, isLive: true))
            }
        }
        return list.sorted { $0.index.sequence < $1.index.sequence }
    }

    public func waitForData(beyond sequence: UInt64, offset: Int64, timeoutNs: Int64) {
        usleep(UInt32(min(timeoutNs, 100_000_000) / 1000))
    }
}

/// Reads the packets of a ring in capture order, as a capture backend, so a
/// dissection session reads the ring exactly as it reads an interface: from
/// the oldest packet (or a given time), optionally only one flow's packets,
/// and then either stops at the end (`follow: false`) or keeps reading what
/// capture appends (`follow: true`).
public final class RingReader: CaptureBackend {
    public let name = "ring"
    public let linkType: Int32
    private let catalogue: RingCatalogue
    private let fromNs: Int64?
    private let toNs: Int64?
    private let flow: FlowHash?
    private let follow: Bool
    private var classifier = FlowClassifier()
    private var current: (segment: RingSegment, reader: SegmentFileReader)?
    private var lastSequence: UInt64 = 0
    private var stopped = false
    private var stats = CaptureStatistics()
    /// Segments flushed before the reader got to them (it fell behind the ring).
    public private(set) var segmentsMissed = 0
    /// Segments whose bytes stopped being records before their end.
    public private(set) var segmentsDamaged = 0
    /// Sequence of the segment being read, for retention and progress.
    public var currentSegment: UInt64? { current?.segment.index.sequence }

    /// - Parameters:
    ///   - fromNs, toNs: only packets captured in this range (Unix ns, inclusive).
    ///   - flow: only this flow's packets.
    ///   - follow: keep reading what is appended after the end is reached.
    public init(catalogue: RingCatalogue, fromNs: Int64? = nil, toNs: Int64? = nil, flow: FlowHash? = nil,
                follow: Bool = false) {
        self.catalogue = catalogue
        self.linkType = catalogue.linkType
        self.fromNs = fromNs
        self.toNs = toNs
        self.flow = flow
        self.follow = follow
    }

    public var statistics: CaptureStatistics { stats }

    public func breakLoop() { stopped = true }
    public func close() {
        stopped = true
        current = nil
    }

    public func read(maxPackets: Int, _ handler: (CapturedPacket) -> Void) throws(CaptureError) -> CaptureReadOutcome {
        var delivered = 0
        // The live segment's written end, asked once per call (it only grows).
        var liveEnd: (sequence: UInt64, limit: Int64)?
        while delivered < maxPackets && !stopped {
            guard let (segment, reader) = current ?? openNext() else {
                if delivered > 0 { return .packets(delivered) }
                if !follow { return .end }
                catalogue.waitForData(beyond: lastSequence, offset: Int64.max, timeoutNs: 100_000_000)
                return .timeout
            }
            // The live segment's end moves: ask the catalogue how far it is written.
            let limit: Int64
            if !segment.isLive {
                limit = segment.index.fileBytes
            } else if let known = liveEnd, known.sequence == segment.index.sequence {
                limit = known.limit
            } else {
                limit = liveLimit(segment.index.sequence)
                liveEnd = (segment.index.sequence, limit)
            }
            switch reader.next(limit: limit) {
            case .packet(let packet):
                // Segments are in time order only roughly (several capture threads):
                // a packet out of range is skipped, it does not end the reading.
                if let fromNs, packet.timestampNs < fromNs { continue }
                if let toNs, packet.timestampNs > toNs { continue }
                if let flow, classifier.flow(of: packet) != flow { continue }
                stats.received &+= 1
                stats.bytes &+= UInt64(packet.data.count)
                handler(packet)
                delivered += 1
            case .damaged:
                segmentsDamaged += 1
                current = nil
            case .end:
                if let still = liveSegment(segment.index.sequence) {
                    // Still being written: wait for more, or stop here when not following.
                    current = (still, reader)
                    if delivered > 0 { return .packets(delivered) }
                    if !follow { current = nil; return .end }
                    catalogue.waitForData(beyond: still.index.sequence, offset: reader.offset, timeoutNs: 100_000_000)
                    return .timeout
                }
                if segment.isLive {
                    // It was closed since: read what was added before moving on.
                    if let closed = catalogue.segments().first(where: { $0.index.sequence == segment.index.sequence }) {
                        current = (closed, reader)
                        continue
                    }
                }
                current = nil
            }
        }
        return delivered > 0 ? .packets(delivered) : (stopped ? .end : .timeout)
    }

    private func liveLimit(_ sequence: UInt64) -> Int64 {
        liveSegment(sequence)?.index.fileBytes ?? Int64.max
    }

    private func liveSegment(_ sequence: UInt64) -> RingSegment? {
        guard let last = catalogue.segments().last, last.isLive, last.index.sequence == sequence else { return nil }
        return last
    }

    /// Opens the next segment after `lastSequence` that may hold wanted packets.
    private func openNext() -> (RingSegment, SegmentFileReader)? {
        for segment in catalogue.segments() where segment.index.sequence > lastSequence {
            if lastSequence != 0 && segment.index.sequence > lastSequence + 1 {
                segmentsMissed += Int(segment.index.sequence - lastSequence - 1)
            }
            lastSequence = segment.index.sequence
            if !segment.isLive {
                if !segment.index.overlaps(fromNs: fromNs, toNs: toNs) { continue }
                if let flow, !segment.index.mayContain(flow) { continue }
            }
            do {
                let reader = try SegmentFileReader(path: RingDirectory.segmentPath(catalogue.directory, segment.index.sequence))
                current = (segment, reader)
                return (segment, reader)
            } catch {
                // Flushed between the listing and the open.
                segmentsMissed += 1
            }
        }
        return nil
    }
}
