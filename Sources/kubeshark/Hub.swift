import ArgumentParser
import Host
import Logging
import Kube
import Worker

#if canImport(Glibc)
import Glibc
#endif

struct HubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hub",
        abstract: "Serve the dashboard over several workers: queries fan out, entry streams merge by time.",
        discussion: """
            Each --worker is a worker's API (kubeshark worker, or a tap): http://HOST:PORT, optionally \
            named NAME=http://HOST:PORT (names appear in entries' `worker` field). A worker that goes away is \
            shown as down; its stream resumes where it stopped when it returns. The hub holds the tap scope \
            (POD-REGEX, -n, -e; PUT /api/scope changes it) and sends each worker started with --pods the pods \
            of its node in scope, within a second of a change. See docs/api.md.
            """)

    @OptionGroup var scopeOptions: ScopeOptions

    @Option(name: .customLong("worker"), help: "A worker's API URL, [NAME=]http://HOST:PORT (repeatable).")
    var workers: [String] = []

    @Option(name: .customLong("worker-token"), help: "Access token the workers require, if any.")
    var workerToken: String?

    @Option(name: .customLong("host"), help: "Address the hub listens on.")
    var host = "127.0.0.1"

    @Option(name: .customLong("port"), help: "Port of the hub (0: any free port).")
    var port = 8898

    @Option(name: .customLong("token"), help: "Access token for the hub; generated and printed when --host is not loopback.")
    var token: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, warning, error.")
    var logLevel = "warning"

    @Flag(name: .customLong("kube"),
          help: "Follow a Kubernetes cluster: watch its pods and send each node's worker the targeted pods there.")
    var kube = false

    @OptionGroup var cluster: ClusterOptions

    @Option(name: [.customShort("s"), .customLong("release-namespace")],
            help: "With --kube: the namespace of the deployment, whose kubeshark-config-map holds the scope (default: the context's).")
    var releaseNamespace: String?

    func validate() throws {
        if !kube && (cluster.kubeconfig != nil || cluster.context != nil || releaseNamespace != nil) {
            throw ValidationError("--kubeconfig, --context and --release-namespace go with --kube")
        }
        for (i, w) in workers.enumerated() where HubWorker.parse(w, index: i) == nil {
            throw ValidationError("--worker '\(w)' is not [NAME=]http://HOST:PORT")
        }
    }

    func run() async throws {
        var logger = Logger(label: "hub")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .warning
        let links = workers.enumerated().map { i, w in
            var worker = HubWorker.parse(w, index: i)!
            worker.token = workerToken
            return worker
        }
        let accessToken = WorkerAPI.accessToken(given: token, host: host)
        var cluster: ClusterTargets?
        var scope = scopeOptions.scope
        var scripts: [ScriptSpec]?
        var mapVersion: String?
        if kube {
            let (client, config) = try self.cluster.client()
            cluster = ClusterTargets(client: client, releaseNamespace: releaseNamespace ?? config.namespace)
            // The deployment's ConfigMap, when there is one, holds the scope and the scripts.
            do {
                if let map = try await cluster!.configMap() {
                    scope = try ClusterTargets.scope(in: map)
                    scripts = try ScriptsConfigMap.scripts(in: map)
                    mapVersion = map.string(at: "metadata.resourceVersion") ?? ""
                }
            } catch {
                await cluster?.stop()
                throw fail("hub --kube: reading the scope in \(cluster!.releaseNamespace)/\(ScriptsConfigMap.name): \(error)")
            }
            await cluster!.start()
            warn("hub: following the cluster's pods (\(cluster!.releaseNamespace)); scope: regex \(scope.podRegex), "
                + "namespaces \(scope.namespaces.isEmpty ? "all" : scope.namespaces.joined(separator: ",")), "
                + "excluded \(scope.excludedNamespaces.isEmpty ? "none" : scope.excludedNamespaces.joined(separator: ","))"
                + (scripts.map { "; \($0.count) script(s)" } ?? ""))
        }
        // With a cluster, scripts changed through the hub's API are written to the ConfigMap,
        // so they outlive the hub and `kubectl get cm` shows them.
        var persist: (@Sendable ([ScriptSpec]) async -> Void)?
        if let cluster {
            persist = { specs in
                do {
                    try await ScriptsConfigMap.write(specs, client: cluster.client, namespace: cluster.releaseNamespace)
                } catch {
                    warn("hub: cannot write the scripts to \(ScriptsConfigMap.name): \(error)")
                }
            }
        }
        let hubScripts = HubScripts(persist: persist)
        if let scripts { hubScripts.replaceAll(scripts) }
        let hub = HubService(workers: links, scope: scope, accessToken: accessToken, workerToken: workerToken,
                             targetSource: cluster, scripts: hubScripts, logger: logger)
        // Pods come and go on the workers' nodes, and workers restart: compare and push every second.
        let pusher = Task.detached {
            while !Task.isCancelled {
                for line in await hub.pushTargets() { warn("hub: \(line)") }
                for line in await hub.scripts.reconcile(hub) { warn("hub: \(line)") }
                try? await Task.sleep(nanoseconds: 1_000_000_000)
            }
        }
        defer { pusher.cancel() }
        // An edit of the ConfigMap (kubectl edit, helm upgrade, kubeshark scripts --kube) changes
        // the scope and the scripts; PUT /api/scope holds until the ConfigMap changes again.
        let watchedScope = Task.detached { [cluster, mapVersion] in
            guard let cluster else { return }
            var version = mapVersion
            var lastFailure: String?
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 5_000_000_000)
                do {
                    if let map = try await cluster.configMap(), let v = map.string(at: "metadata.resourceVersion"), v != version {
                        version = v
                        let configured = try ClusterTargets.scope(in: map)
                        let changed = configured != hub.scope
                        hub.setScope(configured)
                        if changed {
                            warn("hub: the scope changed in \(ScriptsConfigMap.name): regex \(configured.podRegex)")
                        }
                        if let specs = try ScriptsConfigMap.scripts(in: map), specs != hub.scripts.scripts {
                            hub.scripts.replaceAll(specs)
                            warn("hub: the scripts changed in \(ScriptsConfigMap.name): \(specs.count) script(s)")
                        }
                    }
                    lastFailure = nil
                } catch {
                    if "\(error)" != lastFailure { warn("hub: cannot read \(ScriptsConfigMap.name): \(error)") }
                    lastFailure = "\(error)"
                }
                if let failure = await cluster.failure, failure != lastFailure {
                    warn("hub: the pod watch stopped: \(failure)")
                    lastFailure = failure
                }
            }
        }
        defer { watchedScope.cancel() }
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        let listen = host
        let tokenQuery = accessToken.map { "/?token=\($0)" } ?? ""
        let names = links.isEmpty ? "none yet; they register with worker --hub" : links.map { "\($0.name)=\($0.url)" }.joined(separator: " ")
        let app = HubAPI.makeApplication(hub: hub, host: host, port: port) { port in
            warn("hub listening on http://\(listen):\(port)\(tokenQuery) (workers: \(names))")
        }
        do { try await app.runService() } catch {
            await cluster?.stop()
            throw fail("hub: \(error)")
        }
        await cluster?.stop()
    }
}
