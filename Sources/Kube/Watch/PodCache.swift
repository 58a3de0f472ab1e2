import Foundation

/// The cluster's pods as the API server has them, kept current by `podEvents`
/// (list, watch, resume, relist on 410): an informer's store for the hub.
public actor PodCache {
    private let client: KubeClient
    private let namespace: String?
    private let labelSelector: String?
    private let fieldSelector: String?
    private let options: PodEventOptions
    private var byKey: [String: Pod] = [:]
    private var task: Task<Void, Never>?
    private var subscribers: [UUID: AsyncStream<[Pod]>.Continuation] = [:]
    /// The resourceVersion the cache is at.
    public private(set) var resourceVersion: String?
    /// True once the first list arrived.
    public private(set) var isSynced = false
    /// How many full lists it has taken (1 + relists after 410 Gone).
    public private(set) var lists = 0
    /// The error that stopped it (401, 403, ...), nil while it runs.
    public private(set) var failure: (any Error)?

    public init(client: KubeClient, namespace: String? = nil, labelSelector: String? = nil, fieldSelector: String? = nil,
                options: PodEventOptions = PodEventOptions()) {
        self.client = client
        self.namespace = namespace
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.options = options
    }

    /// Starts following the pods (once).
    public func start() {
        guard task == nil else { return }
        let events = client.podEvents(namespace: namespace, labelSelector: labelSelector, fieldSelector: fieldSelector,
                                      options: options)
        task = Task { [weak self] in
            do {
                for try await event in events { await self?.apply(event) }
            } catch is CancellationError {
            } catch {
                await self?.fail(error)
            }
        }
    }

    /// Stops following; the pods stay as they were.
    public func stop() {
        task?.cancel()
        task = nil
        for s in subscribers.values { s.finish() }
        subscribers = [:]
    }

    /// The current pods, sorted by namespace and name.
    public var pods: [Pod] {
        byKey.values.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
    }

    /// The current pods now and after every change (only the newest set is kept for a slow reader).
    public func updates() -> AsyncStream<[Pod]> {
        let (stream, continuation) = AsyncStream.makeStream(of: [Pod].self, bufferingPolicy: .bufferingNewest(1))
        let id = UUID()
        subscribers[id] = continuation
        if isSynced { continuation.yield(pods) }
        continuation.onTermination = { [weak self] _ in Task { await self?.unsubscribe(id) } }
        return stream
    }

    private func unsubscribe(_ id: UUID) { subscribers[id] = nil }

    private static func key(_ pod: Pod) -> String { pod.namespace + "/" + pod.name }

    private func apply(_ event: PodEvent) {
        switch event {
        case .listed(let items, let rv):
            byKey = Dictionary(items.map { (Self.key($0), $0) }, uniquingKeysWith: { $1 })
            resourceVersion = rv
            isSynced = true
            lists += 1
        case .added(let pod), .modified(let pod):
            byKey[Self.key(pod)] = pod
            resourceVersion = pod.metadata.resourceVersion ?? resourceVersion
        case .deleted(let pod):
            byKey[Self.key(pod)] = nil
            resourceVersion = pod.metadata.resourceVersion ?? resourceVersion
        case .bookmark(let rv):
            if !rv.isEmpty { resourceVersion = rv }
            return
        }
        let snapshot = pods
        for s in subscribers.values { s.yield(snapshot) }
    }

    private func fail(_ error: any Error) {
        failure = error
        for s in subscribers.values { s.finish() }
        subscribers = [:]
    }
}
