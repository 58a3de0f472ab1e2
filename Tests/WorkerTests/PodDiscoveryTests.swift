import Foundation
import TestKit
import Testing

@testable import Worker

/// Pods on this machine: network namespaces named like pods, and Kubeshark's scoping.
@Suite("Local pods")
struct PodDiscoveryTests {
    static let pods = [
        LocalPod(netns: "shop.web-1", name: "web-1", namespace: "shop"),
        LocalPod(netns: "shop.db-0", name: "db-0", namespace: "shop"),
        LocalPod(netns: "kube-system.coredns-5d", name: "coredns-5d", namespace: "kube-system"),
        LocalPod(netns: "lonely", name: "lonely", namespace: "default"),
    ]

    @Test("namespace names map to namespace/pod, and a pods file overrides them")
    func naming() {
        #expect(LocalPods.named("shop.web-1", nil) == LocalPod(netns: "shop.web-1", name: "web-1", namespace: "shop"))
        #expect(LocalPods.named("web.v2.canary", nil).name == "v2.canary")
        #expect(LocalPods.named("lonely", nil).namespace == "default")
        #expect(LocalPods.named(".hidden", nil).name == ".hidden")
        let o = LocalPods.Override(namespace: "prod", name: "api-7f", labels: ["app": "api"])
        let pod = LocalPods.named("ns1", o)
        #expect(pod.namespace == "prod" && pod.name == "api-7f" && pod.labels == ["app": "api"])
    }

    @Test("scope: regex anywhere in the name, namespaces (none = all), excluded namespaces")
    func scoping() throws {
        func names(_ scope: PodScope) -> [String] { scope.targets(Self.pods).map(\.name) }
        #expect(names(PodScope()) == ["web-1", "db-0", "coredns-5d", "lonely"])
        #expect(names(PodScope(podRegex: "web|db")) == ["web-1", "db-0"])
        #expect(names(PodScope(podRegex: "^db")) == ["db-0"])
        #expect(names(PodScope(namespaces: ["shop"])) == ["web-1", "db-0"])
        #expect(names(PodScope(excludedNamespaces: ["kube-system"])) == ["web-1", "db-0", "lonely"])
        #expect(names(PodScope(podRegex: "o", namespaces: ["shop", "kube-system"], excludedNamespaces: ["shop"])) == ["coredns-5d"])
        #expect(throws: DiscoveryError.self) { try PodScope(podRegex: "web[").validate() }
    }

    @Test("a real namespace pod is found with its address and host-side interface",
          .enabled(if: getuid() == 0, "needs root for network namespaces"))
    func discoversRealNamespaces() throws {
        let pod = try TestPod(tag: "disc", subnet: 42)
        defer { pod.remove() }
        let found = try LocalPods.discover().first { $0.netns == pod.namespace }
        let local = try #require(found)
        #expect(local.addresses == [pod.podAddress])
        #expect(local.hostInterfaces == [pod.hostInterface])
        #expect(local.namespace == "default" && local.name == pod.namespace)
    }
}
