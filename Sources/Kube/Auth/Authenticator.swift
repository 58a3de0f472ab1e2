import Foundation

/// Gives each request its bearer token: fixed, read from a file (again after
/// `rereadInterval`), or from an exec plugin (cached until its expirationTimestamp,
/// less a minute, or until the server answers 401).
actor Authenticator {
    private let credentials: KubeConfig.Credentials
    private var cached: (token: String, validUntil: ContinuousClock.Instant?)?
    /// How many times the exec plugin ran (tests check the cache with it).
    private(set) var execRuns = 0

    init(_ credentials: KubeConfig.Credentials) {
        self.credentials = credentials
    }

    /// The token to send now, nil when the user has none.
    func token() async throws -> String? {
        let now = ContinuousClock.now
        if let cached, cached.validUntil.map({ now < $0 }) ?? true { return cached.token }
        switch credentials {
        case .none:
            return nil
        case .token(let token):
            return token
        case .tokenFile(let path, let interval):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw KubeConfigError("cannot read token file \(path)")
            }
            let token = String(decoding: data.prefix(64 << 10), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else { throw KubeConfigError("token file \(path) is empty") }
            cached = (token, now + interval)
            return token
        case .exec(let plugin):
            execRuns += 1
            let credential = try await plugin.run()
            var validUntil: ContinuousClock.Instant?
            if let expiration = credential.expiration {
                // Refresh a minute early, as client-go does (capped at "now" for short-lived tokens).
                let seconds = max(0, expiration.timeIntervalSinceNow - 60)
                validUntil = now + .milliseconds(Int64(seconds * 1000))
            }
            cached = (credential.token, validUntil)
            return credential.token
        }
    }

    /// The server refused `token` (401): forget it so the next request fetches a new one.
    func invalidate(_ token: String?) {
        if let cached, cached.token == token { self.cached = nil }
    }

    /// True when a 401 may be cured by fetching the token again.
    var canRefresh: Bool {
        switch credentials {
        case .exec, .tokenFile: true
        case .none, .token: false
        }
    }
}
