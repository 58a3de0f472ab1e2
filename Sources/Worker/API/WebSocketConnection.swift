import Hummingbird
import Host
import HummingbirdWebSocket

/// One WebSocket client: the session its query opened, the summaries it is
/// sent, and its requests for full entries. Protocol in docs/api.md.
struct WebSocketConnection {
    let service: WorkerService
    let inbound: WebSocketInboundStream
    let outbound: WebSocketOutboundWriter

    func run(request: Request) async throws {
        let query: String
        let fromNs: Int64?
        switch SessionRequest.parse(request) {
        case .success(let r):
            (query, fromNs) = (r.query, r.fromNs)
        case .failure(let e):
            try await refuse(["error": .string(e.message)])
            return
        }
        let session: ClientSession
        do {
            session = try service.openSession(query: query, fromNs: fromNs)
        } catch {
            switch error {
            case .badQuery(let e):
                try await refuse(["error": .string("bad query: \(e.message)"), "position": .number(Double(e.position))])
            case .tooManySessions(let n):
                try await refuse(["error": .string("the worker already has \(n) sessions open")])
            case .storage(let m):
                try await refuse(["error": .string(m)])
            }
            return
        }
        try await send(["type": .string("session"), "session": .string(session.id), "query": .string(query)])
        let reason = await pump(session)
        service.closeSession(session.id, reason: reason)
        if reason.hasPrefix("client too slow") {
            try? await send(["type": .string("closing"), "reason": .string(reason)])
            try? await outbound.close(.policyViolation, reason: "client too slow")
        }
    }

    /// Sends summaries and answers requests until the client leaves or falls behind.
    private func pump(_ session: ClientSession) async -> String {
        await withTaskGroup(of: String.self) { group in
            group.addTask {
                do {
                    for try await message in inbound.messages(maxSize: 1 << 16) {
                        guard case .text(let text) = message else { continue }
                        session.outbound.push(await reply(to: text, session))
                    }
                } catch {
                    return "connection error: \(error)"
                }
                return "client closed the connection"
            }
            group.addTask {
                switch await session.outbound.drain(to: outbound) {
                case .failed(let error): return "connection error: \(error)"
                case .overflowed: return "client too slow: more than \(session.outbound.limitBytes) bytes of entries waited to be sent"
                case .finished: return "session finished"
                }
            }
            let first = await group.next() ?? "done"
            group.cancelAll()
            return first
        }
    }

    /// The answer to one client message.
    private func reply(to text: String, _ session: ClientSession) async -> [UInt8] {
        guard let message = try? JSONValue.parse(text), case .string(let type)? = message["type"] else {
            return object(["type": .string("error"), "error": .string("messages are JSON objects with a \"type\"")])
        }
        switch type {
        case "fetch":
            guard case .string(let id)? = message["id"] else {
                return object(["type": .string("error"), "error": .string("fetch needs an \"id\"")])
            }
            guard let stored = session.entries.get(id),
                  let entry = try? JSONValue.parse(await service.scripts.itemQueried(stored.json, flow: stored.flow))
            else {
                return object(["type": .string("error"), "id": .string(id),
                               "error": .string("no entry \(id) in this session (unknown, or forgotten to stay in its memory bound)")])
            }
            return object(["type": .string("entry"), "id": .string(id), "full": .bool(true), "entry": entry])
        case "ping":
            return object(["type": .string("pong")])
        default:
            return object(["type": .string("error"), "error": .string("unknown message type \(type)")])
        }
    }

    private func refuse(_ members: [String: JSONValue]) async throws {
        var all = members
        all["type"] = .string("error")
        try await send(all)
        try await outbound.close(.unacceptableData, reason: "bad request")
    }

    private func send(_ members: [String: JSONValue]) async throws {
        try await outbound.write(.text(String(decoding: object(members), as: UTF8.self)))
    }

    private func object(_ members: [String: JSONValue]) -> [UInt8] {
        // "type" first, then the rest in a stable order.
        let keys = members.keys.sorted { ($0 == "type" ? "" : $0) < ($1 == "type" ? "" : $1) }
        return JSONValue.object(keys.map { JSONMember(key: $0, value: members[$0]!) }).jsonBytes
    }
}
