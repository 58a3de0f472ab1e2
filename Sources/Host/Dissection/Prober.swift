import PluginAPI

/// Chooses the plugin for a flow from its first bytes.
///
/// Candidates are the plugins for the flow's layer 4, ordered by port hint
/// (a plugin whose default ports include either port first), then priority.
/// Each is probed on each direction's first bytes; the highest confidence wins,
/// ties going to the earlier candidate. A YES below "full syntax" (75) waits
/// while a candidate still says MAYBE and has probe budget left.
struct Prober {
    /// A candidate and what it said so far.
    struct Candidate {
        let plugin: LoadedPlugin
        let order: Int
        var saidNo = (false, false)
        var yes: (confidence: UInt32, reversed: Bool)?
        var maybe = false
    }

    enum Decision {
        /// Probe again when more bytes arrive.
        case wait
        /// Hand the flow to `plugin`; `reversed` when the roles must be swapped.
        case choose(LoadedPlugin, reversed: Bool, confidence: UInt32)
        /// No plugin wants the flow.
        case none
    }

    private(set) var candidates: [Candidate]

    /// Orders `plugins` for a flow between `portA` and `portB`.
    init(plugins: [LoadedPlugin], layer4: UInt32, ports: (UInt16, UInt16), excluding: [LoadedPlugin] = []) {
        let eligible = plugins.filter { p in
            p.metadata.layer4 & layer4 != 0 && !excluding.contains { $0 === p }
        }
        let ranked = eligible.enumerated().map { i, p -> (Int, Int32, Int, LoadedPlugin) in
            let hinted = p.metadata.hints(port: ports.0) || p.metadata.hints(port: ports.1)
            return (hinted ? 0 : 1, p.metadata.priority, i, p)
        }.sorted { a, b in (a.0, a.1, a.2) < (b.0, b.1, b.2) }
        candidates = ranked.enumerated().map { Candidate(plugin: $1.3, order: $0) }
    }

    var isEmpty: Bool { candidates.isEmpty }

    /// Probes every live candidate on `bytes`, the first bytes of `direction`.
    mutating func probe(flow: inout ks_flow_info, direction: ks_direction, bytes: UnsafeRawBufferPointer) {
        var chunk = ks_chunk()
        chunk.struct_size = UInt32(MemoryLayout<ks_chunk>.size)
        chunk.direction = direction
        chunk.data = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        chunk.len = UInt32(clamping: bytes.count)
        chunk.flags = KS_CHUNK_FIRST
        for i in candidates.indices {
            let c = candidates[i]
            let no = direction == KS_DIR_CLIENT_TO_SERVER ? c.saidNo.0 : c.saidNo.1
            if no || c.yes != nil { continue }
            let meta = c.plugin.metadata
            guard bytes.count >= meta.probeMinBytes else {
                candidates[i].maybe = true
                continue
            }
            var result = ks_probe_result()
            result.struct_size = UInt32(MemoryLayout<ks_probe_result>.size)
            // A probe sees at most its byte budget.
            chunk.len = UInt32(clamping: min(bytes.count, meta.probeMaxBytes))
            c.plugin.descriptor.pointee.probe?(c.plugin.context, &flow, &chunk, &result)
            switch result.verdict {
            case KS_PROBE_YES:
                candidates[i].yes = (min(result.confidence, 100), result.flags & KS_PROBE_REVERSED != 0)
                candidates[i].maybe = false
            case KS_PROBE_MAYBE:
                // Budget spent without an answer counts as NO for this direction.
                if bytes.count >= meta.probeMaxBytes {
                    markNo(i, direction)
                } else {
                    candidates[i].maybe = true
                }
            default:
                markNo(i, direction)
            }
        }
    }

    private mutating func markNo(_ i: Int, _ direction: ks_direction) {
        candidates[i].maybe = false
        if direction == KS_DIR_CLIENT_TO_SERVER { candidates[i].saidNo.0 = true } else { candidates[i].saidNo.1 = true }
    }

    /// Decides after the probes so far. A candidate stays alive until it said NO
    /// to both directions (server-first protocols answer only the server's bytes).
    /// `final` forces a decision (the flow ends or the probe budget is spent).
    func decide(final: Bool) -> Decision {
        var best: Candidate?
        for c in candidates {
            guard let y = c.yes else { continue }
            if let b = best, let by = b.yes, by.confidence >= y.confidence { continue }
            best = c
        }
        let anyMaybe = candidates.contains { $0.maybe && $0.yes == nil }
        if let best, let y = best.yes {
            if y.confidence >= KS_CONFIDENCE_SYNTAX || !anyMaybe || final {
                return .choose(best.plugin, reversed: y.reversed, confidence: y.confidence)
            }
            return .wait
        }
        if final { return .none }
        let alive = candidates.contains { c in c.maybe || !c.saidNo.0 || !c.saidNo.1 }
        return alive ? .wait : .none
    }
}
