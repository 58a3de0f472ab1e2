// Hand-made HTTP/2 and gRPC conversations through the real ABI: the entry
// fields, every frame type, segmentation independence, the h2c upgrade.

import CZlib
import Foundation
import PluginAPI
import Testing

@testable import Host

func gzip(_ input: [UInt8]) -> [UInt8] {
    var s = z_stream()
    precondition(deflateInit2_(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
                               Int32(MemoryLayout<z_stream>.size)) == Z_OK)
    defer { deflateEnd(&s) }
    var out = [UInt8](repeating: 0, count: Int(deflateBound(&s, UInt(input.count))) + 64)
    var input = input
    let n: Int = input.withUnsafeMutableBufferPointer { i in
        out.withUnsafeMutableBufferPointer { o in
            s.next_in = i.baseAddress
            s.avail_in = UInt32(i.count)
            s.next_out = o.baseAddress
            s.avail_out = UInt32(o.count)
            precondition(deflate(&s, Z_FINISH) == Z_STREAM_END)
            return o.count - Int(s.avail_out)
        }
    }
    return Array(out[0..<n])
}

@Suite struct ExchangeTests {
    @Test func priorKnowledge() throws {
        let entries = try run(simpleConversation())
        try #require(entries.count == 2)
        let e = entries[0]
        #expect(e.str("method") == "GET")
        #expect(e.str("summary") == "/a?x=1&y=%20z")
        #expect(e.int("status") == 200)
        #expect(e.str("statusText") == "OK")
        #expect(e.int("streamId") == 1)
        #expect((e["protocol"] as? JSON)?.str("name") == "http2")
        let req = try #require(e.request)
        #expect(req.str("url") == "http://example.com/a?x=1&y=%20z")
        #expect(req.str("path") == "/a")
        #expect(req.str("httpVersion") == "HTTP/2")
        #expect(req.arr("queryString")?.map { "\($0.str("name")!)=\($0.str("value")!)" } == ["x=1", "y= z"])
        #expect(req.header(":authority") == "example.com")
        let resp = try #require(e.response)
        #expect(resp.obj("content")?.str("text") == "hello")
        #expect(resp.obj("content")?.str("mimeType") == "text/plain")
        #expect(resp.str("httpVersion") == "HTTP/2")
        #expect(e.flags.isEmpty)
        #expect(entries[1].request?.obj("postData")?.str("text") == "{\"k\":1}")
        #expect(entries[1].int("status") == 201)
        #expect(entries[1]["midstream"] == nil)
    }

    /// nghttpd sends its SETTINGS as soon as it accepts, before the client preface arrives.
    @Test func serverSettingsFirstIsNotMidstream() throws {
        let conv: [Segment] = [(s2c, settings([(3, 100)]))] + simpleConversation()
        let entries = try run(conv)
        #expect(entries.count == 2)
        #expect(entries.allSatisfy { $0["midstream"] == nil && $0["hpackErrors"] == nil })
    }

    @Test func sameEntriesWhateverTheSegmentation() throws {
        let whole = try makeHarness().runTCP(segments: simpleConversation())
        let split = try makeHarness().runTCP(segments: byteByByte(simpleConversation()))
        #expect(normalized(whole) == normalized(split))
        #expect(whole.count == 2)
    }

    @Test func grpcSameWhateverTheSegmentation() throws {
        let segs = grpcUnary(compressed: true)
        let whole = try makeHarness().runTCP(segments: segs)
        let split = try makeHarness().runTCP(segments: byteByByte(segs))
        #expect(normalized(whole) == normalized(split))
    }

    @Test func splitAtEveryOffset() throws {
        // One cut at every offset of the client and server streams.
        let segs = simpleConversation()
        let reference = normalized(try makeHarness().runTCP(segments: segs))
        let client = segs.filter { $0.0 == c2s }.flatMap { $0.1 }
        let server = segs.filter { $0.0 == s2c }.flatMap { $0.1 }
        for cut in stride(from: 1, to: client.count, by: 3) {
            let s: [Segment] = [(c2s, Array(client[..<cut])), (c2s, Array(client[cut...])), (s2c, server)]
            #expect(normalized(try makeHarness().runTCP(segments: s)) == reference, "client cut at \(cut)")
        }
        for cut in stride(from: 1, to: server.count, by: 3) {
            let s: [Segment] = [(c2s, client), (s2c, Array(server[..<cut])), (s2c, Array(server[cut...]))]
            #expect(normalized(try makeHarness().runTCP(segments: s)) == reference, "server cut at \(cut)")
        }
    }

