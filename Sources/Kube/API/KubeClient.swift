import Foundation
import AsyncHTTPClient
import NIOHTTP1
import NIOSSL

/// A client of one Kubernetes API server: namespaces, pods (lists and watches)
/// and any object by server-side apply, create, get and delete.
///
/// Call `shutdown()` when done: it closes the connections.
public final class KubeClient: Sendable {
    /// The configuration it talks with.
    public let config: KubeConfig
    let transport: KubeTransport

    /// - Parameters:
    ///   - requestTimeout: how long a request may wait for the answer's head, and a read may stall.
    ///   - watchIdleTimeout: how long a watch may stay silent before it counts as lost (and
    ///     `podEvents` resumes it); keep it above the watches' `timeoutSeconds`.
    ///   - maxResponseBytes: the largest list or object read (a larger answer is an error, not an allocation).
    ///   - maxWatchEventBytes: the longest watch event line (an object is at most ~1.5 MiB in etcd).
    public init(config: KubeConfig, requestTimeout: Duration = .seconds(30), watchIdleTimeout: Duration = .seconds(330),
                maxResponseBytes: Int = 64 << 20, maxWatchEventBytes: Int = 16 << 20) throws {
        self.config = config
        transport = try KubeTransport(config: config, requestTimeout: requestTimeout, watchIdleTimeout: watchIdleTimeout,
                                      maxResponseBytes: maxResponseBytes, maxWatchEventBytes: maxWatchEventBytes)
    }

    /// Closes the connections.
    public func shutdown() async { await transport.shutdown() }

    /// Sends a request through the API server as given (a service proxy path, say)
    /// and returns the answer unread, whatever its status.
    public func forward(method: String, path: String, rawQuery: String?, headers: [(String, String)],
                        body: [UInt8]?) async throws -> HTTPClientResponse {
        try await transport.forward(HTTPMethod(rawValue: method), path, rawQuery: rawQuery, headers: headers, body: body)
    }

    /// The API server's base URL (https), the TLS configuration and the Authorization
    /// header this client uses: for a WebSocket through the API server.
    public func credentials() async throws -> (base: String, tls: TLSConfiguration, authorization: String?) {
        try await transport.credentials()
    }

    /// How many times the exec credential plugin has run (it is cached until its token expires).
    public var execPluginRuns: Int { get async { await transport.auth.execRuns } }

    // MARK: Namespaces and pods

    /// Every namespace.
    public func namespaces() async throws -> [Namespace] {
        try await listAll(path: "/api/v1/namespaces", query: [], limit: 500, as: Namespace.self).items
    }

    /// One page of pods: of `namespace`, or of all namespaces when nil.
    public func listPodsPage(namespace: String? = nil, labelSelector: String? = nil, fieldSelector: String? = nil,
                             limit: Int? = nil, continue token: String? = nil) async throws -> ObjectList<Pod> {
        var query = Self.selectors(labelSelector, fieldSelector)
        if let limit { query.append(("limit", String(limit))) }
        if let token, !token.isEmpty { query.append(("continue", token)) }
        return try decode(try await transport.send(.GET, Self.podsPath(namespace), query: query))
    }

    /// All pods (following `continue` tokens page by page) and the list's resourceVersion,
    /// where a watch takes up.
    public func listPods(namespace: String? = nil, labelSelector: String? = nil, fieldSelector: String? = nil,
                         pageSize: Int = 500) async throws -> (items: [Pod], resourceVersion: String) {
        try await listAll(path: Self.podsPath(namespace), query: Self.selectors(labelSelector, fieldSelector),
                          limit: pageSize, as: Pod.self)
    }

    /// One watch connection on pods from `resourceVersion`: ADDED/MODIFIED/DELETED/BOOKMARK
    /// events until the server ends the watch (after `timeoutSeconds`) or it breaks. An
    /// ERROR event ends the sequence with its `Status` as a `KubeAPIError` (code 410 when
    /// the resourceVersion is too old, the same as an HTTP 410 answer).
    public func watchPods(namespace: String? = nil, labelSelector: String? = nil, fieldSelector: String? = nil,
                          resourceVersion: String?, timeoutSeconds: Int = 300) -> AsyncThrowingStream<WatchEvent<Pod>, any Error> {
        var query = Self.selectors(labelSelector, fieldSelector)
        query += [("watch", "true"), ("allowWatchBookmarks", "true"), ("timeoutSeconds", String(timeoutSeconds))]
        if let resourceVersion, !resourceVersion.isEmpty { query.append(("resourceVersion", resourceVersion)) }
        return WatchStream<Pod>.open(transport: transport, path: Self.podsPath(namespace), query: query)
    }

    /// Pods as a lasting sequence: the full list first (`.listed`), then changes; a dropped
    /// watch is resumed from the last resourceVersion seen, and 410 Gone lists again.
    public func podEvents(namespace: String? = nil, labelSelector: String? = nil, fieldSelector: String? = nil,
                          options: PodEventOptions = PodEventOptions()) -> AsyncThrowingStream<PodEvent, any Error> {
        PodEventLoop(client: self, namespace: namespace, labelSelector: labelSelector, fieldSelector: fieldSelector,
                     options: options).stream()
    }

