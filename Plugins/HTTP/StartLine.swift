// Request lines and status lines: full parsing of one line, and prefix checks
// used by the probe, by early garbage detection and by resynchronisation.

/// Methods the probe and the resync scanner accept (RFC 9110, PATCH, WebDAV,
/// CalDAV, versioning, UPnP, caches). The parser itself accepts any token.
let knownMethods: [[UInt8]] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "REPORT",
    "MKACTIVITY", "CHECKOUT", "CHECKIN", "UNCHECKOUT", "MERGE", "MKWORKSPACE", "VERSION-CONTROL",
    "BASELINE-CONTROL", "LABEL", "UPDATE", "MKCALENDAR", "ACL", "BIND", "REBIND", "UNBIND",
    "ORDERPATCH", "MKREDIRECTREF", "UPDATEREDIRECTREF", "LINK", "UNLINK", "PURGE", "QUERY",
    "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE",
].map { Array($0.utf8) }

/// Longest method name accepted by the parser.
let maxMethodLength = 32

/// Whether `b` equals one of `knownMethods`.
func isKnownMethod(_ b: UnsafeRawBufferPointer) -> Bool {
    for m in knownMethods where m.count == b.count {
        if m.withUnsafeBytes({ $0.elementsEqual(b) }) { return true }
    }
    return false
}

/// Total length (method + SP) of the shortest known method that `b` is a
/// proper prefix of, or nil when `b` starts no known method.
func knownMethodNeed(_ b: UnsafeRawBufferPointer) -> Int? {
    var best: Int?
    for m in knownMethods where m.count >= b.count {
        if m.withUnsafeBytes({ $0.prefix(b.count).elementsEqual(b) }) {
            let need = m.count + 1
            if best == nil || need < best! { best = need }
        }
    }
    return best
}

/// How far the bytes go towards a start line.
enum LineVerdict: Equatable {
    case invalid
    /// Consistent so far; the line is not finished.
    case incomplete
    /// A finished, valid line (`lineEnd` = index of its LF).
    case complete(lineEnd: Int)
}

/// A parsed request line; offsets are relative to the line start.
struct RequestLine {
    var methodEnd: Int
    var targetStart: Int
    var targetEnd: Int
    var versionStart: Int
    var versionMinor: UInt8
}

/// A parsed status line; offsets are relative to the line start.
struct StatusLine {
    var code: Int
    var reasonStart: Int
    var reasonEnd: Int
    var versionMinor: UInt8
}

/// `HTTP/1.d` at `b[at...]`; returns the minor digit.
@inline(__always)
func parseVersion(_ b: UnsafeRawBufferPointer, at i: Int) -> UInt8? {
    guard i >= 0, i + 8 <= b.count else { return nil }
    guard b[i] == UInt8(ascii: "H"), b[i + 1] == UInt8(ascii: "T"), b[i + 2] == UInt8(ascii: "T"),
        b[i + 3] == UInt8(ascii: "P"), b[i + 4] == UInt8(ascii: "/"), b[i + 5] == UInt8(ascii: "1"),
        b[i + 6] == UInt8(ascii: "."), isDigit(b[i + 7])
    else { return nil }
    return b[i + 7] &- UInt8(ascii: "0")
}

/// Parses one request line (`line` excludes CR LF). Lenient about spaces
/// inside the target: the method ends at the first SP, the version is the last word.
func parseRequestLine(_ line: UnsafeRawBufferPointer) -> RequestLine? {
    let n = line.count
    guard n >= 12 else { return nil }  // "X / HTTP/1.1"
    var m = 0
    while m < n, m <= maxMethodLength, isTokenChar(line[m]) { m += 1 }
    guard m > 0, m <= maxMethodLength, m < n, line[m] == SP else { return nil }
    let versionStart = n - 8
    guard versionStart > m + 1, line[versionStart - 1] == SP, let minor = parseVersion(line, at: versionStart)
    else { return nil }
    var ts = m + 1
    var te = versionStart - 1
    while ts < te, isWhitespace(line[ts]) { ts += 1 }
    while te > ts, isWhitespace(line[te - 1]) { te -= 1 }
    guard ts < te else { return nil }
    for i in ts..<te {
        let c = line[i]
        guard isTargetChar(c) || c == SP else { return nil }
    }
    return RequestLine(methodEnd: m, targetStart: ts, targetEnd: te, versionStart: versionStart, versionMinor: minor)
}