    @Test func continuationPaddingPriorityAndTrailers() throws {
        let blk = block([(":method", "GET"), (":scheme", "http"), (":authority", "h"), (":path", "/cont"), ("x-long", String(repeating: "v", count: 50))])
        // HEADERS with PADDED + PRIORITY, then two CONTINUATION frames
        let first = [UInt8(3)] + [0, 0, 0, 0, 16] + Array(blk.prefix(10)) + [0, 0, 0]
        let conv: [Segment] = [
            (c2s, preface + settings() + frame(1, flags: 0x08 | 0x20 | 0x01, stream: 1, first)
                + frame(9, stream: 1, Array(blk[10..<30])) + frame(9, flags: 4, stream: 1, Array(blk[30...]))
                + frame(2, stream: 1, [0, 0, 0, 0, 1])),
            (s2c, settings() + ok(1) + frame(0, flags: 0x08, stream: 1, [4] + bytes("body") + [0, 0, 0, 0])
                + headers(1, [("x-trailer", "t1")], endStream: true)),
        ]
        let entries = try run(conv)
        try #require(entries.count == 1)
        let e = entries[0]
        #expect(e.request?.str("path") == "/cont")
        #expect(e.request?.header("x-long")?.count == 50)
        #expect(e.response?.obj("content")?.str("text") == "body")
        #expect(e.response?.header("x-trailer", in: "trailers") == "t1")
        #expect(e.flags.isEmpty)
    }

    @Test func dynamicTableAcrossRequests() throws {
        // The first request inserts its fields; the second refers to them by index (62.. newest first).
        let conv: [Segment] = [
            (c2s, preface + settings() + headers(1, [(":method", "GET"), (":scheme", "http"), (":path", "/one"), ("x-token", "abc")],
                                                 endStream: true, indexed: true)
                + frame(1, flags: 5, stream: 3, [0xC1, 0xC0, 0xBE] + [0x04] + hpackString("/two"))),
            (s2c, ok(1, endStream: true) + ok(3, endStream: true)),
        ]
        let entries = try run(conv)
        try #require(entries.count == 2)
        #expect(entries[1].request?.str("path") == "/two")
        #expect(entries[1].request?.header("x-token") == "abc")
        #expect(entries[1].str("method") == "GET")
        #expect(entries[1]["hpackErrors"] == nil)
    }

    @Test func gzipBody() throws {
        let body = bytes(String(repeating: "compressed text ", count: 40))
        let conv: [Segment] = [
            (c2s, preface + settings() + get(1, "/z")),
            (s2c, settings() + ok(1, extra: [("content-encoding", "gzip"), ("content-type", "text/plain")])
                + data(1, gzip(body), endStream: true)),
        ]
        let c = try #require(try run(conv).first?.response?.obj("content"))
        #expect(c.str("text") == String(decoding: body, as: UTF8.self))
        #expect(c.bool("decoded") == true)
        #expect(c.str("contentEncoding") == "gzip")
        #expect(c.int("size") == body.count)
    }

    @Test func formBodyParams() throws {
        let conv: [Segment] = [
            (c2s, preface + settings() + get(1, "/form", method: "POST", extra: [("content-type", "application/x-www-form-urlencoded")], endStream: false)
                + data(1, bytes("a=1&b=two+words&c=%41"), endStream: true)),
            (s2c, ok(1, endStream: true)),
        ]
        let p = try #require(try run(conv).first?.request?.obj("postData")?.arr("params"))
        #expect(p.map { "\($0.str("name")!)=\($0.str("value")!)" } == ["a=1", "b=two words", "c=A"])
    }

    @Test func binaryBodyIsBase64() throws {
        let conv: [Segment] = [
            (c2s, preface + settings() + get(1, "/bin")),
            (s2c, ok(1) + data(1, [0, 1, 2, 0xFF], endStream: true)),
        ]
        let c = try #require(try run(conv).first?.response?.obj("content"))
        #expect(c.str("encoding") == "base64")
        #expect(c.str("text") == "AAEC/w==")
    }

    @Test func rstStreamEndsTheStream() throws {
        let conv: [Segment] = [
            (c2s, preface + settings() + get(1, "/slow") + get(3, "/fast")),
            (s2c, frame(3, stream: 1, u32(8)) + ok(3, endStream: true)),
        ]
        let entries = try run(conv)
        try #require(entries.count == 2)
        let rst = try #require(entries.first { $0.int("streamId") == 1 })
        #expect(rst.obj("rstStream")?.str("error") == "CANCEL")
        #expect(rst.obj("rstStream")?.str("sentBy") == "server")
        #expect(rst.flags.contains("requestOnly"))
    }

