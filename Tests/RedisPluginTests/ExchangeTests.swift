import Foundation
import Testing

/// Matching replies to commands: pipelining, pub/sub, unanswered and unsolicited, redaction.
@Suite struct ExchangeTests {
    @Test func pipelinedRepliesMatchInOrder() throws {
        var cmds: [UInt8] = []
        var replies: [UInt8] = []
        for i in 0..<20 {
            cmds += command("SET", "k\(i)", "v\(i)") + command("GET", "k\(i)")
            replies += simple("OK") + bulk("v\(i)")
        }
        let entries = try run([(c2s, cmds), (s2c, replies)])
        #expect(entries.count == 40)
        for i in 0..<20 {
            #expect(entries[2 * i].method == "SET" && entries[2 * i].str("summary") == "k\(i)")
            #expect(entries[2 * i].response?.str("value") == "OK")
            #expect(entries[2 * i + 1].method == "GET" && entries[2 * i + 1].response?.str("value") == "v\(i)")
        }
        #expect(entries.allSatisfy { $0.flags.isEmpty })
    }

    /// A command unanswered for 30 s of capture time becomes a timed-out entry at the
    /// next tick; it keeps its place in the queue, so its late reply does not shift
    /// the pairing of the replies after it, and it names the late reply's entry.
    @Test func unansweredCommandsTimeOutWithoutShiftingLaterReplies() throws {
        let t0: Int64 = 1_700_000_000_000_000_000
        let h = try makeHarness()
        let raw = h.run(events: [
            .data(c2s, command("BLPOP", "jobs", "0"), timestampNs: t0),
            .data(c2s, command("GET", "a"), timestampNs: t0 + 10_000_000_000),
            .tick(nowNs: t0 + 29_000_000_000),  // nothing old enough yet
            .tick(nowNs: t0 + 30_000_000_000),  // BLPOP times out
            .tick(nowNs: t0 + 31_000_000_000),  // not emitted twice
            .data(s2c, array([bulk("jobs"), bulk("j1")]), timestampNs: t0 + 35_000_000_000),
            .data(s2c, bulk("1"), timestampNs: t0 + 35_000_100_000),
            .data(c2s, command("GET", "b"), timestampNs: t0 + 36_000_000_000),
        ], serverPort: 6379)
        let entries = raw.map(parseJSON)
        try #require(entries.count == 4, "\(raw)")
        #expect(entries[0].method == "BLPOP" && entries[0].str("summary") == "jobs")
        #expect(entries[0].flags.contains("timedOut") && entries[0].flags.contains("requestOnly"))
        // The late reply: its own entry, named after the command, without the request.
        #expect(entries[1].method == "BLPOP" && entries[1].flags == ["responseOnly"] && entries[1].request == nil)
        #expect((entries[1].response?["value"] as? [String]) == ["jobs", "j1"])
        // GET a still gets its own reply.
        #expect(entries[2].method == "GET" && entries[2].str("summary") == "a" && entries[2].flags.isEmpty)
        #expect(entries[2].response?.str("value") == "1")
        // GET b, never answered nor timed out, is flushed at close.
        #expect(entries[3].str("summary") == "b" && entries[3].flags == ["requestOnly"])
    }

    @Test func unansweredAndUnsolicited() throws {
        let entries = try run([(c2s, command("GET", "a") + command("GET", "b")), (s2c, bulk("1"))])
        #expect(entries.count == 2)
        #expect(entries[0].response?.str("value") == "1" && entries[0].flags.isEmpty)
        #expect(entries[1].str("summary") == "b" && entries[1].flags.contains("requestOnly"))
        #expect(entries[1].response == nil)
        let extra = try run([(s2c, simple("OK"))])
        #expect(extra.count == 1 && extra[0].flags.contains("responseOnly") && extra[0].request == nil)
    }

    @Test func pubSubRESP2() throws {
        let sub = command("SUBSCRIBE", "news", "sport")
        let confirmations = array([bulk("subscribe"), bulk("news"), integer(1)])
            + array([bulk("subscribe"), bulk("sport"), integer(2)])
        let msg = array([bulk("message"), bulk("news"), bulk("hello")])
        let pmsg = array([bulk("pmessage"), bulk("n*"), bulk("news"), bulk("hi")])
        let psub = command("PSUBSCRIBE", "n*")
        let psubOK = array([bulk("psubscribe"), bulk("n*"), integer(3)])
        let entries = try run([(c2s, sub), (s2c, confirmations), (s2c, msg), (c2s, psub), (s2c, psubOK), (s2c, pmsg),
                               (c2s, command("UNSUBSCRIBE")),
                               (s2c, array([bulk("unsubscribe"), bulk("news"), integer(0)]))])
        #expect(entries.map { $0.method ?? "" } == ["SUBSCRIBE", "MESSAGE", "PSUBSCRIBE", "PMESSAGE", "UNSUBSCRIBE"])
        #expect((entries[0].response?["value"] as? [Any])?.count == 2)  // both confirmations
        #expect(entries[0].str("summary") == "news")
        let m = entries[1]
        #expect(m.request == nil && m.str("summary") == "news")
        #expect(m.response?.str("kind") == "message" && m.response?.str("channel") == "news")
        #expect(!m.flags.contains("responseOnly"))
        #expect(entries[3].response?.str("pattern") == "n*" && entries[3].str("summary") == "news")
        // After unsubscribing from everything, an array reply is a reply again.
        let after = try run([(c2s, command("SUBSCRIBE", "a")), (s2c, array([bulk("subscribe"), bulk("a"), integer(1)])),
                             (c2s, command("UNSUBSCRIBE", "a")), (s2c, array([bulk("unsubscribe"), bulk("a"), integer(0)])),
                             (c2s, command("LRANGE", "l", "0", "-1")), (s2c, array([bulk("message"), bulk("x"), bulk("y")]))])
        #expect(after.map { $0.method ?? "" } == ["SUBSCRIBE", "UNSUBSCRIBE", "LRANGE"])
    }

