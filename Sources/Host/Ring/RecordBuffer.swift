/// Packets waiting for the disk, already laid out as pcap records so the
/// writer hands them to `write` as they are. Preallocated; reused.
final class RecordBuffer {
    private(set) var bytes: [UInt8]
    private(set) var count = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        bytes = [UInt8](repeating: 0, count: capacity)
    }

    /// Appends one record; `false` when it does not fit.
    func append(_ packet: CapturedPacket, capturedLength: Int) -> Bool {
        let size = PcapFormat.recordHeaderSize + capturedLength
        guard capacity - count >= size else { return false }
        bytes.withUnsafeMutableBytes { out in
            let at = out.baseAddress! + count
            PcapFormat.storeRecordHeader(into: at, timestampNs: packet.timestampNs,
                                         capturedLength: capturedLength, wireLength: packet.wireLength)
            if capturedLength > 0 {
                (at + PcapFormat.recordHeaderSize).copyMemory(from: packet.data.baseAddress!, byteCount: capturedLength)
            }
        }
        count += size
        return true
    }

    func reset() { count = 0 }

    /// Number of whole records in `records` (a run of this buffer's bytes).
    static func count(_ records: UnsafeRawBufferPointer) -> Int {
        var n = 0
        var offset = 0
        while let header = PcapFormat.parseRecordHeader(records, at: offset, scale: 1) {
            offset += PcapFormat.recordHeaderSize + header.capturedLength
            n += 1
        }
        return n
    }
}
