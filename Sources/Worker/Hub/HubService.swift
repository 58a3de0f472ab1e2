import Foundation
import Host
import Logging
import Synchronization

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Where a hub learns, per worker, the pods to target when the workers' own
/// nodes are not where it learns them (`hub --kube`: the cluster's pods by node).
public protocol TargetSource: Sendable {
    /// The pods in `scope` on each worker's node, by worker name (the node's name);
    /// nil while not known yet (nothing is pushed then).
    func targetsByWorker(scope: PodScope) async -> [String: [LocalPod]]?
}

/// A worker the hub talks to.
public struct HubWorker: Sendable, Equatable {
    /// Short name shown in entries (`worker`) and statistics.
    public var name: String
    /// Base URL of its API, `http://host:port`.
    public var url: String
    /// Its access token, when it requires one.
    public var token: String?

    public init(name: String, url: String, token: String? = nil) {
        self.name = name
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.token = token
    }

    /// Parses `URL` or `NAME=URL` (the `--worker` flag); names default to `w1`, `w2`...
    public static func parse(_ text: String, index: Int) -> HubWorker? {
        var name = "w\(index + 1)"
        var url = text
        if let eq = text.firstIndex(of: "="), !text[..<eq].contains(":") {
            name = String(text[..<eq])
            url = String(text[text.index(after: eq)...])
        }
        guard url.hasPrefix("http://"), !name.isEmpty, !name.contains("~") else { return nil }
        return HubWorker(name: name, url: url)
    }
}

/// The hub: knows the workers, fans each dashboard query out to all of them,
/// merges their entry streams in timestamp order, and routes requests for one
/// entry (in full, or its pcap) to the worker that holds it. A worker that goes
/// away is shown as down; its stream resumes where it stopped when it returns.
public final class HubService: Sendable {
    /// The workers now: from `--worker` flags, and those that registered (`POST /api/workers`).
    public var workers: [HubWorker] { members.withLock { $0 } }
    private let members: Mutex<[HubWorker]>
    /// The token given to workers that register (the hub's `--worker-token`).
    let workerToken: String?
    /// The cluster's pods by node, when the hub follows a cluster; else each worker's node pods.
    let targetSource: (any TargetSource)?
    let logger: Logger
    /// The hub's own access token (dashboard side), when it requires one.
    public let accessToken: String?
    private let states: Mutex<[String: WorkerLinkState]>
    private let sessions = Mutex<[String: HubSession]>([:])
    private let nextSession = Atomic<Int>(1)
    private let scopeState: Mutex<PodScope>
    /// The scripts the hub keeps on every worker.
    public let scripts: HubScripts

    /// What the hub knows of one worker's health.
    struct WorkerLinkState: Sendable {
        var up = false
        var lastError: String?
        var lastStats: JSONValue?
    }

    /// - Parameter scope: the pods to target on the workers that take their targets
    ///   from the hub (`kubeshark worker --pods`).
    public init(workers: [HubWorker], scope: PodScope = PodScope(), accessToken: String? = nil, workerToken: String? = nil,
                targetSource: (any TargetSource)? = nil, scripts: HubScripts = HubScripts(),
                logger: Logger = Logger(label: "hub")) {
        members = Mutex(workers)
        self.scripts = scripts
        self.workerToken = workerToken
        self.targetSource = targetSource
        scopeState = Mutex(scope)
        self.accessToken = accessToken
        self.logger = logger
        states = Mutex(Dictionary(uniqueKeysWithValues: workers.map { ($0.name, WorkerLinkState()) }))
    }

    // MARK: Sessions

    func openSession(query: String, fromNs: Int64?) -> HubSession {
        let id = "h\(nextSession.wrappingAdd(1, ordering: .relaxed).oldValue)"
        let session = HubSession(id: id, query: query, fromNs: fromNs, hub: self)
        sessions.withLock { $0[id] = session }
        session.start()
        return session
    }

    func closeSession(_ id: String) {
        guard let session = sessions.withLock({ $0.removeValue(forKey: id) }) else { return }
        session.stop()
    }

    func session(_ id: String) -> HubSession? { sessions.withLock { $0[id] } }

    func worker(named name: String) -> HubWorker? { workers.first { $0.name == name } }

    // MARK: Membership

