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
            let body = try await object(request)
            guard case .string(let code)? = body["code"] else {
                throw HTTPError(.badRequest, message: "a script is {\"code\": \"...\", \"title\": \"...\", \"active\": true}")
            }
            var title: String?
            if case .string(let t)? = body["title"] { title = t }
            var active = true
            if case .bool(let a)? = body["active"] { active = a }
            let name = scripts.put(code: code, title: title, active: active)
            return WorkerAPI.json(.object([JSONMember(key: "title", value: .string(name))]))
        }
        for action in ["activate", "deactivate", "remove"] {
            router.post("/api/scripts/\(action)") { request, _ -> Response in
                guard case .string(let title)? = try await object(request)["title"] else {
                    throw HTTPError(.badRequest, message: "name the script: {\"title\": \"...\"}")
                }
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
                .object([
                    JSONMember(key: "seq", value: .number(Double(line.sequence))),
                    JSONMember(key: "time", value: .number(Double(line.timeMs))),
                    JSONMember(key: "script", value: .string(line.script)),
                    JSONMember(key: "level", value: .string(line.level)),
                    JSONMember(key: "message", value: .string(line.message)),
                ])
            }))
        }
    }

    private static func object(_ request: Request) async throws -> JSONValue {
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
