import Foundation
import Yams

/// One kubeconfig file as written (`kind: Config`), its relative paths already
/// resolved against the file's directory, as client-go does.
struct KubeconfigFile: Decodable {
    struct Cluster: Decodable {
        var server: String?
        var certificateAuthority: String?
        var certificateAuthorityData: String?
        var insecureSkipTLSVerify: Bool?
        var tlsServerName: String?
        enum CodingKeys: String, CodingKey {
            case server
            case certificateAuthority = "certificate-authority"
            case certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
            case tlsServerName = "tls-server-name"
        }
    }
    struct ExecEnv: Decodable { var name: String; var value: String }
    struct Exec: Decodable {
        var apiVersion: String?
        var command: String?
        var args: [String]?
        var env: [ExecEnv]?
        var installHint: String?
    }
    struct User: Decodable {
        var token: String?
        var tokenFile: String?
        var clientCertificate: String?
        var clientCertificateData: String?
        var clientKey: String?
        var clientKeyData: String?
        var exec: Exec?
        var username: String?
        var authProvider: AnyDecodable?
        enum CodingKeys: String, CodingKey {
            case token, tokenFile, exec, username
            case clientCertificate = "client-certificate"
            case clientCertificateData = "client-certificate-data"
            case clientKey = "client-key"
            case clientKeyData = "client-key-data"
            case authProvider = "auth-provider"
        }
    }
    struct Context: Decodable {
        var cluster: String?
        var user: String?
        var namespace: String?
    }
    struct NamedCluster: Decodable { var name: String; var cluster: Cluster? }
    struct NamedUser: Decodable { var name: String; var user: User? }
    struct NamedContext: Decodable { var name: String; var context: Context? }
    /// Present only to tell that the key was there.
    struct AnyDecodable: Decodable { init(from decoder: any Decoder) throws {} }

    var clusters: [NamedCluster]?
    var users: [NamedUser]?
    var contexts: [NamedContext]?
    var currentContext: String?

    enum CodingKeys: String, CodingKey {
        case clusters, users, contexts
        case currentContext = "current-context"
    }

    /// Reads and parses `path`; relative file paths inside become absolute.
    static func read(_ path: String) throws -> KubeconfigFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KubeConfigError("cannot read kubeconfig \(path)")
        }
        guard data.count <= 16 << 20 else { throw KubeConfigError("kubeconfig \(path) is larger than 16 MiB") }
        var file: KubeconfigFile
        do {
            let text = String(decoding: data, as: UTF8.self)
            if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                file = KubeconfigFile()
            } else {
                file = try YAMLDecoder().decode(KubeconfigFile.self, from: text)
            }
        } catch {
            throw KubeConfigError("kubeconfig \(path) is not a valid kubeconfig: \(Self.oneLine(error))")
        }
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        file.resolvePaths(against: dir)
        return file
    }

    init() {}

    private mutating func resolvePaths(against dir: String) {
        func abs(_ p: String?) -> String? {
            guard let p, !p.isEmpty else { return p }
            if p.hasPrefix("/") { return p }
            if p.hasPrefix("~/") { return NSHomeDirectory() + p.dropFirst(1) }
            return (dir + "/" + p as NSString).standardizingPath
        }
        clusters = clusters?.map { named in
            var named = named
            let ca = abs(named.cluster?.certificateAuthority)
            named.cluster?.certificateAuthority = ca
            return named
        }
        users = users?.map { named in
            guard var user = named.user else { return named }
            user.tokenFile = abs(user.tokenFile)
            user.clientCertificate = abs(user.clientCertificate)
            user.clientKey = abs(user.clientKey)
            // An exec command with a path separator is relative to the kubeconfig; a bare name is looked up on PATH.
            if let cmd = user.exec?.command, cmd.contains("/") { user.exec?.command = abs(cmd) }
            return NamedUser(name: named.name, user: user)
        }
    }

    /// Merges files in KUBECONFIG order: the first file to name a cluster, user or
    /// context wins, and the first non-empty current-context wins (client-go's rules).
    static func merge(_ files: [(path: String, file: KubeconfigFile)]) -> Merged {
        var merged = Merged()
        for (path, file) in files {
            for c in file.clusters ?? [] where merged.clusters[c.name] == nil { merged.clusters[c.name] = (c.cluster ?? Cluster(), path) }
            for u in file.users ?? [] where merged.users[u.name] == nil { merged.users[u.name] = (u.user ?? User(), path) }
            for c in file.contexts ?? [] where merged.contexts[c.name] == nil { merged.contexts[c.name] = (c.context ?? Context(), path) }
            if merged.currentContext == nil, let current = file.currentContext, !current.isEmpty {
                merged.currentContext = (current, path)
            }
        }
        return merged
    }

    /// The merged view, each entry with the file it came from (for error messages).
    struct Merged {
        var clusters: [String: (Cluster, String)] = [:]
        var users: [String: (User, String)] = [:]
        var contexts: [String: (Context, String)] = [:]
        var currentContext: (String, String)?
    }

    static func oneLine(_ error: any Error) -> String {
        "\(error)".split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }
}
