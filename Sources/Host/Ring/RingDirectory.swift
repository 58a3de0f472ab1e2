#if canImport(Glibc)
import Glibc
#endif

/// File names and file operations of a ring directory:
/// `segment-000000000042.pcap` and its index `segment-000000000042.idx`;
/// segments being salvaged by sessions wait as `evicted-….pcap`.
enum RingDirectory {
    static func segmentPath(_ directory: String, _ sequence: UInt64) -> String {
        "\(directory)/segment-\(padded(sequence)).pcap"
    }

    static func indexPath(_ directory: String, _ sequence: UInt64) -> String {
        "\(directory)/segment-\(padded(sequence)).idx"
    }

    static func evictedPath(_ directory: String, _ sequence: UInt64) -> String {
        "\(directory)/evicted-\(padded(sequence)).pcap"
    }

    private static func padded(_ n: UInt64) -> String {
        let digits = String(n)
        return String(repeating: "0", count: max(0, 12 - digits.count)) + digits
    }

    /// What a directory entry is, from its name.
    enum Name: Equatable {
        case segment(UInt64), index(UInt64), evicted(UInt64), other
    }

    static func classify(_ name: String) -> Name {
        func number(_ prefix: String, _ suffix: String) -> UInt64? {
            guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
            return UInt64(name.dropFirst(prefix.count).dropLast(suffix.count))
        }
        if let n = number("segment-", ".pcap") { return .segment(n) }
        if let n = number("segment-", ".idx") { return .index(n) }
        if let n = number("evicted-", ".pcap") { return .evicted(n) }
        return .other
    }

    /// Creates `path` and its parents.
    static func create(_ path: String) throws(RingError) {
        var partial = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            partial += "/" + component
            if mkdir(partial, 0o755) != 0 && errno != EEXIST {
                throw .system("cannot create the ring directory \(partial)", errno)
            }
        }
    }

    /// Names in `directory`.
    static func list(_ directory: String) throws(RingError) -> [String] {
        guard let dir = opendir(directory) else { throw .system("cannot read the ring directory \(directory)", errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Creates a segment file holding just the pcap header; returns its descriptor.
    static func createSegment(_ path: String, linkType: Int32) throws(RingError) -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .system("cannot create segment \(path)", errno) }
        let header = PcapFormat.fileHeader(linkType: linkType)
        if let failure = header.withUnsafeBytes({ writeAll(fd, $0) }) {
            close(fd)
            unlink(path)
            throw .configuration("cannot write segment \(path): \(failure)")
        }
        return fd
    }

    /// Writes all of `bytes`; the error text when the disk refused.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> String? {
        writePrefix(fd, bytes).failure
    }

    /// Writes as much of `bytes` as the disk takes: how much, and why it stopped short.
    static func writePrefix(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> (written: Int, failure: String?) {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return (offset, String(cString: strerror(errno)))
            }
            if n == 0 { return (offset, "no progress") }
            offset += n
        }
        return (offset, nil)
    }

    /// Writes `index` beside its segment (through a temporary name, so a
    /// reader never sees half an index); returns the bytes it takes, 0 on failure.
    @discardableResult
    static func writeIndex(_ index: SegmentIndex, directory: String) -> Int64 {
        let path = indexPath(directory, index.sequence)
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return 0 }
        let json = index.json
        let failure = json.withUnsafeBytes { writeAll(fd, $0) }
        close(fd)
        guard failure == nil, rename(temporary, path) == 0 else {
            unlink(temporary)
            return 0
        }
        return Int64(json.count)
    }

    /// Reads a small whole file.
    static func read(_ path: String, limit: Int = 4 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while out.count <= limit {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out.count <= limit ? out : nil
    }

    /// Size of the file at `path`, or nil when it is gone.
    static func fileSize(_ path: String) -> Int64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int64(info.st_size)
    }
}
