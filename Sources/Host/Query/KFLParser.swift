/// A compiled regular expression (Swift `Regex`, unanchored search like Go's `MatchString`).
final class KFLRegex: @unchecked Sendable {
    let source: String
    let regex: Regex<AnyRegexOutput>

    init(_ source: String, position: Int) throws(KFLError) {
        self.source = source
        do {
            regex = try Regex(source)
        } catch {
            throw KFLError(position: position, message: "invalid regex r\"\(source)\"")
        }
        _ = try? regex.firstMatch(in: "")  // compile the program now, before any concurrent use
    }

    func matches(_ text: String) -> Bool {
        (try? regex.firstMatch(in: text)) != nil
    }
}

enum KFLCompareOp: Sendable {
    case eq, ne, lt, le, gt, ge
}

enum KFLLogicOp: Sendable {
    case and, or
}

/// One step of a selector.
enum KFLStep: Sendable {
    /// `.name` / `["name"]`: an object's key; on a list of `{name, value}` objects,
    /// the values whose name equals it (ASCII case-insensitive).
    case key(String)
    /// `[n]`; negative counts from the end.
    case index(Int)
    /// `.*` / `[*]`: every element of an array or value of an object.
    case wildcard
    /// `..name`: `name` at any depth.
    case descendant(String)
    /// `.json()`: parse the string as JSON.
    case json
    case startsWith(KFLExpr)
    case endsWith(KFLExpr)
    case contains(KFLExpr)
}

/// The query tree, built once by `KFLParser`.
indirect enum KFLExpr: Sendable {
    case literal(JSONValue)
    case regex(KFLRegex)
    /// Selector from the entry's root.
    case path([KFLStep])
    /// Steps applied to the values of another expression.
    case postfix(KFLExpr, [KFLStep])
    /// `now()` plus this many milliseconds (`seconds(n)` ... `years(n)`).
    case now(offsetMs: Double)
    /// `limit(n)`, `redact(...)`: always true, collected by the compiler.
    case alwaysTrue
    case not(KFLExpr)
    case negate(KFLExpr)
    case compare(KFLCompareOp, KFLExpr, KFLExpr)
    /// A chain of `and`/`or` terms evaluated left to right with short-circuit.
    case logic(first: KFLExpr, rest: [(KFLLogicOp, KFLExpr)])
}

struct KFLParser {
    var tokens: [KFLToken]
    var p = 0
    var depth = 0
    static let maxDepth = 100
    static let maxSteps = 64

    var limit: Int?
    var limitPosition = 0
    var redactPosition: Int?
    var redactions: [String] = []
    var redactionPaths: [[KFLStep]] = []
    /// Logic-chain nesting level; `limit`/`redact` are only allowed at level 1 in `and` terms.
    var logicLevel = 0
    var topLevelTermIsAnd = true

    init(tokens: [KFLToken]) { self.tokens = tokens }

    var current: KFLToken { tokens[p] }

    func fail(_ message: String, at token: KFLToken? = nil) -> KFLError {
        KFLError(position: (token ?? current).position, message: message)
    }

    func isOp(_ s: String) -> Bool { if case .op(s) = current.kind { return true } else { return false } }
    func isIdent(_ s: String) -> Bool { if case .ident(s) = current.kind { return true } else { return false } }

    mutating func expect(_ s: String) throws(KFLError) {
        guard isOp(s) else { throw fail("expected '\(s)'") }
        p += 1
    }

    mutating func enter() throws(KFLError) {
        depth += 1
        guard depth <= KFLParser.maxDepth else { throw fail("query nested too deeply") }
    }

    mutating func parseQuery() throws(KFLError) -> KFLExpr {
        let e = try logical()
        guard case .end = current.kind else {
            throw fail("expected 'and', 'or', an operator or end of query, found '\(current.text)'")
        }
        if !topLevelTermIsAnd {
            if limit != nil { throw KFLError(position: limitPosition, message: "limit() must be a top-level 'and' term") }
            if let r = redactPosition { throw KFLError(position: r, message: "redact() must be a top-level 'and' term") }
        }
        return e
    }

