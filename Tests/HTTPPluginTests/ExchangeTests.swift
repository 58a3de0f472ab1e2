import Foundation
import Host
import PluginAPI
import Testing

@Suite struct ExchangeTests {
    @Test func pipelinedRequestsMatchFIFO() throws {
        let reqs = request("GET", "/one") + request("POST", "/two", body: bytes("2")) + request("GET", "/three")
        let resps = response(200, "OK", body: bytes("first")) + response(404, "Not Found", body: bytes("second"))
            + response(500, "Internal Server Error", body: bytes("third"))
        let entries = try run([(c2s, reqs), (s2c, resps)])
        try #require(entries.count == 3)
        #expect(entries.map { $0.str("summary") ?? "" } == ["/one", "/two", "/three"])
        #expect(entries.map { $0.int("status") ?? 0 } == [200, 404, 500])
        #expect(entries.map { $0.response?.obj("content")?.str("text") ?? "" } == ["first", "second", "third"])
        #expect(entries.map { $0.int("index") ?? -1 } == [0, 1, 2])
    }

    @Test func interleavedKeepAlive() throws {
        var segs: [Segment] = []
        for i in 0..<5 {
            segs.append((c2s, request("GET", "/k\(i)")))
            segs.append((s2c, response(body: bytes("r\(i)"))))
        }
        let entries = try run(segs)
        #expect(entries.map { $0.str("summary") ?? "" } == (0..<5).map { "/k\($0)" })
        #expect(entries.map { $0.response?.obj("content")?.str("text") ?? "" } == (0..<5).map { "r\($0)" })
    }

    @Test func continue100() throws {
        let head = bytes("POST /upload HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n")
        let entries = try run([
            (c2s, head), (s2c, bytes("HTTP/1.1 100 Continue\r\n\r\n")), (c2s, bytes("hello world")),
            (s2c, response(200, "OK", body: bytes("stored"))),
        ])
        try #require(entries.count == 1)
        let e = entries[0]
        #expect(e.int("status") == 200)
        #expect(e.request?.obj("postData")?.str("text") == "hello world")
        let interim = try #require(e.arr("interimResponses"))
        #expect(interim.count == 1)
        #expect(interim[0].int("status") == 100)
        #expect(interim[0].str("statusText") == "Continue")
        #expect(e.response?.obj("content")?.str("text") == "stored")
    }

    @Test func earlyHints103() throws {
        let hints = bytes("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n")
        let entries = try run([(c2s, request()), (s2c, hints + response(body: bytes("page")))])
        try #require(entries.count == 1)
        let interim = try #require(entries[0].arr("interimResponses"))
        #expect(interim.first?.int("status") == 103)
        #expect(interim.first?.header("link") == "</style.css>; rel=preload; as=style")
        #expect(entries[0].int("status") == 200)
    }