/// Parses one status line (`line` excludes CR LF).
func parseStatusLine(_ line: UnsafeRawBufferPointer) -> StatusLine? {
    let n = line.count
    guard n >= 12, let minor = parseVersion(line, at: 0), line[8] == SP else { return nil }
    guard isDigit(line[9]), isDigit(line[10]), isDigit(line[11]), line[9] != UInt8(ascii: "0") else { return nil }
    let code = Int(line[9] - 48) * 100 + Int(line[10] - 48) * 10 + Int(line[11] - 48)
    var rs = 12
    if n > 12 {
        guard isWhitespace(line[12]) else { return nil }
        rs = 13
    }
    var re = n
    while re > rs, isWhitespace(line[re - 1]) { re -= 1 }
    for i in rs..<re where line[i] < 0x20 && line[i] != HT { return nil }
    return StatusLine(code: code, reasonStart: rs, reasonEnd: re, versionMinor: minor)
}

/// The line content `b[0..<lf]` without a trailing CR.
@inline(__always)
func lineContent(_ b: UnsafeRawBufferPointer, _ start: Int, _ lf: Int) -> UnsafeRawBufferPointer {
    var e = lf
    if e > start, b[e - 1] == CR { e -= 1 }
    return slice(b, start, e)
}

/// Checks `b` (starting at a line start) as a request line, looking at most
/// `limit` bytes: `.incomplete` means consistent as far as it looked.
/// `knownOnly` accepts only `knownMethods`.
func checkRequestLine(_ b: UnsafeRawBufferPointer, limit: Int, knownOnly: Bool) -> LineVerdict {
    let n = min(b.count, limit)
    var m = 0
    while m < n, m <= maxMethodLength, isTokenChar(b[m]) { m += 1 }
    if m == n {
        // Still inside the method.
        if m > maxMethodLength { return .invalid }
        if knownOnly, knownMethodNeed(slice(b, 0, m)) == nil { return .invalid }
        return .incomplete
    }
    guard m > 0, m <= maxMethodLength, b[m] == SP else { return .invalid }
    if knownOnly, !isKnownMethod(slice(b, 0, m)) { return .invalid }
    var i = m + 1
    while i < n {
        let c = b[i]
        if c == LF {
            return parseRequestLine(lineContent(b, 0, i)) != nil ? .complete(lineEnd: i) : .invalid
        }
        if c == CR {
            if i + 1 < b.count, b[i + 1] != LF { return .invalid }
        } else if !(isTargetChar(c) || c == SP || c == HT) {
            return .invalid
        }
        i += 1
    }
    return .incomplete
}

/// Checks `b` (starting at a line start) as a status line, looking at most
/// `limit` bytes: `.incomplete` means consistent as far as it looked.
func checkStatusLine(_ b: UnsafeRawBufferPointer, limit: Int) -> LineVerdict {
    let n = min(b.count, limit)
    let proto = staticBytes("HTTP/1.")
    let fixed = min(n, 12)
    for i in 0..<fixed {
        let c = b[i]
        let ok: Bool
        switch i {
        case 0..<7: ok = c == proto[i]
        case 7: ok = isDigit(c)
        case 8: ok = c == SP
        case 9: ok = isDigit(c) && c != UInt8(ascii: "0")
        default: ok = isDigit(c)
        }
        if !ok { return .invalid }
    }
    if n < 12 { return .incomplete }
    var i = 12
    while i < n {
        let c = b[i]
        if c == LF {
            return parseStatusLine(lineContent(b, 0, i)) != nil ? .complete(lineEnd: i) : .invalid
        }
        if i == 12, !(c == SP || c == HT || c == CR) { return .invalid }
        if c < 0x20 && c != HT && c != CR { return .invalid }
        i += 1
    }
    return .incomplete
}
