// A recursive-descent parser for executable GraphQL documents (October 2021
// spec, section 2 "Language" with section 2.2's ExecutableDefinition only):
// operations (with the shorthand `{ ... }` query), variable definitions,
// directives, fragments, inline fragments, aliases, arguments and every value
// kind. It checks the whole syntax but keeps only what this module reports:
// each operation's type, name and top-level selections, and each fragment's
// top-level selections. Nesting (selection sets, values, list types) and the
// token count are capped, so hostile documents fail fast with an error.

/// A selection directly under an operation (or a fragment).
enum TopSelection {
    case field(GraphQLField)
    case spread(String)
    /// The fields directly inside an inline fragment.
    case inline([GraphQLField])
}

struct ParsedOperation {
    var type: GraphQLOperationType
    var name: String?
    var selections: [TopSelection]
}

struct ParsedDocument {
    var operations: [ParsedOperation] = []
    var fragments: [String: [TopSelection]] = [:]
}

struct Parser {
    private var lexer: Lexer
    private var token = Token(kind: .end, start: 0, end: 0)
    private var depth = 0
    private var tokens = 0
    private let limits: GraphQLLimits

    init(_ source: UnsafeRawBufferPointer, limits: GraphQLLimits) {
        lexer = Lexer(source)
        self.limits = limits
    }

    /// Document: Definition+ (executable definitions only).
    mutating func parseDocument() throws(SyntaxError) -> ParsedDocument {
        var doc = ParsedDocument()
        try advance()
        guard token.kind != .end else { throw SyntaxError(offset: token.start, message: "the document is empty") }
        while token.kind != .end {
            if token.kind == .leftBrace {
                let selections = try selectionSet(level: 0)
                doc.operations.append(ParsedOperation(type: .query, name: nil, selections: selections))
                continue
            }
            guard token.kind == .name else { throw unexpected("a definition") }
            if let type = operationType() {
                try advance()
                var name: String?
                if token.kind == .name { name = try takeName() }
                if token.kind == .leftParen { try variableDefinitions() }
                try directives(const: false)
                let selections = try selectionSet(level: 0)
                doc.operations.append(ParsedOperation(type: type, name: name, selections: selections))
            } else if isName("fragment") {
                try advance()
                let name = try fragmentName()
                guard isName("on") else { throw unexpected("'on'") }
                try advance()
                _ = try takeName()
                try directives(const: false)
                let selections = try selectionSet(level: 0)
                if doc.fragments[name] == nil, doc.fragments.count < limits.maxFragments {
                    doc.fragments[name] = selections
                }
            } else if Self.typeSystemWords.contains(where: { isName($0) }) {
                throw SyntaxError(
                    offset: token.start,
                    message: "a type system definition ('\(text(token))') is not executable")
            } else {
                throw unexpected("'query', 'mutation', 'subscription', 'fragment' or '{'")
            }
        }
        return doc
    }

    static let typeSystemWords: [StaticString] = [
        "schema", "scalar", "type", "interface", "union", "enum", "input", "directive", "extend",
    ]

    // MARK: Tokens

    private mutating func advance() throws(SyntaxError) {
        tokens += 1
        guard tokens <= limits.maxTokens else {
            throw SyntaxError(offset: token.end, message: "more than \(limits.maxTokens) tokens")
        }
        token = try lexer.next()
    }

    private mutating func expect(_ kind: TokenKind, _ what: String) throws(SyntaxError) {
        guard token.kind == kind else { throw unexpected(what) }
        try advance()
    }

    private func unexpected(_ expected: String) -> SyntaxError {
        let found = token.kind == .end ? "the end of the document" : "'\(text(token, cap: 24))'"
        return SyntaxError(offset: token.start, message: "expected \(expected), found \(found)")
    }

    private func text(_ t: Token, cap: Int = 64) -> String {
        let e = min(t.end, t.start + cap)
        return String(decoding: UnsafeRawBufferPointer(rebasing: lexer.source[t.start..<e]), as: UTF8.self)
    }

    private func isName(_ word: StaticString) -> Bool {
        guard token.kind == .name, token.end - token.start == word.utf8CodeUnitCount else { return false }
        let w = UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        return UnsafeRawBufferPointer(rebasing: lexer.source[token.start..<token.end]).elementsEqual(w)
    }

    private func operationType() -> GraphQLOperationType? {
        if isName("query") { return .query }
        if isName("mutation") { return .mutation }
        if isName("subscription") { return .subscription }
        return nil
    }

    private mutating func takeName() throws(SyntaxError) -> String {
        guard token.kind == .name else { throw unexpected("a name") }
        let s = text(token, cap: limits.maxNameBytes)
        try advance()
        return s
    }

