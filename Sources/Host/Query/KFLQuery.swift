/// A compiled KFL (Kubeshark Filter Language, version 1) query.
///
/// Compile once with ``compile(_:macros:)``, then call ``matches(json:nowMs:)`` per
/// entry; evaluation walks the prebuilt tree and never re-parses the query.
///
/// Semantics:
/// - `and`/`or` share one precedence level and run left to right with short-circuit
///   (`a or b and c` is `(a or b) and c`, as in KFL v1).
/// - A selector that finds nothing makes its comparison false (`!=` included).
/// - A selector with `.*` (or a `{name, value}` list lookup) yields several values;
///   a comparison is true when any of them satisfies it.
/// - `==`/`!=` against `r"..."` is a regex search (unanchored) in the text of the
///   value; numbers and booleans are matched by their JSON text.
/// - A number compared with a string holding a number compares numerically.
/// - On a list of `{name, value}` objects (HTTP headers, query strings), `.key` and
///   `["key"]` select the values whose name equals `key`, ignoring ASCII case.
public struct KFLQuery: Sendable {
    /// The query as given (before macro expansion).
    public let text: String
    let expr: KFLExpr
    /// `n` of a top-level `limit(n)`: stop the stream after this many matches.
    public var limit: Int?
    /// The paths given to `redact(...)`, in order.
    public var redactions: [String]
    let redactionPaths: [[KFLStep]]
    /// The parts of an entry the query reads; nil when it may read anything.
    let reads: JSONKeepTree?

    init(text: String, expr: KFLExpr, limit: Int?, redactions: [String], redactionPaths: [[KFLStep]]) {
        self.text = text
        self.expr = expr
        self.limit = limit
        self.redactions = redactions
        self.redactionPaths = redactionPaths
        var tree = JSONKeepTree()
        reads = KFLQuery.collectReads(expr, into: &tree) ? tree : nil
    }

    /// Adds the entry parts `e` reads to `tree`; false when it may read any.
    /// A selector keeps its object keys up to the first step that is not a key
    /// (index, wildcard, `.json()`...), and everything below that.
    static func collectReads(_ e: KFLExpr, into tree: inout JSONKeepTree) -> Bool {
        func arguments(_ s: [KFLStep]) -> Bool {
            for step in s {
                switch step {
                case .startsWith(let a), .endsWith(let a), .contains(let a):
                    if !collectReads(a, into: &tree) { return false }
                default: continue
                }
            }
            return true
        }
        func keys(_ s: [KFLStep]) -> [String]? {
            var out: [String] = []
            for step in s {
                guard case .key(let k) = step else { break }
                out.append(k)
            }
            return out.isEmpty ? nil : out
        }
        switch e {
        case .literal, .regex, .now, .alwaysTrue: return true
        case .path(let s):
            guard let path = keys(s) else { return false }
            tree.keep(path[...])
            return arguments(s)
        case .postfix(let base, let s): return collectReads(base, into: &tree) && arguments(s)
        case .not(let x), .negate(let x): return collectReads(x, into: &tree)
        case .compare(_, let l, let r): return collectReads(l, into: &tree) && collectReads(r, into: &tree)
        case .logic(let first, let rest):
            guard collectReads(first, into: &tree) else { return false }
            for (_, t) in rest where !collectReads(t, into: &tree) { return false }
            return true
        }
    }

    /// Compiles `text`, expanding `macros` (name → KFL text) on whole identifier
    /// tokens (never inside string literals). An empty query matches everything.
    public static func compile(_ text: String, macros: [String: String] = [:]) throws(KFLError) -> KFLQuery {
        let raw = try KFLLexer.tokens(text)
        let tokens = try expandMacros(raw, macros: macros, depth: 0)
        if tokens.count == 1 {
            return KFLQuery(text: text, expr: .alwaysTrue, limit: nil, redactions: [], redactionPaths: [])
        }
        var parser = KFLParser(tokens: tokens)
        let expr = try parser.parseQuery()
        return KFLQuery(
            text: text, expr: expr, limit: parser.limit, redactions: parser.redactions,
            redactionPaths: parser.redactionPaths)
    }

