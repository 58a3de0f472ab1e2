/// The classic pcap file layout, as the ring writes and reads it: a 24-byte
/// file header, then records of a 16-byte header and the captured bytes.
/// Segments are written little-endian with nanosecond timestamps (magic
/// `0xa1b23c4d`), which tcpdump, Wireshark and libpcap read.
public enum PcapFormat {
    static let fileHeaderSize = 24
    static let recordHeaderSize = 16
    static let nanosecondMagic: UInt32 = 0xa1b2_3c4d
    static let microsecondMagic: UInt32 = 0xa1b2_c3d4
    /// Records claiming more than this are damage, not packets.
    static let maxRecordLength = 1 << 18

    /// The file header for `linkType` (DLT_*) and `snapLength`.
    static func fileHeader(linkType: Int32, snapLength: UInt32 = UInt32(maxRecordLength)) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(fileHeaderSize)
        appendLE(nanosecondMagic, to: &bytes)
        appendLE(UInt16(2), to: &bytes)
        appendLE(UInt16(4), to: &bytes)
        appendLE(UInt32(0), to: &bytes)  // thiszone
        appendLE(UInt32(0), to: &bytes)  // sigfigs
        appendLE(snapLength, to: &bytes)
        appendLE(UInt32(bitPattern: linkType), to: &bytes)
        return bytes
    }

    /// What a file header says, or `nil` when it is not one the ring writes.
    struct FileHeader: Equatable {
        var linkType: Int32
        /// Multiplier from the stored sub-second field to nanoseconds.
        var subsecondScale: Int64
    }

    static func parseFileHeader(_ bytes: UnsafeRawBufferPointer) -> FileHeader? {
        guard bytes.count >= fileHeaderSize else { return nil }
        let magic = bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian
        let scale: Int64
        switch magic {
        case nanosecondMagic: scale = 1
        case microsecondMagic: scale = 1000
        default: return nil
        }
        let link = bytes.loadUnaligned(fromByteOffset: 20, as: UInt32.self).littleEndian
        return FileHeader(linkType: Int32(bitPattern: link & 0x0fff_ffff), subsecondScale: scale)
    }

    /// One record header.
    struct RecordHeader: Equatable {
        var timestampNs: Int64
        var capturedLength: Int
        var wireLength: Int
    }

    /// Reads the record header at `offset`; `nil` when fewer than 16 bytes remain
    /// or the lengths are impossible (a torn or damaged record).
    static func parseRecordHeader(_ bytes: UnsafeRawBufferPointer, at offset: Int, scale: Int64) -> RecordHeader? {
        guard offset >= 0, bytes.count - offset >= recordHeaderSize else { return nil }
        let seconds = Int64(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian)
        let fraction = Int64(bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self).littleEndian)
        let captured = Int(bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self).littleEndian)
        let wire = Int(bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self).littleEndian)
        guard captured <= maxRecordLength, fraction * scale < 1_000_000_000 else { return nil }
        return RecordHeader(timestampNs: seconds * 1_000_000_000 + fraction * scale,
                            capturedLength: captured, wireLength: max(wire, captured))
    }

    /// Writes a record header for a packet into `buffer` at `offset` (16 bytes must fit).
    static func storeRecordHeader(
        into buffer: UnsafeMutableRawPointer, timestampNs: Int64, capturedLength: Int, wireLength: Int
    ) {
        let ts = max(0, timestampNs)
        buffer.storeBytes(of: UInt32(truncatingIfNeeded: ts / 1_000_000_000).littleEndian, as: UInt32.self)
        (buffer + 4).storeBytes(of: UInt32(ts % 1_000_000_000).littleEndian, as: UInt32.self)
        (buffer + 8).storeBytes(of: UInt32(capturedLength).littleEndian, as: UInt32.self)
        (buffer + 12).storeBytes(of: UInt32(clamping: max(wireLength, capturedLength)).littleEndian, as: UInt32.self)
    }

    private static func appendLE<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}
