/// Why a KFL query was refused: where (0-based UTF-8 offset into the query text)
/// and what was expected.
public struct KFLError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 0-based offset into the query (UTF-8 bytes; equals the character offset for ASCII queries).
    public var position: Int
    /// What went wrong, e.g. `expected ')'`.
    public var message: String
    /// `"<message> at <position>"`.
    public var description: String { "\(message) at \(position)" }

    public init(position: Int, message: String) {
        self.position = position
        self.message = message
    }
}

enum KFLTokenKind: Equatable {
    case ident(String)
    case number(Double)
    case string(String)
    case regex(String)
    case op(String)  // == != >= > <= < ! - ( ) [ ] . .. , *
    case end
}

struct KFLToken {
    var kind: KFLTokenKind
    var position: Int

    var text: String {
        switch kind {
        case .ident(let s): return s
        case .number(let d): return JSONValue.numberText(d)
        case .string(let s): return "\"\(s)\""
        case .regex(let s): return "r\"\(s)\""
        case .op(let s): return s
        case .end: return "end of query"
        }
    }
}

enum KFLLexer {
    static func isIdentStart(_ b: UInt8) -> Bool {
        (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 95 || b == 36
    }

    static func isIdentChar(_ b: UInt8) -> Bool { isIdentStart(b) || (b >= 48 && b <= 57) }

    /// Splits `text` into tokens; the last one is `.end`.
    static func tokens(_ text: String) throws(KFLError) -> [KFLToken] {
        let s = Array(text.utf8)
        var out: [KFLToken] = []
        var i = 0
        while true {
            while i < s.count, s[i] == 0x20 || s[i] == 0x09 || s[i] == 0x0A || s[i] == 0x0D { i += 1 }
            guard i < s.count else { break }
            let start = i
            let b = s[i]
            if b == UInt8(ascii: "r"), i + 1 < s.count, s[i + 1] == UInt8(ascii: "\"") {
                // Regex literal: raw text, only \" is unescaped.
                i += 2
                var bytes: [UInt8] = []
                var closed = false
                while i < s.count {
                    if s[i] == UInt8(ascii: "\\"), i + 1 < s.count, s[i + 1] == UInt8(ascii: "\"") {
                        bytes.append(UInt8(ascii: "\""))
                        i += 2
                        continue
                    }
                    if s[i] == UInt8(ascii: "\"") {
                        closed = true
                        i += 1
                        break
                    }
                    bytes.append(s[i])
                    i += 1
                }
                guard closed else { throw KFLError(position: start, message: "unterminated regex") }
                out.append(KFLToken(kind: .regex(String(decoding: bytes, as: UTF8.self)), position: start))
            } else if isIdentStart(b) {
                while i < s.count, isIdentChar(s[i]) { i += 1 }
                out.append(KFLToken(kind: .ident(String(decoding: s[start..<i], as: UTF8.self)), position: start))
            } else if b >= 48 && b <= 57 {
                while i < s.count, s[i] >= 48 && s[i] <= 57 { i += 1 }
                if i + 1 < s.count, s[i] == UInt8(ascii: "."), s[i + 1] >= 48 && s[i + 1] <= 57 {
                    i += 1
                    while i < s.count, s[i] >= 48 && s[i] <= 57 { i += 1 }
                }
                if i < s.count, s[i] == UInt8(ascii: "e") || s[i] == UInt8(ascii: "E") {
                    var j = i + 1
                    if j < s.count, s[j] == UInt8(ascii: "+") || s[j] == UInt8(ascii: "-") { j += 1 }
                    if j < s.count, s[j] >= 48 && s[j] <= 57 {
                        i = j
                        while i < s.count, s[i] >= 48 && s[i] <= 57 { i += 1 }
                    }
                }
                guard let d = Double(String(decoding: s[start..<i], as: UTF8.self)), d.isFinite else {
                    throw KFLError(position: start, message: "invalid number")
                }
                if i < s.count, isIdentStart(s[i]) { throw KFLError(position: i, message: "invalid number") }
                out.append(KFLToken(kind: .number(d), position: start))
            } else if b == UInt8(ascii: "\"") || b == UInt8(ascii: "'") {
                let quote = b
                i += 1
                var bytes: [UInt8] = []
                var closed = false
                while i < s.count {
                    let c = s[i]
                    if c == quote {
                        closed = true
                        i += 1
                        break
                    }
                    if c != UInt8(ascii: "\\") {
                        bytes.append(c)
                        i += 1
                        continue
                    }
                    guard i + 1 < s.count else { break }
                    let e = s[i + 1]
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "\\"), UInt8(ascii: "/"): bytes.append(e)
                    case UInt8(ascii: "n"): bytes.append(10)
                    case UInt8(ascii: "r"): bytes.append(13)
                    case UInt8(ascii: "t"): bytes.append(9)
                    case UInt8(ascii: "b"): bytes.append(8)
                    case UInt8(ascii: "f"): bytes.append(12)
                    case UInt8(ascii: "u"):
                        var v: UInt32 = 0
                        var ok = i + 6 <= s.count
                        if ok {
                            for k in 0..<4 {
                                let h = s[i + 2 + k]
                                let d: UInt32
                                switch h {
                                case 48...57: d = UInt32(h - 48)
                                case 65...70: d = UInt32(h - 55)
                                case 97...102: d = UInt32(h - 87)
                                default: d = 0; ok = false
                                }
                                v = v << 4 | d
                            }
                        }
                        guard ok, let u = Unicode.Scalar(v) else {
                            throw KFLError(position: i, message: "invalid \\u escape")
                        }
                        bytes.append(contentsOf: String(Character(u)).utf8)
                        i += 4
                    default: throw KFLError(position: i, message: "invalid escape '\\\(Character(Unicode.Scalar(e)))'")
                    }
                    i += 2
                }
                guard closed else { throw KFLError(position: start, message: "unterminated string") }
                out.append(KFLToken(kind: .string(String(decoding: bytes, as: UTF8.self)), position: start))
            } else {
                let two: String? = i + 1 < s.count ? String(decoding: s[i...i + 1], as: UTF8.self) : nil
                if let two, ["==", "!=", ">=", "<=", "..", "&&", "||"].contains(two) {
                    let op = two == "&&" ? "and" : two == "||" ? "or" : two
                    out.append(KFLToken(kind: op == "and" || op == "or" ? .ident(op) : .op(op), position: start))
                    i += 2
                } else if "!<>-()[].,*".utf8.contains(b) {
                    out.append(KFLToken(kind: .op(String(Character(Unicode.Scalar(b)))), position: start))
                    i += 1
                } else if b < 0x80 {
                    throw KFLError(position: start, message: "unexpected character '\(Character(Unicode.Scalar(b)))'")
                } else {
                    throw KFLError(position: start, message: "unexpected character")
                }
            }
        }
        out.append(KFLToken(kind: .end, position: s.count))
        return out
    }
}
