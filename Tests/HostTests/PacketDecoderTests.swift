import Testing
@testable import Host

// MARK: - Packet building helpers (shared with IPv4FragmentTests)

/// Builds link, network and transport headers byte by byte for decoder tests.
enum PacketFixture {
    static let clientV4 = IPAddress(10, 0, 0, 1)
    static let serverV4 = IPAddress(10, 0, 0, 2)
    static let clientV6 = IPAddress("2001:db8::1")!
    static let serverV6 = IPAddress("2001:db8::2")!

    static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

    static func addressBytes(_ a: IPAddress) -> [UInt8] { a.withUnsafeBytes { Array($0) } }

    static func tcp(src: UInt16 = 40000, dst: UInt16 = 80, seq: UInt32 = 1000, ack: UInt32 = 2000,
                    flags: TCPFlags = [.ack, .psh], window: UInt16 = 512, options: [UInt8] = [],
                    dataOffsetOverride: UInt8? = nil, payload: [UInt8]) -> [UInt8] {
        precondition(options.count % 4 == 0)
        let words = dataOffsetOverride ?? UInt8(5 + options.count / 4)
        var b = be16(src) + be16(dst) + be32(seq) + be32(ack)
        b += [words << 4, flags.rawValue] + be16(window) + [0, 0, 0, 0]
        return b + options + payload
    }

    static func udp(src: UInt16 = 5353, dst: UInt16 = 53, lengthOverride: UInt16? = nil, payload: [UInt8]) -> [UInt8] {
        be16(src) + be16(dst) + be16(lengthOverride ?? UInt16(8 + payload.count)) + [0, 0] + payload
    }

    static func ipv4(src: IPAddress = clientV4, dst: IPAddress = serverV4, proto: UInt8 = 6, id: UInt16 = 0x1234,
                     flagsAndOffset: UInt16 = 0x4000, options: [UInt8] = [], ihlOverride: UInt8? = nil,
                     totalLengthOverride: UInt16? = nil, versionOverride: UInt8? = nil, payload: [UInt8]) -> [UInt8] {
        precondition(options.count % 4 == 0)
        let ihl = ihlOverride ?? UInt8(5 + options.count / 4)
        let total = totalLengthOverride ?? UInt16(20 + options.count + payload.count)
        var b: [UInt8] = [(versionOverride ?? 4) << 4 | ihl, 0] + be16(total) + be16(id) + be16(flagsAndOffset)
        b += [64, proto, 0, 0] + addressBytes(src) + addressBytes(dst)
        return b + options + payload
    }

    static func ipv6(src: IPAddress = clientV6, dst: IPAddress = serverV6, next: UInt8 = 6,
                     payloadLengthOverride: UInt16? = nil, payload: [UInt8]) -> [UInt8] {
        var b: [UInt8] = [0x60, 0, 0, 0] + be16(payloadLengthOverride ?? UInt16(payload.count)) + [next, 64]
        b += addressBytes(src) + addressBytes(dst)
        return b + payload
    }

    /// A generic IPv6 extension header (Hop-by-Hop, Routing, Destination Options) of 8 * (units + 1) bytes.
    static func extensionHeader(next: UInt8, units: UInt8 = 0) -> [UInt8] {
        [next, units] + [UInt8](repeating: 0, count: 6 + 8 * Int(units))
    }

    /// An IPsec AH header with a 12-byte ICV (24 bytes).
    static func authHeader(next: UInt8) -> [UInt8] {
        [next, 4, 0, 0] + be32(0x100) + be32(1) + [UInt8](repeating: 0xAA, count: 12)
    }

    static func fragmentHeader(next: UInt8, offset: Int, more: Bool, id: UInt32) -> [UInt8] {
        [next, 0] + be16(UInt16(offset) | (more ? 1 : 0)) + be32(id)
    }

    static func ethernet(type: UInt16, vlans: [(tpid: UInt16, id: UInt16)] = [], payload: [UInt8]) -> [UInt8] {
        var b: [UInt8] = [0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]
        for tag in vlans { b += be16(tag.tpid) + be16(tag.id) }
        return b + be16(type) + payload
    }

    static func pppoeSession(pppProtocol: UInt16, payload: [UInt8]) -> [UInt8] {
        [0x11, 0x00] + be16(0x0042) + be16(UInt16(payload.count + 2)) + be16(pppProtocol) + payload
    }

