import Foundation
import Host
import Synchronization

/// One script as the hub keeps it for every worker.
public struct ScriptSpec: Sendable, Equatable {
    public var title: String
    public var code: String
    public var active: Bool

    public init(title: String, code: String, active: Bool) {
        self.title = title
        self.code = code
        self.active = active
    }
}

/// The scripts the hub holds and keeps on every worker (docs/scripting.md,
/// "Scripts on a hub and in a cluster"): set through the hub's `/api/scripts`
/// or, with `hub --kube`, the deployment's ConfigMap. Each second every worker's
/// scripts are compared with these and mended (a worker that restarted or
/// registered later gets them all); the workers' script log lines are gathered
/// into one log (each second while the hub manages scripts, and on each request
/// for it), each line naming its worker.
///
/// The hub manages only the titles it was given: a worker's own scripts
/// (`worker --scripts`) are left alone unless the hub is given the same title,
/// and a title removed from the hub is removed from every worker.
public final class HubScripts: Sendable {
    /// One log line gathered from a worker.
    struct LogLine: Sendable {
        var sequence: UInt64
        var timeMs: Int64
        var worker: String
        var script: String
        var level: String
        var message: String
    }

    private struct State {
        var desired: [ScriptSpec] = []
        /// Titles taken away from the hub, to be removed from workers that still run them.
        var removed: Set<String> = []
        var lines: [LogLine] = []
        var nextLine: UInt64 = 1
        /// Per worker: the last of its log lines gathered.
        var cursors: [String: UInt64] = [:]
    }

    private let state = Mutex(State())
    /// Called after a change made through the API (`hub --kube` writes the ConfigMap).
    private let persist: (@Sendable ([ScriptSpec]) async -> Void)?
    /// Lines kept in the gathered log.
    static let logCapacity = 8192

    public init(persist: (@Sendable ([ScriptSpec]) async -> Void)? = nil) {
        self.persist = persist
    }

    /// The scripts in their order.
    public var scripts: [ScriptSpec] { state.withLock { $0.desired } }

    /// Why a change was refused.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    // MARK: Changes

    /// Adds or replaces the script titled `spec.title`.
    public func put(_ spec: ScriptSpec) async {
        state.withLock { s in
            if let i = s.desired.firstIndex(where: { $0.title == spec.title }) { s.desired[i] = spec } else { s.desired.append(spec) }
            s.removed.remove(spec.title)
        }
        await persist?(scripts)
    }

    /// Activates or deactivates a script.
    public func setActive(_ title: String, _ active: Bool) async throws(Failure) {
        let found = state.withLock { s -> Bool in
            guard let i = s.desired.firstIndex(where: { $0.title == title }) else { return false }
            s.desired[i].active = active
            return true
        }
        guard found else { throw Failure(description: "no script titled '\(title)' on the hub") }
        await persist?(scripts)
    }

    /// Removes a script from the hub and from every worker.
    public func remove(_ title: String) async throws(Failure) {
        let found = state.withLock { s -> Bool in
            guard let i = s.desired.firstIndex(where: { $0.title == title }) else { return false }
            s.desired.remove(at: i)
            s.removed.insert(title)
            return true
        }
        guard found else { throw Failure(description: "no script titled '\(title)' on the hub") }
        await persist?(scripts)
    }

    /// Replaces every script (from the ConfigMap); titles that go away are removed from the workers.
    public func replaceAll(_ specs: [ScriptSpec]) {
        state.withLock { s in
            let kept = Set(specs.map(\.title))
            for old in s.desired where !kept.contains(old.title) { s.removed.insert(old.title) }
            s.removed.subtract(kept)
            s.desired = specs
        }
    }

    // MARK: Keeping workers in step

    /// What one worker runs, from its `GET /api/scripts`.
    struct WorkerScript: Sendable {
        var code: String
        var active: Bool
        var state: String
    }

    static func parseWorkerScripts(_ value: JSONValue?) -> [String: WorkerScript]? {
        guard case .array(let items)? = value else { return nil }
        var out: [String: WorkerScript] = [:]
        for item in items {
            guard case .string(let title)? = item["title"], case .string(let code)? = item["code"] else { continue }
            var active = false
            if case .bool(let a)? = item["active"] { active = a }
            var state = ""
            if case .string(let s)? = item["state"] { state = s }
            out[title] = WorkerScript(code: code, active: active, state: state)
        }
        return out
    }

