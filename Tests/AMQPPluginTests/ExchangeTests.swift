import Foundation
import PluginAPI
import Testing

@testable import Host

@Suite struct ExchangeTests {
    @Test func handshakeEntries() throws {
        let e = try run(handshake())
        #expect(e.map(\.method) == ["connection.start", "connection.tune", "connection.open", "channel.open"])
        let start = e[0]
        #expect(start.request?.str("protocolHeader") == "AMQP 0-9-1")
        #expect(start.request?.args?.obj("serverProperties")?.str("product") == "RabbitMQ")
        #expect(start.request?.args?.obj("serverProperties")?.obj("capabilities")?["publisher_confirms"] as? Bool == true)
        #expect(start.response?.method == "connection.start-ok")
        #expect(start.response?.args?.str("response") == "[redacted]")
        #expect(start.response?.args?.str("mechanism") == "PLAIN")
        #expect(e[1].response?.args?.int("frameMax") == 131072)
        #expect(e[2].str("summary") == "/")
        #expect(e.allSatisfy { $0.flags.isEmpty })
    }

    @Test func declarePublishConsume() throws {
        var segs = handshake()
        segs.append((c2s, method(1, 50, 10) { e in
            e.u16(0); e.shortstr("jobs"); e.bits(false, true, false, false, false)
            e.table([("x-max-length", .i64(1000)), ("x-queue-type", .str("quorum"))])
        }))
        segs.append((s2c, method(1, 50, 11) { e in e.shortstr("jobs"); e.u32(3); e.u32(1) }))
        segs.append((c2s, publish(1, exchange: "", key: "jobs", body: Array("hello".utf8),
                                  headers: [("n", .i32(-5)), ("ok", .bool(true)), ("d", .decimal(2, 12345))])))
        segs.append((c2s, method(1, 60, 20) { e in
            e.u16(0); e.shortstr("jobs"); e.shortstr(""); e.bits(false, false, false, false); e.table([])
        }))
        segs.append((s2c, method(1, 60, 21) { e in e.shortstr("ctag-1") }))
        segs.append((s2c, heartbeat + deliver(1, tag: "ctag-1", deliveryTag: 7, exchange: "", key: "jobs", body: [0, 1, 2, 0xFF])))
        segs.append((c2s, method(1, 60, 80) { e in e.u64(7); e.bits(false) } + heartbeat))
        segs.append((c2s, method(1, 20, 40) { e in e.u16(200); e.shortstr("bye"); e.u16(0); e.u16(0) }))
        segs.append((s2c, method(1, 20, 41)))
        let h = try makeHarness()
        let e = h.runTCP(segments: segs).map(parseJSON)
        #expect(e.map(\.method) == ["connection.start", "connection.tune", "connection.open", "channel.open",
                                    "queue.declare", "basic.publish", "basic.consume", "basic.deliver", "basic.ack",
                                    "channel.close"])
        let declare = e[4]
        #expect(declare.str("summary") == "jobs")
        #expect(declare.request?.args?.bool("durable") == true)
        #expect(declare.request?.args?.obj("arguments")?.int("x-max-length") == 1000)
        #expect(declare.response?.args?.int("messageCount") == 3)
        let pub = e[5]
        #expect(pub.response == nil && pub.flags.isEmpty)
        #expect(pub.request?.str("body") == "hello")
        #expect(pub.request?.int("bodySize") == 5)
        #expect(pub.request?.obj("properties")?.str("contentType") == "text/plain")
        #expect(pub.request?.obj("properties")?.int("deliveryMode") == 2)
        #expect(pub.request?.obj("properties")?.obj("headers")?.int("n") == -5)
        #expect(pub.request?.obj("properties")?.obj("headers")?["ok"] as? Bool == true)
        #expect(pub.request?.obj("properties")?.obj("headers")?.double("d") == 123.45)
        #expect(pub.str("summary") == "jobs")
        let del = e[7]
        #expect(del.request == nil)
        #expect(del.response?.str("body") == "AAEC/w==" && del.response?.str("bodyEncoding") == "base64")
        #expect(del.response?.args?.int("deliveryTag") == 7)
        #expect(e[9].response?.method == "channel.close-ok" && e[9].int("status") == 200 && e[9].str("statusText") == "bye")
        #expect(h.counters["amqp.heartbeats"] == 2)
    }

    @Test func getOkWithContentAndGetEmpty() throws {
        var segs = handshake()
        segs.append((c2s, method(1, 60, 70) { e in e.u16(0); e.shortstr("q"); e.bits(true) }))
        segs.append((s2c, method(1, 60, 71) { e in e.u64(1); e.bits(false); e.shortstr("ex"); e.shortstr("rk"); e.u32(0) }
            + contentHeader(1, bodySize: 6) + bodyFrame(1, Array("ab".utf8)) + bodyFrame(1, Array("cdef".utf8))))
        segs.append((c2s, method(1, 60, 70) { e in e.u16(0); e.shortstr("q"); e.bits(true) }))
        segs.append((s2c, method(1, 60, 72) { e in e.shortstr("") }))
        let e = try run(segs).suffix(2)
        #expect(e.map(\.method) == ["basic.get", "basic.get"])
        #expect(e.first?.response?.method == "basic.get-ok" && e.first?.response?.str("body") == "abcdef")
        #expect(e.last?.response?.method == "basic.get-empty" && e.last?.str("statusText") == "empty")
    }

    @Test func interleavedChannelsAndUnanswered() throws {
        var segs = handshake()
        segs.append((c2s, method(2, 50, 10) { e in e.u16(0); e.shortstr("a"); e.bits(); e.table([]) }
            + method(3, 50, 10) { e in e.u16(0); e.shortstr("b"); e.bits(); e.table([]) }
            + method(3, 90, 10)))
        segs.append((s2c, method(3, 50, 11) { e in e.shortstr("b"); e.u32(0); e.u32(0) }
            + method(2, 50, 11) { e in e.shortstr("a"); e.u32(0); e.u32(0) }))
        // A publish whose body frames interleave with another channel's publish.
        let p1 = publish(2, exchange: "x", key: "k1", body: Array("one".utf8))
        let p2 = publish(3, exchange: "x", key: "k2", body: Array("two".utf8))
        segs.append((c2s, Array(p1.prefix(p1.count - 11)) + p2 + Array(p1.suffix(11))))
        let e = try run(segs).dropFirst(4)
        let names = e.map { "\($0.method!):\($0.str("summary") ?? "")" }
        #expect(names == ["queue.declare:b", "queue.declare:a", "basic.publish:x/k2", "basic.publish:x/k1", "tx.select:"])
        #expect(e.last?.flags == ["requestOnly"])
    }

    @Test func closeAnswersPendingAndNoWait() throws {
        var segs = handshake()
        segs.append((c2s, method(1, 40, 10) { e in
            e.u16(0); e.shortstr("ex"); e.shortstr("direct"); e.bits(false, true, false, false, true); e.table([])
        }))
        segs.append((c2s, method(1, 50, 10) { e in e.u16(0); e.shortstr("q"); e.bits(true); e.table([]) }))
        segs.append((s2c, method(1, 20, 40) { e in e.u16(404); e.shortstr("NOT_FOUND - no queue 'q'"); e.u16(50); e.u16(10) }))
        segs.append((c2s, method(1, 20, 41)))
        let e = try run(segs).dropFirst(4)
        #expect(e.map(\.method) == ["exchange.declare", "queue.declare", "channel.close"])
        #expect(e.first?.response == nil)
        let close = e.last!
        #expect(close.int("status") == 404 && close.str("statusText") == "NOT_FOUND - no queue 'q'")
        #expect(close.response?.method == "channel.close-ok")
    }

    @Test func allFieldTypes() throws {
        var segs = handshake()
        let t: [(String, TV)] = [
            ("t", .bool(false)), ("b", .i8(-1)), ("B", .u8(255)), ("s", .i16(-2)), ("u", .u16(65535)),
            ("I", .i32(-3)), ("i", .u32(4_000_000_000)), ("l", .i64(-4)), ("f", .float(1.5)), ("d", .double(2.25)),
            ("D", .decimal(1, -15)), ("S", .str("x\"y")), ("x", .bytes([1, 2])), ("T", .timestamp(1_700_000_000)),
            ("V", .void), ("A", .array([.i32(1), .str("two"), .table([("k", .bool(true))])])),
            ("F", .table([("inner", .table([("deep", .i8(1))]))])),
        ]
        segs.append((c2s, method(1, 50, 20) { e in
            e.u16(0); e.shortstr("q"); e.shortstr("amq.headers"); e.shortstr(""); e.bits(false); e.table(t)
        }))
        segs.append((s2c, method(1, 50, 21)))
        let raw = try makeHarness().runTCP(segments: segs).last ?? ""
        let e = parseJSON(raw)
        let a = e.request?.args?.obj("arguments") ?? [:]
        // JSON booleans, not 0/1 or strings.
        #expect(raw.contains(#""t":false"#) && raw.contains(#"{"k":true}"#))
        // Types are kept: numbers are JSON numbers, booleans booleans, tables objects.
        #expect(a["t"] as? Bool == false)
        #expect(a.int("b") == -1 && a.int("B") == 255 && a.int("s") == -2 && a.int("u") == 65535)
        #expect(a.int("I") == -3 && a.int("l") == -4 && (a["i"] as? NSNumber)?.int64Value == 4_000_000_000)
        #expect(a.double("f") == 1.5 && a.double("d") == 2.25 && a.double("D") == -1.5 && a.str("S") == "x\"y")
        #expect(a.str("x") == "AQI=" && a.int("T") == 1_700_000_000 && a["V"] is NSNull)
        let array = a["A"] as? [Any] ?? []
        #expect(array.count == 3 && (array.first as? NSNumber)?.intValue == 1 && array.dropFirst().first as? String == "two")
        #expect((array.last as? JSON)?["k"] as? Bool == true)
        #expect(a.obj("F")?.obj("inner")?.int("deep") == 1)
        // Numbers are not strings any more.
        #expect(a.str("b") == nil && a.str("T") == nil)
        #expect(e.flags.isEmpty)
    }

    @Test func probe() throws {
        let h = try makeHarness()
        #expect(h.probe(protocolHeader).confidence == 100)
        #expect(h.probe(Array(protocolHeader.prefix(5))).verdict == KS_PROBE_MAYBE)
        #expect(h.probe(method(1, 60, 80) { e in e.u64(7); e.bits(false) }).confidence == 75)
        #expect(h.probe(heartbeat).confidence == 75)
        #expect(h.probe(Array("GET / HTTP/1.1\r\n\r\n".utf8)).verdict == KS_PROBE_NO)
        var bad = method(1, 60, 80) { e in e.u64(7); e.bits(false) }
        bad[bad.count - 1] = 0
        #expect(h.probe(bad).verdict == KS_PROBE_NO)
    }
}
