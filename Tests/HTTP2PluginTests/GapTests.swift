// Calls the harness does not expose, through the host's own StreamHandle:
// capture gaps (inside a DATA payload, between frames) and ticks.

import Foundation
import PluginAPI
import Testing

@testable import Host

/// One connection driven event by event.
private final class Connection {
    let harness: PluginHarness
    let sink = Collect()
    let handle: StreamHandle
    let emitter: EntryEmitter

    init() throws {
        harness = try makeHarness()
        emitter = EntryEmitter(sink: sink)
        var flow = ks_flow_info()
        flow.struct_size = UInt32(MemoryLayout<ks_flow_info>.size)
        flow.layer4 = KS_L4_TCP
        flow.flow_id = 9
        handle = StreamHandle(plugin: harness.plugin, flow: flow, emitter: emitter, limits: StreamLimits())
        #expect(handle.open())
    }

    func send(_ d: HarnessDirection, _ b: [UInt8], ts: Int64 = 1_700_000_000_000_000_000) {
        let raw = d == .clientToServer ? KS_DIR_CLIENT_TO_SERVER : KS_DIR_SERVER_TO_CLIENT
        _ = b.withUnsafeBytes { handle.data(raw, $0, timestampNs: ts) }
    }

    func gap(_ d: HarnessDirection, _ n: UInt64) {
        handle.gap(d == .clientToServer ? KS_DIR_CLIENT_TO_SERVER : KS_DIR_SERVER_TO_CLIENT, length: n, timestampNs: 0)
    }

    var entries: [JSON] { sink.entries.map(parseJSON) }
}

@Suite struct GapTests {
    @Test func gapInsideData() throws {
        let c = try Connection()
        c.send(c2s, preface + settings() + get(1, "/g"))
        let body = bytes(String(repeating: "x", count: 100))
        let f = data(1, body, endStream: true)
        c.send(s2c, ok(1) + Array(f.prefix(9 + 40)))
        c.gap(s2c, 20)
        c.send(s2c, Array(f[(9 + 60)...]) + ok(3, endStream: true))
        c.handle.close(KS_CLOSE_FIN)
        let e = try #require(c.entries.first { $0.int("streamId") == 1 })
        #expect(e.flags.contains("afterGap"))
        #expect(e.response?.int("bodySize") == 100)
        #expect(e.response?.obj("content")?.bool("truncated") == true)
    }

    @Test func gapBetweenFramesResynchronises() throws {
        let c = try Connection()
        c.send(c2s, preface + settings() + get(1, "/a") + get(3, "/b"))
        c.send(s2c, ok(1, endStream: true))
        c.gap(s2c, 13)  // a lost frame (9-byte header + 4 bytes)
        c.send(s2c, [0xAA, 0xBB] + ok(3, endStream: true))  // a stray tail, then a frame
        c.handle.close(KS_CLOSE_FIN)
        let entries = c.entries
        #expect(entries.first { $0.int("streamId") == 3 }?.int("status") == 200)
        #expect(entries.flatMap { ($0["errors"] as? [String]) ?? [] }.contains { $0.contains("resynchronised") })
    }

    @Test func idleStreamsTimeOut() throws {
        let c = try Connection()
        let t0: Int64 = 1_700_000_000_000_000_000
        c.send(c2s, preface + settings() + get(1, "/slow"), ts: t0)
        c.handle.tick(nowNs: t0 + 30_000_000_000)
        #expect(c.entries.isEmpty)
        c.harness.plugin.clock.store(t0 + 61_000_000_000, ordering: .relaxed)
        c.handle.tick(nowNs: t0 + 61_000_000_000)
        let e = try #require(c.entries.first)
        #expect(e.flags.contains("timedOut"))
        #expect(e.flags.contains("requestOnly"))
        c.handle.close(KS_CLOSE_FIN)
        #expect(c.entries.count == 1)
    }
}