    static func sll(protocol proto: UInt16, payload: [UInt8]) -> [UInt8] {
        be16(0) + be16(1) + be16(6) + [2, 0, 0, 0, 0, 1, 0, 0] + be16(proto) + payload
    }

    static func sll2(protocol proto: UInt16, payload: [UInt8]) -> [UInt8] {
        be16(proto) + be16(0) + be32(3) + be16(1) + [0, 6] + [2, 0, 0, 0, 0, 1, 0, 0] + payload
    }

    static func loopback(family: UInt32, bigEndian: Bool, payload: [UInt8]) -> [UInt8] {
        let f = bigEndian ? be32(family) : Array(be32(family).reversed())
        return f + payload
    }

    static let httpPayload = Array("GET / HTTP/1.1\r\nHost: example\r\n\r\n".utf8)

    /// What a decode produced, copied out of the short-lived views.
    enum Snapshot: Equatable {
        case packet(Decoded)
        case held
        case skipped(SkipReason)
        case malformed(MalformedReason)

        var decoded: Decoded? {
            if case .packet(let d) = self { return d }
            return nil
        }
    }

    struct Decoded: Equatable {
        var src: IPAddress
        var dst: IPAddress
        var transport: TransportProtocol
        var srcPort: UInt16
        var dstPort: UInt16
        var seq: UInt32
        var ack: UInt32
        var flags: TCPFlags
        var window: UInt16
        var vlanID: UInt16?
        var payload: [UInt8]
        var truncated: Bool
        var wireLength: Int
        var reassembled: Bool
    }

    /// Decodes `bytes` and checks that any payload view lies inside the input
    /// or the decoder's reassembly buffer.
    static func decode(_ decoder: inout PacketDecoder, _ link: LinkType, _ bytes: [UInt8],
                       wireLength: Int? = nil, timestampNs: Int64 = 1_000) -> Snapshot {
        bytes.withUnsafeBytes { raw in
            let outcome = decoder.decode(linkType: link, data: raw, wireLength: wireLength ?? bytes.count,
                                         timestampNs: timestampNs)
            switch outcome {
            case .packet(let p):
                if !p.wasReassembled, let base = raw.baseAddress, let start = p.payload.baseAddress {
                    #expect(start >= base && start + p.payload.count <= base + raw.count)
                }
                #expect(p.timestampNs == timestampNs)
                return .packet(Decoded(src: p.src, dst: p.dst, transport: p.transport, srcPort: p.srcPort,
                                       dstPort: p.dstPort, seq: p.tcpSeq, ack: p.tcpAck, flags: p.tcpFlags,
                                       window: p.tcpWindow, vlanID: p.vlanID, payload: Array(p.payload),
                                       truncated: p.payloadTruncated, wireLength: p.wireLength,
                                       reassembled: p.wasReassembled))
            case .fragmentHeld: return .held
            case .skipped(let r): return .skipped(r)
            case .malformed(let r): return .malformed(r)
            }
        }
    }

    static func decode(_ link: LinkType, _ bytes: [UInt8], wireLength: Int? = nil) -> Snapshot {
        var decoder = PacketDecoder()
        return decode(&decoder, link, bytes, wireLength: wireLength)
    }
}

/// A seeded xorshift64* generator, so randomized tests are reproducible.
struct FixtureRNG: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}

// MARK: - Tests

@Suite("PacketDecoder")
struct PacketDecoderTests {
    typealias F = PacketFixture

    @Test("Ethernet / IPv4 / TCP: every field")
    func ethernetIPv4TCP() throws {
        let tcp = F.tcp(src: 51000, dst: 8080, seq: 0xDEAD_BEEF, ack: 0x0102_0304, flags: [.syn, .ack],
                        window: 29200, payload: F.httpPayload)
        let frame = F.ethernet(type: 0x0800, payload: F.ipv4(payload: tcp))
        let d = try #require(F.decode(.ethernet, frame).decoded)
        #expect(d.src == F.clientV4 && d.dst == F.serverV4)
        #expect(d.transport == .tcp)
        #expect(d.srcPort == 51000 && d.dstPort == 8080)
        #expect(d.seq == 0xDEAD_BEEF && d.ack == 0x0102_0304)
        #expect(d.flags == [.syn, .ack])
        #expect(d.window == 29200)
        #expect(d.vlanID == nil)
        #expect(d.payload == F.httpPayload)
        #expect(!d.truncated && !d.reassembled)
        #expect(d.wireLength == frame.count)
    }

