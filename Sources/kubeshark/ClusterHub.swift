import Foundation
import Host
import Kube
import Worker

/// What `hub --kube` follows in a cluster: every pod (a watch through the API
/// server), the deployment's ConfigMap (the scope), and from them the targets
/// of each node's worker; the ConfigMap also holds the scripts (`ScriptsConfigMap`).
final class ClusterTargets: TargetSource {
    let client: KubeClient
    let cache: PodCache
    let releaseNamespace: String

    init(client: KubeClient, releaseNamespace: String) {
        self.client = client
        self.releaseNamespace = releaseNamespace
        cache = PodCache(client: client)
    }

    func start() async { await cache.start() }

    func stop() async {
        await cache.stop()
        await client.shutdown()
    }

    /// The scope's pods on each node, once the first list arrived; worker names are node names.
    func targetsByWorker(scope: PodScope) async -> [String: [LocalPod]]? {
        guard await cache.isSynced,
              let cluster = try? ClusterScope(podRegex: scope.podRegex, namespaces: scope.namespaces,
                                              excludedNamespaces: scope.excludedNamespaces)
        else { return nil }
        return cluster.targetsByNode(await cache.pods).mapValues { pods in
            pods.map { LocalPod(netns: "", name: $0.name, namespace: $0.namespace, labels: $0.labels, addresses: $0.ips) }
        }
    }

    /// Why the pod watch stopped (401, 403...), if it did.
    var failure: String? {
        get async { await cache.failure.map { "\($0)" } }
    }

    /// The deployment's ConfigMap (`kubeshark-config-map`), nil when there is none.
    func configMap() async throws -> KubeObject? {
        try await client.get(apiVersion: "v1", kind: "ConfigMap", name: ScriptsConfigMap.name, namespace: releaseNamespace)
    }

    /// The scope in the deployment's ConfigMap.
    static func scope(in map: KubeObject) throws -> PodScope {
        func list(_ key: String) -> [String] {
            (map.string(at: "data.\(key)") ?? "").split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
        }
        let regex = map.string(at: "data.POD_REGEX").flatMap { $0.isEmpty ? nil : $0 } ?? ".*"
        let scope = PodScope(podRegex: regex, namespaces: list("NAMESPACES"), excludedNamespaces: list("EXCLUDED_NAMESPACES"))
        try scope.validate()
        return scope
    }
}
