// A small JSON reader for GraphQL request and response bodies. Plugins cannot
// use the host's JSON code and do not use Foundation, so this one lives here.
//
// It never builds a tree: a value is a kind plus the byte range it covers in
// the caller's buffer, and members / elements are found by scanning again.
// Every scan is bounded (nesting depth, document size), hostile input only
// makes it answer nil, and nothing is copied until a string is asked for.

/// The JSON type of a value.
enum JSONKind: Equatable {
    case object, array, string, number, bool, null
}

/// One JSON value: its kind and the bytes `start..<end` it covers (a string's quotes included).
struct JSONValueRef: Equatable {
    var kind: JSONKind
    var start: Int
    var end: Int
}

/// Reads JSON from borrowed bytes (valid only while the reader is used).
struct JSONReader {
    let bytes: UnsafeRawBufferPointer
    let maxDepth: Int

    init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    /// The value that makes up the whole text (whitespace allowed around it),
    /// or nil when the text is not one valid JSON value within the depth cap.
    func document() -> JSONValueRef? {
        guard let v = value(at: 0, depth: 0) else { return nil }
        return skipWhitespace(v.end) == bytes.count ? v : nil
    }

    @inline(__always)
    func skipWhitespace(_ from: Int) -> Int {
        var i = from
        let n = bytes.count
        while i < n {
            let c = bytes[i]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { break }
            i += 1
        }
        return i
    }

    /// Validates the value starting at `start` (after whitespace) and returns its range.
    func value(at start: Int, depth: Int) -> JSONValueRef? {
        let n = bytes.count
        let i = skipWhitespace(start)
        guard i < n else { return nil }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            guard depth < maxDepth else { return nil }
            var j = skipWhitespace(i + 1)
            if j < n, bytes[j] == UInt8(ascii: "}") { return JSONValueRef(kind: .object, start: i, end: j + 1) }
            while true {
                guard j < n, bytes[j] == UInt8(ascii: "\""), let keyEnd = stringEnd(j) else { return nil }
                j = skipWhitespace(keyEnd)
                guard j < n, bytes[j] == UInt8(ascii: ":"), let v = value(at: j + 1, depth: depth + 1) else { return nil }
                j = skipWhitespace(v.end)
                guard j < n else { return nil }
                if bytes[j] == UInt8(ascii: "}") { return JSONValueRef(kind: .object, start: i, end: j + 1) }
                guard bytes[j] == UInt8(ascii: ",") else { return nil }
                j = skipWhitespace(j + 1)
            }
        case UInt8(ascii: "["):
            guard depth < maxDepth else { return nil }
            var j = skipWhitespace(i + 1)
            if j < n, bytes[j] == UInt8(ascii: "]") { return JSONValueRef(kind: .array, start: i, end: j + 1) }
            while true {
                guard let v = value(at: j, depth: depth + 1) else { return nil }
                j = skipWhitespace(v.end)
                guard j < n else { return nil }
                if bytes[j] == UInt8(ascii: "]") { return JSONValueRef(kind: .array, start: i, end: j + 1) }
                guard bytes[j] == UInt8(ascii: ",") else { return nil }
                j += 1
            }
        case UInt8(ascii: "\""):
            guard let e = stringEnd(i) else { return nil }
            return JSONValueRef(kind: .string, start: i, end: e)
        case UInt8(ascii: "t"):
            return literal(i, "true", .bool)
        case UInt8(ascii: "f"):
            return literal(i, "false", .bool)
        case UInt8(ascii: "n"):
            return literal(i, "null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            guard let e = numberEnd(i) else { return nil }
            return JSONValueRef(kind: .number, start: i, end: e)
        default:
            return nil
        }
    }

    private func literal(_ i: Int, _ word: StaticString, _ kind: JSONKind) -> JSONValueRef? {
        let w = UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        guard i + w.count <= bytes.count else { return nil }
        for k in 0..<w.count where bytes[i + k] != w[k] { return nil }
        return JSONValueRef(kind: kind, start: i, end: i + w.count)
    }

