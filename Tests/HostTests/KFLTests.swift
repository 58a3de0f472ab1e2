import Foundation
import Testing

@testable import Host

/// KFL v1: JSON parser, lexer/parser errors, evaluation semantics, macros,
/// limit/redact, and queries over entries dissected from the real captures.
@Suite("KFL")
struct KFLTests {
    static let now: Int64 = 1_800_000_000_000

    static let entryText = #"""
    {"id":"0000000000000001-0","index":0,"protocol":{"name":"http","abbr":"HTTP","macro":"http"},
     "src":{"ip":"10.0.0.2","port":37214,"namespace":"shop","name":"web-1"},
     "dst":{"ip":"10.0.0.1","port":80,"namespace":"backend"},
     "timestamp":1799999970000,"elapsedTime":0.5,"method":"GET","summary":"/api/cars?id=7","status":404,
     "unanswered":false,"tags":["a","b"],"nothing":null,
     "request":{"method":"GET","path":"/api/cars","headers":[{"name":"Host","value":"example"},
       {"name":"X-Id","value":"abc-123"},{"name":"Authorization","value":"Bearer secret"}],
       "queryString":[{"name":"id","value":"7"},{"name":"q","value":"red car"}]},
     "response":{"status":404,"statusText":"Not Found","headers":[{"name":"Content-Type","value":"application/json"}],
       "content":{"text":"{\"brand\":{\"name\":\"Chevrolet\"},\"models\":[{\"year\":1969},{\"year\":2020}]}"}}}
    """#

    static let entry: JSONValue = try! JSONValue.parse(entryText)
    static let macros = ["http": "protocol.macro == \"http\"", "dns": "protocol.macro == \"dns\"",
                         "http2": "protocol.macro == \"http2\"", "web": "http or http2"]

    func q(_ text: String, _ value: JSONValue = KFLTests.entry) throws -> Bool {
        try KFLQuery.compile(text, macros: KFLTests.macros).matches(value, nowMs: KFLTests.now)
    }

    func error(_ text: String) -> KFLError? {
        do {
            _ = try KFLQuery.compile(text, macros: KFLTests.macros)
            return nil
        } catch {
            return error
        }
    }

    // MARK: JSON

    @Test func jsonParsesAndRoundTrips() throws {
        let v = try JSONValue.parse(#"{"b":[1,2.5,-3e2,true,false,null],"a":"x\"\n\u00e9\ud83d\ude00","c":{}}"#)
        #expect(v["b"] == .array([.number(1), .number(2.5), .number(-300), .bool(true), .bool(false), .null]))
        #expect(v["a"] == .string("x\"\né😀"))
        #expect(String(decoding: v.jsonBytes, as: UTF8.self) == #"{"b":[1,2.5,-300,true,false,null],"a":"x\"\né😀","c":{}}"#)
        if case .object(let members) = v { #expect(members.map(\.key) == ["b", "a", "c"]) }
    }

    @Test func jsonRejectsBadInput() {
        for bad in ["", "{", "[1,]", "{\"a\"1}", "01", "1.", "\"a", "\"\u{01}\"", "tru", "[] x", "{\"a\":1,}", "\"\\x\"", "-"] {
            #expect(throws: JSONParseError.self, "\(bad)") { try JSONValue.parse(bad) }
        }
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(deep) }
        let ok = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect((try? JSONValue.parse(ok)) != nil)
    }

    // MARK: Operators and literals

    @Test func comparisons() throws {
        #expect(try q("response.status == 404"))
        #expect(try !q("response.status != 404"))
        #expect(try q("response.status != 200"))
        #expect(try q("response.status >= 404") && q("response.status <= 404"))
        #expect(try q("response.status > 400") && !q("response.status > 404"))
        #expect(try q("response.status < 500") && !q("response.status < 404"))
        #expect(try q("request.method == \"GET\"") && !q("request.method == \"get\""))
        #expect(try q("method < \"POST\"") && q("method >= \"GET\""))
        #expect(try q("unanswered == false") && q("unanswered != true"))
        #expect(try q("nothing == nil") && !q("nothing != nil") && q("method != nil"))
        #expect(try q("elapsedTime == 0.5") && q("elapsedTime > 0.25"))
        #expect(try q("1 == 1") && q("\"a\" < \"b\"") && !q("true == false"))
    }

    @Test func numericStringsCompareNumerically() throws {
        #expect(try q("request.queryString.id == 7"))
        #expect(try q("request.queryString.id > 6.5"))
        #expect(try q("response.status == \"404\""))
        #expect(try q("response.status < \"1000\""))
        #expect(try !q("response.status == \"abc\""))
        #expect(try q("\"10\" > \"9\"") == false)  // two strings compare as text
    }

    @Test func unaryAndPrecedence() throws {
        #expect(try q("!(response.status == 200)"))
        #expect(try !q("!true"))
        #expect(try q("!!true"))
        #expect(try q("-response.status == -404"))
        #expect(try q("elapsedTime > -1"))
        #expect(try q("!request.path.startsWith(\"/x\")"))
        // Comparison binds tighter than equality: (1 < 2) == true.
        #expect(try q("1 < 2 == true"))
        // and/or share one level, left to right: (true or false) and false.
        #expect(try !q("true or false and false"))
        #expect(try q("false and false or true"))
        #expect(try q("true or (false and false)"))
        #expect(try q("(true and false) or true"))
    }

    @Test func shortCircuit() throws {
        // The right side would match nothing either way; short-circuit must not change results.
        #expect(try !q("false and response.status == 404"))
        #expect(try q("true or missing.path == 1"))
        // A json() parse of a non-JSON string is skipped by short-circuit and otherwise just false.
        #expect(try !q("false and request.path.json().x == 1"))
        #expect(try !q("request.path.json().x == 1"))
    }

    @Test func missingPaths() throws {
        #expect(try !q("request.nope == 1"))
        #expect(try !q("request.nope != 1"))
        #expect(try !q("request.nope == nil"))
        #expect(try !q("request.headers[\"x-missing\"] == \"y\""))
        #expect(try !q("request.nope.startsWith(\"a\")"))
        #expect(try !q("request.method.deeper == 1"))
        #expect(try !q("tags[5] == \"a\""))
        #expect(try q("!(request.nope == 1)"))
        #expect(try !q("request.nope"))
        #expect(try q("request.path"))
    }

    // MARK: Selectors

    @Test func selectors() throws {
        #expect(try q("src.namespace == \"shop\" and dst.namespace == \"backend\""))
        #expect(try q("src.port == 37214 and dst.port == 80"))
        #expect(try q("request[\"method\"] == \"GET\""))
        #expect(try q("request.headers[\"x-id\"] == \"abc-123\""))
        #expect(try q("request.headers[\"X-ID\"] == \"abc-123\""))
        #expect(try q("request.headers.Host == \"example\""))
        #expect(try q("request.queryString.q == \"red car\""))
        #expect(try q("tags[0] == \"a\" and tags[1] == \"b\" and tags[-1] == \"b\""))
        #expect(try q("request.headers[0].name == \"Host\""))
        #expect(try q("..statusText == \"Not Found\""))
        #expect(try q("response..year == 2020") == false)  // content.text is a string, not JSON
    }

    @Test func wildcards() throws {
        #expect(try q("request.headers.*.name == \"Host\""))
        #expect(try q("request.headers.*.name == \"Authorization\""))
        #expect(try !q("request.headers.*.name == \"Cookie\""))
        #expect(try q("request.headers[*].value.startsWith(\"Bearer\")"))
        #expect(try q("tags.* == \"b\""))
        #expect(try q("src.* == \"shop\""))
        #expect(try q("response.content.text.json().models.*.year > 2000"))
        #expect(try !q("response.content.text.json().models.*.year > 2020"))
    }

    @Test func regex() throws {
        #expect(try q("response.status == r\"4.*\""))
        #expect(try q("response.status == r\"^40[0-9]$\""))
        #expect(try !q("response.status == r\"^5\""))
        #expect(try q("response.status != r\"^5\""))
        #expect(try q("request.path == r\"/api/.+\""))
        #expect(try q("request.headers.*.value == r\"\\d{3}\""))
        #expect(try q("r\"GE\" == method"))
        #expect(try !q("request.nope == r\".*\""))
        #expect(try q("response.statusText == r\"not found\"") == false)
        #expect(try q("response.statusText == r\"(?i)not found\""))
    }

    // MARK: Helpers

    @Test func stringHelpers() throws {
        #expect(try q("request.path.startsWith(\"/api\")"))
        #expect(try !q("request.path.startsWith(\"/apx\")"))
        #expect(try q("request.path.endsWith(\"cars\")"))
        #expect(try !q("request.path.endsWith(\"car\")"))
        #expect(try q("request.path.contains(\"pi/c\")"))
        #expect(try !q("request.path.contains(\"bus\")"))
        #expect(try q("request.path.contains(\"\")"))
        #expect(try q("response.status.startsWith(\"40\")"))
        #expect(try q("tags.contains(\"b\")") && !q("tags.contains(\"z\")"))
        #expect(try q("request.path.startsWith(\"/api\") == true"))
        #expect(try q("request.headers.Authorization.startsWith(\"Bearer \")"))
    }

    @Test func jsonHelper() throws {
        #expect(try q("response.content.text.json().brand.name == \"Chevrolet\""))
        #expect(try q("response.content.text.json().models[0].year == 1969"))
        #expect(try !q("response.content.text.json().brand.name == \"Ford\""))
        #expect(try !q("request.path.json().brand == 1"))
    }

    @Test func timeHelpers() throws {
        #expect(try q("now() == 1800000000000"))
        #expect(try q("timestamp > seconds(-60)"))  // 30 s ago
        #expect(try !q("timestamp > seconds(-10)"))
        #expect(try q("timestamp < now()"))
        #expect(try q("minutes(1) == 1800000060000"))
        #expect(try q("hours(-1) == 1799996400000"))
        #expect(try q("days(2) == 1800172800000"))
        #expect(try q("weeks(1) == 1800604800000"))
        #expect(try q("timestamp >= minutes(-1) and timestamp <= now()"))
    }

    @Test func limitAndRedact() throws {
        let a = try KFLQuery.compile("http and limit(3)", macros: KFLTests.macros)
        #expect(a.limit == 3)
        #expect(a.matches(KFLTests.entry, nowMs: KFLTests.now))
        #expect(try KFLQuery.compile("http", macros: KFLTests.macros).limit == nil)
        #expect(try KFLQuery.compile("limit(0)").limit == 0)
        let r = try KFLQuery.compile(
            "redact(\"request.headers.Authorization\", \"src.ip\") and redact('tags[0]') and response.status == 404")
        #expect(r.redactions == ["request.headers.Authorization", "src.ip", "tags[0]"])
        #expect(r.matches(KFLTests.entry, nowMs: KFLTests.now))
        let red = r.redact(KFLTests.entry)
        #expect(red["src"]?["ip"] == .string("[REDACTED]"))
        #expect(red["src"]?["port"] == .number(37214))
        #expect(red["tags"] == .array([.string("[REDACTED]"), .string("b")]))
        guard case .array(let headers)? = red["request"]?["headers"] else { Issue.record("headers"); return }
        #expect(headers[2]["value"] == .string("[REDACTED]"))
        #expect(headers[2]["name"] == .string("Authorization"))
        #expect(headers[0]["value"] == .string("example"))
        // Byte-level rewrite.
        let bytes = Array(KFLTests.entryText.utf8)
        let out = try #require(bytes.withUnsafeBytes { r.redact(json: $0) })
        let text = String(decoding: out, as: UTF8.self)
        #expect(!text.contains("Bearer secret") && text.contains("\"[REDACTED]\""))
        #expect(try JSONValue.parse(out) == red)
        // Nothing to redact: bytes unchanged.
        let plain = try KFLQuery.compile("true")
        #expect(bytes.withUnsafeBytes { plain.redact(json: $0) } == bytes)
        // Wildcard and descendant redaction.
        let w = try KFLQuery.compile("redact(\"request.headers.*.value\", \"..statusText\")")
        let wr = w.redact(KFLTests.entry)
        #expect(wr["response"]?["statusText"] == .string("[REDACTED]"))
        #expect(try KFLQuery.compile("request.headers.*.value != \"[REDACTED]\"").matches(wr, nowMs: 0) == false)
    }

    // MARK: Macros

    @Test func macros() throws {
        #expect(try q("http"))
        #expect(try !q("dns"))
        #expect(try !q("http2"))
        #expect(try q("web"))  // nested macro
        #expect(try q("dns or http"))
        #expect(try q("http and response.status == r\"4.*\""))
        // Inside a string the name stays text.
        #expect(try q("request.method != \"http\""))
        #expect(try !q("protocol.name == \"dns\""))
        #expect(try q("protocol.name == \"http\""))
        // Keys named like macros are selectors, not macros.
        let e = try JSONValue.parse(#"{"dns":{"id":5},"protocol":{"macro":"x"}}"#)
        #expect(try q("dns.id == 5", e))
        #expect(try !q("dns", e))
        // Precedence kept: macro body is parenthesised.
        #expect(try q("false and web") == false)
        #expect(try q("!web") == false)
        // A recursive macro is an error, not a hang.
        #expect(throws: KFLError.self) { try KFLQuery.compile("a", macros: ["a": "b", "b": "a"]) }
    }

    @Test func macrosFromPlugins() throws {
        let plugin = try PluginLoader.load(path: PluginLoader.executableDirectory + "/libksplugin-http.so").get()
        let table = KFLMacros.from(plugins: [plugin])
        // GraphQL over HTTP/1.x declares macro "gql" with "http" as an extra macro.
        #expect(table["http"] == "protocol.macro == \"http\" or protocol.macros[*] == \"http\"")
        #expect(table["gql"] == "protocol.macro == \"gql\"")
        let graphQL = try JSONValue.parse(#"{"protocol":{"name":"graphql","macro":"gql","macros":["gql","http"]}}"#)
        let plainHTTP = try JSONValue.parse(#"{"protocol":{"name":"http","macro":"http"}}"#)
        let dns = try JSONValue.parse(#"{"protocol":{"name":"dns","macro":"dns"}}"#)
        func matches(_ q: String, _ v: JSONValue) throws -> Bool {
            try KFLQuery.compile(q, macros: table).matches(v, nowMs: KFLTests.now)
        }
        #expect(try matches("http", graphQL) && matches("gql", graphQL) && matches("gql and http", graphQL))
        #expect(try matches("http", plainHTTP) && !matches("gql", plainHTTP))
        #expect(try !matches("http", dns) && !matches("gql", dns))
        #expect(plugin.metadata.protocols.map(\.macro) == ["http", "http", "gql"])
        #expect(plugin.metadata.protocols[2].extraMacros == ["http"])
        let json = String(decoding: plugin.protocolJSON[2], as: UTF8.self)
        #expect(json.contains(#""macro":"gql","macros":["gql","http"]"#))
        #expect(!String(decoding: plugin.protocolJSON[0], as: UTF8.self).contains("macros"))
    }

    // MARK: Errors

    @Test func errorPositions() {
        let cases: [(String, Int, String)] = [
            ("(response.status == 1", 21, "expected ')'"),
            ("request.path.startWith(\"/a\")", 13, "unknown helper 'startWith'"),
            ("a == \"abc", 5, "unterminated string"),
            ("a == r\"abc", 5, "unterminated regex"),
            ("a == r\"(\"", 5, "invalid regex"),
            ("a ==", 4, "expected a value"),
            ("a == 1 b", 7, "expected 'and', 'or'"),
            ("foo(1)", 0, "unknown helper 'foo'"),
            ("a.", 2, "expected a name"),
            ("a[", 2, "expected a string key"),
            ("a[1", 3, "expected ']'"),
            ("a # b", 2, "unexpected character '#'"),
            ("true or limit(3)", 8, "limit() must be a top-level 'and' term"),
            ("limit(-1)", 7, "limit needs"),
            ("seconds(\"x\")", 8, "expected a number argument"),
            ("and", 0, "expected a value"),
            ("a == \"\\q\"", 6, "invalid escape"),
            ("redact(\"a..\")", 7, "invalid redact path"),
            ("startsWith(\"a\")", 0, "is a method"),
            ("12abc", 2, "invalid number"),
        ]
        for (text, position, message) in cases {
            guard let e = error(text) else {
                Issue.record("no error for \(text)")
                continue
            }
            #expect(e.position == position, "\(text): \(e)")
            #expect(e.message.contains(message), "\(text): \(e)")
            #expect(e.description == "\(e.message) at \(e.position)")
        }
    }

    @Test func emptyQueryMatchesAll() throws {
        #expect(try q(""))
        #expect(try q("   "))
        let bad: [UInt8] = Array("{not json".utf8)
        #expect(try bad.withUnsafeBytes { try KFLQuery.compile("").matches(json: $0, nowMs: 0) })
        #expect(try !bad.withUnsafeBytes { try KFLQuery.compile("a == 1").matches(json: $0, nowMs: 0) })
    }

    // MARK: Robustness

    static let validQueries = [
        "http and response.status == r\"4.*\"",
        "http and request.method == \"GET\" and request.path != \"/example\" and (request.queryString.a > 42 or request.headers[\"x\"] == \"y\")",
        "response.content.text.json().brand.name == \"Chevrolet\"",
        "timestamp > seconds(-60) and limit(10) and redact(\"request.headers.Authorization\")",
        "!(src.namespace == 'shop') or -elapsedTime < -1 and tags[-1].endsWith(\"b\") and ..year >= 2000 and request.headers.*.name.contains(\"o\")",
    ]

    @Test func prefixesNeverCrash() {
        for query in KFLTests.validQueries {
            #expect((try? KFLQuery.compile(query, macros: KFLTests.macros)) != nil, "\(query)")
            let chars = Array(query)
            for n in 0...chars.count {
                let prefix = String(chars[0..<n])
                if let c = try? KFLQuery.compile(prefix, macros: KFLTests.macros) {
                    _ = c.matches(KFLTests.entry, nowMs: KFLTests.now)
                    _ = c.redact(KFLTests.entry)
                }
                let suffix = String(chars[n...])
                if let c = try? KFLQuery.compile(suffix, macros: KFLTests.macros) {
                    _ = c.matches(KFLTests.entry, nowMs: KFLTests.now)
                }
            }
        }
    }

    @Test func randomInputNeverCrashes() throws {
        var rng = SplitMix(seed: 0x5eed)
        let alphabet = Array("abhtp.[]()\"'r*!-=<>&|,0123456789 \\eadnorlimtsjJ#\u{e9}\n")
        let pieces = ["and", "or", "==", "!=", ">=", "(", ")", "request", ".", "headers", "[0]", ".*", "\"x\"",
                      "r\"a.*\"", "startsWith(", "json()", "limit(2)", "nil", "true", "-", "!", "http", "..", "5"]
        for round in 0..<3000 {
            var s = ""
            let n = Int(rng.next() % 24)
            for _ in 0..<n {
                if round % 2 == 0 {
                    s.append(alphabet[Int(rng.next() % UInt64(alphabet.count))])
                } else {
                    s += pieces[Int(rng.next() % UInt64(pieces.count))] + (rng.next() % 3 == 0 ? " " : "")
                }
            }
            do {
                let c = try KFLQuery.compile(s, macros: KFLTests.macros)
                _ = c.matches(KFLTests.entry, nowMs: KFLTests.now)
            } catch {
                #expect(error.position >= 0 && error.position <= s.utf8.count, "\(s): \(error)")
            }
        }
        // Deep nesting is refused, not a stack overflow.
        #expect(error(String(repeating: "(", count: 5000) + "true" + String(repeating: ")", count: 5000)) != nil)
        #expect(error(String(repeating: "!", count: 5000) + "true") != nil)
        #expect(error(String(repeating: "1 == ", count: 5000) + "1") != nil)
        // Long flat chains are fine (evaluated iteratively).
        let chain = Array(repeating: "true", count: 5000).joined(separator: " and ")
        #expect(try q(chain))
        // Random bytes as JSON never crash.
        for _ in 0..<2000 {
            let alphabet = Array("{}[]\":,0-1.5eE tfalsnu\\x".utf8)
            let bytes = (0..<Int(rng.next() % 40)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            _ = try? JSONValue.parse(bytes)
        }
    }

    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    // MARK: Real entries

    static let captures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/captures")

    /// Entries (JSON bytes) of one capture dissected by the HTTP plugin.
    static func dissect(_ name: String) throws -> (entries: [[UInt8]], macros: [String: String]) {
        let plugin = try PluginLoader.load(path: PluginLoader.executableDirectory + "/libksplugin-http.so").get()
        try plugin.start()
        let sink = CollectingSink()
        let session = DissectionSession(plugins: [plugin], sink: sink)
        let backend = try LibpcapBackend(file: captures.appendingPathComponent(name).path)
        _ = CaptureRunner.drain(backend, into: session)
        session.finish()
        return (sink.entries.map { Array($0.utf8) }, KFLMacros.from(plugins: [plugin]))
    }

    /// Indices of the entries `query` selects.
    static func select(_ query: String, _ capture: (entries: [[UInt8]], macros: [String: String])) throws -> [Int] {
        let compiled = try KFLQuery.compile(query, macros: capture.macros)
        return capture.entries.indices.filter { i in
            capture.entries[i].withUnsafeBytes { compiled.matches(json: $0, nowMs: 0) }
        }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: captures.path)))
    func realHeadNoContentNotModified() throws {
        let c = try KFLTests.dissect("http1-head-204-304.pcap")
        try #require(c.entries.count == 3)
        #expect(try KFLTests.select("http", c) == [0, 1, 2])
        #expect(try KFLTests.select("dns", c) == [])
        #expect(try KFLTests.select("http and response.status == 304", c) == [2])
        #expect(try KFLTests.select("request.method == \"HEAD\"", c) == [0])
        #expect(try KFLTests.select("response.status == r\"^20\"", c) == [0, 1])
        #expect(try KFLTests.select("http and request.method == \"GET\" and response.status != 304", c) == [1])
        #expect(try KFLTests.select("response.headers.*.name == \"ETag\" and request.method != \"HEAD\"", c).count
            <= 2)
        #expect(try KFLTests.select("request.headers[\"user-agent\"] == \"curl/kstest\"", c) == [0, 1, 2])
        #expect(try KFLTests.select("http and limit(1)", c) == [0, 1, 2])  // limit is for the consumer
        #expect(try KFLTests.select("timestamp < seconds(-60)", c) == [])  // nowMs = 0: all in the future
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: captures.path)))
    func realQueryAndJSONBodies() throws {
        let get = try KFLTests.dissect("http1-get-query.pcap")
        try #require(!get.entries.isEmpty)
        #expect(try KFLTests.select("request.path.startsWith(\"/search\")", get) == [0])
        #expect(try KFLTests.select("request.queryString.page == 2 and request.queryString.q == \"kube shark\"", get)
            == [0])
        #expect(try KFLTests.select("request.path.startsWith(\"/api\")", get) == [])
        let post = try KFLTests.dissect("http1-post-json.pcap")
        try #require(!post.entries.isEmpty)
        #expect(try KFLTests.select("request.postData.text.json().name == \"kubeshark\"", post) == [0])
        #expect(try KFLTests.select("request.postData.text.json().tags.* == \"pcap\"", post) == [0])
        #expect(try KFLTests.select("response.content.text.json().ok == true and response.status == 201", post) == [0])
        // "User-Agent" has a hyphen: it must be a quoted key.
        #expect(throws: KFLError.self) { try KFLQuery.compile("redact(\"request.headers.User-Agent\")") }
        let red = try KFLQuery.compile("redact(\"request.headers['User-Agent']\")")
        let out = try #require(post.entries[0].withUnsafeBytes { red.redact(json: $0) })
        #expect(try KFLQuery.compile("request.headers[\"user-agent\"] == \"[REDACTED]\"").matches(
            JSONValue.parse(out), nowMs: 0))
    }
}

extension KFLTests {
    @Test func evaluationSpeed() throws {
        let query = try KFLQuery.compile(
            "http and request.method == \"GET\" and request.headers[\"x-id\"] == r\"abc\" and response.status >= 400",
            macros: KFLTests.macros)
        let bytes = Array(KFLTests.entryText.utf8)
        let clock = ContinuousClock()
        var hits = 0
        let elapsed = clock.measure {
            for _ in 0..<20_000 where bytes.withUnsafeBytes({ query.matches(json: $0, nowMs: 0) }) { hits += 1 }
        }
        #expect(hits == 20_000)
        print("KFL: 20000 evaluations (parse + match) in \(elapsed)")
    }
}

extension KFLTests {
    @Test func datetimeHelper() throws {
        #expect(try q("datetime(\"1/2/2006, 3:04:05 PM\") == 1136214245000"))
        #expect(try q("datetime(\"2006-01-02T15:04:05Z\") == 1136214245000"))
        #expect(try q("datetime(\"12/31/1999, 12:00:00 AM\") == 946598400000"))
        #expect(try q("datetime(\"2000-03-01\") == 951868800000"))
        #expect(try q("timestamp > datetime(\"1/1/2027, 1:00:00 AM\")"))
        #expect(error("datetime(\"yesterday\")")?.position == 9)
        #expect(error("datetime(\"13/1/2006, 1:00:00 PM\")") != nil)
    }

    /// The byte path (which only builds the top-level keys a query reads) agrees with
    /// the full parse, and still refuses invalid JSON in skipped members.
    @Test func partialParseAgreesWithFullParse() throws {
        let bytes = Array(KFLTests.entryText.utf8)
        let queries = ["http", "response.status == 404", "src.port > 1 and request.path.startsWith(dst.ip)",
                       "request.headers[\"host\"] == \"example\"", "request.queryString[0].name == \"q\"",
                       "response.content.text.json().brand.name == \"Chevrolet\"", "request.queryString.q == \"red car\"", "request.method == \"GET\" and response.status >= 200",
                       "..year == 1", "tags.contains(\"a\")", ".* == \"GET\"", "method == \"GET\"", "nothing == nil",
                       "request.path.contains(summary)", "-timestamp < 0"]
        for text in queries {
            let query = try KFLQuery.compile(text, macros: KFLTests.macros)
            let full = query.matches(KFLTests.entry, nowMs: KFLTests.now)
            let partial = bytes.withUnsafeBytes { query.matches(json: $0, nowMs: KFLTests.now) }
            #expect(full == partial, "\(text)")
        }
        let skipped = try KFLQuery.compile("method == \"GET\"")
        var methodOnly = JSONKeepTree()
        methodOnly.keep(["method"])
        #expect(skipped.reads == methodOnly)
        // Nested selectors keep only their path; a non-key step keeps all below it.
        let nested = try KFLQuery.compile("response.status == 200 and request.headers[\"host\"] == \"x\"")
        #expect(nested.reads?.children["response"]?.children.keys.sorted() == ["status"])
        #expect(nested.reads?.children["request"]?.children["headers"]?.children.keys.sorted() == ["host"])
        #expect(nested.reads?.children["src"] == nil)
        for bad in [#"{"method":"GET","x":[1,]}"#, #"{"method":"GET","x":"\q"}"#, #"{"x":{"a" 1},"method":"GET"}"#,
                    #"{"method":"GET","x":01}"#, #"{"method":"GET"} x"#, #"{"method":"GET","x":tru}"#] {
            #expect(!Array(bad.utf8).withUnsafeBytes { skipped.matches(json: $0, nowMs: 0) }, "\(bad)")
        }
        #expect(Array(#"{"x":[{"y":"\u00e9"}],"method":"GET"}"#.utf8).withUnsafeBytes {
            skipped.matches(json: $0, nowMs: 0)
        })
    }
}

extension KFLTests {
    @Test func nestingIsBoundedAcrossParenthesesAndChains() throws {
        let chain = Array(repeating: "1", count: 60).joined(separator: " == ")
        let nested = String(repeating: "(" + chain + " == ", count: 60) + "1" + String(repeating: ")", count: 60)
        #expect(error(nested) != nil)
        let ok = String(repeating: "(", count: 90) + "response.status == 404" + String(repeating: ")", count: 90)
        #expect(try q(ok))
        let okChain = Array(repeating: "true", count: 50).joined(separator: " == ")
        #expect(try q(okChain))
    }
}
