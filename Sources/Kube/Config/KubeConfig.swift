import Foundation

/// Everything needed to talk to one cluster as one user: the result of reading a
/// kubeconfig (a context) or the in-cluster service-account files.
public struct KubeConfig: Sendable {
    /// How requests prove who they are.
    public enum Credentials: Sendable {
        /// No credentials beyond a client certificate, if any.
        case none
        /// A fixed bearer token.
        case token(String)
        /// A bearer token read from a file and read again every `rereadInterval`
        /// (service-account tokens are rotated by the kubelet).
        case tokenFile(path: String, rereadInterval: Duration)
        /// A client-go credential plugin (`users[].user.exec`).
        case exec(ExecPlugin)
    }

    /// The API server's base URL, e.g. `https://10.0.0.1:6443`.
    public var server: URL
    /// PEM of the CA that signed the server's certificate; when set it is the only CA trusted.
    public var certificateAuthorityPEM: [UInt8]?
    /// Skip verifying the server's certificate (`insecure-skip-tls-verify`).
    public var insecureSkipTLSVerify: Bool
    /// The name to verify in the server's certificate instead of the URL's host (`tls-server-name`).
    public var tlsServerName: String?
    /// PEM of the client certificate (chain) and its key, when the user has one.
    public var clientCertificatePEM: [UInt8]?
    public var clientKeyPEM: [UInt8]?
    public var credentials: Credentials
    /// The context's namespace (`default` when it names none).
    public var namespace: String
    /// Where this came from, for messages: `context 'kind-dev' in /root/.kube/config`, `in-cluster`.
    public var source: String
    /// The user's name in the kubeconfig (for messages about its credentials).
    public var userName: String

    public init(server: URL, certificateAuthorityPEM: [UInt8]? = nil, insecureSkipTLSVerify: Bool = false,
                tlsServerName: String? = nil, clientCertificatePEM: [UInt8]? = nil, clientKeyPEM: [UInt8]? = nil,
                credentials: Credentials = .none, namespace: String = "default", source: String = "explicit",
                userName: String = "") {
        self.server = server
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.insecureSkipTLSVerify = insecureSkipTLSVerify
        self.tlsServerName = tlsServerName
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
        self.credentials = credentials
        self.namespace = namespace
        self.source = source
        self.userName = userName
    }

