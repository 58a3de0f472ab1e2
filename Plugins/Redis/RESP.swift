// RESP2/RESP3 values and a resumable, bounded reader.
//
// The reader consumes one token (a type line or a bulk body) at a time and
// keeps the partially built tree between calls, so a message is never
// buffered whole: bulk strings longer than the display cap are shown up to the
// cap and the rest is discarded with KS_PARSE_SKIP.

/// A decoded RESP value (what is kept of it: strings are cut at the cap).
public indirect enum RESPValue: Sendable {
    case simpleString(String)
    case simpleError(String)
    case integer(Int64)
    case bulkString(String)
    case null
    case double(String)
    case boolean(Bool)
    case bigNumber(String)
    case bulkError(String)
    case verbatim(format: String, text: String)
    case array([RESPValue])
    case set([RESPValue])
    case push([RESPValue])
    case map([(RESPValue, RESPValue)])
    /// A value preceded by an attribute map (`|`).
    case attributed(attributes: [(RESPValue, RESPValue)], value: RESPValue)

    /// The RESP3 type name used in entries.
    public var typeName: String {
        switch self {
        case .simpleString: return "simple-string"
        case .simpleError: return "simple-error"
        case .integer: return "integer"
        case .bulkString: return "bulk-string"
        case .null: return "null"
        case .double: return "double"
        case .boolean: return "boolean"
        case .bigNumber: return "big-number"
        case .bulkError: return "bulk-error"
        case .verbatim: return "verbatim-string"
        case .array: return "array"
        case .set: return "set"
        case .push: return "push"
        case .map: return "map"
        case .attributed(_, let v): return v.typeName
        }
    }

    /// The value without its attributes.
    public var bare: RESPValue {
        if case .attributed(_, let v) = self { return v.bare }
        return self
    }

    /// Text of a scalar (strings, numbers, booleans); nil for aggregates and null.
    public var text: String? {
        switch self.bare {
        case .simpleString(let s), .simpleError(let s), .bulkString(let s), .double(let s), .bigNumber(let s),
            .bulkError(let s):
            return s
        case .verbatim(_, let t): return t
        case .integer(let i): return String(i)
        case .boolean(let b): return b ? "true" : "false"
        default: return nil
        }
    }

    /// Elements of an array, set or push.
    public var elements: [RESPValue]? {
        switch self.bare {
        case .array(let e), .set(let e), .push(let e): return e
        default: return nil
        }
    }

    public var isError: Bool {
        switch self.bare {
        case .simpleError, .bulkError: return true
        default: return false
        }
    }
}

/// Caps of the reader.
public struct RESPLimits: Sendable {
    /// Longest type line, simple string or inline command.
    public var maxLineBytes = 64 << 10
    /// Most bytes shown per bulk string (the rest is skipped, the entry flagged truncated).
    public var maxBulkShown = 1024
    /// Longest bulk string accepted at all (Redis' proto-max-bulk-len default).
    public var maxBulkLength = 512 << 20
    /// Most elements kept per aggregate.
    public var maxElements = 1000
    /// Deepest nesting whose elements are kept.
    public var maxKeptDepth = 32
    /// Deepest nesting accepted at all (beyond: malformed, direction stopped).
    public var maxDepth = 512
    /// Most values kept per message.
    public var maxNodes = 10_000
    /// Most string bytes kept per message (beyond: strings are kept empty, flagged truncated).
    public var maxKeptBytes = 256 << 10
    /// Largest aggregate count accepted.
    public var maxCount = 1 << 31

    public init() {}
}

/// What the reader knows about the message it completed.
public struct RESPMessage {
    public var value: RESPValue
    public var size: UInt64
    public var timestampNs: Int64
    public var truncated: Bool
    public var malformed: Bool
    public var problem: String?
    /// A client command sent inline (space-separated words).
    public var inline: Bool
}

/// One direction's resumable RESP reader.
struct RESPReader {
    enum Kind { case array, set, push, map, attribute }

    struct Frame {
        var kind: Kind
        var remaining: Int
        var items: [RESPValue] = []
        var keep: Bool
        var attributes: [(RESPValue, RESPValue)]?
    }

    enum BulkKind { case bulk, verbatim, error }

    let limits: RESPLimits
    /// Client side: a top-level line not starting with `*` is an inline command.
    let isClient: Bool

    var frames: [Frame] = []
    /// A bulk body is awaited: (declared length, kind).
    var bulk: (length: Int, kind: BulkKind)?
    /// An attribute map waiting for the value it annotates.
    var pendingAttributes: [(RESPValue, RESPValue)]?
    var inMessage = false
    var size: UInt64 = 0
    var startTs: Int64 = 0
    var truncated = false
    var malformed = false
    var problem: String?
    var nodes = 0
    var keptBytes = 0

