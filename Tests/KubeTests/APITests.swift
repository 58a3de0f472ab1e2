import Foundation
import Kube
import Testing

@Suite("API operations against the test API server")
struct APITests {
    @Test func listPodsPagesThroughContinueTokens() async throws {
        let server = try TestAPIServer()
        for i in 0..<7 { try server.putPod("web-\(i)", namespace: i < 5 ? "shop" : "other", ip: "10.0.0.\(i + 1)", labels: ["app": i % 2 == 0 ? "web" : "api"]) }
        try await withClient(server.config()) { client in
            let all = try await client.listPods(pageSize: 3)
            #expect(all.items.map(\.name) == ["web-5", "web-6", "web-0", "web-1", "web-2", "web-3", "web-4"])
            #expect(Int(all.resourceVersion) ?? 0 > 1000)
            let first = try await client.listPodsPage(namespace: "shop", limit: 2)
            #expect(first.items.count == 2)
            #expect(first.metadata.remainingItemCount == 3)
            let second = try await client.listPodsPage(namespace: "shop", limit: 2, continue: first.metadata.continue)
            #expect(second.items.map(\.name) == ["web-2", "web-3"])
            #expect(try await client.listPods(namespace: "shop", labelSelector: "app=web").items.map(\.name) == ["web-0", "web-2", "web-4"])
            #expect(try await client.listPods(fieldSelector: "metadata.name=web-6").items.map(\.namespace) == ["other"])
            // An expired continue token is a 410 Expired Status.
            try server.control("POST", "/compact")
            do {
                _ = try await client.listPodsPage(namespace: "shop", limit: 2, continue: first.metadata.continue)
                Issue.record("expired continue token accepted")
            } catch let error as KubeAPIError {
                #expect(error.isGone && error.reason == "Expired")
            }
        }
        let lists = try server.stats()["lists"] as? [[String: Any]] ?? []
        #expect(lists.prefix(3).map { $0["limit"] as? String } == ["3", "3", "3"])
        #expect(lists[1]["continue"] is String)
    }

