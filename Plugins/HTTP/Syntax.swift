// Byte-level helpers for the HTTP/1.x dissector: character classes, line
// scanning, number parsing, UTF-8 validation. Everything works on raw buffers
// and never allocates.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@usableFromInline let CR: UInt8 = 0x0D
@usableFromInline let LF: UInt8 = 0x0A
@usableFromInline let SP: UInt8 = 0x20
@usableFromInline let HT: UInt8 = 0x09

/// RFC 9110 `tchar`.
@inline(__always)
func isTokenChar(_ c: UInt8) -> Bool {
    switch c {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
        UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
        UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
        return true
    default:
        return false
    }
}

@inline(__always)
func isDigit(_ c: UInt8) -> Bool { c &- UInt8(ascii: "0") < 10 }

@inline(__always)
func isWhitespace(_ c: UInt8) -> Bool { c == SP || c == HT }

/// A byte allowed inside a request target (lenient: no CTL, no SP; obs bytes >= 0x80 allowed).
@inline(__always)
func isTargetChar(_ c: UInt8) -> Bool { c > 0x20 && c != 0x7F }

@inline(__always)
func lowerASCII(_ c: UInt8) -> UInt8 {
    c &- UInt8(ascii: "A") < 26 ? c | 0x20 : c
}

/// Index of the first `byte` in `b[from..<to]`, or nil.
@inline(__always)
func find(_ byte: UInt8, in b: UnsafeRawBufferPointer, from: Int, to: Int) -> Int? {
    guard from < to, let base = b.baseAddress else { return nil }
    guard let p = memchr(base + from, Int32(byte), to - from) else { return nil }
    return UnsafeRawPointer(p) - base
}

/// `b[range]` as a buffer (empty for an empty or out-of-range span).
@inline(__always)
func slice(_ b: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> UnsafeRawBufferPointer {
    guard start >= 0, end <= b.count, start < end, let base = b.baseAddress else {
        return UnsafeRawBufferPointer(start: nil, count: 0)
    }
    return UnsafeRawBufferPointer(start: base + start, count: end - start)
}

/// Case-insensitive comparison of `b` with a lower-case ASCII literal.
func equalsLowercase(_ b: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
    guard b.count == lower.utf8CodeUnitCount else { return false }
    let l = lower.utf8Start
    for i in 0..<b.count where lowerASCII(b[i]) != l[i] { return false }
    return true
}

/// Case-insensitive "starts with" against a lower-case ASCII literal.
func hasPrefixLowercase(_ b: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
    let n = lower.utf8CodeUnitCount
    guard b.count >= n else { return false }
    let l = lower.utf8Start
    for i in 0..<n where lowerASCII(b[i]) != l[i] { return false }
    return true
}

/// The bytes of a static string.
@inline(__always)
func staticBytes(_ s: StaticString) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)
}

/// Trims SP/HT on both sides of `[start, end)` in `b`.
@inline(__always)
func trimOWS(_ b: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> (Int, Int) {
    var s = start
    var e = end
    while s < e, isWhitespace(b[s]) { s += 1 }
    while e > s, isWhitespace(b[e - 1]) || b[e - 1] == CR { e -= 1 }
    return (s, e)
}

/// A decimal Content-Length value; nil on anything but 1+ digits or on overflow.
func parseDecimal(_ b: UnsafeRawBufferPointer) -> UInt64? {
    guard !b.isEmpty else { return nil }
    var v: UInt64 = 0
    for c in b {
        guard isDigit(c) else { return nil }
        let (m, o1) = v.multipliedReportingOverflow(by: 10)
        let (a, o2) = m.addingReportingOverflow(UInt64(c &- UInt8(ascii: "0")))
        if o1 || o2 { return nil }
        v = a
    }
    return v
}

@inline(__always)
func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
}

/// Result of validating bytes as display text.
enum TextCheck: Equatable {
    /// Valid UTF-8 without NUL; `length` excludes an incomplete sequence cut at the end.
    case text(length: Int)
    case binary
}

/// Whether `b` is UTF-8 text (no NUL). With `allowCutTail`, an incomplete
/// sequence at the very end (a body cut at the display cap) is tolerated and
/// left out of `length`.
func checkText(_ b: UnsafeRawBufferPointer, allowCutTail: Bool) -> TextCheck {
    let n = b.count
    guard let base = b.baseAddress else { return .text(length: 0) }
    var i = 0
    while i < n {
        // Eight ASCII bytes at a time (no high bit, no NUL).
        while i + 8 <= n {
            let w = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            if w & 0x8080_8080_8080_8080 != 0 { break }
            if (w &- 0x0101_0101_0101_0101) & ~w & 0x8080_8080_8080_8080 != 0 { return .binary }
            i += 8
        }
        if i >= n { break }
        let c = b[i]
        if c < 0x80 {
            if c == 0 { return .binary }
            i += 1
            continue
        }
        let need: Int
        var lo: UInt8 = 0x80
        var hi: UInt8 = 0xBF
        switch c {
        case 0xC2...0xDF: need = 1
        case 0xE0: need = 2; lo = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: need = 2
        case 0xED: need = 2; hi = 0x9F
        case 0xF0: need = 3; lo = 0x90
        case 0xF1...0xF3: need = 3
        case 0xF4: need = 3; hi = 0x8F
        default: return .binary
        }
        var k = 1
        while k <= need {
            if i + k >= n { return allowCutTail ? .text(length: i) : .binary }
            let d = b[i + k]
            if k == 1 {
                if d < lo || d > hi { return .binary }
            } else if d & 0xC0 != 0x80 {
                return .binary
            }
            k += 1
        }
        i += need + 1
    }
    return .text(length: n)
}

/// Largest prefix length <= `limit` of `b` that does not end inside a UTF-8 sequence.
func utf8Boundary(_ b: UnsafeRawBufferPointer, limit: Int) -> Int {
    guard b.count > limit else { return b.count }
    var end = limit
    // Step back over continuation bytes (at most 3).
    var steps = 0
    while end > 0, steps < 4, b[end] & 0xC0 == 0x80 {
        end -= 1
        steps += 1
    }
    return end
}
