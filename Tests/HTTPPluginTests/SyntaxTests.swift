// Unit tests of the byte-level helpers (no host involved).

import Testing

@testable import HTTPPlugin
import PluginZlib

private func with<R>(_ s: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    Array(s.utf8).withUnsafeBytes(body)
}

private func with<R>(_ b: [UInt8], _ body: (UnsafeRawBufferPointer) -> R) -> R { b.withUnsafeBytes(body) }

@Suite struct SyntaxTests {
    @Test func decimal() {
        #expect(with("0") { parseDecimal($0) } == 0)
        #expect(with("18446744073709551615") { parseDecimal($0) } == UInt64.max)
        #expect(with("18446744073709551616") { parseDecimal($0) } == nil)
        #expect(with("99999999999999999999") { parseDecimal($0) } == nil)
        #expect(with("000000000000000000000000042") { parseDecimal($0) } == 42)
        #expect(with("-1") { parseDecimal($0) } == nil)
        #expect(with("+1") { parseDecimal($0) } == nil)
        #expect(with("1 ") { parseDecimal($0) } == nil)
        #expect(with("") { parseDecimal($0) } == nil)
    }

    @Test func chunkSizes() {
        #expect(with("1a") { parseChunkSize($0) } == 26)
        #expect(with("FF;name=value;x") { parseChunkSize($0) } == 255)
        #expect(with("0") { parseChunkSize($0) } == 0)
        #expect(with("10 ") { parseChunkSize($0) } == 16)
        #expect(with("ffffffffffffffff") { parseChunkSize($0) } == UInt64.max)
        #expect(with("10000000000000000") { parseChunkSize($0) } == nil)
        #expect(with("") { parseChunkSize($0) } == nil)
        #expect(with("g") { parseChunkSize($0) } == nil)
        #expect(with("5 x") { parseChunkSize($0) } == nil)
    }

    @Test func text() {
        #expect(with("plain ascii\n\t") { checkText($0, allowCutTail: false) } == .text(length: 13))
        #expect(with("héllo ✓ 😀") { checkText($0, allowCutTail: false) } == .text(length: "héllo ✓ 😀".utf8.count))
        #expect(with([0x61, 0x00, 0x62]) { checkText($0, allowCutTail: false) } == .binary)
        #expect(with([0xC3, 0x28]) { checkText($0, allowCutTail: false) } == .binary)
        #expect(with([0xED, 0xA0, 0x80]) { checkText($0, allowCutTail: false) } == .binary)  // surrogate
        #expect(with([0xC0, 0xAF]) { checkText($0, allowCutTail: false) } == .binary)  // overlong
        #expect(with([0xF4, 0x90, 0x80, 0x80]) { checkText($0, allowCutTail: false) } == .binary)  // > U+10FFFF
        #expect(with([0x61, 0xE2, 0x9C]) { checkText($0, allowCutTail: true) } == .text(length: 1))
        #expect(with([0x61, 0xE2, 0x9C]) { checkText($0, allowCutTail: false) } == .binary)
    }

    @Test func percentDecoding() {
        func decode(_ s: String) -> String {
            var out: [UInt8] = []
            with(s) { percentDecode($0, into: &out) }
            return String(decoding: out, as: UTF8.self)
        }
        #expect(decode("a+b%20c") == "a b c")
        #expect(decode("%E2%9C%93") == "✓")
        #expect(decode("100%") == "100%")
        #expect(decode("%zz%4") == "%zz%4")
        #expect(decode("%41%4a%4A") == "AJJ")
    }

    @Test func targets() {
        func parts(_ s: String) -> (Bool, String, String?) {
            with(s) { t in
                let p = TargetParts(t)
                let path = String(decoding: slice(t, p.pathStart, p.pathEnd), as: UTF8.self)
                let q = p.query.map { String(decoding: slice(t, $0.0, $0.1), as: UTF8.self) }
                return (p.absolute, path, q)
            }
        }
        #expect(parts("/a/b?x=1#frag") == (false, "/a/b", "x=1"))
        #expect(parts("/") == (false, "/", nil))
        #expect(parts("http://h:8080/p?q") == (true, "/p", "q"))
        #expect(parts("https://h") == (true, "", nil))
        #expect(parts("http://h?x=1") == (true, "", "x=1"))
        #expect(parts("*") == (false, "*", nil))
        #expect(parts("h:443") == (false, "h:443", nil))
    }

    @Test func startLines() {
        #expect(with("GET / HTTP/1.1") { parseRequestLine($0) }?.versionMinor == 1)
        #expect(with("GET /a b HTTP/1.0") { parseRequestLine($0) }?.targetEnd == 8)
        #expect(with("GET / HTTP/2.0") { parseRequestLine($0) } == nil)
        #expect(with("GET  HTTP/1.1") { parseRequestLine($0) } == nil)
        #expect(with("G\u{7}T / HTTP/1.1") { parseRequestLine($0) } == nil)
        #expect(with("HTTP/1.1 200 OK") { parseStatusLine($0) }?.code == 200)
        #expect(with("HTTP/1.1 404") { parseStatusLine($0) }?.code == 404)
        #expect(with("HTTP/1.1 099 x") { parseStatusLine($0) } == nil)
        #expect(with("HTTP/1.1 2000 x") { parseStatusLine($0) } == nil)
        #expect(with("HTTP/1.1 200 OK\r\n") { checkStatusLine($0, limit: 100) } == .complete(lineEnd: 16))
        #expect(with("POST /x HTTP/1.1\r\n") { checkRequestLine($0, limit: 100, knownOnly: true) } == .complete(lineEnd: 17))
        #expect(with("FOO /x HTTP/1.1\r\n") { checkRequestLine($0, limit: 100, knownOnly: true) } == .invalid)
        #expect(with("FOO /x HTTP/1.1\r\n") { checkRequestLine($0, limit: 100, knownOnly: false) } == .complete(lineEnd: 16))
        #expect(with("GET /very/long") { checkRequestLine($0, limit: 8, knownOnly: true) } == .incomplete)
    }

    @Test func endpointsInURLs() {
        func format(_ family: UInt8, _ addr: [UInt8], _ port: UInt16) -> String {
            var out: [UInt8] = []
            appendEndpoint(family: family, address: addr, port: port, to: &out)
            return String(decoding: out, as: UTF8.self)
        }
        #expect(format(4, [10, 0, 0, 2], 80) == "10.0.0.2")
        #expect(format(4, [192, 168, 1, 20], 8080) == "192.168.1.20:8080")
        let v6: [UInt8] = [0xfd, 0, 0x02, 0x31] + [UInt8](repeating: 0, count: 11) + [1]
        #expect(format(6, v6, 80) == "[fd00:231::1]")
        #expect(format(6, [UInt8](repeating: 0, count: 16), 8000) == "[::]:8000")
        let one: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
        #expect(format(6, one, 80) == "[2001:db8:0:1::1]")
        let lead: [UInt8] = [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 10, 0, 0, 1]
        #expect(format(6, lead, 80) == "[::ffff:a00:1]")
    }

    @Test func zlibHeaderSniffing() {
        #expect(looksLikeZlibHeader(0x78, 0x9C))
        #expect(looksLikeZlibHeader(0x78, 0x01))
        #expect(looksLikeZlibHeader(0x78, 0xDA))
        #expect(!looksLikeZlibHeader(0x1F, 0x8B))
        #expect(!looksLikeZlibHeader(0xCB, 0x48))  // raw deflate of "hello"
    }
}
