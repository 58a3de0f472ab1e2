// Turning an exchange into an entry: the summary row and the HAR-shaped
// "request" / "response" objects, written straight from the stored bytes.
//
// Summary row (ks_entry_info): method, summary = request target as sent (with
// the query), status + statusText of the final response, request/response
// timestamps = capture time of each message's first byte, sizes = bytes on the
// wire (header block + body with its chunk framing), protocol index 0 for
// HTTP/1.1 (and 1.x, x != 0), 1 for HTTP/1.0 (the request's version, else the
// response's).
//
// Top-level keys written by this plugin (besides the host's envelope):
//   request           HAR request: method, url (absolute form as sent, else
//                     http://<Host><target>; the server address without Host),
//                     path (target path without query), httpVersion,
//                     headers [{name,value}] (obs-fold joined with one SP),
//                     queryString [{name,value}] (percent-decoded, + = SP),
//                     postData (when there is a body, or for an empty
//                     POST/PUT/PATCH), headersSize, bodySize (wire),
//                     trailers? [{name,value}], error? (first parse problem)
//   response          HAR response: status, statusText, httpVersion, headers,
//                     content, redirectURL (Location or ""), headersSize,
//                     bodySize (wire), trailers?, error?
//   interimResponses  1xx before the final response (100 Continue, 103 Early
//                     Hints...): [{status, statusText, httpVersion, headers,
//                     headersSize, timestamp (ms)}]
//   upgrade           after "101 Switching Protocols": the protocol switched to
//                     (the Upgrade field of the 101, e.g. "websocket", "h2c")
//   tunnel            true when a CONNECT was answered 2xx
// After "upgrade" or "tunnel" the connection's bytes are no longer parsed.
//
// postData / content: mimeType (Content-Type as sent, "" when absent), size
// (decoded size; the payload size when not decoded), text (UTF-8 text, or the
// bytes in base64 with "encoding": "base64"), truncated? (the shown text was
// cut at the display cap, or the body was cut short), and for content-coded
// bodies: contentEncoding (the field as sent), decoded (bool), encodedSize and
// compression (bytes saved, when positive) once decoded, sizeIsLowerBound?
// (decoding stopped at the decode cap), decodeError?. A body that is not
// decoded (br, zstd, stacked codings, corrupt data) is given raw, in base64.
// For an application/x-www-form-urlencoded request body, postData.params too.
//
// GraphQL (GraphQL.swift): an exchange whose request carries GraphQL is an
// entry of protocol index 2 (`graphql`), summary = the GraphQL summary
// (`query GetUser { user }`), with request.graphql and response.graphql
// written by GraphQLEntries next to the HTTP fields.

import GraphQLEntries
import PluginKit

extension HTTP1Dissector {
    /// Emits one exchange and releases it.
    func emit(_ x: Exchange, extraFlags: EntryFlags) {
        defer { retire(x) }
        let req = x.request
        let resp = x.response
        var flags = extraFlags
        if let req {
            flags.formUnion(req.flags)
            if req.shownTruncated { flags.insert(.truncated) }
        } else {
            flags.insert(.responseOnly)
        }
        if let resp {
            flags.formUnion(resp.flags)
            if resp.shownTruncated { flags.insert(.truncated) }
        } else {
            flags.insert(.requestOnly)
        }
        for m in x.interim { flags.formUnion(m.flags.intersection([.malformed, .afterGap, .truncated])) }

        var summary = EntrySummary(flags: flags)
        let versionSource = req ?? resp
        summary.protocolIndex = versionSource?.versionMinor == 0 ? 1 : 0
        let graphQL = req.flatMap { graphQLRequest($0) }
        if graphQL != nil { summary.protocolIndex = Self.graphQLProtocolIndex }
        if let req {
            summary.method = text(req, req.method, cap: 64)
            summary.summary = graphQL?.summary() ?? text(req, req.target, cap: 2048)
            summary.requestTimestampNs = req.firstTs
            summary.requestSize = req.wireSize
        }
        if let resp {
            summary.status = Int32(resp.statusCode)
            summary.statusText = text(resp, resp.reason, cap: 256)
            summary.responseTimestampNs = resp.firstTs
            summary.responseSize = resp.wireSize
        }
        host.emit(summary) { b in
            if let req {
                b.object("request") { b in
                    self.writeRequest(req, &b)
                    if let graphQL { GraphQLEntryWriter.write(graphQL, to: &b) }
                }
            }
            if let resp {
                b.object("response") { b in
                    self.writeResponse(resp, &b)
                    if graphQL != nil { GraphQLEntryWriter.write(self.graphQLResponse(resp), to: &b) }
                }
            }
            if !x.interim.isEmpty {
                b.array("interimResponses") { b in
                    for m in x.interim { b.object(nil) { self.writeInterim(m, &$0) } }
                }
            }
            if x.switched {
                if let resp, let u = resp.upgrade {
                    resp.head.withUnsafeBytes { b.string("upgrade", bytes: $0[span: u]) }
                } else if let req, let u = req.upgrade {
                    req.head.withUnsafeBytes { b.string("upgrade", bytes: $0[span: u]) }
                } else {
                    b.string("upgrade", "unknown")
                }
            }
            if x.tunnel { b.bool("tunnel", true) }
        }
    }

