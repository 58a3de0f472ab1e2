import Foundation
import Host
import Testing

@Suite struct BodyTests {
    let text = textBody(5000)

    private func content(_ resp: [UInt8]) throws -> (JSON, JSON) {
        let e = try #require(try run([(c2s, request()), (s2c, resp)]).first)
        return (e, try #require(e.response?.obj("content")))
    }

    @Test func chunkedWithExtensionsAndTrailers() throws {
        let resp = bytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n")
            + chunked(text, size: 333, trailers: [("X-Checksum", "abc123"), ("X-Other", "2")])
        let (e, c) = try content(resp)
        #expect(c.str("text") == String(decoding: text, as: UTF8.self))
        #expect(c.int("size") == text.count)
        let trailers = try #require(e.response?.arr("trailers"))
        #expect(trailers.map { $0.str("name") ?? "" } == ["X-Checksum", "X-Other"])
        #expect(e.response?.header("x-checksum") == nil)
        #expect(e.int("responseSize") == resp.count)
        #expect(e.flags.isEmpty)
    }

    @Test func chunkedRequest() throws {
        let req = bytes("POST /stream HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n") + chunked(bytes("abcdefghijklmnop"), size: 5)
        let e = try #require(try run([(c2s, req), (s2c, response())]).first)
        #expect(e.request?.obj("postData")?.str("text") == "abcdefghijklmnop")
        #expect(e.int("requestSize") == req.count)
    }

    @Test func gzipChunked() throws {
        let z = compress(text, .gzip)
        let resp = bytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
            + chunked(z, size: 100)
        let (e, c) = try content(resp)
        #expect(c.str("text") == String(decoding: text, as: UTF8.self))
        #expect(c.int("size") == text.count)
        #expect(c.str("contentEncoding") == "gzip")
        #expect(c.bool("decoded") == true)
        #expect(c.int("encodedSize") == z.count)
        #expect(c.int("compression") == text.count - z.count)
        #expect(e.response?.int("bodySize") == chunked(z, size: 100).count)
        #expect(e.flags.isEmpty)
    }

    @Test func deflateZlibWrapped() throws {
        let (_, c) = try content(response(headers: [("Content-Encoding", "deflate")], body: compress(text, .zlib)))
        #expect(c.str("text") == String(decoding: text, as: UTF8.self))
        #expect(c.bool("decoded") == true)
    }

    @Test func deflateRaw() throws {
        let (_, c) = try content(response(headers: [("Content-Encoding", "deflate")], body: compress(text, .raw)))
        #expect(c.str("text") == String(decoding: text, as: UTF8.self))
        #expect(c.bool("decoded") == true)
    }

    @Test func tinyRawDeflateOneByteAtATime() throws {
        let z = compress(bytes("a"), .raw)
        let resp = response(headers: [("Content-Encoding", "deflate")], body: z)
        let h = try makeHarness()
        let segs: [Segment] = [(c2s, request())] + resp.map { (s2c, [$0]) }
        let e = try #require(h.runTCP(segments: segs).map(parseJSON).first)
        #expect(e.response?.obj("content")?.str("text") == "a")
    }

    @Test func gzipRequestBody() throws {
        let req = request("POST", "/gz", headers: [("Content-Encoding", "gzip"), ("Content-Type", "application/json")], body: compress(bytes(#"{"k":"v"}"#), .gzip))
        let e = try #require(try run([(c2s, req), (s2c, response())]).first)
        #expect(e.request?.obj("postData")?.str("text") == #"{"k":"v"}"#)
        #expect(e.request?.obj("postData")?.bool("decoded") == true)
    }

    @Test func brotliIsNotDecoded() throws {
        var rng = SplitMix(state: 3)
        let br = rng.bytes(120)
        let (_, c) = try content(response(headers: [("Content-Encoding", "br"), ("Content-Type", "text/html")], body: br))
        #expect(c.str("contentEncoding") == "br")
        #expect(c.bool("decoded") == false)
        #expect(c.str("encoding") == "base64")
        #expect(Data(base64Encoded: c.str("text") ?? "").map(Array.init) == br)
        #expect(c.int("size") == br.count)
    }

    @Test func stackedCodingsAreNotDecoded() throws {
        let body = compress(compress(text, .gzip), .gzip)
        let (_, c) = try content(response(headers: [("Content-Encoding", "gzip, gzip")], body: body))
        #expect(c.bool("decoded") == false)
        #expect(c.str("encoding") == "base64")
    }

    @Test func corruptGzipFallsBackToRaw() throws {
        var z = compress(text, .gzip)
        for i in 20..<40 { z[i] ^= 0x5A }
        let (e, c) = try content(response(headers: [("Content-Encoding", "gzip")], body: z))
        #expect(c.bool("decoded") == false)
        #expect(c.str("decodeError") == "corrupt compressed data")
        #expect(c.str("encoding") == "base64")
        #expect(Data(base64Encoded: c.str("text") ?? "").map(Array.init) == z)
        #expect(e.int("status") == 200)
    }

    @Test func gzipCutShort() throws {
        let z = compress(text, .gzip)
        let (_, c) = try content(response(headers: [("Content-Encoding", "gzip")], body: Array(z[0..<(z.count / 2)])))
        #expect(c.bool("decoded") == true)
        #expect(c.str("decodeError") == "compressed data ends early")
        #expect(c.bool("truncated") == true)
        #expect(String(decoding: text, as: UTF8.self).hasPrefix(c.str("text") ?? "x"))
    }

    @Test func gzipBombIsBounded() throws {
        // 64 MiB of zeros compress to ~64 KiB; decoding stops at the 8 MiB decode cap.
        let zeros = [UInt8](repeating: 0x20, count: 64 << 20)
        let z = compress(zeros, .gzip)
        let (e, c) = try content(response(headers: [("Content-Encoding", "gzip")], body: z))
        #expect(c.bool("sizeIsLowerBound") == true)
        #expect(c.int("size") == 8 << 20)
        #expect(c.bool("truncated") == true)
        #expect(c.str("text")?.utf8.count == 64 << 10)
        #expect(e.flags.contains("truncated"))
    }

    @Test func multiMemberGzip() throws {
        let z = compress(bytes("first member, "), .gzip) + compress(bytes("second member"), .gzip)
        let (_, c) = try content(response(headers: [("Content-Encoding", "gzip")], body: z))
        #expect(c.str("text") == "first member, second member")
    }

    @Test func transferEncodingWinsOverContentLength() throws {
        let resp = bytes("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n") + chunked(bytes("chunked wins"))
            + response(body: bytes("next"))
        let entries = try run([(c2s, request() + request("GET", "/2")), (s2c, resp)])
        try #require(entries.count == 2)
        #expect(entries[0].response?.obj("content")?.str("text") == "chunked wins")
        #expect(entries[1].response?.obj("content")?.str("text") == "next")
    }

    @Test func identicalContentLengthListIsAccepted() throws {
        let resp = bytes("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\nhello")
        let (e, c) = try content(resp)
        #expect(c.str("text") == "hello")
        #expect(e.flags.isEmpty)
    }
}