    static func expandMacros(_ tokens: [KFLToken], macros: [String: String], depth: Int) throws(KFLError) -> [KFLToken] {
        guard !macros.isEmpty else { return tokens }
        var out: [KFLToken] = []
        out.reserveCapacity(tokens.count)
        for (i, tok) in tokens.enumerated() {
            guard case .ident(let name) = tok.kind, let body = macros[name],
                  !["and", "or", "true", "false", "nil", "null"].contains(name)
            else {
                out.append(tok)
                continue
            }
            if i > 0, case .op(let prev) = tokens[i - 1].kind, prev == "." || prev == ".." {
                out.append(tok)
                continue
            }
            if case .op(let next) = tokens[i + 1].kind, next == "." || next == "[" || next == "(" || next == ".." {
                out.append(tok)
                continue
            }
            guard depth < 8 else { throw KFLError(position: tok.position, message: "macro '\(name)' expands recursively") }
            var inner: [KFLToken]
            do throws(KFLError) {
                inner = try KFLLexer.tokens(body)
            } catch {
                throw KFLError(position: tok.position, message: "invalid macro '\(name)': \(error.message)")
            }
            inner.removeLast()  // .end
            inner = try expandMacros(inner + [KFLToken(kind: .end, position: 0)], macros: macros, depth: depth + 1)
            inner.removeLast()
            out.append(KFLToken(kind: .op("("), position: tok.position))
            for var t in inner {
                t.position = tok.position
                out.append(t)
            }
            out.append(KFLToken(kind: .op(")"), position: tok.position))
        }
        return out
    }

    /// Whether the entry whose JSON text is `json` matches. Invalid JSON never matches.
    /// `nowMs` is the current Unix time in milliseconds (for `now()`, `seconds(n)`, ...).
    public func matches(json: UnsafeRawBufferPointer, nowMs: Int64) -> Bool {
        if case .alwaysTrue = expr { return true }
        let parsed: JSONValue?
        if let reads {
            parsed = try? JSONValue.parse(json, keeping: reads)
        } else {
            parsed = try? JSONValue.parse(json)
        }
        guard let value = parsed else { return false }
        return matches(value, nowMs: nowMs)
    }

    /// Whether the parsed entry `value` matches.
    public func matches(_ value: JSONValue, nowMs: Int64) -> Bool {
        KFLEvaluator(root: value, nowMs: Double(nowMs)).truth(expr)
    }

    /// `value` with every location named by ``redactions`` replaced by `"[REDACTED]"`.
    public func redact(_ value: JSONValue) -> JSONValue {
        var v = value
        for path in redactionPaths { KFLRedactor.apply(&v, path[...]) }
        return v
    }

    /// The entry `json` rewritten with its redacted locations replaced by
    /// `"[REDACTED]"`; the bytes unchanged when there is nothing to redact; nil when
    /// there are redactions but the JSON cannot be parsed.
    public func redact(json: UnsafeRawBufferPointer) -> [UInt8]? {
        guard !redactionPaths.isEmpty else { return Array(json) }
        guard let value = try? JSONValue.parse(json) else { return nil }
        return redact(value).jsonBytes
    }
}

/// Macro tables for KFL.
public enum KFLMacros {
    /// One macro per protocol macro name the plugins declare: `http` →
    /// `protocol.macro == "http"` (the entry's `protocol` object carries the
    /// descriptor's macro). A name some protocol lists among its extra macros
    /// (GraphQL over HTTP answers to `http` too) also matches entries whose
    /// `protocol.macros` list holds it.
    public static func from(plugins: [LoadedPlugin]) -> [String: String] {
        var primary = Set<String>()
        var extra = Set<String>()
        for plugin in plugins {
            for p in plugin.metadata.protocols {
                if !p.macro.isEmpty { primary.insert(p.macro) }
                extra.formUnion(p.extraMacros.filter { !$0.isEmpty })
            }
        }
        var table: [String: String] = [:]
        for name in primary.union(extra) {
            var quoted: [UInt8] = []
            JSONValue.writeString(name, to: &quoted)
            let literal = String(decoding: quoted, as: UTF8.self)
            var tests: [String] = []
            if primary.contains(name) { tests.append("protocol.macro == \(literal)") }
            if extra.contains(name) { tests.append("protocol.macros[*] == \(literal)") }
            table[name] = tests.joined(separator: " or ")
        }
        return table
    }
}

enum KFLRedactor {
    static let marker = JSONValue.string("[REDACTED]")

