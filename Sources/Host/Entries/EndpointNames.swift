import PluginAPI
import Synchronization

/// Names for endpoint addresses (pods), written into entries' `src` and `dst`
/// as `name` and `namespace`. Shared by every session; updated as pods come
/// and go (the tap's pod discovery, the hub's pod list).
public final class EndpointNames: Sendable {
    /// A pod's name and Kubernetes namespace.
    public struct Name: Sendable, Equatable {
        public var name: String
        public var namespace: String
        public init(name: String, namespace: String) {
            self.name = name
            self.namespace = namespace
        }
    }

    private let table = Mutex<[IPAddress: Name]>([:])

    public init() {}

    /// Replaces the whole table: address text (IPv4 or IPv6) → name. Unparsable addresses are ignored.
    public func replace(_ names: [String: Name]) {
        var next: [IPAddress: Name] = [:]
        for (text, name) in names {
            if let address = IPAddress(text) { next[address] = name }
        }
        table.withLock { $0 = next }
    }

    /// The name of `address` (text), if known.
    public func name(of address: String) -> Name? {
        guard let ip = IPAddress(address) else { return nil }
        return table.withLock { $0[ip] }
    }

    func name(of endpoint: ks_endpoint) -> Name? {
        let ip = EndpointFormatter.ipAddress(endpoint)
        return table.withLock { $0[ip] }
    }
}
