import Testing
@testable import Host

@Suite("IP fragment reassembly")
struct IPv4FragmentTests {
    typealias F = PacketFixture

    /// A TCP segment big enough to need fragments.
    static let segment: [UInt8] = F.tcp(src: 1234, dst: 80, seq: 42, payload: (0..<3000).map { UInt8($0 % 251) })

    /// Splits `l4` into IPv4 fragments of `size` bytes (a multiple of 8).
    static func fragments4(_ l4: [UInt8], size: Int, id: UInt16 = 7, proto: UInt8 = 6) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var offset = 0
        while offset < l4.count {
            let end = min(offset + size, l4.count)
            let more = end < l4.count
            out.append(fragment4(l4, offset: offset, end: end, more: more, id: id, proto: proto))
            offset = end
        }
        return out
    }

    static func fragment4(_ l4: [UInt8], offset: Int, end: Int, more: Bool, id: UInt16 = 7, proto: UInt8 = 6) -> [UInt8] {
        let field = UInt16(offset / 8) | (more ? 0x2000 : 0)
        return F.ipv4(proto: proto, id: id, flagsAndOffset: field, payload: Array(l4[offset..<end]))
    }

    /// Splits `l4` (whose first header is `next`) into IPv6 fragments.
    static func fragments6(_ l4: [UInt8], size: Int, next: UInt8 = 6, id: UInt32 = 0xABCD_0001) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var offset = 0
        while offset < l4.count {
            let end = min(offset + size, l4.count)
            out.append(F.ipv6(next: 44, payload: F.fragmentHeader(next: next, offset: offset, more: end < l4.count, id: id)
                              + Array(l4[offset..<end])))
            offset = end
        }
        return out
    }

    static func feed(_ decoder: inout PacketDecoder, _ frames: [[UInt8]], timestampNs: Int64 = 1_000) -> [F.Snapshot] {
        frames.map { F.decode(&decoder, .raw, $0, timestampNs: timestampNs) }
    }

    static var expectedPayload: [UInt8] { Array(segment[20...]) }

    @Test("In order")
    func inOrder() throws {
        var decoder = PacketDecoder()
        let frames = Self.fragments4(Self.segment, size: 1480)
        #expect(frames.count == 3)
        let results = Self.feed(&decoder, frames)
        #expect(results[0] == .held && results[1] == .held)
        let d = try #require(results[2].decoded)
        #expect(d.reassembled && d.transport == .tcp && d.srcPort == 1234 && d.seq == 42)
        #expect(d.payload == Self.expectedPayload && !d.truncated)
        let c = decoder.counters.fragments
        #expect(c.received == 3 && c.reassembled == 1 && c.heldDatagrams == 0 && c.heldBytes == 0)
        #expect(c.peakHeldBytes == 3020)  // the last fragment is stored, then assembled
    }

    @Test("Reverse order and shuffled")
    func reverseOrder() throws {
        var decoder = PacketDecoder()
        let frames = Self.fragments4(Self.segment, size: 512)
        let results = Self.feed(&decoder, frames.reversed())
        #expect(results.dropLast().allSatisfy { $0 == .held })
        #expect(results.last?.decoded?.payload == Self.expectedPayload)
        var rng = FixtureRNG(seed: 99)
        for round in 0..<20 {
            let shuffled = Self.fragments4(Self.segment, size: 8 * (1 + Int(rng.next() % 100)), id: UInt16(round)).shuffled(using: &rng)
            let last = Self.feed(&decoder, shuffled).last
            #expect(last?.decoded?.payload == Self.expectedPayload)
        }
        #expect(decoder.counters.fragments.heldDatagrams == 0)
    }

    @Test("Duplicates are ignored")
    func duplicates() throws {
        var decoder = PacketDecoder()
        let frames = Self.fragments4(Self.segment, size: 1480)
        let results = Self.feed(&decoder, [frames[0], frames[0], frames[1], frames[1], frames[2]])
        #expect(results[1] == .skipped(.fragmentDiscarded) && results[3] == .skipped(.fragmentDiscarded))
        #expect(results[4].decoded?.payload == Self.expectedPayload)
        #expect(decoder.counters.fragments.duplicates == 2)
        #expect(decoder.counters.skipped[.fragmentDiscarded] == 2)
    }

    @Test("Partial overlap discards the datagram by default (Linux, RFC 5722)")
    func overlapDiscards() {
        var decoder = PacketDecoder()
        let l4 = Self.segment
        let results = Self.feed(&decoder, [
            Self.fragment4(l4, offset: 0, end: 1000, more: true),
            Self.fragment4(l4, offset: 992, end: 2000, more: true),
            Self.fragment4(l4, offset: 1000, end: 2000, more: true),
            Self.fragment4(l4, offset: 2000, end: l4.count, more: false),
        ])
        #expect(results[1] == .skipped(.fragmentDiscarded))
        #expect(results[3] == .held)  // the set restarted without its first fragment
        #expect(decoder.counters.fragments.overlapDiscards == 1)
        // A fragment entirely inside held data is a duplicate, not an overlap.
        let inner = F.ipv4(proto: 6, id: 7, flagsAndOffset: UInt16(1008 / 8) | 0x2000,
                           payload: Array(l4[1008..<1504]))
        #expect(F.decode(&decoder, .raw, inner) == .skipped(.fragmentDiscarded))
        #expect(decoder.counters.fragments.duplicates == 1)
    }

    @Test("First-wins overlap policy keeps the first copy")
    func overlapFirstWins() throws {
        var decoder = PacketDecoder(limits: .init(fragments: .init(overlapPolicy: .firstWins)))
        let l4 = Self.segment
        var forged = l4
        for i in 800..<1600 { forged[i] = 0xEE }
        let results = Self.feed(&decoder, [
            Self.fragment4(l4, offset: 0, end: 1000, more: true),
            Self.fragment4(forged, offset: 800, end: 1600, more: true),
            Self.fragment4(l4, offset: 1600, end: l4.count, more: false),
        ])
        let d = try #require(results[2].decoded)
        let expected = Array(l4[20..<1000]) + [UInt8](repeating: 0xEE, count: 600) + Array(l4[1600...])
        #expect(d.payload == expected)
        #expect(decoder.counters.fragments.overlappingBytes == 200)
    }

    @Test("A missing fragment expires by timeout")
    func timeout() {
        var decoder = PacketDecoder()
        let frames = Self.fragments4(Self.segment, size: 1480)
        _ = Self.feed(&decoder, [frames[0], frames[2]], timestampNs: 0)
        #expect(decoder.counters.fragments.heldDatagrams == 1)
        decoder.expire(nowNs: 29_000_000_000)
        #expect(decoder.counters.fragments.heldDatagrams == 1)
        decoder.expire(nowNs: 30_000_000_000)
        #expect(decoder.counters.fragments.expired == 1)
        #expect(decoder.counters.fragments.heldDatagrams == 0 && decoder.counters.fragments.heldBytes == 0)
        // The missing one arrives late: it starts a new set that cannot complete.
        #expect(F.decode(&decoder, .raw, frames[1], timestampNs: 31_000_000_000) == .held)
        // Timeouts also apply lazily when a fragment of a stale set arrives.
        #expect(F.decode(&decoder, .raw, frames[0], timestampNs: 90_000_000_000) == .held)
        #expect(decoder.counters.fragments.expired == 2)
        let custom = FragmentLimits(timeoutNs: 1_000)
        var quick = PacketDecoder(limits: .init(fragments: custom))
        _ = Self.feed(&quick, [frames[0]], timestampNs: 0)
        quick.expire(nowNs: 1_000)
        #expect(quick.counters.fragments.expired == 1)
    }

    @Test("Byte and datagram caps evict the oldest sets")
    func caps() {
        let limits = FragmentLimits(maxHeldBytes: 4000, maxDatagrams: 2)
        var decoder = PacketDecoder(limits: .init(fragments: limits))
        for id in 0..<3 {
            let first = Self.fragments4(Self.segment, size: 1480, id: UInt16(id))[0]
            #expect(F.decode(&decoder, .raw, first, timestampNs: Int64(id)) == .held)
        }
        var c = decoder.counters.fragments
        #expect(c.heldDatagrams == 2 && c.evicted == 1 && c.heldBytes == 2960)
        // A second fragment for id 2 would exceed 4000 bytes: id 1 (oldest) goes.
        let second = Self.fragments4(Self.segment, size: 1480, id: 2)[1]
        #expect(F.decode(&decoder, .raw, second, timestampNs: 10) == .held)
        c = decoder.counters.fragments
        #expect(c.evicted == 2 && c.heldDatagrams == 1 && c.heldBytes == 2960)
        #expect(c.peakHeldBytes <= 4000)
        // A datagram that cannot fit even alone is dropped.
        var tiny = PacketDecoder(limits: .init(fragments: FragmentLimits(maxHeldBytes: 1000)))
        let big = Self.fragments4(Self.segment, size: 1480)[0]
        #expect(F.decode(&tiny, .raw, big) == .skipped(.fragmentDiscarded))
        #expect(tiny.counters.fragments.heldBytes == 0 && tiny.counters.fragments.heldDatagrams == 0)
        // Too many pieces.
        var few = PacketDecoder(limits: .init(fragments: FragmentLimits(maxFragmentsPerDatagram: 4)))
        let results = Self.feed(&few, Self.fragments4(Self.segment, size: 256))
        #expect(results.contains(.skipped(.fragmentDiscarded)))
        #expect(few.counters.fragments.tooManyFragments >= 1)
    }

    @Test("Datagrams beyond 65535 bytes and bad fragment lengths are rejected")
    func invalidFragments() {
        let big = F.ipv4(flagsAndOffset: 8189, payload: [UInt8](repeating: 0, count: 24))  // ends at 65536
        #expect(F.decode(.raw, big) == .malformed(.fragmentTooLarge))
        let maxOffset = F.ipv4(flagsAndOffset: 0x1FFF | 0x2000, payload: [UInt8](repeating: 0, count: 8))
        #expect(F.decode(.raw, maxOffset) == .malformed(.fragmentTooLarge))
        let fits = F.ipv4(flagsAndOffset: 8188, payload: [UInt8](repeating: 0, count: 11))  // ends at 65515
        #expect(F.decode(.raw, fits) == .held)
        let misaligned = F.ipv4(flagsAndOffset: 0x2000, payload: [UInt8](repeating: 0, count: 13))
        #expect(F.decode(.raw, misaligned) == .malformed(.fragmentBadLength))
        let empty = F.ipv4(flagsAndOffset: 0x2000 | 4, payload: [])
        #expect(F.decode(.raw, empty) == .malformed(.fragmentBadLength))
        let big6 = F.ipv6(next: 44, payload: F.fragmentHeader(next: 6, offset: 65528, more: false, id: 1)
                          + [UInt8](repeating: 0, count: 16))
        #expect(F.decode(.raw, big6) == .malformed(.fragmentTooLarge))
        var decoder = PacketDecoder()
        _ = F.decode(&decoder, .raw, big)
        #expect(decoder.counters.fragments.rejected == 1 && decoder.counters.malformed[.fragmentTooLarge] == 1)
    }

    @Test("Fragments that disagree on the datagram end are dropped")
    func inconsistentEnd() {
        var decoder = PacketDecoder()
        let l4 = Self.segment
        let results = Self.feed(&decoder, [
            Self.fragment4(l4, offset: 0, end: 1000, more: true),
            Self.fragment4(l4, offset: 2000, end: l4.count, more: false),
            Self.fragment4(l4, offset: 1000, end: 2008, more: false),
        ])
        #expect(results[2] == .skipped(.fragmentDiscarded))
        #expect(decoder.counters.fragments.inconsistent == 1 && decoder.counters.fragments.heldDatagrams == 0)
    }

    @Test("Non-TCP/UDP fragments are not held")
    func icmpFragments() {
        var decoder = PacketDecoder()
        let frames = Self.fragments4([UInt8](repeating: 8, count: 2000), size: 1480, proto: 1)
        #expect(Self.feed(&decoder, frames) == [.skipped(.notTCPOrUDP), .skipped(.notTCPOrUDP)])
        #expect(decoder.counters.fragments.received == 0)
    }

    @Test("A fragment cut by the snap length gives a truncated datagram")
    func truncatedFragment() throws {
        var decoder = PacketDecoder()
        let frames = Self.fragments4(Self.segment, size: 1480)
        _ = F.decode(&decoder, .raw, frames[0])
        _ = F.decode(&decoder, .raw, Array(frames[1].prefix(100)), wireLength: frames[1].count)
        let d = try #require(F.decode(&decoder, .raw, frames[2]).decoded)
        #expect(d.truncated)
        #expect(d.payload == Array(Self.segment[20..<(1480 + 80)]))
    }

    @Test("UDP over IPv4 fragments, with padding on the last one")
    func udpFragments() throws {
        var decoder = PacketDecoder()
        let body = (0..<2000).map { UInt8($0 & 0xFF) }
        var frames = Self.fragments4(F.udp(payload: body), size: 1480, proto: 17)
        frames[1] += [0, 0, 0, 0]  // trailing junk beyond the IP total length
        let results = Self.feed(&decoder, frames)
        let d = try #require(results[1].decoded)
        #expect(d.transport == .udp && d.payload == body)
    }

    @Test("IPv6 fragments, out of order, with headers after the fragment header")
    func ipv6Fragments() throws {
        var decoder = PacketDecoder()
        let fragmentable = F.extensionHeader(next: 6) + Self.segment
        let frames = Self.fragments6(fragmentable, size: 1232, next: 60)
        #expect(frames.count == 3)
        let results = Self.feed(&decoder, [frames[2], frames[0], frames[1]])
        let d = try #require(results[2].decoded)
        #expect(d.reassembled && d.src == F.clientV6 && d.payload == Self.expectedPayload)
        // Same id from another source is another datagram.
        let other = F.ipv6(src: IPAddress("2001:db8::99")!, next: 44,
                           payload: F.fragmentHeader(next: 60, offset: 0, more: true, id: 0xABCD_0001)
                           + Array(fragmentable[0..<1232]))
        #expect(F.decode(&decoder, .raw, other) == .held)
        #expect(decoder.counters.fragments.heldDatagrams == 1)
        // A fragment header inside the reassembled data is refused.
        let nested = Self.fragments6(F.fragmentHeader(next: 6, offset: 0, more: true, id: 5) + Self.segment,
                                     size: 1232, next: 44, id: 3)
        #expect(Self.feed(&decoder, nested).last == .malformed(.nestedFragment))
    }

    @Test("Reassembler copies are independent")
    func copies() throws {
        var a = PacketDecoder()
        let frames = Self.fragments4(Self.segment, size: 1480)
        _ = Self.feed(&a, [frames[0], frames[1]])
        var b = a
        let fromB = try #require(F.decode(&b, .raw, frames[2]).decoded)
        let fromA = try #require(F.decode(&a, .raw, frames[2]).decoded)
        #expect(fromA.payload == fromB.payload && fromA.payload == Self.expectedPayload)
        #expect(a.counters.fragments.reassembled == 1 && b.counters.fragments.reassembled == 1)
    }
}
