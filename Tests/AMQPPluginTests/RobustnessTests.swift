import Foundation
import PluginAPI
import Testing

@testable import Host

/// Splits, garbage, truncation, mutation and hostile sizes: never a crash, a hang
/// or an unbounded allocation; problems show as flagged entries.
@Suite struct RobustnessTests {
    static func conversation() -> [Segment] {
        var segs = handshake()
        segs.append((c2s, method(1, 50, 10) { e in
            e.u16(0); e.shortstr("jobs"); e.bits(false, true); e.table([("x-ttl", .i32(5)), ("A", .array([.str("a")]))])
        }))
        segs.append((s2c, method(1, 50, 11) { e in e.shortstr("jobs"); e.u32(0); e.u32(0) }))
        segs.append((c2s, publish(1, exchange: "ex", key: "rk", body: Array("hello world".utf8), headers: [("h", .str("v"))],
                                  frameMax: 4) + heartbeat))
        segs.append((s2c, deliver(1, tag: "c", deliveryTag: 1, exchange: "ex", key: "rk", body: Array("hi".utf8))))
        segs.append((c2s, method(0, 10, 50) { e in e.u16(320); e.shortstr("shutdown"); e.u16(0); e.u16(0) }))
        segs.append((s2c, method(0, 10, 51)))
        return segs
    }

    @Test func splitAtEveryByte() throws {
        let convo = Self.conversation()
        let h = try makeHarness()
        let whole = normalized(h.runTCP(segments: convo))
        #expect(whole.count == 8)
        for (index, (dir, data)) in convo.enumerated() {
            for cut in 1..<data.count {
                var segs = convo
                segs.remove(at: index)
                segs.insert((dir, Array(data[cut...])), at: index)
                segs.insert((dir, Array(data[..<cut])), at: index)
                let got = normalized(h.runTCP(segments: segs))
                #expect(got == whole, "segment \(index) cut at \(cut)")
                if got != whole { return }
            }
        }
        let bytewise: [Segment] = convo.flatMap { d, b in b.map { (d, [$0]) } }
        #expect(normalized(h.runTCP(segments: bytewise)) == whole)
    }

    @Test func bigBodyIsStreamedAndCapped() throws {
        var segs = handshake()
        let body = [UInt8](repeating: UInt8(ascii: "z"), count: 3 << 20)
        // One huge body frame (beyond any buffer cap), in 64 KiB segments.
        let msg = method(1, 60, 40) { e in e.u16(0); e.shortstr("x"); e.shortstr("big"); e.bits(false, false) }
            + contentHeader(1, bodySize: UInt64(body.count)) + bodyFrame(1, body)
            + publish(1, exchange: "x", key: "small", body: Array("s".utf8))
        var i = 0
        while i < msg.count {
            segs.append((c2s, Array(msg[i..<min(msg.count, i + 65536)])))
            i += 65536
        }
        let e = try run(segs).suffix(2)
        #expect(e.count == 2)
        #expect(e.first?.flags == ["truncated"])
        #expect(e.first?.request?.str("body")?.utf8.count == 16 << 10)
        #expect(e.first?.request?.int("bodySize") == body.count)
        #expect(e.last?.request?.str("body") == "s" && e.last?.flags.isEmpty == true)
    }

    @Test func absurdLengthsAreFlagged() throws {
        let hostile: [[UInt8]] = [
            [1, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF],  // 4 GiB method frame
            [9, 0, 0, 0, 0, 0, 0, 0xCE],  // unknown frame type
            method(1, 60, 80) { e in e.u64(1); e.bits(false) }.dropLast() + [0x00],  // bad frame end
            method(1, 99, 99),  // unknown method
            method(1, 50, 10) { e in e.u16(0); e.shortstr("q"); e.bits(); e.u32(0xFFFF_FFF0) },  // table too long
            method(1, 50, 10) { e in e.u16(0); e.u8(200) },  // shortstr beyond the frame
            frame(1, 1, [0, 60]),  // frame shorter than ids
        ]
        for (n, h) in hostile.enumerated() {
            let e = try run(handshake() + [(c2s, h)])
            #expect(e.count == 5, "case \(n)")
            #expect(e.last?.flags.contains("malformed") == true, "case \(n)")
        }
        // Nested tables beyond the depth bound.
        var deep: TV = .bool(true)
        for _ in 0..<20 { deep = .table([("d", deep)]) }
        let e = try run(handshake() + [(c2s, method(1, 50, 10) { e in e.u16(0); e.shortstr("q"); e.bits(); e.table([("x", deep)]) })])
        #expect(e.last?.flags.contains("malformed") == true)
        // A content header declaring 2^64-1 bytes: no allocation up front, incomplete at close.
        let c = try run(handshake() + [(c2s, method(1, 60, 40) { e in e.u16(0); e.shortstr(""); e.shortstr("k"); e.bits() }
            + contentHeader(1, bodySize: UInt64.max) + bodyFrame(1, [1, 2, 3]))])
        #expect(c.last?.method == "basic.publish" && c.last?.flags.contains("malformed") == true)
    }

    @Test func manyOpenContentsAreBounded() throws {
        var c: [UInt8] = []
        for ch in UInt16(1)...300 {
            c += method(ch, 60, 40) { e in e.u16(0); e.shortstr(""); e.shortstr("k"); e.bits() }
                + contentHeader(ch, bodySize: 1 << 20) + bodyFrame(ch, [UInt8](repeating: 1, count: 100))
        }
        let e = try run([(c2s, c)])
        #expect(e.count == 300 && e.allSatisfy { $0.flags.contains("malformed") })
    }

    @Test func midstreamPickup() throws {
        let h = try makeHarness()
        let segs: [PluginHarness.HarnessEvent] = [
            .data(c2s, method(1, 60, 80) { e in e.u64(9); e.bits(true) } + publish(1, exchange: "e", key: "k", body: [65])),
            .data(s2c, deliver(1, tag: "t", deliveryTag: 10, exchange: "e", key: "k", body: [66])),
        ]
        let e = h.run(events: segs, serverPort: 5672, midstream: true).map(parseJSON)
        #expect(e.map(\.method) == ["basic.ack", "basic.publish", "basic.deliver"])
        #expect(e.allSatisfy { $0.flags.isEmpty })
    }

    @Test func garbageTruncationAndMutations() throws {
        let h = try makeHarness()
        var rng = SplitMix(state: 42)
        for _ in 0..<200 {
            _ = h.runTCP(segments: [(c2s, rng.bytes(Int(rng.next() % 300))), (s2c, rng.bytes(Int(rng.next() % 300)))])
        }
        let convo = Self.conversation()
        let flat = convo.flatMap { d, b in [(d, b)] }
        for cut in stride(from: 0, to: flat.count, by: 1) {
            _ = h.runTCP(segments: Array(flat.prefix(cut)) + [(flat[cut].0, Array(flat[cut].1.prefix(flat[cut].1.count / 2)))])
        }
        for _ in 0..<400 {
            var segs = convo
            let i = Int(rng.next() % UInt64(segs.count))
            let j = Int(rng.next() % UInt64(segs[i].1.count))
            segs[i].1[j] = UInt8(truncatingIfNeeded: rng.next())
            if rng.next() % 4 == 0 { segs[i].1.insert(contentsOf: rng.bytes(5), at: j) }
            _ = h.runTCP(segments: segs)
        }
    }
}