    init(limits: RESPLimits, isClient: Bool) {
        self.limits = limits
        self.isClient = isClient
    }

    enum Step {
        /// A whole top-level message.
        case message(RESPMessage)
        /// Need `n` more bytes (nil = any) beyond the unconsumed ones.
        case needMore(Int?)
        /// Discard `n` bytes after the consumed ones.
        case skip(Int)
        /// Desynchronised: the direction cannot continue.
        case fatal(String)
    }

    /// Parses from `b[pos...]`, advancing `pos` over what it consumed, until a
    /// message completes, more bytes are needed, bytes must be skipped, or a fatal error.
    mutating func step(_ b: UnsafeRawBufferPointer, _ pos: inout Int, ts: Int64) -> Step {
        while true {
            if !inMessage {
                // Redis ignores empty lines between commands; stray line ends
                // between replies are skipped the same way.
                while pos < b.count, b[pos] == 0x0D || b[pos] == 0x0A { pos += 1 }
                if pos >= b.count { return .needMore(nil) }
                // An inline command is taken whole or not at all.
                if isClient && b[pos] != UInt8(ascii: "*") {
                    return inlineCommand(b, &pos, ts: ts)
                }
                inMessage = true
                size = 0
                startTs = ts
                truncated = false
                malformed = false
                problem = nil
                nodes = 0
                keptBytes = 0
                pendingAttributes = nil
            }
            if let pendingBulk = bulk {
                let length = pendingBulk.length
                let kind = pendingBulk.kind
                let avail = b.count - pos
                if length <= limits.maxBulkShown {
                    if avail < length + 2 { return .needMore(length + 2 - avail) }
                    let text = keep(UnsafeRawBufferPointer(rebasing: b[pos..<(pos + length)]))
                    if b[pos + length] != 0x0D || b[pos + length + 1] != 0x0A { flag("bulk string not followed by CRLF") }
                    pos += length + 2
                    size += UInt64(length + 2)
                    bulk = nil
                    if let m = complete(makeBulk(text, kind)) { return .message(m) }
                    continue
                }
                let shown = limits.maxBulkShown
                if avail < shown { return .needMore(shown - avail) }
                let text = keep(UnsafeRawBufferPointer(rebasing: b[pos..<(pos + shown)]))
                pos += shown
                size += UInt64(length + 2)
                truncated = true
                bulk = nil
                let rest = length + 2 - shown
                // Bytes already here are consumed directly; only the remainder is skipped.
                let here = min(rest, b.count - pos)
                pos += here
                let m = complete(makeBulk(text, kind))
                if let m {
                    pendingSkip = rest - here
                    return .message(m)
                }
                if rest - here > 0 { return .skip(rest - here) }
                continue
            }
            // A type line.
            guard let lineEnd = findCRLF(b, from: pos) else {
                if b.count - pos > limits.maxLineBytes { return fail("line longer than \(limits.maxLineBytes) bytes") }
                return .needMore(nil)
            }
            guard lineEnd > pos else { return fail("empty line where a RESP type was expected") }
            let type = b[pos]
            let body = UnsafeRawBufferPointer(rebasing: b[(pos + 1)..<lineEnd])
            pos = lineEnd + 2
            size += UInt64(body.count + 3)
            if let step = typeLine(type, body) { return step }
        }
    }

    /// Bytes to discard after a message completed inside a large bulk string.
    var pendingSkip = 0

    private mutating func flag(_ p: String) {
        malformed = true
        if problem == nil { problem = p }
    }

    private mutating func fail(_ p: String) -> Step {
        flag(p)
        return .fatal(p)
    }

    private func makeBulk(_ text: String, _ kind: BulkKind) -> RESPValue {
        switch kind {
        case .bulk: return .bulkString(text)
        case .error: return .bulkError(text)
        case .verbatim:
            // "fmt:text"
            let u = Array(text.utf8)
            if u.count >= 4, u[3] == UInt8(ascii: ":") {
                return .verbatim(format: String(decoding: u[0..<3], as: UTF8.self), text: String(decoding: u[4...], as: UTF8.self))
            }
            return .verbatim(format: "", text: text)
        }
    }

