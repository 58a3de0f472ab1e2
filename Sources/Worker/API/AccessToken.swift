import Foundation
import Hummingbird

/// Checks the access token on every HTTP and WebSocket request when the API
/// is exposed beyond loopback. The token comes as `Authorization: Bearer T`,
/// as the `ks_token` cookie, or once as `?token=T` (a link printed for the
/// browser), in which case the answer sets the cookie (HttpOnly, SameSite=Strict)
/// so the dashboard's own requests carry it. `/healthz` and `/readyz` stay open
/// for probes.
struct AccessTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if path == "/healthz" || path == "/readyz" { return try await next(request, context) }
        if let header = request.headers[.authorization], header == "Bearer \(token)" {
            return try await next(request, context)
        }
        if let cookies = request.headers[.cookie],
            cookies.split(separator: ";").contains(where: { $0.trimmingCharacters(in: .whitespaces) == "ks_token=\(token)" })
        {
            return try await next(request, context)
        }
        if let given = request.uri.queryParameters["token"], given == Substring(token) {
            var response = try await next(request, context)
            response.headers[.setCookie] = "ks_token=\(token); Path=/; HttpOnly; SameSite=Strict"
            return response
        }
        return Response(status: .unauthorized, headers: [.contentType: "text/plain; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: "an access token is needed (the URL kubeshark printed)\n")))
    }

    /// A new random token: 32 hex digits from the system's generator.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }
}

/// Whether an address only accepts local connections.
func isLoopback(_ host: String) -> Bool {
    host == "127.0.0.1" || host == "::1" || host == "localhost" || host.hasPrefix("127.")
}
