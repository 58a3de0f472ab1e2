// Reading a GraphQL response body (spec section 7 "Response"): whether `data`
// is there and which errors came back, for one result or a batch.

/// One element of an error's `path`: a field name or a list index.
public enum GraphQLPathElement: Sendable, Equatable {
    case key(String)
    case index(Int)
}

/// A position in the query an error refers to.
public struct GraphQLLocation: Sendable, Equatable {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
}

/// One entry of a result's `errors`.
public struct GraphQLResponseError: Sendable, Equatable {
    public var message: String
    public var path: [GraphQLPathElement] = []
    public var locations: [GraphQLLocation] = []
    /// `extensions.code` when it is a string (Apollo's `BAD_USER_INPUT`, ...).
    public var code: String?

    public init(message: String) { self.message = message }
}

/// One execution result.
public struct GraphQLResult: Sendable, Equatable {
    /// `data` is present and not null.
    public var hasData = false
    /// `data` is present (possibly null).
    public var dataPresent = false
    /// The first `maxErrors` errors.
    public var errors: [GraphQLResponseError] = []
    /// How many errors the result has.
    public var errorCount = 0
    /// Why the body is not a GraphQL result (not JSON, no `data` nor `errors`).
    public var error: String?

    public init() {}
}

/// A GraphQL response: one result, or one per operation of a batch.
public struct GraphQLResponse: Sendable, Equatable {
    /// The results (at most `maxBatch` of a batch); one for a single result or an unreadable body.
    public var results: [GraphQLResult]
    /// For a batch (a JSON array), how many results it has; nil otherwise.
    public var batchCount: Int?

    public var isBatch: Bool { batchCount != nil }

    public init(results: [GraphQLResult], batchCount: Int? = nil) {
        self.results = results
        self.batchCount = batchCount
    }

    /// A response that could not be read, with the reason.
    public static func unreadable(_ why: String) -> GraphQLResponse {
        var r = GraphQLResult()
        r.error = why
        return GraphQLResponse(results: [r])
    }

    /// Reads a response body. Never fails: a body that is not a GraphQL
    /// result gives one result whose `error` says why.
    public static func parse(body: UnsafeRawBufferPointer, limits: GraphQLLimits = .standard) -> GraphQLResponse {
        let failed = unreadable
        guard !body.isEmpty else { return failed("the response has no body") }
        guard body.count <= limits.maxDocumentBytes else {
            return failed("the body is larger than \(limits.maxDocumentBytes) bytes")
        }
        let reader = JSONReader(body, maxDepth: limits.maxJSONDepth)
        guard let doc = reader.document() else { return failed("the body is not JSON (or nests too deep)") }
        switch doc.kind {
        case .object:
            return GraphQLResponse(results: [result(reader, doc, limits: limits)], batchCount: nil)
        case .array:
            var results: [GraphQLResult] = []
            var count = 0
            reader.forEachElement(doc) { v in
                count += 1
                if results.count < limits.maxBatch { results.append(result(reader, v, limits: limits)) }
                return true
            }
            return GraphQLResponse(results: results, batchCount: count)
        default:
            return failed("the body is a JSON \(doc.kind), not an object")
        }
    }

    /// `parse(body:limits:)` over an array.
    public static func parse(body: [UInt8], limits: GraphQLLimits = .standard) -> GraphQLResponse {
        body.withUnsafeBytes { parse(body: $0, limits: limits) }
    }

    private static func result(_ r: JSONReader, _ object: JSONValueRef, limits: GraphQLLimits) -> GraphQLResult {
        var out = GraphQLResult()
        guard object.kind == .object else {
            out.error = "a result is a JSON \(object.kind), not an object"
            return out
        }
        var errors: JSONValueRef?
        r.forEachMember(object) { k, v in
            if r.stringEquals(k, "data") {
                out.dataPresent = true
                out.hasData = v.kind != .null
            } else if errors == nil, r.stringEquals(k, "errors") {
                errors = v
            }
            return true
        }
        if let errors, errors.kind == .array {
            r.forEachElement(errors) { e in
                out.errorCount += 1
                if out.errors.count < limits.maxErrors { out.errors.append(error(r, e, limits: limits)) }
                return true
            }
        } else if !out.dataPresent {
            out.error = errors == nil ? "neither data nor errors in the body" : "errors is not a list"
        }
        return out
    }

    private static func error(_ r: JSONReader, _ e: JSONValueRef, limits: GraphQLLimits) -> GraphQLResponseError {
        var out = GraphQLResponseError(message: "")
        r.forEachMember(e) { k, v in
            if r.stringEquals(k, "message") {
                out.message = r.string(v, cap: limits.maxMessageBytes) ?? ""
            } else if r.stringEquals(k, "path") {
                r.forEachElement(v) { p in
                    guard out.path.count < limits.maxPathElements else { return false }
                    if p.kind == .string, let s = r.string(p, cap: limits.maxNameBytes) {
                        out.path.append(.key(s))
                    } else if let i = r.int(p) {
                        out.path.append(.index(i))
                    }
                    return true
                }
            } else if r.stringEquals(k, "locations") {
                r.forEachElement(v) { l in
                    guard out.locations.count < limits.maxLocations else { return false }
                    if let line = r.member(l, "line").flatMap(r.int), let column = r.member(l, "column").flatMap(r.int) {
                        out.locations.append(GraphQLLocation(line: line, column: column))
                    }
                    return true
                }
            } else if r.stringEquals(k, "extensions") {
                if let c = r.member(v, "code"), c.kind == .string { out.code = r.string(c, cap: limits.maxNameBytes) }
            }
            return true
        }
        return out
    }
}
