import PluginAPI

/// Settings of one dissection session.
public struct SessionConfiguration: Sendable {
    /// A TCP flow with no packet for this long is closed (capture time).
    public var tcpIdleTimeoutNs: Int64 = 300 * 1_000_000_000
    /// A UDP pseudo-flow with no datagram for this long is closed.
    public var udpIdleTimeoutNs: Int64 = 60 * 1_000_000_000
    /// How often (capture time) idle flows are swept and streams ticked.
    public var sweepIntervalNs: Int64 = 1_000_000_000
    /// Most flows tracked at once; beyond it the oldest idle flow is evicted.
    public var maxFlows = 1 << 20
    /// Reassembly memory caps.
    public var reassemblyTotalBytes = 256 << 20
    public var reassemblyPerDirectionBytes = 4 << 20
    /// Per-stream buffer limits.
    public var streamLimits = StreamLimits()
    /// Flow ids are firstFlowID, firstFlowID + flowIDStride, ...: sessions
    /// running side by side get disjoint ids (entry ids embed them).
    public var firstFlowID: UInt64 = 1
    public var flowIDStride: UInt64 = 1
    /// Pod names written into entries' `src` and `dst`.
    public var endpointNames: EndpointNames?
    public init() {}
}

/// Counters of a session.
public struct SessionStatistics: Sendable {
    public var packets: UInt64 = 0
    public var tcpPackets: UInt64 = 0
    public var udpPackets: UInt64 = 0
    public var skippedPackets: UInt64 = 0
    public var malformedPackets: UInt64 = 0
    public var tcpFlows: UInt64 = 0
    public var udpFlows: UInt64 = 0
    public var flowsDissected: UInt64 = 0
    public var flowsIgnored: UInt64 = 0
    public var flowsEvicted: UInt64 = 0
    public var reprobes: UInt64 = 0
    /// TLS plaintext chunks processed, connections made of them, and chunks
    /// dropped because the other end's process already reported the connection.
    public var tlsChunks: UInt64 = 0
    public var tlsFlows: UInt64 = 0
    public var tlsDuplicateChunks: UInt64 = 0
    /// Wire flows left undissected because their plaintext came from the TLS probes.
    public var wireFlowsDecrypted: UInt64 = 0
    public var entries: Int = 0
    public var entriesRefused: Int = 0
    public init() {}
}

/// Turns packets into entries: decoding, flow tracking, TCP reassembly, UDP
/// pseudo-flows, protocol detection and the plugin calls. A session has its own
/// state and is driven by one thread; several sessions can run side by side.
public final class DissectionSession {
    public let plugins: [LoadedPlugin]
    public let configuration: SessionConfiguration
    private let emitter: EntryEmitter
    private var decoder = PacketDecoder()
    let budget: ReassemblyBudget
    var tcpFlows: [FlowKey: TCPFlow] = [:]
    private var udpFlows: [FlowKey: UDPFlow] = [:]
    /// Connections made of TLS plaintext (see TLSFlows.swift), and which of them
    /// owns each connection's addresses (one view per connection).
    var tlsFlows: [TLSConnectionKey: TCPFlow] = [:]
    var tlsOwners: [FlowKey: TLSConnectionKey] = [:]
    private var nextFlowID: UInt64 = 1
    private(set) var nowNs: Int64 = 0
    private var lastSweepNs: Int64 = 0
    var stats = SessionStatistics()
    let tcpPlugins: [LoadedPlugin]
    private let udpPlugins: [LoadedPlugin]

    /// - Parameters:
    ///   - plugins: started plugins, in catalog order.
    ///   - sink: where finished entries go.
    public init(plugins: [LoadedPlugin], sink: EntrySink, configuration: SessionConfiguration = SessionConfiguration()) {
        self.plugins = plugins
        self.configuration = configuration
        emitter = EntryEmitter(sink: sink, names: configuration.endpointNames)
        budget = ReassemblyBudget(
            totalLimitBytes: configuration.reassemblyTotalBytes,
            perDirectionLimitBytes: configuration.reassemblyPerDirectionBytes)
        nextFlowID = configuration.firstFlowID
        tcpPlugins = plugins.filter { $0.metadata.handlesTCP }
        udpPlugins = plugins.filter { $0.metadata.handlesUDP }
    }

