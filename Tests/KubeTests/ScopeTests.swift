import Foundation
import Kube
import Testing

@Suite("Scoping on the cluster's pods")
struct ScopeTests {
    /// A cluster with pods in three namespaces, two nodes and every state that matters.
    func populate(_ server: TestAPIServer) throws {
        try server.putPod("web-7d9f", namespace: "shop", node: "node-a", ip: "10.0.0.1")
        try server.putPod("web-8e1a", namespace: "shop", node: "node-b", ip: "10.0.0.2")
        try server.putPod("api-1", namespace: "shop", node: "node-a", ip: "10.0.0.3")
        try server.putPod("web-pending", namespace: "shop", node: "node-b", phase: "Pending", ip: nil)
        try server.putPod("web-done", namespace: "shop", node: "node-b", phase: "Succeeded", ip: "10.0.0.4")
        try server.putPod("web-host", namespace: "shop", node: "node-a", ip: "192.168.1.10", hostNetwork: true)
        try server.putPod("webhook", namespace: "kube-system", node: "node-a", ip: "10.0.0.5")
        try server.putPod("frontend-web", namespace: "blog", node: "node-b", ip: "10.0.0.6")
    }

    @Test func regexNamespacesExclusionsAndRunningOnly() async throws {
        let server = try TestAPIServer()
        try populate(server)
        let pods = try await withClient(server.config()) { try await $0.listPods().items }
        func names(_ scope: ClusterScope) -> [String] { scope.targets(pods).map { "\($0.namespace)/\($0.name)" } }

        #expect(names(try ClusterScope()) == ["blog/frontend-web", "kube-system/webhook", "shop/api-1", "shop/web-7d9f", "shop/web-8e1a"])
        // The regex matches anywhere in the name.
        #expect(names(try ClusterScope(podRegex: "web")) == ["blog/frontend-web", "kube-system/webhook", "shop/web-7d9f", "shop/web-8e1a"])
        #expect(names(try ClusterScope(podRegex: "^web-[0-9a-f]+$")) == ["shop/web-7d9f", "shop/web-8e1a"])
        #expect(names(try ClusterScope(podRegex: "web", namespaces: ["shop", "blog"])) == ["blog/frontend-web", "shop/web-7d9f", "shop/web-8e1a"])
        #expect(names(try ClusterScope(podRegex: "web", excludedNamespaces: ["kube-system"])) == ["blog/frontend-web", "shop/web-7d9f", "shop/web-8e1a"])
        let byNode = try ClusterScope(namespaces: ["shop"]).targetsByNode(pods)
        #expect(byNode["node-a"]?.map(\.name) == ["api-1", "web-7d9f"])
        #expect(byNode["node-a"]?.map(\.ips) == [["10.0.0.3"], ["10.0.0.1"]])
        #expect(byNode["node-b"]?.map(\.name) == ["web-8e1a"])
        let excluded = try ClusterScope(namespaces: ["shop"]).excluded(pods).map { "\($0.pod.name): \($0.reason)" }
        #expect(excluded.sorted() == ["web-done: phase Succeeded", "web-host: hostNetwork (shares the node's address)", "web-pending: phase Pending"])
        #expect(throws: KubeConfigError.self) { try ClusterScope(podRegex: "web(") }
    }

    @Test func aLatePodIsTargetedThroughTheCache() async throws {
        let server = try TestAPIServer()
        try populate(server)
        let scope = try ClusterScope(podRegex: "^web-", namespaces: ["shop"])
        try await withClient(server.config()) { client in
            let cache = PodCache(client: client, options: PodEventOptions(watchTimeoutSeconds: 30, retryDelay: .milliseconds(100)))
            await cache.start()
            #expect(await eventually { await cache.isSynced })
            #expect(scope.targets(await cache.pods).map(\.name) == ["web-7d9f", "web-8e1a"])
            // Created later, first Pending without an IP, then Running: targeted once it runs.
            try server.putPod("web-late", namespace: "shop", node: "node-b", phase: "Pending", ip: nil)
            #expect(await eventually { await cache.pods.contains { $0.name == "web-late" } })
            #expect(scope.targets(await cache.pods).map(\.name) == ["web-7d9f", "web-8e1a"])
            try server.putPod("web-late", namespace: "shop", node: "node-b", ip: "10.0.0.7")
            #expect(await eventually { scope.targetsByNode(await cache.pods)["node-b"]?.map(\.name) == ["web-8e1a", "web-late"] })
            #expect(scope.targetsByNode(await cache.pods)["node-b"]?.last?.ips == ["10.0.0.7"])
            // Deleted: no longer a target.
            try server.deletePod("web-7d9f", namespace: "shop")
            #expect(await eventually { scope.targetsByNode(await cache.pods)["node-a"] == nil })
            await cache.stop()
        }
    }
}
