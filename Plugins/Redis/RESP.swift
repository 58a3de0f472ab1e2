// RESP2/RESP3 values and a resumable, bounded reader.
//
// The reader consumes one token (a type line or a bulk body) at a time and
// keeps the partial message between calls, so a message is never buffered
// whole: bulk strings longer than the display cap are shown up to the cap and
// the rest is discarded with KS_PARSE_SKIP.
//
// A message is kept flat, not as a tree: its values in pre-order in one node
// array, their text in one byte array, both reused from message to message, so
// reading a reply allocates nothing once the arrays have grown.

/// One value of a message. Aggregates are followed by their kept children
/// (each with its own subtree); an attribute node (`|`, its pairs as children)
/// precedes the value it annotates and is not counted among its parent's children.
struct RESPNode {
    /// The RESP type byte: `+ - : $ _ , # ( ! = * ~ > % |`.
    var type: UInt8
    /// Aggregates: children kept. Scalars: 0.
    var count: Int32 = 0
    /// Text of a scalar in the message's bytes (integers, doubles and booleans keep their wire text).
    var start: Int32 = 0
    var length: Int32 = 0
    /// `:` its value, `#` 1 or 0.
    var integer: Int64 = 0

    var isAggregate: Bool {
        switch type {
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"): return true
        default: return false
        }
    }

    /// A scalar with text (strings, numbers, booleans, errors); not null, not aggregates.
    var hasText: Bool { !isAggregate && type != UInt8(ascii: "_") }

    /// Integers, booleans and doubles: numbers in JSON, so never flattened into map text.
    var isNumberLike: Bool {
        type == UInt8(ascii: ":") || type == UInt8(ascii: "#") || type == UInt8(ascii: ",")
    }

    var isError: Bool { type == UInt8(ascii: "-") || type == UInt8(ascii: "!") }

    /// The RESP3 type name used in entries.
    var typeName: StaticString {
        switch type {
        case UInt8(ascii: "+"): return "simple-string"
        case UInt8(ascii: "-"): return "simple-error"
        case UInt8(ascii: ":"): return "integer"
        case UInt8(ascii: "$"): return "bulk-string"
        case UInt8(ascii: ","): return "double"
        case UInt8(ascii: "#"): return "boolean"
        case UInt8(ascii: "("): return "big-number"
        case UInt8(ascii: "!"): return "bulk-error"
        case UInt8(ascii: "="): return "verbatim-string"
        case UInt8(ascii: "*"): return "array"
        case UInt8(ascii: "~"): return "set"
        case UInt8(ascii: ">"): return "push"
        case UInt8(ascii: "%"): return "map"
        case UInt8(ascii: "|"): return "attribute"
        default: return "null"
        }
    }
}

/// One message's values: nodes in pre-order (the root first) and their text.
struct RESPValues {
    var nodes: [RESPNode] = []
    var bytes: [UInt8] = []

    mutating func removeAll() {
        nodes.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
    }

    /// Index of the value itself when `i` is an attribute prefix (skips the attributes).
    func bare(_ i: Int) -> Int {
        var i = i
        while i < nodes.count, nodes[i].type == UInt8(ascii: "|") { i = attributeEnd(i) }
        return min(i, nodes.count - 1)
    }

    /// Index just past the value at `i`: its subtree, and for an attribute prefix
    /// the value it annotates too.
    func after(_ i: Int) -> Int {
        var i = i
        var open = 1
        while open > 0, i < nodes.count {
            // An attribute's pairs are followed by its value, which takes its slot.
            open += Int(nodes[i].count) - (nodes[i].type == UInt8(ascii: "|") ? 0 : 1)
            i += 1
        }
        return i
    }

    /// Index just past the pairs of attribute node `i` (where its value starts).
    func attributeEnd(_ i: Int) -> Int {
        var j = i + 1
        for _ in 0..<Int(nodes[i].count) { j = after(j) }
        return j
    }

    /// The indices of the children of aggregate `i` (each the start of its subtree,
    /// attribute prefixes included with the value they annotate).
    func children(_ i: Int) -> ChildIterator { ChildIterator(values: self, position: i + 1, left: Int(nodes[i].count)) }

    struct ChildIterator: IteratorProtocol, Sequence {
        let values: RESPValues
        var position: Int
        var left: Int
        mutating func next() -> Int? {
            guard left > 0, position < values.nodes.count else { return nil }
            let i = position
            position = values.after(i)  // past attribute prefixes and the value they annotate
            left -= 1
            return i
        }
    }

