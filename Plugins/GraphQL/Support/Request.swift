// Recognising a GraphQL request in an HTTP request's body or query string
// (GraphQL over HTTP: POST with a JSON body, POST application/graphql, GET
// with query parameters; batches as JSON arrays; automatic persisted queries
// with only a hash in `extensions`). Transport-neutral: the caller hands over
// bytes and the content type, so HTTP/1.x and HTTP/2 use the same code.

/// How the request carried GraphQL.
public enum GraphQLTransport: String, Sendable, Equatable {
    /// A JSON body (`{"query": ...}` or an array of such objects).
    case json
    /// An `application/graphql` body: the document itself.
    case graphqlBody = "graphql"
    /// Query parameters (`?query=...&operationName=...&variables=...`).
    case queryString = "query-string"
}

/// One GraphQL operation of a request.
public struct GraphQLOperation: Sendable, Equatable {
    /// From the query text; nil when there is none (a persisted query sent by
    /// hash) or it does not parse.
    public var operationType: GraphQLOperationType?
    /// `operationName` as sent, else the name of the operation in the query.
    public var operationName: String?
    /// Top-level fields (see `GraphQLOperationSummary.fields`).
    public var fields: [GraphQLField] = []
    public var fieldsTruncated = false
    /// The `variables` JSON text as sent (capped at `maxVariablesBytes`).
    public var variables: String?
    public var variablesTruncated = false
    /// `extensions.persistedQuery.sha256Hash`.
    public var persistedQueryHash: String?
    /// Whether query text was sent.
    public var hasQuery = false
    /// Why the operation could not be read (syntax error with its position, ...).
    public var error: String?

    public init() {}
}

/// A GraphQL request: one operation, or a batch.
public struct GraphQLRequest: Sendable, Equatable {
    public var transport: GraphQLTransport
    /// The operations (at most `maxBatch` of a batch).
    public var operations: [GraphQLOperation]
    /// For a batch (a JSON array), how many operations it has; nil otherwise.
    public var batchCount: Int?

    public var isBatch: Bool { batchCount != nil }

    /// Reads a request body. `contentType` is the Content-Type value as sent
    /// (parameters allowed). Returns nil when the body is not GraphQL: neither
    /// `application/graphql`, nor JSON whose object (or every object of an
    /// array) has a string `query` or an `extensions.persistedQuery` object. A
    /// JSON `query` that does not parse still counts when the object has another
    /// GraphQL member (`operationName`, `variables`, `extensions`); alone it is
    /// taken for some other API's `query` field. Non-JSON bodies cost one byte
    /// test, JSON bodies without the bytes `uery"` one scan (``mightBeJSONRequest(_:)``).
    public static func parse(
        body: UnsafeRawBufferPointer, contentType: UnsafeRawBufferPointer?, limits: GraphQLLimits = .standard
    ) -> GraphQLRequest? {
        if let contentType, mediaTypeIs(contentType, "application/graphql") {
            var op = GraphQLOperation()
            op.hasQuery = true
            fill(&op, query: body, operationName: nil, limits: limits)
            return GraphQLRequest(transport: .graphqlBody, operations: [op], batchCount: nil)
        }
        guard mightBeJSONRequest(body) else { return nil }
        guard body.count <= limits.maxDocumentBytes else { return nil }
        let reader = JSONReader(body, maxDepth: limits.maxJSONDepth)
        guard let doc = reader.document() else { return nil }
        switch doc.kind {
        case .object:
            guard let op = operation(reader, doc, limits: limits) else { return nil }
            return GraphQLRequest(transport: .json, operations: [op], batchCount: nil)
        case .array:
            var ops: [GraphQLOperation] = []
            var count = 0
            var allGraphQL = true
            reader.forEachElement(doc) { v in
                count += 1
                guard let op = operation(reader, v, limits: limits) else {
                    allGraphQL = false
                    return false
                }
                if ops.count < limits.maxBatch { ops.append(op) }
                return true
            }
            guard allGraphQL, count > 0 else { return nil }
            return GraphQLRequest(transport: .json, operations: ops, batchCount: count)
        default:
            return nil
        }
    }

    /// `parse(body:contentType:limits:)` over arrays (tests, tools).
    public static func parse(body: [UInt8], contentType: String?, limits: GraphQLLimits = .standard) -> GraphQLRequest? {
        body.withUnsafeBytes { b in
            guard var ct = contentType else { return parse(body: b, contentType: nil, limits: limits) }
            return ct.withUTF8 { parse(body: b, contentType: UnsafeRawBufferPointer($0), limits: limits) }
        }
    }