    /// Adds a worker, or moves one to a new URL (a worker that restarted elsewhere);
    /// open sessions start (or restart) its stream. Returns whether anything changed.
    @discardableResult
    public func register(_ worker: HubWorker) -> Bool {
        var worker = worker
        if worker.token == nil { worker.token = workerToken }
        let changed = members.withLock { list -> Bool in
            if let i = list.firstIndex(where: { $0.name == worker.name }) {
                if list[i] == worker { return false }
                list[i] = worker
            } else {
                list.append(worker)
            }
            return true
        }
        guard changed else { return false }
        states.withLock { if $0[worker.name] == nil { $0[worker.name] = WorkerLinkState() } }
        scripts.forgetCursor(worker.name)
        logger.info("worker \(worker.name) registered at \(worker.url)")
        for session in sessions.withLock({ Array($0.values) }) { session.follow(worker) }
        return true
    }

    /// Forgets a worker; open sessions stop its stream. False when unknown.
    @discardableResult
    public func unregister(_ name: String) -> Bool {
        let removed = members.withLock { list -> Bool in
            let before = list.count
            list.removeAll { $0.name == name }
            return list.count != before
        }
        guard removed else { return false }
        states.withLock { _ = $0.removeValue(forKey: name) }
        for session in sessions.withLock({ Array($0.values) }) { session.drop(name) }
        return true
    }

    func markWorker(_ name: String, up: Bool, error: String? = nil) {
        let changed = states.withLock { s -> Bool in
            let was = s[name]?.up ?? false
            s[name, default: WorkerLinkState()].up = up
            if let error { s[name]?.lastError = error }
            return was != up
        }
        if changed { logger.info("worker \(name) is \(up ? "up" : "down")\(error.map { ": \($0)" } ?? "")") }
    }

    // MARK: REST towards workers

    /// GETs `path` from `worker`; the status and body (status 0 when unreachable).
    func get(_ worker: HubWorker, _ path: String, timeout: TimeInterval = 5) async -> (Int, Data) {
        await send(worker, "GET", path, timeout: timeout)
    }

