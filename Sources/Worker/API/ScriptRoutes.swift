import Host
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import Scripting

/// The scripts' part of the API (docs/api.md, docs/scripting.md):
///
/// - `GET /api/scripts`: every script, its state and counters.
/// - `POST /api/scripts` `{"code":…, "title"?:…, "active"?:true}`: adds or replaces one.
/// - `POST /api/scripts/activate|deactivate|remove` `{"title":…}`.
/// - `GET /api/scripts/logs?after=N&script=TITLE`: the lines scripts logged after line N.
enum ScriptRoutes {
    /// Largest script accepted, in bytes.
    static let maxScriptBytes = 1 << 20

    static func add(to router: Router<BasicWebSocketRequestContext>, scripts: ScriptManager) {
        router.get("/api/scripts") { _, _ in WorkerAPI.json(.array(scripts.all.map(describe))) }
        router.post("/api/scripts") { request, _ -> Response in
            let (code, title, active) = try await script(request)
            let name = scripts.put(code: code, title: title, active: active)
            return WorkerAPI.json(.object([JSONMember(key: "title", value: .string(name))]))
        }
        for action in ["activate", "deactivate", "remove"] {
            router.post("/api/scripts/\(action)") { request, _ -> Response in
                let title = try await titled(request)
                do throws(ScriptManager.Failure) {
                    switch action {
                    case "activate": try scripts.activate(title)
                    case "deactivate": try scripts.deactivate(title)
                    default: try scripts.remove(title)
                    }
                } catch {
                    throw HTTPError(.notFound, message: error.description)
                }
                return WorkerAPI.json(.object([JSONMember(key: "title", value: .string(title)),
                                               JSONMember(key: "done", value: .string(action))]))
            }
        }
        router.get("/api/scripts/logs") { request, _ -> Response in
            let params = request.uri.queryParameters
            let after = params["after"].flatMap { UInt64(String($0)) } ?? 0
            let lines = scripts.log.lines(after: after, script: params["script"].map(String.init))
            return WorkerAPI.json(.array(lines.map { line in
                logLine(sequence: line.sequence, timeMs: line.timeMs, script: line.script, level: line.level, message: line.message)
            }))
        }
    }

    /// One line of `GET /api/scripts/logs` (a hub adds the line's `worker`).
    static func logLine(sequence: UInt64, timeMs: Int64, script: String, level: String, message: String,
                        worker: String? = nil) -> JSONValue {
        var members = [
            JSONMember(key: "seq", value: .number(Double(sequence))),
            JSONMember(key: "time", value: .number(Double(timeMs))),
            JSONMember(key: "script", value: .string(script)),
            JSONMember(key: "level", value: .string(level)),
            JSONMember(key: "message", value: .string(message)),
        ]
        if let worker { members.append(JSONMember(key: "worker", value: .string(worker))) }
        return .object(members)
    }

    /// The script of `POST /api/scripts`: its code, title (nil: from its first comment) and switch.
    static func script(_ request: Request) async throws -> (code: String, title: String?, active: Bool) {
        let body = try await object(request)
        guard case .string(let code)? = body["code"] else {
            throw HTTPError(.badRequest, message: "a script is {\"code\": \"...\", \"title\": \"...\", \"active\": true}")
        }
        var title: String?
        if case .string(let t)? = body["title"], !t.isEmpty { title = t }
        var active = true
        if case .bool(let a)? = body["active"] { active = a }
        return (code, title, active)
    }

    /// The title named by `POST /api/scripts/activate|deactivate|remove`.
    static func titled(_ request: Request) async throws -> String {
        guard case .string(let title)? = try await object(request)["title"] else {
            throw HTTPError(.badRequest, message: "name the script: {\"title\": \"...\"}")
        }
        return title
    }

    /// The body of a script request, a JSON object (400 otherwise, 413 when too large).
    /// It must say `Content-Type: application/json`: a web page cannot send that to
    /// another origin without the browser asking first (CORS), which this API never
    /// allows, so no page a user visits can load a script into a tap on their machine.
    static func object(_ request: Request) async throws -> JSONValue {
        let type = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard type == "application/json" else {
            throw HTTPError(.unsupportedMediaType, message: "a script request is JSON: send Content-Type: application/json")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxScriptBytes + 4096)
        } catch {
            throw HTTPError(.contentTooLarge, message: "a script request is at most \(maxScriptBytes) bytes")
        }
        guard let value = try? JSONValue.parse(Array(buffer.readableBytesView)), case .object = value else {
            throw HTTPError(.badRequest, message: "the body must be a JSON object")
        }
        return value
    }

    static func describe(_ info: ScriptManager.Info) -> JSONValue {
        var members = [
            JSONMember(key: "title", value: .string(info.title)),
            JSONMember(key: "active", value: .bool(info.active)),
            JSONMember(key: "code", value: .string(info.code)),
        ]
        if let s = info.status {
            func n(_ v: UInt64) -> JSONValue { .number(Double(v)) }
            members += [
                JSONMember(key: "state", value: .string(s.state)),
                JSONMember(key: "reason", value: s.reason.map(JSONValue.string) ?? .null),
                JSONMember(key: "hooks", value: .array(s.hooks.map(JSONValue.string))),
                JSONMember(key: "entries", value: n(s.entries)),
                JSONMember(key: "packets", value: n(s.packets)),
                JSONMember(key: "packetBatchesDropped", value: n(s.packetBatchesDropped)),
                JSONMember(key: "queries", value: n(s.queries)),
                JSONMember(key: "errors", value: n(s.errors)),
                JSONMember(key: "jobRuns", value: n(s.jobRuns)),
                JSONMember(key: "memoryBytes", value: .number(Double(s.memoryBytes))),
                JSONMember(key: "memoryPeakBytes", value: .number(Double(s.memoryPeakBytes))),
            ]
        } else {
            members.append(JSONMember(key: "state", value: .string(info.active ? "starting" : "inactive")))
        }
        return .object(members)
    }
}