    /// Handles one type line; returns a step when the caller must return.
    private mutating func typeLine(_ type: UInt8, _ body: UnsafeRawBufferPointer) -> Step? {
        let text = { String(decoding: body, as: UTF8.self) }
        switch type {
        case UInt8(ascii: "+"): return complete(.simpleString(capped(body))).map { .message($0) }
        case UInt8(ascii: "-"): return complete(.simpleError(capped(body))).map { .message($0) }
        case UInt8(ascii: ":"):
            guard let n = parseInt(body) else {
                flag("bad integer")
                return complete(.bigNumber(capped(body))).map { .message($0) }
            }
            return complete(.integer(n)).map { .message($0) }
        case UInt8(ascii: "_"): return complete(.null).map { .message($0) }
        case UInt8(ascii: ","): return complete(.double(capped(body))).map { .message($0) }
        case UInt8(ascii: "("): return complete(.bigNumber(capped(body))).map { .message($0) }
        case UInt8(ascii: "#"):
            if body.count == 1 && (body[0] == UInt8(ascii: "t") || body[0] == UInt8(ascii: "f")) {
                return complete(.boolean(body[0] == UInt8(ascii: "t"))).map { .message($0) }
            }
            flag("bad boolean \(text().prefix(16))")
            return complete(.null).map { .message($0) }
        case UInt8(ascii: "$"), UInt8(ascii: "="), UInt8(ascii: "!"):
            guard let n = parseInt(body) else { return fail("bad bulk length") }
            if n == -1 && type == UInt8(ascii: "$") { return complete(.null).map { .message($0) } }
            guard n >= 0 else { return fail("negative bulk length \(n)") }
            guard n <= Int64(limits.maxBulkLength) else { return fail("bulk length \(n) over the \(limits.maxBulkLength) limit") }
            bulk = (Int(n), type == UInt8(ascii: "$") ? .bulk : type == UInt8(ascii: "=") ? .verbatim : .error)
            return nil
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            guard let n = parseInt(body) else { return fail("bad aggregate length") }
            if n == -1 && type == UInt8(ascii: "*") { return complete(.null).map { .message($0) } }
            guard n >= 0 else { return fail("negative aggregate length \(n)") }
            guard n <= Int64(limits.maxCount) else { return fail("aggregate length \(n) over the limit") }
            guard frames.count < limits.maxDepth else { return fail("nesting deeper than \(limits.maxDepth)") }
            let kind: Kind
            switch type {
            case UInt8(ascii: "*"): kind = .array
            case UInt8(ascii: "~"): kind = .set
            case UInt8(ascii: ">"): kind = .push
            case UInt8(ascii: "%"): kind = .map
            default: kind = .attribute
            }
            let count = kind == .map || kind == .attribute ? Int(n) * 2 : Int(n)
            let parentKeeps = frames.last.map { $0.keep && $0.items.count < limits.maxElements * 2 } ?? true
            let keep = parentKeeps && frames.count < limits.maxKeptDepth
            if !keep { truncated = true }
            var frame = Frame(kind: kind, remaining: count, keep: keep)
            if kind != .attribute {
                frame.attributes = pendingAttributes
                pendingAttributes = nil
            }
            frames.append(frame)
            if count == 0 { return closeFrames(nil).map { .message($0) } }
            return nil
        default:
            return fail("unknown RESP type byte 0x\(String(type, radix: 16))")
        }
    }

    private mutating func capped(_ body: UnsafeRawBufferPointer) -> String {
        if body.count > limits.maxBulkShown {
            truncated = true
            return keep(UnsafeRawBufferPointer(rebasing: body[0..<limits.maxBulkShown]))
        }
        return keep(body)
    }

    /// The text of `body` within the message's byte budget ("" beyond it, flagged truncated).
    private mutating func keep(_ body: UnsafeRawBufferPointer) -> String {
        guard keptBytes + body.count <= limits.maxKeptBytes else {
            truncated = true
            return ""
        }
        keptBytes += body.count
        return String(decoding: body, as: UTF8.self)
    }

    /// A value finished: adds it to the open aggregate, closing those it fills.
    /// Returns the message when the top-level value is complete.
    private mutating func complete(_ v: RESPValue) -> RESPMessage? {
        var v = v
        if let a = pendingAttributes {
            pendingAttributes = nil
            v = .attributed(attributes: a, value: v)
        }
        return closeFrames(v)
    }

    private mutating func closeFrames(_ value: RESPValue?) -> RESPMessage? {
        var value = value
        while true {
            guard !frames.isEmpty else {
                // Top level.
                guard let v = value else { return nil }
                return finish(v)
            }
            let last = frames.count - 1
            if let v = value {
                if frames[last].keep && frames[last].items.count < limitFor(frames[last].kind) && nodes < limits.maxNodes {
                    frames[last].items.append(v)
                    nodes += 1
                } else {
                    truncated = true
                }
                frames[last].remaining -= 1
            }
            guard frames[last].remaining <= 0 else { return nil }
            let f = frames.removeLast()
            let made = build(f)
            if f.kind == .attribute {
                // An attribute annotates the value that follows it.
                if case .map(let pairs) = made { pendingAttributes = pairs }
                return nil
            }
            value = made
        }
    }

