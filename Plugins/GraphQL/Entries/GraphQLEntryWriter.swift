// Writes the `graphql` objects of an entry through PluginKit's EntryBuilder,
// so every plugin that carries GraphQL (HTTP/1.x, HTTP/2) writes the same shape.
//
// request.graphql, one operation:
//   transport          "json" | "graphql" | "query-string"
//   operationType?     "query" | "mutation" | "subscription" (absent when unknown)
//   operationName?     as sent, else the operation's own name
//   fields             [{name, alias?}] top-level fields (fragments resolved one level)
//   fieldsTruncated?   true when more fields were selected than listed
//   variables?         the variables JSON text as sent (KFL: variables.json().id)
//   variablesTruncated?
//   persistedQueryHash? extensions.persistedQuery.sha256Hash
//   hasQuery           query text was sent
//   error?             why the query could not be read ("line 1, column 9: ...")
// request.graphql, a batch: {transport, batchCount, operations: [the above + batchIndex]}
//
// response.graphql, one result: {hasData, dataPresent, errorCount, errors:
//   [{message, path: [string|int], locations: [{line, column}], code?}], error?}
// response.graphql, a batch: {batchCount, results: [the above + batchIndex]}

import GraphQLSupport
import PluginKit

/// Writes GraphQL facts into an entry.
public enum GraphQLEntryWriter {
    /// Writes `"graphql": {...}` for `request` into the object being built
    /// (the entry's `request`).
    public static func write(_ request: GraphQLRequest, to b: inout EntryBuilder) {
        b.object("graphql") { b in
            b.string("transport", request.transport.rawValue)
            if let count = request.batchCount {
                b.int("batchCount", Int64(count))
                b.array("operations") { b in
                    for (i, op) in request.operations.enumerated() {
                        b.object(nil) { b in
                            b.int("batchIndex", Int64(i))
                            writeOperation(op, &b)
                        }
                    }
                }
            } else if let op = request.operations.first {
                writeOperation(op, &b)
            }
        }
    }

    /// Writes `"graphql": {...}` for `response` into the object being built
    /// (the entry's `response`).
    public static func write(_ response: GraphQLResponse, to b: inout EntryBuilder) {
        b.object("graphql") { b in
            if let count = response.batchCount {
                b.int("batchCount", Int64(count))
                b.array("results") { b in
                    for (i, r) in response.results.enumerated() {
                        b.object(nil) { b in
                            b.int("batchIndex", Int64(i))
                            writeResult(r, &b)
                        }
                    }
                }
            } else if let r = response.results.first {
                writeResult(r, &b)
            }
        }
    }

    private static func writeOperation(_ op: GraphQLOperation, _ b: inout EntryBuilder) {
        if let t = op.operationType { b.string("operationType", t.rawValue) }
        if let n = op.operationName { b.string("operationName", n) }
        b.array("fields") { b in
            for f in op.fields {
                b.object(nil) { b in
                    b.string("name", f.name)
                    if let a = f.alias { b.string("alias", a) }
                }
            }
        }
        if op.fieldsTruncated { b.bool("fieldsTruncated", true) }
        if let v = op.variables { b.string("variables", v) }
        if op.variablesTruncated { b.bool("variablesTruncated", true) }
        if let h = op.persistedQueryHash { b.string("persistedQueryHash", h) }
        b.bool("hasQuery", op.hasQuery)
        if let e = op.error { b.string("error", e) }
    }

    private static func writeResult(_ r: GraphQLResult, _ b: inout EntryBuilder) {
        b.bool("hasData", r.hasData)
        b.bool("dataPresent", r.dataPresent)
        b.int("errorCount", Int64(r.errorCount))
        b.array("errors") { b in
            for e in r.errors {
                b.object(nil) { b in
                    b.string("message", e.message)
                    b.array("path") { b in
                        for p in e.path {
                            switch p {
                            case .key(let k): b.string(nil, k)
                            case .index(let i): b.int(nil, Int64(i))
                            }
                        }
                    }
                    b.array("locations") { b in
                        for l in e.locations {
                            b.object(nil) { b in
                                b.int("line", Int64(l.line))
                                b.int("column", Int64(l.column))
                            }
                        }
                    }
                    if let c = e.code { b.string("code", c) }
                }
            }
        }
        if let e = r.error { b.string("error", e) }
    }
}
