// One HTTP/1.x message (request or response) as the dissector keeps it: a
// copy of its header block with spans into it, and a capped copy of its body.
// Message objects are recycled through a small per-stream pool, so their
// arrays keep their capacity from one message to the next.

import PluginKit

/// A byte range inside `Message.head` (or `trailerBytes`).
struct Span: Equatable {
    var start: Int32 = 0
    var end: Int32 = 0

    init() {}
    init(_ s: Int, _ e: Int) {
        start = Int32(truncatingIfNeeded: s)
        end = Int32(truncatingIfNeeded: max(s, e))
    }
    var isEmpty: Bool { start >= end }
    var count: Int { Int(end - start) }
}

extension UnsafeRawBufferPointer {
    /// `self[span]`, empty when out of range.
    @inline(__always)
    subscript(span s: Span) -> UnsafeRawBufferPointer { slice(self, Int(s.start), Int(s.end)) }
}

/// One header (or trailer) field.
struct Field {
    var name: Span
    var value: Span
    /// The value spans obs-fold line breaks (normalised to one SP when shown).
    var folded: Bool
}

/// The coding that must be undone to show a body.
enum BodyCoding: Equatable {
    case identity
    /// gzip or x-gzip (zlib auto-detects gzip and zlib wrappers).
    case gzip
    /// deflate: zlib-wrapped per RFC 9110, raw deflate in the wild; sniffed.
    case deflate
    /// br, zstd, compress, several stacked codings...: shown raw.
    case unsupported
}

/// How a message head parsed.
enum HeadStatus {
    case ok
    case badStartLine
    /// More than `maxHeaders` fields: the first ones were kept.
    case tooManyHeaders
}

final class Message {
    var isRequest = true

    // MARK: Head
    /// The header block as received: start line, fields, empty line.
    var head: [UInt8] = []
    var fields: [Field] = []
    var method = Span()
    var target = Span()
    var version = Span()
    var reason = Span()
    var versionMinor: UInt8 = 1
    var statusCode = 0

    // Fields the dissector looks at (first occurrence).
    var contentType: Span?
    var host: Span?
    var upgrade: Span?
    var location: Span?
    var contentEncoding: Span?
    var transferEncoding: Span?
    var connectionUpgrade = false
    var contentLength: UInt64?
    var contentLengthInvalid = false
    var chunked = false
    var transferEncodingInvalid = false
    var coding: BodyCoding = .identity

    // MARK: Body
    /// The framing gave this message a body section (possibly empty).
    var hasBody = false
    var headSize = 0
    /// Body bytes on the wire, chunk framing and trailers included.
    var bodyWire: UInt64 = 0
    /// Body bytes after de-chunking (still content-coded).
    var payloadSize: UInt64 = 0
    /// Body bytes after content decoding (== payloadSize for identity).
    var decodedSize: UInt64 = 0
    /// What is shown: decoded body (identity: the payload), capped.
    var display: [UInt8] = []
    /// The coded payload, capped; kept only for coded bodies.
    var raw: [UInt8] = []
    var displayTruncated = false
    var rawTruncated = false
    /// Decoding stopped at the decode cap; `decodedSize` is a lower bound.
    var sizeCapped = false
    var inflateStarted = false
    var decodeDone = false
    var streamEnded = false
    var decodeError: StaticString?
    /// The coded data is corrupt: the raw payload is shown instead.
    var decodeFatal = false
    var sniffByte: UInt8 = 0
    var sniffCount = 0
    var trailerBytes: [UInt8] = []
    var trailers: [Field] = []

    // MARK: Bookkeeping
    var firstTs: Int64 = 0
    var lastTs: Int64 = 0
    var flags: EntryFlags = []
    /// The first problem found, shown as "error".
    var error: StaticString?
    var complete = false

    var wireSize: UInt64 { UInt64(headSize) &+ bodyWire }
    var storedBytes: Int { head.count + display.count + raw.count + trailerBytes.count + fields.count * 20 }

