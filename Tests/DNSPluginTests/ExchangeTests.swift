// Matching queries to responses over UDP pseudo-flows and TCP, timeouts,
// lone messages, DNS over TCP split at every byte.

import Foundation
import PluginAPI
import Testing

private let twoAnswers = response(
    0x1234, "example.com",
    answers: [rr(toQName, 1, [93, 184, 216, 34]), rr(toQName, 1, [93, 184, 216, 35])])

@Suite struct ExchangeTests {
    @Test func udpPair() throws {
        let entries = try runUDP([(c2s, query(0x1234, "example.com")), (s2c, twoAnswers)])
        try #require(entries.count == 1)
        let e = entries[0]
        #expect(e.str("method") == "A")
        #expect(e.str("summary") == "A example.com -> NOERROR 2 answers")
        #expect(e.str("statusText") == "NOERROR")
        #expect(e.flags.isEmpty)
        #expect(e.int("requestSize") == query(0x1234, "example.com").count)
        #expect(e.int("responseSize") == twoAnswers.count)
        #expect(e.obj("protocol")?.str("name") == "dns")
        #expect(e.obj("protocol")?.str("abbr") == "DNS")
        let req = try #require(e.request)
        #expect(req.int("id") == 0x1234)
        #expect(req.str("opcode") == "QUERY")
        #expect(req.obj("flags")?.bool("rd") == true)
        #expect(req.obj("flags")?.bool("qr") == false)
        #expect(req.arr("questions")?.first?.str("name") == "example.com")
        #expect(req.arr("questions")?.first?.str("type") == "A")
        #expect(req.arr("questions")?.first?.str("class") == "IN")
        let res = try #require(e.response)
        #expect(res.str("rcode") == "NOERROR")
        #expect(res.obj("flags")?.bool("ra") == true)
        #expect(res.arr("answers")?.map { $0.str("address") ?? "" } == ["93.184.216.34", "93.184.216.35"])
        #expect(res.arr("authorities")?.isEmpty == true)
    }

