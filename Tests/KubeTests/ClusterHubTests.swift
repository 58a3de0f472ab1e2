import Foundation
import Kube
import TestKit
import Testing

/// `kubeshark hub --kube` against the stand-in API server: it reads the scope
/// from the deployment's ConfigMap, watches the cluster's pods, and sends each
/// node's worker (real `kubeshark worker --pods --by-address` processes that
/// registered with it) the targeted pods there; the workers capture real
/// traffic of network-namespace "pods" whose addresses the API server reports.
@Suite("hub --kube", .serialized, .enabled(if: getuid() == 0, "needs root for network namespaces and capture"))
struct ClusterHubTests {
    /// Starts `kubeshark ARGS` (the command first, its own port flags included) and waits for `ready`.
    static func start(_ arguments: [String], ready: String) throws -> RunningKubeshark {
        try RunningKubeshark(Array(arguments.dropFirst()), command: arguments[0], portArguments: [], ready: ready,
                             usesDataDirectory: false)
    }

    /// GETs `path` and parses the answer as JSON (nil when it is not).
    static func json(_ service: RunningKubeshark, _ path: String) -> Any? {
        guard let (_, data) = try? service.get(path) else { return nil }
        return try? JSONSerialization.jsonObject(with: data)
    }


    /// "worker:namespace/name" of every pod the hub's workers capture, sorted.
    static func targeted(_ hub: RunningKubeshark) -> [String] {
        ((Self.json(hub, "/api/pods") as? [[String: Any]]) ?? [])
            .map { "\($0["worker"] ?? ""):\($0["namespace"] ?? "")/\($0["name"] ?? "")" }.sorted()
    }

    static func waitFor(_ hub: RunningKubeshark, _ want: [String]) -> [String] {
        var seen: [String] = []
        for _ in 0..<60 {
            seen = targeted(hub)
            if seen == want { break }
            Thread.sleep(forTimeInterval: 0.25)
        }
        return seen
    }

    /// Entries' destinations ("namespace/name") through the hub's WebSocket.
    static func destinations(_ hub: RunningKubeshark, query: String, want: Int) throws -> [String] {
        let client = TestProcess.repoRoot.appendingPathComponent("Tests/WorkerTests/ws_client.py").path
        let r = try TestProcess.run("/usr/bin/python3", [client, hub.base, "--query", query, "--want", "\(want)", "--idle", "4"])
        let messages = r.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        return messages.filter { $0["type"] as? String == "entry" }.compactMap { $0["entry"] as? [String: Any] }
            .compactMap { ($0["dst"] as? [String: Any]).map { "\($0["namespace"] ?? "")/\($0["name"] ?? "")" } }.sorted()
    }

    @Test("the hub follows the cluster's pods and its ConfigMap's scope, and each node's worker captures its targets")
    func hubFollowsCluster() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let web = try TestPod(tag: "chw", subnet: 65, netns: "kschub\(getpid() % 10000)-a")
        defer { web.remove() }
        let api = try TestPod(tag: "cha", subnet: 66, netns: "kschub\(getpid() % 10000)-b")
        defer { api.remove() }
        let late = try TestPod(tag: "chl", subnet: 67, netns: "kschub\(getpid() % 10000)-c")
        defer { late.remove() }
        // The cluster: web-1 on node-a, api-0 on node-b (in scope), db-0 elsewhere (not).
        try server.putPod("web-1", namespace: "shop", node: "node-a", ip: web.podAddress)
        try server.putPod("api-0", namespace: "shop", node: "node-b", ip: api.podAddress)
        try server.putPod("db-0", namespace: "other", node: "node-a", ip: late.podAddress)
        let kubeconfig = try server.kubeconfigFile(namespace: "kubeshark")
        defer { try? FileManager.default.removeItem(atPath: kubeconfig) }
        // The deployment's ConfigMap: namespace shop only.
        try await withClient(server.config()) { client in
            _ = try await client.apply(KubeObject(yaml: """
                apiVersion: v1
                kind: ConfigMap
                metadata: {name: kubeshark-config-map, namespace: kubeshark}
                data: {POD_REGEX: ".*", NAMESPACES: shop, EXCLUDED_NAMESPACES: ""}
                """))
        }
        let hub = try Self.start(["hub", "--kube", "--kubeconfig", kubeconfig, "--port", "0"], ready: "hub listening on")
        defer { _ = hub.stop() }
        #expect(hub.log.contains("scope: regex .*, namespaces shop"), "\(hub.log)")
        var workers: [RunningKubeshark] = []
        let directories = ["node-a", "node-b"].map { NSTemporaryDirectory() + "ks-clusterhub-\($0)-\(getpid())" }
        defer {
            workers.forEach { _ = $0.stop() }
            directories.forEach { try? FileManager.default.removeItem(atPath: $0) }
        }
        for (node, dir) in zip(["node-a", "node-b"], directories) {
            workers.append(try Self.start(["worker", "--pods", "--by-address", "--netns", "^none$", "--name", node, "--port", "0",
                                        "--data-dir", dir, "--hub", hub.base, "--hub-interval", "0.3"], ready: "listening on"))
        }
        let want = ["node-a:shop/web-1", "node-b:shop/api-0"]
        #expect(Self.waitFor(hub, want) == want, "\(hub.log)")
        try await Task.sleep(for: .milliseconds(500))
        _ = try web.fetch("/hello.txt?cluster")
        _ = try api.fetch("/hello.txt?cluster")
        _ = try late.fetch("/hello.txt?cluster")  // db-0's address: out of scope
        let seen = try Self.destinations(hub, query: "http", want: 2)
        #expect(seen == ["shop/api-0", "shop/web-1"], "\(seen)")

