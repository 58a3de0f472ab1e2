import Foundation
import Host
import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// The hub's API: the worker API's shape (docs/api.md), served over every
/// worker at once, with the dashboard. Entry ids are `WORKER~ID`. The hub also
/// holds the tap scope: `GET /api/scope`, and `PUT /api/scope` to change it
/// (`{"podRegex", "namespaces", "excludedNamespaces"}`); the workers that take
/// their targets from the hub get the new ones at once. Workers can register
/// themselves (`kubeshark worker --hub URL`): `POST /api/workers {"name", "url"}`
/// (again with a new URL after a restart), `GET /api/workers`, `DELETE /api/workers/{name}`.
/// It keeps its scripts on every worker (`/api/scripts`, see `HubScriptRoutes`).
public enum HubAPI {
    public static func makeApplication(
        hub: HubService, host: String, port: Int, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: BasicWebSocketRequestContext.self)
        if let token = hub.accessToken {
            router.add(middleware: AccessTokenMiddleware<BasicWebSocketRequestContext>(token: token))
        }
        DashboardRoutes.add(to: router)
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/readyz") { _, _ -> Response in
            // Ready once a worker answers its statistics.
            var ready = hub.anyWorkerUp
            if !ready, case .array(let workers)? = await hub.stats()["workers"] {
                ready = workers.contains { $0["stats"] != nil }
            }
            return ready
                ? .init(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ready\n")))
                : .init(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "no worker answers\n")))
        }
        router.get("/api/stats") { _, _ in WorkerAPI.json(await hub.stats()) }
        router.get("/api/pods") { _, _ in WorkerAPI.json(await hub.pods()) }
        router.get("/api/workers") { _, _ in WorkerAPI.json(.array(hub.workers.map { w in
            .object([JSONMember(key: "name", value: .string(w.name)), JSONMember(key: "url", value: .string(w.url))])
        })) }
        router.post("/api/workers") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 16)
            guard let value = try? JSONValue.parse(Array(buffer: body)), case .string(let name)? = value["name"],
                  case .string(let url)? = value["url"], let worker = HubWorker.parse("\(name)=\(url)", index: 0),
                  worker.name == name
            else {
                throw HTTPError(.badRequest, message: #"expected {"name": "NAME", "url": "http://HOST:PORT"} (a name without '~' or '=')"#)
            }
            let changed = hub.register(worker)
            return WorkerAPI.json(.object([JSONMember(key: "registered", value: .string(name)),
                                           JSONMember(key: "changed", value: .bool(changed))]))
        }
        router.delete("/api/workers/:name") { _, context -> Response in
            let name = try context.parameters.require("name")
            guard hub.unregister(name) else { throw HTTPError(.notFound, message: "no worker named \(name)") }
            return WorkerAPI.json(.object([JSONMember(key: "unregistered", value: .string(name))]))
        }
        HubScriptRoutes.add(to: router, hub: hub)
        router.get("/api/scope") { _, _ in WorkerAPI.json(hub.scope.json) }
        router.put("/api/scope") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let scope: PodScope
            do {
                scope = try PodScope(json: try JSONValue.parse(Array(buffer: body)))
            } catch {
                throw HTTPError(.badRequest, message: "bad scope: \(error)")
            }
            hub.setScope(scope)
            await hub.pushTargets()
            return WorkerAPI.json(scope.json)
        }
        router.get("/api/sessions/:session/entries/:entry") { _, context -> Response in
            try await proxy(hub, context, suffix: "")
        }
        router.get("/api/sessions/:session/entries/:entry/pcap") { _, context -> Response in
            try await proxy(hub, context, suffix: "/pcap")
        }
        router.ws("/ws") { _, _ in .upgrade([:]) } onUpgrade: { inbound, outbound, context in
            try await HubConnection(hub: hub, inbound: inbound, outbound: outbound).run(request: context.request)
        }
        return Application(
            router: router,
            server: .http1WebSocketUpgrade(webSocketRouter: router),
            configuration: .init(address: .hostname(host, port: port), serverName: "kubeshark-hub"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: hub.logger)
    }

    /// Answers a request for one entry (or its pcap) from the worker holding it.
    private static func proxy(_ hub: HubService, _ context: BasicWebSocketRequestContext, suffix: String) async throws -> Response {
        let sid = try context.parameters.require("session")
        let id = try context.parameters.require("entry")
        guard let session = hub.session(sid) else { throw HTTPError(.notFound, message: "no open session \(sid)") }
        guard let (worker, workerSession, raw) = session.route(id) else {
            throw HTTPError(.notFound, message: "entry \(id) names no connected worker")
        }
        let (status, body) = await hub.get(worker, "/api/sessions/\(workerSession)/entries/\(raw)\(suffix)", timeout: 30)
        guard status == 200 else {
            throw HTTPError(status == 0 ? .badGateway : .notFound,
                            message: status == 0 ? "worker \(worker.name) does not answer" : String(decoding: body, as: UTF8.self))
        }
        var headers: HTTPFields = [.contentType: suffix.isEmpty ? "application/json" : "application/vnd.tcpdump.pcap"]
        if !suffix.isEmpty { headers[.contentDisposition] = "attachment; filename=\"\(id).pcap\"" }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// One dashboard WebSocket on the hub.
struct HubConnection {
    let hub: HubService
    let inbound: WebSocketInboundStream
    let outbound: WebSocketOutboundWriter

    func run(request: Request) async throws {
        let parsed: SessionRequest
        switch SessionRequest.parse(request) {
        case .success(let r):
            parsed = r
        case .failure(let e):
            let refusal = JSONValue.object([JSONMember(key: "type", value: .string("error")),
                                            JSONMember(key: "error", value: .string(e.message))])
            try await outbound.write(.text(String(decoding: refusal.jsonBytes, as: UTF8.self)))
            try await outbound.close(.unacceptableData, reason: "bad request")
            return
        }
        let query = parsed.query
        // A bad query is reported by every worker, each message naming its worker.
        let session = hub.openSession(query: query, fromNs: parsed.fromNs)
        defer { hub.closeSession(session.id) }
        let hello = JSONValue.object([
            JSONMember(key: "type", value: .string("session")), JSONMember(key: "session", value: .string(session.id)),
            JSONMember(key: "query", value: .string(query)),
            JSONMember(key: "workers", value: .array(hub.workers.map { .string($0.name) })),
        ])
        try await outbound.write(.text(String(decoding: hello.jsonBytes, as: UTF8.self)))
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for try await message in inbound.messages(maxSize: 1 << 16) {
                        guard case .text(let text) = message, let m = try? JSONValue.parse(text),
                            case .string("fetch")? = m["type"], case .string(let id)? = m["id"]
                        else { continue }
                        if !session.fetch(id) {
                            session.outbound.push(JSONValue.object([
                                JSONMember(key: "type", value: .string("error")), JSONMember(key: "id", value: .string(id)),
                                JSONMember(key: "error", value: .string("entry \(id) names no connected worker")),
                            ]).jsonBytes)
                        }
                    }
                } catch {}
            }
            group.addTask {
                if await session.outbound.drain(to: outbound) == .overflowed {
                    try? await outbound.write(.text(#"{"type":"closing","reason":"client too slow"}"#))
                    try? await outbound.close(.policyViolation, reason: "client too slow")
                }
            }
            await group.next()
            group.cancelAll()
        }
    }
}
