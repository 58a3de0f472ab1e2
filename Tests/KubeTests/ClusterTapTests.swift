import Foundation
import Kube
import TestKit
import Testing

/// `kubeshark tap --kube` and `kubeshark clean` against the stand-in API server:
/// the dry run lists the cluster's targets, a deployment is applied, waited for
/// (with the reason when a pod cannot start), and removed again.
@Suite("tap --kube and clean")
struct ClusterTapTests {
    static func run(_ args: [String]) throws -> ProcessResult {
        try TestProcess.run(TestProcess.kubeshark, args, environment: ["HOME": NSTemporaryDirectory() + "ks-no-home"])
    }

    static var ready: [String: Any] { ["containerStatuses": [["name": "app", "ready": true, "state": ["running": [:]]]]] }

    @Test("--dryRun lists the targeted pods per namespace, and why the others in scope are not captured")
    func dryRun() throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let config = try server.kubeconfigFile()
        defer { try? FileManager.default.removeItem(atPath: config) }
        try server.putPod("web-1", namespace: "shop", node: "node-a", ip: "10.1.0.1")
        try server.putPod("web-2", namespace: "shop", node: "node-b", phase: "Pending", ip: nil)
        try server.putPod("web-host", namespace: "shop", node: "node-b", ip: "192.168.0.2", hostNetwork: true)
        try server.putPod("web-9", namespace: "other", node: "node-a", ip: "10.1.0.9")
        let r = try Self.run(["tap", "--kube", "--kubeconfig", config, "--dryRun", "web", "-n", "shop"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("targeted pods: 1 of 4\nshop:\n  web-1  node=node-a  ips=10.1.0.1\n"), "\(r.stdout)")
        #expect(r.stdout.contains("shop/web-2: phase Pending") && r.stdout.contains("shop/web-host: hostNetwork"), "\(r.stdout)")
        #expect(!r.stdout.contains("web-9"))
        #expect(try server.stats()["applies"] as? Int ?? 0 == 0, "a dry run installs nothing")
    }

    @Test("tap --kube applies every object, waits for the hub and the workers, and clean removes them")
    func deployAndClean() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let config = try server.kubeconfigFile()
        defer { try? FileManager.default.removeItem(atPath: config) }
        // The cluster's controllers are not there: the test plays them, a moment after the apply.
        let labels = ["app.kubernetes.io/name": "kubeshark", "app.kubernetes.io/instance": "kubeshark"]
        // On a dispatch thread: the test's own blocking calls below hold cooperative-pool threads.
        let placed = DispatchSemaphore(value: 0)
        DispatchQueue.global().asyncAfter(deadline: .now() + 1) {
            _ = try? server.putPod("kubeshark-hub-1", namespace: "ks", ip: "10.2.0.1",
                                   labels: labels.merging(["app.kubernetes.io/component": "hub"]) { $1 }, extraStatus: Self.ready)
            _ = try? server.putPod("kubeshark-worker-a", namespace: "ks", ip: "192.168.0.1", hostNetwork: true,
                                   labels: labels.merging(["app.kubernetes.io/component": "worker"]) { $1 }, extraStatus: Self.ready)
            placed.signal()
        }
        let r = try Self.run(["tap", "--kube", "--kubeconfig", config, "-n", "shop", "-s", "ks", "--ready-timeout", "20", "--no-proxy"])
        placed.wait()
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("tap: applied DaemonSet/kubeshark-worker-daemon-set"), "\(r.stderr)")
        #expect(r.stderr.contains("tap: hub 1/1 ready, workers 1/1 ready") && r.stderr.contains("kubeshark proxy -s ks"), "\(r.stderr)")
        let stored = try await withClient(server.config()) { client in
            try await client.get(apiVersion: "v1", kind: "ConfigMap", name: "kubeshark-config-map", namespace: "ks")
        }
        #expect(stored?.string(at: "data.NAMESPACES") == "shop")
        let token = try await withClient(server.config()) { client in
            try await client.get(apiVersion: "v1", kind: "Secret", name: "kubeshark-secret", namespace: "ks")
        }?.string(at: "data.HUB_TOKEN").flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }
        #expect(token != nil && r.stderr.contains("token=\(token ?? "-")"), "the printed link carries the stored token")

        // A second tap keeps the tokens; clean removes all ten objects, and then finds none.
        let again = try Self.run(["tap", "--kube", "--kubeconfig", config, "-n", "shop", "-s", "ks", "--ready-timeout", "5", "--no-proxy"])
        #expect(again.status == 0 && again.stderr.contains("token=\(token ?? "-")"), "\(again.stderr)")
        let clean = try Self.run(["clean", "--kubeconfig", config, "-s", "ks"])
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(clean.stderr.components(separatedBy: "removed ").count - 1 == 10, "\(clean.stderr)")
        let twice = try Self.run(["clean", "--kubeconfig", config, "-s", "ks"])
        #expect(twice.status == 0 && twice.stderr.components(separatedBy: ": not there").count - 1 == 10, "\(twice.stderr)")
    }

    @Test("a worker whose image cannot be pulled ends the wait with the reason")
    func imagePullFailure() throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let config = try server.kubeconfigFile()
        defer { try? FileManager.default.removeItem(atPath: config) }
        try server.putPod("kubeshark-worker-x", namespace: "default", ip: nil,
                          labels: ["app.kubernetes.io/name": "kubeshark", "app.kubernetes.io/instance": "kubeshark",
                                   "app.kubernetes.io/component": "worker"],
                          extraStatus: ["containerStatuses": [["name": "worker", "ready": false,
                                                                "state": ["waiting": ["reason": "ImagePullBackOff"]]]]])
        let r = try Self.run(["tap", "--kube", "--kubeconfig", config, "-r", "registry.invalid/x", "--ready-timeout", "10"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("pod default/kubeshark-worker-x: ImagePullBackOff: the image cannot be pulled"), "\(r.stderr)")
    }

    @Test("an RBAC denial during the apply ends tap with the API server's message")
    func forbidden() throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let config = try server.kubeconfigFile()
        defer { try? FileManager.default.removeItem(atPath: config) }
        _ = try server.control("POST", "/config", ["forbid": ["daemonsets"]])
        let r = try Self.run(["tap", "--kube", "--kubeconfig", config, "--ready-timeout", "5", "--no-proxy"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("tap --kube:") && r.stderr.contains("forbidden") && r.stderr.contains("daemonsets"), "\(r.stderr)")
        #expect(r.stderr.contains("applied Deployment/kubeshark-hub"), "what came before the denial was applied: \(r.stderr)")
    }

    @Test("a hub the scheduler cannot place ends the wait with the scheduler's message")
    func unschedulable() throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let config = try server.kubeconfigFile()
        defer { try? FileManager.default.removeItem(atPath: config) }
        try server.putPod("kubeshark-hub-x", namespace: "default", phase: "Pending", ip: nil,
                          labels: ["app.kubernetes.io/name": "kubeshark", "app.kubernetes.io/instance": "kubeshark",
                                   "app.kubernetes.io/component": "hub"],
                          extraStatus: ["conditions": [["type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                                        "message": "0/3 nodes are available: 3 Insufficient memory."]]])
        let r = try Self.run(["tap", "--kube", "--kubeconfig", config, "--ready-timeout", "10", "--no-proxy"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("pod default/kubeshark-hub-x cannot be scheduled: Unschedulable 0/3 nodes are available: 3 Insufficient memory."),
                "\(r.stderr)")
    }
}
