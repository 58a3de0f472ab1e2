import Foundation
import PluginAPI
import Testing

@testable import Host

/// A conversation used by the split, truncation and mutation tests.
func sampleConversation() -> [Segment] {
    let batch = recordBatch(count: 2, payload: recordsBytes([
        TestRecord(key: "k", value: "v", headers: [("h", "x")]), TestRecord(key: "k2", value: nil),
    ]))
    let apiReq = request(key: 18, version: 3, correlation: 1, flexible: true) { e in
        e.str("librdkafka"); e.str("2.0"); e.tags()
    }
    let apiResp = response(correlation: 1, flexible: true, taggedHeader: false) { e in
        e.i16(0); e.count(1); e.i16(0); e.i16(0); e.i16(9); e.tags(); e.i32(0); e.tags()
    }
    return [
        (c2s, apiReq), (s2c, apiResp),
        (c2s, ExchangeTests.produce(version: 9, correlation: 2, batch: batch)
            + ExchangeTests.produce(version: 7, correlation: 3, batch: batch)),
        (s2c, ExchangeTests.produceResponse(version: 9, correlation: 2)
            + ExchangeTests.produceResponse(version: 7, correlation: 3, error: 6)),
    ]
}

@Suite struct RobustnessTests {
    /// Each direction's bytes cut at every offset give the same entries as whole messages.
    @Test func splitAtEveryByte() throws {
        let segments = sampleConversation()
        let h = try makeHarness()
        let whole = normalized(h.runTCP(segments: segments))
        #expect(whole.count == 3)
        for (i, (dir, data)) in segments.enumerated() {
            for cut in 1..<data.count {
                var s = segments
                s.remove(at: i)
                s.insert((dir, Array(data[cut...])), at: i)
                s.insert((dir, Array(data[..<cut])), at: i)
                let got = normalized(h.runTCP(segments: s))
                #expect(got == whole, "segment \(i) cut at \(cut)")
                if got != whole { return }
            }
        }
    }

    /// One byte per segment.
    @Test func byteByByte() throws {
        let segments = sampleConversation()
        let h = try makeHarness()
        let whole = normalized(h.runTCP(segments: segments))
        let bytewise = segments.flatMap { d, data in data.map { (d, [$0]) } }
        #expect(normalized(h.runTCP(segments: bytewise)) == whole)
    }

    @Test func absurdSizesAreFlaggedEntries() throws {
        for size: Int32 in [-1, Int32.min, 0, 3, 200 << 20, Int32.max] {
            let bad = withUnsafeBytes(of: size.bigEndian, Array.init) + [0, 18, 0, 3, 0, 0, 0, 1]
            let entries = try run([(c2s, bad), (s2c, withUnsafeBytes(of: size.bigEndian, Array.init) + [1, 2, 3, 4])])
            #expect(entries.count == 2, "size \(size)")
            #expect(entries.allSatisfy { $0.flags.contains("malformed") }, "size \(size)")
        }
    }

    /// A 5 MiB message: the first MiB is parsed, the rest skipped, and the next message still decoded.
    @Test func hugeMessageIsTruncatedAndSkipped() throws {
        let big = request(key: 3, version: 1, correlation: 1) { e in
            e.count(1); e.str("t"); e.b += [UInt8](repeating: 0x41, count: 5 << 20)
        }
        let next = request(key: 12, version: 0, correlation: 2) { e in e.str("g"); e.i32(1); e.str("m") }
        var segs: [Segment] = []
        var i = 0
        while i < big.count { segs.append((c2s, Array(big[i..<min(big.count, i + 65536)]))); i += 65536 }
        segs.append((c2s, next))
        segs.append((s2c, response(correlation: 2) { e in e.i16(0) }))
        let entries = try run(segs)
        try #require(entries.count == 2)
        let hb = try #require(entries.first { $0.method == "Heartbeat" })
        #expect(hb.flags.isEmpty)
        let md = try #require(entries.first { $0.method == "Metadata" })
        #expect(md.flags.contains("truncated"))
        #expect(md.str("summary") == "t")
    }

    @Test func absurdInnerLengthsAreMalformed() throws {
        // Topic array of 2^31-1 elements, string of 32767 bytes in a short message.
        let a = request(key: 3, version: 1, correlation: 1) { e in e.i32(Int32.max) }
        let b = request(key: 3, version: 1, correlation: 2) { e in e.count(1); e.i16(32767) }
        let c = request(key: 3, version: 9, correlation: 3, flexible: true) { e in e.uvarint(UInt64.max >> 1) }
        let entries = try run([(c2s, a + b + c)])
        #expect(entries.count == 3)
        #expect(entries.allSatisfy { $0.flags.contains("malformed") && $0.flags.contains("requestOnly") })
    }

    @Test func garbageTruncationsAndMutationsNeverCrash() throws {
        let h = try makeHarness()
        var rng = SplitMix(state: 42)
        for _ in 0..<200 {
            let n = Int(rng.next() % 300)
            _ = h.runTCP(segments: [(c2s, rng.bytes(n)), (s2c, rng.bytes(n))])
        }
        let segments = sampleConversation()
        let all = segments.flatMap { $0.1 }
        for len in 0..<all.count {
            let out = h.runTCP(segments: [(c2s, Array(all[..<len]))])
            for s in out { _ = parseJSON(s) }
        }
        for _ in 0..<2000 {
            var s = segments
            let i = Int(rng.next() % UInt64(s.count))
            var d = s[i].1
            for _ in 0..<(1 + rng.next() % 4) {
                d[Int(rng.next() % UInt64(d.count))] = UInt8(truncatingIfNeeded: rng.next())
            }
            s[i].1 = d
            for e in h.runTCP(segments: s) { _ = parseJSON(e) }
        }
    }

    @Test func pendingMapIsBounded() throws {
        var reqs: [UInt8] = []
        for i in 0..<3000 {
            reqs += request(key: 12, version: 0, correlation: Int32(i)) { e in e.str("g"); e.i32(1); e.str("m") }
        }
        let entries = try run([(c2s, reqs), (s2c, response(correlation: 2999) { e in e.i16(0) })])
        #expect(entries.count == 3000)
        #expect(entries.filter { $0.flags.contains("requestOnly") }.count == 2999)
    }
}

@Suite struct ProbeTests {
    @Test func requestsAreRecognised() throws {
        let h = try makeHarness()
        let r = h.probe(request(key: 18, version: 3, correlation: 1, client: "rdkafka", flexible: true) { e in
            e.str("x"); e.str("y"); e.tags()
        })
        #expect(r.verdict == KS_PROBE_YES)
        #expect(r.confidence == 75)
        let p = h.probe(ExchangeTests.produce(version: 7, correlation: 9, batch: []))
        #expect(p.verdict == KS_PROBE_YES)
    }

    @Test func othersAreNot() throws {
        let h = try makeHarness()
        #expect(h.probe(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)).verdict == KS_PROBE_NO)
        #expect(h.probe(Array("*1\r\n$4\r\nPING\r\n".utf8)).verdict == KS_PROBE_NO)
        #expect(h.probe(request(key: 300, version: 0, correlation: 1)).verdict == KS_PROBE_NO)
        #expect(h.probe(request(key: 3, version: 90, correlation: 1)).verdict == KS_PROBE_NO)
        #expect(h.probe([0, 0, 0]).verdict == KS_PROBE_MAYBE)
        // A response from the server (roles known) is not probed.
        #expect(h.probe(response(correlation: 1) { e in e.i16(0) }, direction: s2c).verdict != KS_PROBE_YES)
    }
}
