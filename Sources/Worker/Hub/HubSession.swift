import Foundation
import Host
import Logging
import Synchronization
import WSClient

/// One dashboard query through the hub: a session on every worker, their
/// entries merged in timestamp order into one stream for the client. Entry ids
/// become `WORKER~ID` so requests for one entry find their worker.
final class HubSession: Sendable {
    let id: String
    let query: String
    let outbound: OutboundQueue
    private let fromNs: Int64?
    private let hub: HubService
    private let links: Mutex<[String: Link]>
    private let merger: EntryMerger
    /// Each worker's stream task, by name, and the merger's.
    private let tasks = Mutex<(workers: [String: Task<Void, Never>], merger: Task<Void, Never>?)>(([:], nil))

    /// A worker's side of the session.
    struct Link: Sendable {
        /// The worker's own session id (for REST requests routed to it).
        var workerSession: String?
        /// Newest entry timestamp seen (ms): where a resumed stream starts.
        var lastTimestampMs: Int64?
        /// Requests to send to the worker (fetches).
        var requests: AsyncStream<String>.Continuation?
        var up = false
    }

    init(id: String, query: String, fromNs: Int64?, hub: HubService) {
        self.id = id
        self.query = query
        self.fromNs = fromNs
        self.hub = hub
        outbound = OutboundQueue(limitBytes: 16 << 20)
        merger = EntryMerger(holdMs: 250, outbound: outbound)
        links = Mutex(Dictionary(uniqueKeysWithValues: hub.workers.map { ($0.name, Link()) }))
    }

    func start() {
        let merging = Task { await merger.run() }
        tasks.withLock { $0.merger = merging }
        for worker in hub.workers { follow(worker) }
    }

    /// Starts the stream of a worker that joined, or restarts it at a new URL.
    func follow(_ worker: HubWorker) {
        links.withLock { if $0[worker.name] == nil { $0[worker.name] = Link() } }
        let task = Task { await run(worker) }
        let old = tasks.withLock { t -> Task<Void, Never>? in
            let old = t.workers[worker.name]
            t.workers[worker.name] = task
            return old
        }
        old?.cancel()
    }

    /// Stops the stream of a worker that left, and says so to the client.
    func drop(_ name: String) {
        let task = tasks.withLock { $0.workers.removeValue(forKey: name) }
        task?.cancel()
        let link = links.withLock { $0.removeValue(forKey: name) }
        link?.requests?.finish()
        outbound.push(JSONValue.object([
            JSONMember(key: "type", value: .string("worker")), JSONMember(key: "worker", value: .string(name)),
            JSONMember(key: "up", value: .bool(false)), JSONMember(key: "reason", value: .string("unregistered")),
        ]).jsonBytes)
    }

    func stop() {
        tasks.withLock { t in
            t.workers.values.forEach { $0.cancel() }
            t.merger?.cancel()
        }
        links.withLock { $0.values.forEach { $0.requests?.finish() } }
        outbound.finish()
    }

    /// The worker's own session id and the worker, for an entry id `WORKER~ID`.
    func route(_ entryID: String) -> (HubWorker, String, String)? {
        guard let tilde = entryID.firstIndex(of: "~") else { return nil }
        let name = String(entryID[..<tilde])
        guard let worker = hub.worker(named: name), let session = links.withLock({ $0[name]?.workerSession }) else {
            return nil
        }
        return (worker, session, String(entryID[entryID.index(after: tilde)...]))
    }

    /// Forwards a client's fetch to the worker holding the entry.
    func fetch(_ entryID: String) -> Bool {
        guard let tilde = entryID.firstIndex(of: "~") else { return false }
        let name = String(entryID[..<tilde])
        let raw = String(entryID[entryID.index(after: tilde)...])
        let message = JSONValue.object([JSONMember(key: "type", value: .string("fetch")), JSONMember(key: "id", value: .string(raw))])
        guard let requests = links.withLock({ $0[name]?.requests }) else { return false }
        requests.yield(String(decoding: message.jsonBytes, as: UTF8.self))
        return true
    }

    // MARK: One worker's stream