    /// Sends one request to `worker`; the status and body (status 0 when unreachable).
    func send(_ worker: HubWorker, _ method: String, _ path: String, body: [UInt8]? = nil,
              timeout: TimeInterval = 5) async -> (Int, Data) {
        guard let url = URL(string: worker.url + path) else { return (0, Data()) }
        var request = URLRequest(url: url, timeoutInterval: timeout)
        request.httpMethod = method
        if let body {
            request.httpBody = Data(body)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let token = worker.token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        return await withCheckedContinuation { continuation in
            URLSession.shared.dataTask(with: request) { data, response, _ in
                continuation.resume(returning: ((response as? HTTPURLResponse)?.statusCode ?? 0, data ?? Data()))
            }.resume()
        }
    }

    /// Every worker's `/api/stats`, and their sums in the worker's own shape
    /// (so the dashboard shows a hub like a worker), plus a `workers` list.
    func stats() async -> JSONValue {
        var perWorker: [(HubWorker, JSONValue?)] = []
        for worker in workers {
            let (status, body) = await get(worker, "/api/stats", timeout: 2)
            let value = status == 200 ? try? JSONValue.parse(Array(body)) : nil
            states.withLock { $0[worker.name]?.lastStats = value }
            markWorker(worker.name, up: value != nil, error: value == nil ? "no answer from \(worker.url)/api/stats" : nil)
            perWorker.append((worker, value))
        }
        func sum(_ section: String, _ key: String) -> JSONValue {
            .number(perWorker.reduce(0.0) { total, w in
                if case .number(let n)? = w.1?[section]?[key] { return total + n }
                return total
            })
        }
        let up = states.withLock { $0 }
        let captureKeys = ["received", "droppedByKernel", "droppedByUs", "filtered", "bytes"]
        let ringKeys = ["limitBytes", "usageBytes", "segments", "packetsWritten", "bytesWritten", "droppedQueueFull",
                        "droppedDiskError", "segmentsFlushed", "segmentsLost"]
        let running = perWorker.contains { w in
            if case .bool(true)? = w.1?["capture"]?["running"] { return true }
            return false
        }
        // Plugins: each name once; refusals named by their worker.
        var pluginNames: [String] = []
        var refused: [JSONValue] = []
        for (worker, stats) in perWorker {
            if case .array(let plugins)? = stats?["plugins"] {
                for case .string(let name)? in plugins.map({ $0["name"] }) where !pluginNames.contains(name) { pluginNames.append(name) }
            }
            if case .array(let lines)? = stats?["pluginsRefused"] {
                for case .string(let line) in lines { refused.append(.string("\(worker.name): \(line)")) }
            }
        }
        return .object([
            JSONMember(key: "worker", value: .string("hub")),
            JSONMember(key: "capture", value: .object(
                [JSONMember(key: "backend", value: .string("\(perWorker.filter { $0.1 != nil }.count) of \(workers.count) workers")),
                 JSONMember(key: "running", value: .bool(running))]
                    + captureKeys.map { JSONMember(key: $0, value: sum("capture", $0)) })),
            JSONMember(key: "ring", value: .object(ringKeys.map { JSONMember(key: $0, value: sum("ring", $0)) })),
            JSONMember(key: "sessions", value: .array(sessions.withLock { Array($0.keys) }.sorted().map { .string($0) })),
            JSONMember(key: "plugins", value: .array(pluginNames.map { .object([JSONMember(key: "name", value: .string($0))]) })),
            JSONMember(key: "pluginsRefused", value: .array(refused)),
            JSONMember(key: "workers", value: .array(workers.map { w in
                var members = [
                    JSONMember(key: "name", value: .string(w.name)),
                    JSONMember(key: "url", value: .string(w.url)),
                    JSONMember(key: "up", value: .bool(up[w.name]?.up ?? false)),
                ]
                if let e = up[w.name]?.lastError { members.append(JSONMember(key: "lastError", value: .string(e))) }
                if let s = perWorker.first(where: { $0.0 == w })?.1 { members.append(JSONMember(key: "stats", value: s)) }
                return .object(members)
            })),
        ])
    }

    /// Every worker's targeted pods, each marked with its worker.
    func pods() async -> JSONValue {
        var all: [JSONValue] = []
        for worker in workers {
            let (status, body) = await get(worker, "/api/pods", timeout: 2)
            guard status == 200, case .array(let pods)? = try? JSONValue.parse(Array(body)) else { continue }
            for case .object(var members) in pods {
                members.append(JSONMember(key: "worker", value: .string(worker.name)))
                all.append(.object(members))
            }
        }
        return .array(all)
    }

    // MARK: Scope

    /// The pods the hub targets.
    public var scope: PodScope { scopeState.withLock { $0 } }

    /// Changes the scope; the workers get their new targets at the next `pushTargets()`.
    public func setScope(_ scope: PodScope) { scopeState.withLock { $0 = scope } }

    /// Sends each worker that takes targets the pods of its node that the scope
    /// selects, when they differ from what it captures (so a worker that restarted,
    /// or a pod that came or went, is caught up). Returns one line per change.
    /// The pods come from the target source (the cluster) when there is one, else
    /// from each worker's own node (`/api/node/pods`).
    @discardableResult
    public func pushTargets() async -> [String] {
        let scope = self.scope
        var byWorker: [String: [LocalPod]]?
        if let targetSource {
            guard let known = await targetSource.targetsByWorker(scope: scope) else { return [] }
            byWorker = known
        }
        var changes: [String] = []
        for worker in workers {
            let (status, body) = await get(worker, "/api/node/pods", timeout: 2)
            guard status == 200, let node = try? JSONValue.parse(Array(body)),
                  case .bool(true)? = node["acceptsTargets"], let pods = LocalPod.list(json: node)
            else { continue }
            var current: Set<String> = []
            if case .array(let names)? = node["targeted"] {
                for case .string(let name) in names { current.insert(name) }
            }
            let wanted = byWorker.map { $0[worker.name] ?? [] } ?? scope.targets(pods)
            guard Set(wanted.map(\.qualifiedName)) != current else { continue }
            let message = JSONValue.object([JSONMember(key: "pods", value: .array(wanted.map(\.json)))])
            let (put, answer) = await send(worker, "PUT", "/api/targets", body: message.jsonBytes, timeout: 5)
            if put == 200 {
                let line = "worker \(worker.name): targets \(wanted.map(\.qualifiedName).joined(separator: " "))"
                logger.info("\(line)")
                changes.append(line)
            } else {
                logger.warning("worker \(worker.name) refused its targets (\(put)): \(String(decoding: answer, as: UTF8.self))")
            }
        }
        return changes
    }

    /// Whether at least one worker answers.
    var anyWorkerUp: Bool { states.withLock { $0.values.contains { $0.up } } }
}
