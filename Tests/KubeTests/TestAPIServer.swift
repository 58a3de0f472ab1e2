import Foundation
import Kube
import TestKit

/// Certificates made once per test run with openssl: a cluster CA, the API
/// server's certificate (127.0.0.1, localhost, kubernetes.default.svc), a client
/// certificate signed by the CA, and a second, unrelated CA.
enum TestPKI {
    static let directory: String = {
        let dir = NSTemporaryDirectory() + "kube-pki-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func openssl(_ args: [String]) {
            let r = try! TestProcess.run("/usr/bin/openssl", args)
            precondition(r.status == 0, "openssl \(args.joined(separator: " ")): \(r.stderr)")
        }
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for ca in ["ca", "other-ca"] {
            openssl(["req", "-x509"] + ec + ["-keyout", "\(dir)/\(ca).key", "-out", "\(dir)/\(ca).crt", "-days", "2",
                     "-subj", "/CN=\(ca)", "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        }
        func leaf(_ name: String, subject: String, ext: String) {
            openssl(["req", "-new"] + ec + ["-keyout", "\(dir)/\(name).key", "-out", "\(dir)/\(name).csr", "-subj", subject])
            try! ext.write(toFile: "\(dir)/\(name).ext", atomically: true, encoding: .utf8)
            openssl(["x509", "-req", "-in", "\(dir)/\(name).csr", "-CA", "\(dir)/ca.crt", "-CAkey", "\(dir)/ca.key",
                     "-CAcreateserial", "-out", "\(dir)/\(name).crt", "-days", "2", "-extfile", "\(dir)/\(name).ext"])
        }
        leaf("server", subject: "/CN=kube-apiserver",
             ext: "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n")
        // Names only, no address: verified by name alone (tls-server-name).
        leaf("server-dns", subject: "/CN=kube-apiserver", ext: "subjectAltName=DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n")
        leaf("client", subject: "/O=system:masters/CN=kubeshark-admin", ext: "extendedKeyUsage=clientAuth\n")
        return dir
    }()

    static func path(_ name: String) -> String { directory + "/" + name }
    static func read(_ name: String) -> String { try! String(contentsOfFile: path(name), encoding: .utf8) }
    static func base64(_ name: String) -> String { Data(read(name).utf8).base64EncodedString() }
}

/// A running kube_api_server.py on loopback, ended when the test ends.
final class TestAPIServer: @unchecked Sendable {
    let port: Int
    let controlPort: Int
    private let process: Process
    private let stdin: Pipe

    var url: String { "https://127.0.0.1:\(port)" }

    init(tokens: [String] = ["test-token"], requireClientCertificate: Bool = false, certificate: String = "server") throws {
        let script = TestProcess.repoRoot.appendingPathComponent("Tests/KubeTests/kube_api_server.py").path
        var args = [script, "--cert", TestPKI.path("\(certificate).crt"), "--key", TestPKI.path("\(certificate).key")]
        if requireClientCertificate { args += ["--client-ca", TestPKI.path("ca.crt")] }
        for t in tokens { args += ["--token", t] }
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = args
        let out = Pipe()
        stdin = Pipe()
        process.standardOutput = out
        process.standardInput = stdin
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while true {
            let byte = out.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        guard let ports = try? JSONSerialization.jsonObject(with: line) as? [String: Int],
              let port = ports["port"], let control = ports["control"] else {
            process.terminate()
            throw KubeConfigError("test API server did not start: \(String(decoding: line, as: UTF8.self))")
        }
        self.port = port
        self.controlPort = control
    }

    deinit { stop() }

    func stop() {
        try? stdin.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
    }

    /// A configuration for this server: its CA, a token, optionally the client certificate.
    func config(token: String? = "test-token", clientCertificate: Bool = false, ca: String = "ca.crt") -> KubeConfig {
        KubeConfig(server: URL(string: url)!, certificateAuthorityPEM: Array(TestPKI.read(ca).utf8),
                   clientCertificatePEM: clientCertificate ? Array(TestPKI.read("client.crt").utf8) : nil,
                   clientKeyPEM: clientCertificate ? Array(TestPKI.read("client.key").utf8) : nil,
                   credentials: token.map { .token($0) } ?? .none, namespace: "default", source: "test", userName: "tester")
    }

    /// Calls the control listener (plain HTTP): `method path` with a JSON body; returns the JSON answer.
    @discardableResult
    func control(_ method: String, _ path: String, _ body: Any? = nil) throws -> Any {
        var args = ["-s", "-X", method, "http://127.0.0.1:\(controlPort)\(path)"]
        if let body {
            let data = try JSONSerialization.data(withJSONObject: body)
            args += ["-H", "Content-Type: application/json", "--data-binary", String(decoding: data, as: UTF8.self)]
        }
        let r = try TestProcess.run("/usr/bin/curl", args)
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8), options: [.fragmentsAllowed])
    }

    /// The server's counters (lists, watches with their resourceVersion, applies, deletes).
    func stats() throws -> [String: Any] { try control("GET", "/stats") as? [String: Any] ?? [:] }

    /// A kubeconfig file for this server (the test CA, a token; `namespace` as the
    /// context's), for the `kubeshark` processes a test starts. The caller removes it.
    func kubeconfigFile(token: String = "test-token", namespace: String? = nil) throws -> String {
        let path = NSTemporaryDirectory() + "ks-kubeconfig-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let context = namespace.map { "{cluster: test, user: cli, namespace: \($0)}" } ?? "{cluster: test, user: cli}"
        try """
            apiVersion: v1
            kind: Config
            clusters: [{name: test, cluster: {server: "\(url)", certificate-authority: "\(TestPKI.path("ca.crt"))"}}]
            users: [{name: cli, user: {token: \(token)}}]
            contexts: [{name: test, context: \(context)}]
            current-context: test
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Adds or replaces a pod.
    @discardableResult
    func putPod(_ name: String, namespace: String = "default", node: String = "node-a", phase: String = "Running",
                ip: String? = "10.0.0.1", hostNetwork: Bool = false, labels: [String: String] = [:],
                extraStatus: [String: Any] = [:]) throws -> [String: Any] {
        var status: [String: Any] = ["phase": phase]
        if let ip { status["podIP"] = ip; status["podIPs"] = [["ip": ip]] }
        for (k, v) in extraStatus { status[k] = v }
        let pod: [String: Any] = [
            "metadata": ["name": name, "namespace": namespace, "labels": labels],
            "spec": ["nodeName": node, "hostNetwork": hostNetwork, "containers": [["name": "app", "image": "nginx"]]],
            "status": status,
        ]
        return try control("POST", "/pods", pod) as? [String: Any] ?? [:]
    }

    func deletePod(_ name: String, namespace: String = "default") throws {
        try control("DELETE", "/pods/\(namespace)/\(name)")
    }
}

/// Runs `body` with a client of `server`, shutting the client down after.
func withClient<T>(_ config: KubeConfig, _ body: (KubeClient) async throws -> T) async throws -> T {
    let client = try KubeClient(config: config, requestTimeout: .seconds(10))
    do {
        let result = try await body(client)
        await client.shutdown()
        return result
    } catch {
        await client.shutdown()
        throw error
    }
}

/// Polls `condition` every 50 ms for up to `seconds`.
func eventually(_ seconds: Double = 10, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}