    @Test func podModelReadsStatuses() async throws {
        let server = try TestAPIServer()
        try server.putPod("stuck", phase: "Pending", ip: nil, extraStatus: [
            "conditions": [["type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                            "message": "0/3 nodes are available: 3 Insufficient memory."]],
            "containerStatuses": [["name": "app", "ready": false, "restartCount": 0, "image": "x",
                                   "state": ["waiting": ["reason": "ImagePullBackOff", "message": "Back-off pulling image"]]]],
        ])
        try server.putPod("dual", ip: "10.0.0.9", extraStatus: [
            "podIPs": [["ip": "10.0.0.9"], ["ip": "fd00::9"]],
            "containerStatuses": [["name": "app", "ready": true, "state": ["running": ["startedAt": "2026-01-01T00:00:00Z"]]]],
        ])
        let pods = try await withClient(server.config()) { try await $0.listPods().items }
        let stuck = try #require(pods.first { $0.name == "stuck" })
        #expect(stuck.waitingReasons == ["ImagePullBackOff"])
        #expect(stuck.unschedulable?.reason == "Unschedulable")
        #expect(stuck.unschedulable?.message == "0/3 nodes are available: 3 Insufficient memory.")
        #expect(stuck.ips.isEmpty && !stuck.isReady)
        let dual = try #require(pods.first { $0.name == "dual" })
        #expect(dual.ips == ["10.0.0.9", "fd00::9"])
        #expect(dual.isReady && dual.phase == "Running" && dual.nodeName == "node-a" && !dual.uid.isEmpty)
    }

    @Test func rbacDenialIsSurfacedAsIs() async throws {
        let server = try TestAPIServer()
        try server.control("POST", "/config", ["forbid": ["pods"]])
        do {
            _ = try await withClient(server.config()) { try await $0.listPods() }
            Issue.record("forbidden list succeeded")
        } catch let error as KubeAPIError {
            #expect(error.code == 403 && error.reason == "Forbidden")
            #expect(error.message == #"pods is forbidden: User "system:serviceaccount:kubeshark:kubeshark" cannot list resource "pods" in API group "" at the cluster scope"#)
            #expect(error.description.hasPrefix("403 Forbidden: pods is forbidden"))
        }
    }

    /// One object of every kind the deployment uses, namespaced where the kind is.
    static let objects: [(yaml: String, path: String)] = [
        ("apiVersion: v1\nkind: Namespace\nmetadata: {name: kubeshark}", "/api/v1/namespaces/kubeshark"),
        ("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: ks, namespace: kubeshark}", "/api/v1/namespaces/kubeshark/serviceaccounts/ks"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ks-config}\ndata: {scope: '.*'}", "/api/v1/namespaces/default/configmaps/ks-config"),
        ("apiVersion: v1\nkind: Service\nmetadata: {name: hub, namespace: kubeshark}\nspec: {ports: [{port: 8898}]}", "/api/v1/namespaces/kubeshark/services/hub"),
        ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: hub, namespace: kubeshark}\nspec: {replicas: 1}", "/apis/apps/v1/namespaces/kubeshark/deployments/hub"),
        ("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: worker, namespace: kubeshark}", "/apis/apps/v1/namespaces/kubeshark/daemonsets/worker"),
        ("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: ks, namespace: kubeshark}", "/apis/rbac.authorization.k8s.io/v1/namespaces/kubeshark/roles/ks"),
        ("apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: ks, namespace: kubeshark}", "/apis/rbac.authorization.k8s.io/v1/namespaces/kubeshark/rolebindings/ks"),
        ("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: kubeshark}", "/apis/rbac.authorization.k8s.io/v1/clusterroles/kubeshark"),
        ("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: kubeshark}", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/kubeshark"),
    ]

    @Test func applyGetAndDeleteEveryKind() async throws {
        let server = try TestAPIServer()
        let objects = try KubeObject.documents(yaml: Self.objects.map(\.yaml).joined(separator: "\n---\n"))
        #expect(objects.count == Self.objects.count)
        try await withClient(server.config()) { client in
            for object in objects {
                let stored = try await client.apply(object)
                #expect(stored.kind == object.kind && stored.name == object.name)
                #expect(stored.string(at: "metadata.uid") != nil && stored.string(at: "metadata.resourceVersion") != nil)
                #expect(stored.description.contains(#""manager": "kubeshark""#) || stored.description.contains(#""manager":"kubeshark""#))
            }
            // Applying again updates in place: same uid, newer resourceVersion.
            let first = try #require(try await client.get(apiVersion: "apps/v1", kind: "Deployment", name: "hub", namespace: "kubeshark"))
            let again = try await client.apply(objects[4])
            #expect(again.string(at: "metadata.uid") == first.string(at: "metadata.uid"))
            #expect(again.string(at: "metadata.resourceVersion") != first.string(at: "metadata.resourceVersion"))
            // The ConfigMap had no namespace: it went to the configuration's.
            #expect(try await client.get(apiVersion: "v1", kind: "ConfigMap", name: "ks-config")?.namespace == "default")
            for object in objects { #expect(try await client.delete(object)) }
            // Already gone: not an error.
            #expect(try await client.delete(objects[0]) == false)
            #expect(try await client.get(apiVersion: "v1", kind: "Namespace", name: "kubeshark") == nil)
        }
        let stats = try server.stats()
        let applies = stats["applies"] as? [[String: Any]] ?? []
        #expect(applies.prefix(Self.objects.count).map { $0["path"] as? String } == Self.objects.map(\.path))
        #expect(applies.allSatisfy { $0["fieldManager"] as? String == "kubeshark" && $0["force"] as? String == "true" })
        let deletes = stats["deletes"] as? [[String: Any]] ?? []
        #expect(deletes.prefix(Self.objects.count).map { $0["path"] as? String } == Self.objects.map(\.path))
        #expect(deletes.allSatisfy { $0["propagationPolicy"] as? String == "Foreground" })
    }

    @Test func createConflictsAndUnknownKinds() async throws {
        let server = try TestAPIServer()
        let cm = try KubeObject(yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: ns1}")
        try await withClient(server.config()) { client in
            _ = try await client.create(cm)
            do {
                _ = try await client.create(cm)
                Issue.record("second create succeeded")
            } catch let error as KubeAPIError {
                #expect(error.code == 409 && error.reason == "AlreadyExists" && error.message == #"configmaps "c" already exists"#)
            }
            await #expect(throws: KubeConfigError.self) {
                try await client.apply(try KubeObject(yaml: "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}"))
            }
        }
        #expect(throws: KubeConfigError("ConfigMap object has no metadata.name")) {
            try KubeObject(yaml: "apiVersion: v1\nkind: ConfigMap\nmetadata: {}")
        }
    }

    @Test func oversizedAnswersAreRefused() async throws {
        let server = try TestAPIServer()
        for i in 0..<20 { try server.putPod("pod-\(i)") }
        let client = try KubeClient(config: server.config(), maxResponseBytes: 2000)
        do {
            _ = try await client.listPods()
            Issue.record("oversized list read")
        } catch let error as KubeTransportError {
            #expect(error.description.contains("larger than 2000 bytes"))
        }
        await client.shutdown()
    }
}
