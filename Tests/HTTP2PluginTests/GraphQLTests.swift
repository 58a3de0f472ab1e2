// GraphQL over HTTP/2: the recording Tests/Fixtures/graphql/graphql-h2.pcap
// (curl and nghttp against graphene on Hypercorn, h2c prior knowledge; made by
// record-h2.sh), KFL over its entries, tshark's view of the same streams, and
// hand-made exchanges for segmentation and the edge cases.

import Foundation
import Host
import Testing

private let h2Recording = Tools.repoRoot.appendingPathComponent("Tests/Fixtures/graphql/graphql-h2.pcap").path

extension Dictionary where Key == String, Value == Any {
    var protocolName: String? { obj("protocol")?.str("name") }
    var gqlRequest: JSON? { request?.obj("graphql") }
    var gqlResponse: JSON? { response?.obj("graphql") }
}

@Suite struct GraphQLOverHTTP2Tests {
    @Test func recording() throws {
        let (raw, plugins) = try Tools.dissectRaw(h2Recording)
        let macros = KFLMacros.from(plugins: plugins)
        let e = raw.map(parseJSON)
        try #require(e.count == 9)
        #expect(e.map { "\($0.str("method") ?? "") \($0.str("summary") ?? "") \($0.int("status") ?? 0)" } == [
            "POST query GetUser { user } 200",
            "GET query { boom, hello } 200",
            "POST query Hello { hello } 200",
            "POST batch(2): query A { hello }; query B { nope } 200",
            "POST invalid query 200",
            "POST /api/items 200",
            "POST mutation AddUser { addUser } 200",
            "GET query Q { user } 200",
            "GET /graphql?query=red+shoes 200",
        ])
        #expect(e.map { $0.protocolName ?? "" } == ["graphql", "graphql", "graphql", "graphql", "graphql", "http2", "graphql", "graphql", "http2"])
        #expect(e.allSatisfy { $0.flags.isEmpty && $0["errors"] == nil })
        // Every HTTP/2 field is kept next to the GraphQL ones.
        for x in e {
            #expect(x.request?.str("httpVersion") == "HTTP/2")
            #expect(x.response?.obj("content")?.str("mimeType") == "application/json")
            #expect(x.int("streamId") != nil)
        }
        let gql = e.filter { $0.protocolName == "graphql" }
        let macroLists: [[String]] = gql.map { ($0.obj("protocol")?["macros"] as? [String]) ?? [] }
        #expect(macroLists.allSatisfy { $0 == ["gql", "http2"] })
        #expect(gql.allSatisfy { $0.obj("protocol")?.str("longName") == "GraphQL over HTTP/2" })

        let getUser = try #require(e[0].gqlRequest)
        #expect(getUser.str("transport") == "json")
        #expect(getUser.str("operationType") == "query")
        #expect(getUser.str("operationName") == "GetUser")
        #expect(getUser.arr("fields")?.compactMap { $0.str("name") } == ["user"])
        #expect(getUser.str("variables") == #"{"id":"1"}"#)
        #expect(e[0].request?.obj("postData")?.str("text")?.hasPrefix(#"{"query":"query GetUser"#) == true)
        #expect(e[0].gqlResponse?.bool("hasData") == true)
        #expect(e[0].gqlResponse?.int("errorCount") == 0)

        // GET with the query in :path: data and a field error.
        #expect(e[1].gqlRequest?.str("transport") == "query-string")
        #expect(e[1].gqlRequest?.arr("fields")?.compactMap { $0.str("name") } == ["boom", "hello"])
        #expect(e[1].request?.str("path") == "/graphql")
        let boom = try #require(e[1].gqlResponse?.arr("errors")?.first)
        #expect(boom.str("message") == "boom: this field always fails")
        #expect(boom["path"] as? [String] == ["boom"])
        #expect(boom.str("code") == "INTERNAL_SERVER_ERROR")
        #expect(e[1].gqlResponse?.bool("hasData") == true)

        #expect(e[2].gqlRequest?.str("transport") == "graphql")
        #expect(e[2].request?.obj("postData")?.str("mimeType") == "application/graphql")

        // The batch: one operation and one result per element.
        let batch = try #require(e[3].gqlRequest)
        #expect(batch.int("batchCount") == 2)
        #expect(batch.arr("operations")?.compactMap { $0.str("operationName") } == ["A", "B"])
        let results = try #require(e[3].gqlResponse?.arr("results"))
        #expect(results.map { $0.int("errorCount") ?? -1 } == [0, 1])
        #expect(results[1].arr("errors")?.first?.str("message") == #"Cannot query field "nope" on type "Query"."#)
        #expect(results[1].arr("errors")?.first?.str("code") == "GRAPHQL_VALIDATION_FAILED")

        // The syntax error: we point where graphql-core does.
        #expect(e[4].gqlRequest?.str("error") == "line 1, column 29: expected a name, found '{'")
        #expect(e[4].gqlResponse?.arr("errors")?.first?.arr("locations")?.first?.int("column") == 29)
        #expect(e[4].gqlResponse?.bool("hasData") == false)

        // Not GraphQL: a JSON `query` that is an object, and a /graphql path whose
        // `query` parameter does not parse (the path plays no part).
        #expect(e[5].request?["graphql"] == nil && e[5].response?["graphql"] == nil)
        #expect(e[8].request?["graphql"] == nil && e[8].response?["graphql"] == nil)

        // nghttp: the mutation (stream 13), then two concurrent GETs on one connection.
        #expect(e[6].int("streamId") == 13)
        #expect(e[6].gqlRequest?.str("operationType") == "mutation")
        #expect(e[6].gqlRequest?.str("variables") == #"{"name":"Linus"}"#)
        #expect(e[7].gqlRequest?.str("operationName") == "Q")
        #expect(e[7].gqlRequest?.str("variables") == #"{"id":"2"}"#)
        #expect(e[7].request?.arr("queryString")?.compactMap { $0.str("name") } == ["query", "operationName", "variables"])

        // KFL, per the macro table: `gql` and `http2` select GraphQL-over-HTTP/2
        // entries; `http` is HTTP/1.x (plain HTTP/2 entries do not answer to it either).
        func matching(_ q: String) throws -> [Int] {
            let query = try KFLQuery.compile(q, macros: macros)
            return raw.indices.filter { i in Array(raw[i].utf8).withUnsafeBytes { query.matches(json: $0, nowMs: 0) } }
        }
        #expect(try matching("gql") == [0, 1, 2, 3, 4, 6, 7])
        #expect(try matching("http2") == Array(0..<9))
        #expect(try matching("http2 and !gql") == [5, 8])
        #expect(try matching("http") == [])
        #expect(try matching("grpc") == [])
        #expect(try matching(#"gql and request.graphql.operationType == "mutation""#) == [6])
        #expect(try matching(#"request.graphql..operationName == "B""#) == [3])
        #expect(try matching(#"gql and response.graphql.errorCount > 0"#) == [1, 4])
        #expect(try matching(#"gql and response.graphql..errors[*].code == "GRAPHQL_VALIDATION_FAILED""#) == [3, 4])
        #expect(try matching(#"gql and request.graphql.transport == "query-string""#) == [1, 7])
    }

    /// tshark (no GraphQL dissector) over the same streams: method, :path and
    /// :status agree for every stream. Our summary is the operation for GraphQL
    /// entries, so the path compared is the request's own `:path`.
    @Test(.enabled(if: Tools.hasTshark, "tshark missing"))
    func tsharkAgrees() throws {
        let ours = try Tools.dissect(h2Recording)
        var byKey: [String: JSON] = [:]
        for e in ours { if let k = streamKey(e) { byKey[k] = e } }
        let port = try #require(try Tools.serverPort(h2Recording))
        let theirs = try Tshark.streams(h2Recording, decodeAs: "tcp.port==\(port),http2")
        #expect(theirs.count == 9)
        var agreed = 0
        for (key, s) in theirs.sorted(by: { $0.key < $1.key }) {
            let e = try #require(byKey[key], "tshark has \(key), we do not")
            #expect(s.method == e.str("method"), "\(key)")
            #expect(s.path == e.request?.header(":path"), "\(key)")
            #expect(s.status == e.int("status"), "\(key)")
            if s.method == e.str("method") && s.path == e.request?.header(":path") && s.status == e.int("status") { agreed += 1 }
        }
        print("tshark-agreement graphql-h2: \(agreed)/\(theirs.count) streams agree (method, :path, :status); "
            + "\(ours.filter { $0.protocolName == "graphql" }.count) of our entries are GraphQL, which tshark does not dissect")
    }

    // MARK: Hand-made exchanges

    /// A POST JSON query whose body comes in two DATA frames and an empty
    /// END_STREAM DATA frame (as curl sends it), answered likewise; then a GET
    /// with the query in :path on stream 3.
    static func conversation() -> [Segment] {
        let body = bytes(#"{"query":"query GetUser($id: ID!) { user(id: $id) { name } me: viewer { id } }","operationName":"GetUser","variables":{"id":"1"}}"#)
        let result = bytes(#"{"data":{"user":null},"errors":[{"message":"nope","path":["user"],"locations":[{"line":1,"column":30}],"extensions":{"code":"NOT_FOUND"}}]}"#)
        return [
            (c2s, preface + settings([(1, 4096)])
                + get(1, "/graphql", method: "POST", extra: [("content-type", "application/json")], endStream: false)
                + data(1, Array(body[..<40])) + data(1, Array(body[40...])) + data(1, [], endStream: true)),
            (s2c, settings() + settings(ack: true) + ok(1, extra: [("content-type", "application/json")])
                + data(1, result) + data(1, [], endStream: true)),
            (c2s, settings(ack: true) + get(3, "/graphql?query=%7B%20hello%20%7D&operationName=")),
            (s2c, ok(3, extra: [("content-type", "application/json")]) + data(3, bytes(#"{"data":{"hello":"hi"}}"#), endStream: true)),
        ]
    }

    @Test func exchange() throws {
        let e = try run(Self.conversation())
        try #require(e.count == 2)
        #expect(e.map { $0.str("summary") ?? "" } == ["query GetUser { user, me: viewer }", "query { hello }"])
        // No `truncated`: the empty END_STREAM DATA frames that end each segment end their streams.
        #expect(e.allSatisfy { $0.protocolName == "graphql" && $0.flags.isEmpty && $0["errors"] == nil })
        #expect(e[0].gqlRequest?.arr("fields")?.last?.str("alias") == "me")
        #expect(e[0].gqlResponse?.arr("errors")?.first?.str("code") == "NOT_FOUND")
        #expect(e[0].gqlResponse?.bool("hasData") == true)  // {"user": null} is data
        #expect(e[0].gqlResponse?.int("errorCount") == 1)
        #expect(e[1].gqlRequest?.str("transport") == "query-string")
        #expect(e[1].gqlResponse?.bool("hasData") == true)
    }

    @Test func sameEntriesWhateverTheSegmentation() throws {
        let segs = Self.conversation()
        let reference = normalized(try makeHarness().runTCP(segments: segs))
        #expect(reference.count == 2)
        #expect(normalized(try makeHarness().runTCP(segments: byteByByte(segs))) == reference)
        // One cut at every byte of the client stream, then of the server stream.
        let client = segs.filter { $0.0 == c2s }.flatMap { $0.1 }
        let server = segs.filter { $0.0 == s2c }.flatMap { $0.1 }
        let h = try makeHarness()
        for cut in 1..<client.count {
            let s: [Segment] = [(c2s, Array(client[..<cut])), (c2s, Array(client[cut...])), (s2c, server)]
            #expect(normalized(try h.runTCP(segments: s)) == reference, "client cut at \(cut)")
        }
        for cut in 1..<server.count {
            let s: [Segment] = [(c2s, client), (s2c, Array(server[..<cut])), (s2c, Array(server[cut...]))]
            #expect(normalized(try h.runTCP(segments: s)) == reference, "server cut at \(cut)")
        }
    }

    @Test func grpcIsNeverGraphQL() throws {
        let body = grpcMessage(bytes(#"{"query":"{ hello }"}"#))
        let e = try run([
            (c2s, preface + settings() + get(1, "/svc.S/M", method: "POST", extra: [("content-type", "application/grpc")], endStream: false)
                + data(1, body, endStream: true)),
            (s2c, settings() + ok(1, extra: [("content-type", "application/grpc")]) + data(1, grpcMessage([]))
                + headers(1, [("grpc-status", "0")], endStream: true)),
        ])
        try #require(e.count == 1)
        #expect(e[0].protocolName == "grpc")
        #expect(e[0].request?["graphql"] == nil)
    }

    @Test func notGraphQLStaysHTTP2() throws {
        let e = try run([
            (c2s, preface + settings()
                + get(1, "/graphql", method: "POST", extra: [("content-type", "application/json")], endStream: false)
                + data(1, bytes(#"{"query":"SELECT 1"}"#), endStream: true)
                + get(3, "/graphql?query=red+shoes") + get(5, "/graphql")),
            (s2c, settings() + ok(1, endStream: true) + ok(3, endStream: true) + ok(5, endStream: true)),
        ])
        try #require(e.count == 3)
        #expect(e.allSatisfy { $0.protocolName == "http2" && $0.request?["graphql"] == nil })
        #expect(e.map { $0.str("summary") ?? "" } == ["/graphql", "/graphql?query=red+shoes", "/graphql"])
    }
}
