// HTTP/2 over cleartext started by HTTP/1.1 `Upgrade: h2c` (RFC 7540 section
// 3.2). The ABI cannot hand a stream from the HTTP/1 plugin to this one, so
// this plugin claims such connections at probe time and reads the HTTP/1.1
// request and the server's answer itself: after `101 Switching Protocols` the
// request continues as stream 1 (its response comes in HTTP/2 frames); a
// server that ignores the upgrade answers in HTTP/1.1, and that exchange is
// emitted as it is, after which the connection is no longer parsed.

import PluginKit

/// A parsed HTTP/1.1 head: start line words and fields (lines are short; made once per connection).
struct HTTP1Head {
    var words: [String] = []
    var fields: [(name: String, value: String)] = []
    var size = 0

    func field(_ name: String) -> String? {
        fields.first { $0.name.lowercased() == name }?.value
    }

    /// Whether a comma-separated field contains `token` (case-insensitive).
    func hasToken(_ name: String, _ token: String) -> Bool {
        fields.contains { f in
            f.name.lowercased() == name
                && f.value.split(separator: ",").contains { $0.trimmingSpaces.lowercased() == token }
        }
    }

    var contentLength: Int? {
        guard let v = field("content-length")?.trimmingSpaces, !v.isEmpty, v.count <= 15,
            v.allSatisfy({ $0.isASCII && $0.isNumber })
        else { return nil }
        return Int(v)
    }

    /// Parses a head ending with an empty line in `b`: nil when incomplete (or
    /// `b` holds `max` bytes without one: then `tooLong`).
    static func parse(_ b: UnsafeRawBufferPointer, max: Int, tooLong: inout Bool) -> HTTP1Head? {
        let limit = Swift.min(b.count, max)
        var end = -1
        var i = 3
        while i < limit {
            if b[i] == 0x0A, b[i - 1] == 0x0D, b[i - 2] == 0x0A, b[i - 3] == 0x0D {
                end = i + 1
                break
            }
            i += 1
        }
        if end < 0 {
            tooLong = b.count >= max
            return nil
        }
        var head = HTTP1Head()
        head.size = end
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: b[0..<(end - 4)]), as: UTF8.self)
        var first = true
        for line in text.split(separator: "\r\n", omittingEmptySubsequences: false) {
            if first {
                head.words = line.split(separator: " ", maxSplits: 2).map(String.init)
                first = false
            } else if let colon = line.firstIndex(of: ":") {
                head.fields.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingSpaces))
            }
        }
        return head
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}

/// Whether `b` starts like an HTTP/1.x request line (an upper-case token and a space).
func looksLikeHTTP1Request(_ b: UnsafeRawBufferPointer) -> Bool {
    var i = 0
    while i < b.count, i < 16, b[i] >= 0x41, b[i] <= 0x5A { i += 1 }
    return i > 0 && i < b.count && b[i] == 0x20
}

/// Whether `b` is so far only upper-case letters (a method name still arriving).
func couldBeHTTP1Method(_ b: UnsafeRawBufferPointer) -> Bool {
    guard !b.isEmpty, b.count < 16 else { return false }
    return b.allSatisfy { $0 >= 0x41 && $0 <= 0x5A }
}

/// The probe's view of an `Upgrade: h2c` request: `true` when the whole head is
/// there and asks for h2c with HTTP2-Settings, `false` when it does not, nil when
/// more bytes would tell.
func isH2CUpgradeRequest(_ b: UnsafeRawBufferPointer, max: Int) -> Bool? {
    guard looksLikeHTTP1Request(b) else { return false }
    var tooLong = false
    guard let head = HTTP1Head.parse(b, max: max, tooLong: &tooLong) else { return tooLong ? false : nil }
    return head.words.count == 3 && head.words[2].hasPrefix("HTTP/1.1") && head.hasToken("upgrade", "h2c")
        && head.field("http2-settings") != nil
}

enum HeadStep {
    case consumed(Int)
    case needMore
}

