import Foundation

/// A client-go credential plugin (`users[].user.exec`): a program that prints an
/// `ExecCredential` (client.authentication.k8s.io/v1 or v1beta1) with a token.
public struct ExecPlugin: Sendable {
    public static let supportedAPIVersions = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"]

    /// The program: absolute, or a name looked up on PATH.
    public var command: String
    public var args: [String]
    /// Variables added to the plugin's environment.
    public var env: [String: String]
    public var apiVersion: String
    public var installHint: String?
    /// The environment the plugin inherits.
    var baseEnvironment: [String: String]
    /// The user it authenticates, for messages.
    var user: String

    init(_ exec: KubeconfigFile.Exec, user: String, environment: [String: String]) throws {
        guard let command = exec.command, !command.isEmpty else {
            throw KubeConfigError("exec plugin of \(user) has no command")
        }
        guard let apiVersion = exec.apiVersion, Self.supportedAPIVersions.contains(apiVersion) else {
            throw KubeConfigError("exec plugin of \(user) has apiVersion '\(exec.apiVersion ?? "")'; supported: "
                                  + Self.supportedAPIVersions.joined(separator: ", "))
        }
        self.command = command
        self.args = exec.args ?? []
        self.env = Dictionary((exec.env ?? []).map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
        self.apiVersion = apiVersion
        self.installHint = exec.installHint
        self.baseEnvironment = environment
        self.user = user
    }

    /// A token and when it stops being valid (nil: until the server refuses it).
    public struct Credential: Sendable {
        public var token: String
        public var expiration: Date?
    }

    /// Runs the plugin once and reads its ExecCredential.
    func run() async throws -> Credential {
        let executable = try resolveCommand()
        var environment = baseEnvironment.merging(env) { $1 }
        environment["KUBERNETES_EXEC_INFO"] =
            #"{"apiVersion":"\#(apiVersion)","kind":"ExecCredential","spec":{"interactive":false}}"#
        let result = try await BoundedProcess.run(executable, args, environment: environment,
                                                  maxOutput: 1 << 20, timeout: .seconds(60))
        guard result.status == 0 else {
            let err = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(whereSeparator: \.isNewline).last ?? ""
            throw KubeConfigError("exec plugin \(command) of \(user) exited with status \(result.status)\(err.isEmpty ? "" : ": \(err)")")
        }
        return try parse(result.stdout)
    }

    func parse(_ output: [UInt8]) throws -> Credential {
        struct ExecCredential: Decodable {
            struct CredentialStatus: Decodable {
                var token: String?
                var expirationTimestamp: String?
                var clientCertificateData: String?
            }
            var apiVersion: String?
            var kind: String?
            var status: CredentialStatus?
        }
        guard let cred = try? JSONDecoder().decode(ExecCredential.self, from: Data(output)), cred.kind == "ExecCredential" else {
            throw KubeConfigError("exec plugin \(command) of \(user) did not print an ExecCredential")
        }
        guard cred.apiVersion == apiVersion else {
            throw KubeConfigError("exec plugin \(command) of \(user) printed apiVersion '\(cred.apiVersion ?? "")', expected '\(apiVersion)'")
        }
        guard let token = cred.status?.token, !token.isEmpty else {
            if cred.status?.clientCertificateData != nil {
                throw KubeConfigError("exec plugin \(command) of \(user) returned a client certificate; only tokens are supported")
            }
            throw KubeConfigError("exec plugin \(command) of \(user) returned no token")
        }
        var expiration: Date?
        if let stamp = cred.status?.expirationTimestamp {
            guard let date = RFC3339.parse(stamp) else {
                throw KubeConfigError("exec plugin \(command) of \(user) returned expirationTimestamp '\(stamp)', not RFC 3339")
            }
            expiration = date
        }
        return Credential(token: token, expiration: expiration)
    }

    private func resolveCommand() throws -> String {
        if command.contains("/") {
            guard FileManager.default.isExecutableFile(atPath: command) else {
                throw KubeConfigError("exec plugin \(command) of \(user) is not an executable file" + hint)
            }
            return command
        }
        let path = (baseEnvironment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        for dir in path where FileManager.default.isExecutableFile(atPath: "\(dir)/\(command)") {
            return "\(dir)/\(command)"
        }
        throw KubeConfigError("exec plugin '\(command)' of \(user) not found on PATH" + hint)
    }

    private var hint: String { installHint.map { " (\($0.split(whereSeparator: \.isNewline).joined(separator: " ")))" } ?? "" }
}

/// RFC 3339 times as Kubernetes writes them (`2026-01-02T03:04:05Z`, optional fraction and offset).
enum RFC3339 {
    static func parse(_ text: String) -> Date? {
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        if let d = plain.date(from: text) { return d }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: text)
    }
}