    /// Brings every worker's scripts in step with the hub's and gathers their new
    /// log lines. Returns one line per change made.
    @discardableResult
    public func reconcile(_ hub: HubService) async -> [String] {
        let (desired, removed) = state.withLock { ($0.desired, $0.removed) }
        var changes: [String] = []
        // Nothing managed: nothing to mend, and the log is gathered when asked for.
        guard !desired.isEmpty || !removed.isEmpty else { return [] }
        for worker in hub.workers {
            await gatherLog(hub, worker)
            let (status, body) = await hub.get(worker, "/api/scripts", timeout: 3)
            guard status == 200, let running = Self.parseWorkerScripts(try? JSONValue.parse(Array(body))) else { continue }
            for spec in desired {
                let have = running[spec.title]
                var action: String?
                var payload: JSONValue
                if have == nil || have!.code != spec.code {
                    action = "loaded"
                    payload = .object([JSONMember(key: "title", value: .string(spec.title)),
                                       JSONMember(key: "code", value: .string(spec.code)),
                                       JSONMember(key: "active", value: .bool(spec.active))])
                    if await post(hub, worker, "/api/scripts", payload) { changes.append("worker \(worker.name): \(spec.title) \(action!)") }
                    continue
                }
                // Same code: only the switch may differ. A script that failed stays failed
                // until someone activates it again (its failure is in the log).
                guard have!.active != spec.active else { continue }
                action = spec.active ? "activate" : "deactivate"
                payload = .object([JSONMember(key: "title", value: .string(spec.title))])
                if await post(hub, worker, "/api/scripts/\(action!)", payload) {
                    changes.append("worker \(worker.name): \(spec.title) \(action!)d")
                }
            }
            for title in removed where running[title] != nil {
                if await post(hub, worker, "/api/scripts/remove", .object([JSONMember(key: "title", value: .string(title))])) {
                    changes.append("worker \(worker.name): \(title) removed")
                }
            }
        }
        return changes
    }

    /// Makes the hub's own change on every worker now (not at the next tick), and
    /// activates again a script that failed, when asked to activate it.
    func apply(_ hub: HubService, reactivate title: String? = nil) async {
        if let title, scripts.contains(where: { $0.title == title && $0.active }) {
            for worker in hub.workers {
                _ = await post(hub, worker, "/api/scripts/activate", .object([JSONMember(key: "title", value: .string(title))]))
            }
        }
        await reconcile(hub)
    }

    private func post(_ hub: HubService, _ worker: HubWorker, _ path: String, _ body: JSONValue) async -> Bool {
        let (status, answer) = await hub.send(worker, "POST", path, body: body.jsonBytes, timeout: 5)
        if status != 200 {
            hub.logger.warning("worker \(worker.name) refused \(path) (\(status)): \(String(decoding: answer.prefix(500), as: UTF8.self))")
        }
        return status == 200
    }

    // MARK: Log

    /// Fetches the worker's log lines after the last one gathered.
    func gatherLog(_ hub: HubService, _ worker: HubWorker) async {
        let after = state.withLock { $0.cursors[worker.name] ?? 0 }
        let (status, body) = await hub.get(worker, "/api/scripts/logs?after=\(after)", timeout: 3)
        guard status == 200, case .array(let items)? = try? JSONValue.parse(Array(body)) else { return }
        state.withLock { s in
            var cursor = after
            for item in items {
                guard case .number(let seq)? = item["seq"] else { continue }
                func text(_ k: String) -> String { if case .string(let v)? = item[k] { return v } else { return "" } }
                var time = 0.0
                if case .number(let t)? = item["time"] { time = t }
                cursor = max(cursor, UInt64(seq))
                s.lines.append(LogLine(sequence: s.nextLine, timeMs: Int64(time), worker: worker.name, script: text("script"),
                                       level: text("level"), message: text("message")))
                s.nextLine += 1
            }
            if s.lines.count > Self.logCapacity { s.lines.removeFirst(s.lines.count - Self.logCapacity) }
            s.cursors[worker.name] = cursor
        }
    }

    /// A worker that registered again (it restarted) numbers its log lines from 1 again.
    func forgetCursor(_ worker: String) { state.withLock { _ = $0.cursors.removeValue(forKey: worker) } }

    /// The gathered lines after `after` (optionally of one script), oldest first.
    func lines(after: UInt64, script: String?) -> [LogLine] {
        state.withLock { s in s.lines.filter { $0.sequence > after && (script == nil || $0.script == script) } }
    }
}