    /// Calls `body` with the text of node `i` (empty for aggregates and null).
    @inline(__always)
    func withText<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let n = nodes[i]
        return bytes.withUnsafeBytes { b in
            body(UnsafeRawBufferPointer(rebasing: b[Int(n.start)..<Int(n.start + n.length)]))
        }
    }

    /// Appends `other`'s values (re-based onto this message's bytes).
    mutating func append(_ other: RESPValues) {
        let base = Int32(bytes.count)
        bytes.append(contentsOf: other.bytes)
        for var n in other.nodes {
            n.start += base
            nodes.append(n)
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

/// What the reader knows about the message it completed; its values are the
/// reader's `values` until the next call.
struct RESPMessage {
    var size: UInt64
    var timestampNs: Int64
    var truncated: Bool
    var malformed: Bool
    var problem: String?
    /// A client command sent inline (space-separated words).
    var inline: Bool
}

/// One direction's resumable RESP reader.
struct RESPReader {
    struct Frame {
        /// Index of the aggregate's node, nil when the aggregate itself was dropped.
        var node: Int?
        var remaining: Int
        var keep: Bool
        var limit: Int
        var kept = 0
        var isAttribute: Bool
    }

    enum BulkKind { case bulk, verbatim, error }

    let limits: RESPLimits
    /// Client side: a top-level line not starting with `*` is an inline command.
    let isClient: Bool

    /// The message being read, then the one just completed.
    var values = RESPValues()
    var frames: [Frame] = []
    /// A bulk body is awaited: (declared length, kind).
    var bulk: (length: Int, kind: BulkKind)?
    /// Index of an attribute node that waits for the value it annotates.
    var pendingAttribute: Int?
    var inMessage = false
    var size: UInt64 = 0
    var startTs: Int64 = 0
    var truncated = false
    var malformed = false
    var problem: String?
    var keptBytes = 0

    init(limits: RESPLimits, isClient: Bool) {
        self.limits = limits
        self.isClient = isClient
    }

    enum Step {
        /// A whole top-level message (its values in `values`).
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
                values.removeAll()
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
                keptBytes = 0
                pendingAttribute = nil
            }
            if let pendingBulk = bulk {
                let length = pendingBulk.length
                let kind = pendingBulk.kind
                let avail = b.count - pos
                if length <= limits.maxBulkShown {
                    if avail < length + 2 { return .needMore(length + 2 - avail) }
                    if b[pos + length] != 0x0D || b[pos + length + 1] != 0x0A { flag("bulk string not followed by CRLF") }
                    let text = UnsafeRawBufferPointer(rebasing: b[pos..<(pos + length)])
                    pos += length + 2
                    size += UInt64(length + 2)
                    bulk = nil
                    if complete(bulkType(kind), text: text) { return .message(finish()) }
                    continue
                }
                let shown = limits.maxBulkShown
                if avail < shown { return .needMore(shown - avail) }
                let text = UnsafeRawBufferPointer(rebasing: b[pos..<(pos + shown)])
                pos += shown
                size += UInt64(length + 2)
                truncated = true
                bulk = nil
                let rest = length + 2 - shown
                // Bytes already here are consumed directly; only the remainder is skipped.
                let here = min(rest, b.count - pos)
                let done = complete(bulkType(kind), text: text)
                pos += here
                if done {
                    pendingSkip = rest - here
                    return .message(finish())
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

    private func bulkType(_ kind: BulkKind) -> UInt8 {
        switch kind {
        case .bulk: return UInt8(ascii: "$")
        case .error: return UInt8(ascii: "!")
        case .verbatim: return UInt8(ascii: "=")
        }
    }

    /// Handles one type line; returns a step when the caller must return.
    private mutating func typeLine(_ type: UInt8, _ body: UnsafeRawBufferPointer) -> Step? {
        switch type {
        case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: ","), UInt8(ascii: "("):
            return complete(type, text: body, cap: true) ? .message(finish()) : nil
        case UInt8(ascii: ":"):
            guard let n = parseInt(body) else {
                flag("bad integer")
                return complete(UInt8(ascii: "("), text: body, cap: true) ? .message(finish()) : nil
            }
            return complete(type, text: body, integer: n) ? .message(finish()) : nil
        case UInt8(ascii: "_"): return complete(type) ? .message(finish()) : nil
        case UInt8(ascii: "#"):
            if body.count == 1 && (body[0] == UInt8(ascii: "t") || body[0] == UInt8(ascii: "f")) {
                let t = body[0] == UInt8(ascii: "t")
                return complete(type, text: t ? trueText : falseText, integer: t ? 1 : 0) ? .message(finish()) : nil
            }
            flag("bad boolean \(String(decoding: body.prefix(16), as: UTF8.self))")
            return complete(UInt8(ascii: "_")) ? .message(finish()) : nil
        case UInt8(ascii: "$"), UInt8(ascii: "="), UInt8(ascii: "!"):
            guard let n = parseInt(body) else { return fail("bad bulk length") }
            if n == -1 && type == UInt8(ascii: "$") { return complete(UInt8(ascii: "_")) ? .message(finish()) : nil }
            guard n >= 0 else { return fail("negative bulk length \(n)") }
            guard n <= Int64(limits.maxBulkLength) else { return fail("bulk length \(n) over the \(limits.maxBulkLength) limit") }
            bulk = (Int(n), type == UInt8(ascii: "$") ? .bulk : type == UInt8(ascii: "=") ? .verbatim : .error)
            return nil
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            guard let n = parseInt(body) else { return fail("bad aggregate length") }
            if n == -1 && type == UInt8(ascii: "*") { return complete(UInt8(ascii: "_")) ? .message(finish()) : nil }
            guard n >= 0 else { return fail("negative aggregate length \(n)") }
            guard n <= Int64(limits.maxCount) else { return fail("aggregate length \(n) over the limit") }
            guard frames.count < limits.maxDepth else { return fail("nesting deeper than \(limits.maxDepth)") }
            let pairs = type == UInt8(ascii: "%") || type == UInt8(ascii: "|")
            let count = pairs ? Int(n) * 2 : Int(n)
            let isAttribute = type == UInt8(ascii: "|")
            // Is the aggregate itself kept by its parent, and does it keep its elements?
            let node = add(RESPNode(type: type), countsAsElement: !isAttribute)
            let keep = node != nil && frames.count < limits.maxKeptDepth
            if !keep { truncated = true }
            frames.append(Frame(node: node, remaining: count, keep: keep,
                                limit: pairs ? limits.maxElements * 2 : limits.maxElements, isAttribute: isAttribute))
            if count == 0 { return closeFrames() ? .message(finish()) : nil }
            return nil
        default:
            return fail("unknown RESP type byte 0x\(String(type, radix: 16))")
        }
    }

    /// Adds a node to the open aggregate (or as the root) when there is room;
    /// returns its index, nil when it was dropped (the message is then truncated).
    private mutating func add(_ node: RESPNode, countsAsElement: Bool = true) -> Int? {
        var kept: Bool
        if let last = frames.indices.last {
            kept = frames[last].keep && frames[last].kept < frames[last].limit && values.nodes.count < limits.maxNodes
            if kept && countsAsElement {
                frames[last].kept += 1
                if let p = frames[last].node { values.nodes[p].count += 1 }
            }
        } else {
            kept = true
        }
        if !kept {
            truncated = true
            // An attribute whose value is dropped goes with it.
            if countsAsElement, let a = pendingAttribute {
                values.nodes.removeLast(values.nodes.count - a)
                pendingAttribute = nil
            }
            return nil
        }
        if countsAsElement { pendingAttribute = nil }
        values.nodes.append(node)
        return values.nodes.count - 1
    }

    /// A scalar finished: adds it to the open aggregate and closes those it fills.
    /// Returns true when the top-level value is complete.
    private mutating func complete(
        _ type: UInt8, text: UnsafeRawBufferPointer? = nil, integer: Int64 = 0, cap: Bool = false
    ) -> Bool {
        var node = RESPNode(type: type, integer: integer)
        let index = add(node)
        if let index, var text {
            if cap && text.count > limits.maxBulkShown {
                truncated = true
                text = UnsafeRawBufferPointer(rebasing: text[0..<limits.maxBulkShown])
            }
            // Numbers and booleans always keep their text; strings within the message's budget.
            if type == UInt8(ascii: ":") || type == UInt8(ascii: "#") || keptBytes + text.count <= limits.maxKeptBytes {
                if type != UInt8(ascii: ":") && type != UInt8(ascii: "#") { keptBytes += text.count }
                node.start = Int32(values.bytes.count)
                node.length = Int32(text.count)
                values.bytes.append(contentsOf: text)
                values.nodes[index] = node
            } else {
                truncated = true
            }
        }
        if let last = frames.indices.last { frames[last].remaining -= 1 }
        return closeFrames()
    }

    /// Closes the aggregates that are full. True when the top-level value is complete.
    private mutating func closeFrames() -> Bool {
        while let last = frames.indices.last {
            guard frames[last].remaining <= 0 else { return false }
            let f = frames.removeLast()
            if f.isAttribute {
                // It annotates the value that follows; it is not an element of its parent.
                pendingAttribute = f.node
                return false
            }
            if let parent = frames.indices.last { frames[parent].remaining -= 1 }
        }
        // Top level: done unless only an attribute was read.
        return pendingAttribute == nil
    }

    private mutating func finish() -> RESPMessage {
        inMessage = false
        return RESPMessage(
            size: size, timestampNs: startTs, truncated: truncated, malformed: malformed, problem: problem, inline: false)
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
        values.nodes.append(RESPNode(type: UInt8(ascii: "*")))
        var i = pos
        while i < lineEnd {
            while i < lineEnd && (b[i] == 0x20 || b[i] == 0x09) { i += 1 }
            guard i < lineEnd else { break }
            var j = i
            var word: UnsafeRawBufferPointer
            if b[i] == UInt8(ascii: "\"") || b[i] == UInt8(ascii: "'") {
                let q = b[i]
                j = i + 1
                while j < lineEnd && b[j] != q { j += 1 }
                word = UnsafeRawBufferPointer(rebasing: b[(i + 1)..<j])
                i = min(lineEnd, j + 1)
            } else {
                while j < lineEnd && b[j] != 0x20 && b[j] != 0x09 { j += 1 }
                word = UnsafeRawBufferPointer(rebasing: b[i..<j])
                i = j
            }
            guard values.nodes[0].count < limits.maxElements else {
                truncated = true
                continue
            }
            if word.count > limits.maxBulkShown {
                truncated = true
                word = UnsafeRawBufferPointer(rebasing: word[0..<limits.maxBulkShown])
            }
            var node = RESPNode(type: UInt8(ascii: "$"))
            if keptBytes + word.count <= limits.maxKeptBytes {
                keptBytes += word.count
                node.start = Int32(values.bytes.count)
                node.length = Int32(word.count)
                values.bytes.append(contentsOf: word)
            } else {
                truncated = true
            }
            values.nodes.append(node)
            values.nodes[0].count += 1
        }
        let m = RESPMessage(
            size: UInt64(end + 1 - pos), timestampNs: ts, truncated: truncated, malformed: false, problem: nil,
            inline: true)
        truncated = false
        pos = end + 1
        return .message(m)
    }

    /// The message cut short (end of stream or a fatal error): what was read of it,
    /// in `values`; nil when no message was under way.
    mutating func partial() -> RESPMessage? {
        guard inMessage else { return nil }
        // A bulk string under way, or an attribute without its value, ends as a null.
        if bulk != nil || pendingAttribute != nil {
            bulk = nil
            _ = add(RESPNode(type: UInt8(ascii: "_")))
        }
        frames.removeAll(keepingCapacity: true)
        pendingAttribute = nil
        if values.nodes.isEmpty { values.nodes.append(RESPNode(type: UInt8(ascii: "_"))) }
        inMessage = false
        return RESPMessage(
            size: size, timestampNs: startTs, truncated: true, malformed: true,
            problem: problem ?? "message cut short", inline: false)
    }
}

private let trueBytes: [UInt8] = Array("true".utf8)
private let falseBytes: [UInt8] = Array("false".utf8)
/// Text of RESP3 booleans (static storage, valid for the process).
private nonisolated(unsafe) let trueText = trueBytes.withUnsafeBytes { UnsafeRawBufferPointer(copying: $0) }
private nonisolated(unsafe) let falseText = falseBytes.withUnsafeBytes { UnsafeRawBufferPointer(copying: $0) }

extension UnsafeRawBufferPointer {
    /// A copy of `bytes` in memory that is never freed (for process-lifetime constants).
    init(copying bytes: UnsafeRawBufferPointer) {
        let m = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        m.copyMemory(from: bytes)
        self.init(m)
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
