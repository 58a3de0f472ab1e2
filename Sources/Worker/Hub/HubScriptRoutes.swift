import Host
import Hummingbird
import HummingbirdWebSocket
import Scripting

/// The scripts' part of the hub's API, in the worker's shape (docs/api.md), so
/// `kubeshark scripts --url` and the dashboard work the same on a hub:
///
/// - `GET /api/scripts`: every script the hub holds or a worker runs, with its
///   state summed over the workers and each worker's own (`workers`); `managed`
///   says whether the hub keeps it on every worker.
/// - `POST /api/scripts`, `POST /api/scripts/activate|deactivate|remove`: change
///   the hub's scripts; every worker follows at once (and later ones on joining).
/// - `GET /api/scripts/logs?after=N&script=TITLE`: the workers' script log lines,
///   gathered by the hub and numbered by it, each with its `worker`.
enum HubScriptRoutes {
    static func add(to router: Router<BasicWebSocketRequestContext>, hub: HubService) {
        router.get("/api/scripts") { _, _ in WorkerAPI.json(await overview(hub)) }
        router.post("/api/scripts") { request, _ -> Response in
            let (code, title, active) = try await ScriptRoutes.script(request)
            let name = title ?? ScriptManager.title(of: code, fallback: "script")
            await hub.scripts.put(ScriptSpec(title: name, code: code, active: active))
            await hub.scripts.apply(hub)
            return WorkerAPI.json(.object([JSONMember(key: "title", value: .string(name))]))
        }
        for action in ["activate", "deactivate", "remove"] {
            router.post("/api/scripts/\(action)") { request, _ -> Response in
                let title = try await ScriptRoutes.titled(request)
                do throws(HubScripts.Failure) {
                    switch action {
                    case "activate": try await hub.scripts.setActive(title, true)
                    case "deactivate": try await hub.scripts.setActive(title, false)
                    default: try await hub.scripts.remove(title)
                    }
                } catch {
                    throw HTTPError(.notFound, message: error.description)
                }
                await hub.scripts.apply(hub, reactivate: action == "activate" ? title : nil)
                return WorkerAPI.json(.object([JSONMember(key: "title", value: .string(title)),
                                               JSONMember(key: "done", value: .string(action))]))
            }
        }
        router.get("/api/scripts/logs") { request, _ -> Response in
            for worker in hub.workers { await hub.scripts.gatherLog(hub, worker) }
            let params = request.uri.queryParameters
            let after = params["after"].flatMap { UInt64(String($0)) } ?? 0
            let lines = hub.scripts.lines(after: after, script: params["script"].map(String.init))
            return WorkerAPI.json(.array(lines.map { line in
                ScriptRoutes.logLine(sequence: line.sequence, timeMs: line.timeMs, script: line.script, level: line.level,
                                     message: line.message, worker: line.worker)
            }))
        }
    }

    /// Counters of a worker's script description that the hub sums.
    static let counters = ["entries", "packets", "packetBatchesDropped", "queries", "errors", "jobRuns", "memoryBytes"]

    /// The hub's scripts and the workers' ones, each with its per-worker states.
    static func overview(_ hub: HubService) async -> JSONValue {
        let managed = hub.scripts.scripts
        var titles = managed.map(\.title)
        var perTitle: [String: [(worker: String, description: JSONValue)]] = [:]
        var codes: [String: (code: String, active: Bool)] = [:]
        // Asked of every worker at once: one that does not answer costs its timeout once, not per worker.
        let workers = hub.workers
        let answers = await withTaskGroup(of: (Int, JSONValue?).self) { group in
            for (i, worker) in workers.enumerated() {
                group.addTask {
                    let (status, body) = await hub.get(worker, "/api/scripts", timeout: 3)
                    return (i, status == 200 ? try? JSONValue.parse(Array(body)) : nil)
                }
            }
            var out: [(Int, JSONValue?)] = []
            for await answer in group { out.append(answer) }
            return out.sorted { $0.0 < $1.0 }
        }
        for (i, answer) in answers {
            let worker = workers[i]
            guard case .array(let items)? = answer else { continue }
            for item in items {
                guard case .string(let title)? = item["title"] else { continue }
                if !titles.contains(title) { titles.append(title) }
                perTitle[title, default: []].append((worker.name, item))
                if codes[title] == nil, case .string(let code)? = item["code"] {
                    var active = false
                    if case .bool(let a)? = item["active"] { active = a }
                    codes[title] = (code, active)
                }
            }
        }
        return .array(titles.map { title in
            let spec = managed.first { $0.title == title }
            let seen = perTitle[title] ?? []
            func text(_ v: JSONValue, _ k: String) -> String? { if case .string(let s)? = v[k] { return s } else { return nil } }
            let states = seen.map { text($0.description, "state") ?? "" }
            let failed = seen.filter { text($0.description, "state") == "failed" }
            let state: String
            if seen.isEmpty {
                state = spec?.active == false ? "inactive" : "pending"
            } else if !failed.isEmpty {
                state = "failed"
            } else if Set(states).count == 1 {
                state = states[0]
            } else {
                state = "mixed"
            }
            var members = [
                JSONMember(key: "title", value: .string(title)),
                JSONMember(key: "active", value: .bool(spec?.active ?? codes[title]?.active ?? false)),
                JSONMember(key: "code", value: .string(spec?.code ?? codes[title]?.code ?? "")),
                JSONMember(key: "managed", value: .bool(spec != nil)),
                JSONMember(key: "state", value: .string(state)),
                JSONMember(key: "reason", value: failed.isEmpty ? .null : .string(failed.map {
                    "\($0.worker): \(text($0.description, "reason") ?? "failed")"
                }.joined(separator: "; "))),
            ]
            var hooks: [String] = []
            for w in seen {
                if case .array(let names)? = w.description["hooks"] {
                    for case .string(let name) in names where !hooks.contains(name) { hooks.append(name) }
                }
            }
            members.append(JSONMember(key: "hooks", value: .array(hooks.map(JSONValue.string))))
            for key in counters {
                let total = seen.reduce(0.0) { sum, w in
                    if case .number(let n)? = w.description[key] { return sum + n }
                    return sum
                }
                members.append(JSONMember(key: key, value: .number(total)))
            }
            members.append(JSONMember(key: "workers", value: .array(seen.map { w in
                var each = [JSONMember(key: "worker", value: .string(w.worker))]
                for key in ["state", "reason", "entries", "errors"] { if let v = w.description[key] { each.append(JSONMember(key: key, value: v)) } }
                return .object(each)
            })))
            return .object(members)
        })
    }
}