extension HTTP2Dissector {
    /// Reads the upgrade request (client) or the server's HTTP/1.1 answer.
    func readHTTP1Head(_ st: inout DirectionState, _ d: Direction, _ b: UnsafeRawBufferPointer, ts: Int64) -> HeadStep {
        var tooLong = false
        guard let head = HTTP1Head.parse(b, max: limits.maxHTTP1HeadBytes, tooLong: &tooLong) else {
            if tooLong {
                noteConnection("HTTP/1.1 head longer than \(limits.maxHTTP1HeadBytes) bytes")
                st.mode = .passthrough
                return .consumed(b.count)
            }
            return .needMore
        }
        if d == .clientToServer {
            readUpgradeRequest(&st, head, ts: ts)
        } else {
            readUpgradeResponse(&st, head, ts: ts)
        }
        return .consumed(head.size)
    }

    private func readUpgradeRequest(_ st: inout DirectionState, _ head: HTTP1Head, ts: Int64) {
        guard head.words.count == 3, head.hasToken("upgrade", "h2c"), let s = streamFor(.clientToServer, 1, opening: true)
        else {
            noteConnection("HTTP/1.1 request without Upgrade: h2c")
            st.mode = .passthrough
            return
        }
        startSeen = true
        upgradePending = true
        s.upgraded = true
        let r = s.request
        r.saw(frameBytes: head.size, at: ts)
        // RFC 7540 3.2: the request is stream 1's; its pseudo-header fields come from the request line and Host.
        add(r.headers, ":method", head.words[0])
        add(r.headers, ":path", head.words[1])
        add(r.headers, ":scheme", "http")
        if let host = head.field("host") { add(r.headers, ":authority", host) }
        for f in head.fields { add(r.headers, f.name, f.value) }
        r.headers.present = true
        r.headers.wireSize = head.size
        if isGRPCContentType(r.headers) { s.isGRPC = true }
        if let n = head.contentLength, n > 0 {
            st.mode = .http1Body(n)
        } else {
            r.ended = true
            st.mode = .awaitPreface
        }
    }

    private func readUpgradeResponse(_ st: inout DirectionState, _ head: HTTP1Head, ts: Int64) {
        let code = head.words.count >= 2 ? Int(head.words[1]) ?? 0 : 0
        let s = streams[1]
        if code == 101 {
            s?.upgradeAccepted = true
            s?.response.saw(frameBytes: head.size, at: ts)
            upgradePending = false
            st.mode = .frames
            return
        }
        if code >= 100 && code < 200 { return }  // 100 Continue and the like: the answer follows
        guard let s else {
            st.mode = .passthrough
            return
        }
        // The server ignored the upgrade: an HTTP/1.1 exchange.
        s.upgradeAccepted = false
        upgradePending = false
        let r = s.response
        r.saw(frameBytes: head.size, at: ts)
        add(r.headers, ":status", String(code))
        for f in head.fields { add(r.headers, f.name, f.value) }
        r.headers.present = true
        r.headers.wireSize = head.size
        if let n = head.contentLength {
            if n > 0 {
                st.mode = .http1Body(n)
                return
            }
        } else if head.hasToken("transfer-encoding", "chunked") || head.field("transfer-encoding") != nil {
            s.note("HTTP/1.1 response body with Transfer-Encoding: not read")
        }
        http1BodyEnded(&st, .serverToClient)
    }

    func http1Body(_ d: Direction, _ p: UnsafeRawBufferPointer) {
        guard let s = streams[1] else { return }
        s.half(d).body.feed(p, cap: limits.maxBodyBytes)
        s.half(d).wireSize &+= UInt64(p.count)
    }

    func http1BodyEnded(_ st: inout DirectionState, _ d: Direction) {
        if d == .clientToServer {
            streams[1]?.request.ended = true
            st.mode = .awaitPreface
            return
        }
        if let s = streams[1] {
            s.response.ended = true
            s.request.ended = true
            finish(s)
        }
        st.mode = .passthrough
        client.mode = .passthrough
    }

    private func add(_ l: HeaderList, _ name: String, _ value: String) {
        var n = name
        var v = value
        n.withUTF8 { n in v.withUTF8 { v in _ = l.append(name: UnsafeRawBufferPointer(n), value: UnsafeRawBufferPointer(v), limits: limits) } }
    }
}