    @Test func goawayEndsStreamsAboveTheLastOne() throws {
        let conv: [Segment] = [
            (c2s, preface + settings() + get(1, "/a") + get(3, "/b") + get(5, "/c")),
            (s2c, ok(1, endStream: true) + frame(7, stream: 0, u32(1) + u32(0))),
        ]
        let entries = try run(conv, closeReason: KS_CLOSE_FIN)
        #expect(entries.count == 3)
        let named = entries.filter { $0.obj("goaway") != nil }.compactMap { $0.int("streamId") }
        #expect(Set(named) == [3, 5])
        #expect(entries.first { $0.int("streamId") == 3 }?.obj("goaway")?.int("lastStreamId") == 1)
    }

    @Test func pushPromise() throws {
        let promised = block([(":method", "GET"), (":scheme", "http"), (":authority", "h"), (":path", "/style.css")])
        let conv: [Segment] = [
            (c2s, preface + settings() + get(1, "/")),
            (s2c, frame(5, flags: 4, stream: 1, u32(2) + promised) + ok(1) + data(1, bytes("<html>"), endStream: true)
                + ok(2) + data(2, bytes("body{}"), endStream: true)),
        ]
        let entries = try run(conv)
        try #require(entries.count == 2)
        let pushed = try #require(entries.first { $0.int("streamId") == 2 })
        #expect(pushed.request?.str("path") == "/style.css")
        #expect(pushed.int("pushPromisedOn") == 1)
        #expect(pushed.response?.obj("content")?.str("text") == "body{}")
    }

    @Test func interimResponse() throws {
        let conv: [Segment] = [
            (c2s, preface + settings() + get(1, "/", method: "PUT", extra: [("expect", "100-continue")], endStream: false)
                + data(1, bytes("x"), endStream: true)),
            (s2c, ok(1, status: "100") + ok(1, status: "204", endStream: true)),
        ]
        let e = try #require(try run(conv).first)
        #expect(e.int("status") == 204)
        #expect(e.response?.arr("interimResponses")?.first?.int("status") == 100)
    }

    @Test func unknownFrameTypesAreSkipped() throws {
        var conv = simpleConversation()
        conv[0].1 += frame(0xEE, flags: 0xFF, stream: 9, bytes("ignore me"))
        #expect(try run(conv).count == 2)
    }

    @Test func concurrentStreamsInterleaved() throws {
        let conv: [Segment] = [
            (c2s, preface + settings() + get(1, "/one") + get(3, "/three") + get(5, "/five")),
            (s2c, ok(5) + ok(1) + data(5, bytes("5a")) + data(1, bytes("1a")) + ok(3, endStream: true)
                + data(1, bytes("1b"), endStream: true) + data(5, bytes("5b"), endStream: true)),
        ]
        let entries = try run(conv)
        #expect(entries.map { $0.int("streamId") ?? 0 } == [3, 1, 5])
        #expect(entries.first { $0.int("streamId") == 1 }?.response?.obj("content")?.str("text") == "1a1b")
        #expect(entries.first { $0.int("streamId") == 5 }?.response?.obj("content")?.str("text") == "5a5b")
    }

    // MARK: Mid-connection

    @Test func midstreamMarksEntriesAndReportsUnknownIndices() throws {
        // No preface: frames from the middle. The request refers to dynamic entries never seen.
        let conv: [Segment] = [
            (c2s, frame(1, flags: 5, stream: 7, [0x83, 0xBE, 0x04] + hpackString("/mid"))),
            (s2c, frame(1, flags: 4, stream: 7, [0x88]) + data(7, bytes("ok"), endStream: true)),
        ]
        let h = try makeHarness()
        let entries = h.runTCP(segments: conv).map(parseJSON)
        try #require(entries.count == 1)
        let e = entries[0]
        #expect(e.bool("midstream") == true)
        #expect(e.str("method") == "POST")
        #expect(e.request?.str("path") == "/mid")
        #expect((e["hpackErrors"] as? [String])?.first?.contains("index 62 unknown") == true)
        #expect(e.int("status") == 200)
    }

