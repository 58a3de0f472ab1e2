// HPACK against the examples of RFC 7541 Appendix C, Huffman decoding, and
// the frame header checks.

import Testing

@testable import HTTP2Plugin

private func hex(_ s: String) -> [UInt8] {
    let digits = Array(s.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

private func fields(_ l: HeaderList) -> [String] {
    l.fields.indices.map { i in
        l.withField(i) { n, v in String(decoding: n, as: UTF8.self) + ": " + String(decoding: v, as: UTF8.self) }
    }
}

/// Decodes `blocks` in order with one decoder; returns the fields of each and the table size after each.
private func decodeAll(_ blocks: [String], tableSize: Int = 4096) -> ([[String]], [Int]) {
    var d = HPACKDecoder()
    d.table.setMaxSize(tableSize)
    var out: [[String]] = []
    var sizes: [Int] = []
    for b in blocks {
        let l = HeaderList()
        let ok = hex(b).withUnsafeBytes { d.decode($0, into: l, limits: .standard) }
        #expect(ok, "block \(b) failed: \(d.errors)")
        out.append(fields(l))
        sizes.append(d.table.size)
    }
    return (out, sizes)
}

@Suite struct HPACKTests {
    @Test func literalWithIndexing() {  // C.2.1
        let (f, s) = decodeAll(["400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"])
        #expect(f == [["custom-key: custom-header"]])
        #expect(s == [55])
    }

    @Test func literalWithoutIndexingAndNeverIndexed() {  // C.2.2, C.2.3
        let (f, s) = decodeAll(["040c 2f73 616d 706c 652f 7061 7468", "1008 7061 7373 776f 7264 0673 6563 7265 74"])
        #expect(f == [[":path: /sample/path"], ["password: secret"]])
        #expect(s == [0, 0])
    }

    @Test func indexed() {  // C.2.4
        #expect(decodeAll(["82"]).0 == [[":method: GET"]])
    }

    static let requests = [
        [":method: GET", ":scheme: http", ":path: /", ":authority: www.example.com"],
        [":method: GET", ":scheme: http", ":path: /", ":authority: www.example.com", "cache-control: no-cache"],
        [":method: GET", ":scheme: https", ":path: /index.html", ":authority: www.example.com", "custom-key: custom-value"],
    ]

    @Test func requestsWithoutHuffman() {  // C.3
        let (f, s) = decodeAll([
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ])
        #expect(f == Self.requests)
        #expect(s == [57, 110, 164])
    }

    @Test func requestsWithHuffman() {  // C.4
        let (f, s) = decodeAll([
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ])
        #expect(f == Self.requests)
        #expect(s == [57, 110, 164])
    }

    static let responses = [
        [":status: 302", "cache-control: private", "date: Mon, 21 Oct 2013 20:13:21 GMT", "location: https://www.example.com"],
        [":status: 307", "cache-control: private", "date: Mon, 21 Oct 2013 20:13:21 GMT", "location: https://www.example.com"],
        [":status: 200", "cache-control: private", "date: Mon, 21 Oct 2013 20:13:22 GMT", "location: https://www.example.com",
         "content-encoding: gzip", "set-cookie: foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"],
    ]

    @Test func responsesWithoutHuffmanAndEviction() {  // C.5, table size 256
        let (f, s) = decodeAll([
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
        ], tableSize: 256)
        #expect(f == Self.responses)
        #expect(s == [222, 222, 215])
    }

    @Test func responsesWithHuffman() {  // C.6, table size 256
        let (f, s) = decodeAll([
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ff c1 c0 bf",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ], tableSize: 256)
        #expect(f == Self.responses)
        #expect(s == [222, 222, 215])
    }

    @Test func sizeUpdateEvicts() {
        var d = HPACKDecoder()
        let l = HeaderList()
        _ = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572").withUnsafeBytes { d.decode($0, into: l, limits: .standard) }
        #expect(d.table.count == 1)
        _ = hex("20").withUnsafeBytes { d.decode($0, into: l, limits: .standard) }  // size update to 0
        #expect(d.table.count == 0)
        #expect(d.table.maxSize == 0)
    }

    @Test func unknownIndexMidstreamIsReportedNotGuessed() {
        var d = HPACKDecoder()
        d.tableUnknown = true
        let l = HeaderList()
        // 0xbe = index 62 (the newest dynamic entry, never seen); 0x82 = :method GET
        let ok = hex("be 82").withUnsafeBytes { d.decode($0, into: l, limits: .standard) }
        #expect(ok)
        #expect(fields(l) == [":method: GET"])
        #expect(d.errors.count == 1)
        #expect(d.errors.first?.contains("index 62 unknown") == true)
    }

    @Test func unknownNameStillOccupiesItsSlot() {
        var d = HPACKDecoder()
        d.tableUnknown = true
        let l = HeaderList()
        // literal with indexing, name index 70 (unknown), value "v"; then index 62 must be the unknown one,
        // and a fresh literal inserted after it makes that one 63.
        _ = (hex("7f07 0176") + [0x40, 0x01, 0x6b, 0x01, 0x77]).withUnsafeBytes { d.decode($0, into: l, limits: .standard) }
        #expect(fields(l) == ["k: w"])
        let l2 = HeaderList()
        _ = hex("be bf").withUnsafeBytes { d.decode($0, into: l2, limits: .standard) }
        #expect(fields(l2) == ["k: w"])
        #expect(d.errors.first?.contains("index 63 unknown") == true)
    }

    @Test func indexBeyondTablesIsAnError() {
        var d = HPACKDecoder()
        let l = HeaderList()
        let ok = hex("ff 00").withUnsafeBytes { d.decode($0, into: l, limits: .standard) }  // index 127
        #expect(!ok)
        #expect(d.errors.first?.contains("beyond") == true)
    }

    @Test func integerOverflowAndTruncatedStringsFail() {
        for b in ["ff ff ff ff ff ff 7f", "40 85 61", "00 03 61 62", "00 7f 80 80 80 80 80 80 80 80 80 7f 61",
                  "ff 80 80 80 80 80 80 80 80 80 80 01"] {
            var d = HPACKDecoder()
            let ok = hex(b).withUnsafeBytes { d.decode($0, into: HeaderList(), limits: .standard) }
            #expect(!ok, "\(b)")
        }
    }

    @Test func headerListCapsAreKept() {
        var limits = HTTP2Limits()
        limits.maxHeaderFields = 2
        var d = HPACKDecoder()
        let l = HeaderList()
        _ = hex("82 86 84 87").withUnsafeBytes { d.decode($0, into: l, limits: limits) }
        #expect(l.fields.count == 2)
        #expect(l.truncated)
    }
}

@Suite struct HuffmanTests {
    private func decode(_ h: String) -> String? {
        var out: [UInt8] = []
        var cut = false
        let ok = hex(h).withUnsafeBytes { HuffmanTable.shared.decode($0, into: &out, cap: 1 << 20, cut: &cut) }
        return ok ? String(decoding: out, as: UTF8.self) : nil
    }

    @Test func rfcStrings() {
        #expect(decode("f1e3 c2e5 f23a 6ba0 ab90 f4ff") == "www.example.com")
        #expect(decode("a8eb 1064 9cbf") == "no-cache")
        #expect(decode("25a8 49e9 5ba9 7d7f") == "custom-key")
        #expect(decode("d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff") == "Mon, 21 Oct 2013 20:13:21 GMT")
        #expect(decode("") == "")
    }

    /// Every byte value round-trips through an encoder built from the code table.
    @Test func everySymbol() {
        var bits: [Bool] = []
        let input = (0..<256).map { UInt8($0) } + Array("kubeshark".utf8)
        for b in input {
            let (code, len) = huffmanCodes[Int(b)]
            for i in stride(from: Int(len) - 1, through: 0, by: -1) { bits.append(code >> UInt32(i) & 1 == 1) }
        }
        while bits.count % 8 != 0 { bits.append(true) }
        let encoded = stride(from: 0, to: bits.count, by: 8).map { i in
            bits[i..<i + 8].reduce(UInt8(0)) { $0 << 1 | ($1 ? 1 : 0) }
        }
        var out: [UInt8] = []
        var cut = false
        let ok = encoded.withUnsafeBytes { HuffmanTable.shared.decode($0, into: &out, cap: 1 << 20, cut: &cut) }
        #expect(ok)
        #expect(out == input)
    }

    @Test func badPaddingAndEOSAreRejected() {
        #expect(decode("00") == nil)  // '0' (00000) then 000 padding: padding must be 1s
        #expect(decode("ff ff ff ff") == nil)  // EOS (30 ones) inside the string
        #expect(decode("f1e3 c2e5 f23a 6ba0 ab90 f4ff ff") == nil)  // 8 bits of padding
    }

    @Test func capDropsButKeepsDecoding() {
        var out: [UInt8] = []
        var cut = false
        let ok = hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff").withUnsafeBytes { HuffmanTable.shared.decode($0, into: &out, cap: 3, cut: &cut) }
        #expect(ok)
        #expect(out == Array("www".utf8))
        #expect(cut)
    }
}

@Suite struct FrameTests {
    @Test func header() {
        let b: [UInt8] = [0, 1, 2, 1, 0x25, 0x80, 0, 0, 5]
        let h = b.withUnsafeBytes { FrameHeader($0, at: 0) }
        #expect(h.length == 258)
        #expect(h.type == 1)
        #expect(h.flags == 0x25)
        #expect(h.streamID == 5)  // the reserved bit is dropped
        #expect(h.plausible())
    }

    @Test func plausibility() {
        func p(_ b: [UInt8]) -> Bool { b.withUnsafeBytes { FrameHeader($0, at: 0) }.plausible() }
        #expect(p([0, 0, 6, 4, 0, 0, 0, 0, 0]))  // SETTINGS
        #expect(!p([0, 0, 5, 4, 0, 0, 0, 0, 0]))  // SETTINGS length not a multiple of 6
        #expect(!p([0, 0, 6, 4, 0, 0, 0, 0, 1]))  // SETTINGS on a stream
        #expect(!p([0, 0, 8, 6, 0, 0, 0, 0, 1]))  // PING on a stream
        #expect(!p([0, 0, 1, 0, 0, 0, 0, 0, 0]))  // DATA on stream 0
        #expect(!p([0, 0, 1, 0x0a, 0, 0, 0, 0, 1]))  // unknown type
        #expect(!p([0, 0, 4, 3, 0, 0, 0, 0, 1]) == false)  // RST_STREAM ok
    }

    @Test func runsOfFrames() {
        var need = 0
        let two = settings() + frame(8, stream: 0, u32(1000))
        #expect(two.withUnsafeBytes { plausibleFrames($0, need: &need) } == 2)
        let partial = Array(two.prefix(12))
        #expect(partial.withUnsafeBytes { plausibleFrames($0, need: &need) } == 1)
        #expect(bytes("GET / HTTP/1.1\r\n").withUnsafeBytes { plausibleFrames($0, need: &need) } == nil)
    }
}