        // A pod that starts later on node-b is targeted there; the watch brings it.
        try server.putPod("late-2", namespace: "shop", node: "node-b", ip: late.podAddress)
        let withLate = ["node-a:shop/web-1", "node-b:shop/api-0", "node-b:shop/late-2"]
        #expect(Self.waitFor(hub, withLate) == withLate, "\(hub.log)")
        // An edit of the ConfigMap changes the scope (read every 5 seconds).
        try await withClient(server.config()) { client in
            _ = try await client.apply(KubeObject(yaml: """
                apiVersion: v1
                kind: ConfigMap
                metadata: {name: kubeshark-config-map, namespace: kubeshark}
                data: {POD_REGEX: "^api", NAMESPACES: shop, EXCLUDED_NAMESPACES: ""}
                """))
        }
        var narrowed: [String] = []
        for _ in 0..<4 where narrowed != ["node-b:shop/api-0"] {
            narrowed = Self.waitFor(hub, ["node-b:shop/api-0"])
        }
        #expect(narrowed == ["node-b:shop/api-0"], "\(hub.log)")
    }

    @Test("hub --kube without access to the cluster fails with one line naming the cause")
    func noAccess() throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let kubeconfig = try server.kubeconfigFile(token: "wrong-token")
        defer { try? FileManager.default.removeItem(atPath: kubeconfig) }
        let r = try TestProcess.run(TestProcess.kubeshark, ["hub", "--kube", "--kubeconfig", kubeconfig, "--port", "0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("hub --kube") && r.stderr.contains("401"), "\(r.stderr)")
        let missing = try TestProcess.run(TestProcess.kubeshark, ["hub", "--kube", "--kubeconfig", "/nonexistent/config", "--port", "0"])
        #expect(missing.status != 0 && missing.stderr.contains("/nonexistent/config"), "\(missing.stderr)")
    }

    @Test("kubeshark proxy serves the hub's dashboard, API and WebSocket through the API server's service proxy")
    func proxyThroughTheAPIServer() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let file = TestProcess.repoRoot.appendingPathComponent("Tests/Fixtures/captures/http1-pipelined.pcap").path
        let dir = NSTemporaryDirectory() + "ks-proxy-worker-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let worker = try Self.start(["worker", "-r", file, "--port", "0", "--data-dir", dir, "--token", "wt"], ready: "listening on")
        defer { _ = worker.stop() }
        let hub = try Self.start(["hub", "--port", "0", "--worker", "a=\(worker.base)", "--worker-token", "wt", "--token", "ht-123"],
                              ready: "hub listening on")
        defer { _ = hub.stop() }
        // The deployment's Secret, and the Service's endpoint: the hub.
        try await withClient(server.config()) { client in
            _ = try await client.apply(KubeObject(yaml: """
                apiVersion: v1
                kind: Secret
                metadata: {name: kubeshark-secret, namespace: ks}
                data: {HUB_TOKEN: "\(Data("ht-123".utf8).base64EncodedString())", WORKER_TOKEN: "\(Data("wt".utf8).base64EncodedString())"}
                """))
        }
        let hubPort = hub.base.split(separator: ":").last.map(String.init) ?? ""
        _ = try server.control("POST", "/config", ["services": ["ks/kubeshark-hub:80": "127.0.0.1:\(hubPort)"]])
        let kubeconfig = try server.kubeconfigFile()
        defer { try? FileManager.default.removeItem(atPath: kubeconfig) }
        let proxy = try Self.start(["proxy", "-s", "ks", "--kubeconfig", kubeconfig, "--proxy-front-port", "0"], ready: "the dashboard at")
        defer { _ = proxy.stop() }
        // Without the token the hub refuses; through the proxy the browser needs none.
        let direct = try TestProcess.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", hub.base + "/api/stats"])
        #expect(direct.stdout == "401")
        let page = try TestProcess.run("/usr/bin/curl", ["-s", proxy.base + "/"])
        #expect(page.stdout.contains("<html") && page.stdout.contains("kubeshark"), "\(page.stdout.prefix(300))")
        let stats = Self.json(proxy, "/api/stats") as? [String: Any]
        #expect((stats?["workers"] as? [[String: Any]])?.first?["name"] as? String == "a", "\(String(describing: stats))")
        // The WebSocket, relayed through the API server: every entry of the capture.
        let offline = try TestProcess.run(TestProcess.kubeshark, ["dissect", file, "--filter", "http"])
        let expected = offline.stdout.split(separator: "\n").count
        let client = TestProcess.repoRoot.appendingPathComponent("Tests/WorkerTests/ws_client.py").path
        let ws = try TestProcess.run("/usr/bin/python3", [client, proxy.base, "--query", "http", "--want", "\(expected)", "--idle", "4"])
        let entries = ws.stdout.split(separator: "\n").filter { $0.contains(#""type":"entry""#) || $0.contains(#""type": "entry""#) }
        #expect(expected > 0 && entries.count == expected, "\(ws.stdout.prefix(500)) \(ws.stderr)")
        #expect((try server.stats()["proxied"] as? Int ?? 0) >= 3)
    }
}