    /// End (after the closing quote) of the string whose opening quote is at `i`.
    func stringEnd(_ i: Int) -> Int? {
        let n = bytes.count
        var j = i + 1
        while j < n {
            let c = bytes[j]
            if c == UInt8(ascii: "\"") { return j + 1 }
            if c < 0x20 { return nil }
            if c == UInt8(ascii: "\\") {
                guard j + 1 < n else { return nil }
                switch bytes[j + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    j += 2
                case UInt8(ascii: "u"):
                    guard j + 5 < n, hexValue(bytes[j + 2]) != nil, hexValue(bytes[j + 3]) != nil,
                        hexValue(bytes[j + 4]) != nil, hexValue(bytes[j + 5]) != nil
                    else { return nil }
                    j += 6
                default:
                    return nil
                }
                continue
            }
            j += 1
        }
        return nil
    }

    /// End of the number starting at `i` (RFC 8259 grammar).
    private func numberEnd(_ i: Int) -> Int? {
        let n = bytes.count
        var j = i
        if bytes[j] == UInt8(ascii: "-") { j += 1 }
        guard j < n, isDigit(bytes[j]) else { return nil }
        if bytes[j] == UInt8(ascii: "0") {
            j += 1
        } else {
            while j < n, isDigit(bytes[j]) { j += 1 }
        }
        if j < n, bytes[j] == UInt8(ascii: ".") {
            j += 1
            guard j < n, isDigit(bytes[j]) else { return nil }
            while j < n, isDigit(bytes[j]) { j += 1 }
        }
        if j < n, bytes[j] == UInt8(ascii: "e") || bytes[j] == UInt8(ascii: "E") {
            j += 1
            if j < n, bytes[j] == UInt8(ascii: "+") || bytes[j] == UInt8(ascii: "-") { j += 1 }
            guard j < n, isDigit(bytes[j]) else { return nil }
            while j < n, isDigit(bytes[j]) { j += 1 }
        }
        return j
    }

    // MARK: Walking a validated value

    /// Calls `body` with each member of `object` (key as a string value, value);
    /// stops early when `body` returns false.
    func forEachMember(_ object: JSONValueRef, _ body: (JSONValueRef, JSONValueRef) -> Bool) {
        guard object.kind == .object else { return }
        var j = skipWhitespace(object.start + 1)
        while j < object.end, bytes[j] == UInt8(ascii: "\"") {
            guard let keyEnd = stringEnd(j) else { return }
            let key = JSONValueRef(kind: .string, start: j, end: keyEnd)
            j = skipWhitespace(keyEnd)
            guard j < object.end, bytes[j] == UInt8(ascii: ":"), let v = value(at: j + 1, depth: 0) else { return }
            guard body(key, v) else { return }
            j = skipWhitespace(v.end)
            guard j < object.end, bytes[j] == UInt8(ascii: ",") else { return }
            j = skipWhitespace(j + 1)
        }
    }

    /// Calls `body` with each element of `array`; stops early when `body` returns false.
    func forEachElement(_ array: JSONValueRef, _ body: (JSONValueRef) -> Bool) {
        guard array.kind == .array else { return }
        var j = skipWhitespace(array.start + 1)
        guard j < array.end, bytes[j] != UInt8(ascii: "]") else { return }
        while let v = value(at: j, depth: 0) {
            guard body(v) else { return }
            j = skipWhitespace(v.end)
            guard j < array.end, bytes[j] == UInt8(ascii: ",") else { return }
            j += 1
        }
    }

    /// The first member of `object` named `name` (the last one wins in many
    /// parsers; GraphQL servers reject duplicates, so the first is as good).
    func member(_ object: JSONValueRef, _ name: StaticString) -> JSONValueRef? {
        var found: JSONValueRef?
        forEachMember(object) { k, v in
            if stringEquals(k, name) {
                found = v
                return false
            }
            return true
        }
        return found
    }

