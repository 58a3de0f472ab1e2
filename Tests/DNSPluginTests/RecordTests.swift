// One test per record type: a response built from bytes, decoded through the
// real plugin over a UDP pseudo-flow.

import Testing

/// The first answer of a query/response pair whose response carries `answers`.
private func decode(_ type: RRType, _ answers: [[UInt8]], name: String = "example.com") throws -> JSON {
    let entries = try runUDP([(c2s, query(7, name, type)), (s2c, response(7, name, type, answers: answers))])
    try #require(entries.count == 1)
    #expect(entries[0].flags.isEmpty, "unexpected flags \(entries[0].flags): \(entries[0].response?.str("error") ?? "")")
    return try #require(entries[0].answer)
}

@Suite struct RecordTests {
    @Test func a() throws {
        let r = try decode(.a, [rr(toQName, 1, [93, 184, 216, 34])])
        #expect(r.str("name") == "example.com")
        #expect(r.str("type") == "A")
        #expect(r.str("class") == "IN")
        #expect(r.int("ttl") == 300)
        #expect(r.str("address") == "93.184.216.34")
    }

    @Test func aaaa() throws {
        let addr: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        #expect(try decode(.aaaa, [rr(toQName, 28, addr)]).str("address") == "2001:db8::1")
        let addr2: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]
        #expect(try decode(.aaaa, [rr(toQName, 28, addr2)]).str("address") == "2001:db8:1::1:0:1")
    }

    @Test func cnameNSPTR() throws {
        // The target is compressed: "www" + pointer to "example.com".
        let target: [UInt8] = [3] + Array("www".utf8) + [0xC0, 0x0C]
        #expect(try decode(.cname, [rr(toQName, 5, target)]).str("target") == "www.example.com")
        #expect(try decode(.ns, [rr(toQName, 2, wireName("ns1.example.net"))]).str("target") == "ns1.example.net")
        let ptr = try decode(.ptr, [rr(toQName, 12, wireName("host.example.com"))], name: "4.3.2.1.in-addr.arpa")
        #expect(ptr.str("target") == "host.example.com")
        #expect(ptr.str("name") == "4.3.2.1.in-addr.arpa")
    }

    @Test func mx() throws {
        let r = try decode(.mx, [rr(toQName, 15, u16(10) + wireName("mail.example.com"))])
        #expect(r.int("preference") == 10)
        #expect(r.str("exchange") == "mail.example.com")
    }

    @Test func txt() throws {
        let rdata: [UInt8] = [5] + Array("hello".utf8) + [0] + [3, 0x61, 0x00, 0x22]
        let r = try decode(.txt, [rr(toQName, 16, rdata)])
        #expect(r.strs("strings") == ["hello", "", "a\\000\\\""])
    }

    @Test func soa() throws {
        let rdata = wireName("ns.example.com") + wireName("hostmaster.example.com") + u32(2024010101) + u32(7200)
            + u32(3600) + u32(1_209_600) + u32(300)
        let entries = try runUDP([
            (c2s, query(9, "nope.example.com")),
            (s2c, response(9, "nope.example.com", rcode: 3, authorities: [rr(wireName("example.com"), 6, rdata)])),
        ])
        try #require(entries.count == 1)
        #expect(entries[0].str("statusText") == "NXDOMAIN")
        #expect(entries[0].str("summary") == "A nope.example.com -> NXDOMAIN 0 answers")
        let r = try #require(entries[0].response?.arr("authorities")?.first)
        #expect(r.str("mname") == "ns.example.com")
        #expect(r.str("rname") == "hostmaster.example.com")
        #expect(r.int("serial") == 2024010101)
        #expect(r.int("refresh") == 7200)
        #expect(r.int("retry") == 3600)
        #expect(r.int("expire") == 1_209_600)
        #expect(r.int("minimum") == 300)
    }

    @Test func srv() throws {
        let r = try decode(.srv, [rr(toQName, 33, u16(1) + u16(5) + u16(5060) + wireName("sip.example.com"))],
                           name: "_sip._tcp.example.com")
        #expect(r.int("priority") == 1)
        #expect(r.int("weight") == 5)
        #expect(r.int("port") == 5060)
        #expect(r.str("target") == "sip.example.com")
    }

    @Test func caa() throws {
        let rdata: [UInt8] = [0x80, 5] + Array("issue".utf8) + Array("letsencrypt.org".utf8)
        let r = try decode(.caa, [rr(toQName, 257, rdata)])
        #expect(r.int("flags") == 128)
        #expect(r.bool("critical") == true)
        #expect(r.str("tag") == "issue")
        #expect(r.str("value") == "letsencrypt.org")
    }

    @Test func https() throws {
        var rdata = u16(1) + [0]  // priority 1, target "."
        rdata += u16(1) + u16(6) + [2] + Array("h2".utf8) + [2] + Array("h3".utf8)  // alpn
        rdata += u16(3) + u16(2) + u16(8443)  // port
        rdata += u16(4) + u16(8) + [192, 0, 2, 1, 192, 0, 2, 2]  // ipv4hint
        rdata += u16(6) + u16(16) + [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]
        let r = try decode(.https, [rr(toQName, 65, rdata)])
        #expect(r.str("type") == "HTTPS")
        #expect(r.int("priority") == 1)
        #expect(r.str("target") == ".")
        let params = try #require(r.arr("params"))
        #expect(params.map { $0.str("key") ?? "" } == ["alpn", "port", "ipv4hint", "ipv6hint"])
        #expect(params.map { $0.str("value") ?? "" } == ["h2,h3", "8443", "192.0.2.1,192.0.2.2", "2001:db8::1"])
        let svcb = try decode(.svcb, [rr(toQName, 64, u16(0) + wireName("svc.example.net"))])
        #expect(svcb.int("priority") == 0)
        #expect(svcb.str("target") == "svc.example.net")
    }

    @Test func optWithOptions() throws {
        // ECS 192.0.2.0/24, a client cookie, NSID; DO bit; payload 1232.
        let ecs = u16(8) + u16(7) + u16(1) + [24, 0] + [192, 0, 2]
        let cookie = u16(10) + u16(8) + [1, 2, 3, 4, 5, 6, 7, 8]
        let nsid = u16(3) + u16(0)
        let opt = rr([0], 41, ttl: 0x0000_8000, cls: 1232, ecs + cookie + nsid)
        let entries = try runUDP([(c2s, query(3, "example.com", additionals: [opt]))])
        try #require(entries.count == 1)
        let o = try #require(entries[0].request?.arr("additionals")?.first)
        #expect(o.str("type") == "OPT")
        #expect(o.str("name") == ".")
        #expect(o.int("udpPayloadSize") == 1232)
        #expect(o.bool("do") == true)
        #expect(o.int("version") == 0)
        let options = try #require(o.arr("options"))
        #expect(options.map { $0.str("name") ?? "" } == ["CLIENT-SUBNET", "COOKIE", "NSID"])
        #expect(options[0].str("address") == "192.0.2.0")
        #expect(options[0].int("sourcePrefixLength") == 24)
        #expect(options[1].str("clientCookie") == "0102030405060708")
        #expect(options[1].str("data") == "0102030405060708")
        #expect(options[2].int("code") == 3)
    }

    @Test func extendedRcode() throws {
        // BADVERS = 16: upper bits 1 in the OPT TTL, lower bits 0 in the header.
        let opt = rr([0], 41, ttl: 0x0100_0000, cls: 512, [])
        let entries = try runUDP([(c2s, query(4, "example.com")), (s2c, response(4, "example.com", additionals: [opt]))])
        #expect(entries.first?.str("statusText") == "BADVERS")
        #expect(entries.first?.response?.int("rcodeCode") == 16)
    }

    @Test func unknownTypeIsHex() throws {
        let r = try decode(.a, [rr(toQName, 99_9, [0xde, 0xad])])
        #expect(r.str("type") == "TYPE999")
        #expect(r.str("rdata") == "dead")
    }

    @Test func escapedNames() throws {
        // A label with a dot and a space inside.
        let name: [UInt8] = [3, 0x61, 0x2E, 0x20, 3] + Array("com".utf8) + [0]
        var m = u16(1) + u16(0x0100) + u16(1) + u16(0) + u16(0) + u16(0) + name + u16(1) + u16(1)
        let entries = try runUDP([(c2s, m)])
        #expect(entries.first?.request?.arr("questions")?.first?.str("name") == "a\\.\\032.com")
        m = message(id: 2, flags: 0x0100, questions: [(".", 2)])
        #expect(try runUDP([(c2s, m)]).first?.str("summary") == ".")
    }

    @Test func mdnsAnnouncement() throws {
        // An mDNS response without questions; the class's top bit is cache-flush.
        let m = message(id: 0, flags: 0x8400, questions: [],
                        answers: [rr(wireName("printer.local"), 1, ttl: 120, cls: 0x8001, [192, 168, 1, 9])])
        let entries = try runUDP([(s2c, m)])
        try #require(entries.count == 1)
        #expect(entries[0].flags == ["responseOnly"])
        #expect(entries[0].str("method") == "QUERY")
        #expect(entries[0].str("summary") == "QUERY -> NOERROR 1 answer")
        let r = try #require(entries[0].answer)
        #expect(r.str("class") == "IN")
        #expect(r.bool("cacheFlush") == true)
        #expect(r.str("address") == "192.168.1.9")
    }

    @Test func updateOpcode() throws {
        // RFC 2136 UPDATE: zone in the question section, an update in the authority section.
        let m = message(id: 77, flags: 0x2800, questions: [("example.com", 6)],
                        authorities: [rr(wireName("new.example.com"), 1, [192, 0, 2, 7])])
        let entries = try runUDP([(c2s, m), (s2c, message(id: 77, flags: 0xA800, questions: [("example.com", 6)]))])
        try #require(entries.count == 1)
        #expect(entries[0].request?.str("opcode") == "UPDATE")
        #expect(entries[0].request?.arr("authorities")?.first?.str("address") == "192.0.2.7")
        #expect(entries[0].str("summary") == "SOA example.com -> NOERROR 0 answers")
    }
}