    /// Counters so far.
    public var statistics: SessionStatistics {
        var s = stats
        s.entries = emitter.entriesEmitted
        s.entriesRefused = emitter.entriesRefused
        return s
    }

    /// Decoder counters so far.
    var decoderCounters: DecoderCounters { decoder.counters }

    /// Processes one packet.
    public func process(_ packet: CapturedPacket) {
        advanceClock(to: packet.timestampNs)
        guard let linkType = LinkType(dlt: packet.linkType) else {
            countUndecoded(malformed: false)
            return
        }
        switch decoder.decode(
            linkType: linkType, data: packet.data, wireLength: packet.wireLength, timestampNs: packet.timestampNs)
        {
        case .packet(let p):
            process(decoded: p)
        case .fragmentHeld:
            stats.packets &+= 1
        case .skipped:
            countUndecoded(malformed: false)
        case .malformed:
            countUndecoded(malformed: true)
        }
    }

    /// Processes a packet another thread already decoded (see `ParallelDissection`).
    func process(decoded p: DecodedPacket) {
        stats.packets &+= 1
        advanceClock(to: p.timestampNs)
        switch p.transport {
        case .tcp:
            stats.tcpPackets &+= 1
            processTCP(p)
        case .udp:
            stats.udpPackets &+= 1
            processUDP(p)
        default:
            stats.skippedPackets &+= 1
        }
    }

    /// Moves capture time forward (never back), sweeping idle flows when due.
    func advanceClock(to timestampNs: Int64) {
        if timestampNs > nowNs {
            nowNs = timestampNs
            if nowNs - lastSweepNs >= configuration.sweepIntervalNs { sweep() }
        }
    }

    /// Counts a packet the dispatcher could not decode, so statistics add up.
    func countUndecoded(malformed: Bool) {
        stats.packets &+= 1
        if malformed { stats.malformedPackets &+= 1 } else { stats.skippedPackets &+= 1 }
    }

    /// Ends every flow (end of capture), emitting what is pending.
    public func finish() {
        for flow in Self.expire(&tcpFlows, now: nowNs, idle: -1) { close(flow, reason: KS_CLOSE_CAPTURE_END) }
        for flow in Self.expire(&udpFlows, now: nowNs, idle: -1) { close(flow, reason: KS_CLOSE_CAPTURE_END) }
        for flow in Self.expire(&tlsFlows, now: nowNs, idle: -1) { closeTLS(flow, reason: KS_CLOSE_CAPTURE_END) }
    }

    // MARK: - Clock

    private func publishClock() {
        for p in plugins { p.clock.store(nowNs, ordering: .relaxed) }
    }

    private func sweep() {
        lastSweepNs = nowNs
        publishClock()
        for flow in Self.expire(&tcpFlows, now: nowNs, idle: configuration.tcpIdleTimeoutNs) {
            close(flow, reason: KS_CLOSE_TIMEOUT)
        }
        for flow in Self.expire(&udpFlows, now: nowNs, idle: configuration.udpIdleTimeoutNs) {
            close(flow, reason: KS_CLOSE_TIMEOUT)
        }
        for flow in Self.expire(&tlsFlows, now: nowNs, idle: configuration.tcpIdleTimeoutNs) {
            closeTLS(flow, reason: KS_CLOSE_TIMEOUT)
        }
    }

    /// Removes the flows idle for longer than `idle` and returns them in flow
    /// order (so output does not depend on hashing); ticks the others.
    private static func expire<K: Hashable, F: TrackedFlow>(_ flows: inout [K: F], now: Int64, idle: Int64) -> [F] {
        var expired: [F] = []
        for (key, flow) in flows {
            if now - flow.lastSeenNs > idle {
                expired.append(flow)
                flows.removeValue(forKey: key)
            } else {
                flow.handle?.tick(nowNs: now)
            }
        }
        return expired.sorted { $0.info.flow_id < $1.info.flow_id }
    }

    // MARK: - Flow creation

    private func endpoint(_ ip: IPAddress, _ port: UInt16) -> ks_endpoint {
        var e = ks_endpoint()
        e.struct_size = UInt32(MemoryLayout<ks_endpoint>.size)
        e.port = port
        e.family = ip.isIPv6 ? 6 : 4
        e.addr = ip.bytes16
        return e
    }