    func reset(isRequest: Bool) {
        self.isRequest = isRequest
        head.removeAll(keepingCapacity: true)
        fields.removeAll(keepingCapacity: true)
        method = Span()
        target = Span()
        version = Span()
        reason = Span()
        versionMinor = 1
        statusCode = 0
        contentType = nil
        host = nil
        upgrade = nil
        location = nil
        contentEncoding = nil
        transferEncoding = nil
        connectionUpgrade = false
        contentLength = nil
        contentLengthInvalid = false
        chunked = false
        transferEncodingInvalid = false
        coding = .identity
        hasBody = false
        headSize = 0
        bodyWire = 0
        payloadSize = 0
        decodedSize = 0
        display.removeAll(keepingCapacity: true)
        raw.removeAll(keepingCapacity: true)
        displayTruncated = false
        rawTruncated = false
        sizeCapped = false
        inflateStarted = false
        decodeDone = false
        streamEnded = false
        decodeError = nil
        decodeFatal = false
        sniffByte = 0
        sniffCount = 0
        trailerBytes.removeAll(keepingCapacity: true)
        trailers.removeAll(keepingCapacity: true)
        firstTs = 0
        lastTs = 0
        flags = []
        error = nil
        complete = false
    }

    /// Records a problem: the entry is flagged malformed and the first reason is kept.
    func fail(_ reason: StaticString) {
        flags.insert(.malformed)
        if error == nil { error = reason }
    }

    var isInterim: Bool { !isRequest && statusCode >= 100 && statusCode < 200 && statusCode != 101 }

    // MARK: Parsing

    /// Parses `head` (already copied in). With a block cut at the size cap,
    /// the lines that are complete are parsed.
    func parseHead(maxHeaders: Int) -> HeadStatus {
        let status: HeadStatus = head.withUnsafeBytes { h in
            let n = h.count
            guard let lf0 = find(LF, in: h, from: 0, to: n) else { return .badStartLine }
            let line = lineContent(h, 0, lf0)
            if isRequest {
                guard let rl = parseRequestLine(line) else { return .badStartLine }
                method = Span(0, rl.methodEnd)
                target = Span(rl.targetStart, rl.targetEnd)
                version = Span(rl.versionStart, rl.versionStart + 8)
                versionMinor = rl.versionMinor
            } else {
                guard let sl = parseStatusLine(line) else { return .badStartLine }
                version = Span(0, 8)
                statusCode = sl.code
                reason = Span(sl.reasonStart, sl.reasonEnd)
                versionMinor = sl.versionMinor
            }
            return Message.parseFields(h, from: lf0 + 1, into: &fields, maxFields: maxHeaders, message: self)
        }
        if case .tooManyHeaders = status {
            fail("too many header fields")
            flags.insert(.truncated)
        }
        if status != .badStartLine { analyzeFields() }
        return status
    }

    /// Parses field lines of `h` from `from` up to the empty line or the
    /// last complete line. Returns `.tooManyHeaders` when `maxFields` is exceeded.
    static func parseFields(
        _ h: UnsafeRawBufferPointer, from: Int, into fields: inout [Field], maxFields: Int, message: Message
    ) -> HeadStatus {
        let n = h.count
        var pos = from
        while pos < n {
            guard let lf = find(LF, in: h, from: pos, to: n) else { break }
            var e = lf
            if e > pos, h[e - 1] == CR { e -= 1 }
            if e == pos { break }  // the empty line
            if isWhitespace(h[pos]) {
                // obs-fold: continues the previous value (a blank continuation adds nothing).
                let (vs, ve) = trimOWS(h, pos, e)
                if !fields.isEmpty, vs < ve {
                    var last = fields[fields.count - 1]
                    if last.value.isEmpty {
                        last.value = Span(vs, ve)
                    } else {
                        last.value.end = Int32(truncatingIfNeeded: ve)
                        last.folded = true
                    }
                    fields[fields.count - 1] = last
                } else if fields.isEmpty {
                    message.fail("whitespace before the first header field")
                }
            } else if let colon = find(UInt8(ascii: ":"), in: h, from: pos, to: e), colon > pos {
                if fields.count >= maxFields { return .tooManyHeaders }
                var ne = colon
                while ne > pos, isWhitespace(h[ne - 1]) { ne -= 1 }
                if ne != colon { message.fail("whitespace between field name and colon") }
                let (vs, ve) = trimOWS(h, colon + 1, e)
                fields.append(Field(name: Span(pos, ne), value: Span(vs, ve), folded: false))
            } else {
                message.fail("header line without a colon")
            }
            pos = lf + 1
        }
        return .ok
    }

