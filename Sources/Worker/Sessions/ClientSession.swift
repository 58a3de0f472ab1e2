import Host

/// One client's query over the ring (a dashboard connection, a script): the
/// ring session that dissects for it, the summaries waiting to be sent, and
/// the full entries it may ask for.
public final class ClientSession: Sendable {
    public let id: String
    public let query: String
    let ringSession: RingSession
    let outbound: OutboundQueue
    let entries: EntryStore

    init(id: String, query: String, ringSession: RingSession, outbound: OutboundQueue, entries: EntryStore) {
        self.id = id
        self.query = query
        self.ringSession = ringSession
        self.outbound = outbound
        self.entries = entries
    }

    /// Progress of the dissection behind the session.
    public var progress: RingSession.Progress { ringSession.current }
}

/// Turns entries into summary messages for the client and keeps the full
/// entry for later requests. Runs on the session's dissection thread.
final class SummarySink: EntrySink, @unchecked Sendable {
    /// Top-level entry fields a summary carries (everything but the request
    /// and response bodies).
    static let summaryKeys: Set<String> = [
        "id", "stream", "index", "protocol", "tls", "src", "dst", "outgoing", "timestamp", "elapsedTime",
        "requestSize", "responseSize", "method", "summary", "status", "statusText", "unanswered", "flags", "worker", "node",
        "process", "pid",
    ]

    private let sessionID: String
    private let outbound: OutboundQueue
    private let entries: EntryStore

    init(sessionID: String, outbound: OutboundQueue, entries: EntryStore) {
        self.sessionID = sessionID
        self.outbound = outbound
        self.entries = entries
    }

    func emit(_ entry: EntryView) {
        guard let summary = try? JSONValue.parse(entry.json, keepingTopLevelKeys: Self.summaryKeys),
            case .string(let id)? = summary["id"]
        else { return }
        entries.put(id: id, EntryStore.Stored(json: Array(entry.json), flow: FlowHash(entry: entry),
                                              timestampNs: entry.timestampNs))
        let message = JSONValue.object([
            JSONMember(key: "type", value: .string("entry")),
            JSONMember(key: "session", value: .string(sessionID)),
            JSONMember(key: "entry", value: summary),
        ])
        outbound.push(message.jsonBytes)
    }
}
