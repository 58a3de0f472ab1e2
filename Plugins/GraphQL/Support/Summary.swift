// The one-line summary of a GraphQL request for an entry's list row.

extension GraphQLOperation {
    /// `query GetUser { user, friends }`; `persisted GetUser` (or the hash's
    /// first 12 digits) for a persisted query sent without text;
    /// `invalid GetUser` when the query did not parse.
    public var summary: String {
        guard let type = operationType else {
            if let h = persistedQueryHash, !hasQuery {
                return "persisted " + (operationName ?? (h.isEmpty ? "query" : String(h.prefix(12))))
            }
            return "invalid" + (operationName.map { " " + $0 } ?? " query")
        }
        var s = type.rawValue
        if let operationName { s += " " + operationName }
        s += " { " + fields.map(\.text).joined(separator: ", ")
        if fieldsTruncated { s += ", ..." }
        return s + " }"
    }
}

extension GraphQLRequest {
    /// The summary of the operation, or `batch(3): <first>; <second>; ...` for
    /// a batch; at most `maxLength` bytes (cut with `...`).
    public func summary(maxLength: Int = 512) -> String {
        var s: String
        if let batchCount {
            s = "batch(\(batchCount)): " + operations.map(\.summary).joined(separator: "; ")
        } else {
            s = operations.first?.summary ?? ""
        }
        guard s.utf8.count > maxLength else { return s }
        var cut = Array(s.utf8.prefix(max(0, maxLength - 3)))
        cut = trimToBoundary(cut)
        s = String(decoding: cut, as: UTF8.self) + "..."
        return s
    }
}
