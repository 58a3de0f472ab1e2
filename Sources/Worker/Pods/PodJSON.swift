import Host

/// Pods and scopes as the APIs carry them (`/api/pods`, `/api/node/pods`,
/// `/api/targets`, the hub's `/api/scope`).
extension LocalPod {
    /// `{"name", "namespace", "netns", "labels", "ips", "interfaces"}`.
    public var json: JSONValue {
        .object([
            JSONMember(key: "name", value: .string(name)),
            JSONMember(key: "namespace", value: .string(namespace)),
            JSONMember(key: "netns", value: .string(netns)),
            JSONMember(key: "labels", value: .object(labels.sorted { $0.key < $1.key }.map {
                JSONMember(key: $0.key, value: .string($0.value))
            })),
            JSONMember(key: "ips", value: .array(addresses.map { .string($0) })),
            JSONMember(key: "interfaces", value: .array(hostInterfaces.map { .string($0) })),
        ])
    }

    /// A pod from its JSON; nil without a name and a namespace. Other fields may be missing.
    public init?(json: JSONValue) {
        guard case .string(let name)? = json["name"], case .string(let namespace)? = json["namespace"],
              !name.isEmpty, !namespace.isEmpty
        else { return nil }
        func strings(_ key: String) -> [String] {
            guard case .array(let items)? = json[key] else { return [] }
            return items.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
        }
        var labels: [String: String] = [:]
        if case .object(let members)? = json["labels"] {
            for m in members { if case .string(let v) = m.value { labels[m.key] = v } }
        }
        var netns = ""
        if case .string(let n)? = json["netns"] { netns = n }
        self.init(netns: netns, name: name, namespace: namespace, labels: labels,
                  addresses: strings("ips"), hostInterfaces: strings("interfaces"))
    }

    /// `[pod]` from `{"pods": [...]}` or a bare array; nil when neither.
    public static func list(json: JSONValue) -> [LocalPod]? {
        let value = json["pods"] ?? json
        guard case .array(let items) = value else { return nil }
        return items.compactMap(LocalPod.init(json:))
    }

    /// "namespace/name", how pods are named in messages and comparisons.
    public var qualifiedName: String { "\(namespace)/\(name)" }
}

extension PodScope {
    /// `{"podRegex", "namespaces", "excludedNamespaces"}`.
    public var json: JSONValue {
        .object([
            JSONMember(key: "podRegex", value: .string(podRegex)),
            JSONMember(key: "namespaces", value: .array(namespaces.map { .string($0) })),
            JSONMember(key: "excludedNamespaces", value: .array(excludedNamespaces.map { .string($0) })),
        ])
    }

    /// A scope from its JSON (missing fields take their defaults), checked: the regex compiles.
    public init(json: JSONValue) throws {
        guard case .object = json else { throw DiscoveryError("a scope is a JSON object") }
        func strings(_ key: String) throws -> [String] {
            guard let value = json[key] else { return [] }
            guard case .array(let items) = value else { throw DiscoveryError("\(key) must be an array of strings") }
            return try items.map {
                guard case .string(let s) = $0 else { throw DiscoveryError("\(key) must be an array of strings") }
                return s
            }
        }
        var regex = ".*"
        if let value = json["podRegex"] {
            guard case .string(let r) = value else { throw DiscoveryError("podRegex must be a string") }
            regex = r.isEmpty ? ".*" : r
        }
        self.init(podRegex: regex, namespaces: try strings("namespaces"), excludedNamespaces: try strings("excludedNamespaces"))
        try validate()
    }
}