    @Test func probe() throws {
        let h = try makeHarness()
        #expect(h.probe(preface + settings()).confidence == 100)
        #expect(h.probe(Array(preface.prefix(10))).verdict == KS_PROBE_MAYBE)
        let upgrade = bytes("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
        let u = h.probe(upgrade)
        #expect(u.verdict == KS_PROBE_YES)
        #expect(u.confidence > 75)  // above the HTTP/1 plugin's full-syntax answer
        let h1 = try PluginHarness(pluginNamed: "http").probe(upgrade)
        #expect(u.confidence > h1.confidence)
        #expect(h.probe(bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n")).verdict == KS_PROBE_NO)
        #expect(h.probe(bytes("GET / HTTP/1.1\r\nHost: h\r\n")).verdict == KS_PROBE_MAYBE)
        #expect(h.probe(settings() + frame(8, stream: 0, u32(1))).confidence == 50)
        #expect(h.probe(bytes("*1\r\n$4\r\nPING\r\n")).verdict == KS_PROBE_NO)
    }

    // MARK: Upgrade

    static let upgradeRequest = bytes("GET /up?q=1 HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")

    @Test func upgradeAccepted() throws {
        let conv: [Segment] = [
            (c2s, Self.upgradeRequest),
            (s2c, bytes("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n") + settings()),
            (c2s, preface + settings() + settings(ack: true) + get(3, "/after")),
            (s2c, ok(1, extra: [("content-type", "text/plain")]) + data(1, bytes("upgraded"), endStream: true) + ok(3, endStream: true)),
        ]
        for segs in [conv, byteByByte(conv)] {
            let entries = try run(segs)
            try #require(entries.count == 2)
            let e = entries[0]
            #expect(e.int("streamId") == 1)
            #expect(e.str("method") == "GET")
            #expect(e.request?.str("path") == "/up")
            #expect(e.request?.str("httpVersion") == "HTTP/1.1")
            #expect(e.request?.str("url") == "http://example.com/up?q=1")
            #expect(e.response?.str("httpVersion") == "HTTP/2")
            #expect(e.response?.obj("content")?.str("text") == "upgraded")
            #expect(e.obj("upgrade")?.bool("accepted") == true)
            #expect(entries[1].request?.str("path") == "/after")
            #expect(e["midstream"] == nil)
        }
    }

    @Test func upgradeIgnoredByTheServer() throws {
        let conv: [Segment] = [
            (c2s, Self.upgradeRequest),
            (s2c, bytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nplain")),
            (c2s, bytes("GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n")),
        ]
        let entries = try run(conv)
        try #require(entries.count == 1)
        let e = entries[0]
        #expect(e.obj("upgrade")?.bool("accepted") == false)
        #expect(e.int("status") == 200)
        #expect(e.response?.str("httpVersion") == "HTTP/1.1")
        #expect(e.response?.obj("content")?.str("text") == "plain")
        #expect(e.request?.str("path") == "/up")
    }

    // MARK: gRPC

    static let helloMessage: [UInt8] = [0x0A, 0x05] + bytes("alice") + [0x10, 0x07] + [0x1A, 0x04, 0x0A, 0x02] + bytes("hi")

    func grpcUnary(compressed: Bool) -> [Segment] {
        let msg = compressed ? grpcMessage(gzip(Self.helloMessage), compressed: true) : grpcMessage(Self.helloMessage)
        var reqHeaders = [("content-type", "application/grpc"), ("te", "trailers")]
        if compressed { reqHeaders.append(("grpc-encoding", "gzip")) }
        return [
            (c2s, preface + settings() + get(1, "/demo.v1.Greeter/SayHello", method: "POST", extra: reqHeaders, endStream: false)
                + data(1, msg, endStream: true)),
            (s2c, settings() + ok(1, extra: [("content-type", "application/grpc")]) + data(1, grpcMessage(Self.helloMessage))
                + headers(1, [("grpc-status", "0"), ("grpc-message", "")], endStream: true)),
        ]
    }

    @Test(arguments: [false, true]) func grpcUnaryCall(compressed: Bool) throws {
        let e = try #require(try run(grpcUnary(compressed: compressed)).first)
        #expect((e["protocol"] as? JSON)?.str("name") == "grpc")
        #expect(e.str("statusText") == "OK")
        let req = try #require(e.request)
        #expect(req.str("service") == "demo.v1.Greeter")
        #expect(req.str("rpcMethod") == "SayHello")
        let m = try #require(req.arr("messages")?.first)
        #expect(m.bool("compressed") == compressed)
        let fields = try #require(m.arr("protobuf"))
        #expect(fields.count == 3)
        #expect(fields[0].str("string") == "alice")
        #expect(fields[1].int("value") == 7)
        #expect(fields[2].arr("message")?.first?.str("string") == "hi")
        #expect(e.response?.int("grpcStatus") == 0)
        #expect(e.response?.arr("messages")?.count == 1)
        #expect(e.str("streaming") == "unary")
    }

    @Test func protobufWireTypes() throws {
        // field 1 fixed64 = 1.5, field 2 fixed32 = 2.5f, field 3 varint -1 (zigzag 1), field 4 bytes {0xff, 0x00}
        let f64 = withUnsafeBytes(of: (1.5 as Double).bitPattern.littleEndian, Array.init)
        let f32 = withUnsafeBytes(of: (2.5 as Float).bitPattern.littleEndian, Array.init)
        let msg: [UInt8] = [0x09] + f64 + [0x15] + f32 + [0x18, 0x01] + [0x22, 0x02, 0xFF, 0x00]
        let conv: [Segment] = [
            (c2s, preface + settings() + get(1, "/p.S/M", method: "POST", extra: [("content-type", "application/grpc")], endStream: false)
                + data(1, grpcMessage(msg), endStream: true)),
            (s2c, ok(1, extra: [("content-type", "application/grpc")]) + headers(1, [("grpc-status", "0")], endStream: true)),
        ]
        let fields = try #require(try run(conv).first?.request?.arr("messages")?.first?.arr("protobuf"))
        try #require(fields.count == 4)
        #expect(fields[0].str("wireType") == "i64")
        #expect((fields[0]["double"] as? NSNumber)?.doubleValue == 1.5)
        #expect(fields[1].str("wireType") == "i32")
        #expect((fields[1]["float"] as? NSNumber)?.doubleValue == 2.5)
        #expect(fields[2].int("value") == 1)
        #expect(fields[2].int("zigzag") == -1)
        #expect(fields[3].str("bytes") == "/wA=")
    }

    @Test func grpcTrailersOnlyError() throws {
        let conv: [Segment] = [
            (c2s, preface + settings() + get(1, "/pkg.Svc/Missing", method: "POST", extra: [("content-type", "application/grpc")], endStream: false)
                + data(1, grpcMessage([]), endStream: true)),
            (s2c, headers(1, [(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "12"),
                              ("grpc-message", "Method%20not%20found")], endStream: true)),
        ]
        let e = try #require(try run(conv).first)
        #expect(e.response?.int("grpcStatus") == 12)
        #expect(e.response?.str("grpcStatusName") == "UNIMPLEMENTED")
        #expect(e.response?.str("grpcMessage") == "Method not found")
        #expect(e.response?.bool("trailersOnly") == true)
        #expect(e.str("statusText") == "UNIMPLEMENTED")
    }

    @Test func grpcMessagesSplitAcrossFramesAndSeveralPerFrame() throws {
        let msgs = (0..<5).flatMap { i in grpcMessage([0x08, UInt8(i)]) }
        let conv: [Segment] = [
            (c2s, preface + settings() + get(1, "/s.S/Bidi", method: "POST", extra: [("content-type", "application/grpc+proto")], endStream: false)
                + data(1, Array(msgs.prefix(3))) + data(1, Array(msgs[3..<17])) + data(1, Array(msgs[17...]), endStream: true)),
            (s2c, ok(1, extra: [("content-type", "application/grpc")]) + data(1, msgs) + headers(1, [("grpc-status", "0")], endStream: true)),
        ]
        let e = try #require(try run(conv).first)
        #expect(e.request?.arr("messages")?.compactMap { $0.arr("protobuf")?.first?.int("value") } == [0, 1, 2, 3, 4])
        #expect(e.str("streaming") == "bidiStreaming")
    }

    @Test func grpcTruncatedMessageIsMarked() throws {
        let conv: [Segment] = [
            (c2s, preface + settings() + get(1, "/s.S/M", method: "POST", extra: [("content-type", "application/grpc")], endStream: false)
                + data(1, [0, 0, 0, 0, 100] + bytes("short"), endStream: true)),
            (s2c, ok(1, extra: [("content-type", "application/grpc")]) + headers(1, [("grpc-status", "0")], endStream: true)),
        ]
        let e = try #require(try run(conv).first)
        #expect(e.request?.arr("messages")?.first?.bool("incomplete") == true)
        #expect(e.flags.contains("truncated"))
    }
}
