// The GraphQL lexer (October 2021 spec, section 2.1 "Source Text"), over
// bytes. Ignored tokens: the BOM, tab, space, line terminators, commas and
// comments. Names are ASCII by the grammar, so a non-ASCII byte outside a
// string or a comment is an error; strings and comments may hold any bytes
// (their contents are checked for escapes and line breaks, never decoded:
// nothing this module reports comes from string values).

/// A token kind.
enum TokenKind: Equatable {
    case end
    case bang, dollar, ampersand, leftParen, rightParen, spread, colon, equals, at
    case leftBracket, rightBracket, leftBrace, pipe, rightBrace
    case name, int, float, string, blockString
}

/// One token: its kind and the bytes it covers.
struct Token {
    var kind: TokenKind
    var start: Int
    var end: Int
}

/// A syntax error at a byte offset (turned into line and column for the report).
struct SyntaxError: Error {
    var offset: Int
    var message: String
}

/// Splits a GraphQL document into tokens, one `next()` at a time.
struct Lexer {
    let source: UnsafeRawBufferPointer
    private(set) var position = 0

    init(_ source: UnsafeRawBufferPointer) { self.source = source }

    /// The next token after the ignored ones.
    mutating func next() throws(SyntaxError) -> Token {
        skipIgnored()
        let n = source.count
        let s = position
        guard s < n else { return Token(kind: .end, start: n, end: n) }
        let c = source[s]
        let single: TokenKind?
        switch c {
        case UInt8(ascii: "!"): single = .bang
        case UInt8(ascii: "$"): single = .dollar
        case UInt8(ascii: "&"): single = .ampersand
        case UInt8(ascii: "("): single = .leftParen
        case UInt8(ascii: ")"): single = .rightParen
        case UInt8(ascii: ":"): single = .colon
        case UInt8(ascii: "="): single = .equals
        case UInt8(ascii: "@"): single = .at
        case UInt8(ascii: "["): single = .leftBracket
        case UInt8(ascii: "]"): single = .rightBracket
        case UInt8(ascii: "{"): single = .leftBrace
        case UInt8(ascii: "|"): single = .pipe
        case UInt8(ascii: "}"): single = .rightBrace
        default: single = nil
        }
        if let single {
            position = s + 1
            return Token(kind: single, start: s, end: s + 1)
        }
        if c == UInt8(ascii: ".") {
            guard s + 2 < n, source[s + 1] == UInt8(ascii: "."), source[s + 2] == UInt8(ascii: ".") else {
                throw SyntaxError(offset: s, message: "unexpected '.' (a spread is '...')")
            }
            position = s + 3
            return Token(kind: .spread, start: s, end: s + 3)
        }
        if isNameStart(c) {
            var i = s + 1
            while i < n, isNameContinue(source[i]) { i += 1 }
            position = i
            return Token(kind: .name, start: s, end: i)
        }
        if c == UInt8(ascii: "-") || isDigit(c) { return try number(s) }
        if c == UInt8(ascii: "\"") {
            if s + 2 < n, source[s + 1] == UInt8(ascii: "\""), source[s + 2] == UInt8(ascii: "\"") {
                return try blockString(s)
            }
            return try string(s)
        }
        if c >= 0x80 { throw SyntaxError(offset: s, message: "unexpected non-ASCII byte 0x\(hex(c))") }
        throw SyntaxError(offset: s, message: "unexpected character 0x\(hex(c))")
    }

    private mutating func skipIgnored() {
        let n = source.count
        var i = position
        while i < n {
            let c = source[i]
            switch c {
            case 0x09, 0x20, 0x0A, 0x0D, UInt8(ascii: ","):
                i += 1
            case UInt8(ascii: "#"):
                while i < n, source[i] != 0x0A, source[i] != 0x0D { i += 1 }
            case 0xEF where i + 2 < n && source[i + 1] == 0xBB && source[i + 2] == 0xBF:
                i += 3
            default:
                position = i
                return
            }
        }
        position = i
    }

