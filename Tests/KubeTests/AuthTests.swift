import Foundation
import Kube
import Testing

@Suite("TLS and authentication against the test API server")
struct AuthTests {
    @Test func tokenAuthWorksAndAWrongTokenIsAStatus() async throws {
        let server = try TestAPIServer()
        let names = try await withClient(server.config()) { try await $0.namespaces().map(\.name) }
        #expect(names.contains("default") && names.contains("kube-system"))
        await #expect(throws: KubeAPIError(code: 401, reason: "Unauthorized", message: "Unauthorized",
                                           status: Status(status: "Failure", message: "Unauthorized", reason: "Unauthorized", code: 401))) {
            try await withClient(server.config(token: "wrong")) { try await $0.namespaces() }
        }
    }

    @Test func aServerNotSignedByTheClusterCAIsRefused() async throws {
        let server = try TestAPIServer()
        do {
            _ = try await withClient(server.config(ca: "other-ca.crt")) { try await $0.namespaces() }
            Issue.record("the server was trusted with the wrong CA")
        } catch let error as KubeTransportError {
            #expect(error.description == "cannot talk to \(server.url): TLS failed: CERTIFICATE_VERIFY_FAILED"
                    + " (the server's certificate is not signed by the certificate authority of test)")
            #expect(error.description.contains(server.url))
        }
        #expect((try server.stats()["lists"] as? [Any])?.isEmpty == true)
        // insecure-skip-tls-verify: no verification at all.
        var insecure = server.config(ca: "other-ca.crt")
        insecure.certificateAuthorityPEM = nil
        insecure.insecureSkipTLSVerify = true
        #expect(try await withClient(insecure) { try await $0.namespaces() }.count >= 2)
    }

    @Test func clientCertificateIsRequiredAndAccepted() async throws {
        let server = try TestAPIServer(tokens: ["test-token"], requireClientCertificate: true)
        // No certificate: the handshake fails.
        do {
            _ = try await withClient(server.config(token: nil)) { try await $0.namespaces() }
            Issue.record("the server accepted a client without a certificate")
        } catch let error as KubeTransportError {
            #expect(error.description == "cannot talk to \(server.url): TLS failed: TLSV1_ALERT_CERTIFICATE_REQUIRED"
                    + " (the server asks for a client certificate and test gives none)")
        }
        // With the CA-signed certificate and no token, the certificate authenticates.
        let names = try await withClient(server.config(token: nil, clientCertificate: true)) { try await $0.namespaces() }
        #expect(!names.isEmpty)
    }

    @Test func tlsServerNameIsVerifiedInsteadOfTheHost() async throws {
        // The certificate names kubernetes.default.svc and no address.
        let server = try TestAPIServer(certificate: "server-dns")
        var config = server.config()
        await #expect(throws: KubeTransportError.self) {
            try await withClient(config) { try await $0.namespaces() }
        }
        config.tlsServerName = "kubernetes.default.svc"
        #expect(try await withClient(config) { try await $0.namespaces() }.count >= 2)
        config.tlsServerName = "not-in-the-certificate.example"
        do {
            _ = try await withClient(config) { try await $0.namespaces() }
            Issue.record("a certificate for another name was accepted")
        } catch let error as KubeTransportError {
            #expect(error.description.contains("does not name not-in-the-certificate.example"), "\(error)")
        }
    }

    @Test func execPluginTokenIsCachedUntilItExpires() async throws {
        let server = try TestAPIServer(tokens: ["exec-token-1"])
        let dir = tempDirectory()
        // Prints an ExecCredential and counts its runs; the expiry comes from the environment it is given.
        let plugin = write("""
            #!/bin/sh
            echo run >> "\(dir)/runs"
            [ "$KUBERNETES_EXEC_INFO" ] || exit 3
            [ "$1 $2" = "get-token --cluster=dev" ] || exit 4
            echo '{"apiVersion":"'"$API"'","kind":"ExecCredential","status":{"token":"exec-token-1","expirationTimestamp":"'"$EXPIRY"'"}}'
            """, dir + "/plugin.sh")
        chmod(plugin, 0o755)
        func kubeconfig(_ apiVersion: String, _ expiry: String) -> String {
            write("""
                current-context: c
                clusters: [{name: k, cluster: {server: "\(server.url)", certificate-authority: \(TestPKI.path("ca.crt"))}}]
                users:
                - name: u
                  user:
                    exec:
                      apiVersion: \(apiVersion)
                      command: ./plugin.sh
                      args: [get-token, --cluster=dev]
                      env: [{name: API, value: \(apiVersion)}, {name: EXPIRY, value: "\(expiry)"}]
                contexts: [{name: c, context: {cluster: k, user: u}}]
                """, dir + "/config")
        }
        func runs() -> Int { ((try? String(contentsOfFile: dir + "/runs", encoding: .utf8)) ?? "").split(separator: "\n").count }

        // v1, valid for an hour: one run for three requests.
        let far = ISO8601DateFormatter().string(from: Date().addingTimeInterval(3600))
        var config = try KubeConfig.load(kubeconfig: kubeconfig("client.authentication.k8s.io/v1", far), environment: [:])
        let counted = try await withClient(config) { client in
            for _ in 0..<3 { _ = try await client.namespaces() }
            return await client.execPluginRuns
        }
        #expect(counted == 1)
        #expect(runs() == 1)

        // v1beta1, already expired: the plugin runs for every request.
        let past = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-10))
        config = try KubeConfig.load(kubeconfig: kubeconfig("client.authentication.k8s.io/v1beta1", past), environment: [:])
        try await withClient(config) { client in
            for _ in 0..<3 { _ = try await client.namespaces() }
        }
        #expect(runs() == 4)

        // A plugin that fails: its status and last line of stderr.
        chmod(write("#!/bin/sh\necho 'login required' >&2\nexit 2\n", dir + "/plugin.sh"), 0o755)
        config = try KubeConfig.load(kubeconfig: kubeconfig("client.authentication.k8s.io/v1", far), environment: [:])
        await #expect(throws: KubeConfigError("exec plugin \(dir)/plugin.sh of user 'u' in \(dir)/config exited with status 2: login required")) {
            try await withClient(config) { try await $0.namespaces() }
        }

        // A plugin that is not installed: the kubeconfig's installHint says how to get it.
        let missing = write("""
            current-context: c
            clusters: [{name: k, cluster: {server: "\(server.url)", certificate-authority: \(TestPKI.path("ca.crt"))}}]
            users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: no-such-plugin, installHint: "install it from the vendor"}}}]
            contexts: [{name: c, context: {cluster: k, user: u}}]
            """, dir + "/missing")
        config = try KubeConfig.load(kubeconfig: missing, environment: ["PATH": "/usr/bin:/bin"])
        await #expect(throws: KubeConfigError("exec plugin 'no-such-plugin' of user 'u' in \(dir)/missing not found on PATH (install it from the vendor)")) {
            try await withClient(config) { try await $0.namespaces() }
        }
    }

    @Test func inClusterTokenIsReadAgainAfterRotation() async throws {
        let server = try TestAPIServer(tokens: ["sa-token-1"])
        let dir = tempDirectory()
        _ = write("sa-token-1\n", dir + "/token")
        _ = write(TestPKI.read("ca.crt"), dir + "/ca.crt")
        let env = ["KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": String(server.port)]
        let config = try InCluster.load(environment: env, directory: dir, tokenRereadInterval: .milliseconds(200))
        try await withClient(config) { client in
            #expect(try await client.namespaces().count >= 2)
            // The kubelet rotates the token; the server stops accepting the old one.
            _ = write("sa-token-2\n", dir + "/token")
            try server.control("POST", "/config", ["tokens": ["sa-token-2"]])
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await client.namespaces().count >= 2)
        }
        // A 401 with the old token also makes the client read the file at once.
        let slow = try InCluster.load(environment: env, directory: dir, tokenRereadInterval: .seconds(3600))
        try await withClient(slow) { client in
            #expect(try await client.namespaces().count >= 2)
            _ = write("sa-token-3\n", dir + "/token")
            try server.control("POST", "/config", ["tokens": ["sa-token-3"]])
            #expect(try await client.namespaces().count >= 2)
        }
    }
}
