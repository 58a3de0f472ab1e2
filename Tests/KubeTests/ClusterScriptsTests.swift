import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Kube
import TestKit
import Testing

/// Scripts in a cluster, against the stand-in API server: `kubeshark scripts
/// --kube` writes them into the deployment's ConfigMap in Kubeshark's keys
/// (keeping the scope there), `hub --kube` reads them and keeps its worker
/// running them, and scripts added through the hub's API go back into the
/// ConfigMap.
@Suite("scripts --kube", .serialized)
struct ClusterScriptsTests {
    static func scripts(_ service: RunningKubeshark) -> [String: [String: Any]] {
        guard let (status, data) = try? service.get("/api/scripts"), status == 200,
              let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]]
        else { return [:] }
        return Dictionary(list.map { ($0["title"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Polls `condition` (quick, blocking) off the cooperative pool.
    static func wait(_ seconds: Double, _ condition: @escaping @Sendable () -> Bool) async throws -> Bool {
        try await offThePool { TestProcess.eventually(within: seconds, every: 0.2, condition) }
    }

    /// `kubeshark ARGS`, run off the cooperative pool.
    static func kubeshark(_ arguments: [String]) async throws -> ProcessResult {
        try await offThePool { try TestProcess.run(TestProcess.kubeshark, arguments) }
    }

    /// The ConfigMap's data.
    static func data(_ server: TestAPIServer) async throws -> [String: String] {
        try await withClient(server.config()) { client in
            guard let map = try await client.get(apiVersion: "v1", kind: "ConfigMap", name: "kubeshark-config-map", namespace: "ks"),
                  let object = try JSONSerialization.jsonObject(with: Data(map.json)) as? [String: Any]
            else { return [:] }
            return object["data"] as? [String: String] ?? [:]
        }
    }

    @Test("scripts --kube writes the ConfigMap; hub --kube runs them on its worker and writes its own changes back")
    func configMapToWorkers() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let kubeconfig = try server.kubeconfigFile(namespace: "ks")
        defer { try? FileManager.default.removeItem(atPath: kubeconfig) }
        let kube = ["--kube", "--kubeconfig", kubeconfig, "-s", "ks"]

        // Before the deployment there is no ConfigMap: one clear line.
        let dir = NSTemporaryDirectory() + "ks-kube-scripts-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "// Counter\nvar n = 0;\nfunction onItemCaptured(d) { n++; }\n".write(toFile: dir + "/counter.js", atomically: true, encoding: .utf8)
        try "/* Idle\n * does nothing */\nvar idle = true;\n".write(toFile: dir + "/idle.js", atomically: true, encoding: .utf8)
        let early = try await Self.kubeshark(["scripts"] + kube + ["--dir", dir])
        #expect(early.status != 0 && early.stderr.contains("no ks/kubeshark-config-map: deploy first"), "\(early.stderr)")

        try await withClient(server.config()) { client in
            _ = try await client.apply(KubeObject(yaml: """
                apiVersion: v1
                kind: ConfigMap
                metadata: {name: kubeshark-config-map, namespace: ks}
                data: {POD_REGEX: "^web", NAMESPACES: shop, EXCLUDED_NAMESPACES: ""}
                """))
        }
        let put = try await Self.kubeshark(["scripts"] + kube + ["--dir", dir])
        #expect(put.status == 0, "\(put.stderr)")
        var data = try await Self.data(server)
        #expect(data["POD_REGEX"] == "^web" && data["NAMESPACES"] == "shop", "the scope is kept: \(data)")
        #expect(data["SCRIPTING_ACTIVE_SCRIPTS"] == "Counter,Idle")
        let stored = try #require(try JSONSerialization.jsonObject(with: Data((data["SCRIPTING_SCRIPTS"] ?? "").utf8)) as? [String: [String: Any]])
        #expect(stored["0"]?["title"] as? String == "Counter" && stored["1"]?["title"] as? String == "Idle")
        #expect((stored["0"]?["code"] as? String)?.contains("onItemCaptured") == true)
        let patches = try server.stats()["patches"] as? [[String: Any]] ?? []
        #expect(patches.last?["fieldManager"] as? String == "kubeshark-scripts")

        // The hub reads them and its worker runs them.
        let hub = try await offThePool { try ClusterHubTests.start(["hub"] + kube + ["--port", "0"], ready: "hub listening on") }
        defer { _ = hub.stop() }
        #expect(hub.log.contains("2 script(s)"), "\(hub.log)")
        let file = TestProcess.repoRoot.appendingPathComponent("Tests/Fixtures/captures/http1-pipelined.pcap").path
        let workerDir = NSTemporaryDirectory() + "ks-kube-scripts-worker-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: workerDir) }
        let worker = try await offThePool {
            try ClusterHubTests.start(["worker", "-r", file, "--name", "node-a", "--port", "0", "--data-dir", workerDir,
                                       "--hub", hub.base, "--hub-interval", "0.3"], ready: "listening on")
        }
        defer { _ = worker.stop() }
        #expect(try await Self.wait(10) {
            let s = Self.scripts(worker)
            return s["Counter"]?["state"] as? String == "running" && s["Idle"]?["state"] as? String == "running"
        }, "\(Self.scripts(worker).keys) \(hub.log)")
        #expect(try await Self.wait(10) { ((Self.scripts(worker)["Counter"]?["entries"] as? Int) ?? 0) > 0 }, "its hook sees the worker's entries")

        // Listed from the ConfigMap; deactivated there, the worker follows (the hub reads it every 5 s).
        let list = try await Self.kubeshark(["scripts"] + kube + ["--list"])
        #expect(list.stdout.contains("Counter\tactive") && list.stdout.contains("Idle\tactive"), "\(list.stdout) \(list.stderr)")
        let off = try await Self.kubeshark(["scripts"] + kube + ["--deactivate", "Idle"])
        #expect(off.status == 0, "\(off.stderr)")
        data = try await Self.data(server)
        #expect(data["SCRIPTING_ACTIVE_SCRIPTS"] == "Counter")
        #expect(try await Self.wait(10) { Self.scripts(worker)["Idle"]?["active"] as? Bool == false }, "\(hub.log)")

        // A script added through the hub's API is written back into the ConfigMap.
        var req = URLRequest(url: URL(string: hub.base + "/api/scripts")!)
        req.httpMethod = "POST"
        req.setValue("application/json", forHTTPHeaderField: "Content-Type")
        req.httpBody = Data(#"{"code": "// From the dashboard\nvar d = 1;"}"#.utf8)
        let request = req
        let status = try await offThePool { try hub.send(request).0 }
        #expect(status == 200)
        #expect(Self.scripts(worker)["From the dashboard"] != nil, "on the worker when the hub answers")
        #expect(try await Self.wait(5) { Self.scripts(worker)["From the dashboard"]?["state"] as? String == "running" })
        data = try await Self.data(server)
        #expect(data["SCRIPTING_SCRIPTS"]?.contains("From the dashboard") == true, "\(data)")

        // Removed from the ConfigMap: gone from the worker.
        let rm = try await Self.kubeshark(["scripts"] + kube + ["--remove", "Counter"])
        #expect(rm.status == 0, "\(rm.stderr)")
        #expect(try await Self.wait(10) { Self.scripts(worker)["Counter"] == nil }, "\(hub.log)")
        #expect(Self.scripts(worker)["From the dashboard"] != nil)
        let unknown = try await Self.kubeshark(["scripts"] + kube + ["--activate", "Nope"])
        #expect(unknown.status != 0 && unknown.stderr.contains("no script titled 'Nope' in ks/kubeshark-config-map"), "\(unknown.stderr)")
    }
}
