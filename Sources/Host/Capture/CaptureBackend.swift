/// One captured packet: a view into the backend's buffer, valid only until the
/// backend's next read.
public struct CapturedPacket {
    /// Capture time, Unix nanoseconds.
    public var timestampNs: Int64
    /// Bytes captured (may be less than `wireLength` when a snap length cut it).
    public var data: UnsafeRawBufferPointer
    /// Length of the packet on the wire.
    public var wireLength: Int
    /// Link-layer type (DLT_* value) of `data`.
    public var linkType: Int32

    public init(timestampNs: Int64, data: UnsafeRawBufferPointer, wireLength: Int, linkType: Int32) {
        self.timestampNs = timestampNs
        self.data = data
        self.wireLength = wireLength
        self.linkType = linkType
    }
}

/// Counters every backend reports, with the same meaning everywhere.
public struct CaptureStatistics: Sendable, Equatable {
    /// Packets handed to us.
    public var received: UInt64 = 0
    /// Packets the kernel dropped (buffer full), when the backend can tell.
    public var droppedByKernel: UInt64 = 0
    /// Packets we dropped ourselves.
    public var droppedByUs: UInt64 = 0
    /// Packets the filter rejected, when the backend can tell.
    public var filtered: UInt64 = 0
    /// Bytes captured.
    public var bytes: UInt64 = 0

    public init() {}
}

/// What a read produced.
public enum CaptureReadOutcome: Equatable {
    /// This many packets were handed to the handler.
    case packets(Int)
    /// Nothing arrived before the backend's timeout (live capture only).
    case timeout
    /// The source has no more packets (end of file, or the loop was broken).
    case end
}

/// Why a capture cannot start or continue. The message is one line, fit for a user.
public struct CaptureError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        case notFound, notACapture, truncated, permission, interfaceMissing, filter, other
        /// A kernel feature, a library or a tool the backend needs is missing.
        case unsupported
    }
    public var kind: Kind
    public var message: String
    public var description: String { message }

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

/// A source of packets: a capture file, or a live interface through one of the
/// capture backends (libpcap here; AF_PACKET and AF_XDP implement the same protocol).
public protocol CaptureBackend: AnyObject {
    /// Short name for logs and statistics ("pcap-file", "libpcap", ...).
    var name: String { get }
    /// DLT_* link type of the packets.
    var linkType: Int32 { get }
    /// Reads the next batch of packets (at most `maxPackets`), calling `handler` for each.
    /// A `truncated` error comes after every complete packet before the damage was delivered.
    func read(maxPackets: Int, _ handler: (CapturedPacket) -> Void) throws(CaptureError) -> CaptureReadOutcome
    /// Current counters.
    var statistics: CaptureStatistics { get }
    /// Makes a blocked or future `read` return `.end` (safe from a signal handler's thread).
    func breakLoop()
    /// Releases the source. Further reads return `.end`.
    func close()
    /// True when a packet's bytes stay valid until the next `read` (not only during
    /// the handler call), so a consumer may keep views for the batch, e.g. to write
    /// them with one writev. Defaults to false.
    var packetsValidUntilNextRead: Bool { get }
}

extension CaptureBackend {
    public var packetsValidUntilNextRead: Bool { false }
}