    mutating func logical() throws(KFLError) -> KFLExpr {
        try enter()
        defer { depth -= 1 }
        logicLevel += 1
        defer { logicLevel -= 1 }
        let first = try equality()
        var rest: [(KFLLogicOp, KFLExpr)] = []
        while true {
            let op: KFLLogicOp
            if isIdent("and") { op = .and } else if isIdent("or") { op = .or } else { break }
            p += 1
            if op == .or, logicLevel == 1 { topLevelTermIsAnd = false }
            rest.append((op, try equality()))
        }
        return rest.isEmpty ? first : .logic(first: first, rest: rest)
    }

    mutating func equality() throws(KFLError) -> KFLExpr {
        var lhs = try comparison()
        var n = 0
        defer { depth -= n }
        while true {
            let op: KFLCompareOp
            if isOp("==") { op = .eq } else if isOp("!=") { op = .ne } else { break }
            p += 1
            n += 1
            try enter()
            lhs = .compare(op, lhs, try comparison())
        }
        return lhs
    }

    mutating func comparison() throws(KFLError) -> KFLExpr {
        var lhs = try unary()
        var n = 0
        defer { depth -= n }
        while true {
            let op: KFLCompareOp
            if isOp(">=") { op = .ge } else if isOp(">") { op = .gt } else if isOp("<=") { op = .le } else if isOp("<") {
                op = .lt
            } else {
                break
            }
            p += 1
            n += 1
            try enter()
            lhs = .compare(op, lhs, try unary())
        }
        return lhs
    }

    mutating func unary() throws(KFLError) -> KFLExpr {
        if isOp("!") {
            p += 1
            try enter()
            defer { depth -= 1 }
            return .not(try unary())
        }
        if isOp("-") {
            p += 1
            try enter()
            defer { depth -= 1 }
            let inner = try unary()
            if case .literal(.number(let d)) = inner { return .literal(.number(-d)) }
            return .negate(inner)
        }
        return try primary()
    }

    static let timeUnits: [String: Double] = [
        "seconds": 1000, "minutes": 60_000, "hours": 3_600_000, "days": 86_400_000, "weeks": 604_800_000,
        "months": 2_592_000_000, "years": 31_536_000_000,
    ]
    static let stringHelpers: Set<String> = ["startsWith", "endsWith", "contains", "json"]

    mutating func primary() throws(KFLError) -> KFLExpr {
        let tok = current
        switch tok.kind {
        case .number(let d):
            p += 1
            return try postfix(.literal(.number(d)))
        case .string(let s):
            p += 1
            return try postfix(.literal(.string(s)))
        case .regex(let r):
            p += 1
            return .regex(try KFLRegex(r, position: tok.position))
        case .op("("):
            p += 1
            let inner = try logical()
            try expect(")")
            return try postfix(inner)
        case .ident(let name):
            switch name {
            case "true": p += 1; return .literal(.bool(true))
            case "false": p += 1; return .literal(.bool(false))
            case "nil", "null": p += 1; return .literal(.null)
            case "and", "or": throw fail("expected a value, a selector or '(' before '\(name)'")
            default: break
            }
            if case .op("(") = tokens[p + 1].kind {
                return try function(name, at: tok)
            }
            p += 1
            return try selector(root: [.key(name)])
        case .op("."), .op(".."):
            // `.*`, `..name` from the root.
            return try selector(root: [])
        case .end:
            throw fail("expected a value, a selector or '(', found end of query")
        default:
            throw fail("expected a value, a selector or '(', found '\(tok.text)'")
        }
    }

    mutating func postfix(_ base: KFLExpr) throws(KFLError) -> KFLExpr {
        guard isOp(".") || isOp("[") || isOp("..") else { return base }
        let steps = try steps()
        return .postfix(base, steps)
    }

    mutating func selector(root: [KFLStep]) throws(KFLError) -> KFLExpr {
        var all = root
        all.append(contentsOf: try steps())
        guard !all.isEmpty else { throw fail("expected a selector") }
        return .path(all)
    }

    /// Integer argument of a helper: an optionally negative number literal.
    mutating func numberArgument(_ helper: String) throws(KFLError) -> Double {
        var sign = 1.0
        if isOp("-") {
            sign = -1
            p += 1
        }
        guard case .number(let d) = current.kind else { throw fail("expected a number argument for '\(helper)'") }
        p += 1
        return sign * d
    }

