import Foundation
import Host

/// A "pod" on this machine: a network namespace, named like a Kubernetes pod.
///
/// Naming: a namespace called `NAMESPACE.POD` (the first dot splits; Kubernetes
/// namespace names have no dots) is pod `POD` in namespace `NAMESPACE`; any
/// other name `N` is pod `N` in namespace `default`. A pods file (JSON, given by
/// `--pods-file` or `$KUBESHARK_PODS`) overrides both and adds labels:
/// `{"web1": {"namespace": "shop", "name": "web-7d9f", "labels": {"app": "web"}}}`.
public struct LocalPod: Sendable, Equatable {
    /// The network namespace (`ip netns` name).
    public var netns: String
    public var name: String
    public var namespace: String
    public var labels: [String: String]
    /// Addresses inside the namespace (not loopback).
    public var addresses: [String]
    /// Host-side ends of the veth pairs leading into the namespace: where to capture.
    public var hostInterfaces: [String]

    public init(netns: String, name: String, namespace: String, labels: [String: String] = [:],
                addresses: [String] = [], hostInterfaces: [String] = []) {
        self.netns = netns
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.addresses = addresses
        self.hostInterfaces = hostInterfaces
    }
}

/// Finds the pods of this machine with iproute2 (`ip -j`).
public enum LocalPods {
    /// A pods-file entry.
    public struct Override: Sendable, Equatable {
        public var namespace: String?
        public var name: String?
        public var labels: [String: String]
    }

    /// Reads a pods file; throws a one-line reason.
    public static func overrides(file: String) throws -> [String: Override] {
        guard let data = FileManager.default.contents(atPath: file) else { throw DiscoveryError("cannot read pods file \(file)") }
        guard case .object(let members)? = try? JSONValue.parse(Array(data)) else {
            throw DiscoveryError("pods file \(file) is not a JSON object of network namespace names")
        }
        var out: [String: Override] = [:]
        for m in members {
            var o = Override(namespace: nil, name: nil, labels: [:])
            if case .string(let s)? = m.value["namespace"] { o.namespace = s }
            if case .string(let s)? = m.value["name"] { o.name = s }
            if case .object(let labels)? = m.value["labels"] {
                for l in labels { if case .string(let v) = l.value { o.labels[l.key] = v } }
            }
            out[m.key] = o
        }
        return out
    }

    /// The network namespaces of this machine as pods.
    public static func discover(overrides: [String: Override] = [:]) throws -> [LocalPod] {
        guard case .array(let namespaces) = try ipJSON(["-j", "netns", "list"]) else { return [] }
        // Host-side veths name the namespace of their peer by netns id.
        var hostSide: [Int: [String]] = [:]
        if case .array(let links) = try ipJSON(["-j", "link", "show", "type", "veth"]) {
            for link in links {
                guard case .number(let id)? = link["link_netnsid"], case .string(let name)? = link["ifname"] else { continue }
                hostSide[Int(id), default: []].append(name)
            }
        }
        var pods: [LocalPod] = []
        for ns in namespaces {
            guard case .string(let netns)? = ns["name"] else { continue }
            var interfaces: [String] = []
            if case .number(let id)? = ns["id"] { interfaces = hostSide[Int(id)] ?? [] }
            var pod = Self.named(netns, overrides[netns])
            pod.hostInterfaces = interfaces.sorted()
            pod.addresses = (try? addresses(in: netns)) ?? []
            pods.append(pod)
        }
        return pods.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
    }

    /// The pod a namespace name stands for, before its interfaces are known.
    static func named(_ netns: String, _ override: Override?) -> LocalPod {
        var namespace = "default"
        var name = netns
        if let dot = netns.firstIndex(of: "."), dot != netns.startIndex, netns.index(after: dot) != netns.endIndex {
            namespace = String(netns[..<dot])
            name = String(netns[netns.index(after: dot)...])
        }
        return LocalPod(netns: netns, name: override?.name ?? name, namespace: override?.namespace ?? namespace,
                        labels: override?.labels ?? [:])
    }

    private static func addresses(in netns: String) throws -> [String] {
        guard case .array(let links) = try ipJSON(["-n", netns, "-j", "addr", "show"]) else { return [] }
        var out: [String] = []
        for link in links {
            if case .string(let name)? = link["ifname"], name == "lo" { continue }
            guard case .array(let infos)? = link["addr_info"] else { continue }
            for info in infos {
                guard case .string(let local)? = info["local"], case .string(let scope)? = info["scope"], scope == "global"
                else { continue }
                out.append(local)
            }
        }
        return out
    }

    private static func ipJSON(_ arguments: [String]) throws -> JSONValue {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") ? "/usr/sbin/ip" : "/sbin/ip")
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { throw DiscoveryError("cannot run ip (iproute2): \(error)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw DiscoveryError("ip \(arguments.joined(separator: " ")) failed") }
        if data.isEmpty { return .array([]) }
        do { return try JSONValue.parse(Array(data)) } catch { throw DiscoveryError("ip printed no JSON: \(error)") }
    }
}

/// Which pods a tap targets, as Kubeshark scopes them: a regex on pod names
/// (default `.*`), namespaces (none given = all), excluded namespaces.
public struct PodScope: Sendable, Equatable {
    public var podRegex: String
    public var namespaces: [String]
    public var excludedNamespaces: [String]

    public init(podRegex: String = ".*", namespaces: [String] = [], excludedNamespaces: [String] = []) {
        self.podRegex = podRegex
        self.namespaces = namespaces
        self.excludedNamespaces = excludedNamespaces
    }

    /// Fails with a one-line reason when the regex does not compile.
    public func validate() throws {
        do { _ = try Regex(podRegex) } catch { throw DiscoveryError("pod regex '\(podRegex)' is not a regular expression: \(error)") }
    }

    /// The pods in scope. The regex matches anywhere in the name, as in Kubeshark.
    public func targets(_ pods: [LocalPod]) -> [LocalPod] {
        guard let regex = try? Regex(podRegex) else { return [] }
        return pods.filter { pod in
            if !namespaces.isEmpty && !namespaces.contains(pod.namespace) { return false }
            if excludedNamespaces.contains(pod.namespace) { return false }
            return pod.name.contains(regex)
        }
    }
}

public struct DiscoveryError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}
