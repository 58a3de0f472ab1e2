import ArgumentParser
import Host
import Hummingbird
import Logging
import Synchronization
import Worker

#if canImport(Glibc)
import Glibc
#endif

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Capture into the master PCAP ring and serve dissection sessions, entries, pcaps and statistics.",
        discussion: """
            Every packet captured is kept in a ring of pcap segments under --data-dir, bounded by \
            --storage-limit; nothing is dissected until a client asks. A WebSocket client opens a session \
            with a KFL query (ws://HOST:PORT/ws?q=QUERY) and receives the matching entries from the oldest \
            packet in the ring onwards, then live. See docs/api.md.
            """)

    @Option(name: [.short, .customLong("interface")], help: "Interfaces to capture on (repeatable or comma list; 'any').")
    var interface: [String] = []

    @Option(name: .short, help: "Read this capture file into the ring instead of capturing (then serve it).")
    var r: String?

    @Flag(name: .customLong("pods"),
          help: "Capture the pods a hub targets (PUT /api/targets), among this machine's pods (network namespaces), instead of fixed interfaces.")
    var followHub = false

    @Flag(name: .customLong("by-address"),
          help: "With --pods: capture on 'any', filtered to the targeted pods' addresses, not on their interfaces (in a cluster).")
    var byAddress = false

    @OptionGroup var nodePods: NodePodOptions

    @Option(name: .customLong("hub"), help: "Register with this hub (http://HOST:PORT), again every 10 seconds.")
    var hubURL: String?

    @Option(name: .customLong("hub-token"), help: "The hub's access token, for --hub.")
    var hubToken: String?

    @Option(name: .customLong("hub-interval"), help: "Seconds between registrations with --hub.")
    var hubInterval = 10.0

    @Option(name: .customLong("advertise"),
            help: "The URL the hub reaches this worker at (default: http://--host:--port; needed with --host 0.0.0.0).")
    var advertise: String?

    @OptionGroup var live: LiveCaptureOptions

    @Option(name: .customLong("filter"), help: "BPF capture filter (tcpdump syntax).")
    var filter: String?

    @Option(name: .customLong("data-dir"), help: "Directory of the ring and the sessions' retained packets.")
    var dataDirectory = "/tmp/kubeshark-worker"

    @Option(name: .customLong("storage-limit"), help: "Most bytes the ring may take: 500Mi, 10Gi, 1G...")
    var storageLimit = "500Mi"

    @Option(name: .customLong("ring-share"),
            help: "Percent of --storage-limit the ring may take; the rest is room for sessions' retained packets (in a pod whose emptyDir is the storage limit).")
    var ringShare = 100

    @Option(name: .customLong("host"), help: "Address the API listens on.")
    var host = "127.0.0.1"

    @Option(name: .customLong("port"), help: "Port the API listens on (0: any free port).")
    var port = 8897

    @Option(name: .customLong("name"), help: "This worker's name in statistics.")
    var name = "worker"

    @Option(name: .customLong("token"),
            help: "Access token every API request must carry; generated and printed when --host is not loopback.")
    var token: String?

    @Option(name: .customLong("client-queue-limit"),
            help: "Most bytes of entries waiting for one client; a slower client is disconnected with the reason.")
    var clientQueueLimit = "16Mi"

    @OptionGroup var tlsOptions: TLSOptions

    @OptionGroup var pluginOptions: PluginOptions

    @OptionGroup var scriptOptions: ScriptOptions

    func validate() throws {
        if [!interface.isEmpty, r != nil, followHub].filter({ $0 }).count != 1 {
            throw ValidationError("give one of -i INTERFACE, -r FILE or --pods")
        }
        if !(10...100).contains(ringShare) { throw ValidationError("--ring-share must be between 10 and 100") }
        if byAddress && !followHub { throw ValidationError("--by-address goes with --pods") }
        if !(hubInterval >= 0.1) { throw ValidationError("--hub-interval must be at least 0.1 seconds") }
        if let hubURL, !hubURL.hasPrefix("http://") { throw ValidationError("--hub '\(hubURL)' is not http://HOST:PORT") }
        if hubURL != nil && advertise == nil && (host == "0.0.0.0" || host == "::") {
            throw ValidationError("--hub with --host \(host): give --advertise http://ADDRESS:PORT, the address the hub reaches")
        }
        if let advertise, !advertise.hasPrefix("http://") { throw ValidationError("--advertise '\(advertise)' is not http://HOST:PORT") }
        guard StorageQuantity(clientQueueLimit) != nil else {
            throw ValidationError("--client-queue-limit: '\(clientQueueLimit)' is not a quantity")
        }
        guard StorageQuantity(storageLimit) != nil else {
            throw ValidationError("--storage-limit: '\(storageLimit)' is not a quantity (500Mi, 10Gi, 1G...)")
        }
    }

    func run() async throws {
        pluginOptions.bootstrapLogging()
        let (plugins, refusedPlugins) = try pluginOptions.startPlugins(tolerant: true)
        var source: CaptureBackend?
        do {
            if !interface.isEmpty {
                source = try LiveCapture.open(LiveCapture.interfaces(interface), options: live, filter: filter)
            } else if let r {
                let file = try LibpcapBackend(file: r)
                if let filter { try file.setFilter(filter) }
                source = file
            }
        } catch {
            throw fail(error.message)
        }
        var config = WorkerConfiguration(dataDirectory: dataDirectory)
        config.refusedPlugins = refusedPlugins
        config.storageLimit = StorageQuantity(storageLimit)!.bytes / 100 * Int64(ringShare)
        config.host = host
        config.port = port
        config.name = name
        config.clientQueueBytes = Int(StorageQuantity(clientQueueLimit)!.bytes)
        scriptOptions.apply(to: &config)
        config.accessToken = WorkerAPI.accessToken(given: token, host: host)
        var logger = Logger(label: "worker")
        logger.logLevel = Logger.Level(rawValue: pluginOptions.logLevel) ?? .warning
        let nodePods = self.nodePods
        let node = followHub ? try nodePods.start() : nil
        let service: WorkerService
        do {
            if let source {
                service = try WorkerService(configuration: config, backend: source, plugins: plugins, logger: logger)
            } else {
                // Pods' interfaces are Ethernet; 'any' (--by-address) is Linux cooked v2.
                service = try WorkerService(configuration: config, linkType: byAddress ? 276 : 1, plugins: plugins, logger: logger)
            }
        } catch {
            throw fail(error.description)
        }
        // Live capture also reads TLS plaintext (not a capture file's replay): of the pods behind
        // the interfaces, or, with --pods, of the targeted pods (the follower keeps the scope).
        let tracer = node != nil ? tlsOptions.start(scope: [], log: service.tlsLog)
            : interface.isEmpty ? nil : tlsOptions.start(capturing: LiveCapture.interfaces(interface), log: service.tlsLog)
        defer { tracer?.close() }
        try scriptOptions.load(into: service)
        var watcher: Task<Void, Never>?
        if let (overrides, pods) = node {
            let follower = PodFollower(service: service, selection: .hub([]), live: live, filter: filter, byAddress: byAddress,
                                       label: "worker", tls: tracer)
            follower.apply(pods)
            service.acceptTargets { follower.target($0) }
            watcher = follower.follow(every: nodePods.refreshSeconds) { try nodePods.discover(overrides) }
        }
        defer { watcher?.cancel() }
        // A parent may have spawned us with these signals blocked; the server's
        // graceful shutdown needs them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        let what = r.map { "serving \($0)" }
            ?? source.map { "capturing on \(LiveCapture.interfaces(interface).joined(separator: ",")) with \($0.name)" }
            ?? "capturing the pods a hub targets"
        let limit = ringShare == 100 ? storageLimit : "\(ringShare)% of \(storageLimit)"
        let dir = dataDirectory
        let listenHost = host
        let tokenQuery = config.accessToken.map { "/?token=\($0)" } ?? ""
        let registration = Mutex<Task<Void, Never>?>(nil)
        let hubURL = hubURL
        let hubToken = hubToken
        let advertise = advertise
        let name = name
        let interval = hubInterval
        let app = WorkerAPI.makeApplication(service: service) { port in
            warn("worker listening on http://\(listenHost):\(port)\(tokenQuery) (\(what); ring \(dir)/ring, limit \(limit))")
            // Registration starts once the port is known (port 0 picks one).
            if let hubURL {
                let hub = HubRegistration(hubURL: hubURL, token: hubToken, name: name,
                                          advertisedURL: advertise ?? "http://\(listenHost):\(port)",
                                          interval: .milliseconds(Int(interval * 1000)))
                registration.withLock { $0 = Task.detached { await hub.run { warn("worker: \($0)") } } }
            }
        }
        defer { registration.withLock { $0?.cancel() } }
        do {
            try await app.runService()
        } catch {
            service.shutdown()
            throw fail("worker API: \(error)")
        }
        service.shutdown()
        let s = service.ring.statistics
        warn("worker stopped: \(s.packetsWritten) packets in the ring, \(s.droppedQueueFull + s.droppedDiskError) dropped")
    }
}

