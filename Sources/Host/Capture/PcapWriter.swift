#if canImport(Glibc)
import Glibc
#endif

/// Writes packets to a pcap file (nanosecond timestamps, magic 0xa1b23c4d), so
/// tcpdump and Wireshark read it.
///
/// Records are appended to a 1 MiB buffer and written with one write(2) when it
/// fills: at a million packets a second, libpcap's `pcap_dump` (two locked
/// `fwrite`s per packet into a 4 KiB stdio buffer) was most of a capture's cost.
public final class PcapWriter {
    public let path: String
    public private(set) var written: UInt64 = 0
    private var fd: Int32
    private var buffer: UnsafeMutableRawPointer
    private let capacity = 1 << 20
    private var used = 0
    private var failure: String?

    /// Creates (or truncates) `path` for packets of `linkType` (DLT_*).
    public init(path: String, linkType: Int32, snapLength: Int32 = 262_144) throws(CaptureError) {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw CaptureError(.other, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
        // struct pcap_file_header, host byte order (readers detect it from the magic).
        buffer.storeBytes(of: UInt32(0xA1B2_3C4D), toByteOffset: 0, as: UInt32.self)
        buffer.storeBytes(of: UInt16(2), toByteOffset: 4, as: UInt16.self)
        buffer.storeBytes(of: UInt16(4), toByteOffset: 6, as: UInt16.self)
        buffer.storeBytes(of: Int32(0), toByteOffset: 8, as: Int32.self)
        buffer.storeBytes(of: UInt32(0), toByteOffset: 12, as: UInt32.self)
        buffer.storeBytes(of: UInt32(bitPattern: snapLength), toByteOffset: 16, as: UInt32.self)
        buffer.storeBytes(of: UInt32(bitPattern: linkType), toByteOffset: 20, as: UInt32.self)
        used = 24
    }

    /// Appends one packet.
    public func write(_ packet: CapturedPacket) {
        guard fd >= 0 else { return }
        if iovCount > 0 { commit() }
        let length = packet.data.count
        if used + 16 + length > capacity {
            flush()
        }
        let h = buffer + used
        let direct = 16 + length > capacity  // larger than the buffer: header here, data straight through
        h.storeBytes(of: UInt32(truncatingIfNeeded: packet.timestampNs / 1_000_000_000), toByteOffset: 0, as: UInt32.self)
        h.storeBytes(of: UInt32(truncatingIfNeeded: packet.timestampNs % 1_000_000_000), toByteOffset: 4, as: UInt32.self)
        h.storeBytes(of: UInt32(truncatingIfNeeded: length), toByteOffset: 8, as: UInt32.self)
        h.storeBytes(of: UInt32(truncatingIfNeeded: max(packet.wireLength, length)), toByteOffset: 12, as: UInt32.self)
        if direct {
            used += 16
            flush()
            writeAll(packet.data)
            written &+= 1
            return
        }
        if let base = packet.data.baseAddress, length > 0 {
            (h + 16).copyMemory(from: base, byteCount: length)
        }
        used += 16 + length
        written &+= 1
    }

    // Gathered records: headers here, data left where the backend put it.
    private var iov: UnsafeMutablePointer<iovec> = .allocate(capacity: 1024)
    private var iovCount = 0
    private var headers: UnsafeMutableRawPointer = .allocate(byteCount: 512 * 16, alignment: 16)
    private var gatheredBytes = 0

    /// Appends one packet without copying its bytes: they are written by the next
    /// `commit()` (or earlier, when 512 are waiting), so they must stay valid until
    /// then: use it with backends whose `packetsValidUntilNextRead` is true, and
    /// commit before the next read.
    public func gather(_ packet: CapturedPacket) {
        guard fd >= 0 else { return }
        if iovCount == 0 { flush() }  // keep file order: buffered records first
        let length = packet.data.count
        let h = headers + (iovCount / 2) * 16
        h.storeBytes(of: UInt32(truncatingIfNeeded: packet.timestampNs / 1_000_000_000), toByteOffset: 0, as: UInt32.self)
        h.storeBytes(of: UInt32(truncatingIfNeeded: packet.timestampNs % 1_000_000_000), toByteOffset: 4, as: UInt32.self)
        h.storeBytes(of: UInt32(truncatingIfNeeded: length), toByteOffset: 8, as: UInt32.self)
        h.storeBytes(of: UInt32(truncatingIfNeeded: max(packet.wireLength, length)), toByteOffset: 12, as: UInt32.self)
        iov[iovCount] = iovec(iov_base: h, iov_len: 16)
        iov[iovCount + 1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: packet.data.baseAddress), iov_len: length)
        iovCount += 2
        gatheredBytes += 16 + length
        written &+= 1
        if iovCount == 1024 { commit() }
    }

    /// Writes the gathered records with writev.
    public func commit() {
        guard iovCount > 0 else { return }
        var index = 0
        var skip = 0  // bytes of iov[index] already written
        while index < iovCount {
            let start = iov + index
            if skip > 0 {
                start.pointee.iov_base = start.pointee.iov_base.map { $0 + skip }
                start.pointee.iov_len -= skip
            }
            let n = writev(fd, start, Int32(iovCount - index))
            if n < 0 {
                if errno == EINTR { continue }
                failure = failure ?? "cannot write \(path): \(String(cString: strerror(errno))) (disk full?)"
                break
            }
            var left = n
            skip = 0
            while index < iovCount && left >= iov[index].iov_len {
                left -= iov[index].iov_len
                index += 1
            }
            skip = left
        }
        iovCount = 0
        gatheredBytes = 0
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                failure = failure ?? "cannot write \(path): \(String(cString: strerror(errno))) (disk full?)"
                return
            }
            offset += n
        }
    }

    /// Writes what the buffer holds.
    public func flush() {
        guard fd >= 0, used > 0 else { return }
        writeAll(UnsafeRawBufferPointer(start: buffer, count: used))
        used = 0
    }

    /// Flushes and closes the file; returns an error text if the disk refused.
    @discardableResult
    public func close() -> String? {
        guard fd >= 0 else { return failure }
        commit()
        flush()
        if Glibc.close(fd) != 0 { failure = failure ?? "cannot close \(path): \(String(cString: strerror(errno)))" }
        fd = -1
        return failure
    }

    deinit {
        close()
        buffer.deallocate()
        iov.deallocate()
        headers.deallocate()
    }
}
