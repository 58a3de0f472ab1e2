import Foundation
import PluginAPI
import Testing

@testable import Host

/// Splits, garbage, truncation, mutation and hostile sizes: never a crash, a hang
/// or an unbounded allocation; problems show as flagged entries.
@Suite struct RobustnessTests {
    static let conversations: [(String, [Segment])] = [
        ("pipelined", [(c2s, command("SET", "a", "1") + command("GET", "a") + bytes("PING\r\n")),
                       (s2c, simple("OK") + bulk("1") + simple("PONG"))]),
        ("resp3", [(c2s, command("HELLO", "3")),
                   (s2c, map([(bulk("server"), bulk("redis")), (bulk("proto"), integer(3))])),
                   (c2s, command("HGETALL", "h") + command("SMEMBERS", "s")),
                   (s2c, map([(bulk("f"), bulk("v"))]) + bytes("|1\r\n+ttl\r\n:5\r\n~2\r\n,1.5\r\n#f\r\n"))]),
        ("pubsub", [(c2s, command("SUBSCRIBE", "c")),
                    (s2c, array([bulk("subscribe"), bulk("c"), integer(1)]) + array([bulk("message"), bulk("c"), bulk("m")]))]),
        ("errors", [(c2s, command("AUTH", "pw") + command("INCR", "s")),
                    (s2c, error("ERR invalid password") + bytes("!10\r\nERR broken\r\n=9\r\ntxt:hello\r\n"))]),
    ]

    @Test("split at every byte gives the same entries", arguments: conversations.map(\.0))
    func splitAtEveryByte(name: String) throws {
        let convo = Self.conversations.first { $0.0 == name }!.1
        let h = try makeHarness()
        let whole = normalized(h.runTCP(segments: convo))
        #expect(!whole.isEmpty)
        for (index, (dir, data)) in convo.enumerated() {
            for cut in 1..<data.count {
                var segs = convo
                segs.remove(at: index)
                segs.insert((dir, Array(data[cut...])), at: index)
                segs.insert((dir, Array(data[..<cut])), at: index)
                let got = normalized(h.runTCP(segments: segs))
                #expect(got == whole, "\(name): segment \(index) cut at \(cut)")
                if got != whole { return }
            }
        }
        // One byte per segment.
        let bytewise: [Segment] = convo.flatMap { d, b in b.map { (d, [$0]) } }
        #expect(normalized(h.runTCP(segments: bytewise)) == whole)
    }

    @Test func largeBulkIsSkippedNotBuffered() throws {
        let big = [UInt8](repeating: UInt8(ascii: "x"), count: 3 << 20)
        let reply = bytes("$\(big.count)\r\n") + big + bytes("\r\n")
        // Delivered in 64 KiB segments, well under the plugin's buffer cap.
        var segs: [Segment] = [(c2s, command("GET", "big") + command("GET", "small"))]
        var i = 0
        while i < reply.count {
            segs.append((s2c, Array(reply[i..<min(reply.count, i + 65536)])))
            i += 65536
        }
        segs.append((s2c, bulk("tiny")))
        let entries = try run(segs)
        #expect(entries.count == 2)
        #expect(entries[0].flags.contains("truncated"))
        #expect(entries[0].response?.str("value")?.utf8.count == 1024)
        #expect(entries[0].int("responseSize") == reply.count)
        #expect(entries[1].response?.str("value") == "tiny" && entries[1].flags.isEmpty)
        // A big command argument is cut the same way.
        let cmd = command(["SET", "k", String(repeating: "y", count: 200_000)])
        let c = try run([(c2s, cmd), (s2c, simple("OK"))])
        #expect(c.count == 1 && c[0].flags.contains("truncated") && c[0].response?.str("value") == "OK")
    }

    @Test func absurdLengthsAreFlagged() throws {
        for hostile in ["$99999999999\r\nabc\r\n", "*9999999999999999999999\r\n", "$-5\r\n", "*-7\r\n", "$12x\r\n",
                        "*3000000000\r\n", "?what\r\n"]
        {
            let entries = try run([(c2s, command("GET", "k")), (s2c, bytes(hostile))])
            #expect(entries.count == 1, "\(hostile.debugDescription)")
            #expect(entries.first?.flags.contains("malformed") == true, "\(hostile.debugDescription)")
        }
        // A huge declared array with few elements: no allocation up front, flagged cut short.
        let e = try run([(c2s, command("GET", "k")), (s2c, bytes("*2147483647\r\n:1\r\n:2\r\n"))])
        #expect(e.count == 1 && e[0].flags.contains("malformed"))
        #expect((e[0].response?["value"] as? [Any])?.count == 2)
    }

