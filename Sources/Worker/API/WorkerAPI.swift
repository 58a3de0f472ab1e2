import Foundation
import Host
import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// The worker's API on one port (documented in docs/api.md):
///
/// - `GET /ws?q=KFL&from=TIME` (WebSocket): opens a session; streams entry summaries;
///   `{"type":"fetch","id":…}` asks for one full entry.
/// - `GET /api/sessions/{session}/entries/{id}`: one full entry.
/// - `GET /api/sessions/{session}/entries/{id}/pcap`: the pcap of the entry's stream (of a
///   decrypted TLS entry: its plaintext, as TCP packets).
/// - `GET /api/pcap?from=TIME&to=TIME`: the raw ring for a time range, as one pcap.
/// - `GET /api/stats`, `GET /api/sessions`, `GET /api/pods`: statistics, sessions, targeted pods (JSON).
/// - `GET /api/node/pods`: every pod on the node and which are targeted; `PUT /api/targets`
///   `{"pods": [...]}`: the pods to capture, from a hub (409 when the worker captures fixed interfaces).
/// - `POST /api/ring/flush-oldest`: flushes the oldest segment now (operators).
/// - `GET/POST /api/scripts`, `POST /api/scripts/activate|deactivate|remove`, `GET /api/scripts/logs`: scripts.
/// - `GET /healthz`, `GET /readyz`, `GET /metrics` (Prometheus).
/// - `GET /`, `GET /dashboard/...`: the web dashboard (docs/dashboard.md).
public enum WorkerAPI {
    /// The token to require when listening on `host`: the one given, else a new
    /// one when `host` is not loopback, else none.
    public static func accessToken(given: String?, host: String) -> String? {
        if let given, !given.isEmpty { return given }
        return isLoopback(host) ? nil : AccessTokenMiddleware<BasicWebSocketRequestContext>.generate()
    }

