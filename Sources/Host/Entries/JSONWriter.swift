/// Appends JSON tokens to a byte buffer. The host owns every byte of entry JSON:
/// plugins never write JSON themselves, so escaping and UTF-8 validity live here.
///
/// The buffer keeps its capacity across `reset()`, so a reused writer does not
/// allocate in the steady state.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 4096) {
        bytes.reserveCapacity(capacity)
    }

    var count: Int { bytes.count }

    mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    @inline(__always)
    mutating func raw(_ b: UInt8) { bytes.append(b) }

    @inline(__always)
    mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func raw(_ buffer: UnsafeRawBufferPointer) { bytes.append(contentsOf: buffer) }

    mutating func raw(_ other: [UInt8]) { bytes.append(contentsOf: other) }

    /// Writes `"…"` with JSON escaping; invalid UTF-8 becomes U+FFFD.
    mutating func string(_ buffer: UnsafeRawBufferPointer) {
        bytes.append(UInt8(ascii: "\""))
        escapeUTF8(buffer)
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { string(UnsafeRawBufferPointer($0)) }
    }

    mutating func string(_ s: StaticString) {
        s.withUTF8Buffer { string(UnsafeRawBufferPointer($0)) }
    }

    mutating func int(_ v: Int64) {
        if v < 0 {
            bytes.append(UInt8(ascii: "-"))
            uint(v.magnitude)
        } else {
            uint(UInt64(v))
        }
    }

    mutating func uint(_ v: UInt64) {
        if v < 10 {
            bytes.append(UInt8(truncatingIfNeeded: v) &+ 48)
            return
        }
        var digits: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                     UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        var x = v
        withUnsafeMutableBytes(of: &digits) { d in
            while x > 0 {
                d[n] = UInt8(truncatingIfNeeded: x % 10) &+ 48
                x /= 10
                n += 1
            }
            while n > 0 {
                n -= 1
                bytes.append(d[n])
            }
        }
    }

    /// Writes a finite double; NaN and infinities become `null` (JSON has no such numbers).
    mutating func double(_ v: Double) {
        guard v.isFinite else {
            raw("null")
            return
        }
        if v == v.rounded(.towardZero), abs(v) < 1e15 {
            int(Int64(v))
            return
        }
        bytes.append(contentsOf: v.description.utf8)
    }

    /// A fixed-point number with three decimals (milliseconds with microsecond precision).
    mutating func milliseconds(fromNanoseconds ns: Int64) {
        let micros = ns / 1000
        if micros < 0 { bytes.append(UInt8(ascii: "-")) }
        let m = micros.magnitude
        uint(m / 1000)
        let frac = m % 1000
        if frac != 0 {
            bytes.append(UInt8(ascii: "."))
            bytes.append(UInt8(truncatingIfNeeded: frac / 100) &+ 48)
            bytes.append(UInt8(truncatingIfNeeded: (frac / 10) % 10) &+ 48)
            bytes.append(UInt8(truncatingIfNeeded: frac % 10) &+ 48)
        }
    }

    mutating func bool(_ v: Bool) { v ? raw("true") : raw("false") }

    mutating func null() { raw("null") }

    /// Writes `"…"` holding the base64 (RFC 4648, padded) of `buffer`.
    mutating func base64(_ buffer: UnsafeRawBufferPointer) {
        let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        bytes.append(UInt8(ascii: "\""))
        alphabet.withUTF8Buffer { a in
            var i = 0
            let n = buffer.count
            while i + 3 <= n {
                let v = UInt32(buffer[i]) << 16 | UInt32(buffer[i + 1]) << 8 | UInt32(buffer[i + 2])
                bytes.append(a[Int(v >> 18 & 63)])
                bytes.append(a[Int(v >> 12 & 63)])
                bytes.append(a[Int(v >> 6 & 63)])
                bytes.append(a[Int(v & 63)])
                i += 3
            }
            if n - i == 1 {
                let v = UInt32(buffer[i]) << 16
                bytes.append(a[Int(v >> 18 & 63)])
                bytes.append(a[Int(v >> 12 & 63)])
                bytes.append(UInt8(ascii: "="))
                bytes.append(UInt8(ascii: "="))
            } else if n - i == 2 {
                let v = UInt32(buffer[i]) << 16 | UInt32(buffer[i + 1]) << 8
                bytes.append(a[Int(v >> 18 & 63)])
                bytes.append(a[Int(v >> 12 & 63)])
                bytes.append(a[Int(v >> 6 & 63)])
                bytes.append(UInt8(ascii: "="))
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    // MARK: - Escaping

    private static let hex: StaticString = "0123456789abcdef"

    private mutating func escapeControl(_ b: UInt8) {
        switch b {
        case 0x08: raw("\\b")
        case 0x09: raw("\\t")
        case 0x0A: raw("\\n")
        case 0x0C: raw("\\f")
        case 0x0D: raw("\\r")
        default:
            raw("\\u00")
            Self.hex.withUTF8Buffer { h in
                bytes.append(h[Int(b >> 4)])
                bytes.append(h[Int(b & 15)])
            }
        }
    }

    /// Appends `buffer` as the inside of a JSON string: quotes, backslashes and
    /// control characters escaped; well-formed UTF-8 copied; every byte of an
    /// ill-formed sequence replaced by U+FFFD.
    private mutating func escapeUTF8(_ buffer: UnsafeRawBufferPointer) {
        let n = buffer.count
        var i = 0
        var runStart = 0
        @inline(__always) func flush(_ w: inout JSONWriter, _ end: Int) {
            if end > runStart { w.bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[runStart..<end])) }
        }
        while i < n {
            let b = buffer[i]
            if b >= 0x20 && b < 0x80 {
                if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                    flush(&self, i)
                    bytes.append(UInt8(ascii: "\\"))
                    bytes.append(b)
                    i += 1
                    runStart = i
                } else {
                    i += 1
                }
                continue
            }
            if b < 0x20 || b == 0x7F {
                flush(&self, i)
                if b == 0x7F { raw("\\u007f") } else { escapeControl(b) }
                i += 1
                runStart = i
                continue
            }
            let length = Self.validSequenceLength(buffer, at: i)
            if length == 0 {
                flush(&self, i)
                bytes.append(0xEF)
                bytes.append(0xBF)
                bytes.append(0xBD)
                i += 1
                runStart = i
            } else {
                i += length
            }
        }
        flush(&self, n)
    }

    /// Length of the well-formed UTF-8 sequence starting at `i` (2–4), or 0.
    private static func validSequenceLength(_ p: UnsafeRawBufferPointer, at i: Int) -> Int {
        let n = p.count
        let b0 = p[i]
        @inline(__always) func cont(_ k: Int) -> Bool { k < n && p[k] & 0xC0 == 0x80 }
        switch b0 {
        case 0xC2...0xDF:
            return cont(i + 1) ? 2 : 0
        case 0xE0:
            return i + 1 < n && (0xA0...0xBF).contains(p[i + 1]) && cont(i + 2) ? 3 : 0
        case 0xE1...0xEC, 0xEE...0xEF:
            return cont(i + 1) && cont(i + 2) ? 3 : 0
        case 0xED:
            return i + 1 < n && (0x80...0x9F).contains(p[i + 1]) && cont(i + 2) ? 3 : 0
        case 0xF0:
            return i + 1 < n && (0x90...0xBF).contains(p[i + 1]) && cont(i + 2) && cont(i + 3) ? 4 : 0
        case 0xF1...0xF3:
            return cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0
        case 0xF4:
            return i + 1 < n && (0x80...0x8F).contains(p[i + 1]) && cont(i + 2) && cont(i + 3) ? 4 : 0
        default:
            return 0
        }
    }
}
