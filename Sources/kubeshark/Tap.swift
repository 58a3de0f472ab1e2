import ArgumentParser
import Foundation
import Host
import Logging
import Worker

#if canImport(Glibc)
import Glibc
#endif

struct Tap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Capture the traffic of the pods on this machine (network namespaces) and serve the dashboard.",
        discussion: """
            Pods are the network namespaces of this machine (`ip netns`): a namespace named NAMESPACE.POD is pod \
            POD in NAMESPACE, any other name N is pod N in namespace default; --pods-file (or $KUBESHARK_PODS) \
            gives names and labels. The pod regex matches anywhere in pod names; no -n means all namespaces. \
            Pods created later that match are picked up. The dashboard is served on --proxy-host:--proxy-front-port.
            """)

    @Argument(help: "Regular expression on pod names (default: every pod).")
    var podRegex = ".*"

    @Option(name: [.short, .customLong("namespaces")], help: "Namespaces to tap (repeatable or comma list; default: all).")
    var namespaces: [String] = []

    @Option(name: [.short, .customLong("excludedNamespaces")], help: "Namespaces never tapped (repeatable or comma list).")
    var excludedNamespaces: [String] = []

    @OptionGroup var live: LiveCaptureOptions

    @Option(name: .customLong("proxy-host"), help: "Address the dashboard listens on.")
    var proxyHost = "127.0.0.1"

    @Option(name: .customLong("proxy-front-port"), help: "Port of the dashboard.")
    var proxyFrontPort = 8899

    @Flag(name: .customLong("dryRun"), help: "Print the targeted pods and exit.")
    var dryRun = false

    @Option(name: .customLong("pods-file"), help: "JSON file naming network namespaces as pods, with labels.")
    var podsFile: String?

    @Option(name: .customLong("data-dir"), help: "Directory of the ring and the sessions' retained packets.")
    var dataDirectory = "/tmp/kubeshark-tap"

    @Option(name: .customLong("storage-limit"), help: "Most bytes the ring may take: 500Mi, 10Gi...")
    var storageLimit = "500Mi"

    @Option(name: .customLong("refresh"), help: "Seconds between looks for new or gone pods.")
    var refreshSeconds = 2.0

    @Option(name: .customLong("token"),
            help: "Access token for the dashboard; generated and printed when --proxy-host is not loopback.")
    var token: String?

    @OptionGroup var tlsOptions: TLSOptions

    @OptionGroup var pluginOptions: PluginOptions

    var scope: PodScope {
        func list(_ raw: [String]) -> [String] {
            raw.flatMap { $0.split(separator: ",").map { String($0).trimmingSpaces } }.filter { !$0.isEmpty }
        }
        return PodScope(podRegex: podRegex, namespaces: list(namespaces), excludedNamespaces: list(excludedNamespaces))
    }

    func validate() throws {
        do { try scope.validate() } catch { throw ValidationError("\(error)") }
        guard StorageQuantity(storageLimit) != nil else { throw ValidationError("--storage-limit: '\(storageLimit)' is not a quantity") }
    }

    func run() async throws {
        pluginOptions.bootstrapLogging()
        let overrides: [String: LocalPods.Override]
        do {
            let file = podsFile ?? ProcessInfo.processInfo.environment["KUBESHARK_PODS"]
            overrides = try file.map { try LocalPods.overrides(file: $0) } ?? [:]
        } catch {
            throw fail("\(error)")
        }
        let scope = self.scope
        let pods: [LocalPod]
        do { pods = try LocalPods.discover(overrides: overrides) } catch { throw fail("\(error)") }
        let targets = scope.targets(pods)
        if dryRun {
            print(TapReport.dryRun(targets, of: pods.count), terminator: "")
            return
        }
        let plugins = try pluginOptions.startPlugins()
        var config = WorkerConfiguration(dataDirectory: dataDirectory)
        config.storageLimit = StorageQuantity(storageLimit)!.bytes
        config.host = proxyHost
        config.port = proxyFrontPort
        config.name = "tap"
        config.accessToken = WorkerAPI.accessToken(given: token, host: proxyHost)
        var logger = Logger(label: "tap")
        logger.logLevel = Logger.Level(rawValue: pluginOptions.logLevel) ?? .warning
        let service: WorkerService
        do {
            service = try WorkerService(configuration: config, linkType: 1, plugins: plugins, logger: logger)
        } catch {
            throw fail(error.description)
        }
        // TLS capture follows the targeted pods' network namespaces.
        let tracer = tlsOptions.start(scope: targets.map(\.netns), log: service.tlsLog)
        defer { tracer?.close() }
        let follower = PodFollower(service: service, scope: scope, overrides: overrides, live: live, tls: tracer)
        follower.apply(pods)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        let refresh = refreshSeconds
        let watcher = Task.detached {
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(refresh * 1e9))
                if let pods = try? LocalPods.discover(overrides: overrides) { follower.apply(pods) }
            }
        }
        let host = proxyHost
        let tokenQuery = config.accessToken.map { "?token=\($0)" } ?? ""
        let app = WorkerAPI.makeApplication(service: service) { port in
            warn("tap: dashboard at http://\(host):\(port)/\(tokenQuery)")
        }
        do {
            try await app.runService()
        } catch {
            watcher.cancel()
            service.shutdown()
            throw fail("tap: \(error)")
        }
        watcher.cancel()
        service.shutdown()
    }
}

