import Foundation
import Host
import PluginAPI
import Testing

/// Multi-message conversations used by the split and truncation tests.
enum Conversations {
    static let text = textBody(900)

    /// Pipelining, 100-continue, chunked + gzip, trailers, HEAD, keep-alive.
    static let mixed: [Segment] = {
        let gz = compress(text, .gzip)
        return [
            (c2s, request("GET", "/a?x=1&y=%20z") + bytes("POST /upload HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\nContent-Length: 26\r\n\r\n")),
            (s2c, response(200, "OK", headers: [("Content-Type", "text/plain")], body: bytes("alpha"))
                + bytes("HTTP/1.1 100 Continue\r\n\r\n")),
            (c2s, bytes("abcdefghijklmnopqrstuvwxyz")),
            (s2c, bytes("HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
                + chunked(gz, size: 97)),
            (c2s, request("GET", "/c") + request("HEAD", "/d")),
            (s2c, bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") + chunked(bytes("chunk one two three"), size: 4, trailers: [("X-Sum", "9")])
                + bytes("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")),
        ]
    }()

    /// Chunked request, raw deflate, 103 hints, HTTP/1.0 read-until-close.
    static let encodings: [Segment] = [
        (c2s, bytes("PUT /doc HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n") + chunked(bytes("request body in chunks"), size: 6, trailers: [("X-T", "1")])),
        (s2c, bytes("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
            + response(200, "OK", headers: [("Content-Encoding", "deflate")], body: compress(text, .raw))),
        (c2s, request("GET", "/old", version: "1.0", headers: [("X-Fold", "a\r\n b")])),
        (s2c, bytes("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end of the connection")),
    ]

    /// WebSocket upgrade then frames.
    static let websocket: [Segment] = [
        (c2s, request("GET", "/ws", headers: [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13")])),
        (s2c, bytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n") + [0x81, 0x02, 0x68, 0x69]),
        (c2s, [0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69, 0x88, 0x80, 0, 0, 0, 0]),
    ]

    /// Messages cut across segments captured at different times: a head in three
    /// pieces, whole requests starting inside a segment, a chunked body cut
    /// mid-size-line. (Checks the first-byte timestamps do not depend on the cuts.)
    static let fragmented: [Segment] = {
        let r1 = request("GET", "/frag/one", headers: [("Accept", "*/*")])
        let r2 = request("POST", "/frag/two", body: bytes("0123456789"))
        let r3 = request("GET", "/frag/three")
        let s1 = bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") + chunked(text, size: 100)
        let s2 = response(200, "OK", body: bytes("second"))
        let s3 = response(404, "Not Found")
        return [
            (c2s, Array(r1[0..<7])), (c2s, Array(r1[7..<30])), (c2s, Array(r1[30...]) + r2 + Array(r3[0..<10])),
            (s2c, Array(s1[0..<60])), (c2s, Array(r3[10...])), (s2c, Array(s1[60..<301])),
            (s2c, Array(s1[301...]) + s2 + Array(s3[0..<5])), (s2c, Array(s3[5...])),
        ]
    }()

    static let all: [(String, [Segment])] = [
        ("mixed", mixed), ("encodings", encodings), ("websocket", websocket), ("fragmented", fragmented),
    ]
}

/// Segments with their capture times: segment i was captured at baseTs + i ms.
struct Timed {
    var segments: [Segment] = []
    var timestamps: [Int64] = []

    init(_ segments: [Segment]) {
        self.segments = segments
        timestamps = segments.indices.map { baseTs + Int64($0) * 1_000_000 }
    }

    init() {}

    mutating func append(_ s: Segment, _ ts: Int64) {
        segments.append(s)
        timestamps.append(ts)
    }
}

/// `segments` with the one holding global byte offset `k` cut in two at `k`;
/// both pieces keep the capture time of the segment they come from.
func split(_ t: Timed, at k: Int) -> Timed {
    var out = Timed()
    var offset = 0
    for ((d, b), ts) in zip(t.segments, t.timestamps) {
        if k > offset && k < offset + b.count {
            out.append((d, Array(b[0..<(k - offset)])), ts)
            out.append((d, Array(b[(k - offset)...])), ts)
        } else {
            out.append((d, b), ts)
        }
        offset += b.count
    }
    return out
}

/// Every byte its own segment, with the capture time of the segment it comes from.
func bytewise(_ t: Timed) -> Timed {
    var out = Timed()
    for ((d, b), ts) in zip(t.segments, t.timestamps) {
        for byte in b { out.append((d, [byte]), ts) }
    }
    return out
}

/// `segments` with the one holding global byte offset `k` cut in two at `k`.
func split(_ segments: [Segment], at k: Int) -> [Segment] { split(Timed(segments), at: k).segments }

/// `segments` cut after `k` bytes in total.
func truncate(_ segments: [Segment], at k: Int) -> [Segment] {
    var out: [Segment] = []
    var left = k
    for (d, b) in segments where left > 0 {
        out.append((d, Array(b.prefix(left))))
        left -= min(left, b.count)
    }
    return out
}

func constant(_ n: Int) -> [Int64] { Array(repeating: baseTs, count: n) }

@Suite struct RobustnessTests {
    /// The entries (timestamps and elapsed times included) do not depend on
    /// where the stream is cut: every cut into two segments, and one byte per segment.
    @Test(arguments: Conversations.all.map(\.0))
    func splitAtEveryByte(_ name: String) throws {
        let whole = Timed(try #require(Conversations.all.first { $0.0 == name }?.1))
        let h = try makeHarness()
        let reference = normalized(h.runTCP(segments: whole.segments, timestampsNs: whole.timestamps))
        #expect(!reference.isEmpty)
        let total = whole.segments.reduce(0) { $0 + $1.1.count }
        var failures = 0
        for k in 1..<total {
            let s = split(whole, at: k)
            let got = normalized(h.runTCP(segments: s.segments, timestampsNs: s.timestamps))
            if got != reference {
                failures += 1
                if failures <= 2 {
                    Issue.record("\(name): split at \(k) differs:\n\(got.joined(separator: "\n"))\nvs\n\(reference.joined(separator: "\n"))")
                }
            }
        }
        #expect(failures == 0)
        let singles = bytewise(whole)
        #expect(normalized(h.runTCP(segments: singles.segments, timestampsNs: singles.timestamps)) == reference)
        #expect(h.counters["host.violations"] == nil)
        #expect(h.counters["host.contract_violations"] == nil)
    }

    @Test func mixedConversationContent() throws {
        let entries = try run(Conversations.mixed)
        try #require(entries.count == 4)
        #expect(entries.map { $0.str("summary") ?? "" } == ["/a?x=1&y=%20z", "/upload", "/c", "/d"])
        #expect(entries[1].arr("interimResponses")?.first?.int("status") == 100)
        #expect(entries[1].request?.obj("postData")?.str("text") == "abcdefghijklmnopqrstuvwxyz")
        #expect(entries[1].response?.obj("content")?.str("text") == String(decoding: Conversations.text, as: UTF8.self))
        #expect(entries[2].response?.arr("trailers")?.first?.str("name") == "X-Sum")
        #expect(entries[3].response?.obj("content")?.int("size") == 0)
        #expect(entries.allSatisfy { $0.flags.isEmpty })
    }

    @Test func fragmentedConversationTimestamps() throws {
        let t = Timed(Conversations.fragmented)
        let entries = try run(t.segments, timestamps: t.timestamps)
        try #require(entries.count == 3)
        let ms = Int(baseTs / 1_000_000)
        #expect(entries.map { $0.str("summary") ?? "" } == ["/frag/one", "/frag/two", "/frag/three"])
        #expect(entries.map { $0.int("timestamp") ?? 0 } == [ms, ms + 2, ms + 2])
        #expect(entries.map { ($0["elapsedTime"] as? NSNumber)?.doubleValue ?? -1 } == [3, 4, 4])
        #expect(entries.map { $0.int("status") ?? 0 } == [200, 200, 404])
        #expect(entries[0].response?.obj("content")?.int("size") == Conversations.text.count)
    }

    @Test func splitsAroundTheBodyCap() throws {
        // A 70 KB body (over the display cap) and a gzip one, cut at a spread of positions.
        let big = textBody(70_000)
        let segs: [Segment] = [
            (c2s, request("GET", "/big") + request("GET", "/gz")),
            (s2c, response(body: big) + response(headers: [("Content-Encoding", "gzip")], body: compress(big, .gzip))),
        ]
        let h = try makeHarness()
        let reference = normalized(h.runTCP(segments: segs, timestampsNs: constant(2)))
        try #require(reference.count == 2)
        let total = segs.reduce(0) { $0 + $1.1.count }
        var k = 1
        while k < total {
            let s = split(segs, at: k)
            #expect(normalized(h.runTCP(segments: s, timestampsNs: constant(s.count))) == reference, "split at \(k)")
            k += 1499
        }
        // 1 KB segments: the body is skipped once nothing more would be shown.
        var small: [Segment] = []
        for (d, b) in segs {
            var i = 0
            while i < b.count {
                small.append((d, Array(b[i..<min(i + 1000, b.count)])))
                i += 1000
            }
        }
        #expect(normalized(h.runTCP(segments: small, timestampsNs: constant(small.count))) == reference)
    }

    @Test func everyPrefixIsSafe() throws {
        let h = try makeHarness()
        for (_, segs) in Conversations.all {
            let total = segs.reduce(0) { $0 + $1.1.count }
            for k in 0...total {
                let entries = h.runTCP(segments: truncate(segs, at: k)).map(parseJSON)
                // Never more entries than the whole conversation; a message cut inside its
                // body is flagged truncated.
                #expect(entries.count <= 4)
                for e in entries where e.response?.str("error") == "the stream ended inside the body" {
                    #expect(e.flags.contains("truncated"))
                }
            }
        }
        #expect(h.counters["host.contract_violations"] == nil)
    }

    @Test func truncatedMidResponseIsFlagged() throws {
        let resp = response(body: textBody(500))
        let entries = try run([(c2s, request()), (s2c, Array(resp[0..<(resp.count - 100)]))])
        try #require(entries.count == 1)
        #expect(entries[0].flags.contains("truncated"))
        #expect(entries[0].response?.str("error") == "the stream ended inside the body")
    }

    @Test func randomGarbage() throws {
        let h = try makeHarness()
        var rng = SplitMix(state: 0xC0FFEE)
        for _ in 0..<300 {
            var segs: [Segment] = []
            for _ in 0..<Int(rng.next() % 6 + 1) {
                segs.append((rng.next() % 2 == 0 ? c2s : s2c, rng.bytes(Int(rng.next() % 3000))))
            }
            _ = h.runTCP(segments: segs)
        }
        #expect(h.counters["host.contract_violations"] == nil)
    }

    @Test func garbageAfterValidTrafficIsAViolation() throws {
        let h = try makeHarness()
        var rng = SplitMix(state: 5)
        let entries = h.runTCP(segments: [
            (c2s, request("GET", "/ok")), (s2c, response()), (c2s, [0x00, 0x01] + rng.bytes(100)), (s2c, response()),
        ]).map(parseJSON)
        #expect(entries.count == 2)
        #expect(entries[0].flags.isEmpty)
        #expect(entries[1].flags == ["responseOnly"])
        #expect(h.counters["host.violations"] == 1)
    }

    @Test func garbageFirstIsRejected() throws {
        let h = try makeHarness()
        let entries = h.runTCP(segments: [(c2s, bytes("\u{16}\u{03}\u{01}hello tls")), (s2c, response())])
        #expect(entries.isEmpty)
    }

    @Test func mutatedConversations() throws {
        let h = try makeHarness()
        var rng = SplitMix(state: 77)
        let interesting: [UInt8] = [0x0D, 0x0A, 0x20, 0x3A, 0x30, 0x39, 0x66, 0x3B, 0x00, 0xFF, 0x2D]
        for round in 0..<400 {
            var segs = Conversations.all[round % Conversations.all.count].1
            for _ in 0..<Int(rng.next() % 8 + 1) {
                let si = Int(rng.next() % UInt64(segs.count))
                guard !segs[si].1.isEmpty else { continue }
                let pos = Int(rng.next() % UInt64(segs[si].1.count))
                switch rng.next() % 4 {
                case 0: segs[si].1[pos] = interesting[Int(rng.next() % UInt64(interesting.count))]
                case 1: segs[si].1.insert(interesting[Int(rng.next() % UInt64(interesting.count))], at: pos)
                case 2: segs[si].1.remove(at: pos)
                default: segs[si].1[pos] = UInt8(truncatingIfNeeded: rng.next())
                }
            }
            let entries = h.runTCP(segments: segs)
            for e in entries { _ = parseJSON(e) }
        }
        #expect(h.counters["host.contract_violations"] == nil)
    }

    /// Mutated conversations, re-cut at random, with random gaps, ticks, early
    /// EOFs, mid-stream flows and close reasons: no trap, no hang, no contract breach.
    @Test(arguments: 0..<4)
    func fuzzWithGapsTicksAndEOF(seed: Int) throws {
        var rng = SplitMix(state: UInt64(seed) &* 7919 &+ 1)
        let interesting: [UInt8] = [0x0D, 0x0A, 0x20, 0x3A, 0x30, 0x39, 0x66, 0x3B, 0x00, 0xFF, 0x2D, 0x31]
        let extra: [[Segment]] = [
            [(c2s, request("GET", "/a", headers: [("Upgrade", "websocket")])), (s2c, bytes("HTTP/1.1 101 X\r\n\r\n")), (c2s, [1, 2, 3])],
            [(c2s, bytes("CONNECT a:1 HTTP/1.1\r\n\r\n") + [0x16, 3, 1]), (s2c, bytes("HTTP/1.1 200 OK\r\n\r\n"))],
            [(c2s, request("POST", "/g", body: compress(textBody(3000), .gzip))),
                (s2c, response(headers: [("Content-Encoding", "deflate")], body: compress(textBody(9000), .raw)))],
        ]
        let bases = Conversations.all.map(\.1) + extra
        for round in 0..<500 {
            var segs = bases[Int(rng.next() % UInt64(bases.count))]
            for _ in 0..<Int(rng.next() % 6) {
                let si = Int(rng.next() % UInt64(segs.count))
                guard !segs[si].1.isEmpty else { continue }
                let pos = Int(rng.next() % UInt64(segs[si].1.count))
                switch rng.next() % 5 {
                case 0: segs[si].1[pos] = interesting[Int(rng.next() % UInt64(interesting.count))]
                case 1: segs[si].1.insert(interesting[Int(rng.next() % UInt64(interesting.count))], at: pos)
                case 2: segs[si].1.remove(at: pos)
                case 3: segs[si].1.insert(contentsOf: rng.bytes(Int(rng.next() % 20)), at: pos)
                default: segs[si].1[pos] = UInt8(truncatingIfNeeded: rng.next())
                }
            }
            let d = try Driver(midstream: rng.next() % 3 == 0)
            for (dir, b) in segs {
                var i = 0
                while i < b.count {
                    let n = Int(rng.next() % 200) + 1
                    switch rng.next() % 40 {
                    case 0: d.gap(dir, rng.next() % 300)
                    case 1: d.tick(baseTs + Int64(rng.next() % 120) * 1_000_000_000)
                    case 2: d.eof(dir)
                    default: break
                    }
                    d.send(dir, Array(b[i..<min(i + n, b.count)]), ts: baseTs + Int64(round))
                    i += n
                }
            }
            d.close(Int32(rng.next() % 7))
            for e in d.sink.entries { _ = parseJSON(e) }
            #expect(d.counters["host.contract_violations"] == nil)
        }
    }

    // MARK: Malformed framing

    @Test func tooManyHeaders() throws {
        let fields = (0..<101).map { ("X-H\($0)", "v") }
        let h = try makeHarness()
        let entries = h.runTCP(segments: [
            (c2s, request("GET", "/many", headers: fields) + request("GET", "/never")),
            (s2c, response(431, "Request Header Fields Too Large")),
        ]).map(parseJSON)
        try #require(entries.count == 1)
        #expect(Set(entries[0].flags) == ["malformed", "truncated"])
        #expect(entries[0].request?.arr("headers")?.count == 100)
        #expect(entries[0].request?.str("error") == "too many header fields")
        #expect(entries[0].int("status") == 431)
        #expect(h.counters["host.violations"] == 1)
    }

    @Test func headerBlockTooLarge() throws {
        let fields = (0..<20).map { ("X-Big\($0)", String(repeating: "b", count: 4000)) }
        let h = try makeHarness()
        let req = request("GET", "/huge", headers: fields)
        var segs: [Segment] = []
        var i = 0
        while i < req.count {
            segs.append((c2s, Array(req[i..<min(i + 1460, req.count)])))
            i += 1460
        }
        segs.append((s2c, response(431, "Too Large")))
        let entries = h.runTCP(segments: segs).map(parseJSON)
        try #require(entries.count == 1)
        #expect(Set(entries[0].flags) == ["malformed", "truncated"])
        #expect(entries[0].str("summary") == "/huge")
        #expect(entries[0].int("status") == 431)
        #expect((entries[0].request?.arr("headers")?.count ?? 0) < 20)
        #expect(h.counters["host.buffer_overflows"] == nil)
    }

    @Test(arguments: [
        "99999999999999999999", "-1", "5, 6", "abc", "1e3", "",
    ])
    func invalidContentLength(_ value: String) throws {
        let h = try makeHarness()
        let req = bytes("POST /cl HTTP/1.1\r\nHost: h\r\nContent-Length: \(value)\r\n\r\nhello")
        let entries = h.runTCP(segments: [(c2s, req), (s2c, response(400, "Bad Request"))]).map(parseJSON)
        try #require(entries.count == 1)
        #expect(entries[0].flags.contains("malformed"))
        #expect(entries[0].request?.str("error") == "invalid or conflicting Content-Length")
        #expect(entries[0].int("status") == 400)
    }

    @Test func conflictingContentLengthHeaders() throws {
        let resp = bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello")
        let entries = try run([(c2s, request()), (s2c, resp)])
        try #require(entries.count == 1)
        #expect(entries[0].flags.contains("malformed"))
        #expect(entries[0].response?.str("error") == "invalid or conflicting Content-Length")
    }

    @Test func hugeValidContentLength() throws {
        let resp = bytes("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n") + textBody(1000)
        let entries = try run([(c2s, request()), (s2c, resp)])
        try #require(entries.count == 1)
        #expect(entries[0].flags.contains("truncated"))
        #expect(entries[0].response?.int("bodySize") == 1000)
    }

    @Test func badChunkSize() throws {
        let h = try makeHarness()
        let resp = bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nmore")
        let entries = h.runTCP(segments: [(c2s, request()), (s2c, resp)]).map(parseJSON)
        try #require(entries.count == 1)
        #expect(entries[0].flags.contains("malformed"))
        #expect(entries[0].response?.obj("content")?.str("text") == "hello")
        #expect(entries[0].response?.str("error") == "bad chunk size line")
        #expect(h.counters["host.violations"] == 1)
    }

    @Test func chunkSizeOverflow() throws {
        let resp = bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\nx")
        let entries = try run([(c2s, request()), (s2c, resp)])
        #expect(entries.first?.flags.contains("malformed") == true)
    }

    @Test func requestTransferEncodingWithoutChunked() throws {
        let req = bytes("POST /te HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nxyz")
        let entries = try run([(c2s, req), (s2c, response(400, "Bad Request"))])
        try #require(entries.count == 1)
        #expect(entries[0].flags.contains("malformed"))
        #expect(entries[0].request?.str("error") == "Transfer-Encoding without a final chunked")
    }
}