    func makeInfo(layer4: UInt32, client: (IPAddress, UInt16), server: (IPAddress, UInt16), flags: UInt32)
        -> ks_flow_info
    {
        var info = ks_flow_info()
        info.struct_size = UInt32(MemoryLayout<ks_flow_info>.size)
        info.layer4 = layer4
        info.flags = flags
        info.flow_id = nextFlowID
        nextFlowID &+= configuration.flowIDStride
        info.client = endpoint(client.0, client.1)
        info.server = endpoint(server.0, server.1)
        return info
    }

    /// Guesses which end is the server when the handshake was not seen: the side
    /// whose port is a plugin's hint, else the lower port, else the destination.
    private func sourceLooksLikeServer(_ p: DecodedPacket, plugins: [LoadedPlugin]) -> Bool {
        let srcHinted = plugins.contains { $0.metadata.hints(port: p.srcPort) }
        let dstHinted = plugins.contains { $0.metadata.hints(port: p.dstPort) }
        if srcHinted != dstHinted { return srcHinted }
        if p.srcPort < 1024 && p.dstPort >= 1024 { return true }
        if p.dstPort < 1024 && p.srcPort >= 1024 { return false }
        return false
    }

    private func evictIfFull() {
        guard tcpFlows.count + udpFlows.count >= configuration.maxFlows else { return }
        if let (key, flow) = tcpFlows.min(by: { $0.value.lastSeenNs < $1.value.lastSeenNs }) {
            tcpFlows.removeValue(forKey: key)
            close(flow, reason: KS_CLOSE_EVICTED)
            stats.flowsEvicted &+= 1
        }
    }

    // MARK: - TCP

    private func processTCP(_ p: DecodedPacket) {
        let key = FlowKey(source: p.src, destination: p.dst, sourcePort: p.srcPort, destinationPort: p.dstPort,
                          transport: 6)
        var flow = tcpFlows[key]
        var forward = true
        if flow == nil, let reverse = tcpFlows[key.reversed] {
            flow = reverse
            forward = false
        }
        if flow == nil {
            // A flow starts with a SYN, or with data when picked up mid-stream; a lone
            // ACK/FIN/RST (often the tail of a closed connection) starts nothing.
            let syn = p.tcpFlags.contains(.syn)
            guard syn || !p.payload.isEmpty else { return }
            evictIfFull()
            let srcIsServer: Bool
            var flags: UInt32 = 0
            if syn {
                srcIsServer = p.tcpFlags.contains(.ack)
            } else {
                srcIsServer = sourceLooksLikeServer(p, plugins: tcpPlugins)
                flags = KS_FLOW_MIDSTREAM | KS_FLOW_ROLES_GUESSED
            }
            let info = srcIsServer
                ? makeInfo(layer4: KS_L4_TCP, client: (p.dst, p.dstPort), server: (p.src, p.srcPort), flags: flags)
                : makeInfo(layer4: KS_L4_TCP, client: (p.src, p.srcPort), server: (p.dst, p.dstPort), flags: flags)
            let prober = Prober(plugins: tcpPlugins, layer4: KS_L4_TCP, ports: (p.srcPort, p.dstPort))
            let created = TCPFlow(
                key: key, keySourceIsClient: !srcIsServer, info: info, budget: budget, prober: prober, now: nowNs)
            if prober.isEmpty || tlsOwners[key] != nil || tlsOwners[key.reversed] != nil { created.stage = .ignored }
            tcpFlows[key] = created
            stats.tcpFlows &+= 1
            flow = created
        }
        guard let flow else { return }
        flow.lastSeenNs = nowNs
        // Reassemblers are per physical side (0: from the key's source); which of
        // them is the client can change when a probe reverses the roles, even in
        // the middle of these callbacks, so the direction is looked up per event.
        let physical = forward ? 0 : 1
        if p.tcpFlags.contains(.ack) {
            withSide(flow, 1 - physical) { d in
                d.peerAcknowledged(p.tcpAck, timestampNs: p.timestampNs) { event in
                    self.handle(event, flow: flow, direction: flow.direction(ofSide: 1 - physical))
                }
            }
        }
        withSide(flow, physical) { d in
            d.ingest(seq: p.tcpSeq, flags: p.tcpFlags, payload: p.payload, timestampNs: p.timestampNs) { event in
                self.handle(event, flow: flow, direction: flow.direction(ofSide: physical))
            }
        }
        if flow.finished.0 && flow.finished.1 {
            removeTCP(flow, reason: KS_CLOSE_FIN)
        }
    }