    mutating func function(_ name: String, at tok: KFLToken) throws(KFLError) -> KFLExpr {
        p += 2  // name (
        switch name {
        case "now":
            try expect(")")
            return .now(offsetMs: 0)
        case _ where KFLParser.timeUnits[name] != nil:
            let n = try numberArgument(name)
            try expect(")")
            return .now(offsetMs: n * KFLParser.timeUnits[name]!)
        case "datetime":
            guard case .string(let text) = current.kind else { throw fail("expected a date string for 'datetime'") }
            guard let ms = KFLParser.parseDateTime(text) else {
                throw fail("invalid datetime \"\(text)\" (expected \"1/2/2006, 3:04:05 PM\" or \"2006-01-02T15:04:05Z\", UTC)")
            }
            p += 1
            try expect(")")
            return .literal(.number(ms))
        case "limit":
            let n = try numberArgument(name)
            guard n >= 0, n == n.rounded(), n <= Double(Int32.max) else {
                throw fail("limit needs a non-negative integer", at: tokens[p - 1])
            }
            try expect(")")
            guard logicLevel == 1, topLevelTermIsAnd else {
                throw fail("limit() must be a top-level 'and' term", at: tok)
            }
            if limit != nil { throw fail("limit() given twice", at: tok) }
            limit = Int(n)
            limitPosition = tok.position
            return .alwaysTrue
        case "redact":
            var paths: [String] = []
            while true {
                guard case .string(let s) = current.kind else { throw fail("expected a path string for 'redact'") }
                let steps = try KFLParser.redactionSteps(s, at: current.position)
                paths.append(s)
                redactionPaths.append(steps)
                p += 1
                if isOp(",") {
                    p += 1
                    continue
                }
                break
            }
            try expect(")")
            guard logicLevel == 1, topLevelTermIsAnd else {
                throw fail("redact() must be a top-level 'and' term", at: tok)
            }
            redactions.append(contentsOf: paths)
            redactPosition = redactPosition ?? tok.position
            return .alwaysTrue
        default:
            if KFLParser.stringHelpers.contains(name) {
                throw fail("'\(name)' is a method: write <selector>.\(name)(...)", at: tok)
            }
            throw fail("unknown helper '\(name)'", at: tok)
        }
    }

    /// Unix milliseconds of `M/D/YYYY, h:mm:ss AM|PM` (KFL v1's layout) or
    /// `YYYY-MM-DDTHH:MM:SS[.fff][Z]`, both taken as UTC.
    static func parseDateTime(_ text: String) -> Double? {
        let b = Array(text.utf8)
        var i = 0
        func int(maxDigits: Int) -> Int? {
            var v = 0, n = 0
            while i < b.count, n < maxDigits, b[i] >= 48, b[i] <= 57 {
                v = v * 10 + Int(b[i] - 48)
                i += 1
                n += 1
            }
            return n == 0 ? nil : v
        }
        func skip(_ c: Character) -> Bool {
            guard i < b.count, b[i] == c.asciiValue! else { return false }
            i += 1
            return true
        }
        func spaces() { while i < b.count, b[i] == 32 { i += 1 } }
        var year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0
        var fraction = 0.0
        if text.contains("/") {
            guard let m = int(maxDigits: 2), skip("/"), let d = int(maxDigits: 2), skip("/"),
                  let y = int(maxDigits: 4) else { return nil }
            (year, month, day) = (y, m, d)
            _ = skip(",")
            spaces()
            guard let h = int(maxDigits: 2), skip(":"), let mi = int(maxDigits: 2), skip(":"),
                  let s = int(maxDigits: 2) else { return nil }
            spaces()
            let rest = String(decoding: b[i...], as: UTF8.self).uppercased()
            guard h >= 1, h <= 12 else { return nil }
            switch rest {
            case "AM": hour = h == 12 ? 0 : h
            case "PM": hour = h == 12 ? 12 : h + 12
            default: return nil
            }
            (minute, second) = (mi, s)
        } else {
            guard let y = int(maxDigits: 4), skip("-"), let m = int(maxDigits: 2), skip("-"),
                  let d = int(maxDigits: 2) else { return nil }
            (year, month, day) = (y, m, d)
            if i < b.count {
                guard skip("T") || skip(" "), let h = int(maxDigits: 2), skip(":"), let mi = int(maxDigits: 2),
                      skip(":"), let s = int(maxDigits: 2) else { return nil }
                (hour, minute, second) = (h, mi, s)
                if skip(".") {
                    var scale = 0.1
                    while i < b.count, b[i] >= 48, b[i] <= 57 {
                        fraction += Double(b[i] - 48) * scale
                        scale /= 10
                        i += 1
                    }
                }
                _ = skip("Z")
                guard i == b.count else { return nil }
            }
        }
        guard month >= 1, month <= 12, day >= 1, day <= 31, hour < 24, minute < 60, second < 61 else { return nil }
        // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let seconds = Double(days * 86_400 + hour * 3600 + minute * 60 + second)
        return (seconds + fraction) * 1000
    }

