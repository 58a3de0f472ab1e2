// Recognising GraphQL requests (JSON, application/graphql, query strings,
// batches, persisted queries) and reading responses.

import GraphQLSupport
import TestKit
import Testing

private func request(_ body: String, _ contentType: String? = "application/json") -> GraphQLRequest? {
    GraphQLRequest.parse(body: Array(body.utf8), contentType: contentType)
}

private func response(_ body: String) -> GraphQLResponse { GraphQLResponse.parse(body: Array(body.utf8)) }

@Suite struct RequestTests {
    @Test func jsonBody() throws {
        let r = try #require(request(#"""
            {"query":"query GetUser($id: ID!) { user(id: $id) { name } viewer { id } }",
             "operationName":"GetUser","variables":{"id":"42","n":[1,2]}}
            """#))
        #expect(r.transport == .json)
        #expect(!r.isBatch)
        let op = try #require(r.operations.first)
        #expect(op.operationType == .query)
        #expect(op.operationName == "GetUser")
        #expect(op.fields.map(\.name) == ["user", "viewer"])
        #expect(op.variables == #"{"id":"42","n":[1,2]}"#)
        #expect(op.hasQuery)
        #expect(op.error == nil)
        #expect(r.summary() == "query GetUser { user, viewer }")
    }

    @Test func escapedQueryTextAndNullMembers() throws {
        // JSON escapes inside the query (\n, \", \u0041) are decoded before parsing.
        let r = try #require(request(#"{"query":"mutation {\n  \u0041dd(s: \"x\\\"y\") { id }\n}","operationName":null,"variables":null}"#))
        let op = try #require(r.operations.first)
        #expect(op.operationType == .mutation)
        #expect(op.operationName == nil)
        #expect(op.variables == nil)
        #expect(op.fields.map(\.name) == ["Add"])
        #expect(r.summary() == "mutation { Add }")
    }

    @Test func persistedQueryWithoutText() throws {
        let r = try #require(request(#"""
            {"operationName":"Feed","variables":{},"extensions":{"persistedQuery":{"version":1,
             "sha256Hash":"ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"}}}
            """#))
        let op = try #require(r.operations.first)
        #expect(op.operationType == nil)
        #expect(!op.hasQuery)
        #expect(op.persistedQueryHash == "ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38")
        #expect(r.summary() == "persisted Feed")
        let anonymous = try #require(request(#"{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"abcdef0123456789"}}}"#))
        #expect(anonymous.summary() == "persisted abcdef012345")
    }

    @Test func applicationGraphQLBody() throws {
        let r = try #require(request("query Q { a b }", "application/graphql; charset=utf-8"))
        #expect(r.transport == .graphqlBody)
        #expect(r.summary() == "query Q { a, b }")
        let bad = try #require(request("query Q { a ", "Application/GraphQL"))
        #expect(bad.operations.first?.error == "line 1, column 13: expected a name, found the end of the document")
        #expect(bad.summary() == "invalid query")
    }

    @Test func batch() throws {
        let r = try #require(request(#"""
            [{"query":"query A { a }"},{"query":"mutation B { b }","operationName":"B"},
             {"extensions":{"persistedQuery":{"sha256Hash":"00ff"}}}]
            """#))
        #expect(r.batchCount == 3)
        #expect(r.operations.map(\.operationType) == [.query, .mutation, nil])
        #expect(r.summary() == "batch(3): query A { a }; mutation B { b }; persisted 00ff")
        #expect(r.summary(maxLength: 20) == "batch(3): query A...")
        // A batch with one element that is not a GraphQL request is not GraphQL.
        #expect(request(#"[{"query":"{ a }"},{"id":1}]"#) == nil)
        #expect(request("[]") == nil)
    }

    @Test func notGraphQL() {
        #expect(request(#"{"name":"kubeshark","tags":["a"]}"#) == nil)
        #expect(request(#"{"query":{"match":{"title":"x"}}}"#) == nil)  // Elasticsearch-style query object
        #expect(request(#"{"query":"SELECT * FROM users"}"#) == nil)     // some other API's query string
        #expect(request(#"{"query":"{ a ","variables":{}}"#)?.operations.first?.error != nil)  // GraphQL, broken
        #expect(request("query=x", "application/x-www-form-urlencoded") == nil)
        #expect(request("not json {\"query\"") == nil)
        #expect(request(#"{"query":"{ a }""#) == nil)                       // cut JSON
        #expect(request("") == nil)
        #expect(request(#"{"query": 12}"#) == nil)
    }

    @Test func preTest() {
        func pre(_ s: String) -> Bool { Array(s.utf8).withUnsafeBytes { GraphQLRequest.mightBeJSONRequest($0) } }
        #expect(pre(#"  {"query":"{a}"}"#))
        #expect(pre(#"[{"extensions":{"persistedQuery":{}}}]"#))
        #expect(!pre(#"{"name":"x"}"#))
        #expect(!pre("query { a }"))
        #expect(!pre(#"{"y""#))
        #expect(!pre(""))
    }

    @Test func preTestAgreesWithAPlainScan() {
        // The word-at-a-time search against the obvious byte loop, on bodies
        // dense in 'y', '"' and the letters around them, at every alignment.
        var rng = SplitMix(state: 7)
        let alphabet = Array("yyy\"\"uerq{[ a".utf8)
        var positives = 0
        for _ in 0..<20_000 {
            let n = Int(rng.next() % 40)
            var b = [UInt8(ascii: "{")] + (0..<n).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            if rng.next() % 3 == 0 {
                // Plant the pattern, possibly cut by the end, at any alignment.
                let at = 1 + Int(rng.next() % UInt64(b.count))
                b.insert(contentsOf: Array("uery\"".utf8).prefix(Int(rng.next() % 6)), at: min(at, b.count))
            }
            let reference = Self.naiveContains(b)
            let fast = b.withUnsafeBytes { GraphQLRequest.mightBeJSONRequest($0) }
            #expect(fast == reference, "\(String(decoding: b, as: UTF8.self))")
            if reference { positives += 1 }
        }
        #expect(positives > 500)
    }

    /// Whether `b` (starting with a bracket) holds `uery"` after the bracket.
    static func naiveContains(_ b: [UInt8]) -> Bool {
        let pattern = Array("uery\"".utf8)
        guard b.count > pattern.count else { return false }
        for s in 1...(b.count - pattern.count) where Array(b[s..<(s + pattern.count)]) == pattern { return true }
        return false
    }

    @Test func queryString() throws {
        let r = try #require(GraphQLRequest.parse(
            queryString: "query=query%20Hello(%24n%3A%20Int)%20%7B%20hello(n%3A%20%24n)%20%7D&operationName=Hello&variables=%7B%22n%22%3A1%7D&x=y"))
        #expect(r.transport == .queryString)
        let op = try #require(r.operations.first)
        #expect(op.operationType == .query)
        #expect(op.operationName == "Hello")
        #expect(op.variables == #"{"n":1}"#)
        #expect(r.summary() == "query Hello { hello }")
        let plus = try #require(GraphQLRequest.parse(queryString: "query=%7B+a+b+%7D"))
        #expect(plus.summary() == "query { a, b }")
        // Persisted query over GET: only extensions.
        let apq = try #require(GraphQLRequest.parse(
            queryString: "operationName=Q&extensions=%7B%22persistedQuery%22%3A%7B%22version%22%3A1%2C%22sha256Hash%22%3A%22abc%22%7D%7D"))
        #expect(apq.operations.first?.persistedQueryHash == "abc")
        #expect(apq.summary() == "persisted Q")
        // A search API's ?query= is not GraphQL.
        #expect(GraphQLRequest.parse(queryString: "query=red+shoes&page=2") == nil)
        #expect(GraphQLRequest.parse(queryString: "q=1") == nil)
        #expect(GraphQLRequest.parse(queryString: "") == nil)
    }
}

@Suite struct ResponseTests {
    @Test func dataAndErrors() {
        let r = response(#"""
            {"errors":[{"message":"Name for character with ID 1002 could not be fetched.",
              "locations":[{"line":6,"column":7}],"path":["hero","heroFriends",1,"name"],
              "extensions":{"code":"CAN_NOT_FETCH_BY_ID","timestamp":"Fri Feb 9 14:33:09 UTC 2018"}}],
             "data":{"hero":{"name":"R2-D2","heroFriends":[{"id":"1000","name":"Luke"},null]}}}
            """#)
        #expect(!r.isBatch)
        let res = r.results[0]
        #expect(res.hasData && res.dataPresent)
        #expect(res.errorCount == 1)
        let e = res.errors[0]
        #expect(e.message == "Name for character with ID 1002 could not be fetched.")
        #expect(e.path == [.key("hero"), .key("heroFriends"), .index(1), .key("name")])
        #expect(e.locations == [GraphQLLocation(line: 6, column: 7)])
        #expect(e.code == "CAN_NOT_FETCH_BY_ID")
        #expect(res.error == nil)
    }

    @Test func nullDataAndRequestErrors() {
        let r = response(#"{"data":null,"errors":[{"message":"Cannot query field \"x\" on type \"Query\"."}]}"#).results[0]
        #expect(!r.hasData && r.dataPresent)
        #expect(r.errors.first?.message == #"Cannot query field "x" on type "Query"."#)
        let noData = response(#"{"errors":[{"message":"Syntax Error"}]}"#).results[0]
        #expect(!noData.dataPresent)
        #expect(noData.errorCount == 1)
    }

    @Test func batchAndBadBodies() {
        let b = response(#"[{"data":{"a":1}},{"data":null,"errors":[{"message":"boom","path":["b"]}]}]"#)
        #expect(b.batchCount == 2)
        #expect(b.results.map(\.hasData) == [true, false])
        #expect(b.results[1].errors.first?.path == [.key("b")])
        #expect(response("<html>502 Bad Gateway</html>").results[0].error == "the body is not JSON (or nests too deep)")
        #expect(response(#"{"status":"ok"}"#).results[0].error == "neither data nor errors in the body")
        #expect(response("").results[0].error == "the response has no body")
        #expect(response("42").results[0].error == "the body is a JSON number, not an object")
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(response(deep).results[0].error == "the body is not JSON (or nests too deep)")
        // Huge and fractional indices are dropped from the path, not crashed on.
        let odd = response(#"{"errors":[{"message":"m","path":["a",99999999999999999999999,1.5,-3],"locations":[{"line":1e3,"column":2}]}]}"#)
        #expect(odd.results[0].errors[0].path == [.key("a"), .index(-3)])
        #expect(odd.results[0].errors[0].locations.isEmpty)
    }

    @Test func unicodeEscapesInMessages() {
        let r = response(#"{"errors":[{"message":"caf\u00e9 \ud83d\ude00 lone \ud800 end"}]}"#)
        #expect(r.results[0].errors[0].message == "café 😀 lone \u{FFFD} end")
    }

    @Test func errorsAreCapped() {
        let many = "{\"errors\":[" + (0..<100).map { "{\"message\":\"e\($0)\"}" }.joined(separator: ",") + "]}"
        let r = response(many).results[0]
        #expect(r.errorCount == 100)
        #expect(r.errors.count == 32)
    }
}