    /// The kubeconfig files to read, in order: `explicitPath` (`--kubeconfig`) alone when
    /// given, else the colon-separated `KUBECONFIG` list (files that do not exist are
    /// skipped, as kubectl does), else `~/.kube/config`.
    public static func kubeconfigPaths(explicitPath: String?, environment: [String: String],
                                       home: String) throws -> [String] {
        if let explicitPath, !explicitPath.isEmpty {
            guard FileManager.default.fileExists(atPath: explicitPath) else {
                throw KubeConfigError("kubeconfig \(explicitPath) does not exist")
            }
            return [explicitPath]
        }
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            let paths = list.split(separator: ":").map(String.init).filter { FileManager.default.fileExists(atPath: $0) }
            guard !paths.isEmpty else { throw KubeConfigError("none of the files in KUBECONFIG (\(list)) exists") }
            var unique: [String] = []
            for p in paths where !unique.contains(p) { unique.append(p) }
            return unique
        }
        let standard = home + "/.kube/config"
        guard FileManager.default.fileExists(atPath: standard) else {
            throw KubeConfigError("no kubeconfig: --kubeconfig not given, KUBECONFIG not set and \(standard) does not exist")
        }
        return [standard]
    }

    /// Reads the kubeconfig (see `kubeconfigPaths`) and resolves `context` (the
    /// current-context when nil) into a cluster, a user and a namespace.
    public static func load(kubeconfig: String? = nil, context: String? = nil,
                            environment: [String: String] = ProcessInfo.processInfo.environment,
                            home: String = NSHomeDirectory()) throws -> KubeConfig {
        let paths = try kubeconfigPaths(explicitPath: kubeconfig, environment: environment, home: home)
        let files = try paths.map { (path: $0, file: try KubeconfigFile.read($0)) }
        return try resolve(KubeconfigFile.merge(files), paths: paths, context: context, environment: environment)
    }

    /// Kubeconfig when one is found, in-cluster configuration otherwise (how the hub
    /// and the CLI running inside a pod find their API server).
    public static func automatic(kubeconfig: String? = nil, context: String? = nil,
                                 environment: [String: String] = ProcessInfo.processInfo.environment,
                                 home: String = NSHomeDirectory(),
                                 serviceAccountDirectory: String = InCluster.defaultDirectory) throws -> KubeConfig {
        if kubeconfig == nil, environment["KUBECONFIG"] == nil,
           !FileManager.default.fileExists(atPath: home + "/.kube/config"),
           environment["KUBERNETES_SERVICE_HOST"] != nil {
            return try InCluster.load(environment: environment, directory: serviceAccountDirectory)
        }
        return try load(kubeconfig: kubeconfig, context: context, environment: environment, home: home)
    }

    static func resolve(_ merged: KubeconfigFile.Merged, paths: [String], context: String?,
                        environment: [String: String]) throws -> KubeConfig {
        let where_ = paths.joined(separator: ":")
        let contextName: String
        if let context, !context.isEmpty {
            contextName = context
        } else if let current = merged.currentContext {
            contextName = current.0
        } else {
            throw KubeConfigError("kubeconfig \(where_) has no current-context; choose one with --context")
        }
        guard let (ctx, ctxFile) = merged.contexts[contextName] else {
            throw KubeConfigError("context '\(contextName)' not found in \(where_)")
        }
        guard let clusterName = ctx.cluster, !clusterName.isEmpty else {
            throw KubeConfigError("context '\(contextName)' in \(ctxFile) names no cluster")
        }
        guard let (cluster, clusterFile) = merged.clusters[clusterName] else {
            throw KubeConfigError("cluster '\(clusterName)' of context '\(contextName)' not found in \(where_)")
        }
        guard let serverText = cluster.server, !serverText.isEmpty else {
            throw KubeConfigError("cluster '\(clusterName)' in \(clusterFile) has no server")
        }
        guard let server = URL(string: serverText), let scheme = server.scheme, ["https", "http"].contains(scheme),
              server.host != nil else {
            throw KubeConfigError("server '\(serverText)' of cluster '\(clusterName)' in \(clusterFile) is not an http(s) URL")
        }
        var config = KubeConfig(server: server, insecureSkipTLSVerify: cluster.insecureSkipTLSVerify ?? false,
                                tlsServerName: cluster.tlsServerName, namespace: ctx.namespace.flatMap { $0.isEmpty ? nil : $0 } ?? "default",
                                source: "context '\(contextName)' in \(ctxFile)")
        let clusterWhat = "cluster '\(clusterName)' in \(clusterFile)"
        config.certificateAuthorityPEM = try PEMSource.load(data: cluster.certificateAuthorityData, file: cluster.certificateAuthority,
                                                            what: "certificate authority of \(clusterWhat)", marker: "CERTIFICATE")
        if let userName = ctx.user, !userName.isEmpty {
            guard let (user, userFile) = merged.users[userName] else {
                throw KubeConfigError("user '\(userName)' of context '\(contextName)' not found in \(where_)")
            }
            config.userName = userName
            try config.apply(user: user, named: userName, file: userFile, environment: environment)
        }
        return config
    }

    private mutating func apply(user: KubeconfigFile.User, named name: String, file: String,
                                environment: [String: String]) throws {
        let what = "user '\(name)' in \(file)"
        clientCertificatePEM = try PEMSource.load(data: user.clientCertificateData, file: user.clientCertificate,
                                                  what: "client certificate for \(what)", marker: "CERTIFICATE")
        clientKeyPEM = try PEMSource.load(data: user.clientKeyData, file: user.clientKey,
                                          what: "client key for \(what)", marker: "PRIVATE KEY")
        if (clientCertificatePEM == nil) != (clientKeyPEM == nil) {
            throw KubeConfigError("\(what) has a client \(clientKeyPEM == nil ? "certificate but no key" : "key but no certificate")")
        }
        if let token = user.token, !token.isEmpty {
            credentials = .token(token)
        } else if let tokenFile = user.tokenFile, !tokenFile.isEmpty {
            guard FileManager.default.isReadableFile(atPath: tokenFile) else {
                throw KubeConfigError("token file \(tokenFile) of \(what) cannot be read")
            }
            credentials = .tokenFile(path: tokenFile, rereadInterval: .seconds(60))
        } else if let exec = user.exec {
            credentials = .exec(try ExecPlugin(exec, user: what, environment: environment))
        } else if user.authProvider != nil {
            throw KubeConfigError("\(what) uses an auth-provider, which this client does not support; use an exec plugin")
        }
    }
}

/// PEM read from a `*-data` field (base64) or a file, checked to hold what it should.
enum PEMSource {
    static func load(data: String?, file: String?, what: String, marker: String) throws -> [UInt8]? {
        var bytes: [UInt8]
        if let data, !data.isEmpty {
            guard let decoded = Data(base64Encoded: data.filter { !$0.isWhitespace }) else {
                throw KubeConfigError("\(what) (the -data field) is not base64")
            }
            bytes = Array(decoded)
        } else if let file, !file.isEmpty {
            guard let contents = FileManager.default.contents(atPath: file) else {
                throw KubeConfigError("\(what): cannot read \(file)")
            }
            bytes = Array(contents)
        } else {
            return nil
        }
        let text = String(decoding: bytes.prefix(1 << 20), as: UTF8.self)
        guard text.contains("-----BEGIN "), text.contains("\(marker)-----") else {
            throw KubeConfigError("\(what) is not a PEM \(marker == "PRIVATE KEY" ? "key" : "certificate")")
        }
        return bytes
    }
}