struct PcapDump: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pcapdump",
        abstract: "Export the raw master PCAP ring (dissected or not) for a time range as one pcap file.",
        discussion: "Times: Unix seconds, RFC 3339 (2026-11-29T01:02:03Z), or relative (-5m, -2h).")

    @Option(name: .customLong("data-dir"), help: "The worker's data directory (or its ring directory).")
    var dataDirectory = "/tmp/kubeshark-worker"

    @Option(name: .customLong("from"), help: "First packet time to include.")
    var from: String?

    @Option(name: .customLong("to"), help: "Last packet time to include.")
    var to: String?

    @Option(name: .short, help: "Output pcap file.")
    var w: String

    func run() throws {
        var bounds: [Int64?] = []
        for (flag, text) in [("--from", from), ("--to", to)] {
            guard let text else { bounds.append(nil); continue }
            guard let t = TimeBound.parse(text) else {
                throw fail("\(flag): '\(text)' is not a time (Unix seconds, RFC 3339, or -5m)")
            }
            bounds.append(t)
        }
        let view: RingDirectoryView
        do {
            view = try RingDirectoryView(directory: dataDirectory + "/ring")
        } catch {
            do { view = try RingDirectoryView(directory: dataDirectory) } catch { throw fail(error.description) }
        }
        do {
            let n = try RingExport.write(to: w, catalogue: view, fromNs: bounds[0], toNs: bounds[1])
            warn("\(n) packets written to \(w)")
        } catch {
            throw fail(error.description)
        }
    }
}