    /// Reads a request's query string (the part after `?`, without the
    /// fragment). Returns nil unless it has a `query` parameter that parses as
    /// GraphQL, or an `extensions` parameter holding a persisted-query hash.
    public static func parse(queryString: UnsafeRawBufferPointer, limits: GraphQLLimits = .standard) -> GraphQLRequest? {
        guard queryString.count <= limits.maxDocumentBytes else { return nil }
        var query: [UInt8]?
        var operationName: [UInt8]?
        var variables: [UInt8]?
        var extensions: [UInt8]?
        forEachParameter(queryString) { name, value in
            if name.elementsEqual("query".utf8), query == nil {
                query = percentDecoded(value)
            } else if name.elementsEqual("operationName".utf8), operationName == nil {
                operationName = percentDecoded(value)
            } else if name.elementsEqual("variables".utf8), variables == nil {
                variables = percentDecoded(value)
            } else if name.elementsEqual("extensions".utf8), extensions == nil {
                extensions = percentDecoded(value)
            }
        }
        var op = GraphQLOperation()
        if let extensions {
            op.persistedQueryHash = extensions.withUnsafeBytes { e in
                let r = JSONReader(e, maxDepth: limits.maxJSONDepth)
                return r.document().flatMap { persistedHash(r, $0, limits: limits) }
            }
        }
        if let operationName, !operationName.isEmpty {
            op.operationName = String(decoding: operationName.prefix(limits.maxNameBytes), as: UTF8.self)
        }
        if let variables, !variables.isEmpty {
            op.variablesTruncated = variables.count > limits.maxVariablesBytes
            op.variables = String(decoding: trimToBoundary(Array(variables.prefix(limits.maxVariablesBytes))), as: UTF8.self)
        }
        if let query, !query.isEmpty {
            op.hasQuery = true
            let ok: Bool = query.withUnsafeBytes { q in
                fill(&op, query: q, operationName: op.operationName, limits: limits)
                return op.operationType != nil
            }
            // A `query` parameter that is not GraphQL is some other API's parameter.
            guard ok || op.persistedQueryHash != nil else { return nil }
        } else if op.persistedQueryHash == nil {
            return nil
        }
        return GraphQLRequest(transport: .queryString, operations: [op], batchCount: nil)
    }

    /// `parse(queryString:limits:)` over a String.
    public static func parse(queryString: String, limits: GraphQLLimits = .standard) -> GraphQLRequest? {
        var s = queryString
        return s.withUTF8 { parse(queryString: UnsafeRawBufferPointer($0), limits: limits) }
    }

    /// The cheap test run before any JSON parsing: the body starts (after
    /// whitespace) with `{` or `[` and holds the bytes `uery"` somewhere (as
    /// in `"query"` and `"persistedQuery"`). False means "not a GraphQL JSON request".
    public static func mightBeJSONRequest(_ body: UnsafeRawBufferPointer) -> Bool {
        let n = body.count
        var i = 0
        while i < n, body[i] == 0x20 || body[i] == 0x0A || body[i] == 0x0D || body[i] == 0x09 { i += 1 }
        guard i < n, body[i] == UInt8(ascii: "{") || body[i] == UInt8(ascii: "[") else { return false }
        guard let base = body.baseAddress else { return false }
        // A 'y' at k can end `uery"` only from here on (k - 3 stays after the bracket).
        i += 4
        @inline(__always) func endsQuery(_ k: Int) -> Bool {
            k + 1 < n && body[k + 1] == UInt8(ascii: "\"") && body[k - 1] == UInt8(ascii: "r")
                && body[k - 2] == UInt8(ascii: "e") && body[k - 3] == UInt8(ascii: "u")
        }
        // Eight bytes at a time: the bytes equal to 'y' (0x79) are found with the
        // "has a zero byte" trick on w ^ 0x7979...; candidates (and the trick's rare
        // false positives) are checked one by one.
        while i + 8 <= n {
            let w = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            let x = w ^ 0x7979_7979_7979_7979
            var t = (x &- 0x0101_0101_0101_0101) & ~x & 0x8080_8080_8080_8080
            while t != 0 {
                if endsQuery(i + t.trailingZeroBitCount >> 3) { return true }
                t &= t &- 1
            }
            i += 8
        }
        while i < n {
            if body[i] == UInt8(ascii: "y"), endsQuery(i) { return true }
            i += 1
        }
        return false
    }

    // MARK: JSON objects

