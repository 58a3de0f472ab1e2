import Host
import Synchronization

/// The full entries a session has sent summaries of, by id, so a client can
/// ask for one; bounded in bytes (the oldest are forgotten first), along with
/// the flow each came from (for the pcap of its stream).
final class EntryStore: Sendable {
    struct Stored: Sendable {
        var json: [UInt8]
        var flow: FlowHash
        var timestampNs: Int64
    }

    let limitBytes: Int
    private let state = Mutex(State())

    private struct State {
        var entries: [String: Stored] = [:]
        var order: [String] = []
        var head = 0
        var bytes = 0
    }

    init(limitBytes: Int) { self.limitBytes = limitBytes }

    func put(id: String, _ stored: Stored) {
        state.withLock { s in
            if s.entries.updateValue(stored, forKey: id) == nil { s.order.append(id) }
            s.bytes += stored.json.count
            while s.bytes > limitBytes && s.head < s.order.count {
                let old = s.order[s.head]
                s.head += 1
                if let gone = s.entries.removeValue(forKey: old) { s.bytes -= gone.json.count }
            }
            // Compact the order list once half of it is forgotten ids.
            if s.head > 1024 && s.head * 2 > s.order.count {
                s.order.removeFirst(s.head)
                s.head = 0
            }
        }
    }

    func get(_ id: String) -> Stored? { state.withLock { $0.entries[id] } }
    var count: Int { state.withLock { $0.entries.count } }
}
