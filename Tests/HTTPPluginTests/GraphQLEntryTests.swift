// GraphQL over HTTP/1.x: hand-made exchanges, the recording of curl against a
// real GraphQL server (graphene 2 on Python's http.server,
// Tests/Fixtures/graphql), a live recording of the same, KFL on the entries,
// and tshark's view of the same packets.

import Foundation
import Testing

@testable import Host

private let graphQLFixtures = TestProcess.repoRoot.appendingPathComponent("Tests/Fixtures/graphql")

private func post(_ body: String, path: String = "/graphql", contentType: String = "application/json") -> [UInt8] {
    request("POST", path, headers: [("Content-Type", contentType)], body: bytes(body))
}

private func jsonResponse(_ body: String) -> [UInt8] {
    response(200, "OK", headers: [("Content-Type", "application/json")], body: bytes(body))
}

extension Dictionary where Key == String, Value == Any {
    var protocolObject: JSON? { obj("protocol") }
    var graphQLRequest: JSON? { request?.obj("graphql") }
    var graphQLResponse: JSON? { response?.obj("graphql") }
}

/// Entry JSON strings of one conversation (for KFL, which reads the text).
private func rawEntries(_ segments: [Segment]) throws -> (PluginHarness, [String]) {
    let h = try makeHarness()
    return (h, h.runTCP(segments: segments))
}

@Suite struct GraphQLEntryTests {
    @Test func postJSONIsAGraphQLEntryThatKeepsTheHTTPFields() throws {
        let body = #"{"query":"query GetUser($id: ID!) { user(id: $id) { name } }","operationName":"GetUser","variables":{"id":"7"}}"#
        let e = try #require(try run([(c2s, post(body)), (s2c, jsonResponse(#"{"data":{"user":{"name":"Ada"}}}"#))]).first)
        let p = try #require(e.protocolObject)
        #expect(p.str("name") == "graphql")
        #expect(p.str("abbr") == "GQL")
        #expect(p.str("macro") == "gql")
        #expect(p["macros"] as? [String] == ["gql", "http"])
        #expect(p.str("referenceLink") == "https://spec.graphql.org/October2021/")
        #expect(e.str("summary") == "query GetUser { user }")
        #expect(e.str("method") == "POST")
        #expect(e.int("status") == 200)
        // Every HTTP field is still there.
        #expect(e.request?.str("path") == "/graphql")
        #expect(e.request?.obj("postData")?.str("text") == body)
        #expect(e.response?.obj("content")?.str("text") == #"{"data":{"user":{"name":"Ada"}}}"#)
        let g = try #require(e.graphQLRequest)
        #expect(g.str("transport") == "json")
        #expect(g.str("operationType") == "query")
        #expect(g.str("operationName") == "GetUser")
        #expect(g.arr("fields")?.map { $0.str("name") ?? "" } == ["user"])
        #expect(g.str("variables") == #"{"id":"7"}"#)
        #expect(g.bool("hasQuery") == true)
        #expect(g["error"] == nil)
        let r = try #require(e.graphQLResponse)
        #expect(r.bool("hasData") == true)
        #expect(r.int("errorCount") == 0)
        #expect(r.arr("errors")?.isEmpty == true)
    }

