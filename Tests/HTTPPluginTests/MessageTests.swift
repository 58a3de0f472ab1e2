import Foundation
import Host
import Testing

@Suite struct MessageTests {
    @Test func getWithQueryAndHARFields() throws {
        let req = request("GET", "/search?q=hello+world&lang=en%2DUS&empty=&flag&caf%C3%A9=%E2%9C%93", headers: [("Accept", "*/*")])
        let resp = response(200, "OK", headers: [("Content-Type", "text/plain; charset=utf-8")], body: bytes("hi there"))
        let entries = try run([(c2s, req), (s2c, resp)])
        try #require(entries.count == 1)
        let e = entries[0]
        #expect(e.str("method") == "GET")
        #expect(e.str("summary") == "/search?q=hello+world&lang=en%2DUS&empty=&flag&caf%C3%A9=%E2%9C%93")
        #expect(e.int("status") == 200)
        #expect(e.str("statusText") == "OK")
        #expect(e.flags.isEmpty)
        #expect(e.obj("protocol")?.str("version") == "1.1")
        #expect(e.int("requestSize") == req.count)
        #expect(e.int("responseSize") == resp.count)

        let r = try #require(e.request)
        #expect(r.str("method") == "GET")
        #expect(r.str("url") == "http://example.com/search?q=hello+world&lang=en%2DUS&empty=&flag&caf%C3%A9=%E2%9C%93")
        #expect(r.str("path") == "/search")
        #expect(r.str("httpVersion") == "HTTP/1.1")
        #expect(r.header("host") == "example.com")
        #expect(r.header("Accept") == "*/*")
        #expect(r.int("headersSize") == req.count)
        #expect(r.int("bodySize") == 0)
        #expect(r.obj("postData") == nil)
        let q = try #require(r.arr("queryString"))
        let pairs = q.map { "\($0.str("name") ?? "?")=\($0.str("value") ?? "?")" }
        #expect(pairs == ["q=hello world", "lang=en-US", "empty=", "flag=", "café=✓"])

        let s = try #require(e.response)
        #expect(s.int("status") == 200)
        #expect(s.str("statusText") == "OK")
        #expect(s.str("httpVersion") == "HTTP/1.1")
        #expect(s.header("content-type") == "text/plain; charset=utf-8")
        #expect(s.int("bodySize") == 8)
        #expect(s.int("headersSize") == resp.count - 8)
        #expect(s.str("redirectURL") == "")
        let c = try #require(s.obj("content"))
        #expect(c.str("mimeType") == "text/plain; charset=utf-8")
        #expect(c.int("size") == 8)
        #expect(c.str("text") == "hi there")
        #expect(c.str("encoding") == nil)
    }