    @Test func headAnd204And304HaveNoBody() throws {
        let reqs = request("HEAD", "/h") + request("GET", "/nc") + request("GET", "/nm") + request("GET", "/after")
        let resps = bytes("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
            + bytes("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n")
            + bytes("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n")
            + response(body: bytes("body!"))
        let entries = try run([(c2s, reqs), (s2c, resps)])
        try #require(entries.count == 4)
        #expect(entries.map { $0.int("status") ?? 0 } == [200, 204, 304, 200])
        #expect(entries[0].response?.obj("content")?.int("size") == 0)
        #expect(entries[3].response?.obj("content")?.str("text") == "body!")
        #expect(entries.allSatisfy { $0.flags.isEmpty })
    }

    @Test func connectTunnel() throws {
        let h = try makeHarness()
        var rng = SplitMix(state: 9)
        let tls = [0x16, 0x03, 0x01, 0x00, 0x20] + rng.bytes(200)
        let entries = h.runTCP(segments: [
            (c2s, bytes("CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n")),
            (s2c, bytes("HTTP/1.1 200 Connection Established\r\n\r\n")),
            (c2s, tls), (s2c, rng.bytes(500)), (c2s, rng.bytes(100)),
        ]).map(parseJSON)
        try #require(entries.count == 1)
        #expect(entries[0].bool("tunnel") == true)
        #expect(entries[0].request?.str("url") == "api.example:443")
        #expect(entries[0].flags.isEmpty)
        #expect(h.counters["host.violations"] == nil)
        #expect(h.counters["host.parse_errors"] == nil)
    }

    @Test func connectRefusedKeepsParsing() throws {
        let entries = try run([
            (c2s, bytes("CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n")),
            (s2c, response(407, "Proxy Authentication Required", body: bytes("auth"))),
            (c2s, request("GET", "/next")), (s2c, response()),
        ])
        #expect(entries.count == 2)
        #expect(entries.first?.bool("tunnel") == nil)
        #expect(entries.last?.str("summary") == "/next")
    }

    @Test func websocketUpgrade() throws {
        let h = try makeHarness()
        let req = request(
            "GET", "/chat",
            headers: [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Version", "13")])
        let resp = bytes(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        )
        let entries = h.runTCP(segments: [
            (c2s, req), (s2c, resp + [0x81, 0x05] + bytes("Hello")),
            (c2s, [0x81, 0x85, 1, 2, 3, 4, 0x49, 0x67, 0x6f, 0x68, 0x6e]),
            (c2s, bytes("GET /not-http HTTP/1.1\r\n\r\n")), (s2c, [0x88, 0x00]),
        ]).map(parseJSON)
        try #require(entries.count == 1)
        #expect(entries[0].str("upgrade") == "websocket")
        #expect(entries[0].int("status") == 101)
        #expect(entries[0].flags.isEmpty)
        #expect(h.counters["host.violations"] == nil)
    }

    @Test func h2cUpgrade() throws {
        let h = try makeHarness()
        let req = request("GET", "/", headers: [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")])
        let preface = bytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + [0, 0, 0, 4, 0, 0, 0, 0, 0]
        let entries = h.runTCP(segments: [
            (c2s, req), (s2c, bytes("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n") + [0, 0, 0, 4, 0, 0, 0, 0, 0]),
            (c2s, preface), (s2c, [0, 0, 0, 4, 1, 0, 0, 0, 0]),
        ]).map(parseJSON)
        try #require(entries.count == 1)
        #expect(entries[0].str("upgrade") == "h2c")
        #expect(h.counters["host.violations"] == nil)
    }

    @Test func h2cUpgradeDeclined() throws {
        let req = request("GET", "/a", headers: [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABk")])
        let entries = try run([(c2s, req), (s2c, response(body: bytes("plain"))), (c2s, request("GET", "/b")), (s2c, response())])
        #expect(entries.count == 2)
        #expect(entries[0].str("upgrade") == nil)
        #expect(entries[1].str("summary") == "/b")
    }

    @Test func unansweredAtClose() throws {
        let entries = try run([(c2s, request("GET", "/answered")), (s2c, response()), (c2s, request("GET", "/lost1") + request("DELETE", "/lost2"))])
        try #require(entries.count == 3)
        #expect(entries[0].flags.isEmpty)
        for e in entries[1...] {
            #expect(e.flags == ["requestOnly"])
            #expect(e.bool("unanswered") == true)
            #expect(e.response == nil)
            #expect(e.int("status") == nil)
        }
        #expect(entries[2].str("method") == "DELETE")
    }

    @Test func responseOnly() throws {
        let entries = try run([(s2c, response(200, "OK", body: bytes("orphan")))])
        try #require(entries.count == 1)
        #expect(entries[0].flags == ["responseOnly"])
        #expect(entries[0].request == nil)
        #expect(entries[0].response?.obj("content")?.str("text") == "orphan")
        #expect(entries[0].int("status") == 200)
    }

    @Test func unansweredTimesOutOnTick() throws {
        let d = try Driver()
        d.send(c2s, request("GET", "/slow"), ts: baseTs)
        d.send(c2s, request("GET", "/slower"), ts: baseTs + 30_000_000_000)
        d.tick(baseTs + 59_000_000_000)
        #expect(d.entries.isEmpty)
        d.tick(baseTs + 61_000_000_000)
        var entries = d.entries
        try #require(entries.count == 1)
        #expect(entries[0].str("summary") == "/slow")
        #expect(Set(entries[0].flags) == ["requestOnly", "timedOut"])
        d.send(s2c, response(body: bytes("late")), ts: baseTs + 62_000_000_000)
        entries = d.entries
        try #require(entries.count == 2)
        #expect(entries[1].str("summary") == "/slower")
        #expect(entries[1].flags.isEmpty)
        d.close()
        #expect(d.entries.count == 2)
    }

    @Test func pendingRequestsAreBounded() throws {
        let d = try Driver()
        var all: [UInt8] = []
        for i in 0..<1100 { all += request("GET", "/p\(i)") }
        d.send(c2s, all)
        let early = d.entries
        #expect(early.count == 1100 - 1024)
        #expect(early.first?.str("summary") == "/p0")
        #expect(early.allSatisfy { $0.flags == ["requestOnly"] })
        d.send(s2c, response(body: bytes("for p76")))
        #expect(d.entries.last?.str("summary") == "/p76")
        d.close()
        #expect(d.entries.count == 1100)
    }

    @Test func pendingBytesAreBounded() throws {
        // 40 unanswered uploads of 64 KiB: at most ~1 MiB of them is kept.
        let d = try Driver()
        for i in 0..<40 { d.send(c2s, request("POST", "/u\(i)", body: textBody(64 << 10))) }
        let early = d.entries
        #expect(early.count >= 24)
        #expect(early.first?.str("summary") == "/u0")
        #expect(early.allSatisfy { $0.flags == ["requestOnly"] })
        d.close()
        #expect(d.entries.count == 40)
    }

    @Test func idleStreamStillDecodesAfterTrim() throws {
        let d = try Driver()
        let gz = compress(textBody(2000), .gzip)
        d.send(c2s, request("GET", "/1"), ts: baseTs)
        d.send(s2c, response(headers: [("Content-Encoding", "gzip")], body: gz), ts: baseTs)
        d.tick(baseTs + 10_000_000_000)  // idle: buffers and zlib state are given back
        d.send(c2s, request("GET", "/2"), ts: baseTs + 11_000_000_000)
        d.send(s2c, response(headers: [("Content-Encoding", "gzip")], body: gz), ts: baseTs + 11_000_000_000)
        d.close()
        let entries = d.entries
        try #require(entries.count == 2)
        for e in entries {
            #expect(e.response?.obj("content")?.str("text") == String(decoding: textBody(2000), as: UTF8.self))
        }
    }

    @Test func gapInsideBodyKeepsSync() throws {
        let d = try Driver()
        let body = textBody(3000)
        let resp = response(headers: [("Content-Type", "text/plain")], body: body)
        let headLen = resp.count - body.count
        d.send(c2s, request("GET", "/a") + request("GET", "/b"))
        d.send(s2c, Array(resp[0..<(headLen + 1000)]))
        d.gap(s2c, 500)
        d.send(s2c, Array(resp[(headLen + 1500)...]) + response(body: bytes("second")))
        d.close()
        let entries = d.entries
        try #require(entries.count == 2)
        #expect(entries[0].flags.contains("afterGap"))
        #expect(entries[0].response?.obj("content")?.int("size") == 3000)
        #expect(entries[0].response?.int("bodySize") == 3000)
        #expect(entries[1].str("summary") == "/b")
        #expect(entries[1].response?.obj("content")?.str("text") == "second")
    }

    @Test func gapAcrossMessagesResyncs() throws {
        let d = try Driver()
        let r1 = request("POST", "/one", body: textBody(200))
        let r2 = request("GET", "/two")
        let r3 = request("GET", "/three")
        d.send(c2s, Array(r1[0..<(r1.count - 150)]))
        d.gap(c2s, 150 + 10)  // the rest of r1's body and the start of r2
        d.send(c2s, Array(r2[10...]) + r3)
        d.send(s2c, response(body: bytes("x")) + response(body: bytes("y")))
        d.close()
        let entries = d.entries
        try #require(entries.count == 2)
        #expect(entries.map { $0.str("summary") ?? "" } == ["/one", "/three"])
        #expect(Set(entries[0].flags) == ["afterGap", "truncated"])
        #expect(entries[0].request?.obj("postData")?.bool("truncated") == true)
        #expect(entries[1].flags.contains("afterGap"))
    }

    @Test func gapInHeadDropsThePartialMessage() throws {
        let d = try Driver()
        let r1 = request("GET", "/one", headers: [("X-Long", String(repeating: "v", count: 100))])
        d.send(c2s, Array(r1[0..<60]))
        d.gap(c2s, 20)
        d.send(c2s, Array(r1[80...]) + request("GET", "/two"))
        d.send(s2c, response())
        d.close()
        let entries = d.entries
        try #require(entries.count == 1)
        #expect(entries[0].str("summary") == "/two")
        #expect(entries[0].flags == ["afterGap"])
    }

    @Test func midstreamPickupSkipsToNextMessage() throws {
        let d = try Driver(midstream: true)
        // The server direction starts inside a body; the client with a fresh request.
        d.send(s2c, bytes("tail of an earlier body\r\nmore\r\n"))
        d.send(c2s, request("GET", "/fresh"))
        d.send(s2c, response(body: bytes("fresh")))
        d.close()
        let entries = d.entries
        try #require(entries.count == 1)
        #expect(entries[0].str("summary") == "/fresh")
        #expect(entries[0].response?.obj("content")?.str("text") == "fresh")
        #expect(d.counters["host.violations"] == nil)
    }

    @Test func resetMidBodyIsTruncated() throws {
        let resp = response(body: textBody(1000))
        let entries = try run([(c2s, request()), (s2c, Array(resp[0..<(resp.count - 400)]))], closeReason: KS_CLOSE_RESET, deliverEOF: false)
        try #require(entries.count == 1)
        #expect(entries[0].flags.contains("truncated"))
        #expect(entries[0].response?.str("error") != nil)
    }
}