    static func apply(_ v: inout JSONValue, _ steps: ArraySlice<KFLStep>) {
        guard let step = steps.first else {
            v = marker
            return
        }
        let rest = steps.dropFirst()
        switch (step, v) {
        case (.key(let k), .object(var members)):
            for i in members.indices where members[i].key == k { apply(&members[i].value, rest) }
            v = .object(members)
        case (.key(let k), .array(var items)):
            for i in items.indices {
                guard case .object(var members) = items[i], KFLEvaluator.isNamed(members, k) else { continue }
                for j in members.indices where members[j].key == "value" { apply(&members[j].value, rest) }
                items[i] = .object(members)
            }
            v = .array(items)
        case (.index(let n), .array(var items)):
            let idx = n < 0 ? items.count + n : n
            guard idx >= 0, idx < items.count else { return }
            apply(&items[idx], rest)
            v = .array(items)
        case (.wildcard, .array(var items)):
            for i in items.indices { apply(&items[i], rest) }
            v = .array(items)
        case (.wildcard, .object(var members)):
            for i in members.indices { apply(&members[i].value, rest) }
            v = .object(members)
        case (.descendant(let k), .object(var members)):
            for i in members.indices {
                if members[i].key == k {
                    apply(&members[i].value, rest)
                } else {
                    apply(&members[i].value, steps)
                }
            }
            v = .object(members)
        case (.descendant, .array(var items)):
            for i in items.indices { apply(&items[i], steps) }
            v = .array(items)
        default:
            return
        }
    }
}

struct KFLEvaluator {
    let root: JSONValue
    let nowMs: Double

    /// Whether `members` is a `{name, value}` pair whose name equals `key` (ASCII case-insensitive).
    static func isNamed(_ members: [JSONMember], _ key: String) -> Bool {
        var named = false
        var hasValue = false
        for m in members {
            if m.key == "name", case .string(let n) = m.value, equalsIgnoringCase(n, key) { named = true }
            if m.key == "value" { hasValue = true }
        }
        return named && hasValue
    }

    static func equalsIgnoringCase(_ a: String, _ b: String) -> Bool {
        var ia = a.utf8.makeIterator()
        var ib = b.utf8.makeIterator()
        while true {
            let ca = ia.next()
            let cb = ib.next()
            guard let x = ca, let y = cb else { return ca == nil && cb == nil }
            let lx = x >= 65 && x <= 90 ? x + 32 : x
            let ly = y >= 65 && y <= 90 ? y + 32 : y
            if lx != ly { return false }
        }
    }

    /// The boolean value of `e`.
    func truth(_ e: KFLExpr) -> Bool {
        switch e {
        case .alwaysTrue: return true
        case .not(let inner): return !truth(inner)
        case .compare(let op, let l, let r): return compare(op, l, r)
        case .logic(let first, let rest):
            var acc = truth(first)
            for (op, term) in rest {
                switch op {
                case .and: if acc { acc = truth(term) }
                case .or: if !acc { acc = truth(term) }
                }
            }
            return acc
        default:
            return each(e) { KFLEvaluator.truthy($0) }
        }
    }

    /// null, false and nothing are false; every other value is true.
    static func truthy(_ v: JSONValue) -> Bool {
        switch v {
        case .null, .bool(false): return false
        default: return true
        }
    }

    /// Calls `body` with each value of `e` until it returns true; returns whether it did.
    func each(_ e: KFLExpr, _ body: (JSONValue) -> Bool) -> Bool {
        switch e {
        case .literal(let v): return body(v)
        case .regex(let r): return body(.string(r.source))
        case .path(let steps): return walk(root, steps[...], body)
        case .postfix(let base, let steps): return each(base) { walk($0, steps[...], body) }
        case .now(let offset): return body(.number(nowMs + offset))
        case .alwaysTrue: return body(.bool(true))
        case .negate(let inner):
            return each(inner) { v in
                guard let d = KFLEvaluator.numeric(v) else { return false }
                return body(.number(-d))
            }
        case .not, .compare, .logic: return body(.bool(truth(e)))
        }
    }