    @Test("Ethernet / IPv6 / UDP")
    func ethernetIPv6UDP() throws {
        let frame = F.ethernet(type: 0x86DD, payload: F.ipv6(next: 17, payload: F.udp(payload: [1, 2, 3, 4, 5])))
        let d = try #require(F.decode(.ethernet, frame).decoded)
        #expect(d.src == F.clientV6 && d.dst == F.serverV6)
        #expect(d.transport == .udp && d.srcPort == 5353 && d.dstPort == 53)
        #expect(d.payload == [1, 2, 3, 4, 5])
        #expect(d.flags == [] && d.seq == 0)
    }

    @Test("IPv4 options and TCP options are skipped")
    func optionsSkipped() throws {
        let tcp = F.tcp(options: [2, 4, 0x05, 0xB4, 1, 1, 4, 2, 1, 3, 3, 7], payload: [9, 8, 7])
        let ip = F.ipv4(options: [1, 1, 1, 0], payload: tcp)
        let d = try #require(F.decode(.raw, ip).decoded)
        #expect(d.payload == [9, 8, 7])
    }

    @Test("802.1Q, 802.1ad QinQ and 0x9100 stacks record the outermost VLAN id")
    func vlanTags() throws {
        let ip = F.ipv4(payload: F.tcp(payload: [42]))
        let single = F.ethernet(type: 0x0800, vlans: [(0x8100, 0x2000 | 100)], payload: ip)
        #expect(F.decode(.ethernet, single).decoded?.vlanID == 100)
        let qinq = F.ethernet(type: 0x0800, vlans: [(0x88A8, 300), (0x8100, 0x6000 | 200)], payload: ip)
        let d = try #require(F.decode(.ethernet, qinq).decoded)
        #expect(d.vlanID == 300)
        #expect(d.payload == [42])
        let old = F.ethernet(type: 0x86DD, vlans: [(0x9100, 7), (0x9100, 8)],
                             payload: F.ipv6(payload: F.tcp(payload: [1])))
        #expect(F.decode(.ethernet, old).decoded?.vlanID == 7)
        var decoder = PacketDecoder()
        _ = F.decode(&decoder, .ethernet, single)
        #expect(decoder.counters.vlanTagged == 1)
    }

    @Test("Too many stacked VLAN tags is malformed")
    func tooManyVLANTags() {
        let tags = [(tpid: UInt16, id: UInt16)](repeating: (0x8100, 1), count: 9)
        let frame = F.ethernet(type: 0x0800, vlans: tags, payload: F.ipv4(payload: F.tcp(payload: [])))
        #expect(F.decode(.ethernet, frame) == .malformed(.tooManyVLANTags))
    }

    @Test("PPPoE session carrying IPv4 and IPv6; PPP control is not IP")
    func pppoe() throws {
        let v4 = F.ethernet(type: 0x8864, payload: F.pppoeSession(pppProtocol: 0x0021,
                                                                    payload: F.ipv4(payload: F.tcp(payload: [7, 7]))))
        #expect(F.decode(.ethernet, v4).decoded?.payload == [7, 7])
        let v6 = F.ethernet(type: 0x8864, vlans: [(0x8100, 12)],
                            payload: F.pppoeSession(pppProtocol: 0x0057, payload: F.ipv6(next: 17, payload: F.udp(payload: [3]))))
        let d = try #require(F.decode(.ethernet, v6).decoded)
        #expect(d.payload == [3] && d.vlanID == 12 && d.src == F.clientV6)
        let lcp = F.ethernet(type: 0x8864, payload: F.pppoeSession(pppProtocol: 0xC021, payload: [1, 1, 0, 4]))
        #expect(F.decode(.ethernet, lcp) == .skipped(.nonIP))
        let discovery = F.ethernet(type: 0x8863, payload: [0x11, 0x09, 0, 0, 0, 0])
        #expect(F.decode(.ethernet, discovery) == .skipped(.nonIP))
        var bad = F.pppoeSession(pppProtocol: 0x0021, payload: F.ipv4(payload: F.tcp(payload: [])))
        bad[0] = 0x12
        #expect(F.decode(.ethernet, F.ethernet(type: 0x8864, payload: bad)) == .malformed(.badPPPoEHeader))
        // Protocol-field compression: a one-byte PPP protocol.
        let compressed: [UInt8] = [0x11, 0, 0, 1] + F.be16(UInt16(1 + 40)) + [0x21] + F.ipv4(payload: F.tcp(payload: []))
        #expect(F.decode(.ethernet, F.ethernet(type: 0x8864, payload: compressed)).decoded != nil)
    }

