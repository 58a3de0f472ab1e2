import Foundation

/// A pod a worker captures: what the hub sends the worker of its node.
///
/// Encoded with `JSONEncoder` it has the keys the worker's `PUT /api/targets` reads
/// (`name`, `namespace`, `labels`, `ips`).
public struct TargetPod: Sendable, Equatable, Codable {
    public var name: String
    public var namespace: String
    public var uid: String
    public var nodeName: String
    public var ips: [String]
    public var labels: [String: String]
}

/// Which of the cluster's pods a tap targets, as Kubeshark scopes them: a regex
/// matched anywhere in the pod name (default `.*`), namespaces (none = all),
/// excluded namespaces. The regex and namespace rules are those of the worker's
/// `PodScope` for local pods.
///
/// Only pods that can be captured are targets: phase Running, not being
/// deleted, scheduled on a node, with at least one IP, and not `hostNetwork`.
/// A hostNetwork pod has the node's own address, so a filter on it would take
/// in every host-network pod and the node itself; such pods are left out (they
/// show in `excluded` with the reason).
public struct ClusterScope: Sendable, Equatable {
    public var podRegex: String
    public var namespaces: [String]
    public var excludedNamespaces: [String]

    /// Fails with a one-line reason when the regex does not compile.
    public init(podRegex: String = ".*", namespaces: [String] = [], excludedNamespaces: [String] = []) throws {
        do { _ = try Regex(podRegex) } catch {
            throw KubeConfigError("pod regex '\(podRegex)' is not a regular expression: \(error)")
        }
        self.podRegex = podRegex
        self.namespaces = namespaces
        self.excludedNamespaces = excludedNamespaces
    }

    /// True when the pod's name and namespace are in scope (whatever its state).
    public func matches(_ pod: Pod) -> Bool {
        guard let regex = try? Regex(podRegex) else { return false }
        return matches(pod, regex)
    }

    private func matches(_ pod: Pod, _ regex: Regex<AnyRegexOutput>) -> Bool {
        if !namespaces.isEmpty && !namespaces.contains(pod.namespace) { return false }
        if excludedNamespaces.contains(pod.namespace) { return false }
        return pod.name.contains(regex)
    }

    /// Why a pod in scope is not captured, nil when it is.
    public static func notCapturable(_ pod: Pod) -> String? {
        if pod.phase != "Running" { return "phase \(pod.phase ?? "unknown")" }
        if pod.isTerminating { return "terminating" }
        if (pod.nodeName ?? "").isEmpty { return "not scheduled" }
        if pod.hostNetwork { return "hostNetwork (shares the node's address)" }
        if pod.ips.isEmpty { return "no IP yet" }
        return nil
    }

    /// The targeted pods, sorted by namespace and name.
    public func targets(_ pods: [Pod]) -> [TargetPod] {
        guard let regex = try? Regex(podRegex) else { return [] }
        return pods.filter { matches($0, regex) && Self.notCapturable($0) == nil }
            .sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
            .map { TargetPod(name: $0.name, namespace: $0.namespace, uid: $0.uid, nodeName: $0.nodeName ?? "",
                             ips: $0.ips, labels: $0.labels) }
    }

    /// The targeted pods of each node: what the hub sends each worker.
    public func targetsByNode(_ pods: [Pod]) -> [String: [TargetPod]] {
        Dictionary(grouping: targets(pods), by: \.nodeName)
    }

    /// Pods in scope by name and namespace that are not captured, with the reason
    /// (for `--dryRun` and the CLI's waiting messages).
    public func excluded(_ pods: [Pod]) -> [(pod: Pod, reason: String)] {
        guard let regex = try? Regex(podRegex) else { return [] }
        return pods.compactMap { pod in
            guard matches(pod, regex), let reason = Self.notCapturable(pod) else { return nil }
            return (pod, reason)
        }
    }
}
