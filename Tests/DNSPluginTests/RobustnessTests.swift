// Hostile and broken messages: each gives an entry flagged malformed with an
// error, never a crash, a hang or an unbounded allocation. Also probes.

import Foundation
import PluginAPI
import Testing

/// A response to `query(1, "example.com")` whose body after the question is `tail`,
/// with the header counts given.
private func rawResponse(an: Int, ns: Int = 0, ar: Int = 0, tail: [UInt8], qname: [UInt8]? = nil) -> [UInt8] {
    u16(1) + u16(0x8180) + u16(1) + u16(an) + u16(ns) + u16(ar) + (qname ?? wireName("example.com")) + u16(1) + u16(1)
        + tail
}

/// Runs the response alone over UDP and returns its entry.
private func lone(_ m: [UInt8]) throws -> JSON {
    let entries = try runUDP([(s2c, m)])
    try #require(entries.count == 1)
    return entries[0]
}

private func expectMalformed(_ e: JSON, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(e.flags.contains("malformed"), "flags \(e.flags)", sourceLocation: sourceLocation)
    let error = (e.response ?? e.request)?.str("error") ?? ""
    #expect(error.contains(text), "error was '\(error)'", sourceLocation: sourceLocation)
}

@Suite struct RobustnessTests {
    @Test func pointerLoopToItself() throws {
        // The answer's name is a pointer to itself (offset 29).
        let m = rawResponse(an: 1, tail: rr([0xC0, 29], 1, [1, 2, 3, 4]))
        expectMalformed(try lone(m), "compression pointer loop")
    }

    @Test func pointerLoopBetweenTwoNames() throws {
        // Question name "a" + pointer to the answer's name, which points back to the question.
        let q: [UInt8] = [1, 0x61, 0xC0, 20]
        let m = rawResponse(an: 1, tail: rr([0xC0, 12], 1, [1, 2, 3, 4]), qname: q)
        expectMalformed(try lone(m), "compression pointer loop")
    }

    @Test func pointerOutOfRange() throws {
        expectMalformed(try lone(rawResponse(an: 1, tail: rr([0xFF, 0xFF], 1, [1, 2, 3, 4]))), "out of the message")
    }

    @Test func longLabelAndLongName() throws {
        expectMalformed(try lone(rawResponse(an: 1, tail: [0x40] + [UInt8](repeating: 0x61, count: 64) + [0])),
                        "label longer than 63")
        var long: [UInt8] = []
        for _ in 0..<5 { long += [63] + [UInt8](repeating: 0x62, count: 63) }
        expectMalformed(try lone(rawResponse(an: 1, tail: rr(long + [0], 1, [1, 2, 3, 4]))), "longer than 255")
    }

    @Test func rdlengthBeyondMessage() throws {
        var m = rawResponse(an: 1, tail: rr(toQName, 1, [1, 2, 3, 4]))
        m[m.count - 6] = 0xFF  // rdlength high byte
        let e = try lone(m)
        expectMalformed(e, "runs past the end of the message")
        #expect(e.response?.arr("questions")?.first?.str("name") == "example.com")
    }

    @Test func countsBeyondMessage() throws {
        let e = try lone(rawResponse(an: 65535, ns: 65535, ar: 65535, tail: rr(toQName, 1, [1, 2, 3, 4])))
        expectMalformed(e, "answer count 65535 exceeds the message")
        #expect(e.response?.arr("answers")?.count == 1)
        #expect(e.response?.obj("counts")?.int("answers") == 65535)
    }

    @Test func wrongRDataLengths() throws {
        let e = try lone(rawResponse(an: 2, tail: rr(toQName, 1, [1, 2, 3]) + rr(toQName, 1, [1, 2, 3, 4])))
        expectMalformed(e, "expected 4")
        #expect(e.response?.arr("answers")?.count == 2)
        #expect(e.response?.arr("answers")?.last?.str("address") == "1.2.3.4")
        expectMalformed(try lone(rawResponse(an: 1, tail: rr(toQName, 16, [9, 0x61]))), "character-string")
    }

    @Test func shortMessages() throws {
        for n in 0..<12 {
            let entries = try runUDP([(c2s, [UInt8](repeating: 0x11, count: n))])
            #expect(entries.count == 1)
            #expect(entries.first?.flags.contains("malformed") == true)
            #expect(entries.first?.flags.contains("requestOnly") == true)
        }
    }