    private func withSide(_ flow: TCPFlow, _ side: Int, _ body: (inout TCPDirection) -> Void) {
        if side == 0 { body(&flow.directions.0) } else { body(&flow.directions.1) }
    }

    private func removeTCP(_ flow: TCPFlow, reason: ks_close_reason) {
        close(flow, reason: reason)
        tcpFlows.removeValue(forKey: flow.key)
    }

    func handle(_ event: ReassemblyEvent, flow: TCPFlow, direction: ks_direction) {
        switch event {
        case .data(let bytes, let ts):
            deliver(bytes, flow: flow, direction: direction, ts: ts)
        case .gap(let length, let ts):
            switch flow.stage {
            case .probing:
                // Probe data is no longer contiguous: start over after the gap.
                flow.retained.release()
                flow.retained = RetainedBytes()
            case .active:
                flow.retained.release()
                flow.handle?.gap(direction, length: length, timestampNs: ts)
            case .ignored:
                break
            }
        case .fin(let ts):
            markFinished(flow, direction)
            if flow.stage == .active, let h = flow.handle, !h.eofDelivered(direction) {
                if h.endOfStream(direction, timestampNs: ts) == .rejected { reprobe(flow) }
            }
        case .reset:
            flow.finished = (true, true)
        }
    }

    private func markFinished(_ flow: TCPFlow, _ d: ks_direction) {
        if d == KS_DIR_CLIENT_TO_SERVER { flow.finished.0 = true } else { flow.finished.1 = true }
    }

    func deliver(_ bytes: UnsafeRawBufferPointer, flow: TCPFlow, direction: ks_direction, ts: Int64) {
        switch flow.stage {
        case .ignored:
            return
        case .active:
            if flow.retained.complete {
                if flow.handle?.confirmed == true { flow.retained.release() } else { flow.retained.append(direction, bytes, ts: ts) }
            }
            if flow.handle?.data(direction, bytes, timestampNs: ts) == .rejected { reprobe(flow) }
        case .probing:
            flow.retained.append(direction, bytes, ts: ts)
            guard flow.retained.complete else {
                // Probe data outgrew its cap without a verdict.
                flow.stage = .ignored
                stats.flowsIgnored &+= 1
                return
            }
            var info = flow.info
            let view = flow.retained.view(direction)
            view.withUnsafeBytes { flow.prober.probe(flow: &info, direction: direction, bytes: $0) }
            decide(flow, final: false)
        }
    }

    /// Acts on the prober's decision: activate a plugin (replaying retained bytes) or ignore the flow.
    private func decide(_ flow: TCPFlow, final: Bool) {
        switch flow.prober.decide(final: final) {
        case .wait:
            if final {
                flow.stage = .ignored
                stats.flowsIgnored &+= 1
            }
        case .none:
            flow.stage = .ignored
            flow.retained.release()
            stats.flowsIgnored &+= 1
        case .choose(let plugin, let reversed, _):
            if reversed { flow.swapRoles() }
            let handle = StreamHandle(plugin: plugin, flow: flow.info, emitter: emitter, limits: configuration.streamLimits)
            handle.tlsOrigin = flow.tlsOrigin
            guard handle.open() else {
                flow.stage = .ignored
                stats.flowsIgnored &+= 1
                return
            }
            flow.handle = handle
            flow.stage = .active
            stats.flowsDissected &+= 1
            var rejected = false
            flow.retained.replay { direction, bytes, ts in
                if handle.data(direction, bytes, timestampNs: ts) == .rejected {
                    rejected = true
                    return false
                }
                return true
            }
            if rejected { reprobe(flow) }
        }
    }

