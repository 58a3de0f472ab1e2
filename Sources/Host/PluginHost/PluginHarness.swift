import PluginAPI

/// Direction of a harness segment.
public enum HarnessDirection: Sendable {
    case clientToServer, serverToClient

    var raw: ks_direction { self == .clientToServer ? KS_DIR_CLIENT_TO_SERVER : KS_DIR_SERVER_TO_CLIENT }
}

/// Drives one plugin over hand-made streams exactly as the engine does (the
/// same `StreamHandle` buffering and contract checks, the same entry builder),
/// for plugin tests and fuzzers.
public final class PluginHarness {
    public let plugin: LoadedPlugin
    private let sink = CollectingSink()
    private lazy var emitter = EntryEmitter(sink: sink)
    private var nextFlowID: UInt64 = 1

    /// Loads `libksplugin-<name>.so` from the directory of the running executable.
    public convenience init(pluginNamed name: String) throws {
        try self.init(pluginPath: PluginLoader.executableDirectory + "/libksplugin-\(name).so")
    }

    /// Loads the plugin at `pluginPath` and starts it.
    public init(pluginPath: String, config: String = "") throws {
        switch PluginLoader.load(path: pluginPath) {
        case .success(let p): plugin = p
        case .failure(let refusal): throw HarnessError(message: refusal.description)
        }
        try plugin.start(config: config)
    }

    public struct HarnessError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// The probe verdict of the plugin on `bytes`, as (verdict, confidence, reversed).
    public func probe(_ bytes: [UInt8], direction: HarnessDirection = .clientToServer, layer4: UInt32 = KS_L4_TCP)
        -> (verdict: Int32, confidence: UInt32, reversed: Bool)
    {
        var flow = makeFlow(layer4: layer4)
        var chunk = ks_chunk()
        chunk.struct_size = UInt32(MemoryLayout<ks_chunk>.size)
        chunk.direction = direction.raw
        chunk.flags = KS_CHUNK_FIRST
        var result = ks_probe_result()
        result.struct_size = UInt32(MemoryLayout<ks_probe_result>.size)
        bytes.withUnsafeBufferPointer { b in
            chunk.data = b.baseAddress
            chunk.len = UInt32(b.count)
            plugin.descriptor.pointee.probe?(plugin.context, &flow, &chunk, &result)
        }
        return (result.verdict, result.confidence, result.flags & KS_PROBE_REVERSED != 0)
    }

    /// Runs one TCP stream: every segment in order, then end of stream on both
    /// directions and stream_close. Returns each entry's JSON in emission order.
    public func runTCP(
        segments: [(HarnessDirection, [UInt8])], timestampsNs: [Int64]? = nil,
        closeReason: Int32 = KS_CLOSE_FIN, deliverEOF: Bool = true
    ) -> [String] {
        sink.entries.removeAll()
        let handle = StreamHandle(
            plugin: plugin, flow: makeFlow(layer4: KS_L4_TCP), emitter: emitter, limits: StreamLimits())
        guard handle.open() else { return [] }
        var lastTs: Int64 = 0
        for (i, (direction, bytes)) in segments.enumerated() {
            let ts = timestampsNs?[i] ?? Int64(1_700_000_000_000_000_000) + Int64(i) * 1_000_000
            lastTs = ts
            plugin.clock.store(ts, ordering: .relaxed)
            let outcome = bytes.withUnsafeBytes { handle.data(direction.raw, $0, timestampNs: ts) }
            if outcome == .rejected { break }
        }
        if deliverEOF {
            _ = handle.endOfStream(KS_DIR_CLIENT_TO_SERVER, timestampNs: lastTs)
            _ = handle.endOfStream(KS_DIR_SERVER_TO_CLIENT, timestampNs: lastTs)
        }
        handle.close(closeReason)
        return sink.entries
    }

    /// Runs UDP datagrams through one pseudo-flow.
    public func runUDP(datagrams: [(HarnessDirection, [UInt8])], timestampsNs: [Int64]? = nil) -> [String] {
        sink.entries.removeAll()
        let handle = StreamHandle(
            plugin: plugin, flow: makeFlow(layer4: KS_L4_UDP), emitter: emitter, limits: StreamLimits())
        guard handle.open() else { return [] }
        for (i, (direction, bytes)) in datagrams.enumerated() {
            let ts = timestampsNs?[i] ?? Int64(1_700_000_000_000_000_000) + Int64(i) * 1_000_000
            plugin.clock.store(ts, ordering: .relaxed)
            _ = bytes.withUnsafeBytes { handle.datagram(direction.raw, $0, timestampNs: ts) }
        }
        handle.close(KS_CLOSE_TIMEOUT)
        return sink.entries
    }

    /// Counters the plugin and the host recorded for this plugin.
    public var counters: [String: Int64] { plugin.counterSnapshot }

    private func makeFlow(layer4: UInt32) -> ks_flow_info {
        var flow = ks_flow_info()
        flow.struct_size = UInt32(MemoryLayout<ks_flow_info>.size)
        flow.layer4 = layer4
        flow.flow_id = nextFlowID
        nextFlowID += 1
        flow.client.struct_size = UInt32(MemoryLayout<ks_endpoint>.size)
        flow.client.family = 4
        flow.client.port = 40000
        flow.server.struct_size = UInt32(MemoryLayout<ks_endpoint>.size)
        flow.server.family = 4
        flow.server.port = 80
        withUnsafeMutableBytes(of: &flow.client.addr) { $0[0] = 10; $0[3] = 1 }
        withUnsafeMutableBytes(of: &flow.server.addr) { $0[0] = 10; $0[3] = 2 }
        return flow
    }
}

/// Keeps every entry's JSON as a String.
final class CollectingSink: EntrySink {
    var entries: [String] = []
    func emit(_ entry: EntryView) {
        entries.append(String(decoding: entry.json, as: UTF8.self))
    }
}
