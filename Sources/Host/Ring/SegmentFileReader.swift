#if canImport(Glibc)
import Glibc
#endif

/// Reads the records of one pcap segment in order, through a reused buffer.
/// It reads up to a byte limit (the part of a segment the writer has
/// finished), so a segment still being written can be followed.
final class SegmentFileReader {
    enum Next {
        /// A whole record; the packet's bytes are valid until the next call.
        case packet(CapturedPacket)
        /// No whole record before the limit (the end, or a record still being written).
        case end
        /// The bytes at `offset` are not a record: the file is damaged from there.
        case damaged
    }

    let path: String
    let header: PcapFormat.FileHeader
    /// File offset of the next record.
    private(set) var offset: Int64
    private let fd: Int32
    private var buffer: UnsafeMutableRawBufferPointer
    /// Valid bytes in `buffer` start at `bufferStart` (a file offset) and run `bufferCount` bytes.
    private var bufferStart: Int64 = 0
    private var bufferCount = 0

    /// Opens `path`; throws a one-line reason when it is missing or not a pcap.
    init(path: String, bufferBytes: Int = 1 << 20) throws(RingError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RingError.system("cannot open \(path)", errno) }
        self.fd = fd
        buffer = .allocate(byteCount: max(bufferBytes, PcapFormat.maxRecordLength + PcapFormat.recordHeaderSize),
                           alignment: 16)
        var head = [UInt8](repeating: 0, count: PcapFormat.fileHeaderSize)
        let n = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n == PcapFormat.fileHeaderSize, let parsed = head.withUnsafeBytes({ PcapFormat.parseFileHeader($0) }) else {
            Glibc.close(fd)
            buffer.deallocate()
            throw RingError.damaged("\(path) is not a pcap segment (bad or missing file header)")
        }
        header = parsed
        offset = Int64(PcapFormat.fileHeaderSize)
    }

    deinit {
        Glibc.close(fd)
        buffer.deallocate()
    }

    /// Moves to a record boundary found earlier (an offset `next` has passed).
    func seek(to recordOffset: Int64) {
        offset = recordOffset
    }

    /// The next record wholly before `limit` (a file offset).
    func next(limit: Int64) -> Next {
        guard let head = bytes(at: offset, count: PcapFormat.recordHeaderSize, limit: limit) else { return .end }
        guard let record = PcapFormat.parseRecordHeader(head, at: 0, scale: header.subsecondScale) else { return .damaged }
        let total = PcapFormat.recordHeaderSize + record.capturedLength
        guard let whole = bytes(at: offset, count: total, limit: limit) else { return .end }
        offset += Int64(total)
        return .packet(CapturedPacket(
            timestampNs: record.timestampNs,
            data: UnsafeRawBufferPointer(rebasing: whole[PcapFormat.recordHeaderSize...]),
            wireLength: record.wireLength, linkType: header.linkType))
    }

    /// `count` bytes at file offset `at`, from the buffer (refilled as needed);
    /// `nil` when they are not all before `limit` or not in the file yet.
    private func bytes(at position: Int64, count: Int, limit: Int64) -> UnsafeRawBufferPointer? {
        guard position + Int64(count) <= limit else { return nil }
        let inBuffer = position >= bufferStart && position + Int64(count) <= bufferStart + Int64(bufferCount)
        if !inBuffer {
            let want = Int(min(Int64(buffer.count), limit - position))
            var got = 0
            while got < want {
                let n = pread(fd, buffer.baseAddress! + got, want - got, off_t(position) + off_t(got))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                got += n
            }
            bufferStart = position
            bufferCount = got
            guard got >= count else { return nil }
        }
        let start = Int(position - bufferStart)
        return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[start..<start + count])
    }
}

/// Why the ring cannot do something. The message is one line, fit for a user.
public enum RingError: Error, CustomStringConvertible, Equatable {
    case configuration(String)
    case damaged(String)
    case system(String, Int32)

    public var description: String {
        switch self {
        case .configuration(let m), .damaged(let m): return m
        case .system(let m, let code): return "\(m): \(String(cString: strerror(code)))"
        }
    }
}
