// The plugin over the real captures in Tests/Fixtures/captures (nginx, the
// Python fixture server and curl in network namespaces): the HTTP details the
// CLI conformance tests do not look at.

import Foundation
import Host
import Testing

private let capturesDirectory: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/captures")

private func dissect(_ name: String) throws -> [JSON] {
    try dissectPcap(capturesDirectory.appendingPathComponent(name).path).entries.map(parseJSON)
}

@Suite(.enabled(if: FileManager.default.fileExists(atPath: capturesDirectory.path), "no captures recorded"))
struct CaptureTests {
    @Test func chunkedGzip() throws {
        let entries = try dissect("http1-chunked-gzip.pcap")
        try #require(entries.count == 1)
        let c = try #require(entries[0].response?.obj("content"))
        #expect(c.str("contentEncoding") == "gzip")
        #expect(c.bool("decoded") == true)
        #expect(c.int("size") == 5120)
        #expect(c.str("text")?.utf8.count == 5120)
        #expect(entries[0].flags.isEmpty)
    }

    @Test func deflate() throws {
        let e = try #require(try dissect("http1-deflate.pcap").first)
        let c = try #require(e.response?.obj("content"))
        #expect(c.bool("decoded") == true)
        #expect(c.str("text")?.hasPrefix("deflate line 001: kubeshark dissects HTTP/1.x bodies encoded with zlib\n") == true)
    }

    @Test func trailers() throws {
        let e = try #require(try dissect("http1-chunked-trailers.pcap").first)
        #expect(e.request?.obj("postData")?.str("text") == "hello, chunked world")
        #expect(e.request?.arr("trailers")?.map { $0.str("name") ?? "" } == ["X-Request-Checksum", "X-Request-Id"])
        #expect(e.response?.arr("trailers")?.count == 2)
    }

    @Test func expect100() throws {
        let entries = try dissect("http1-expect-100.pcap")
        try #require(entries.count == 1)
        #expect(entries[0].arr("interimResponses")?.first?.int("status") == 100)
        #expect(entries[0].int("status") == 200)
        #expect(entries[0].request?.obj("postData")?.int("size") == 2032)
    }

    @Test func headNoContentNotModified() throws {
        let entries = try dissect("http1-head-204-304.pcap")
        #expect(entries.map { $0.str("method") ?? "" } == ["HEAD", "GET", "GET"])
        #expect(entries.map { $0.int("status") ?? 0 } == [200, 204, 304])
        #expect(entries.allSatisfy { $0.response?.obj("content")?.int("size") == 0 })
    }

    @Test func pipelined() throws {
        let entries = try dissect("http1-pipelined.pcap")
        #expect(entries.map { $0.str("summary") ?? "" } == ["/pipe/1.txt", "/pipe/2.txt", "/pipe/3.txt"])
        #expect(entries.map { $0.response?.obj("content")?.str("text") ?? "" }
            == ["pipelined response 1\n", "pipelined response 2\n", "pipelined response 3\n"])
    }

    @Test func closeDelimited() throws {
        let entries = try dissect("http1-close-delimited.pcap")
        try #require(entries.count == 2)
        #expect(entries.allSatisfy { $0.response?.obj("content")?.int("size") == 84 && $0.flags.isEmpty })
        #expect(entries[0].response?.str("httpVersion") == "HTTP/1.0")
    }

    @Test func upgrades() throws {
        let entries = try dissect("http1-upgrades.pcap")
        try #require(entries.count == 2)
        #expect(entries[0].str("upgrade") == nil)  // h2c offered, nginx answered 200
        #expect(entries[1].str("upgrade") == "websocket")
        #expect(entries[1].int("status") == 101)
    }

    @Test func queryAndLargeBody() throws {
        let q = try #require(try dissect("http1-get-query.pcap").first)
        #expect(q.request?.arr("queryString")?.map { $0.str("value") ?? "" } == ["kube shark", "2", ""])
        let big = try #require(try dissect("http1-large-body.pcap").first)
        #expect(big.response?.obj("content")?.int("size") == 65536)
        #expect(big.response?.obj("content")?.bool("truncated") == nil)
    }
}
