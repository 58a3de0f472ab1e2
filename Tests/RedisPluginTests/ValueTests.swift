import Foundation
import Testing

/// Every RESP2/RESP3 type as a reply to GET, decoded into the response value tree.
@Suite struct ValueTests {
    /// The response object of one GET k exchange answered by `reply`.
    func reply(_ reply: [UInt8]) throws -> JSON {
        let entries = try run([(c2s, command("GET", "k")), (s2c, reply)])
        #expect(entries.count == 1)
        let e = entries.first ?? [:]
        #expect(e.method == "GET")
        #expect(e.str("summary") == "k")
        return e.response ?? [:]
    }

    @Test func simpleString() throws {
        let r = try reply(simple("OK"))
        #expect(r.str("type") == "simple-string" && r.str("value") == "OK")
    }

    @Test func simpleError() throws {
        let entries = try run([(c2s, command("GET", "k")), (s2c, error("WRONGTYPE Operation against a key"))])
        #expect(entries[0].response?.str("type") == "simple-error")
        #expect(entries[0].response?.str("value") == "WRONGTYPE Operation against a key")
        #expect(entries[0].str("statusText") == "WRONGTYPE Operation against a key")
    }

    @Test func integerAndNulls() throws {
        let i = try reply(integer(-42))
        #expect(i.str("type") == "integer" && i.int("value") == -42)
        for null in ["$-1\r\n", "*-1\r\n", "_\r\n"] {
            let r = try reply(bytes(null))
            #expect(r.str("type") == "null")
            #expect(r["value"] is NSNull, "\(null.debugDescription)")
        }
    }

    @Test func bulkStrings() throws {
        let r = try reply(bulk("hello world"))
        #expect(r.str("type") == "bulk-string" && r.str("value") == "hello world")
        let empty = try reply(bulk(""))
        #expect(empty.str("value") == "")
        let binary = try reply(bytes("$4\r\na\r\nb\r\n"))
        #expect(binary.str("value") == "a\r\nb")
    }

    @Test func resp3Scalars() throws {
        #expect(try reply(bytes(",3.25\r\n")).str("type") == "double")
        #expect((try reply(bytes(",3.25\r\n"))["value"] as? NSNumber)?.doubleValue == 3.25)
        #expect(try reply(bytes(",inf\r\n")).str("value") == "inf")
        let t = try reply(bytes("#t\r\n"))
        #expect(t.str("type") == "boolean" && (t["value"] as? NSNumber)?.boolValue == true)
        let big = try reply(bytes("(3492890328409238509324850943850943825024385\r\n"))
        #expect(big.str("type") == "big-number" && big.str("value") == "3492890328409238509324850943850943825024385")
        let be = try reply(bytes("!21\r\nSYNTAX invalid syntax\r\n"))
        #expect(be.str("type") == "bulk-error" && be.str("value") == "SYNTAX invalid syntax")
        let v = try reply(bytes("=15\r\ntxt:Some string\r\n"))
        #expect(v.str("type") == "verbatim-string")
        #expect(v.obj("value")?.str("format") == "txt" && v.obj("value")?.str("text") == "Some string")
    }

    @Test func aggregates() throws {
        let a = try reply(array([bulk("a"), integer(1), array([simple("x")]), bytes("_\r\n")]))
        #expect(a.str("type") == "array")
        let items = a["value"] as? [Any] ?? []
        #expect(items.count == 4)
        #expect(items[0] as? String == "a" && (items[1] as? NSNumber)?.intValue == 1)
        #expect((items[2] as? [Any])?.first as? String == "x")
        #expect(items[3] is NSNull)
        let s = try reply(array([bulk("m1"), bulk("m2")], type: "~"))
        #expect(s.str("type") == "set" && (s["value"] as? [String]) == ["m1", "m2"])
        let empty = try reply(bytes("*0\r\n"))
        #expect((empty["value"] as? [Any])?.isEmpty == true)
    }

    @Test func mapOfStringsIsAnObject() throws {
        let m = try reply(map([(bulk("f1"), bulk("v1")), (simple("f2"), bulk("v2"))]))
        #expect(m.str("type") == "map")
        #expect(m.obj("value")?.str("f1") == "v1" && m.obj("value")?.str("f2") == "v2")
    }

    @Test func mixedMapIsPairs() throws {
        let m = try reply(map([(bulk("server"), bulk("redis")), (bulk("proto"), integer(3)),
                                (bulk("modules"), array([]))]))
        let pairs = m["value"] as? [JSON] ?? []
        #expect(pairs.count == 3)
        #expect(pairs[0].str("key") == "server" && pairs[0].str("value") == "redis")
        #expect(pairs[1].str("key") == "proto" && pairs[1].int("value") == 3)
        #expect((pairs[2]["value"] as? [Any])?.isEmpty == true)
    }

    @Test func attributes() throws {
        // Top level: |1 key-popularity %2 a ,0.1923 b ,0.0012 then *2 :2039123 :9543892
        let attr = map([(simple("key-popularity"), map([(bulk("a"), bytes(",0.1923\r\n")), (bulk("b"), bytes(",0.0012\r\n"))]))], type: "|")
        let r = try reply(attr + array([integer(2_039_123), integer(9_543_892)]))
        #expect(r.str("type") == "array")
        #expect((r["value"] as? [NSNumber])?.map(\.intValue) == [2_039_123, 9_543_892])
        #expect(r["attributes"] != nil)
        // Nested: an attribute inside an array wraps the element it annotates.
        let nested = try reply(array([bulk("x"), map([(simple("ttl"), bulk("3600"))], type: "|") + bulk("y")]))
        let items = nested["value"] as? [Any] ?? []
        #expect(items.count == 2)
        let wrapped = items.count == 2 ? items[1] as? JSON : nil
        #expect(wrapped?.str("value") == "y")
        #expect(wrapped?.obj("attributes")?.str("ttl") == "3600")
    }

    @Test func requestFields() throws {
        let e = try run([(c2s, command("SET", "user:1", "alice", "EX", "10")), (s2c, simple("OK"))])[0]
        #expect(e.method == "SET" && e.str("summary") == "user:1" && e.str("statusText") == "OK")
        let r = e.request ?? [:]
        #expect(r.str("type") == "array" && r.str("command") == "SET" && r.str("key") == "user:1")
        #expect(r.str("value") == "alice EX 10")
        #expect(r.strings("args") == ["SET", "user:1", "alice", "EX", "10"])
        let c = try run([(c2s, command("config", "get", "maxmemory")), (s2c, array([bulk("maxmemory"), bulk("0")]))])[0]
        #expect(c.method == "CONFIG" && c.request?.str("keyword") == "GET" && c.request?.str("key") == "maxmemory")
        let ping = try run([(c2s, command("PING")), (s2c, simple("PONG"))])[0]
        #expect(ping.method == "PING" && ping.str("summary") == nil && ping.request?.str("key") == nil)
        #expect(e.int("requestSize") == command("SET", "user:1", "alice", "EX", "10").count)
        #expect(e.int("responseSize") == 5)
    }

    @Test func inlineCommands() throws {
        let entries = try run([(c2s, bytes("SET greeting \"hello there\"\r\nget greeting\n\r\nPING\r\n")),
                               (s2c, simple("OK") + bulk("hello there") + simple("PONG"))])
        #expect(entries.map { $0.method ?? "" } == ["SET", "GET", "PING"])
        #expect(entries[0].request?.str("type") == "inline")
        #expect(entries[0].request?.strings("args") == ["SET", "greeting", "hello there"])
        #expect(entries[1].response?.str("value") == "hello there")
    }
}