    /// Parses the path of `redact("...")` into selector steps.
    static func redactionSteps(_ text: String, at position: Int) throws(KFLError) -> [KFLStep] {
        let tokens: [KFLToken]
        do throws(KFLError) { tokens = try KFLLexer.tokens(text) } catch {
            throw KFLError(position: position, message: "invalid redact path: \(error.message)")
        }
        var sub = KFLParser(tokens: tokens)
        var steps: [KFLStep] = []
        if case .ident(let name) = sub.current.kind {
            steps.append(.key(name))
            sub.p += 1
        }
        do throws(KFLError) { steps.append(contentsOf: try sub.steps()) } catch {
            throw KFLError(position: position, message: "invalid redact path: \(error.message)")
        }
        guard case .end = sub.current.kind, !steps.isEmpty else {
            throw KFLError(position: position, message: "invalid redact path")
        }
        for s in steps {
            switch s {
            case .key, .index, .wildcard, .descendant: continue
            default: throw KFLError(position: position, message: "invalid redact path: only selectors allowed")
            }
        }
        return steps
    }

    mutating func steps() throws(KFLError) -> [KFLStep] {
        var steps: [KFLStep] = []
        while true {
            guard steps.count < KFLParser.maxSteps else { throw fail("selector too long") }
            if isOp("..") {
                p += 1
                guard case .ident(let name) = current.kind else { throw fail("expected a name after '..'") }
                p += 1
                steps.append(.descendant(name))
            } else if isOp(".") {
                p += 1
                if isOp("*") {
                    p += 1
                    steps.append(.wildcard)
                    continue
                }
                let nameTok = current
                guard case .ident(let name) = nameTok.kind else { throw fail("expected a name or '*' after '.'") }
                p += 1
                if isOp("(") {
                    p += 1
                    steps.append(try helper(name, at: nameTok))
                } else {
                    steps.append(.key(name))
                }
            } else if isOp("[") {
                p += 1
                switch current.kind {
                case .string(let key):
                    p += 1
                    steps.append(.key(key))
                case .op("*"):
                    p += 1
                    steps.append(.wildcard)
                case .number, .op("-"):
                    let n = try numberArgument("[]")
                    guard n == n.rounded(), abs(n) < 1e15 else { throw fail("expected an integer index", at: tokens[p - 1]) }
                    steps.append(.index(Int(n)))
                default:
                    throw fail("expected a string key, an index or '*' after '['")
                }
                try expect("]")
            } else {
                return steps
            }
        }
    }

    mutating func helper(_ name: String, at tok: KFLToken) throws(KFLError) -> KFLStep {
        switch name {
        case "json":
            try expect(")")
            return .json
        case "startsWith", "endsWith", "contains":
            if isOp(")") { throw fail("expected an argument for '\(name)'") }
            let arg = try logical()
            try expect(")")
            switch name {
            case "startsWith": return .startsWith(arg)
            case "endsWith": return .endsWith(arg)
            default: return .contains(arg)
            }
        default:
            throw fail("unknown helper '\(name)'", at: tok)
        }
    }
}
