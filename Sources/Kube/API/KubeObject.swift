import Foundation
import Yams

/// Any Kubernetes object, kept as its JSON, with the identity that decides its
/// REST path (apiVersion, kind, name, namespace) read out of it.
public struct KubeObject: Sendable, CustomStringConvertible {
    /// The object's JSON.
    public var json: [UInt8]
    public let apiVersion: String
    public let kind: String
    public let name: String
    /// `metadata.namespace`, when the object names one.
    public let namespace: String?

    /// Reads an object from its JSON; it must have apiVersion, kind and metadata.name.
    public init(json: [UInt8]) throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any] else {
            throw KubeConfigError("object is not a JSON object")
        }
        try self.init(object, json: json)
    }

    private init(_ object: [String: Any], json: [UInt8]) throws {
        guard let apiVersion = object["apiVersion"] as? String, !apiVersion.isEmpty else {
            throw KubeConfigError("object has no apiVersion")
        }
        guard let kind = object["kind"] as? String, !kind.isEmpty else {
            throw KubeConfigError("object of apiVersion \(apiVersion) has no kind")
        }
        let metadata = object["metadata"] as? [String: Any]
        guard let name = metadata?["name"] as? String, !name.isEmpty else {
            throw KubeConfigError("\(kind) object has no metadata.name")
        }
        self.json = json
        self.apiVersion = apiVersion
        self.kind = kind
        self.name = name
        self.namespace = (metadata?["namespace"] as? String).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Reads one object from YAML (JSON is YAML too).
    public init(yaml: String) throws {
        let docs = try Self.documents(yaml: yaml)
        guard docs.count == 1 else { throw KubeConfigError("expected one YAML document, found \(docs.count)") }
        self = docs[0]
    }

    /// Every object of a multi-document YAML stream (`---` separated; empty documents skipped).
    public static func documents(yaml: String) throws -> [KubeObject] {
        var out: [KubeObject] = []
        do {
            for doc in try Yams.load_all(yaml: yaml) {
                if doc is NSNull { continue }
                guard let object = doc as? [String: Any] else { throw KubeConfigError("a YAML document is not a mapping") }
                let json = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                out.append(try KubeObject(object, json: Array(json)))
            }
        } catch let error as KubeConfigError {
            throw error
        } catch {
            throw KubeConfigError("not valid YAML: \(KubeconfigFile.oneLine(error))")
        }
        return out
    }

    /// Decodes the object into a typed model (`Pod`, `Namespace`, ...).
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: Data(json))
    }

    /// The value at a dotted path of keys (`metadata.resourceVersion`), when it is a string.
    public func string(at path: String) -> String? {
        guard let root = try? JSONSerialization.jsonObject(with: Data(json)) else { return nil }
        var value: Any = root
        for key in path.split(separator: ".") {
            guard let next = (value as? [String: Any])?[String(key)] else { return nil }
            value = next
        }
        return value as? String
    }

    /// The JSON text.
    public var description: String { String(decoding: json, as: UTF8.self) }
}

/// Where a kind of object lives in the REST API.
public struct ResourceType: Sendable, Equatable {
    /// "" for the core group.
    public var group: String
    public var version: String
    /// The plural resource name in paths (`daemonsets`).
    public var resource: String
    public var namespaced: Bool

    public init(group: String, version: String, resource: String, namespaced: Bool) {
        self.group = group
        self.version = version
        self.resource = resource
        self.namespaced = namespaced
    }

    /// The kinds this client knows, by kind name (resources are not discovered).
    public static let known: [String: (resource: String, namespaced: Bool)] = [
        "Namespace": ("namespaces", false),
        "Node": ("nodes", false),
        "Pod": ("pods", true),
        "Service": ("services", true),
        "Endpoints": ("endpoints", true),
        "ServiceAccount": ("serviceaccounts", true),
        "ConfigMap": ("configmaps", true),
        "Secret": ("secrets", true),
        "Deployment": ("deployments", true),
        "DaemonSet": ("daemonsets", true),
        "StatefulSet": ("statefulsets", true),
        "ReplicaSet": ("replicasets", true),
        "Role": ("roles", true),
        "RoleBinding": ("rolebindings", true),
        "ClusterRole": ("clusterroles", false),
        "ClusterRoleBinding": ("clusterrolebindings", false),
    ]

    /// The resource of `kind` in `apiVersion` (`v1`, `apps/v1`, `rbac.authorization.k8s.io/v1`).
    public static func of(apiVersion: String, kind: String) throws -> ResourceType {
        guard let entry = known[kind] else {
            throw KubeConfigError("kind \(kind) (\(apiVersion)) is not one this client knows: "
                                  + known.keys.sorted().joined(separator: ", "))
        }
        let parts = apiVersion.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (parts.count == 1 || parts.count == 2), parts.allSatisfy({ !$0.isEmpty }) else {
            throw KubeConfigError("apiVersion '\(apiVersion)' of \(kind) is not GROUP/VERSION or VERSION")
        }
        return ResourceType(group: parts.count == 2 ? parts[0] : "", version: parts.last!,
                            resource: entry.resource, namespaced: entry.namespaced)
    }

    /// The collection path (`/apis/apps/v1/namespaces/NS/daemonsets`), namespaced when the kind is.
    public func collectionPath(namespace: String?) -> String {
        let root = group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
        if namespaced, let namespace { return "\(root)/namespaces/\(PathSegment.escape(namespace))/\(resource)" }
        return "\(root)/\(resource)"
    }

    /// The path of one object.
    public func objectPath(namespace: String?, name: String) -> String {
        collectionPath(namespace: namespace) + "/" + PathSegment.escape(name)
    }
}

enum PathSegment {
    static func escape(_ s: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }
}
