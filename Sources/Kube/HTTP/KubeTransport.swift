import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// HTTPS to one API server as one user: the cluster's CA (alone) verifies the
/// server, the client certificate and bearer token go with every request, and
/// every answer that is not 2xx becomes a `KubeAPIError` built from its `Status`.
final class KubeTransport: Sendable {
    let config: KubeConfig
    let auth: Authenticator
    /// Short requests: a read stalled for `requestTimeout` fails.
    private let client: HTTPClient
    /// Watches: long-lived streams ended by the server's `timeoutSeconds`; a stream silent for
    /// longer than the watch idle timeout (a connection lost without a close) fails.
    private let streamClient: HTTPClient
    private let base: String
    let requestTimeout: TimeAmount
    /// The largest answer read whole (lists, objects).
    let maxResponseBytes: Int
    /// The longest watch event line accepted.
    let maxWatchEventBytes: Int

    init(config: KubeConfig, requestTimeout: Duration, watchIdleTimeout: Duration, maxResponseBytes: Int,
         maxWatchEventBytes: Int) throws {
        self.config = config
        self.auth = Authenticator(config.credentials)
        self.requestTimeout = Self.timeAmount(requestTimeout)
        self.maxResponseBytes = maxResponseBytes
        self.maxWatchEventBytes = maxWatchEventBytes
        let tls = try Self.tlsConfiguration(config)
        var dnsOverride: [String: String] = [:]
        var components = URLComponents(url: config.server, resolvingAgainstBaseURL: false)!
        if let name = config.tlsServerName, !name.isEmpty, let host = components.host, name != host {
            // Connect to the server's address but ask for, and verify, `tls-server-name`.
            dnsOverride[name] = host
            components.host = name
        }
        var path = components.path
        while path.hasSuffix("/") { path.removeLast() }
        components.path = ""
        components.query = nil
        base = (components.string ?? config.server.absoluteString) + path
        func make(read: TimeAmount?) -> HTTPClient {
            var configuration = HTTPClient.Configuration(
                tlsConfiguration: tls, redirectConfiguration: .disallow,
                timeout: .init(connect: .seconds(10), read: read))
            configuration.dnsOverride = dnsOverride
            // Fail at once when no connection can be made (a wrong CA would otherwise be retried
            // until the connect timeout); the pod watch loop retries on its own, with backoff.
            configuration.connectionPool.retryConnectionEstablishment = false
            return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        }
        client = make(read: self.requestTimeout)
        streamClient = make(read: Self.timeAmount(watchIdleTimeout))
    }

    static func timeAmount(_ d: Duration) -> TimeAmount {
        .milliseconds(d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000)
    }

