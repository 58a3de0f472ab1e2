import Foundation

/// What `KubeClient.podEvents` delivers.
public enum PodEvent: Sendable {
    /// The complete set of pods, at the start and after every relist (410 Gone).
    case listed([Pod], resourceVersion: String)
    case added(Pod)
    case modified(Pod)
    case deleted(Pod)
    /// The watch moved to this resourceVersion with no change.
    case bookmark(resourceVersion: String)
}

/// How `podEvents` retries.
public struct PodEventOptions: Sendable {
    /// How long each watch connection asks the server to last (the server ends it, the client takes up again).
    public var watchTimeoutSeconds: Int
    /// The first wait after a failure; it doubles up to `maxRetryDelay` and resets after a success.
    public var retryDelay: Duration
    public var maxRetryDelay: Duration
    /// Page size of the lists.
    public var pageSize: Int

    public init(watchTimeoutSeconds: Int = 300, retryDelay: Duration = .milliseconds(500),
                maxRetryDelay: Duration = .seconds(30), pageSize: Int = 500) {
        self.watchTimeoutSeconds = watchTimeoutSeconds
        self.retryDelay = retryDelay
        self.maxRetryDelay = maxRetryDelay
        self.pageSize = pageSize
    }
}

/// List, then watch from the list's resourceVersion; on a dropped or ended watch,
/// watch again from the last resourceVersion seen (events or bookmarks); on 410
/// Gone, list again. Errors that retrying cannot cure (401, 403, 404, bad
/// answers) end the sequence; connection failures, 429 and 5xx are retried.
struct PodEventLoop: Sendable {
    let client: KubeClient
    let namespace: String?
    let labelSelector: String?
    let fieldSelector: String?
    let options: PodEventOptions

    func stream() -> AsyncThrowingStream<PodEvent, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    try await run(continuation)
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    static func retryable(_ error: any Error) -> Bool {
        if let api = error as? KubeAPIError { return api.code == 429 || api.code >= 500 }
        return (error as? KubeTransportError)?.connectionFailed == true
    }

    private func run(_ out: AsyncThrowingStream<PodEvent, any Error>.Continuation) async throws {
        var resourceVersion: String?
        var delay = options.retryDelay
        func backOff() async throws {
            try await Task.sleep(for: delay)
            delay = min(delay * 2, options.maxRetryDelay)
        }
        while !Task.isCancelled {
            if resourceVersion == nil {
                do {
                    let list = try await client.listPods(namespace: namespace, labelSelector: labelSelector,
                                                         fieldSelector: fieldSelector, pageSize: options.pageSize)
                    resourceVersion = list.resourceVersion
                    out.yield(.listed(list.items, resourceVersion: list.resourceVersion))
                    delay = options.retryDelay
                } catch where Self.retryable(error) {
                    try await backOff()
                    continue
                }
            }
            do {
                let events = client.watchPods(namespace: namespace, labelSelector: labelSelector, fieldSelector: fieldSelector,
                                              resourceVersion: resourceVersion, timeoutSeconds: options.watchTimeoutSeconds)
                for try await event in events {
                    delay = options.retryDelay
                    switch event {
                    case .added(let pod):
                        resourceVersion = pod.metadata.resourceVersion ?? resourceVersion
                        out.yield(.added(pod))
                    case .modified(let pod):
                        resourceVersion = pod.metadata.resourceVersion ?? resourceVersion
                        out.yield(.modified(pod))
                    case .deleted(let pod):
                        resourceVersion = pod.metadata.resourceVersion ?? resourceVersion
                        out.yield(.deleted(pod))
                    case .bookmark(let rv):
                        if !rv.isEmpty { resourceVersion = rv }
                        out.yield(.bookmark(resourceVersion: rv))
                    }
                }
                // The server ended the watch (timeoutSeconds): take up where it stopped.
            } catch let error as KubeAPIError where error.isGone {
                resourceVersion = nil
            } catch where Self.retryable(error) {
                try await backOff()
            }
        }
        throw CancellationError()
    }
}