    private func limitFor(_ k: Kind) -> Int { k == .map || k == .attribute ? limits.maxElements * 2 : limits.maxElements }

    private func build(_ f: Frame) -> RESPValue {
        var v: RESPValue
        switch f.kind {
        case .array: v = .array(f.items)
        case .set: v = .set(f.items)
        case .push: v = .push(f.items)
        case .map, .attribute:
            var pairs: [(RESPValue, RESPValue)] = []
            pairs.reserveCapacity(f.items.count / 2)
            var i = 0
            while i + 1 < f.items.count {
                pairs.append((f.items[i], f.items[i + 1]))
                i += 2
            }
            v = .map(pairs)
        }
        if let a = f.attributes { v = .attributed(attributes: a, value: v) }
        return v
    }

    private mutating func finish(_ v: RESPValue) -> RESPMessage {
        inMessage = false
        return RESPMessage(
            value: v, size: size, timestampNs: startTs, truncated: truncated, malformed: malformed, problem: problem,
            inline: false)
    }

    /// A client line that is not RESP: an inline command, words separated by spaces.
    private mutating func inlineCommand(_ b: UnsafeRawBufferPointer, _ pos: inout Int, ts: Int64) -> Step {
        truncated = false
        keptBytes = 0
        var end = pos
        while end < b.count && b[end] != 0x0A { end += 1 }
        guard end < b.count else {
            if b.count - pos > limits.maxLineBytes {
                inMessage = true
                size = UInt64(b.count - pos)
                startTs = ts
                return fail("inline command longer than \(limits.maxLineBytes) bytes")
            }
            return .needMore(nil)
        }
        var lineEnd = end
        if lineEnd > pos && b[lineEnd - 1] == 0x0D { lineEnd -= 1 }
        var words: [RESPValue] = []
        var i = pos
        while i < lineEnd {
            while i < lineEnd && (b[i] == 0x20 || b[i] == 0x09) { i += 1 }
            guard i < lineEnd else { break }
            var j = i
            if b[i] == UInt8(ascii: "\"") || b[i] == UInt8(ascii: "'") {
                let q = b[i]
                j = i + 1
                while j < lineEnd && b[j] != q { j += 1 }
                let word = UnsafeRawBufferPointer(rebasing: b[(i + 1)..<j])
                if words.count < limits.maxElements { words.append(.bulkString(capped(word))) } else { truncated = true }
                i = min(lineEnd, j + 1)
                continue
            }
            while j < lineEnd && b[j] != 0x20 && b[j] != 0x09 { j += 1 }
            if words.count < limits.maxElements {
                words.append(.bulkString(capped(UnsafeRawBufferPointer(rebasing: b[i..<j]))))
            } else {
                truncated = true
            }
            i = j
        }
        let m = RESPMessage(
            value: .array(words), size: UInt64(end + 1 - pos), timestampNs: ts, truncated: truncated, malformed: false,
            problem: nil, inline: true)
        truncated = false
        pos = end + 1
        return .message(m)
    }

    /// The message cut short (end of stream or a fatal error): what was read of it.
    mutating func partial() -> RESPMessage? {
        guard inMessage else { return nil }
        var value: RESPValue? = nil
        if bulk != nil { value = .null; bulk = nil }
        while let f = frames.popLast() {
            var f = f
            if let v = value, f.keep { f.items.append(v) }
            value = build(f)
        }
        inMessage = false
        return RESPMessage(
            value: value ?? .null, size: size, timestampNs: startTs, truncated: true, malformed: true,
            problem: problem ?? "message cut short", inline: false)
    }
}

/// Index of the CR of the first CRLF at or after `from`.
@inline(__always)
func findCRLF(_ b: UnsafeRawBufferPointer, from: Int) -> Int? {
    var i = from
    while i + 1 < b.count {
        if b[i] == 0x0D && b[i + 1] == 0x0A { return i }
        i += 1
    }
    return nil
}

/// A decimal integer with an optional sign; nil when malformed or out of range.
func parseInt(_ b: UnsafeRawBufferPointer) -> Int64? {
    guard !b.isEmpty, b.count <= 20 else { return nil }
    var i = 0
    var negative = false
    if b[0] == UInt8(ascii: "-") || b[0] == UInt8(ascii: "+") {
        negative = b[0] == UInt8(ascii: "-")
        i = 1
    }
    guard i < b.count else { return nil }
    var n: Int64 = 0
    while i < b.count {
        let d = b[i] &- 0x30
        guard d < 10 else { return nil }
        let (m, o1) = n.multipliedReportingOverflow(by: 10)
        let (s, o2) = m.addingReportingOverflow(Int64(d))
        guard !o1, !o2 else { return nil }
        n = s
        i += 1
    }
    return negative ? -n : n
}
