import Foundation
import Testing

@testable import Host

/// The harness's scripted streams reach the plugin as the engine would deliver them.
@Suite("Plugin harness")
struct PluginHarnessTests {
    func objects(_ entries: [String]) -> [[String: Any]] {
        entries.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    @Test("a tick past the plugin's timeout turns a pending request into a timed-out entry")
    func tick() throws {
        let harness = try PluginHarness(pluginNamed: "http")
        let start: Int64 = 1_700_000_000_000_000_000
        let entries = objects(harness.run(events: [
            .data(.clientToServer, Array("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n".utf8), timestampNs: start),
            .tick(nowNs: start + 120 * 1_000_000_000),
        ]))
        #expect(entries.count == 1)
        #expect(entries.first?["flags"] as? [String] == ["requestOnly", "timedOut"])
    }

    @Test("ports and the mid-stream flag reach the flow; a gap reaches the plugin")
    func portsAndGap() throws {
        let harness = try PluginHarness(pluginNamed: "http")
        let entries = objects(harness.run(
            events: [
                .data(.clientToServer, Array("GET /a HTTP/1.1\r\nHost: a\r\n\r\n".utf8)),
                .data(.serverToClient, Array("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234".utf8)),
                .gap(.serverToClient, length: 3),
                .data(.serverToClient, Array("89".utf8)),
            ],
            clientPort: 51000, serverPort: 8080, midstream: true))
        #expect(entries.count == 1)
        let e = try #require(entries.first)
        #expect((e["src"] as? [String: Any])?["port"] as? Int == 51000)
        #expect((e["dst"] as? [String: Any])?["port"] as? Int == 8080)
        #expect((e["flags"] as? [String])?.contains("afterGap") == true)
        #expect(harness.counters["host.gaps"] == 1)
    }
}