    /// A span of the head as a String for the summary row, cut at a UTF-8 boundary.
    private func text(_ m: Message, _ s: Span, cap: Int) -> String? {
        guard !s.isEmpty else { return nil }
        return m.head.withUnsafeBytes { h in
            let p = h[span: s]
            let n = utf8Boundary(p, limit: cap)
            return String(decoding: UnsafeRawBufferPointer(rebasing: p[0..<n]), as: UTF8.self)
        }
    }

    // MARK: Request

    private func writeRequest(_ m: Message, _ b: inout EntryBuilder) {
        m.head.withUnsafeBytes { h in
            let target = h[span: m.target]
            let parts = TargetParts(target)
            b.string("method", bytes: h[span: m.method])
            writeURL(m, h, parts, &b)
            if parts.absolute, parts.pathStart == parts.pathEnd {
                b.string("path", "/")
            } else {
                b.string("path", bytes: slice(target, parts.pathStart, parts.pathEnd))
            }
            b.string("httpVersion", bytes: h[span: m.version])
            writeFields("headers", h, m.fields, &b)
            b.array("queryString") { b in
                if let q = parts.query { self.writePairs(slice(target, q.0, q.1), &b) }
            }
            if m.hasBody, m.payloadSize > 0 || Self.expectsBody(h[span: m.method]) {
                b.object("postData") { self.writeBody(m, h, &$0) }
            }
            b.int("headersSize", Int64(m.headSize))
            b.uint("bodySize", m.bodyWire)
            writeTrailers(m, &b)
            if let e = m.error { b.string("error", bytes: staticBytes(e)) }
        }
    }

    /// Methods whose empty body is still worth a `postData`.
    private static func expectsBody(_ method: UnsafeRawBufferPointer) -> Bool {
        method.elementsEqual(staticBytes("POST")) || method.elementsEqual(staticBytes("PUT"))
            || method.elementsEqual(staticBytes("PATCH"))
    }

