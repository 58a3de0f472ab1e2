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

    @OptionGroup var scopeOptions: ScopeOptions

    @OptionGroup var live: LiveCaptureOptions

    @Option(name: .customLong("proxy-host"), help: "Address the dashboard listens on.")
    var proxyHost = "127.0.0.1"

    @Option(name: .customLong("proxy-front-port"), help: "Port of the dashboard.")
    var proxyFrontPort = 8899

    @Flag(name: .customLong("dryRun"), help: "Print the targeted pods and exit.")
    var dryRun = false

    @OptionGroup var nodePods: NodePodOptions

    @Option(name: .customLong("data-dir"), help: "Directory of the ring and the sessions' retained packets.")
    var dataDirectory = "/tmp/kubeshark-tap"

    @Option(name: .customLong("storage-limit"), help: "Most bytes the ring may take: 500Mi, 10Gi...")
    var storageLimit = "500Mi"

    @Option(name: .customLong("token"),
            help: "Access token for the dashboard; generated and printed when --proxy-host is not loopback.")
    var token: String?

    @OptionGroup var tlsOptions: TLSOptions

    @OptionGroup var pluginOptions: PluginOptions

    @OptionGroup(title: "Into a Kubernetes cluster") var clusterTap: ClusterTapOptions

    @OptionGroup var scriptOptions: ScriptOptions

    func validate() throws {
        guard StorageQuantity(storageLimit) != nil else { throw ValidationError("--storage-limit: '\(storageLimit)' is not a quantity") }
    }

    func run() async throws {
        pluginOptions.bootstrapLogging()
        if clusterTap.kube {
            let scope = scopeOptions.scope
            let choices = DeploymentChoices(
                regex: scopeOptions.podRegex, namespaces: scope.namespaces, excludedNamespaces: scope.excludedNamespaces,
                releaseNamespace: clusterTap.releaseNamespace, storageLimit: storageLimit,
                capture: live.chosenBackend?.rawValue, plugins: pluginOptions.plugins, pluginImages: clusterTap.pluginImages,
                registry: clusterTap.registry, tag: clusterTap.tag)
            try await clusterTap.run(config: try choices.resolve(clusterTap.configOptions), dryRun: dryRun,
                                     proxyHost: proxyHost, proxyPort: proxyFrontPort)
            return
        }
        let scope = scopeOptions.scope
        let nodePods = self.nodePods
        let (overrides, pods) = try nodePods.start()
        let targets = scope.targets(pods)
        if dryRun {
            print(TapReport.dryRun(targets, of: pods.count), terminator: "")
            return
        }
        let (plugins, refusedPlugins) = try pluginOptions.startPlugins(tolerant: true)
        var config = WorkerConfiguration(dataDirectory: dataDirectory)
        config.refusedPlugins = refusedPlugins
        config.storageLimit = StorageQuantity(storageLimit)!.bytes
        config.host = proxyHost
        config.port = proxyFrontPort
        config.name = "tap"
        scriptOptions.apply(to: &config)
        config.accessToken = WorkerAPI.accessToken(given: token, host: proxyHost)
        var logger = Logger(label: "tap")
        logger.logLevel = Logger.Level(rawValue: pluginOptions.logLevel) ?? .warning
        let service: WorkerService
        do {
            service = try WorkerService(configuration: config, linkType: 1, plugins: plugins, logger: logger)
        } catch {
            throw fail(error.description)
        }
        try scriptOptions.load(into: service)
        // TLS capture follows the targeted pods' network namespaces.
        let tracer = tlsOptions.start(scope: targets.map(\.netns), log: service.tlsLog)
        defer { tracer?.close() }
        let follower = PodFollower(service: service, selection: .scope(scope), live: live, label: "tap", tls: tracer)
        follower.apply(pods)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        let watcher = follower.follow(every: nodePods.refreshSeconds) { try nodePods.discover(overrides) }
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
