import Foundation
import Kube
import Testing

/// A fresh temporary directory.
func tempDirectory() -> String {
    let dir = NSTemporaryDirectory() + "kubecfg-\(UUID().uuidString.prefix(8))"
    try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

func write(_ text: String, _ path: String) -> String {
    try! text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Suite("Kubeconfig")
struct KubeConfigTests {
    static let base = """
        apiVersion: v1
        kind: Config
        current-context: dev
        clusters:
        - name: dev-cluster
          cluster:
            server: https://10.1.1.1:6443
            certificate-authority: certs/ca.crt
            tls-server-name: kubernetes.default.svc
        - name: prod-cluster
          cluster:
            server: https://prod.example:443
            insecure-skip-tls-verify: true
        users:
        - name: dev-user
          user:
            token: dev-token
        - name: prod-user
          user:
            client-certificate: certs/client.crt
            client-key: certs/client.key
        contexts:
        - name: dev
          context: {cluster: dev-cluster, user: dev-user, namespace: shop}
        - name: prod
          context: {cluster: prod-cluster, user: prod-user}
        """

    /// A kubeconfig directory with relative certificate paths next to it.
    func baseConfig() -> String {
        let dir = tempDirectory()
        try! FileManager.default.createDirectory(atPath: dir + "/certs", withIntermediateDirectories: true)
        for f in ["ca.crt", "client.crt", "client.key"] {
            try! FileManager.default.copyItem(atPath: TestPKI.path(f), toPath: "\(dir)/certs/\(f)")
        }
        return write(Self.base, dir + "/config")
    }

    @Test func currentContextWithRelativePaths() throws {
        let path = baseConfig()
        let config = try KubeConfig.load(kubeconfig: path, environment: [:], home: "/nonexistent")
        #expect(config.server.absoluteString == "https://10.1.1.1:6443")
        #expect(config.namespace == "shop")
        #expect(config.tlsServerName == "kubernetes.default.svc")
        #expect(config.certificateAuthorityPEM.map { String(decoding: $0, as: UTF8.self) } == TestPKI.read("ca.crt"))
        guard case .token("dev-token") = config.credentials else { Issue.record("credentials \(config.credentials)"); return }
        #expect(config.source.contains("context 'dev'"))
    }

    @Test func explicitContextWithClientCertificate() throws {
        let path = baseConfig()
        let config = try KubeConfig.load(kubeconfig: path, context: "prod", environment: [:], home: "/nonexistent")
        #expect(config.server.absoluteString == "https://prod.example:443")
        #expect(config.insecureSkipTLSVerify)
        #expect(config.namespace == "default")
        #expect(config.clientCertificatePEM.map { String(decoding: $0, as: UTF8.self) } == TestPKI.read("client.crt"))
        #expect(config.clientKeyPEM.map { String(decoding: $0, as: UTF8.self) } == TestPKI.read("client.key"))
        guard case .none = config.credentials else { Issue.record("credentials \(config.credentials)"); return }
    }

    @Test func tokenFileIsRelativeToTheKubeconfig() throws {
        let dir = tempDirectory()
        _ = write("file-token\n", dir + "/token")
        let path = write("""
            current-context: c
            clusters: [{name: k, cluster: {server: "https://h:1"}}]
            users: [{name: u, user: {tokenFile: ./token}}]
            contexts: [{name: c, context: {cluster: k, user: u}}]
            """, dir + "/config")
        let config = try KubeConfig.load(kubeconfig: path, environment: [:], home: "/nonexistent")
        guard case .tokenFile(let file, _) = config.credentials else { Issue.record("\(config.credentials)"); return }
        #expect(file == dir + "/token")
    }

    @Test func missingContextNamesTheFile() throws {
        let path = baseConfig()
        #expect(throws: KubeConfigError("context 'staging' not found in \(path)")) {
            try KubeConfig.load(kubeconfig: path, context: "staging", environment: [:], home: "/nonexistent")
        }
    }

    @Test func mergedKubeconfigFirstWins() throws {
        let dir = tempDirectory()
        let first = write("""
            current-context: a
            clusters:
            - {name: shared, cluster: {server: "https://first:6443"}}
            users:
            - {name: u, user: {token: first-token}}
            contexts:
            - {name: a, context: {cluster: shared, user: u}}
            """, dir + "/first")
        let second = write("""
            current-context: b
            clusters:
            - {name: shared, cluster: {server: "https://second:6443"}}
            - {name: only-second, cluster: {server: "https://third:6443"}}
            users:
            - {name: u, user: {token: second-token}}
            contexts:
            - {name: a, context: {cluster: only-second, user: u}}
            - {name: b, context: {cluster: only-second, user: u, namespace: bee}}
            """, dir + "/second")
        let env = ["KUBECONFIG": "\(first):\(dir)/missing:\(second)"]
        let a = try KubeConfig.load(environment: env, home: "/nonexistent")
        // current-context, cluster 'shared', user 'u' and context 'a' all come from the first file.
        #expect(a.server.absoluteString == "https://first:6443")
        guard case .token("first-token") = a.credentials else { Issue.record("\(a.credentials)"); return }
        let b = try KubeConfig.load(context: "b", environment: env, home: "/nonexistent")
        #expect(b.server.absoluteString == "https://third:6443")
        #expect(b.namespace == "bee")
        // Reversed, the second file's entries win.
        let reversed = try KubeConfig.load(environment: ["KUBECONFIG": "\(second):\(first)"], home: "/nonexistent")
        #expect(reversed.server.absoluteString == "https://third:6443")
        #expect(reversed.namespace == "bee")
    }

    @Test func homeConfigIsTheDefault() throws {
        let home = tempDirectory()
        try FileManager.default.createDirectory(atPath: home + "/.kube", withIntermediateDirectories: true)
        _ = write("""
            current-context: c
            clusters: [{name: k, cluster: {server: "https://home:6443"}}]
            contexts: [{name: c, context: {cluster: k}}]
            """, home + "/.kube/config")
        #expect(try KubeConfig.load(environment: [:], home: home).server.host == "home")
        #expect(throws: KubeConfigError("no kubeconfig: --kubeconfig not given, KUBECONFIG not set and /nonexistent/.kube/config does not exist")) {
            try KubeConfig.load(environment: [:], home: "/nonexistent")
        }
    }

    @Test func dataFieldsAreDecoded() throws {
        let dir = tempDirectory()
        let path = write("""
            current-context: c
            clusters: [{name: k, cluster: {server: "https://127.0.0.1:1", certificate-authority-data: \(TestPKI.base64("ca.crt"))}}]
            users: [{name: u, user: {client-certificate-data: \(TestPKI.base64("client.crt")), client-key-data: \(TestPKI.base64("client.key"))}}]
            contexts: [{name: c, context: {cluster: k, user: u}}]
            """, dir + "/config")
        let config = try KubeConfig.load(kubeconfig: path, environment: [:], home: "/nonexistent")
        #expect(config.certificateAuthorityPEM.map { String(decoding: $0, as: UTF8.self) } == TestPKI.read("ca.crt"))
        #expect(config.clientKeyPEM.map { String(decoding: $0, as: UTF8.self) } == TestPKI.read("client.key"))
    }

    @Test func invalidPiecesGiveOneLineErrors() throws {
        let dir = tempDirectory()
        func load(_ yaml: String) -> String {
            do {
                _ = try KubeConfig.load(kubeconfig: write(yaml, dir + "/config"), environment: [:], home: "/nonexistent")
                return "no error"
            } catch { return "\(error)" }
        }
        let notKey = Data("hello".utf8).base64EncodedString()
        #expect(load("""
            current-context: c
            clusters: [{name: k, cluster: {server: "https://h:1"}}]
            users: [{name: y, user: {client-certificate-data: \(TestPKI.base64("client.crt")), client-key-data: \(notKey)}}]
            contexts: [{name: c, context: {cluster: k, user: y}}]
            """) == "client key for user 'y' in \(dir)/config is not a PEM key")
        #expect(load("""
            current-context: c
            clusters: [{name: k, cluster: {server: "https://h:1", certificate-authority: nope.crt}}]
            contexts: [{name: c, context: {cluster: k}}]
            """) == "certificate authority of cluster 'k' in \(dir)/config: cannot read \(dir)/nope.crt")
        #expect(load("""
            current-context: c
            clusters: [{name: k, cluster: {server: "https://h:1"}}]
            contexts: [{name: c, context: {cluster: k, user: ghost}}]
            """) == "user 'ghost' of context 'c' not found in \(dir)/config")
        #expect(load("""
            current-context: c
            clusters: [{name: k, cluster: {server: "ftp://h"}}]
            contexts: [{name: c, context: {cluster: k}}]
            """) == "server 'ftp://h' of cluster 'k' in \(dir)/config is not an http(s) URL")
        #expect(load("clusters: []") == "kubeconfig \(dir)/config has no current-context; choose one with --context")
        #expect(load("clusters: {a: [").hasPrefix("kubeconfig \(dir)/config is not a valid kubeconfig:"))
        #expect(load("""
            current-context: c
            clusters: [{name: k, cluster: {server: "https://h:1"}}]
            users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: x}}}]
            contexts: [{name: c, context: {cluster: k, user: u}}]
            """).contains("has apiVersion 'client.authentication.k8s.io/v1alpha1'"))
    }

    @Test func inClusterConfiguration() throws {
        let dir = tempDirectory()
        _ = write("token-1\n", dir + "/token")
        _ = write(TestPKI.read("ca.crt"), dir + "/ca.crt")
        _ = write("kubeshark\n", dir + "/namespace")
        let env = ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"]
        let config = try InCluster.load(environment: env, directory: dir)
        #expect(config.server.absoluteString == "https://10.96.0.1:443")
        #expect(config.namespace == "kubeshark")
        guard case .tokenFile(let path, _) = config.credentials else { Issue.record("\(config.credentials)"); return }
        #expect(path == dir + "/token")
        let v6 = try InCluster.load(environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"], directory: dir)
        #expect(v6.server.absoluteString == "https://[fd00::1]:6443")
        #expect(throws: KubeConfigError("not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set")) {
            try InCluster.load(environment: [:], directory: dir)
        }
        #expect(throws: KubeConfigError("in-cluster service-account token \(dir)/missing/token cannot be read or is empty")) {
            try InCluster.load(environment: env, directory: dir + "/missing")
        }
        // automatic() falls back to in-cluster when there is no kubeconfig.
        let auto = try KubeConfig.automatic(environment: env, home: "/nonexistent", serviceAccountDirectory: dir)
        #expect(auto.source.hasPrefix("in-cluster"))
    }
}