    /// `url`: the absolute form as sent, else `http://<Host><target>` (the server
    /// address when there is no Host field); CONNECT's authority form as sent.
    private func writeURL(_ m: Message, _ h: UnsafeRawBufferPointer, _ parts: TargetParts, _ b: inout EntryBuilder) {
        let target = h[span: m.target]
        if parts.absolute || h[span: m.method].elementsEqual(staticBytes("CONNECT")) {
            b.string("url", bytes: target)
            return
        }
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: staticBytes("http://"))
        if let host = m.host, !host.isEmpty {
            scratch.append(contentsOf: h[span: host])
        } else {
            appendEndpoint(flow.server, to: &scratch)
        }
        if !(target.count == 1 && target[0] == UInt8(ascii: "*")) {
            scratch.append(contentsOf: target)
        }
        scratch.withUnsafeBytes { b.string("url", bytes: $0) }
    }

    // MARK: Response

    private func writeResponse(_ m: Message, _ b: inout EntryBuilder) {
        m.head.withUnsafeBytes { h in
            b.int("status", Int64(m.statusCode))
            b.string("statusText", bytes: h[span: m.reason])
            b.string("httpVersion", bytes: h[span: m.version])
            writeFields("headers", h, m.fields, &b)
            b.object("content") { self.writeBody(m, h, &$0) }
            if let l = m.location {
                b.string("redirectURL", bytes: h[span: l])
            } else {
                b.string("redirectURL", "")
            }
            b.int("headersSize", Int64(m.headSize))
            b.uint("bodySize", m.bodyWire)
            writeTrailers(m, &b)
            if let e = m.error { b.string("error", bytes: staticBytes(e)) }
        }
    }

    private func writeInterim(_ m: Message, _ b: inout EntryBuilder) {
        m.head.withUnsafeBytes { h in
            b.int("status", Int64(m.statusCode))
            b.string("statusText", bytes: h[span: m.reason])
            b.string("httpVersion", bytes: h[span: m.version])
            writeFields("headers", h, m.fields, &b)
            b.int("headersSize", Int64(m.headSize))
            if m.firstTs != 0 { b.int("timestamp", m.firstTs / 1_000_000) }
            if let e = m.error { b.string("error", bytes: staticBytes(e)) }
        }
    }

    // MARK: Bodies

    /// `postData` / `content`: mimeType, size, text (UTF-8 text, else base64 with
    /// "encoding": "base64"), plus the content-coding facts.
    private func writeBody(_ m: Message, _ h: UnsafeRawBufferPointer, _ b: inout EntryBuilder) {
        let mime = m.contentType.map { h[span: $0] } ?? UnsafeRawBufferPointer(start: nil, count: 0)
        b.string("mimeType", bytes: mime)
        let coded = m.coding != .identity
        let decoded = m.decodedOK
        b.uint("size", coded && !decoded ? m.payloadSize : m.decodedSize)
        let showRaw = coded && !decoded
        let truncated = m.shownTruncated
        let shown = showRaw ? m.raw : m.display
        shown.withUnsafeBytes { p in
            guard !p.isEmpty else { return }
            let check = showRaw ? .binary : checkText(p, allowCutTail: truncated)
            switch check {
            case .text(let length):
                b.string("text", bytes: UnsafeRawBufferPointer(rebasing: p[0..<length]))
                if m.isRequest, hasPrefixLowercase(mime, "application/x-www-form-urlencoded") {
                    b.array("params") { b in self.writePairs(UnsafeRawBufferPointer(rebasing: p[0..<length]), &b) }
                }
            case .binary:
                b.bytes("text", p)
                b.string("encoding", "base64")
            }
        }
        if truncated { b.bool("truncated", true) }
        if coded {
            if let ce = m.contentEncoding {
                b.string("contentEncoding", bytes: h[span: ce])
            } else if let te = m.transferEncoding {
                b.string("contentEncoding", bytes: h[span: te])
            }
            b.bool("decoded", decoded)
            if decoded {
                b.uint("encodedSize", m.payloadSize)
                if m.decodedSize > m.payloadSize { b.uint("compression", m.decodedSize - m.payloadSize) }
                if m.sizeCapped { b.bool("sizeIsLowerBound", true) }
            }
            if let e = m.decodeError { b.string("decodeError", bytes: staticBytes(e)) }
        }
    }

    // MARK: Fields

    private func writeFields(
        _ key: StaticString, _ h: UnsafeRawBufferPointer, _ fields: [Field], _ b: inout EntryBuilder
    ) {
        b.array(key) { b in
            for f in fields {
                b.object(nil) { b in
                    b.string("name", bytes: h[span: f.name])
                    if f.folded {
                        self.unfold(h[span: f.value])
                        self.scratch.withUnsafeBytes { b.string("value", bytes: $0) }
                    } else {
                        b.string("value", bytes: h[span: f.value])
                    }
                }
            }
        }
    }

    private func writeTrailers(_ m: Message, _ b: inout EntryBuilder) {
        guard !m.trailers.isEmpty else { return }
        m.trailerBytes.withUnsafeBytes { t in writeFields("trailers", t, m.trailers, &b) }
    }

    /// Copies a folded value into `scratch`, each line break with its
    /// surrounding whitespace replaced by one SP.
    private func unfold(_ v: UnsafeRawBufferPointer) {
        scratch.removeAll(keepingCapacity: true)
        var i = 0
        let n = v.count
        while i < n {
            let c = v[i]
            if c == CR || c == LF {
                while let last = scratch.last, isWhitespace(last) { scratch.removeLast() }
                while i < n, v[i] == CR || v[i] == LF || isWhitespace(v[i]) { i += 1 }
                scratch.append(SP)
                continue
            }
            scratch.append(c)
            i += 1
        }
    }

    // MARK: Query strings

    /// `name=value&...` pairs as `{"name","value"}` objects, percent-decoded, `+` as space.
    private func writePairs(_ p: UnsafeRawBufferPointer, _ b: inout EntryBuilder) {
        let n = p.count
        var i = 0
        while i < n {
            let amp = find(UInt8(ascii: "&"), in: p, from: i, to: n) ?? n
            if amp > i {
                let eq = find(UInt8(ascii: "="), in: p, from: i, to: amp)
                let name = slice(p, i, eq ?? amp)
                let value = eq.map { slice(p, $0 + 1, amp) } ?? UnsafeRawBufferPointer(start: nil, count: 0)
                b.object(nil) { b in
                    self.writeDecoded("name", name, &b)
                    self.writeDecoded("value", value, &b)
                }
            }
            i = amp + 1
        }
    }

    private func writeDecoded(_ key: StaticString, _ p: UnsafeRawBufferPointer, _ b: inout EntryBuilder) {
        if find(UInt8(ascii: "%"), in: p, from: 0, to: p.count) == nil,
            find(UInt8(ascii: "+"), in: p, from: 0, to: p.count) == nil
        {
            b.string(key, bytes: p)
            return
        }
        scratch.removeAll(keepingCapacity: true)
        percentDecode(p, into: &scratch)
        scratch.withUnsafeBytes { b.string(key, bytes: $0) }
    }
}

