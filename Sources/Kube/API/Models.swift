import Foundation

/// `metadata` of an object (the fields this client reads).
public struct ObjectMeta: Codable, Sendable, Equatable {
    public var name: String?
    public var namespace: String?
    public var uid: String?
    public var resourceVersion: String?
    public var labels: [String: String]?
    public var annotations: [String: String]?
    public var creationTimestamp: String?
    public var deletionTimestamp: String?

    public init(name: String? = nil, namespace: String? = nil, uid: String? = nil, resourceVersion: String? = nil,
                labels: [String: String]? = nil, annotations: [String: String]? = nil) {
        self.name = name
        self.namespace = namespace
        self.uid = uid
        self.resourceVersion = resourceVersion
        self.labels = labels
        self.annotations = annotations
    }
}

/// `metadata` of a list: where it stands and where the next page starts.
public struct ListMeta: Codable, Sendable, Equatable {
    public var resourceVersion: String?
    /// The token for the next page; nil or empty on the last one.
    public var `continue`: String?
    public var remainingItemCount: Int?
}

/// A list answer (`PodList`, `NamespaceList`, ...).
public struct ObjectList<Item: Codable & Sendable>: Codable, Sendable {
    public var metadata: ListMeta
    public var items: [Item]
}

/// A Kubernetes `Status`: the body of every error answer and of watch ERROR events.
public struct Status: Codable, Sendable, Equatable {
    public var kind: String?
    public var apiVersion: String?
    /// "Success" or "Failure".
    public var status: String?
    public var message: String?
    public var reason: String?
    public var code: Int?

    public init(kind: String? = "Status", apiVersion: String? = "v1", status: String? = nil, message: String? = nil,
                reason: String? = nil, code: Int? = nil) {
        self.kind = kind
        self.apiVersion = apiVersion
        self.status = status
        self.message = message
        self.reason = reason
        self.code = code
    }
}

/// A namespace.
public struct Namespace: Codable, Sendable, Equatable {
    public struct NamespaceStatus: Codable, Sendable, Equatable { public var phase: String? }
    public var metadata: ObjectMeta
    public var status: NamespaceStatus?
    /// The namespace's name.
    public var name: String { metadata.name ?? "" }
}

/// A pod, with the fields the tap needs to target it and to explain why it does not run.
public struct Pod: Codable, Sendable, Equatable {
    public var metadata: ObjectMeta
    public var spec: PodSpec?
    public var status: PodStatus?

    public init(metadata: ObjectMeta, spec: PodSpec? = nil, status: PodStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    public var name: String { metadata.name ?? "" }
    public var namespace: String { metadata.namespace ?? "" }
    public var uid: String { metadata.uid ?? "" }
    public var labels: [String: String] { metadata.labels ?? [:] }
    public var nodeName: String? { spec?.nodeName }
    /// `status.phase`: Pending, Running, Succeeded, Failed, Unknown.
    public var phase: String? { status?.phase }
    public var hostNetwork: Bool { spec?.hostNetwork ?? false }
    /// Every address of the pod (`status.podIPs`, or `status.podIP` from older servers), without repeats.
    public var ips: [String] {
        var out: [String] = []
        for ip in (status?.podIPs?.map(\.ip) ?? []) + [status?.podIP].compactMap({ $0 }) where !ip.isEmpty && !out.contains(ip) {
            out.append(ip)
        }
        return out
    }
    /// True when the pod is being deleted (it keeps running until its grace period ends).
    public var isTerminating: Bool { metadata.deletionTimestamp != nil }
    /// The waiting reasons of its containers (init containers first): ImagePullBackOff, ErrImagePull, CrashLoopBackOff, ...
    public var waitingReasons: [String] {
        ((status?.initContainerStatuses ?? []) + (status?.containerStatuses ?? [])).compactMap { $0.state?.waiting?.reason }
    }
    /// The PodScheduled=False condition's reason and message (e.g. Unschedulable), when the scheduler could not place it.
    public var unschedulable: PodCondition? {
        status?.conditions?.first { $0.type == "PodScheduled" && $0.status == "False" }
    }
    /// True when every container reports ready.
    public var isReady: Bool {
        guard let statuses = status?.containerStatuses, !statuses.isEmpty else { return false }
        return statuses.allSatisfy(\.ready)
    }
}

/// `spec` of a pod (the fields the tap reads; the names are Kubernetes').
public struct PodSpec: Codable, Sendable, Equatable {
    public struct Container: Codable, Sendable, Equatable {
        public var name: String
        public var image: String?
    }
    public var nodeName: String?
    public var hostNetwork: Bool?
    public var containers: [Container]?

    public init(nodeName: String? = nil, hostNetwork: Bool? = nil, containers: [Container]? = nil) {
        self.nodeName = nodeName
        self.hostNetwork = hostNetwork
        self.containers = containers
    }
}

/// `status` of a pod: phase, addresses, conditions and container states.
public struct PodStatus: Codable, Sendable, Equatable {
    public struct PodIP: Codable, Sendable, Equatable { public var ip: String }
    public var phase: String?
    public var podIP: String?
    public var podIPs: [PodIP]?
    public var hostIP: String?
    public var conditions: [PodCondition]?
    public var containerStatuses: [ContainerStatus]?
    public var initContainerStatuses: [ContainerStatus]?

    public init(phase: String? = nil, podIP: String? = nil, podIPs: [String]? = nil) {
        self.phase = phase
        self.podIP = podIP
        self.podIPs = podIPs?.map { PodIP(ip: $0) }
    }
}

/// One of `status.conditions` (PodScheduled, Initialized, ContainersReady, Ready).
public struct PodCondition: Codable, Sendable, Equatable {
    public var type: String
    public var status: String
    public var reason: String?
    public var message: String?
}

/// One of `status.containerStatuses`: readiness and the waiting/running/terminated state.
public struct ContainerStatus: Codable, Sendable, Equatable {
    public struct State: Codable, Sendable, Equatable {
        public struct Waiting: Codable, Sendable, Equatable { public var reason: String?; public var message: String? }
        public struct Terminated: Codable, Sendable, Equatable { public var reason: String?; public var exitCode: Int? }
        public struct Running: Codable, Sendable, Equatable { public var startedAt: String? }
        public var waiting: Waiting?
        public var running: Running?
        public var terminated: Terminated?
    }
    public var name: String
    public var ready: Bool
    public var restartCount: Int?
    public var image: String?
    public var state: State?
}