    @Test func everyTruncationOfAResponse() throws {
        let full = response(
            7, "example.com", .mx,
            answers: [rr(toQName, 15, u16(10) + [4] + Array("mail".utf8) + [0xC0, 0x0C])],
            additionals: [rr([0], 41, cls: 1232, u16(10) + u16(8) + [1, 2, 3, 4, 5, 6, 7, 8])])
        let h = try makeHarness()
        for n in 0..<full.count {
            let entries = h.runUDP(datagrams: [(c2s, query(7, "example.com", .mx)), (s2c, Array(full.prefix(n)))])
                .map(parseJSON)
            #expect(!entries.isEmpty)
            #expect(entries.contains { $0.flags.contains("malformed") }, "cut at \(n)")
        }
    }

    @Test func randomGarbageAndMutations() throws {
        let h = try makeHarness()
        var rng = SplitMix(state: 42)
        for _ in 0..<400 {
            let n = Int(rng.next() % 300)
            _ = h.runUDP(datagrams: [(c2s, rng.bytes(n)), (s2c, rng.bytes(n))])
            _ = h.runTCP(segments: [(c2s, rng.bytes(n)), (s2c, rng.bytes(n))])
        }
        let seed = response(
            0x55, "example.com", .https,
            answers: [rr(toQName, 65, u16(1) + [0] + u16(1) + u16(3) + [2] + Array("h2".utf8))],
            authorities: [rr(toQName, 6, wireName("ns.example.com") + [0xC0, 0x0C] + [UInt8](repeating: 1, count: 20))])
        for _ in 0..<2000 {
            var m = seed
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                m[Int(rng.next() % UInt64(m.count))] = UInt8(truncatingIfNeeded: rng.next())
            }
            let entries = h.runUDP(datagrams: [(s2c, m)]).map(parseJSON)
            #expect(entries.count == 1)
            let framed = tcp(m)
            _ = h.runTCP(segments: [(s2c, framed)])
        }
    }

    @Test func compressionBombStaysBounded() throws {
        // 3000 answers whose names each point at a 250-byte name: bounded by the
        // per-section cap and flagged truncated.
        var long: [UInt8] = []
        for _ in 0..<5 { long += [49] + [UInt8](repeating: 0x63, count: 49) }
        let first = rr(long + [0], 1, [1, 2, 3, 4])
        let pointerTo = 12 + wireName("example.com").count + 4
        var answers = [first]
        for _ in 0..<3000 { answers.append(rr([0xC0 | UInt8(pointerTo >> 8), UInt8(pointerTo & 0xFF)], 1, [1, 2, 3, 4])) }
        let m = response(1, "example.com", answers: answers)
        #expect(m.count < 65536)
        let e = try lone(m)
        #expect(e.flags.contains("truncated"))
        #expect(!e.flags.contains("malformed"))
        #expect(e.response?.arr("answers")?.count == 256)
        #expect(e.str("summary") == "A example.com -> NOERROR 3001 answers")
    }

    @Test func hostileOverTCPKeepsTheStreamInStep() throws {
        // A looping message between two good ones: the framing keeps the stream in step.
        let bad = rawResponse(an: 1, tail: rr([0xC0, 29], 1, [1, 2, 3, 4]))
        let entries = try runTCP([
            (c2s, tcp(query(1, "example.com")) + tcp(query(2, "example.net"))),
            (s2c, tcp(bad) + tcp(response(2, "example.net"))),
        ])
        try #require(entries.count == 2)
        #expect(entries[0].flags == ["malformed"])
        #expect(entries[1].flags.isEmpty)
        #expect(entries[1].str("summary") == "A example.net -> NOERROR 0 answers")
    }

    // MARK: Probe

    @Test func probe() throws {
        let h = try makeHarness()
        let q = query(1, "example.com")
        var r = h.probe(q, layer4: KS_L4_UDP)
        #expect(r.verdict == KS_PROBE_YES && r.confidence == 75 && !r.reversed)
        r = h.probe(response(1, "example.com"), layer4: KS_L4_UDP)
        #expect(r.verdict == KS_PROBE_YES && r.confidence == 75 && r.reversed)
        r = h.probe(tcp(q), layer4: KS_L4_TCP)
        #expect(r.verdict == KS_PROBE_YES && r.confidence == 75)
        r = h.probe(Array(tcp(q).prefix(8)), layer4: KS_L4_TCP)
        #expect(r.verdict == KS_PROBE_MAYBE)
        r = h.probe(Array(tcp(q).prefix(20)), layer4: KS_L4_TCP)
        #expect(r.verdict == KS_PROBE_MAYBE)
        // Not DNS on a non-DNS port (the harness flows use port 80).
        #expect(h.probe(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), layer4: KS_L4_UDP).verdict == KS_PROBE_NO)
        #expect(h.probe(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), layer4: KS_L4_TCP).verdict == KS_PROBE_NO)
        #expect(h.probe([UInt8](repeating: 0xFF, count: 40), layer4: KS_L4_UDP).verdict == KS_PROBE_NO)
    }
}