    static func tlsConfiguration(_ config: KubeConfig) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        // Closing a connection in the middle of a watch: don't wait 5 s for the server's close_notify.
        tls.shutdownTimeout = .milliseconds(500)
        if let ca = config.certificateAuthorityPEM {
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
            } catch {
                throw KubeConfigError("certificate authority of \(config.source) is not a PEM certificate: \(error)")
            }
        }
        if config.insecureSkipTLSVerify { tls.certificateVerification = .none }
        if let certPEM = config.clientCertificatePEM, let keyPEM = config.clientKeyPEM {
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(certPEM).map { .certificate($0) }
            } catch {
                throw KubeConfigError("client certificate for user '\(config.userName)' (\(config.source)) is not a PEM certificate")
            }
            do {
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: keyPEM, format: .pem))
            } catch {
                throw KubeConfigError("client key for user '\(config.userName)' (\(config.source)) is not a PEM key")
            }
        }
        return tls
    }

    func shutdown() async {
        try? await client.shutdown()
        try? await streamClient.shutdown()
    }

    /// The URL of `path` with `query` (values percent-encoded).
    func url(_ path: String, _ query: [(String, String)]) -> String {
        var url = base + path
        if !query.isEmpty {
            var allowed = CharacterSet.urlQueryAllowed
            allowed.remove(charactersIn: "&=+?/,;:")
            url += "?" + query.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }
                .joined(separator: "&")
        }
        return url
    }

    /// Sends one request and returns its body (at most `maxResponseBytes`); a
    /// non-2xx answer throws its `KubeAPIError`.
    func send(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: [UInt8]? = nil,
              contentType: String = "application/json") async throws -> [UInt8] {
        let response = try await execute(method, path, query: query, body: body, contentType: contentType, stream: false)
        let bytes = try await collect(response, path: path)
        guard (200..<300).contains(response.status.code) else {
            throw KubeAPIError.from(httpStatus: Int(response.status.code), body: bytes)
        }
        return bytes
    }

    /// Opens a streaming GET (a watch); a non-2xx answer throws its `KubeAPIError`.
    func openStream(_ path: String, query: [(String, String)]) async throws -> HTTPClientResponse {
        let response = try await execute(.GET, path, query: query, body: nil, contentType: "", stream: true)
        guard (200..<300).contains(response.status.code) else {
            throw KubeAPIError.from(httpStatus: Int(response.status.code), body: try await collect(response, path: path))
        }
        return response
    }

    /// Sends a request as given (headers included) and returns the answer unread, whatever
    /// its status: for proxying a client's requests through the API server.
    func forward(_ method: HTTPMethod, _ path: String, rawQuery: String?, headers: [(String, String)],
                 body: [UInt8]?) async throws -> HTTPClientResponse {
        let token = try await auth.token()
        var request = HTTPClientRequest(url: base + path + (rawQuery.map { $0.isEmpty ? "" : "?" + $0 } ?? ""))
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let token { request.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(token)") }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        do {
            return try await streamClient.execute(request, timeout: requestTimeout)
        } catch {
            throw transportError(error)
        }
    }

    /// What another client needs to reach the API server as this one does: the
    /// base URL, the TLS configuration, the Authorization header.
    func credentials() async throws -> (base: String, tls: TLSConfiguration, authorization: String?) {
        (base, try Self.tlsConfiguration(config), try await auth.token().map { "Bearer \($0)" })
    }

    private func execute(_ method: HTTPMethod, _ path: String, query: [(String, String)], body: [UInt8]?,
                         contentType: String, stream: Bool) async throws -> HTTPClientResponse {
        var refreshed = false
        while true {
            let token = try await auth.token()
            var request = HTTPClientRequest(url: url(path, query))
            request.method = method
            request.headers.add(name: "Accept", value: "application/json")
            request.headers.add(name: "User-Agent", value: "kubeshark-swift")
            if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            if let body {
                request.headers.add(name: "Content-Type", value: contentType)
                request.body = .bytes(ByteBuffer(bytes: body))
            }
            let response: HTTPClientResponse
            do {
                response = try await (stream ? streamClient : client).execute(request, timeout: requestTimeout)
            } catch {
                throw transportError(error)
            }
            // A rotated or expired token: fetch it again once and retry.
            if response.status == .unauthorized, !refreshed, await auth.canRefresh {
                refreshed = true
                _ = try? await response.body.collect(upTo: 64 << 10)
                await auth.invalidate(token)
                continue
            }
            return response
        }
    }

    private func collect(_ response: HTTPClientResponse, path: String) async throws -> [UInt8] {
        do {
            var buffer = try await response.body.collect(upTo: maxResponseBytes)
            return buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch is NIOTooManyBytesError {
            throw KubeTransportError("answer from \(base)\(path) is larger than \(maxResponseBytes) bytes")
        } catch {
            throw transportError(error)
        }
    }

    /// A one-line description of a connection failure, naming the server and,
    /// for certificate failures, the configuration that decides them.
    func transportError(_ error: any Error) -> any Error {
        if error is CancellationError || error is KubeAPIError || error is KubeTransportError { return error }
        if let e = error as? HTTPClientError, e == .cancelled { return CancellationError() }
        var text = "\(error)"
        // BoringSSL's errors print as a long debug string; its reason code is what tells.
        if let reason = text.firstMatch(of: /OPENSSL_internal:([A-Z0-9_]+)/)?.1 { text = "TLS failed: \(reason)" }
        var hint = ""
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            hint = " (the server's certificate is not signed by the certificate authority of \(config.source))"
        } else if text.contains("CERTIFICATE_REQUIRED") || text.contains("HANDSHAKE_FAILURE") || text.contains("BAD_CERTIFICATE") {
            hint = config.clientCertificatePEM == nil
                ? " (the server asks for a client certificate and \(config.source) gives none)"
                : " (the server refused the client certificate of user '\(config.userName)')"
        } else if text.localizedCaseInsensitiveContains("hostname") {
            hint = " (the server's certificate does not name \(config.tlsServerName ?? config.server.host ?? "the server"))"
        }
        return KubeTransportError("cannot talk to \(config.server.absoluteString): \(text)\(hint)", connectionFailed: true)
    }
}