    /// FragmentName: a Name but not `on`.
    private mutating func fragmentName() throws(SyntaxError) -> String {
        guard token.kind == .name, !isName("on") else { throw unexpected("a fragment name") }
        return try takeName()
    }

    private mutating func enter() throws(SyntaxError) {
        depth += 1
        guard depth <= limits.maxNestingDepth else {
            throw SyntaxError(offset: token.start, message: "nesting deeper than \(limits.maxNestingDepth)")
        }
    }

    // MARK: Selections

    /// SelectionSet: `{` Selection+ `}`. `level` 0 is an operation's or a
    /// fragment's own set, 1 an inline fragment directly in it (its fields are
    /// kept), deeper sets are only checked.
    private mutating func selectionSet(level: Int) throws(SyntaxError) -> [TopSelection] {
        try enter()
        defer { depth -= 1 }
        try expect(.leftBrace, "'{'")
        var out: [TopSelection] = []
        repeat {
            if token.kind == .spread {
                try advance()
                if token.kind == .name, !isName("on") {
                    let name = try takeName()
                    try directives(const: false)
                    if level == 0 { out.append(.spread(name)) }
                } else {
                    if isName("on") {
                        try advance()
                        _ = try takeName()
                    }
                    try directives(const: false)
                    let inner = try selectionSet(level: level + 1)
                    if level == 0 {
                        var fields: [GraphQLField] = []
                        for case .field(let f) in inner { fields.append(f) }
                        out.append(.inline(fields))
                    }
                }
            } else {
                let first = try takeName()
                var field = GraphQLField(name: first, alias: nil)
                if token.kind == .colon {
                    try advance()
                    field = GraphQLField(name: try takeName(), alias: first)
                }
                if token.kind == .leftParen { try arguments(const: false) }
                try directives(const: false)
                if token.kind == .leftBrace { _ = try selectionSet(level: level + 2) }
                if level <= 1 { out.append(.field(field)) }
            }
        } while token.kind != .rightBrace
        try advance()
        return out
    }

    // MARK: Arguments, directives, variables, types

    /// Arguments: `(` (Name `:` Value)+ `)`.
    private mutating func arguments(const: Bool) throws(SyntaxError) {
        try expect(.leftParen, "'('")
        repeat {
            _ = try takeName()
            try expect(.colon, "':'")
            try value(const: const)
        } while token.kind != .rightParen
        try advance()
    }

    /// Directives: (`@` Name Arguments?)*.
    private mutating func directives(const: Bool) throws(SyntaxError) {
        while token.kind == .at {
            try advance()
            _ = try takeName()
            if token.kind == .leftParen { try arguments(const: const) }
        }
    }

    /// VariableDefinitions: `(` (`$`Name `:` Type DefaultValue? Directives[Const]?)+ `)`.
    private mutating func variableDefinitions() throws(SyntaxError) {
        try expect(.leftParen, "'('")
        repeat {
            try expect(.dollar, "'$'")
            _ = try takeName()
            try expect(.colon, "':'")
            try type()
            if token.kind == .equals {
                try advance()
                try value(const: true)
            }
            try directives(const: true)
        } while token.kind != .rightParen
        try advance()
    }

    /// Type: NamedType | `[` Type `]`, each optionally followed by `!`.
    private mutating func type() throws(SyntaxError) {
        try enter()
        defer { depth -= 1 }
        if token.kind == .leftBracket {
            try advance()
            try type()
            try expect(.rightBracket, "']'")
        } else {
            _ = try takeName()
        }
        if token.kind == .bang { try advance() }
    }

    /// Value[Const]: variable (not when const), int, float, string, block string,
    /// boolean, null, enum, list, object.
    private mutating func value(const: Bool) throws(SyntaxError) {
        switch token.kind {
        case .dollar:
            guard !const else {
                throw SyntaxError(offset: token.start, message: "a variable is not allowed in a constant value")
            }
            try advance()
            _ = try takeName()
        case .int, .float, .string, .blockString, .name:
            try advance()
        case .leftBracket:
            try enter()
            defer { depth -= 1 }
            try advance()
            while token.kind != .rightBracket {
                guard token.kind != .end else { throw unexpected("']'") }
                try value(const: const)
            }
            try advance()
        case .leftBrace:
            try enter()
            defer { depth -= 1 }
            try advance()
            while token.kind != .rightBrace {
                _ = try takeName()
                try expect(.colon, "':'")
                try value(const: const)
            }
            try advance()
        default:
            throw unexpected("a value")
        }
    }
}
