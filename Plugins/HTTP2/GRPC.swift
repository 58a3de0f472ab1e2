// gRPC over HTTP/2 (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md):
// length-prefixed messages read incrementally from DATA payloads, capped
// copies kept for the entry, status names.

/// One length-prefixed message of a stream direction.
struct GRPCMessage {
    /// Offset of the kept bytes in ``GRPCReader/store``.
    var offset: Int
    /// Bytes kept (at most the per-message cap).
    var kept: Int
    /// The length the prefix declared.
    var declared: Int
    /// The compressed flag.
    var compressed: Bool
    /// Bytes received so far (== declared when complete).
    var received: Int
}

/// Splits one direction's DATA payload into gRPC messages.
struct GRPCReader {
    var store: [UInt8] = []
    var messages: [GRPCMessage] = []
    /// Messages seen beyond the count cap (counted, not kept).
    var dropped = 0
    private var prefix: (UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0)
    private var prefixFill = 0
    /// Bytes still expected for the current message (its index is `current`).
    private var remaining = 0
    private var current: Int?
    private var currentDropped = false

    /// Bytes were lost across a message boundary: later bytes cannot be split.
    private(set) var lostSync = false

    /// `n` payload bytes were lost in the capture.
    mutating func skip(_ n: Int) {
        guard !lostSync, n > 0 else { return }
        if prefixFill > 0 {
            lostSync = true
            return
        }
        let take = min(n, remaining)
        if let c = current { messages[c].received += take }
        remaining -= take
        if remaining == 0 { current = nil }
        if n > take { lostSync = true }
    }

    mutating func reset() {
        lostSync = false
        store.removeAll(keepingCapacity: true)
        messages.removeAll(keepingCapacity: true)
        dropped = 0
        prefixFill = 0
        remaining = 0
        current = nil
        currentDropped = false
    }

    /// A message was started but not finished (or a prefix was cut).
    var incomplete: Bool { prefixFill > 0 || remaining > 0 }

    mutating func feed(_ p: UnsafeRawBufferPointer, limits: HTTP2Limits) {
        guard !lostSync else { return }
        var i = 0
        let n = p.count
        while i < n {
            if remaining > 0 {
                let take = min(remaining, n - i)
                if let c = current {
                    let room = max(0, min(limits.maxMessageBytes - messages[c].kept, limits.maxGRPCStoreBytes - store.count))
                    let keep = min(take, room)
                    if keep > 0 {
                        store.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[i..<(i + keep)]))
                        messages[c].kept += keep
                    }
                    messages[c].received += take
                }
                remaining -= take
                i += take
                if remaining == 0 { current = nil }
                continue
            }
            // The 5-byte prefix: compressed flag, big-endian length.
            switch prefixFill {
            case 0: prefix.0 = p[i]
            case 1: prefix.1 = p[i]
            case 2: prefix.2 = p[i]
            case 3: prefix.3 = p[i]
            default: prefix.4 = p[i]
            }
            prefixFill += 1
            i += 1
            if prefixFill < 5 { continue }
            prefixFill = 0
            let length = Int(prefix.1) << 24 | Int(prefix.2) << 16 | Int(prefix.3) << 8 | Int(prefix.4)
            if messages.count < limits.maxMessages {
                messages.append(GRPCMessage(offset: store.count, kept: 0, declared: length, compressed: prefix.0 & 1 != 0, received: 0))
                current = messages.count - 1
            } else {
                dropped += 1
                current = nil
            }
            remaining = length
        }
    }
}

/// The canonical names of gRPC status codes.
func grpcStatusName(_ code: Int) -> String {
    let names = [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ]
    return code >= 0 && code < names.count ? names[code] : "UNKNOWN_STATUS"
}

/// Percent-decodes a grpc-message value (PROTOCOL-HTTP2.md: percent-encoded UTF-8).
func percentDecoded(_ s: String) -> String {
    guard s.utf8.contains(UInt8(ascii: "%")) else { return s }
    var out: [UInt8] = []
    let u = Array(s.utf8)
    var i = 0
    while i < u.count {
        if u[i] == UInt8(ascii: "%"), i + 2 < u.count, let h = hexDigit(u[i + 1]), let l = hexDigit(u[i + 2]) {
            out.append(h << 4 | l)
            i += 3
        } else {
            out.append(u[i])
            i += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}

@inline(__always)
func hexDigit(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
}