    private func run(_ worker: HubWorker) async {
        var backoffMs: UInt64 = 250
        while !Task.isCancelled {
            let from = links.withLock { $0[worker.name]?.lastTimestampMs }.map { $0 * 1_000_000 } ?? fromNs
            var url = worker.url.replacingOccurrences(of: "http://", with: "ws://") + "/ws?q="
                + (query.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
            if let from { url += "&from=\(from)" }
            var configuration = WebSocketClientConfiguration(maxFrameSize: 16 << 20)
            if let token = worker.token { configuration.additionalHeaders[.authorization] = "Bearer \(token)" }
            let (requests, continuation) = AsyncStream.makeStream(of: String.self)
            links.withLock { $0[worker.name]?.requests = continuation }
            var reason = "connection closed"
            do {
                try await WebSocketClient.connect(url: url, configuration: configuration, logger: hub.logger) { inbound, out, _ in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for await request in requests { try await out.write(.text(request)) }
                        }
                        group.addTask {
                            for try await message in inbound.messages(maxSize: 16 << 20) {
                                guard case .text(let text) = message else { continue }
                                self.received(text, from: worker)
                            }
                        }
                        try await group.next()
                        group.cancelAll()
                    }
                }
            } catch {
                reason = "\(error)"
            }
            continuation.finish()
            // A cancelled stream was stopped or replaced: its successor reports the state.
            if Task.isCancelled { return }
            setUp(worker, false, reason: reason)
            try? await Task.sleep(nanoseconds: backoffMs * 1_000_000)
            backoffMs = min(backoffMs * 2, 5_000)
        }
    }

    private func setUp(_ worker: HubWorker, _ up: Bool, reason: String? = nil) {
        let changed = links.withLock { l -> Bool in
            let was = l[worker.name]?.up ?? false
            l[worker.name]?.up = up
            return was != up
        }
        hub.markWorker(worker.name, up: up, error: reason)
        guard changed else { return }
        var members = [
            JSONMember(key: "type", value: .string("worker")),
            JSONMember(key: "worker", value: .string(worker.name)),
            JSONMember(key: "up", value: .bool(up)),
        ]
        if let reason, !up { members.append(JSONMember(key: "reason", value: .string(reason))) }
        outbound.push(JSONValue.object(members).jsonBytes)
    }

    /// A message from a worker: entries are renamed and merged; the rest passes through.
    private func received(_ text: String, from worker: HubWorker) {
        guard case .object(var members)? = try? JSONValue.parse(text), case .string(let type)? = JSONValue.object(members)["type"]
        else { return }
        switch type {
        case "session":
            if case .string(let sid)? = JSONValue.object(members)["session"] {
                links.withLock { $0[worker.name]?.workerSession = sid }
            }
            setUp(worker, true)
        case "entry":
            guard let index = members.firstIndex(where: { $0.key == "entry" }), case .object(var entry) = members[index].value
            else { return }
            var timestampMs: Int64 = 0
            for i in entry.indices {
                switch entry[i].key {
                case "id": if case .string(let raw) = entry[i].value { entry[i].value = .string("\(worker.name)~\(raw)") }
                case "timestamp": if case .number(let t) = entry[i].value { timestampMs = Int64(t) }
                default: break
                }
            }
            entry.removeAll { $0.key == "worker" }
            entry.append(JSONMember(key: "worker", value: .string(worker.name)))
            members[index].value = .object(entry)
            for i in members.indices {
                switch members[i].key {
                case "session": members[i].value = .string(id)
                case "id": if case .string(let raw) = members[i].value { members[i].value = .string("\(worker.name)~\(raw)") }
                default: break
                }
            }
            if case .bool(true)? = JSONValue.object(members)["full"] {
                outbound.push(JSONValue.object(members).jsonBytes)  // an answer to a fetch: straight through
                return
            }
            // After a reconnection the worker starts again at the newest timestamp seen:
            // drop what was already sent.
            let fresh = links.withLock { l -> Bool in
                let last = l[worker.name]?.lastTimestampMs
                if let last, timestampMs < last { return false }
                l[worker.name]?.lastTimestampMs = max(timestampMs, last ?? 0)
                return true
            }
            if fresh { merger.add(timestampMs: timestampMs, message: JSONValue.object(members).jsonBytes) }
        default:
            members.append(JSONMember(key: "worker", value: .string(worker.name)))
            outbound.push(JSONValue.object(members).jsonBytes)
        }
    }
}

/// Holds entries briefly and releases them in timestamp order, so streams from
/// several workers interleave by capture time (within the hold window).
final class EntryMerger: Sendable {
    private let holdMs: Int64
    private let outbound: OutboundQueue
    private let pending = Mutex<[(timestampMs: Int64, arrivedNs: Int64, message: [UInt8])]>([])

    init(holdMs: Int64, outbound: OutboundQueue) {
        self.holdMs = holdMs
        self.outbound = outbound
    }

    func add(timestampMs: Int64, message: [UInt8]) {
        pending.withLock { $0.append((timestampMs, monotonicNanoseconds(), message)) }
    }

    /// Releases held entries every 50 ms until cancelled.
    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: 50_000_000)
            let cutoff = monotonicNanoseconds() - holdMs * 1_000_000
            let ready = pending.withLock { p -> [[UInt8]] in
                // Everything that arrived before the cutoff goes, with anything
                // newer whose timestamp sorts before the newest of those.
                guard p.contains(where: { $0.arrivedNs <= cutoff }) else { return [] }
                p.sort { $0.timestampMs < $1.timestampMs }
                let horizon = p.filter { $0.arrivedNs <= cutoff }.map(\.timestampMs).max()!
                let out = p.filter { $0.timestampMs <= horizon }.map(\.message)
                p.removeAll { $0.timestampMs <= horizon }
                return out
            }
            for message in ready { outbound.push(message) }
        }
    }
}