    /// The application serving `service`; `onRunning` gets the bound port.
    public static func makeApplication(
        service: WorkerService, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: BasicWebSocketRequestContext.self)
        let metrics = WorkerMetrics(service: service)
        if let token = service.configuration.accessToken {
            router.add(middleware: AccessTokenMiddleware<BasicWebSocketRequestContext>(token: token))
        }

        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/readyz") { _, _ -> Response in
            service.isReady
                ? .init(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ready\n")))
                : .init(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "capture is not running\n")))
        }
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(bytes: metrics.render())))
        }
        router.get("/api/stats") { _, _ in json(WorkerStats.describe(service)) }
        router.get("/api/sessions") { _, _ in json(.array(service.openSessions.map(WorkerStats.describe))) }
        router.get("/api/pods") { _, _ in json(.array(service.targetedPods.map(\.json))) }
        router.get("/api/node/pods") { _, _ in
            json(.object([
                JSONMember(key: "acceptsTargets", value: .bool(service.acceptsTargets)),
                JSONMember(key: "pods", value: .array(service.nodePods.map(\.json))),
                JSONMember(key: "targeted", value: .array(service.targetedPods.map { .string($0.qualifiedName) })),
            ]))
        }
        router.put("/api/targets") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 4 << 20)
            guard let value = try? JSONValue.parse(Array(buffer: body)), let targets = LocalPod.list(json: value) else {
                throw HTTPError(.badRequest, message: "expected {\"pods\": [{\"name\": ..., \"namespace\": ..., \"ips\": [...]}]}")
            }
            guard service.receiveTargets(targets) else {
                throw HTTPError(.conflict, message: "this worker captures fixed interfaces (-i); start it with --pods to take its targets from a hub")
            }
            return json(.object([JSONMember(key: "targeted", value: .array(service.targetedPods.map { .string($0.qualifiedName) }))]))
        }
        router.get("/api/sessions/:session/entries/:entry") { _, context -> Response in
            let stored = try entry(service, context)
            let json = await service.scripts.itemQueried(stored.json, flow: stored.flow)
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(bytes: json)))
        }
        router.get("/api/sessions/:session/entries/:entry/pcap") { _, context -> Response in
            let stored = try entry(service, context)
            let session = service.session(try context.parameters.require("session"))
            let name = "\(try context.parameters.require("entry")).pcap"
            // A decrypted entry: its plaintext as TCP packets (the wire holds only ciphertext).
            if let plaintext = tlsPcap(service, stored.json) {
                return Response(status: .ok, headers: [.contentType: "application/vnd.tcpdump.pcap",
                                                       .contentDisposition: "attachment; filename=\"\(name)\""],
                                body: .init(byteBuffer: ByteBuffer(bytes: plaintext)))
            }
            return pcap(service, name: name, flow: stored.flow, retained: session?.ringSession.retention)
        }
        router.get("/api/pcap") { request, _ -> Response in
            let params = request.uri.queryParameters
            var bounds: [Int64?] = []
            for key in ["from", "to"] {
                guard let text = params[Substring(key)] else { bounds.append(nil); continue }
                guard let t = TimeBound.parse(String(text)) else {
                    throw HTTPError(.badRequest, message: "\(key): not a time (Unix seconds, RFC 3339, or -5m)")
                }
                bounds.append(t)
            }
            return pcap(service, name: "ring.pcap", from: bounds[0], to: bounds[1])
        }
        router.post("/api/ring/flush-oldest") { _, _ -> Response in
            guard let sequence = service.ring.flushOldest() else {
                throw HTTPError(.conflict, message: "the ring holds no segment to flush")
            }
            return json(.object([JSONMember(key: "flushed", value: .number(Double(sequence)))]))
        }
        ScriptRoutes.add(to: router, scripts: service.scripts)
        DashboardRoutes.add(to: router)
        router.ws("/ws") { _, _ in .upgrade([:]) } onUpgrade: { inbound, outbound, context in
            try await WebSocketConnection(service: service, inbound: inbound, outbound: outbound).run(request: context.request)
        }

        return Application(
            router: router,
            server: .http1WebSocketUpgrade(webSocketRouter: router),
            configuration: .init(address: .hostname(service.configuration.host, port: service.configuration.port),
                                 serverName: "kubeshark-worker"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: service.logger)
    }

    static func json(_ value: JSONValue) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(bytes: value.jsonBytes)))
    }

    private static func entry(_ service: WorkerService, _ context: BasicWebSocketRequestContext) throws -> EntryStore.Stored {
        let sid = try context.parameters.require("session")
        let id = try context.parameters.require("entry")
        guard let session = service.session(sid) else {
            throw HTTPError(.notFound, message: "no open session \(sid)")
        }
        guard let stored = session.entries.get(id) else {
            throw HTTPError(.notFound, message: "session \(sid) holds no entry \(id) (unknown, or forgotten to stay in its memory bound)")
        }
        return stored
    }

    /// The plaintext pcap of a TLS entry (`tls`, `pid`, `src`, `dst`) while the worker's
    /// TLS log still holds it; nil for other entries.
    private static func tlsPcap(_ service: WorkerService, _ json: [UInt8]) -> [UInt8]? {
        guard let entry = try? JSONValue.parse(json, maxDepth: 128), case .bool(true)? = entry["tls"],
              case .number(let pid)? = entry["pid"] else { return nil }
        func end(_ key: String) -> TLSStreamPcap.End? {
            guard case .string(let ip)? = entry[key]?["ip"], case .number(let port)? = entry[key]?["port"],
                  let p = UInt16(exactly: port) else { return nil }
            return TLSStreamPcap.End(address: ip, port: p)
        }
        guard let client = end("src"), let server = end("dst") else { return nil }
        return service.tlsLog.pcap(pid: Int32(pid), client: client, server: server)
    }

    /// Streams ring packets as a pcap file, 64 KiB at a time.
    private static func pcap(_ service: WorkerService, name: String, from: Int64? = nil, to: Int64? = nil,
                             flow: FlowHash? = nil, retained: RetentionStore? = nil) -> Response {
        let body = ResponseBody { writer in
            let source = RingPacketSource(catalogue: service.ring, fromNs: from, toNs: to, flow: flow, retained: retained)
            var chunk = PcapFormat.header(linkType: source.linkType)
            var more = true
            while more {
                more = source.read(maxPackets: 256) { PcapFormat.appendRecord($0, to: &chunk) }
                if chunk.count >= 64 << 10 || !more {
                    try await writer.write(ByteBuffer(bytes: chunk))
                    chunk.removeAll(keepingCapacity: true)
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/vnd.tcpdump.pcap",
                                               .contentDisposition: "attachment; filename=\"\(name)\""], body: body)
    }
}
