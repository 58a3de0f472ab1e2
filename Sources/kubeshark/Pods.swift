import ArgumentParser
import Foundation
import Host
import Worker

/// Kubeshark's scope flags: `[POD-REGEX] -n NAMESPACES -e EXCLUDED`.
struct ScopeOptions: ParsableArguments {
    @Argument(help: "Regular expression on pod names (default: every pod).")
    var podRegex: String?

    @Option(name: [.short, .customLong("namespaces")], help: "Namespaces to tap (repeatable or comma list; default: all).")
    var namespaces: [String] = []

    @Option(name: [.short, .customLong("excludedNamespaces")], help: "Namespaces never tapped (repeatable or comma list).")
    var excludedNamespaces: [String] = []

    var scope: PodScope {
        func list(_ raw: [String]) -> [String] {
            raw.flatMap { $0.split(separator: ",").map { String($0).trimmingSpaces } }.filter { !$0.isEmpty }
        }
        return PodScope(podRegex: podRegex ?? ".*", namespaces: list(namespaces), excludedNamespaces: list(excludedNamespaces))
    }

    func validate() throws {
        do { try scope.validate() } catch { throw ValidationError("\(error)") }
    }
}

/// How the pods of this machine are found: network namespaces, named by a pods file.
struct NodePodOptions: ParsableArguments {
    @Option(name: .customLong("pods-file"), help: "JSON file naming network namespaces as pods, with labels ($KUBESHARK_PODS).")
    var podsFile: String?

    @Option(name: .customLong("netns"),
            help: "Only network namespaces whose names match this regex are this node's pods (several workers on one machine, each its own node).")
    var netnsRegex: String?

    @Option(name: .customLong("refresh"), help: "Seconds between looks for new or gone pods.")
    var refreshSeconds = 2.0

    func validate() throws {
        if let netnsRegex, (try? Regex(netnsRegex)) == nil { throw ValidationError("--netns: '\(netnsRegex)' is not a regular expression") }
        if !(refreshSeconds >= 0.1) { throw ValidationError("--refresh must be at least 0.1 seconds") }
    }

    /// The pods file's names and labels.
    func overrides() throws -> [String: LocalPods.Override] {
        let file = podsFile ?? ProcessInfo.processInfo.environment["KUBESHARK_PODS"]
        return try file.map { try LocalPods.overrides(file: $0) } ?? [:]
    }

    /// The pods file's names and this node's pods now, as a command starts; a
    /// problem fails the command with its one line.
    func start() throws -> (overrides: [String: LocalPods.Override], pods: [LocalPod]) {
        do {
            let overrides = try overrides()
            return (overrides, try discover(overrides))
        } catch {
            throw fail("\(error)")
        }
    }

    /// This node's pods now.
    func discover(_ overrides: [String: LocalPods.Override]) throws -> [LocalPod] {
        let pods = try LocalPods.discover(overrides: overrides)
        guard let netnsRegex, let regex = try? Regex(netnsRegex) else { return pods }
        return pods.filter { $0.netns.contains(regex) }
    }
}

/// Keeps the capture on the targeted pods' interfaces as pods come and go, and
/// the pod names entries carry. The targets are chosen by a scope (`tap`) or
/// sent by a hub (`worker --pods`).
final class PodFollower: @unchecked Sendable {
    enum Selection {
        case scope(PodScope)
        /// The hub's choice, matched to this node's pods by namespace/name or address.
        case hub([LocalPod])
    }

    private let service: WorkerService
    private let live: LiveCaptureOptions
    private let filter: String?
    private let label: String
    /// Capture on `any`, filtered to the targets' addresses, rather than on their
    /// interfaces (in a cluster, pods' network namespaces have no names to find).
    private let byAddress: Bool
    /// TLS capture, kept on the targets' network namespaces.
    private let tls: TLSTracer?
    private let lock = NSLock()
    private var selection: Selection
    private var pods: [LocalPod] = []
    /// What the capture was last opened with: interfaces and filter.
    private var opened: (interfaces: [String], filter: String?)?

    init(service: WorkerService, selection: Selection, live: LiveCaptureOptions, filter: String? = nil, byAddress: Bool = false,
         label: String, tls: TLSTracer? = nil) {
        self.tls = tls
        self.service = service
        self.selection = selection
        self.live = live
        self.filter = filter
        self.byAddress = byAddress
        self.label = label
    }

    /// This node's pods, as just discovered.
    func apply(_ pods: [LocalPod]) {
        lock.lock()
        defer { lock.unlock() }
        self.pods = pods
        service.nodePods = pods
        update()
    }

    /// A hub's targets.
    func target(_ chosen: [LocalPod]) {
        lock.lock()
        defer { lock.unlock() }
        selection = .hub(chosen)
        update()
    }

    private func targets() -> [LocalPod] {
        switch selection {
        case .scope(let scope):
            return scope.targets(pods)
        case .hub(let chosen) where byAddress:
            return chosen.filter { !$0.addresses.isEmpty }
        case .hub(let chosen):
            let names = Set(chosen.map(\.qualifiedName))
            let addresses = Set(chosen.flatMap(\.addresses))
            return pods.filter { names.contains($0.qualifiedName) || !addresses.isDisjoint(with: $0.addresses) }
        }
    }

    private func update() {
        let targets = targets()
        var names: [String: EndpointNames.Name] = [:]
        for pod in pods + targets { for ip in pod.addresses { names[ip] = EndpointNames.Name(name: pod.name, namespace: pod.namespace) } }
        service.endpointNames.replace(names)
        service.targetedPods = targets
        // By address (a cluster): the namespaces holding the targets' IPs; else by their names.
        tls?.setScope(byAddress ? .networkNamespaces(holding: targets.flatMap(\.addresses))
                                : .namespaces(named: targets.map(\.netns).filter { !$0.isEmpty }))
        let wanted: [String]
        var wantedFilter = filter
        if byAddress {
            let addresses = Array(Set(targets.flatMap(\.addresses))).sorted()
            wanted = addresses.isEmpty ? [] : ["any"]
            let hosts = addresses.map { "host \($0)" }.joined(separator: " or ")
            if !addresses.isEmpty { wantedFilter = filter.map { "(\($0)) and (\(hosts))" } ?? hosts }
        } else {
            wanted = Array(Set(targets.flatMap(\.hostInterfaces))).sorted()
        }
        if let opened, opened.interfaces == wanted, opened.filter == wantedFilter { return }
        opened = (wanted, wantedFilter)
        if wanted.isEmpty {
            service.replaceCapture(with: nil)
            warn("\(label): no pod is targeted yet; waiting for one")
            return
        }
        do {
            let backend = try LiveCapture.open(wanted, options: live, filter: wantedFilter)
            guard backend.linkType == service.ring.configuration.linkType else {
                backend.close()
                opened = nil
                warn("\(label): \(wanted.joined(separator: ",")) delivers link type \(backend.linkType), the ring holds \(service.ring.configuration.linkType); not capturing them")
                return
            }
            service.replaceCapture(with: backend)
            warn("\(label): capturing \(targets.count) pod(s) on \(wanted.joined(separator: ",")) with \(backend.name): "
                + targets.map(\.qualifiedName).joined(separator: " "))
        } catch {
            opened = nil
            warn("\(label): cannot capture on \(wanted.joined(separator: ",")): \(error.message)")
        }
    }

    /// Looks for new or gone pods every `seconds` until cancelled.
    func follow(every seconds: Double, _ discover: @escaping @Sendable () throws -> [LocalPod]) -> Task<Void, Never> {
        Task.detached { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
                if let pods = try? discover() { apply(pods) }
            }
        }
    }
}
