// What a GraphQL document says about the operation a request runs: its type,
// its name and the fields it selects at the top level.

/// Caps that bound the work and memory spent on one body, whatever it holds.
public struct GraphQLLimits: Sendable {
    /// Largest body (or query string) looked at; larger ones are reported as an error.
    public var maxDocumentBytes = 1 << 20
    /// Deepest JSON nesting accepted in a body.
    public var maxJSONDepth = 64
    /// Deepest nesting of selection sets, list/object values and list types in a query.
    public var maxNestingDepth = 64
    /// Most tokens read from one query document.
    public var maxTokens = 100_000
    /// Most top-level fields reported per operation.
    public var maxFields = 64
    /// Most fragments remembered per document.
    public var maxFragments = 256
    /// Most operations reported from a batch (`batchCount` still counts them all).
    public var maxBatch = 64
    /// Most errors reported per response result (`errorCount` still counts them all).
    public var maxErrors = 32
    /// Most path elements and locations reported per error.
    public var maxPathElements = 32
    public var maxLocations = 8
    /// Longest names, messages, codes and hashes kept (bytes).
    public var maxNameBytes = 256
    public var maxMessageBytes = 2048
    /// Longest `variables` JSON text kept (bytes).
    public var maxVariablesBytes = 16 << 10

    public init() {}
    /// The defaults.
    public static let standard = GraphQLLimits()
}

/// The three GraphQL operation types.
public enum GraphQLOperationType: String, Sendable, Equatable {
    case query, mutation, subscription
}

/// A field selected at the top level of an operation.
public struct GraphQLField: Sendable, Hashable {
    /// The field's name in the schema.
    public var name: String
    /// The alias it is returned under (`alias: name`), if any.
    public var alias: String?

    public init(name: String, alias: String? = nil) {
        self.name = name
        self.alias = alias
    }

    /// `alias: name`, or `name`.
    public var text: String { alias.map { "\($0): \(name)" } ?? name }
}

/// A syntax error in a GraphQL document, with its position.
public struct GraphQLSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String

    public var description: String { "line \(line), column \(column): \(message)" }
}

/// The operation a document runs, as far as this module reports it.
public struct GraphQLOperationSummary: Sendable, Equatable {
    public var operationType: GraphQLOperationType
    /// The operation's own name (nil for an anonymous operation).
    public var name: String?
    /// Top-level fields, with those of top-level fragment spreads and inline
    /// fragments brought up one level; duplicates removed, at most `maxFields`.
    public var fields: [GraphQLField]
    /// More fields were selected than `fields` holds.
    public var fieldsTruncated: Bool
    /// Operations and fragments defined in the document.
    public var operationCount: Int
    public var fragmentCount: Int
}

/// Parses executable GraphQL documents.
public enum GraphQLDocument {
    /// Parses `source` and picks the operation that runs: the one named
    /// `operationName`, else the only one. Syntax errors, a missing named
    /// operation and an ambiguous choice are returned as errors (never thrown
    /// past this call, never a crash).
    public static func operation(
        in source: UnsafeRawBufferPointer, operationName: String? = nil, limits: GraphQLLimits = .standard
    ) -> Result<GraphQLOperationSummary, GraphQLSyntaxError> {
        guard source.count <= limits.maxDocumentBytes else {
            return .failure(GraphQLSyntaxError(
                line: 1, column: 1, message: "the document is larger than \(limits.maxDocumentBytes) bytes"))
        }
        var parser = Parser(source, limits: limits)
        let doc: ParsedDocument
        do {
            doc = try parser.parseDocument()
        } catch {
            let (line, column) = lineAndColumn(source, error.offset)
            return .failure(GraphQLSyntaxError(line: line, column: column, message: error.message))
        }
        let chosen: ParsedOperation
        if let operationName {
            guard let op = doc.operations.first(where: { $0.name == operationName }) else {
                return .failure(GraphQLSyntaxError(
                    line: 1, column: 1, message: "no operation named '\(operationName)' in the document"))
            }
            chosen = op
        } else {
            guard doc.operations.count == 1 else {
                let message =
                    doc.operations.isEmpty
                    ? "the document defines no operation"
                    : "the document defines \(doc.operations.count) operations and no operationName was given"
                return .failure(GraphQLSyntaxError(line: 1, column: 1, message: message))
            }
            chosen = doc.operations[0]
        }
        var fields: [GraphQLField] = []
        var seen = Set<GraphQLField>()
        var truncated = false
        func add(_ f: GraphQLField) {
            guard !seen.contains(f) else { return }
            guard fields.count < limits.maxFields else {
                truncated = true
                return
            }
            seen.insert(f)
            fields.append(f)
        }
        for s in chosen.selections {
            switch s {
            case .field(let f):
                add(f)
            case .inline(let fs):
                fs.forEach(add)
            case .spread(let name):
                for case .field(let f) in doc.fragments[name] ?? [] { add(f) }
            }
        }
        return .success(GraphQLOperationSummary(
            operationType: chosen.type, name: chosen.name, fields: fields, fieldsTruncated: truncated,
            operationCount: doc.operations.count, fragmentCount: doc.fragments.count))
    }

    /// `operation(in:operationName:limits:)` over a String.
    public static func operation(
        in source: String, operationName: String? = nil, limits: GraphQLLimits = .standard
    ) -> Result<GraphQLOperationSummary, GraphQLSyntaxError> {
        var s = source
        return s.withUTF8 { operation(in: UnsafeRawBufferPointer($0), operationName: operationName, limits: limits) }
    }
}
