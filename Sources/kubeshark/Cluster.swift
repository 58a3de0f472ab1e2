import ArgumentParser
import Deploy
import Foundation
import Host
import Kube
import Logging
import Worker

/// Which cluster: `--kubeconfig` and `--context` (else $KUBECONFIG, ~/.kube/config, or in-cluster).
struct ClusterOptions: ParsableArguments {
    @Option(name: .customLong("kubeconfig"), help: "The kubeconfig (default: $KUBECONFIG, else ~/.kube/config, else in-cluster).")
    var kubeconfig: String?

    @Option(name: .customLong("context"), help: "The kubeconfig context (default: its current one).")
    var context: String?

    /// A client of the cluster; a bad kubeconfig fails with its one line.
    func client() throws -> (KubeClient, KubeConfig) {
        do {
            let config = try KubeConfig.automatic(kubeconfig: kubeconfig, context: context)
            return (try KubeClient(config: config), config)
        } catch {
            throw fail("\(error)")
        }
    }
}

/// Deploying, checking and removing a deployment through the API server.
struct ClusterDeployment {
    let client: KubeClient
    let config: DeployConfig

    var namespace: String { config.string("tap.release.namespace") }

    /// The targeted pods per namespace, and the pods in scope that are not captured, with why.
    func dryRun() async throws -> String {
        let scope = try ClusterScope(podRegex: config.string("tap.regex"), namespaces: config.strings("tap.namespaces"),
                                     excludedNamespaces: config.strings("tap.excludedNamespaces"))
        let pods = try await client.listPods().items
        let targets = scope.targets(pods)
        var out = "targeted pods: \(targets.count) of \(pods.count)\n"
        for ns in Set(targets.map(\.namespace)).sorted() {
            out += "\(ns):\n"
            for pod in targets where pod.namespace == ns {
                out += "  \(pod.name)  node=\(pod.nodeName)  ips=\(pod.ips.joined(separator: ","))\n"
            }
        }
        let excluded = scope.excluded(pods)
        if !excluded.isEmpty {
            out += "in scope but not captured:\n"
            for (pod, reason) in excluded { out += "  \(pod.namespace)/\(pod.name): \(reason)\n" }
        }
        if targets.isEmpty { out += "no pod is targeted yet; pods created later that match are targeted automatically\n" }
        return out
    }

    /// The tokens in the deployment's Secret, when it exists.
    func storedTokens() async throws -> (hub: String?, worker: String?) {
        guard let secret = try await client.get(apiVersion: "v1", kind: "Secret", name: Manifests.secret, namespace: namespace)
        else { return (nil, nil) }
        func decoded(_ key: String) -> String? {
            secret.string(at: "data.\(key)").flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }
        }
        return (decoded("HUB_TOKEN"), decoded("WORKER_TOKEN"))
    }

    /// Serves the hub's dashboard on `host:port` through the API server until stopped.
    func proxy(host: String, port: Int) async throws {
        guard let token = try await storedTokens().hub else {
            throw fail("no \(namespace)/\(Manifests.secret) with the hub's token: is kubeshark deployed in \(namespace)? (-s)")
        }
        var logger = Logger(label: "proxy")
        logger.logLevel = .warning
        let app = DashboardProxy.application(client: client, namespace: namespace, service: Manifests.hub, hubToken: token,
                                             host: host, port: port, logger: logger) { port in
            warn("proxy: the dashboard at http://\(host):\(port)/ (through the API server to \(namespace)/\(Manifests.hub))")
        }
        try await app.runService()
    }

    /// Applies every object (server-side apply), keeping the tokens of an existing Secret.
    func apply(report: (String) -> Void) async throws -> Manifests {
        let stored = try await storedTokens()
        let hubToken = stored.hub ?? WorkerAPI.accessToken(given: nil, host: "0.0.0.0") ?? ""
        let workerToken = stored.worker ?? WorkerAPI.accessToken(given: nil, host: "0.0.0.0") ?? ""
        let manifests = Manifests(config: config, hubToken: hubToken, workerToken: workerToken)
        for object in manifests.objects {
            let applied = try await client.apply(try KubeObject(json: object.jsonBytes))
            report("applied \(applied.string(at: "kind") ?? "?")/\(applied.string(at: "metadata.name") ?? "?")")
        }
        return manifests
    }

    /// Waits until the hub and a worker on every node report ready, or fails with
    /// what holds them: an image that cannot be pulled, a pod the scheduler cannot place.
    func waitUntilReady(timeout: Duration, report: (String) -> Void) async throws {
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while true {
            let selector = "app.kubernetes.io/name=kubeshark,app.kubernetes.io/instance=\(config.string("tap.release.name"))"
            let pods = try await client.listPods(namespace: namespace, labelSelector: selector).items
            let hubs = pods.filter { $0.labels["app.kubernetes.io/component"] == "hub" }
            let workers = pods.filter { $0.labels["app.kubernetes.io/component"] == "worker" }
            for pod in pods {
                if let reason = pod.waitingReasons.first(where: { ["ImagePullBackOff", "ErrImagePull", "InvalidImageName"].contains($0) }) {
                    throw fail("pod \(namespace)/\(pod.name): \(reason): the image cannot be pulled (check -r/--docker-registry, -t/--docker-tag and tap.docker.imagePullSecrets)")
                }
                if let condition = pod.unschedulable {
                    throw fail("pod \(namespace)/\(pod.name) cannot be scheduled: \(condition.reason ?? "") \(condition.message ?? "")")
                }
            }
            let ready = !hubs.isEmpty && hubs.allSatisfy(\.isReady) && !workers.isEmpty && workers.allSatisfy(\.isReady)
            let state = "hub \(hubs.filter(\.isReady).count)/\(hubs.count) ready, workers \(workers.filter(\.isReady).count)/\(workers.count) ready"
            if state != last {
                report(state)
                last = state
            }
            if ready { return }
            if ContinuousClock.now >= deadline {
                throw fail("not ready after \(timeout): \(state); see kubectl -n \(namespace) describe pods")
            }
            try await Task.sleep(for: .seconds(1))
        }
    }

    /// Deletes every object, in the reverse order of creation; returns one line each.
    func clean() async throws -> [String] {
        let names = Manifests(config: config, hubToken: "", workerToken: "")
        var lines: [String] = []
        for object in names.objects.reversed() {
            let kube = try KubeObject(json: object.jsonBytes)
            let kind = kube.string(at: "kind") ?? "?"
            let name = kube.string(at: "metadata.name") ?? "?"
            let removed = try await client.delete(kube)
            lines.append(removed ? "removed \(kind)/\(name)" : "\(kind)/\(name): not there")
        }
        return lines
    }
}