    /// The plugin rejected the flow: close it and try the others on the retained bytes.
    private func reprobe(_ flow: TCPFlow) {
        stats.reprobes &+= 1
        if let h = flow.handle {
            h.close(KS_CLOSE_REPROBE)
            flow.rejected.append(h.plugin)
        }
        flow.handle = nil
        guard flow.retained.complete else {
            flow.stage = .ignored
            stats.flowsIgnored &+= 1
            return
        }
        flow.prober = Prober(
            plugins: tcpPlugins, layer4: KS_L4_TCP, ports: (flow.info.client.port, flow.info.server.port),
            excluding: flow.rejected)
        flow.stage = .probing
        var info = flow.info
        for d in [KS_DIR_CLIENT_TO_SERVER, KS_DIR_SERVER_TO_CLIENT] {
            let view = flow.retained.view(d)
            if !view.isEmpty { view.withUnsafeBytes { flow.prober.probe(flow: &info, direction: d, bytes: $0) } }
        }
        decide(flow, final: false)
    }

    /// Ends a TCP flow: held segments flushed (holes become gaps), a last
    /// probe decision if needed, end of stream, then stream_close.
    func close(_ flow: TCPFlow, reason: ks_close_reason) {
        for side in 0...1 {
            withSide(flow, side) { d in
                d.flush(timestampNs: nowNs) { self.handle($0, flow: flow, direction: flow.direction(ofSide: side)) }
            }
        }
        if flow.stage == .probing { decide(flow, final: true) }
        guard let h = flow.handle else { return }
        for d in [KS_DIR_CLIENT_TO_SERVER, KS_DIR_SERVER_TO_CLIENT] where !h.eofDelivered(d) {
            _ = h.endOfStream(d, timestampNs: nowNs)
        }
        h.close(reason)
        flow.handle = nil
        flow.stage = .ignored
    }

    // MARK: - UDP

    private func processUDP(_ p: DecodedPacket) {
        guard !udpPlugins.isEmpty else { return }
        let key = FlowKey(source: p.src, destination: p.dst, sourcePort: p.srcPort, destinationPort: p.dstPort,
                          transport: 17)
        var flow = udpFlows[key]
        var forward = true
        if flow == nil, let reverse = udpFlows[key.reversed] {
            flow = reverse
            forward = false
        }
        if flow == nil {
            evictIfFull()
            let srcIsServer = sourceLooksLikeServer(p, plugins: udpPlugins)
            let info = srcIsServer
                ? makeInfo(layer4: KS_L4_UDP, client: (p.dst, p.dstPort), server: (p.src, p.srcPort),
                           flags: KS_FLOW_ROLES_GUESSED)
                : makeInfo(layer4: KS_L4_UDP, client: (p.src, p.srcPort), server: (p.dst, p.dstPort), flags: 0)
            let created = UDPFlow(
                keySourceIsClient: !srcIsServer, info: info, prober: Prober(plugins: udpPlugins, layer4: KS_L4_UDP, ports: (p.srcPort, p.dstPort)),
                now: nowNs)
            udpFlows[key] = created
            stats.udpFlows &+= 1
            flow = created
        }
        guard let flow else { return }
        flow.lastSeenNs = nowNs
        let fromClient = forward == flow.keySourceIsClient
        var direction: ks_direction = fromClient ? KS_DIR_CLIENT_TO_SERVER : KS_DIR_SERVER_TO_CLIENT
        switch flow.stage {
        case .ignored:
            return
        case .probing:
            var info = flow.info
            flow.prober.probe(flow: &info, direction: direction, bytes: p.payload)
            flow.datagramsProbed += 1
            switch flow.prober.decide(final: flow.datagramsProbed >= 4) {
            case .wait:
                return
            case .none:
                flow.stage = .ignored
                stats.flowsIgnored &+= 1
                return
            case .choose(let plugin, let reversed, _):
                if reversed {
                    (flow.info.client, flow.info.server) = (flow.info.server, flow.info.client)
                    flow.keySourceIsClient.toggle()
                    direction = 1 - direction
                }
                let handle = StreamHandle(plugin: plugin, flow: flow.info, emitter: emitter, limits: configuration.streamLimits)
                guard handle.open() else {
                    flow.stage = .ignored
                    return
                }
                flow.handle = handle
                flow.stage = .active
                stats.flowsDissected &+= 1
            }
            fallthrough
        case .active:
            if flow.handle?.datagram(direction, p.payload, timestampNs: p.timestampNs) == .rejected {
                flow.handle?.close(KS_CLOSE_REPROBE)
                flow.handle = nil
                flow.stage = .ignored
            }
        }
    }

    private func close(_ flow: UDPFlow, reason: ks_close_reason) {
        flow.handle?.close(reason)
        flow.handle = nil
    }
}
