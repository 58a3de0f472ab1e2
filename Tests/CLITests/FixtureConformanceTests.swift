import Foundation
import Testing

/// `kubeshark dissect` against tshark on the captures recorded here
/// (Tests/Fixtures/captures: real nginx, Python servers and curl in network namespaces).
@Suite("HTTP/1 fixtures agree with tshark", .enabled(if: TestSupport.which("tshark") != nil, "tshark is not installed"))
struct FixtureConformanceTests {
    static var captures: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: TestSupport.fixtures.path)) ?? [])
            .filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
    }

    @Test("request/response pairs match tshark's", arguments: captures)
    func pairs(name: String) throws {
        let path = TestSupport.fixtures.appendingPathComponent(name).path
        var expected = try TShark.httpExchanges(file: path, decodeAs: nil)
        // tshark lists an interim 100 Continue as a lone response because it
        // reassembles the request only once its body has arrived. RFC 9110 §15.2
        // makes a 1xx response part of the exchange of the request it precedes;
        // we record it inside that entry ("informational"), so it is no pair of its own.
        expected.removeAll { $0.method == nil && ($0.status ?? 0) >= 100 && ($0.status ?? 0) < 200 && $0.status != 101 }
        let (entries, result) = try TestSupport.dissect([path])
        #expect(result.status == 0, "dissect failed: \(result.stderr)")
        let ours = exchanges(entries)
        #expect(matched(expected, ours) == expected.count, "\(name): tshark \(expected) vs ours \(ours)")
        #expect(ours.count == expected.count, "\(name): we emitted \(ours) but tshark has \(expected)")
    }

    @Test("an unanswered request is an entry flagged unanswered")
    func unanswered() throws {
        let (entries, _) = try TestSupport.dissect([TestSupport.fixtures.appendingPathComponent("http1-unanswered.pcap").path])
        #expect(entries.count == 2)
        for e in entries {
            #expect(e["unanswered"] as? Bool == true)
            #expect(e["response"] == nil)
        }
    }

    @Test("IPv6 endpoints are written in RFC 5952 form")
    func ipv6() throws {
        let (entries, _) = try TestSupport.dissect([TestSupport.fixtures.appendingPathComponent("http1-ipv6.pcap").path])
        let src = entries.first?["src"] as? [String: Any]
        let dst = entries.first?["dst"] as? [String: Any]
        #expect(src?["ip"] as? String == "fd00:231::2")
        #expect(dst?["ip"] as? String == "fd00:231::1")
        #expect(dst?["port"] as? Int == 80)
    }
}