    @Test("Linux cooked captures: SLL, SLL with VLAN, SLL2")
    func cookedCaptures() throws {
        let ip4 = F.ipv4(payload: F.tcp(payload: [1, 2]))
        #expect(F.decode(.linuxSLL, F.sll(protocol: 0x0800, payload: ip4)).decoded?.payload == [1, 2])
        let tagged = F.sll(protocol: 0x8100, payload: F.be16(55) + F.be16(0x0800) + ip4)
        let d = try #require(F.decode(.linuxSLL, tagged).decoded)
        #expect(d.vlanID == 55 && d.payload == [1, 2])
        let ip6 = F.ipv6(payload: F.tcp(payload: [3]))
        #expect(F.decode(.linuxSLL2, F.sll2(protocol: 0x86DD, payload: ip6)).decoded?.payload == [3])
        #expect(F.decode(.linuxSLL, F.sll(protocol: 0x0806, payload: [0, 1, 8, 0])) == .skipped(.nonIP))
        #expect(F.decode(.linuxSLL2, F.sll2(protocol: 0x0004, payload: [0, 0])) == .skipped(.nonIP))
        #expect(LinkType(dlt: 113) == .linuxSLL && LinkType(dlt: 276) == .linuxSLL2)
    }

    @Test("BSD loopback in both byte orders and every AF_INET6 value")
    func loopback() {
        let ip4 = F.ipv4(payload: F.tcp(payload: [4]))
        let ip6 = F.ipv6(payload: F.tcp(payload: [6]))
        for link in [LinkType.null, .loop] {
            for bigEndian in [false, true] {
                #expect(F.decode(link, F.loopback(family: 2, bigEndian: bigEndian, payload: ip4)).decoded?.payload == [4])
                for family: UInt32 in [10, 24, 28, 30] {
                    #expect(F.decode(link, F.loopback(family: family, bigEndian: bigEndian, payload: ip6)).decoded?.payload == [6])
                }
                #expect(F.decode(link, F.loopback(family: 7, bigEndian: bigEndian, payload: ip4)) == .skipped(.nonIP))
            }
        }
        #expect(LinkType(dlt: 0) == .null && LinkType(dlt: 108) == .loop)
    }

    @Test("Raw IP link types")
    func rawLinkTypes() throws {
        let ip4 = F.ipv4(proto: 17, payload: F.udp(payload: [1]))
        let ip6 = F.ipv6(next: 17, payload: F.udp(payload: [2]))
        for dlt: Int32 in [12, 14, 101] {
            let link = try #require(LinkType(dlt: dlt))
            #expect(link == .raw)
            #expect(F.decode(link, ip4).decoded?.payload == [1])
            #expect(F.decode(link, ip6).decoded?.payload == [2])
        }
        #expect(F.decode(try #require(LinkType(dlt: 228)), ip4).decoded?.payload == [1])
        #expect(F.decode(try #require(LinkType(dlt: 229)), ip6).decoded?.payload == [2])
        #expect(F.decode(.ipv4, ip6) == .malformed(.badIPVersion))
        #expect(F.decode(.ipv6, F.ipv4(payload: F.tcp(payload: [1]))) == .malformed(.badIPVersion))
        #expect(F.decode(.raw, [0x50] + ip4.dropFirst()) == .malformed(.badIPVersion))
        #expect(F.decode(.raw, []) == .malformed(.ipHeaderTruncated))
        #expect(LinkType(dlt: 147) == nil)
        #expect(LinkType.raw.linkTypeValue == 101)
    }