    @Test func pubSubRESP3() throws {
        let hello = command("HELLO", "3")
        let helloReply = map([(bulk("server"), bulk("redis")), (bulk("proto"), integer(3))])
        let sub = command("SUBSCRIBE", "ch")
        let conf = array([bulk("subscribe"), bulk("ch"), integer(1)], type: ">")
        let push = array([bulk("message"), bulk("ch"), bulk("payload")], type: ">")
        let entries = try run([(c2s, hello), (s2c, helloReply), (c2s, sub), (s2c, conf), (s2c, push),
                               (c2s, command("GET", "x")), (s2c, push + bulk("1"))])
        #expect(entries.map { $0.method ?? "" } == ["HELLO", "SUBSCRIBE", "MESSAGE", "MESSAGE", "GET"])
        #expect(entries[0].response?.str("type") == "map")
        #expect(entries[1].response?.str("type") == "push")
        #expect(entries[2].response?.str("type") == "push" && entries[2].str("summary") == "ch")
        #expect(entries[4].response?.str("value") == "1")
        // An invalidation push (client tracking) is an entry of its own too.
        let inv = try run([(c2s, command("GET", "x")), (s2c, array([bulk("invalidate"), array([bulk("x")])], type: ">") + bulk("v"))])
        #expect(inv.map { $0.method ?? "" } == ["INVALIDATE", "GET"])
    }

    @Test func passwordsRedacted() throws {
        let secret = "s3cr3t-pa55"
        let convo: [Segment] = [
            (c2s, command("AUTH", secret)), (s2c, simple("OK")),
            (c2s, command("AUTH", "alice", secret)), (s2c, simple("OK")),
            (c2s, command("HELLO", "3", "AUTH", "bob", secret, "SETNAME", "app")), (s2c, map([(bulk("proto"), integer(3))])),
            (c2s, bytes("AUTH \(secret)\r\n")), (s2c, simple("OK")),
            (c2s, command("CONFIG", "SET", "requirepass", secret)), (s2c, simple("OK")),
            (c2s, command("MIGRATE", "h", "6379", "k", "0", "5000", "AUTH", secret)), (s2c, simple("OK")),
        ]
        let h = try makeHarness()
        let raw = h.runTCP(segments: convo)
        #expect(raw.count == 6)
        for s in raw { #expect(!s.contains(secret), "\(s)") }
        let entries = raw.map(parseJSON)
        #expect(entries[0].request?.strings("args") == ["AUTH", "[redacted]"])
        #expect(entries[1].request?.strings("args") == ["AUTH", "alice", "[redacted]"])
        #expect(entries[2].request?.strings("args") == ["HELLO", "3", "AUTH", "bob", "[redacted]", "SETNAME", "app"])
        #expect(entries[3].request?.strings("args") == ["AUTH", "[redacted]"])
    }

    @Test func pendingQueueIsBounded() throws {
        var cmds: [UInt8] = []
        for i in 0..<1500 { cmds += command("GET", "k\(i)") }
        let entries = try run([(c2s, cmds)])
        #expect(entries.count == 1500)
        #expect(entries.allSatisfy { $0.flags.contains("requestOnly") })
        #expect(entries.first?.str("summary") == "k0" && entries.last?.str("summary") == "k1499")
    }

    @Test func timestampsAndSizes() throws {
        let h = try makeHarness()
        let t0: Int64 = 1_700_000_000_000_000_000
        let raw = h.runTCP(segments: [(c2s, command("INCR", "n")), (s2c, integer(7))],
                           timestampsNs: [t0, t0 + 2_000_000])
        let e = parseJSON(raw[0])
        #expect(e.int("requestSize") == command("INCR", "n").count && e.int("responseSize") == 4)
        #expect((e["elapsedTime"] as? NSNumber)?.doubleValue == 2)
    }
}
