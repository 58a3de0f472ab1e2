/// What one direction of a TCP connection delivers, in stream order.
enum ReassemblyEvent {
    /// In-order bytes. The view is valid only during the callback. The
    /// timestamp is the capture time of the packet that carried the bytes.
    case data(UnsafeRawBufferPointer, timestampNs: Int64)
    /// `length` bytes that will never come: lost in capture, or skipped to
    /// respect a memory limit. The next `.data` follows the hole.
    case gap(length: UInt64, timestampNs: Int64)
    /// The sender closed the direction; every byte before the FIN was delivered (or gapped).
    case fin(timestampNs: Int64)
    /// The connection was reset.
    case reset(timestampNs: Int64)
}
