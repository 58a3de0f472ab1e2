// HTTP/2 framing (RFC 9113 section 4, 6): the 9-byte frame header, frame
// types and flags, the connection preface, and the structural checks used to
// recognise frames without having seen the preface.

/// Frame types (RFC 9113 section 6). Unknown types are skipped.
enum FrameType: UInt8 {
    case data = 0, headers = 1, priority = 2, rstStream = 3, settings = 4
    case pushPromise = 5, ping = 6, goaway = 7, windowUpdate = 8, continuation = 9
}

/// Frame flag bits.
enum FrameFlag {
    static let endStream: UInt8 = 0x1
    static let ack: UInt8 = 0x1
    static let endHeaders: UInt8 = 0x4
    static let padded: UInt8 = 0x8
    static let priority: UInt8 = 0x20
}

/// A decoded frame header.
struct FrameHeader {
    var length: Int
    var type: UInt8
    var flags: UInt8
    var streamID: UInt32

    static let size = 9

    /// Reads the 9 bytes at `b[at...]` (the caller checked there are 9).
    @inline(__always)
    init(_ b: UnsafeRawBufferPointer, at i: Int) {
        length = Int(b[i]) << 16 | Int(b[i + 1]) << 8 | Int(b[i + 2])
        type = b[i + 3]
        flags = b[i + 4]
        streamID = (UInt32(b[i + 5]) << 24 | UInt32(b[i + 6]) << 16 | UInt32(b[i + 7]) << 8 | UInt32(b[i + 8])) & 0x7FFF_FFFF
    }

    var kind: FrameType? { FrameType(rawValue: type) }

    /// Whether the header is consistent with RFC 9113 for a known type: stream
    /// id rules, fixed lengths, defined flags, a sane length. Used to recognise
    /// frames mid-connection; parsing itself tolerates what it can.
    func plausible(maxLength: Int = 1 << 20) -> Bool {
        guard length <= maxLength, let kind else { return false }
        switch kind {
        case .data: return streamID != 0 && flags & ~0x09 == 0
        case .headers: return streamID != 0 && flags & ~0x2D == 0
        case .priority: return streamID != 0 && length == 5 && flags == 0
        case .rstStream: return streamID != 0 && length == 4 && flags == 0
        case .settings: return streamID == 0 && length % 6 == 0 && flags & ~0x1 == 0 && (flags == 0 || length == 0)
        case .pushPromise: return streamID != 0 && flags & ~0x0C == 0 && length >= 4
        case .ping: return streamID == 0 && length == 8 && flags & ~0x1 == 0
        case .goaway: return streamID == 0 && length >= 8 && flags == 0
        case .windowUpdate: return length == 4 && flags == 0
        case .continuation: return streamID != 0 && flags & ~0x04 == 0
        }
    }
}

/// The client connection preface (RFC 9113 section 3.4).
let connectionPreface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

/// Names of RST_STREAM / GOAWAY error codes (RFC 9113 section 7).
func errorCodeName(_ code: UInt32) -> String {
    switch code {
    case 0x0: return "NO_ERROR"
    case 0x1: return "PROTOCOL_ERROR"
    case 0x2: return "INTERNAL_ERROR"
    case 0x3: return "FLOW_CONTROL_ERROR"
    case 0x4: return "SETTINGS_TIMEOUT"
    case 0x5: return "STREAM_CLOSED"
    case 0x6: return "FRAME_SIZE_ERROR"
    case 0x7: return "REFUSED_STREAM"
    case 0x8: return "CANCEL"
    case 0x9: return "COMPRESSION_ERROR"
    case 0xa: return "CONNECT_ERROR"
    case 0xb: return "ENHANCE_YOUR_CALM"
    case 0xc: return "INADEQUATE_SECURITY"
    case 0xd: return "HTTP_1_1_REQUIRED"
    default: return "UNKNOWN"
    }
}

/// Checks that `b` starts with a run of plausible frames: every complete frame
/// in it, and the header of a last partial one. Returns the number of complete
/// frames, or nil when something does not fit; `need` is set to the bytes that
/// would complete the first frame when none is complete yet.
func plausibleFrames(_ b: UnsafeRawBufferPointer, need: inout Int) -> Int? {
    var i = 0
    var frames = 0
    while b.count - i >= FrameHeader.size {
        let h = FrameHeader(b, at: i)
        guard h.plausible(maxLength: 1 << 16) else { return nil }
        let end = i + FrameHeader.size + h.length
        if end > b.count {
            if frames == 0 { need = end }
            return frames
        }
        frames += 1
        i = end
    }
    if frames == 0 { need = FrameHeader.size }
    return frames
}
