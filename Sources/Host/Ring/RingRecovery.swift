import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Brings a ring directory back to a consistent state at start-up: cuts a
/// torn last record (a crash mid-write), rebuilds indexes that are missing or
/// stale, removes files that are not segments any more (half-written indexes,
/// segments left aside for salvage, empty or headerless segments).
struct RingRecovery {
    struct Segment {
        var index: SegmentIndex
        var indexFileBytes: Int64
    }

    struct Result {
        var segments: [Segment] = []
        var tornBytesCut: UInt64 = 0
    }

    let directory: String
    let logger: Logger

    func run() throws(RingError) -> Result {
        var result = Result()
        var sequences: [UInt64] = []
        for name in try RingDirectory.list(directory) {
            switch RingDirectory.classify(name) {
            case .segment(let n): sequences.append(n)
            case .evicted: unlink("\(directory)/\(name)")
            case .index, .other:
                if name.hasSuffix(".idx.tmp") { unlink("\(directory)/\(name)") }
            }
        }
        for sequence in sequences.sorted() {
            if let segment = recover(sequence, cut: &result.tornBytesCut) { result.segments.append(segment) }
        }
        // Indexes whose segment is gone.
        let kept = Set(result.segments.map(\.index.sequence))
        for name in try RingDirectory.list(directory) {
            if case .index(let n) = RingDirectory.classify(name), !kept.contains(n) { unlink("\(directory)/\(name)") }
        }
        return result
    }

    private func recover(_ sequence: UInt64, cut: inout UInt64) -> Segment? {
        let path = RingDirectory.segmentPath(directory, sequence)
        let indexPath = RingDirectory.indexPath(directory, sequence)
        guard let size = RingDirectory.fileSize(path) else { return nil }
        if let bytes = RingDirectory.read(indexPath), let index = SegmentIndex(json: bytes),
            index.sequence == sequence, index.fileBytes == size
        {
            return Segment(index: index, indexFileBytes: Int64(bytes.count))
        }
        let reader: SegmentFileReader
        do {
            reader = try SegmentFileReader(path: path)
        } catch {
            logger.warning("ring: removing \(path): \(error)")
            unlink(path)
            unlink(indexPath)
            return nil
        }
        var index = SegmentIndex(sequence: sequence, linkType: reader.header.linkType)
        var classifier = FlowClassifier()
        scan: while true {
            switch reader.next(limit: size) {
            case .packet(let p):
                index.record(timestampNs: p.timestampNs, recordBytes: PcapFormat.recordHeaderSize + p.data.count,
                             flow: classifier.flow(of: p))
            case .end, .damaged:
                break scan
            }
        }
        if reader.offset < size {
            let torn = size - reader.offset
            logger.warning("ring: segment \(sequence) ends with \(torn) bytes of a torn or damaged record (an interrupted write); cutting them")
            guard truncate(path, off_t(reader.offset)) == 0 else {
                logger.error("ring: cannot cut segment \(sequence): \(String(cString: strerror(errno))); removing it")
                unlink(path)
                return nil
            }
            cut &+= UInt64(torn)
        }
        if index.packets == 0 {
            unlink(path)
            unlink(indexPath)
            return nil
        }
        index.fileBytes = reader.offset
        let indexBytes = RingDirectory.writeIndex(index, directory: directory)
        return Segment(index: index, indexFileBytes: indexBytes)
    }
}