    static func podsPath(_ namespace: String?) -> String {
        namespace.map { "/api/v1/namespaces/\(PathSegment.escape($0))/pods" } ?? "/api/v1/pods"
    }

    static func selectors(_ label: String?, _ field: String?) -> [(String, String)] {
        var query: [(String, String)] = []
        if let label, !label.isEmpty { query.append(("labelSelector", label)) }
        if let field, !field.isEmpty { query.append(("fieldSelector", field)) }
        return query
    }

    private func listAll<T: Codable & Sendable>(path: String, query: [(String, String)], limit: Int,
                                                as: T.Type) async throws -> (items: [T], resourceVersion: String) {
        var items: [T] = []
        var token: String?
        var pages = 0
        while true {
            var q = query + [("limit", String(limit))]
            if let token { q.append(("continue", token)) }
            let page: ObjectList<T> = try decode(try await transport.send(.GET, path, query: q))
            items += page.items
            pages += 1
            guard let next = page.metadata.continue, !next.isEmpty else {
                return (items, page.metadata.resourceVersion ?? "")
            }
            guard pages < 100_000 else { throw KubeTransportError("list \(path) did not end after \(pages) pages") }
            token = next
        }
    }

    func decode<T: Decodable>(_ bytes: [UInt8]) throws -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(bytes)) } catch {
            throw KubeTransportError("the API server answered with JSON that is not a \(T.self): \(KubeconfigFile.oneLine(error))")
        }
    }

    // MARK: Any object

    /// The namespace an object goes to: its own, else the configuration's.
    func namespace(of object: KubeObject, _ type: ResourceType) -> String? {
        type.namespaced ? (object.namespace ?? config.namespace) : nil
    }

    /// Server-side apply (`PATCH application/apply-patch+yaml`, `fieldManager`, `force`):
    /// creates the object or updates the fields this manager owns. Returns the object as stored.
    @discardableResult
    public func apply(_ object: KubeObject, fieldManager: String = "kubeshark", force: Bool = true) async throws -> KubeObject {
        let type = try ResourceType.of(apiVersion: object.apiVersion, kind: object.kind)
        let path = type.objectPath(namespace: namespace(of: object, type), name: object.name)
        var query = [("fieldManager", fieldManager)]
        if force { query.append(("force", "true")) }
        let body = try await transport.send(.PATCH, path, query: query, body: object.json,
                                            contentType: "application/apply-patch+yaml")
        return try KubeObject(json: body)
    }

    /// Creates the object (409 Conflict when it exists).
    @discardableResult
    public func create(_ object: KubeObject) async throws -> KubeObject {
        let type = try ResourceType.of(apiVersion: object.apiVersion, kind: object.kind)
        let body = try await transport.send(.POST, type.collectionPath(namespace: namespace(of: object, type)), body: object.json)
        return try KubeObject(json: body)
    }

    /// The object as stored, nil when it does not exist.
    public func get(apiVersion: String, kind: String, name: String, namespace: String? = nil) async throws -> KubeObject? {
        let type = try ResourceType.of(apiVersion: apiVersion, kind: kind)
        let path = type.objectPath(namespace: type.namespaced ? (namespace ?? config.namespace) : nil, name: name)
        do {
            return try KubeObject(json: try await transport.send(.GET, path))
        } catch let error as KubeAPIError where error.isNotFound {
            return nil
        }
    }

    /// Merges `patch` (JSON) into the object (`PATCH application/merge-patch+json`, RFC 7386: maps
    /// merge, `null` removes a key); the fields it sets belong to `fieldManager`, so a later
    /// server-side apply by another manager keeps them. Returns the object as stored; 404 throws.
    @discardableResult
    public func mergePatch(apiVersion: String, kind: String, name: String, namespace: String? = nil, patch: [UInt8],
                           fieldManager: String = "kubeshark") async throws -> KubeObject {
        let type = try ResourceType.of(apiVersion: apiVersion, kind: kind)
        let path = type.objectPath(namespace: type.namespaced ? (namespace ?? config.namespace) : nil, name: name)
        let body = try await transport.send(.PATCH, path, query: [("fieldManager", fieldManager)], body: patch,
                                            contentType: "application/merge-patch+json")
        return try KubeObject(json: body)
    }

    /// Deletes the object with foreground propagation (its dependents go first).
    /// Returns false when it was already gone (404).
    @discardableResult
    public func delete(apiVersion: String, kind: String, name: String, namespace: String? = nil) async throws -> Bool {
        let type = try ResourceType.of(apiVersion: apiVersion, kind: kind)
        let path = type.objectPath(namespace: type.namespaced ? (namespace ?? config.namespace) : nil, name: name)
        let options = #"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground"}"#
        do {
            _ = try await transport.send(.DELETE, path, query: [("propagationPolicy", "Foreground")], body: Array(options.utf8))
            return true
        } catch let error as KubeAPIError where error.isNotFound {
            return false
        }
    }

    /// Deletes `object` (by its identity). Returns false when it was already gone.
    @discardableResult
    public func delete(_ object: KubeObject) async throws -> Bool {
        try await delete(apiVersion: object.apiVersion, kind: object.kind, name: object.name, namespace: object.namespace)
    }
}