/// Appends the percent-decoded form of `p` (`+` as space; bad escapes kept as is).
func percentDecode(_ p: UnsafeRawBufferPointer, into out: inout [UInt8]) {
    let n = p.count
    var i = 0
    while i < n {
        let c = p[i]
        if c == UInt8(ascii: "+") {
            out.append(SP)
            i += 1
        } else if c == UInt8(ascii: "%"), i + 2 < n,
            let hi = hexValue(p[i + 1]), let lo = hexValue(p[i + 2])
        {
            out.append(hi << 4 | lo)
            i += 3
        } else {
            out.append(c)
            i += 1
        }
    }
}

/// The parts of a request target.
struct TargetParts {
    var absolute = false
    var pathStart = 0
    var pathEnd = 0
    /// Query without the '?', fragment excluded.
    var query: (Int, Int)?

    init(_ t: UnsafeRawBufferPointer) {
        let n = t.count
        let end = find(UInt8(ascii: "#"), in: t, from: 0, to: n) ?? n
        // absolute-form: scheme "://" authority [path]
        var i = 0
        if n > 0, lowerASCII(t[0]) >= UInt8(ascii: "a"), lowerASCII(t[0]) <= UInt8(ascii: "z") {
            i = 1
            while i < n {
                let c = t[i]
                let ok =
                    (lowerASCII(c) >= UInt8(ascii: "a") && lowerASCII(c) <= UInt8(ascii: "z")) || isDigit(c)
                    || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") || c == UInt8(ascii: ".")
                if !ok { break }
                i += 1
            }
            if i + 2 < n, t[i] == UInt8(ascii: ":"), t[i + 1] == UInt8(ascii: "/"), t[i + 2] == UInt8(ascii: "/") {
                absolute = true
                var j = i + 3
                while j < end, t[j] != UInt8(ascii: "/"), t[j] != UInt8(ascii: "?") { j += 1 }
                pathStart = j
            }
        }
        let q = find(UInt8(ascii: "?"), in: t, from: pathStart, to: end)
        pathEnd = q ?? end
        if let q { query = (q + 1, end) }
    }
}

/// Appends `addr:port` (IPv6 in brackets; port omitted when 80).
func appendEndpoint(_ e: Endpoint, to out: inout [UInt8]) {
    appendEndpoint(family: e.family, address: e.addressBytes, port: e.port, to: &out)
}

func appendEndpoint(family: UInt8, address a: [UInt8], port: UInt16, to out: inout [UInt8]) {
    func appendDecimal(_ v: Int) {
        if v >= 10 { appendDecimal(v / 10) }
        out.append(UInt8(ascii: "0") + UInt8(v % 10))
    }
    if family == 6, a.count == 16 {
        // RFC 5952: lower-case hex, no leading zeros, the longest run (>= 2) of zero groups as "::".
        let groups = (0..<8).map { Int(a[2 * $0]) << 8 | Int(a[2 * $0 + 1]) }
        var bestStart = -1
        var bestLength = 1
        var g = 0
        while g < 8 {
            if groups[g] == 0 {
                var e = g
                while e < 8, groups[e] == 0 { e += 1 }
                if e - g > bestLength {
                    bestStart = g
                    bestLength = e - g
                }
                g = e
            } else {
                g += 1
            }
        }
        let hex = staticBytes("0123456789abcdef")
        out.append(UInt8(ascii: "["))
        g = 0
        while g < 8 {
            if g == bestStart {
                out.append(contentsOf: staticBytes("::"))
                g += bestLength
                continue
            }
            if g > 0, g != bestStart + bestLength || bestStart < 0 { out.append(UInt8(ascii: ":")) }
            let v = groups[g]
            var started = false
            for shift in stride(from: 12, through: 0, by: -4) {
                let d = (v >> shift) & 0xF
                if d != 0 || started || shift == 0 {
                    out.append(hex[d])
                    started = true
                }
            }
            g += 1
        }
        out.append(UInt8(ascii: "]"))
    } else if a.count >= 4 {
        for k in 0..<4 {
            if k > 0 { out.append(UInt8(ascii: ".")) }
            appendDecimal(Int(a[k]))
        }
    } else {
        out.append(contentsOf: staticBytes("unknown"))
    }
    if port != 80 {
        out.append(UInt8(ascii: ":"))
        appendDecimal(Int(port))
    }
}

extension Message {
    /// What is shown of the body was cut (display cap, decode cap, or lost bytes).
    var shownTruncated: Bool {
        switch coding {
        case .identity: return displayTruncated
        case .gzip, .deflate: return decodedOK ? displayTruncated : rawTruncated
        case .unsupported: return rawTruncated
        }
    }
}