    /// The operation an object describes, or nil when it is not a GraphQL request object.
    private static func operation(_ r: JSONReader, _ object: JSONValueRef, limits: GraphQLLimits) -> GraphQLOperation? {
        guard object.kind == .object else { return nil }
        var query: JSONValueRef?
        var operationName: JSONValueRef?
        var variables: JSONValueRef?
        var extensions: JSONValueRef?
        r.forEachMember(object) { k, v in
            if query == nil, r.stringEquals(k, "query") {
                query = v
            } else if operationName == nil, r.stringEquals(k, "operationName") {
                operationName = v
            } else if variables == nil, r.stringEquals(k, "variables") {
                variables = v
            } else if extensions == nil, r.stringEquals(k, "extensions") {
                extensions = v
            }
            return true
        }
        var op = GraphQLOperation()
        if let extensions { op.persistedQueryHash = persistedHash(r, extensions, limits: limits) }
        if let query, query.kind != .string, query.kind != .null { return nil }
        let queryText = query.flatMap { $0.kind == .string ? $0 : nil }
        guard queryText != nil || op.persistedQueryHash != nil else { return nil }
        if let operationName, operationName.kind == .string {
            op.operationName = r.string(operationName, cap: limits.maxNameBytes)
            if op.operationName?.isEmpty == true { op.operationName = nil }
        }
        if let variables, variables.kind != .null {
            let raw = r.raw(variables)
            op.variablesTruncated = raw.count > limits.maxVariablesBytes
            op.variables = String(decoding: trimToBoundary(Array(raw.prefix(limits.maxVariablesBytes))), as: UTF8.self)
        }
        if let queryText {
            op.hasQuery = true
            let (text, cut) = r.decodeString(queryText, cap: limits.maxDocumentBytes)
            if cut {
                op.error = "the query is larger than \(limits.maxDocumentBytes) bytes"
            } else {
                text.withUnsafeBytes { fill(&op, query: $0, operationName: op.operationName, limits: limits) }
            }
            // A lone `query` string that is not GraphQL belongs to some other API.
            if op.operationType == nil, operationName == nil, variables == nil, extensions == nil { return nil }
        }
        return op
    }

    /// `extensions.persistedQuery.sha256Hash` (Apollo automatic persisted queries).
    private static func persistedHash(_ r: JSONReader, _ extensions: JSONValueRef, limits: GraphQLLimits) -> String? {
        guard let pq = r.member(extensions, "persistedQuery"), pq.kind == .object else { return nil }
        guard let h = r.member(pq, "sha256Hash"), h.kind == .string else { return "" }
        return r.string(h, cap: limits.maxNameBytes)
    }

    /// Parses `query` into `op` (type, name, fields), or sets `op.error`.
    private static func fill(
        _ op: inout GraphQLOperation, query: UnsafeRawBufferPointer, operationName: String?, limits: GraphQLLimits
    ) {
        switch GraphQLDocument.operation(in: query, operationName: operationName, limits: limits) {
        case .success(let s):
            op.operationType = s.operationType
            if op.operationName == nil { op.operationName = s.name }
            op.fields = s.fields
            op.fieldsTruncated = s.fieldsTruncated
        case .failure(let e):
            op.error = e.description
        }
    }
}

// MARK: Helpers

/// Whether the media type of a Content-Type value (before `;`, trimmed) is `type`, ignoring ASCII case.
func mediaTypeIs(_ contentType: UnsafeRawBufferPointer, _ type: StaticString) -> Bool {
    var s = 0
    var e = contentType.count
    if let semi = contentType.firstIndex(of: UInt8(ascii: ";")) { e = semi }
    while s < e, contentType[s] == 0x20 || contentType[s] == 0x09 { s += 1 }
    while e > s, contentType[e - 1] == 0x20 || contentType[e - 1] == 0x09 { e -= 1 }
    guard e - s == type.utf8CodeUnitCount else { return false }
    let t = UnsafeRawBufferPointer(start: type.utf8Start, count: type.utf8CodeUnitCount)
    for k in 0..<t.count {
        var c = contentType[s + k]
        if c >= UInt8(ascii: "A"), c <= UInt8(ascii: "Z") { c += 32 }
        if c != t[k] { return false }
    }
    return true
}

/// Calls `body` with each `name=value` pair of a query string (raw, not decoded).
func forEachParameter(_ q: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) {
    let n = q.count
    var i = 0
    while i < n {
        var amp = i
        while amp < n, q[amp] != UInt8(ascii: "&") { amp += 1 }
        var eq = i
        while eq < amp, q[eq] != UInt8(ascii: "=") { eq += 1 }
        let name = UnsafeRawBufferPointer(rebasing: q[i..<eq])
        let value = eq < amp ? UnsafeRawBufferPointer(rebasing: q[(eq + 1)..<amp]) : UnsafeRawBufferPointer(start: nil, count: 0)
        if !name.isEmpty { body(name, value) }
        i = amp + 1
    }
}

/// `p` percent-decoded, `+` as a space (bad escapes kept as they are).
func percentDecoded(_ p: UnsafeRawBufferPointer) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(p.count)
    let n = p.count
    var i = 0
    while i < n {
        let c = p[i]
        if c == UInt8(ascii: "+") {
            out.append(0x20)
            i += 1
        } else if c == UInt8(ascii: "%"), i + 2 < n, let hi = hexValue(p[i + 1]), let lo = hexValue(p[i + 2]) {
            out.append(hi << 4 | lo)
            i += 3
        } else {
            out.append(c)
            i += 1
        }
    }
    return out
}