    /// Whether the string value `s` decodes to `text`.
    func stringEquals(_ s: JSONValueRef, _ text: StaticString) -> Bool {
        guard s.kind == .string else { return false }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[(s.start + 1)..<(s.end - 1)])
        let t = UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
        if !raw.contains(UInt8(ascii: "\\")) { return raw.elementsEqual(t) }
        let (decoded, _) = decodeString(s, cap: t.count + 1)
        return decoded.elementsEqual(t)
    }

    /// The bytes `v` covers, as sent.
    func raw(_ v: JSONValueRef) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[v.start..<v.end])
    }

    /// The decoded UTF-8 of string `s`, at most `cap` bytes (cut at a character
    /// boundary); `truncated` when it was longer. Lone surrogates become U+FFFD.
    func decodeString(_ s: JSONValueRef, cap: Int) -> (bytes: [UInt8], truncated: Bool) {
        guard s.kind == .string else { return ([], false) }
        var out: [UInt8] = []
        out.reserveCapacity(min(cap, s.end - s.start))
        var j = s.start + 1
        let e = s.end - 1
        while j < e {
            let c = bytes[j]
            var scalar: UInt32
            if c != UInt8(ascii: "\\") {
                // Raw bytes are copied through; the caller's String(decoding:) repairs bad UTF-8.
                if out.count >= cap { return (trimToBoundary(out), true) }
                out.append(c)
                j += 1
                continue
            }
            let esc = bytes[j + 1]
            j += 2
            switch esc {
            case UInt8(ascii: "b"): scalar = 0x08
            case UInt8(ascii: "f"): scalar = 0x0C
            case UInt8(ascii: "n"): scalar = 0x0A
            case UInt8(ascii: "r"): scalar = 0x0D
            case UInt8(ascii: "t"): scalar = 0x09
            case UInt8(ascii: "u"):
                scalar = hex4(j)
                j += 4
                if scalar >= 0xD800, scalar < 0xDC00 {
                    if j + 5 < e, bytes[j] == UInt8(ascii: "\\"), bytes[j + 1] == UInt8(ascii: "u") {
                        let low = hex4(j + 2)
                        if low >= 0xDC00, low < 0xE000 {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                            j += 6
                        } else {
                            scalar = 0xFFFD
                        }
                    } else {
                        scalar = 0xFFFD
                    }
                } else if scalar >= 0xDC00, scalar < 0xE000 {
                    scalar = 0xFFFD
                }
            default: scalar = UInt32(esc)
            }
            if out.count + utf8Length(scalar) > cap { return (out, true) }
            appendUTF8(scalar, to: &out)
        }
        return (out, false)
    }

    private func hex4(_ i: Int) -> UInt32 {
        var v: UInt32 = 0
        for k in 0..<4 { v = v << 4 | UInt32(hexValue(bytes[i + k]) ?? 0) }
        return v
    }

    /// A String for string value `v` (nil for other kinds), capped at `cap` bytes.
    func string(_ v: JSONValueRef, cap: Int) -> String? {
        guard v.kind == .string else { return nil }
        let (b, _) = decodeString(v, cap: cap)
        return String(decoding: b, as: UTF8.self)
    }

    /// The value of an integer number that fits an `Int` (no fraction, no exponent).
    func int(_ v: JSONValueRef) -> Int? {
        guard v.kind == .number else { return nil }
        var i = v.start
        var negative = false
        if bytes[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        var value = 0
        while i < v.end {
            let c = bytes[i]
            guard isDigit(c) else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int(c - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            value = a
            i += 1
        }
        return negative ? -value : value
    }
}

// MARK: Byte helpers shared by the module

@inline(__always)
func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

@inline(__always)
func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
}

func utf8Length(_ scalar: UInt32) -> Int {
    scalar < 0x80 ? 1 : scalar < 0x800 ? 2 : scalar < 0x10000 ? 3 : 4
}

func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
    switch scalar {
    case 0..<0x80:
        out.append(UInt8(scalar))
    case 0x80..<0x800:
        out.append(UInt8(0xC0 | scalar >> 6))
        out.append(UInt8(0x80 | scalar & 0x3F))
    case 0x800..<0x10000:
        out.append(UInt8(0xE0 | scalar >> 12))
        out.append(UInt8(0x80 | (scalar >> 6) & 0x3F))
        out.append(UInt8(0x80 | scalar & 0x3F))
    default:
        out.append(UInt8(0xF0 | scalar >> 18))
        out.append(UInt8(0x80 | (scalar >> 12) & 0x3F))
        out.append(UInt8(0x80 | (scalar >> 6) & 0x3F))
        out.append(UInt8(0x80 | scalar & 0x3F))
    }
}

/// `b` without a UTF-8 sequence cut at its end.
func trimToBoundary(_ b: [UInt8]) -> [UInt8] {
    var p = b.count
    var back = 0
    while p > 0, back < 3, b[p - 1] & 0xC0 == 0x80 {
        p -= 1
        back += 1
    }
    guard p > 0 else { return b }
    let lead = b[p - 1]
    let length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
    return p - 1 + length > b.count ? Array(b[0..<(p - 1)]) : b
}