    @Test func plainJSONStaysHTTP() throws {
        let e = try #require(try run([(c2s, post(#"{"name":"widget","query":{"match":"x"}}"#, path: "/api")),
                                      (s2c, jsonResponse(#"{"ok":true}"#))]).first)
        #expect(e.protocolObject?.str("name") == "http")
        #expect(e.protocolObject?["macros"] == nil)
        #expect(e.str("summary") == "/api")
        #expect(e.graphQLRequest == nil)
        #expect(e.graphQLResponse == nil)
    }

    @Test func getApplicationGraphQLAndBatch() throws {
        let get = request("GET", "/graphql?query=%7B%20hello%20%7D&variables=%7B%7D")
        let gql = post("mutation M { add(x: 1) { id } }", contentType: "application/graphql")
        let batch = post(#"[{"query":"{ a }"},{"query":"query B { b }","operationName":"B"}]"#)
        let entries = try run([
            (c2s, get), (s2c, jsonResponse(#"{"data":{"hello":"hi"}}"#)),
            (c2s, gql), (s2c, jsonResponse(#"{"data":{"add":{"id":"1"}}}"#)),
            (c2s, batch), (s2c, jsonResponse(#"[{"data":{"a":1}},{"data":null,"errors":[{"message":"no","path":["b",0]}]}]"#)),
        ])
        try #require(entries.count == 3)
        #expect(entries.map { $0.str("summary") ?? "" }
            == ["query { hello }", "mutation M { add }", "batch(2): query { a }; query B { b }"])
        #expect(entries.map { $0.graphQLRequest?.str("transport") ?? "" } == ["query-string", "graphql", "json"])
        #expect(entries[0].request?.arr("queryString")?.first?.str("value") == "{ hello }")
        let b = try #require(entries[2].graphQLRequest)
        #expect(b.int("batchCount") == 2)
        #expect(b.arr("operations")?.map { $0.int("batchIndex") ?? -1 } == [0, 1])
        #expect(b.arr("operations")?[1].str("operationName") == "B")
        let r = try #require(entries[2].graphQLResponse)
        #expect(r.int("batchCount") == 2)
        let second = try #require(r.arr("results")?.last)
        #expect(second.bool("hasData") == false)
        #expect(second.arr("errors")?.first?["path"] as? [AnyHashable] == ["b", 0])
    }

    @Test func gzipResponseAndUnparsableQuery() throws {
        let respBody = bytes(#"{"errors":[{"message":"Syntax Error","locations":[{"line":1,"column":9}],"extensions":{"code":"GRAPHQL_PARSE_FAILED"}}]}"#)
        let gz = response(200, "OK", headers: [("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
                          body: compress(respBody, .gzip))
        let e = try #require(try run([(c2s, post(#"{"query":"query { a(","variables":{}}"#)), (s2c, gz)]).first)
        #expect(e.str("summary") == "invalid query")
        #expect(e.graphQLRequest?.str("error") == "line 1, column 11: expected a name, found the end of the document")
        #expect(e.graphQLRequest?["operationType"] == nil)
        let err = try #require(e.graphQLResponse?.arr("errors")?.first)
        #expect(err.str("code") == "GRAPHQL_PARSE_FAILED")
        #expect(err.arr("locations")?.first?.int("column") == 9)
        #expect(e.graphQLResponse?.bool("dataPresent") == false)
    }

    @Test func unansweredAndNonJSONResponses() throws {
        let q = post(#"{"query":"{ a }"}"#)
        let lone = try #require(try run([(c2s, q)]).first)
        #expect(lone.protocolObject?.str("name") == "graphql")
        #expect(lone.bool("unanswered") == true)
        #expect(lone.graphQLResponse == nil)
        let html = response(502, "Bad Gateway", headers: [("Content-Type", "text/html")], body: bytes("<html>bad</html>"))
        let e = try #require(try run([(c2s, q), (s2c, html)]).first)
        #expect(e.graphQLResponse?.str("error") == "the body is not JSON (or nests too deep)")
        #expect(e.int("status") == 502)
    }

    @Test func everySplitGivesTheSameEntries() throws {
        let segments: [Segment] = [
            (c2s, post(#"{"query":"mutation { like(id: 1) { n } }"}"#)), (s2c, jsonResponse(#"{"data":{"like":{"n":2}}}"#)),
        ]
        let h = try makeHarness()
        let whole = normalized(h.runTCP(segments: segments, timestampsNs: [baseTs, baseTs]))
        #expect(whole.first?.contains(#""operationType":"mutation""#) == true)
        let req = segments[0].1
        for cut in stride(from: 1, to: req.count, by: 3) {
            let split: [Segment] = [(c2s, Array(req[0..<cut])), (c2s, Array(req[cut...])), segments[1]]
            #expect(normalized(h.runTCP(segments: split, timestampsNs: [baseTs, baseTs, baseTs])) == whole, "split at \(cut)")
        }
    }

    @Test func kflMacrosMatchGraphQLEntries() throws {
        let (h, entries) = try rawEntries([
            (c2s, post(#"{"query":"mutation AddUser { addUser(name: \"x\") { id } }"}"#)),
            (s2c, jsonResponse(#"{"data":{"addUser":{"id":"1"}}}"#)),
            (c2s, post(#"{"query":"{ users { id } }"}"#)), (s2c, jsonResponse(#"{"data":{"users":[]}}"#)),
            (c2s, post(#"{"name":"x"}"#, path: "/api")), (s2c, jsonResponse("{}")),
            (c2s, post(#"[{"query":"{ a }"},{"query":"mutation { b }"}]"#)), (s2c, jsonResponse(#"[{"data":{}},{"data":{}}]"#)),
        ])
        try #require(entries.count == 4)
        let macros = KFLMacros.from(plugins: [h.plugin])
        func matching(_ q: String) throws -> [Int] {
            let query = try KFLQuery.compile(q, macros: macros)
            return entries.indices.filter { i in Array(entries[i].utf8).withUnsafeBytes { query.matches(json: $0, nowMs: 0) } }
        }
        #expect(try matching("gql") == [0, 1, 3])
        #expect(try matching("http") == [0, 1, 2, 3])
        #expect(try matching(#"gql and request.graphql.operationType == "mutation""#) == [0])
        #expect(try matching(#"request.graphql..operationType == "mutation""#) == [0, 3])  // batches too
        #expect(try matching(#"http and request.graphql.fields[*].name == "users""#) == [1])
        #expect(try matching(#"gql and response.graphql.hasData == true"#) == [0, 1])
        #expect(try matching("!gql") == [2])
    }
}

// MARK: Real server: the committed recording and a live one

/// What tshark 4.0 says about each HTTP exchange, by client port: method, URI,
/// status, and the `operationName` members its JSON dissector shows.
struct TsharkExchange: Equatable {
    var method = ""
    var uri = ""
    var status = 0
    var operationNames: [String] = []
}

func tsharkExchanges(_ pcap: String) throws -> [Int: TsharkExchange]? {
    guard let tshark = TestProcess.which("tshark") else { return nil }
    let reqs = try TestProcess.run(tshark, ["-r", pcap, "-Y", "http.request", "-T", "fields", "-E", "separator=|",
                                            "-e", "tcp.srcport", "-e", "http.request.method", "-e", "http.request.uri",
                                            "-e", "json.member_with_value"])
    let resps = try TestProcess.run(tshark, ["-r", pcap, "-Y", "http.response", "-T", "fields", "-E", "separator=|",
                                             "-e", "tcp.dstport", "-e", "http.response.code"])
    var out: [Int: TsharkExchange] = [:]
    for line in reqs.stdout.split(separator: "\n") {
        let f = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard f.count >= 4, let port = Int(f[0]) else { continue }
        var x = TsharkExchange(method: f[1], uri: f[2])
        // json.member_with_value: "key:value" items joined by commas (values may hold commas too).
        x.operationNames = f[3].components(separatedBy: "operationName:").dropFirst()
            .map { String($0.prefix { $0 != "," }) }
        out[port] = x
    }
    for line in resps.stdout.split(separator: "\n") {
        let f = line.split(separator: "|").map(String.init)
        guard f.count == 2, let port = Int(f[0]), let code = Int(f[1]) else { continue }
        out[port, default: TsharkExchange()].status = code
    }
    return out
}

/// The nine scenarios of Tests/Fixtures/graphql/record.sh, checked entry by entry,
/// then compared with tshark.
func checkGraphQLRecording(_ pcap: String) throws {
    let (h, raw) = try dissectPcap(pcap)
    let entries = raw.map(parseJSON)
    try #require(entries.count == 9, "expected the 9 exchanges of record.sh, got \(entries.count)")
    // One connection per scenario, in order: sort by client port order of first use = timestamp.
    let byTime = entries.sorted { ($0["timestamp"] as? Double ?? 0, $0.obj("src")?.int("port") ?? 0)
        < ($1["timestamp"] as? Double ?? 0, $1.obj("src")?.int("port") ?? 0) }
    let summaries = byTime.map { $0.str("summary") ?? "" }
    #expect(summaries == [
        "query GetUser { user }",
        "mutation AddUser { addUser }",
        "query { boom, hello }",
        "query Hello { hello }",
        "batch(2): query A { hello }; query B { nope }",
        "invalid query",
        "/api/items",
        "query Parts { hello, boom, me: user }",
        "persisted Feed",
    ])
    #expect(byTime.map { $0.protocolObject?.str("name") ?? "" }
        == ["graphql", "graphql", "graphql", "graphql", "graphql", "graphql", "http", "graphql", "graphql"])
    #expect(byTime.allSatisfy { $0.flags.isEmpty && $0.int("status") == 200 })

    let getUser = byTime[0]
    #expect(getUser.graphQLRequest?.str("variables") == #"{"id":"1"}"#)
    #expect(getUser.graphQLResponse?.bool("hasData") == true)
    #expect(getUser.graphQLResponse?.int("errorCount") == 0)

    let boom = try #require(byTime[2].graphQLResponse?.arr("errors")?.first)
    #expect(boom.str("message") == "boom: this field always fails")
    #expect(boom["path"] as? [String] == ["boom"])
    #expect(boom.str("code") == "INTERNAL_SERVER_ERROR")
    #expect(boom.arr("locations")?.first?.int("column") == 3)
    #expect(byTime[2].graphQLResponse?.bool("hasData") == true)  // partial data next to the error

    #expect(byTime[3].graphQLRequest?.str("transport") == "graphql")
    let batch = try #require(byTime[4].graphQLResponse)
    #expect(batch.int("batchCount") == 2)
    #expect(batch.arr("results")?.map { $0.bool("hasData") ?? true } == [true, false])
    #expect(batch.arr("results")?.last?.arr("errors")?.first?.str("message") == #"Cannot query field "nope" on type "Query"."#)
    #expect(batch.arr("results")?.last?.arr("errors")?.first?.str("code") == "GRAPHQL_VALIDATION_FAILED")

    // The syntax error: we point at the same place graphql-core does.
    #expect(byTime[5].graphQLRequest?.str("error") == "line 1, column 29: expected a name, found '{'")
    let serverSaid = byTime[5].graphQLResponse?.arr("errors")?.first
    #expect(serverSaid?.arr("locations")?.first?.int("column") == 29)
    #expect(byTime[5].graphQLResponse?.bool("hasData") == false)

    #expect(byTime[7].graphQLResponse?.arr("errors")?.first?["path"] as? [String] == ["boom"])
    #expect(byTime[8].graphQLRequest?.str("persistedQueryHash") == "ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38")
    #expect(byTime[8].graphQLRequest?.bool("hasQuery") == false)
    #expect(byTime[8].graphQLResponse?.arr("errors")?.first?.str("message") == "Must provide query string.")

    // KFL on the recorded entries.
    let macros = KFLMacros.from(plugins: [h.plugin])
    func count(_ q: String) throws -> Int {
        let query = try KFLQuery.compile(q, macros: macros)
        return raw.filter { Array($0.utf8).withUnsafeBytes { query.matches(json: $0, nowMs: 0) } }.count
    }
    #expect(try count("http") == 9)
    #expect(try count("gql") == 8)
    #expect(try count(#"gql and request.graphql.operationType == "mutation""#) == 1)
    #expect(try count(#"gql and response.graphql.errors[*].code == "INTERNAL_SERVER_ERROR""#) == 2)

    // tshark 4.0 has no GraphQL dissector: it calls all nine exchanges HTTP (JSON).
    // We call eight of them GraphQL, and we are right: graphene executed those
    // eight as GraphQL (their responses carry data/errors); /api/items is plain JSON.
    // Where tshark has something to say, we agree: method, URI, status, and the
    // operationName members its JSON dissector shows (none for GET and
    // application/graphql bodies, which it does not read as GraphQL at all).
    guard let theirs = try tsharkExchanges(pcap) else {
        print("tshark-agreement graphql: skipped, tshark is not installed")
        return
    }
    #expect(theirs.count == 9)
    for e in entries {
        guard let port = e.obj("src")?.int("port"), let t = theirs[port] else {
            Issue.record("tshark lacks the exchange from port \(e.obj("src")?.int("port") ?? -1)")
            continue
        }
        let url = e.request?.str("url") ?? ""
        let target = url.range(of: "://").flatMap { r in url[r.upperBound...].firstIndex(of: "/").map { String(url[$0...]) } } ?? ""
        #expect(t.method == e.str("method"), "port \(port)")
        #expect(t.uri == target, "port \(port)")
        #expect(t.status == e.int("status"), "port \(port)")
        let g = e.graphQLRequest
        let ours: [String] = g?.arr("operations")?.compactMap { $0.str("operationName") }
            ?? g?.str("operationName").map { [$0] } ?? []
        if t.operationNames.isEmpty {
            // tshark shows none: GET, application/graphql, or JSON without operationName
            // (we may name the operation from the query text: "Hello").
            #expect(g?.str("transport") != "json" || !(e.request?.obj("postData")?.str("text") ?? "").contains("operationName"))
        } else {
            #expect(t.operationNames == ours, "port \(port)")
        }
    }
    print("tshark-agreement graphql: \(entries.count)/\(theirs.count) exchanges agree on method, URI, status, operationName")
}

@Suite(.serialized) struct GraphQLRecordingTests {
    @Test(.enabled(if: FileManager.default.fileExists(atPath: graphQLFixtures.appendingPathComponent("graphql.pcap").path)))
    func committedRecording() throws {
        try checkGraphQLRecording(graphQLFixtures.appendingPathComponent("graphql.pcap").path)
    }

    /// The CLI end to end: `kubeshark dissect --filter` with the plugins' macros.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: TestProcess.kubeshark), "kubeshark not built"))
    func cliFilters() throws {
        let pcap = graphQLFixtures.appendingPathComponent("graphql.pcap").path
        func lines(_ filter: String) throws -> [String] {
            let r = try TestProcess.run(TestProcess.kubeshark, ["dissect", pcap, "--plugins", "http", "--filter", filter])
            #expect(r.status == 0, "\(filter): \(r.stderr)")
            return r.stdout.split(separator: "\n").map(String.init)
        }
        #expect(try lines("http").count == 9)
        #expect(try lines("gql").count == 8)
        #expect(try lines("http and !gql").map { parseJSON($0).str("summary") ?? "" } == ["/api/items"])
        let mutations = try lines(#"gql and request.graphql.operationType == "mutation""#)
        #expect(mutations.map { parseJSON($0).str("summary") ?? "" } == ["mutation AddUser { addUser }"])
    }

    static var canRecord: Bool {
        getuid() == 0 && TestProcess.which("tcpdump") != nil && TestProcess.which("curl") != nil
            && FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/graphene")
    }

    /// Starts the GraphQL server on a free port, records curl against it with
    /// tcpdump (the script of the committed recording) and dissects the result.
    @Test("real peers: graphene server, curl client, live recording",
          .enabled(if: canRecord, "needs root, tcpdump, curl and python3-graphene"))
    func liveRecording() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("graphql-live-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = graphQLFixtures.appendingPathComponent("record.sh").path
        // SIGKILL after two minutes: nothing can hang the run.
        let r = try TestProcess.run(TestProcess.which("timeout") ?? "/usr/bin/timeout",
                                    ["-s", "KILL", "120", "/bin/bash", script, dir.path])
        try #require(r.status == 0, "recording failed: \(r.stderr)")
        try checkGraphQLRecording(dir.appendingPathComponent("graphql.pcap").path)
    }
}
