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
        var events = segments.enumerated().map { i, s in
            HarnessEvent.data(s.0, s.1, timestampNs: timestampsNs?[i])
        }
        if deliverEOF { events += [.endOfStream(.clientToServer), .endOfStream(.serverToClient)] }
        return run(events: events, closeReason: closeReason)
    }

    /// One step of a scripted TCP stream.
    public enum HarnessEvent: Sendable {
        /// Bytes of one direction, at a capture time (default: 1 ms after the previous step).
        case data(HarnessDirection, [UInt8], timestampNs: Int64? = nil)
        /// `length` bytes of one direction were lost.
        case gap(HarnessDirection, length: UInt64)
        /// The direction ended (FIN).
        case endOfStream(HarnessDirection)
        /// The capture clock moved to `nowNs`: stream_tick.
        case tick(nowNs: Int64)
    }

    /// Runs a scripted TCP stream, then stream_close. The flow's ports and the
    /// mid-stream flag can be set to exercise port-dependent and pickup behaviour.
    public func run(
        events: [HarnessEvent], clientPort: UInt16 = 40000, serverPort: UInt16 = 80, midstream: Bool = false,
        closeReason: Int32 = KS_CLOSE_FIN
    ) -> [String] {
        sink.entries.removeAll()
        var flow = makeFlow(layer4: KS_L4_TCP)
        flow.client.port = clientPort
        flow.server.port = serverPort
        if midstream { flow.flags |= KS_FLOW_MIDSTREAM | KS_FLOW_ROLES_GUESSED }
        let handle = StreamHandle(plugin: plugin, flow: flow, emitter: emitter, limits: StreamLimits())
        guard handle.open() else { return [] }
        var clock = Int64(1_700_000_000_000_000_000)
        loop: for event in events {
            switch event {
            case .data(let direction, let bytes, let ts):
                clock = ts ?? clock + 1_000_000
                plugin.clock.store(clock, ordering: .relaxed)
                let outcome = bytes.withUnsafeBytes { handle.data(direction.raw, $0, timestampNs: clock) }
                if outcome == .rejected { break loop }
            case .gap(let direction, let length):
                handle.gap(direction.raw, length: length, timestampNs: clock)
            case .endOfStream(let direction):
                if handle.endOfStream(direction.raw, timestampNs: clock) == .rejected { break loop }
            case .tick(let now):
                clock = now
                plugin.clock.store(now, ordering: .relaxed)
                handle.tick(nowNs: now)
            }
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