    @Test("IPv6 extension headers are walked")
    func ipv6ExtensionHeaders() throws {
        let tcp = F.tcp(payload: [0xEE])
        let chain = F.extensionHeader(next: 43) + F.extensionHeader(next: 60, units: 2)
            + F.extensionHeader(next: 135) + F.extensionHeader(next: 51) + F.authHeader(next: 60)
            + F.extensionHeader(next: 44) + F.fragmentHeader(next: 6, offset: 0, more: false, id: 9) + tcp
        let d = try #require(F.decode(.raw, F.ipv6(next: 0, payload: chain)).decoded)
        #expect(d.payload == [0xEE])
        #expect(F.decode(.raw, F.ipv6(next: 59, payload: [])) == .skipped(.noNextHeader))
        #expect(F.decode(.raw, F.ipv6(next: 58, payload: [128, 0, 0, 0])) == .skipped(.notTCPOrUDP))
        let ah4 = F.ipv4(proto: 51, payload: F.authHeader(next: 6) + tcp)
        #expect(F.decode(.raw, ah4).decoded?.payload == [0xEE])
        // 17 Destination Options headers: over the limit of 16.
        var long: [UInt8] = []
        for _ in 0..<17 { long += F.extensionHeader(next: 60) }
        #expect(F.decode(.raw, F.ipv6(next: 60, payload: long + tcp)) == .malformed(.tooManyExtensionHeaders))
        // A header whose length runs past the packet.
        let overlong = F.ipv6(next: 60, payload: [6, 200] + [UInt8](repeating: 0, count: 30))
        #expect(F.decode(.raw, overlong) == .malformed(.extensionHeaderTruncated))
        // IPv6-only headers are not walked in IPv4.
        #expect(F.decode(.raw, F.ipv4(proto: 60, payload: F.extensionHeader(next: 6) + tcp)) == .skipped(.notTCPOrUDP))
    }

    @Test("Ethernet padding is trimmed by the IP and UDP lengths")
    func paddingTrimmed() throws {
        var frame = F.ethernet(type: 0x0800, payload: F.ipv4(payload: F.tcp(flags: [.ack], payload: [])))
        frame += [UInt8](repeating: 0, count: 60 - frame.count) + [0xDE, 0xAD, 0xBE, 0xEF]  // padding + FCS
        let d = try #require(F.decode(.ethernet, frame).decoded)
        #expect(d.payload.isEmpty && !d.truncated)
        var udpFrame = F.ethernet(type: 0x0800, payload: F.ipv4(proto: 17, payload: F.udp(payload: [1, 2])))
        udpFrame += [UInt8](repeating: 0xFF, count: 20)
        #expect(F.decode(.ethernet, udpFrame).decoded?.payload == [1, 2])
        // A UDP length shorter than the IP payload wins.
        let shortUDP = F.ipv4(proto: 17, payload: F.udp(lengthOverride: 9, payload: [1, 2, 3]))
        #expect(F.decode(.raw, shortUDP).decoded?.payload == [1])
    }

    @Test("Snap-length truncation is flagged, not malformed")
    func snaplenTruncation() throws {
        let payload = [UInt8](repeating: 0x41, count: 1000)
        let frame = F.ethernet(type: 0x0800, payload: F.ipv4(payload: F.tcp(payload: payload)))
        let cut = Array(frame.prefix(96))
        let d = try #require(F.decode(.ethernet, cut, wireLength: frame.count).decoded)
        #expect(d.truncated)
        #expect(d.payload == Array(payload.prefix(96 - 54)))
        #expect(d.wireLength == frame.count)
        // Headers cut inside the TCP options: the packet is kept, with an empty payload.
        let withOptions = F.ethernet(type: 0x0800, payload: F.ipv4(payload: F.tcp(options: [1, 1, 1, 1, 1, 1, 1, 1], payload: payload)))
        let e = try #require(F.decode(.ethernet, Array(withOptions.prefix(14 + 20 + 24)), wireLength: withOptions.count).decoded)
        #expect(e.truncated && e.payload.isEmpty)
        var decoder = PacketDecoder()
        _ = F.decode(&decoder, .ethernet, cut, wireLength: frame.count)
        #expect(decoder.counters.truncatedPayloads == 1)
    }

