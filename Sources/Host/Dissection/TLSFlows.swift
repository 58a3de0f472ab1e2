import PluginAPI

/// The process a TLS flow's plaintext came from, written into its entries.
struct TLSOrigin {
    var name: String
    var pid: Int32
}

/// One TLS connection of one process: its `SSL *`.
struct TLSConnectionKey: Hashable {
    var pid: Int32
    var ssl: UInt64
}

/// TLS plaintext from the uprobes goes through the same flows, probing, plugins
/// and entries as reassembled TCP: each connection's chunks are already in
/// order per direction, so they are delivered as a TCP flow's stream bytes.
extension DissectionSession {
    /// Processes one chunk of TLS plaintext (see `TLSTracer`).
    public func process(tls chunk: TLSChunk) {
        advanceClock(to: chunk.timestampNs)
        stats.tlsChunks &+= 1
        let key = TLSConnectionKey(pid: chunk.pid, ssl: chunk.ssl)
        let unknown = (address: IPAddress(ipv4: 0), port: UInt16(0))
        let local = chunk.local ?? unknown
        let remote = chunk.remote ?? unknown
        let wireKey = FlowKey(source: local.address, destination: remote.address, sourcePort: local.port,
                              destinationPort: remote.port, transport: 6)
        var flow = tlsFlows[key]
        if let existing = flow, chunk.local != nil, existing.key != wireKey {
            // The process freed that SSL and a new connection got the same pointer.
            tlsFlows.removeValue(forKey: key)
            closeTLS(existing, reason: KS_CLOSE_FIN)
            flow = nil
        }
        if flow == nil {
            // Both ends' processes may be traced: the first to report the connection owns it.
            if chunk.local != nil, let owner = tlsOwners[wireKey] ?? tlsOwners[wireKey.reversed], owner != key {
                stats.tlsDuplicateChunks &+= 1
                return
            }
            flow = openTLS(key, chunk, wireKey: wireKey, local: local, remote: remote)
        }
        guard let flow else { return }
        flow.lastSeenNs = nowNs
        // Side 0 is the process's end (the key's source).
        let direction = flow.direction(ofSide: chunk.outgoing ? 0 : 1)
        chunk.withUnsafeBytes { deliver($0, flow: flow, direction: direction, ts: chunk.timestampNs) }
        let missing = chunk.missing
        if missing > 0 { handle(.gap(length: UInt64(missing), timestampNs: chunk.timestampNs), flow: flow, direction: direction) }
    }

    /// A new TLS connection. The process is the server when its port listens; when
    /// that is unknown, the sender of the first plaintext is taken as the client
    /// (requests come first in most protocols), a guess the prober may reverse.
    private func openTLS(_ key: TLSConnectionKey, _ chunk: TLSChunk, wireKey: FlowKey,
                         local: (address: IPAddress, port: UInt16), remote: (address: IPAddress, port: UInt16)) -> TCPFlow
    {
        let processIsClient = chunk.localIsServer.map { !$0 } ?? chunk.outgoing
        let flags = chunk.localIsServer == nil ? KS_FLOW_ROLES_GUESSED : 0
        let info = processIsClient
            ? makeInfo(layer4: KS_L4_TCP, client: local, server: remote, flags: flags)
            : makeInfo(layer4: KS_L4_TCP, client: remote, server: local, flags: flags)
        let prober = Prober(plugins: tcpPlugins, layer4: KS_L4_TCP, ports: (local.port, remote.port))
        let flow = TCPFlow(key: wireKey, keySourceIsClient: processIsClient, info: info, budget: budget, prober: prober,
                           now: nowNs)
        flow.tlsOrigin = TLSOrigin(name: chunk.process, pid: chunk.pid)
        if prober.isEmpty { flow.stage = .ignored }
        tlsFlows[key] = flow
        stats.tlsFlows &+= 1
        if chunk.local != nil {
            tlsOwners[wireKey] = key
            silenceWireFlow(wireKey)
        }
        return flow
    }

    /// The connection's ciphertext, when captured on the wire, gives no entries:
    /// its exchanges are shown once, from the plaintext.
    private func silenceWireFlow(_ key: FlowKey) {
        guard let wire = tcpFlows[key] ?? tcpFlows[key.reversed], wire.stage != .ignored else { return }
        if let h = wire.handle {
            h.close(KS_CLOSE_REPROBE)
            wire.handle = nil
        }
        wire.retained.release()
        wire.stage = .ignored
        stats.wireFlowsDecrypted &+= 1
    }

    /// Ends a TLS flow (already removed from `tlsFlows`).
    func closeTLS(_ flow: TCPFlow, reason: ks_close_reason) {
        if let owner = tlsOwners[flow.key], tlsFlows[owner] == nil || tlsFlows[owner] === flow {
            tlsOwners.removeValue(forKey: flow.key)
        }
        close(flow, reason: reason)
    }
}