struct CleanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clean", abstract: "Remove everything kubeshark created in the cluster.")

    @Option(name: [.customShort("s"), .customLong("release-namespace")], help: "Namespace Kubeshark is installed in (default: default).")
    var releaseNamespace: String?

    @OptionGroup var cluster: ClusterOptions
    @OptionGroup var configOptions: ConfigOptions

    func run() async throws {
        var config = try configOptions.load()
        if let releaseNamespace {
            do { try config.set("tap.release.namespace", text: releaseNamespace) } catch { throw fail(error.description) }
        }
        try configOptions.applySets(to: &config)
        let (client, _) = try cluster.client()
        do {
            for line in try await ClusterDeployment(client: client, config: config).clean() { warn(line) }
        } catch {
            await client.shutdown()
            throw fail("clean: \(error)")
        }
        await client.shutdown()
    }
}

/// `kubeshark tap --kube`: deploy into the cluster instead of tapping this machine.
struct ClusterTapOptions: ParsableArguments {
    @Flag(name: .customLong("kube"),
          help: "Deploy into the Kubernetes cluster (a hub, a worker per node) instead of tapping this machine (docs/kubernetes.md).")
    var kube = false

    @OptionGroup var cluster: ClusterOptions

    @Option(name: [.customShort("s"), .customLong("release-namespace")], help: "With --kube: the namespace to install in (default: default).")
    var releaseNamespace: String?

    @Option(name: .customLong("plugin-image"), help: "With --kube: a third party's plugin image, its .so files under /plugins (repeatable).")
    var pluginImages: [String] = []

    @Option(name: [.customShort("r"), .customLong("docker-registry")], help: "With --kube: the image registry.")
    var registry: String?

    @Option(name: [.customShort("t"), .customLong("docker-tag")], help: "With --kube: the image tag.")
    var tag: String?

    @Option(name: .customLong("ready-timeout"), help: "With --kube: seconds to wait for the hub and the workers.")
    var readyTimeout = 120

    @Flag(inversion: .prefixedNo, help: "With --kube: once ready, serve the dashboard on --proxy-host:--proxy-front-port through the API server.")
    var proxy = true

    @OptionGroup var configOptions: ConfigOptions

    func validate() throws {
        if !kube && (releaseNamespace != nil || !pluginImages.isEmpty || registry != nil || tag != nil
            || cluster.kubeconfig != nil || cluster.context != nil) {
            throw ValidationError("-s, --plugin-image, -r, -t, --kubeconfig and --context go with --kube")
        }
    }

    /// The dry run, or apply, wait, and say how to reach the dashboard.
    func run(config: DeployConfig, dryRun: Bool, proxyHost: String, proxyPort: Int) async throws {
        let (client, _) = try cluster.client()
        let deployment = ClusterDeployment(client: client, config: config)
        do {
            if dryRun {
                print(try await deployment.dryRun(), terminator: "")
            } else {
                let manifests = try await deployment.apply { warn("tap: \($0)") }
                try await deployment.waitUntilReady(timeout: .seconds(readyTimeout)) { warn("tap: \($0)") }
                if proxy {
                    try await deployment.proxy(host: proxyHost, port: proxyPort)
                } else {
                    warn("tap: ready; the dashboard: kubeshark proxy -s \(deployment.namespace), or the hub's Service "
                        + "with its token: http://SERVICE/?token=\(manifests.hubToken)")
                }
            }
        } catch let error as ExitCode {
            await client.shutdown()
            throw error
        } catch {
            await client.shutdown()
            throw fail("tap --kube: \(error)")
        }
        await client.shutdown()
    }
}

struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Serve the dashboard of the hub in the cluster on this machine, through the API server.")

    @Option(name: [.customShort("s"), .customLong("release-namespace")], help: "Namespace Kubeshark is installed in.")
    var releaseNamespace = "default"

    @Option(name: .customLong("proxy-host"), help: "Address to listen on.")
    var proxyHost = "127.0.0.1"

    @Option(name: .customLong("proxy-front-port"), help: "Port to listen on (0: any free port).")
    var proxyFrontPort = 8899

    @OptionGroup var cluster: ClusterOptions

    func run() async throws {
        var config = DeployConfig()
        do { try config.set("tap.release.namespace", text: releaseNamespace) } catch { throw fail(error.description) }
        let (client, _) = try cluster.client()
        // A parent may have spawned us with these blocked; the server's graceful stop needs them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        do {
            try await ClusterDeployment(client: client, config: config).proxy(host: proxyHost, port: proxyFrontPort)
        } catch {
            await client.shutdown()
            if let exit = error as? ExitCode { throw exit }
            throw fail("proxy: \(error)")
        }
        await client.shutdown()
    }
}