    @Test func outOfOrderByID() throws {
        let entries = try runUDP([
            (c2s, query(1, "a.example")), (c2s, query(2, "b.example", .aaaa)),
            (s2c, response(2, "b.example", .aaaa)), (s2c, response(1, "a.example", rcode: 3)),
        ])
        #expect(entries.map { $0.str("summary") ?? "" }
            == ["AAAA b.example -> NOERROR 0 answers", "A a.example -> NXDOMAIN 0 answers"])
        #expect(entries.allSatisfy { $0.flags.isEmpty })
    }

    @Test func sameIDDifferentQuestion() throws {
        // Two queries share an id (different names): the question decides.
        let entries = try runUDP([
            (c2s, query(5, "one.example")), (c2s, query(5, "two.example")),
            (s2c, response(5, "two.example")), (s2c, response(5, "ONE.example")),
        ])
        #expect(entries.map { $0.request?.arr("questions")?.first?.str("name") ?? "" } == ["two.example", "one.example"])
    }

    @Test func loneMessages() throws {
        let entries = try runUDP([(s2c, response(9, "orphan.example")), (c2s, query(10, "unanswered.example"))])
        try #require(entries.count == 2)
        #expect(entries[0].flags == ["responseOnly"])
        #expect(entries[0].str("summary") == "A orphan.example -> NOERROR 0 answers")
        #expect(entries[0].request == nil)
        #expect(entries[1].flags == ["requestOnly"])
        #expect(entries[1].str("summary") == "unanswered.example")
        #expect(entries[1].bool("unanswered") == true)
    }

    @Test func tickTimesOutQueries() throws {
        let d = try UDPDriver()
        d.send(c2s, query(1, "slow.example"), ts: baseTs)
        d.send(c2s, query(2, "fast.example"), ts: baseTs + 4_000_000_000)
        d.tick(baseTs + 4_500_000_000)
        #expect(d.entries.isEmpty)
        d.tick(baseTs + 5_000_000_000)
        #expect(d.entries.count == 1)
        #expect(d.entries.first?.flags.contains("timedOut") == true)
        #expect(d.entries.first?.str("summary") == "slow.example")
        d.send(s2c, response(2, "fast.example"), ts: baseTs + 4_100_000_000)
        d.close()
        #expect(d.entries.count == 2)
        #expect(d.entries.last?.flags.isEmpty == true)
        #expect(d.entries.last?.int("elapsedTime") == 100)
    }

    @Test func pendingIsBounded() throws {
        var datagrams: [Segment] = []
        for i in 0..<1100 { datagrams.append((c2s, query(i, "q\(i).example"))) }
        let entries = try runUDP(datagrams)
        #expect(entries.count == 1100)
        #expect(entries.allSatisfy { $0.flags == ["requestOnly"] })
    }

    // MARK: TCP

    static let conversation: [UInt8] = tcp(query(0x1234, "example.com")) + tcp(query(0x99, "example.org", .mx))

    @Test func tcpSeveralMessagesPerSegment() throws {
        let mx = response(0x99, "example.org", .mx, answers: [rr(toQName, 15, u16(5) + wireName("mx.example.org"))])
        let entries = try runTCP([(c2s, Self.conversation), (s2c, tcp(twoAnswers) + tcp(mx))])
        #expect(entries.map { $0.str("summary") ?? "" }
            == ["A example.com -> NOERROR 2 answers", "MX example.org -> NOERROR 1 answer"])
        #expect(entries.first?.int("requestSize") == query(0x1234, "example.com").count + 2)
    }

    @Test func tcpSplitAtEveryByte() throws {
        let h = try makeHarness()
        let mx = response(0x99, "example.org", .mx, answers: [rr(toQName, 15, u16(5) + wireName("mx.example.org"))])
        let client = Self.conversation
        let server = tcp(twoAnswers) + tcp(mx)
        let ts = [Int64](repeating: baseTs, count: 4)
        let whole = normalized(h.runTCP(segments: [(c2s, client), (s2c, server)], timestampsNs: Array(ts.prefix(2))))
        #expect(whole.count == 2)
        for i in 1..<client.count {
            let got = normalized(h.runTCP(
                segments: [(c2s, Array(client[..<i])), (c2s, Array(client[i...])), (s2c, server)], timestampsNs: ts))
            #expect(got == whole, "client split at \(i)")
        }
        for i in 1..<server.count {
            let got = normalized(h.runTCP(
                segments: [(c2s, client), (s2c, Array(server[..<i])), (s2c, Array(server[i...]))], timestampsNs: ts))
            #expect(got == whole, "server split at \(i)")
        }
        // Byte by byte.
        let bytewise = client.map { (c2s, [$0]) } + server.map { (s2c, [$0]) }
        let got = normalized(h.runTCP(segments: bytewise,
                                      timestampsNs: [Int64](repeating: baseTs, count: bytewise.count)))
        #expect(got == whole)
        #expect(h.counters.filter { $0.key.hasPrefix("host.") && $0.key.contains("error") && $0.value > 0 }.isEmpty,
                "\(h.counters)")
    }

    @Test func tcpCutAtEndOfStream() throws {
        let q = tcp(query(0x4242, "cut.example"))
        let entries = try runTCP([(c2s, Array(q.prefix(q.count - 3)))])
        try #require(entries.count == 1)
        #expect(entries[0].flags.contains("malformed"))
        #expect(entries[0].flags.contains("truncated"))
        #expect(entries[0].request?.int("id") == 0x4242)
        #expect(entries[0].request?.str("error")?.contains("cut by the end of the stream") == true)
    }

    @Test func tcpZeroLengthIsSkipped() throws {
        let entries = try runTCP([(c2s, [0, 0] + tcp(query(1, "x.example"))), (s2c, tcp(response(1, "x.example")))])
        #expect(entries.count == 1)
        #expect(entries.first?.flags.isEmpty == true)
    }
}
