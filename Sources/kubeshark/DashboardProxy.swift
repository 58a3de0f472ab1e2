import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Kube
import Logging
import NIOCore
import WSClient

/// The dashboard of a cluster's hub on this machine (`kubeshark proxy`, `tap
/// --kube`): every request to `host:port` goes through the API server's service
/// proxy to the hub's Service, WebSockets included, carrying the hub's token, so
/// the browser needs neither cluster credentials nor the token.
enum DashboardProxy {
    /// Headers that belong to one hop, or that the proxy sets itself.
    static let hopHeaders: Set<String> = ["host", "authorization", "cookie", "connection", "keep-alive", "content-length",
                                          "transfer-encoding", "upgrade", "te", "trailer", "proxy-connection"]

    static func application(client: KubeClient, namespace: String, service: String, hubToken: String,
                            host: String, port: Int, logger: Logger,
                            onRunning: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        let prefix = "/api/v1/namespaces/\(namespace)/services/\(service):80/proxy"
        let router = Router(context: BasicWebSocketRequestContext.self)
        router.ws("/ws") { _, _ in .upgrade([:]) } onUpgrade: { inbound, outbound, context in
            let (base, tls, authorization) = try await client.credentials()
            var url = base.replacingOccurrences(of: "https://", with: "wss://") + prefix + "/ws"
            if let query = context.request.uri.query, !query.isEmpty { url += "?" + query }
            var configuration = WebSocketClientConfiguration(maxFrameSize: 16 << 20)
            if let authorization { configuration.additionalHeaders[.authorization] = authorization }
            configuration.additionalHeaders[.cookie] = "ks_token=\(hubToken)"
            // TLS cannot name an IP address (SNI), and this client then verifies the name it
            // sends: an API server addressed by IP is verified as kubernetes.default.svc, a name
            // every API server certificate carries (kubeadm and the managed services alike),
            // unless the kubeconfig gives tls-server-name.
            if let host = URL(string: base)?.host, host.allSatisfy({ $0.isNumber || $0 == "." || $0 == ":" }) {
                configuration.sniHostname = client.config.tlsServerName ?? "kubernetes.default.svc"
            }
            try await WebSocketClient.connect(url: url, configuration: configuration, tlsConfiguration: tls,
                                              logger: logger) { upstreamIn, upstreamOut, _ in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for try await message in inbound.messages(maxSize: 16 << 20) {
                            switch message {
                            case .text(let text): try await upstreamOut.write(.text(text))
                            case .binary(let bytes): try await upstreamOut.write(.binary(bytes))
                            }
                        }
                    }
                    group.addTask {
                        for try await message in upstreamIn.messages(maxSize: 16 << 20) {
                            switch message {
                            case .text(let text): try await outbound.write(.text(text))
                            case .binary(let bytes): try await outbound.write(.binary(bytes))
                            }
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
            }
        }
        let forward: @Sendable (Request, BasicWebSocketRequestContext) async throws -> Response = { request, _ in
            let body = try await request.body.collect(upTo: 16 << 20)
            var headers: [(String, String)] = []
            for field in request.headers where !hopHeaders.contains(field.name.canonicalName) {
                headers.append((field.name.rawName, field.value))
            }
            headers.append(("Cookie", "ks_token=\(hubToken)"))
            let answer = try await client.forward(method: request.method.rawValue, path: prefix + request.uri.path,
                                                  rawQuery: request.uri.query, headers: headers,
                                                  body: body.readableBytes > 0 ? Array(buffer: body) : nil)
            var fields = HTTPFields()
            for (name, value) in answer.headers where !hopHeaders.contains(name.lowercased()) {
                if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
            }
            return Response(status: .init(code: Int(answer.status.code)), headers: fields,
                            body: ResponseBody(asyncSequence: answer.body))
        }
        for method in [HTTPRequest.Method.get, .post, .put, .delete] {
            router.on("/", method: method, use: forward)
            router.on("**", method: method, use: forward)
        }
        return Application(
            router: router,
            server: .http1WebSocketUpgrade(webSocketRouter: router),
            configuration: .init(address: .hostname(host, port: port), serverName: "kubeshark-proxy"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }
}