    func walk(_ v: JSONValue, _ steps: ArraySlice<KFLStep>, _ body: (JSONValue) -> Bool) -> Bool {
        guard let step = steps.first else { return body(v) }
        let rest = steps.dropFirst()
        switch step {
        case .key(let k):
            switch v {
            case .object(let members):
                for m in members where m.key == k { return walk(m.value, rest, body) }
                return false
            case .array(let items):
                for item in items {
                    guard case .object(let members) = item, KFLEvaluator.isNamed(members, k) else { continue }
                    for m in members where m.key == "value" {
                        if walk(m.value, rest, body) { return true }
                    }
                }
                return false
            default: return false
            }
        case .index(let n):
            guard case .array(let items) = v else { return false }
            let idx = n < 0 ? items.count + n : n
            guard idx >= 0, idx < items.count else { return false }
            return walk(items[idx], rest, body)
        case .wildcard:
            switch v {
            case .array(let items):
                for item in items where walk(item, rest, body) { return true }
                return false
            case .object(let members):
                for m in members where walk(m.value, rest, body) { return true }
                return false
            default: return false
            }
        case .descendant(let k):
            switch v {
            case .object(let members):
                for m in members {
                    if m.key == k, walk(m.value, rest, body) { return true }
                    if walk(m.value, steps, body) { return true }
                }
                return false
            case .array(let items):
                for item in items where walk(item, steps, body) { return true }
                return false
            default: return false
            }
        case .json:
            switch v {
            case .string(let s):
                guard let parsed = try? JSONValue.parse(s) else { return false }
                return walk(parsed, rest, body)
            case .object, .array: return walk(v, rest, body)
            default: return false
            }
        case .startsWith(let arg), .endsWith(let arg), .contains(let arg):
            var result = false
            if case .contains = step, case .array(let items) = v {
                result = each(arg) { a in items.contains { KFLEvaluator.compareValues(.eq, $0, a) } }
            } else if let text = KFLEvaluator.text(v) {
                result = each(arg) { a in
                    guard let needle = KFLEvaluator.text(a) else { return false }
                    switch step {
                    case .startsWith: return text.utf8.starts(with: needle.utf8)
                    case .endsWith:
                        let t = text.utf8, n = needle.utf8
                        return t.count >= n.count && t.dropFirst(t.count - n.count).elementsEqual(n)
                    default: return KFLEvaluator.containsBytes(text, needle)
                    }
                }
            } else {
                return false
            }
            return walk(.bool(result), rest, body)
        }
    }

    static func containsBytes(_ haystack: String, _ needle: String) -> Bool {
        let h = Array(haystack.utf8), n = Array(needle.utf8)
        if n.isEmpty { return true }
        guard h.count >= n.count else { return false }
        var i = 0
        while i + n.count <= h.count {
            if h[i] == n[0] {
                var k = 1
                while k < n.count, h[i + k] == n[k] { k += 1 }
                if k == n.count { return true }
            }
            i += 1
        }
        return false
    }

    /// The text a regex or string helper sees: strings as they are, numbers and booleans as JSON text.
    static func text(_ v: JSONValue) -> String? {
        switch v {
        case .string(let s): return s
        case .number(let d): return JSONValue.numberText(d)
        case .bool(let b): return b ? "true" : "false"
        default: return nil
        }
    }

    static func numeric(_ v: JSONValue) -> Double? {
        switch v {
        case .number(let d): return d
        case .string(let s):
            guard let d = Double(s), d.isFinite else { return nil }
            return d
        default: return nil
        }
    }

    func compare(_ op: KFLCompareOp, _ l: KFLExpr, _ r: KFLExpr) -> Bool {
        var regex: KFLRegex?
        var other = l
        if case .regex(let x) = r {
            regex = x
        } else if case .regex(let x) = l {
            regex = x
            other = r
        }
        if let regex {
            guard op == .eq || op == .ne else { return false }
            return each(other) { v in
                guard let t = KFLEvaluator.text(v) else { return false }
                return regex.matches(t) == (op == .eq)
            }
        }
        return each(l) { a in each(r) { b in KFLEvaluator.compareValues(op, a, b) } }
    }

    static func compareValues(_ op: KFLCompareOp, _ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.number, .number), (.number, .string), (.string, .number):
            guard let x = numeric(a), let y = numeric(b) else { return op == .ne }
            switch op {
            case .eq: return x == y
            case .ne: return x != y
            case .lt: return x < y
            case .le: return x <= y
            case .gt: return x > y
            case .ge: return x >= y
            }
        case (.string(let x), .string(let y)):
            switch op {
            case .eq: return x == y
            case .ne: return x != y
            case .lt: return x.utf8.lexicographicallyPrecedes(y.utf8)
            case .le: return !y.utf8.lexicographicallyPrecedes(x.utf8)
            case .gt: return y.utf8.lexicographicallyPrecedes(x.utf8)
            case .ge: return !x.utf8.lexicographicallyPrecedes(y.utf8)
            }
        default:
            switch op {
            case .eq: return a == b
            case .ne: return a != b
            default: return false
            }
        }
    }
}