    /// Derives framing and display facts from the fields.
    private func analyzeFields() {
        head.withUnsafeBytes { h in
            var codingCount = 0
            var lastCoding: BodyCoding = .identity
            var teSeenChunked = false
            var teLastChunked = false
            for f in fields {
                let name = h[span: f.name]
                switch name.count {
                case 4:
                    if host == nil, equalsLowercase(name, "host") { host = f.value }
                case 7:
                    if upgrade == nil, equalsLowercase(name, "upgrade") { upgrade = f.value }
                case 8:
                    if location == nil, equalsLowercase(name, "location") { location = f.value }
                case 10:
                    if equalsLowercase(name, "connection") {
                        forEachToken(h, f.value) { t in
                            if equalsLowercase(t, "upgrade") { connectionUpgrade = true }
                        }
                    }
                case 12:
                    if contentType == nil, equalsLowercase(name, "content-type") { contentType = f.value }
                case 14:
                    if equalsLowercase(name, "content-length") {
                        var any = false
                        forEachToken(h, f.value) { t in
                            any = true
                            guard let v = parseDecimal(t) else {
                                contentLengthInvalid = true
                                return
                            }
                            if let cl = contentLength, cl != v { contentLengthInvalid = true }
                            contentLength = v
                        }
                        if !any { contentLengthInvalid = true }
                    }
                case 16:
                    if equalsLowercase(name, "content-encoding") {
                        if contentEncoding == nil { contentEncoding = f.value }
                        forEachToken(h, f.value) { t in
                            let c = Message.coding(of: t)
                            if c != .identity {
                                codingCount += 1
                                lastCoding = c
                            }
                        }
                    }
                case 17:
                    if equalsLowercase(name, "transfer-encoding") {
                        if transferEncoding == nil { transferEncoding = f.value }
                        forEachToken(h, f.value) { t in
                            if teSeenChunked { transferEncodingInvalid = true }  // chunked must be last and once
                            if equalsLowercase(t, "chunked") {
                                teSeenChunked = true
                                teLastChunked = true
                            } else {
                                teLastChunked = false
                                let c = Message.coding(of: t)
                                if c != .identity {
                                    codingCount += 1
                                    lastCoding = c
                                }
                            }
                        }
                        if f.value.isEmpty { transferEncodingInvalid = true }
                    }
                default:
                    break
                }
            }
            chunked = teSeenChunked && teLastChunked && !transferEncodingInvalid
            if transferEncoding != nil, !chunked { transferEncodingInvalid = true }
            coding = codingCount == 0 ? .identity : codingCount == 1 ? lastCoding : .unsupported
        }
    }

    static func coding(of token: UnsafeRawBufferPointer) -> BodyCoding {
        if equalsLowercase(token, "identity") { return .identity }
        if equalsLowercase(token, "gzip") || equalsLowercase(token, "x-gzip") { return .gzip }
        if equalsLowercase(token, "deflate") { return .deflate }
        return .unsupported
    }

    /// Parses one trailer line (`line` without CR LF) into `trailers`.
    func addTrailerLine(_ line: UnsafeRawBufferPointer, maxFields: Int, maxBytes: Int) {
        guard !line.isEmpty else { return }
        if trailerBytes.count + line.count + 2 > maxBytes || (trailers.count >= maxFields && !isWhitespace(line[0])) {
            fail("trailer section too large")
            flags.insert(.truncated)
            return
        }
        let base = trailerBytes.count
        trailerBytes.append(contentsOf: line)
        trailerBytes.append(CR)
        trailerBytes.append(LF)
        trailerBytes.withUnsafeBytes { t in
            _ = Message.parseFields(t, from: base, into: &trailers, maxFields: maxFields, message: self)
        }
    }
}

/// Calls `body` with each comma-separated token of `b[span]`, trimmed, without
/// parameters (`;q=...`), skipping empty ones.
func forEachToken(_ b: UnsafeRawBufferPointer, _ span: Span, _ body: (UnsafeRawBufferPointer) -> Void) {
    var i = Int(span.start)
    let end = Int(span.end)
    while i < end {
        var j = i
        while j < end, b[j] != UInt8(ascii: ",") { j += 1 }
        var te = j
        if let semi = find(UInt8(ascii: ";"), in: b, from: i, to: j) { te = semi }
        let (s, e) = trimOWS(b, i, te)
        if s < e { body(slice(b, s, e)) }
        i = j + 1
    }
}