    /// IntValue or FloatValue; a number may not be followed by `.`, a digit or a name start.
    private mutating func number(_ s: Int) throws(SyntaxError) -> Token {
        let n = source.count
        var i = s
        var isFloat = false
        if source[i] == UInt8(ascii: "-") { i += 1 }
        guard i < n, isDigit(source[i]) else { throw SyntaxError(offset: i, message: "expected a digit after '-'") }
        if source[i] == UInt8(ascii: "0") {
            i += 1
            if i < n, isDigit(source[i]) {
                throw SyntaxError(offset: i, message: "unexpected digit after 0 in a number")
            }
        } else {
            while i < n, isDigit(source[i]) { i += 1 }
        }
        if i < n, source[i] == UInt8(ascii: ".") {
            isFloat = true
            i += 1
            guard i < n, isDigit(source[i]) else { throw SyntaxError(offset: i, message: "expected a digit after '.'") }
            while i < n, isDigit(source[i]) { i += 1 }
        }
        if i < n, source[i] == UInt8(ascii: "e") || source[i] == UInt8(ascii: "E") {
            isFloat = true
            i += 1
            if i < n, source[i] == UInt8(ascii: "+") || source[i] == UInt8(ascii: "-") { i += 1 }
            guard i < n, isDigit(source[i]) else {
                throw SyntaxError(offset: i, message: "expected a digit in the exponent")
            }
            while i < n, isDigit(source[i]) { i += 1 }
        }
        if i < n, source[i] == UInt8(ascii: ".") || isNameStart(source[i]) {
            throw SyntaxError(offset: i, message: "invalid number: unexpected character after it")
        }
        position = i
        return Token(kind: isFloat ? .float : .int, start: s, end: i)
    }

    /// `"..."`: no line terminators, escapes `\" \\ \/ \b \f \n \r \t \uXXXX`.
    private mutating func string(_ s: Int) throws(SyntaxError) -> Token {
        let n = source.count
        var i = s + 1
        while i < n {
            let c = source[i]
            switch c {
            case UInt8(ascii: "\""):
                position = i + 1
                return Token(kind: .string, start: s, end: i + 1)
            case 0x0A, 0x0D:
                throw SyntaxError(offset: i, message: "unterminated string")
            case UInt8(ascii: "\\"):
                guard i + 1 < n else { throw SyntaxError(offset: s, message: "unterminated string") }
                switch source[i + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 2
                case UInt8(ascii: "u"):
                    guard i + 5 < n, (2...5).allSatisfy({ hexValue(source[i + $0]) != nil }) else {
                        throw SyntaxError(offset: i, message: "invalid unicode escape in a string")
                    }
                    i += 6
                default:
                    throw SyntaxError(offset: i, message: "invalid escape sequence in a string")
                }
            default:
                if c < 0x20, c != 0x09 {
                    throw SyntaxError(offset: i, message: "invalid character 0x\(hex(c)) in a string")
                }
                i += 1
            }
        }
        throw SyntaxError(offset: s, message: "unterminated string")
    }

    /// `"""..."""`: any characters; `\"""` is the only escape.
    private mutating func blockString(_ s: Int) throws(SyntaxError) -> Token {
        let n = source.count
        var i = s + 3
        while i < n {
            let c = source[i]
            if c == UInt8(ascii: "\""), i + 2 < n, source[i + 1] == UInt8(ascii: "\""), source[i + 2] == UInt8(ascii: "\"") {
                position = i + 3
                return Token(kind: .blockString, start: s, end: i + 3)
            }
            if c == UInt8(ascii: "\\"), i + 3 < n, source[i + 1] == UInt8(ascii: "\""), source[i + 2] == UInt8(ascii: "\""),
                source[i + 3] == UInt8(ascii: "\"")
            {
                i += 4
                continue
            }
            if c < 0x20, c != 0x09, c != 0x0A, c != 0x0D {
                throw SyntaxError(offset: i, message: "invalid character 0x\(hex(c)) in a block string")
            }
            i += 1
        }
        throw SyntaxError(offset: s, message: "unterminated block string")
    }
}

@inline(__always)
func isNameStart(_ c: UInt8) -> Bool {
    (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
        || c == UInt8(ascii: "_")
}

@inline(__always)
func isNameContinue(_ c: UInt8) -> Bool { isNameStart(c) || isDigit(c) }

/// Two upper-case hex digits.
func hex(_ c: UInt8) -> String {
    let digits = Array("0123456789ABCDEF".utf8)
    return String(decoding: [digits[Int(c >> 4)], digits[Int(c & 0xF)]], as: UTF8.self)
}

/// Line and column (both from 1, columns in bytes) of byte `offset` in `source`;
/// CR LF, LF and CR each end a line.
func lineAndColumn(_ source: UnsafeRawBufferPointer, _ offset: Int) -> (line: Int, column: Int) {
    var line = 1
    var lineStart = 0
    var i = 0
    let end = min(offset, source.count)
    while i < end {
        let c = source[i]
        if c == 0x0A || c == 0x0D {
            if c == 0x0D, i + 1 < end, source[i + 1] == 0x0A { i += 1 }
            line += 1
            lineStart = i + 1
        }
        i += 1
    }
    return (line, end - lineStart + 1)
}
