import Host
import Testing

@Test func smoke() throws {
    let h = try PluginHarness(pluginNamed: "http")
    let req = Array("POST /a/b?x=1&y=hello+world%21 HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}".utf8)
    let resp = Array("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n".utf8)
    let entries = h.runTCP(segments: [(.clientToServer, req), (.serverToClient, resp)])
    for e in entries { print(e) }
    print(h.counters)
}