    @Test("Zero IP length fields mean 'the rest of the frame' (TSO / BIG TCP)")
    func zeroLengthFields() throws {
        let payload = [UInt8](repeating: 7, count: 300)
        let v4 = F.ipv4(totalLengthOverride: 0, payload: F.tcp(payload: payload))
        #expect(F.decode(.raw, v4).decoded?.payload == payload)
        let v6 = F.ipv6(payloadLengthOverride: 0, payload: F.tcp(payload: payload))
        #expect(F.decode(.raw, v6).decoded?.payload == payload)
        let cut = try #require(F.decode(.raw, Array(v6.prefix(100)), wireLength: v6.count).decoded)
        #expect(cut.truncated && cut.payload.count == 100 - 60)
    }

    @Test("Malformed headers are reported with their reason")
    func malformedHeaders() {
        let tcp = F.tcp(payload: [1, 2, 3])
        #expect(F.decode(.raw, F.ipv4(ihlOverride: 4, payload: tcp)) == .malformed(.ipv4BadHeaderLength))
        #expect(F.decode(.raw, F.ipv4(ihlOverride: 0, payload: tcp)) == .malformed(.ipv4BadHeaderLength))
        #expect(F.decode(.raw, F.ipv4(ihlOverride: 15, payload: [])) == .malformed(.ipHeaderTruncated))
        #expect(F.decode(.raw, F.ipv4(totalLengthOverride: 19, payload: tcp)) == .malformed(.ipv4BadTotalLength))
        #expect(F.decode(.raw, F.ipv4(totalLengthOverride: 30, payload: tcp)) == .malformed(.tcpHeaderTruncated))
        #expect(F.decode(.ethernet, F.ethernet(type: 0x0800, payload: F.ipv4(versionOverride: 6, payload: tcp)))
                == .malformed(.badIPVersion))
        #expect(F.decode(.raw, F.ipv4(payload: F.tcp(dataOffsetOverride: 4, payload: []))) == .malformed(.tcpBadDataOffset))
        #expect(F.decode(.raw, F.ipv4(payload: F.tcp(dataOffsetOverride: 15, payload: [1]))) == .malformed(.tcpBadDataOffset))
        #expect(F.decode(.raw, F.ipv4(proto: 17, payload: F.udp(lengthOverride: 5, payload: [1]))) == .malformed(.udpBadLength))
        #expect(F.decode(.raw, F.ipv4(proto: 17, payload: [0, 53, 0])) == .malformed(.udpHeaderTruncated))
        #expect(F.decode(.ethernet, [1, 2, 3]) == .malformed(.linkHeaderTruncated))
        #expect(F.decode(.ethernet, F.ethernet(type: 0x0806, payload: [0, 1, 8, 0, 6, 4])) == .skipped(.nonIP))
        #expect(F.decode(.raw, F.ipv4(proto: 1, payload: [8, 0, 0, 0])) == .skipped(.notTCPOrUDP))
        #expect(F.decode(.raw, Array(F.ipv6(payload: tcp).prefix(39))) == .malformed(.ipHeaderTruncated))
    }

    @Test("Absurd length fields are clamped to what was captured")
    func absurdLengths() throws {
        let v4 = try #require(F.decode(.raw, F.ipv4(totalLengthOverride: 65535, payload: F.tcp(payload: [1, 2]))).decoded)
        #expect(v4.truncated && v4.payload == [1, 2])
        let udp = try #require(F.decode(.raw, F.ipv4(proto: 17, payload: F.udp(lengthOverride: 65535, payload: [1]))).decoded)
        #expect(udp.payload == [1] && !udp.truncated)
        let v6 = try #require(F.decode(.raw, F.ipv6(payloadLengthOverride: 65535, payload: F.tcp(payload: [3]))).decoded)
        #expect(v6.truncated && v6.payload == [3])
        let ext = F.ipv6(next: 0, payloadLengthOverride: 65535, payload: [6, 255, 0, 0, 0, 0, 0, 0])
        #expect(F.decode(.raw, ext) == .malformed(.extensionHeaderTruncated))
        let pppoeLength = [0x11, 0, 0, 1] + F.be16(0xFFFF) + F.be16(0x0021) + F.ipv4(payload: F.tcp(payload: [5]))
        #expect(F.decode(.ethernet, F.ethernet(type: 0x8864, payload: pppoeLength)).decoded?.payload == [5])
    }

    /// Every link type, with a little of everything, for the truncation sweep.
    static var samples: [(LinkType, [UInt8])] {
        let tcp4 = F.ipv4(options: [1, 1, 1, 1], payload: F.tcp(options: [1, 1, 1, 1], payload: F.httpPayload))
        let udp6 = F.ipv6(next: 0, payload: F.extensionHeader(next: 51) + F.authHeader(next: 44)
                          + F.fragmentHeader(next: 17, offset: 0, more: false, id: 1) + F.udp(payload: [1, 2, 3]))
        let frag6 = F.ipv6(next: 44, payload: F.fragmentHeader(next: 6, offset: 0, more: true, id: 77)
                           + F.tcp(payload: [UInt8](repeating: 1, count: 12)))
        let frag4 = F.ipv4(flagsAndOffset: 0x2000, payload: F.tcp(payload: [UInt8](repeating: 2, count: 12)))
        return [
            (.ethernet, F.ethernet(type: 0x0800, payload: tcp4)),
            (.ethernet, F.ethernet(type: 0x86DD, vlans: [(0x88A8, 1), (0x8100, 2)], payload: udp6)),
            (.ethernet, F.ethernet(type: 0x8864, payload: F.pppoeSession(pppProtocol: 0x0057, payload: udp6))),
            (.ethernet, F.ethernet(type: 0x0800, payload: frag4)),
            (.raw, frag6),
            (.raw, tcp4), (.ipv4, tcp4), (.ipv6, udp6),
            (.null, F.loopback(family: 2, bigEndian: false, payload: tcp4)),
            (.loop, F.loopback(family: 30, bigEndian: true, payload: udp6)),
            (.linuxSLL, F.sll(protocol: 0x8100, payload: F.be16(3) + F.be16(0x0800) + tcp4)),
            (.linuxSLL2, F.sll2(protocol: 0x86DD, payload: udp6)),
        ]
    }

    @Test("Every truncation of valid packets decodes without trapping")
    func everyTruncation() {
        var decoder = PacketDecoder()
        var count: UInt64 = 0
        for (link, frame) in Self.samples {
            #expect(F.decode(&decoder, link, frame) != .malformed(.linkHeaderTruncated))
            count += 1
            for length in 0..<frame.count {
                let snapshot = F.decode(&decoder, link, Array(frame.prefix(length)), wireLength: frame.count)
                count += 1
                if let d = snapshot.decoded {
                    #expect(d.payload.count <= length)
                }
                // With the wire length equal to the captured length, it is a corrupt packet, not a snaplen cut.
                _ = F.decode(&decoder, link, Array(frame.prefix(length)))
                count += 1
            }
        }
        #expect(decoder.counters.packets == count)
    }

    @Test("Random bytes and random mutations never trap")
    func randomInputs() {
        var rng = FixtureRNG(seed: 0xC0FFEE)
        var decoder = PacketDecoder()
        let links: [LinkType] = [.null, .loop, .ethernet, .raw, .ipv4, .ipv6, .linuxSLL, .linuxSLL2]
        let samples = Self.samples
        for round in 0..<20_000 {
            var frame: [UInt8]
            let link: LinkType
            if round % 2 == 0 {
                let (l, f) = samples[Int(rng.next() % UInt64(samples.count))]
                link = l
                frame = f
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    frame[Int(rng.next() % UInt64(frame.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
                if rng.next() % 3 == 0 { frame = Array(frame.prefix(Int(rng.next() % UInt64(frame.count + 1)))) }
            } else {
                link = links[Int(rng.next() % UInt64(links.count))]
                frame = (0..<Int(rng.next() % 128)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            }
            let wire = frame.count + Int(rng.next() % 3) * 100
            _ = F.decode(&decoder, link, frame, wireLength: wire, timestampNs: Int64(round) * 1_000_000)
        }
        let c = decoder.counters
        #expect(c.packets == 20_000)
        #expect(c.tcpPackets + c.udpPackets + c.skipped.total + c.malformed.total <= 20_000)
        #expect(c.fragments.heldBytes <= PacketDecoder.Limits().fragments.maxHeldBytes)
    }

    @Test("Counters by outcome")
    func counters() {
        var decoder = PacketDecoder()
        _ = F.decode(&decoder, .raw, F.ipv4(payload: F.tcp(payload: [1])))
        _ = F.decode(&decoder, .raw, F.ipv4(proto: 17, payload: F.udp(payload: [1])))
        _ = F.decode(&decoder, .raw, F.ipv4(proto: 1, payload: [8, 0, 0, 0]))
        _ = F.decode(&decoder, .ethernet, F.ethernet(type: 0x0806, payload: [0]))
        _ = F.decode(&decoder, .raw, F.ipv4(ihlOverride: 3, payload: []))
        _ = F.decode(&decoder, .raw, F.ipv4(ihlOverride: 3, payload: []))
        let c = decoder.counters
        #expect(c.packets == 6)
        #expect(c.tcpPackets == 1 && c.udpPackets == 1)
        #expect(c.nonTCPUDP == 1 && c.nonIP == 1)
        #expect(c.malformed[.ipv4BadHeaderLength] == 2 && c.malformedTotal == 2)
        #expect(c.bytes > 0)
        #expect(MalformedReason.allCases.allSatisfy { Int($0.rawValue) < ReasonCounts<MalformedReason>.capacity })
        #expect(SkipReason.allCases.allSatisfy { Int($0.rawValue) < ReasonCounts<SkipReason>.capacity })
    }

    @Test("Checksums are ignored")
    func checksumsIgnored() {
        var ip = F.ipv4(payload: F.tcp(payload: [1]))
        ip[10] = 0xFF; ip[11] = 0xFF        // bad IP header checksum
        ip[20 + 16] = 0x12; ip[20 + 17] = 0x34  // bad TCP checksum
        #expect(F.decode(.raw, ip).decoded?.payload == [1])
    }
}

@Suite("IPAddress")
struct IPAddressTests {
    @Test("IPv4 text and bytes")
    func ipv4() throws {
        let a = IPAddress(192, 168, 1, 20)
        #expect(a.description == "192.168.1.20")
        #expect(IPAddress("192.168.1.20") == a)
        #expect(a.ipv4Value == 0xC0A8_0114 && !a.isIPv6 && a.family == 4 && a.byteCount == 4)
        let b = a.bytes16
        #expect(b.0 == 192 && b.1 == 168 && b.2 == 1 && b.3 == 20 && b.4 == 0 && b.15 == 0)
        #expect(a.withUnsafeBytes { Array($0) } == [192, 168, 1, 20])
        for bad in ["1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3", "a.b.c.d", ""] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
    }

    @Test("IPv6 text follows RFC 5952")
    func ipv6Text() throws {
        let cases: [(String, String)] = [
            ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            ("::1", "::1"), ("::", "::"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
            ("fe80::", "fe80::"),
            ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
            ("2001:DB8::AB:CD", "2001:db8::ab:cd"),
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ]
        for (input, expected) in cases {
            let a = try #require(IPAddress(input), "\(input)")
            #expect(a.isIPv6 && a.family == 6)
            #expect(a.description == expected)
            #expect(IPAddress(a.description) == a)
        }
        for bad in ["1::2::3", ":1:2", "1:2:3:4:5:6:7:8:9", "12345::", "1:2:3:4:5:6:7", "g::1", "1:"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
        let a = try #require(IPAddress("2001:db8::ff"))
        #expect(a.withUnsafeBytes { Array($0) } == [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [0xff])
        #expect(a.bytes16.0 == 0x20 && a.bytes16.15 == 0xFF)
    }

    @Test("Families stay distinct; ordering puts IPv4 first")
    func identity() {
        let v4 = IPAddress(1, 2, 3, 4)
        let compat = IPAddress("::1.2.3.4")!
        #expect(v4 != compat)
        #expect(Set([v4, compat, IPAddress(1, 2, 3, 4)]).count == 2)
        #expect(v4 < compat && IPAddress(1, 2, 3, 4) < IPAddress(1, 2, 3, 5))
        #expect(MemoryLayout<IPAddress>.size <= 17)
        let raw: [UInt8] = [10, 0, 0, 9]
        #expect(raw.withUnsafeBytes { IPAddress(networkBytes: $0) } == IPAddress(10, 0, 0, 9))
    }

    @Test("TCP flags print like tcpdump")
    func flags() {
        #expect(TCPFlags([.syn, .ack]).description == "S.")
        #expect(TCPFlags([.fin, .psh, .ack]).description == "FP.")
        #expect(TCPFlags().description == "none")
    }
}