    @Test func postWithJSONBody() throws {
        let body = bytes(#"{"name":"kubeshark","n":[1,2,3]}"#)
        let req = request("POST", "/api/items", headers: [("Content-Type", "application/json")], body: body)
        let resp = response(201, "Created", headers: [("Location", "/api/items/7")])
        let e = try #require(try run([(c2s, req), (s2c, resp)]).first)
        let r = try #require(e.request)
        let pd = try #require(r.obj("postData"))
        #expect(pd.str("mimeType") == "application/json")
        #expect(pd.str("text") == #"{"name":"kubeshark","n":[1,2,3]}"#)
        #expect(r.int("bodySize") == body.count)
        #expect(e.int("requestSize") == req.count)
        #expect(e.response?.str("redirectURL") == "/api/items/7")
        #expect(e.int("status") == 201)
        #expect(e.response?.obj("content")?.int("size") == 0)
    }

    @Test func formParams() throws {
        let req = request(
            "POST", "/login", headers: [("Content-Type", "application/x-www-form-urlencoded")],
            body: bytes("user=j%C3%B6rg&pass=a+b%26c"))
        let e = try #require(try run([(c2s, req), (s2c, response())]).first)
        let params = try #require(e.request?.obj("postData")?.arr("params"))
        #expect(params.map { $0.str("name") ?? "" } == ["user", "pass"])
        #expect(params.map { $0.str("value") ?? "" } == ["jörg", "a b&c"])
    }

    @Test func absoluteFormAndMissingHost() throws {
        let proxied = request("GET", "http://upstream.example:8080/p/q?x=1", host: "upstream.example:8080")
        let noHost = request("GET", "/nohost", host: nil)
        let star = request("OPTIONS", "*")
        let entries = try run([(c2s, proxied + noHost + star), (s2c, response() + response() + response())])
        try #require(entries.count == 3)
        #expect(entries[0].request?.str("url") == "http://upstream.example:8080/p/q?x=1")
        #expect(entries[0].request?.str("path") == "/p/q")
        #expect(entries[0].request?.arr("queryString")?.first?.str("name") == "x")
        #expect(entries[1].request?.str("url") == "http://10.0.0.2/nohost")
        #expect(entries[2].request?.str("url") == "http://example.com")
        #expect(entries[2].request?.str("path") == "*")
    }

    @Test func http10ReadUntilClose() throws {
        let req = request("GET", "/old", version: "1.0")
        let resp = bytes("HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>bye</html>")
        let e = try #require(try run([(c2s, req), (s2c, resp)]).first)
        #expect(e.obj("protocol")?.str("version") == "1.0")
        #expect(e.request?.str("httpVersion") == "HTTP/1.0")
        #expect(e.response?.obj("content")?.str("text") == "<html>bye</html>")
        #expect(e.int("responseSize") == resp.count)
        #expect(e.flags.isEmpty)
    }

    @Test func http11ResponseUntilClose() throws {
        // HTTP/1.1 without length: ends at close, delivered in several segments.
        let head = bytes("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        let entries = try run([(c2s, request()), (s2c, head), (s2c, bytes("part one, ")), (s2c, bytes("part two"))])
        try #require(entries.count == 1)
        #expect(entries[0].response?.obj("content")?.str("text") == "part one, part two")
        #expect(entries[0].response?.int("bodySize") == 18)
    }

    @Test func foldedHeadersAndOddSpacing() throws {
        let req = bytes(
            "GET /f HTTP/1.1\r\nHost: example.com\r\nX-Folded: first part\r\n   second part\r\n\tthird\r\n \r\nX-Empty:\r\n  late value\r\nX-Spaces:    padded   \r\n\r\n")
        let e = try #require(try run([(c2s, req), (s2c, response())]).first)
        let r = try #require(e.request)
        #expect(r.header("X-Folded") == "first part second part third")
        #expect(r.header("X-Empty") == "late value")
        #expect(r.header("X-Spaces") == "padded")
        #expect(!e.flags.contains("malformed"))
    }

    @Test func bareLFLineEndingsAndLeadingEmptyLines() throws {
        let req = bytes("\r\n\r\nGET /lf HTTP/1.1\nHost: a\n\n")
        let resp = bytes("HTTP/1.1 200 OK\nContent-Length: 2\n\nok")
        let e = try #require(try run([(c2s, req), (s2c, resp)]).first)
        #expect(e.request?.str("url") == "http://a/lf")
        #expect(e.response?.obj("content")?.str("text") == "ok")
    }

    @Test func timestampsAreFirstBytes() throws {
        // Request in two segments, response in two: the entry times are the first bytes'.
        let req = request("GET", "/t")
        let resp = response(body: bytes("0123456789"))
        let t0 = baseTs
        let entries = try run(
            [(c2s, Array(req[0..<5])), (c2s, Array(req[5...])), (s2c, Array(resp[0..<3])), (s2c, Array(resp[3...]))],
            timestamps: [t0, t0 + 1_000_000, t0 + 25_000_000, t0 + 40_000_000])
        let e = try #require(entries.first)
        #expect(e.int("timestamp") == Int(t0 / 1_000_000))
        let elapsed = (e["elapsedTime"] as? NSNumber)?.doubleValue ?? -1
        #expect(abs(elapsed - 25) < 0.001)
    }

    @Test func pipelinedTimestamps() throws {
        // r1's head is cut; the next segment finishes r1 and carries r2: r1 keeps the
        // first segment's time, r2 gets the time of the segment it arrived in.
        let r1 = request("GET", "/1")
        let r2 = request("GET", "/2")
        let t0 = baseTs
        let entries = try run(
            [(c2s, Array(r1[0..<8])), (c2s, Array(r1[8...]) + r2), (s2c, response()), (s2c, response())],
            timestamps: [t0, t0 + 5_000_000, t0 + 7_000_000, t0 + 9_000_000])
        try #require(entries.count == 2)
        #expect(entries.map { $0.int("timestamp") ?? 0 } == [Int(t0 / 1_000_000), Int(t0 / 1_000_000) + 5])
        #expect(entries.map { ($0["elapsedTime"] as? NSNumber)?.doubleValue ?? -1 } == [7, 4])
    }

    @Test func binaryBodyIsBase64() throws {
        var rng = SplitMix(state: 42)
        let blob = rng.bytes(300) + [0, 0xFF, 0xC0]
        let resp = response(headers: [("Content-Type", "application/octet-stream")], body: blob)
        let e = try #require(try run([(c2s, request()), (s2c, resp)]).first)
        let c = try #require(e.response?.obj("content"))
        #expect(c.str("encoding") == "base64")
        #expect(Data(base64Encoded: c.str("text") ?? "").map(Array.init) == blob)
        #expect(c.int("size") == blob.count)
    }

    @Test func bodyDisplayCap() throws {
        let body = textBody(100_000)
        let resp = response(headers: [("Content-Type", "text/plain")], body: body)
        let e = try #require(try run([(c2s, request()), (s2c, resp)]).first)
        let c = try #require(e.response?.obj("content"))
        #expect(c.bool("truncated") == true)
        #expect(c.int("size") == 100_000)
        #expect(c.str("text")?.utf8.count == 64 << 10)
        #expect(e.flags.contains("truncated"))
        #expect(e.response?.int("bodySize") == 100_000)
        #expect(e.int("responseSize") == resp.count)
    }

    @Test func capCutsInsideUTF8Sequence() throws {
        // 65535 ASCII bytes then a 2-byte character straddling the cap: still text, cut before it.
        let body = [UInt8](repeating: UInt8(ascii: "a"), count: (64 << 10) - 1) + bytes("é and more")
        let e = try #require(try run([(c2s, request()), (s2c, response(body: body))]).first)
        let c = try #require(e.response?.obj("content"))
        #expect(c.str("encoding") == nil)
        #expect(c.str("text")?.utf8.count == (64 << 10) - 1)
        #expect(c.bool("truncated") == true)
    }

    @Test func largeRequestBodyIsSkippedNotBuffered() throws {
        // 5 MB upload in 64 KB segments: the host buffer (128 KiB) would overflow if it were buffered.
        let body = textBody(5 << 20)
        let req = request("PUT", "/upload", body: body)
        var segs: [Segment] = []
        var i = 0
        while i < req.count {
            segs.append((c2s, Array(req[i..<min(i + 65536, req.count)])))
            i += 65536
        }
        segs.append((s2c, response(204, "No Content", contentLength: false)))
        let h = try makeHarness()
        let entries = h.runTCP(segments: segs).map(parseJSON)
        try #require(entries.count == 1)
        #expect(entries[0].request?.int("bodySize") == 5 << 20)
        #expect(entries[0].request?.obj("postData")?.int("size") == 5 << 20)
        #expect(entries[0].int("status") == 204)
        #expect(h.counters["host.buffer_overflows"] == nil)
    }
}