/// Keeps the capture on the targeted pods' interfaces as pods come and go,
/// and the pod names entries carry.
final class PodFollower: @unchecked Sendable {
    private let service: WorkerService
    private let scope: PodScope
    private let live: LiveCaptureOptions
    private let lock = NSLock()
    private var interfaces: [String]?
    private let tls: TLSTracer?

    init(service: WorkerService, scope: PodScope, overrides: [String: LocalPods.Override], live: LiveCaptureOptions,
         tls: TLSTracer? = nil) {
        self.tls = tls
        self.service = service
        self.scope = scope
        self.live = live
    }

    func apply(_ pods: [LocalPod]) {
        lock.lock()
        defer { lock.unlock() }
        var names: [String: EndpointNames.Name] = [:]
        for pod in pods { for ip in pod.addresses { names[ip] = EndpointNames.Name(name: pod.name, namespace: pod.namespace) } }
        service.endpointNames.replace(names)
        let targets = scope.targets(pods)
        service.targetedPods = targets
        tls?.setScope(.namespaces(named: targets.map(\.netns)))
        let wanted = Array(Set(targets.flatMap(\.hostInterfaces))).sorted()
        guard wanted != interfaces else { return }
        interfaces = wanted
        if wanted.isEmpty {
            service.replaceCapture(with: nil)
            warn("tap: no pod matches the scope yet; waiting for one")
            return
        }
        do {
            let backend = try LiveCapture.open(wanted, options: live, filter: nil)
            service.replaceCapture(with: backend)
            warn("tap: capturing \(targets.count) pod(s) on \(wanted.joined(separator: ",")) with \(backend.name): "
                + targets.map { "\($0.namespace)/\($0.name)" }.joined(separator: " "))
        } catch {
            interfaces = nil
            warn("tap: cannot capture on \(wanted.joined(separator: ",")): \(error.message)")
        }
    }
}

/// What `--dryRun` prints.
enum TapReport {
    static func dryRun(_ targets: [LocalPod], of total: Int) -> String {
        var out = "targeted pods: \(targets.count) of \(total)\n"
        for namespace in Set(targets.map(\.namespace)).sorted() {
            out += "\(namespace):\n"
            for pod in targets where pod.namespace == namespace {
                out += "  \(pod.name)  netns=\(pod.netns)  ips=\(pod.addresses.joined(separator: ","))"
                    + "  interfaces=\(pod.hostInterfaces.joined(separator: ","))\n"
            }
        }
        return out
    }
}