    @Test func deepAndWideAggregatesAreCapped() throws {
        let deep = String(repeating: "*1\r\n", count: 100) + ":1\r\n"
        let d = try run([(c2s, command("GET", "k")), (s2c, bytes(deep))])
        #expect(d.count == 1 && d[0].flags.contains("truncated"))
        let tooDeep = String(repeating: "*1\r\n", count: 10_000)
        let t = try run([(c2s, command("GET", "k")), (s2c, bytes(tooDeep))])
        #expect(t.count == 1 && t[0].flags.contains("malformed"))
        let wide = bytes("*5000\r\n") + Array(repeating: bytes(":7\r\n"), count: 5000).flatMap { $0 }
        let w = try run([(c2s, command("GET", "k")), (s2c, wide + simple("after"))])
        #expect(w.count == 2 && w[0].flags.contains("truncated"))
        #expect((w[0].response?["value"] as? [Any])?.count == 1000)
        #expect(w[1].response?.str("value") == "after")
    }

    @Test func keptBytesAreBounded() throws {
        // 1000 elements of 1 KiB: only the first 256 KiB of text is kept per message.
        let kib = String(repeating: "z", count: 1024)
        let reply = array(Array(repeating: bulk(kib), count: 1000))
        let e = try run([(c2s, command("LRANGE", "l", "0", "-1")), (s2c, reply)])
        #expect(e.count == 1 && e[0].flags.contains("truncated"))
        let values = e.first?.response?["value"] as? [String] ?? []
        #expect(values.count == 1000)
        #expect(values.filter { !$0.isEmpty }.count == 256)
        // Commands waiting for replies keep at most 4 MiB of arguments: the oldest go out unanswered.
        let big = command(["MSET"] + Array(repeating: kib, count: 1000))
        let p = try run([(c2s, Array(repeating: big, count: 8).flatMap { $0 })])
        #expect(p.count == 8 && p.allSatisfy { $0.flags.contains("requestOnly") })
    }

    @Test func truncatedConversationsFlagged() throws {
        let full = command("SET", "key", "value") + command("GET", "key")
        let h = try makeHarness()
        for cut in 1..<full.count {
            let entries = h.runTCP(segments: [(c2s, Array(full[..<cut])), (s2c, simple("OK"))]).map(parseJSON)
            #expect(!entries.isEmpty)
        }
        let partialReply = try run([(c2s, command("GET", "k")), (s2c, bytes("$10\r\nabc"))])
        #expect(partialReply.count == 1 && partialReply[0].flags.contains("malformed"))
    }

    @Test func garbageAndMutationsNeverCrash() throws {
        let h = try makeHarness()
        var rng = SplitMix(state: 42)
        let base = Self.conversations.flatMap { $0.1 }
        for round in 0..<400 {
            var segs = base
            for _ in 0..<(1 + Int(rng.next() % 6)) {
                let s = Int(rng.next() % UInt64(segs.count))
                var data = segs[s].1
                guard !data.isEmpty else { continue }
                let p = Int(rng.next() % UInt64(data.count))
                switch rng.next() % 4 {
                case 0: data[p] = UInt8(truncatingIfNeeded: rng.next())
                case 1: data.insert(contentsOf: rng.bytes(Int(rng.next() % 8)), at: p)
                case 2: data.removeSubrange(p..<min(data.count, p + Int(rng.next() % 8) + 1))
                default: data.insert(contentsOf: bytes(["$", "*", ":", "%", "|", ">"].randomElement(using: &rng)! + "\(rng.next() % 100000)\r\n"), at: p)
                }
                segs[s].1 = data
            }
            if round % 50 == 0 { segs.append((round % 100 == 0 ? c2s : s2c, rng.bytes(512))) }
            _ = h.runTCP(segments: segs)
        }
        for _ in 0..<200 {
            _ = h.runTCP(segments: [(c2s, rng.bytes(Int(rng.next() % 300))), (s2c, rng.bytes(Int(rng.next() % 300)))])
        }
    }

    @Test func unknownServerTypeStopsOnlyThatDirection() throws {
        let entries = try run([(c2s, command("GET", "a")), (s2c, bytes("@nope\r\n")), (c2s, command("GET", "b"))])
        #expect(entries.count == 2)
        #expect(entries[0].flags.contains("malformed"))
        #expect(entries[1].flags.contains("requestOnly") && entries[1].str("summary") == "b")
    }
}

