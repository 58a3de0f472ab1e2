import PluginAPI

/// Which way bytes travel within a flow.
public enum Direction: Int32, Sendable {
    case clientToServer = 0
    case serverToClient = 1

    /// The other direction.
    public var reversed: Direction { self == .clientToServer ? .serverToClient : .clientToServer }
}

/// One endpoint of a flow. Holds the C value, so making one never allocates
/// (probes build a `Flow` for every new flow).
public struct Endpoint: Sendable {
    private let raw: ks_endpoint

    /// 4 or 6.
    public var family: UInt8 { raw.family }
    public var port: UInt16 { raw.port }

    /// Address bytes in network order: 4 for IPv4, 16 for IPv6.
    public var addressBytes: [UInt8] {
        withUnsafeBytes(of: raw.addr) { Array($0.prefix(family == 6 ? 16 : 4)) }
    }

    /// Calls `body` with the address bytes (4 or 16) without allocating.
    public func withAddressBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeBytes(of: raw.addr) { body(UnsafeRawBufferPointer(rebasing: $0.prefix(family == 6 ? 16 : 4))) }
    }

    init(_ e: ks_endpoint) { raw = e }
}

/// What the host knows about a flow (`ks_flow_info`).
public struct Flow: Sendable {
    public var flowID: UInt64
    public var layer4: Layer4
    /// The start of the connection was not captured.
    public var isMidstream: Bool
    /// Client and server were guessed rather than learned from the handshake.
    public var rolesGuessed: Bool
    public var client: Endpoint
    public var server: Endpoint

    init(_ f: ks_flow_info) {
        flowID = f.flow_id
        layer4 = Layer4(rawValue: f.layer4)
        isMidstream = f.flags & KS_FLOW_MIDSTREAM != 0
        rolesGuessed = f.flags & KS_FLOW_ROLES_GUESSED != 0
        client = Endpoint(f.client)
        server = Endpoint(f.server)
    }
}

/// Contiguous bytes of one direction: what was left unconsumed plus new bytes.
/// The memory belongs to the host and is valid only during the callback.
public struct Chunk {
    public var direction: Direction
    public var bytes: UnsafeRawBufferPointer
    /// Bytes were lost just before `bytes[0]`.
    public var afterGap: Bool
    /// `bytes[0]` is the first byte seen in this direction.
    public var isFirst: Bool
    /// Offset of `bytes[0]` in this direction.
    public var streamOffset: UInt64
    /// Capture time (Unix ns) of the packet holding `bytes[0]`.
    public var firstTimestampNs: Int64
    /// Capture time (Unix ns) of the newest packet in `bytes`.
    public var lastTimestampNs: Int64

    /// Wraps a host chunk.
    public init(_ c: ks_chunk) {
        direction = Direction(rawValue: c.direction) ?? .clientToServer
        bytes = UnsafeRawBufferPointer(start: c.data, count: Int(c.len))
        afterGap = c.flags & KS_CHUNK_AFTER_GAP != 0
        isFirst = c.flags & KS_CHUNK_FIRST != 0
        streamOffset = c.stream_offset
        firstTimestampNs = c.ts_first_ns
        lastTimestampNs = c.ts_last_ns
    }

    /// A chunk over caller-owned bytes (for tests and fuzzers).
    public init(
        direction: Direction, bytes: UnsafeRawBufferPointer, afterGap: Bool = false, isFirst: Bool = false,
        streamOffset: UInt64 = 0, firstTimestampNs: Int64 = 0, lastTimestampNs: Int64 = 0
    ) {
        self.direction = direction
        self.bytes = bytes
        self.afterGap = afterGap
        self.isFirst = isFirst
        self.streamOffset = streamOffset
        self.firstTimestampNs = firstTimestampNs
        self.lastTimestampNs = lastTimestampNs
    }
}

/// The `{status, consumed, needed}` answer to a chunk.
public enum ParseResult: Equatable, Sendable {
    /// Consumed `consumed` bytes; call again when new data arrives.
    case ok(consumed: Int)
    /// An incomplete message: call again once `needed` MORE bytes have arrived
    /// beyond the `len - consumed` unconsumed ones (`nil` = any amount).
    case needMore(consumed: Int, needed: Int?)
    /// Wait for the end of the stream and deliver everything then.
    case needUntilEOF(consumed: Int)
    /// Discard `count` bytes after `consumed` without delivering them.
    case skip(consumed: Int, count: Int)
    /// Desynchronised: stop this direction.
    case error
    /// Not this protocol after all.
    case reject

    func write(to r: UnsafeMutablePointer<ks_parse_result>, length: Int) {
        switch self {
        case .ok(let consumed):
            r.pointee.status = KS_PARSE_OK
            r.pointee.consumed = UInt32(clamping: min(consumed, length))
            r.pointee.needed = 0
        case .needMore(let consumed, let needed):
            r.pointee.status = KS_PARSE_NEED_MORE
            r.pointee.consumed = UInt32(clamping: min(consumed, length))
            if let needed, needed > 0 {
                r.pointee.needed = UInt32(clamping: min(needed, Int(UInt32.max - 1)))
            } else {
                r.pointee.needed = KS_NEED_ANY
            }
        case .needUntilEOF(let consumed):
            r.pointee.status = KS_PARSE_NEED_MORE
            r.pointee.consumed = UInt32(clamping: min(consumed, length))
            r.pointee.needed = KS_NEED_UNTIL_EOF
        case .skip(let consumed, let count):
            r.pointee.status = KS_PARSE_SKIP
            r.pointee.consumed = UInt32(clamping: min(consumed, length))
            r.pointee.needed = UInt32(clamping: count)
        case .error:
            r.pointee.status = KS_PARSE_ERROR
        case .reject:
            r.pointee.status = KS_PARSE_REJECT
        }
    }
}

/// The answer of a probe. Confidence anchors: 100 magic, 75 full syntax, 50 plausible, 25 port.
public struct ProbeResult: Sendable, Equatable {
    public var verdict: Int32
    public var confidence: UInt32
    public var reversed: Bool
    public var needBytes: UInt32

    /// Definitely not this protocol.
    public static let no = ProbeResult(verdict: KS_PROBE_NO, confidence: 0, reversed: false, needBytes: 0)
    /// Could be; `needBytes` total bytes would tell (0 = unknown).
    public static func maybe(needBytes: UInt32 = 0) -> ProbeResult {
        ProbeResult(verdict: KS_PROBE_MAYBE, confidence: 0, reversed: false, needBytes: needBytes)
    }
    /// This protocol, with a confidence; `reversed` when the bytes came from the server.
    public static func yes(confidence: UInt32, reversed: Bool = false) -> ProbeResult {
        ProbeResult(verdict: KS_PROBE_YES, confidence: confidence, reversed: reversed, needBytes: 0)
    }

    public static let magic: UInt32 = KS_CONFIDENCE_MAGIC
    public static let syntax: UInt32 = KS_CONFIDENCE_SYNTAX
    public static let plausible: UInt32 = KS_CONFIDENCE_PLAUSIBLE
    public static let port: UInt32 = KS_CONFIDENCE_PORT
}

/// Why a stream is closed.
public enum CloseReason: Int32, Sendable {
    case fin = 0, reset = 1, timeout = 2, captureEnd = 3, error = 4, evicted = 5, reprobe = 6
}

/// Log levels of the host log.
public enum LogLevel: Int32, Sendable {
    case trace = 0, debug = 1, info = 2, warn = 3, error = 4
}
