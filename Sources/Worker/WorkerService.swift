import Foundation
import Host
import Logging
import Scripting
import Synchronization

/// How a worker runs.
public struct WorkerConfiguration: Sendable {
    /// Where the ring's segments and the sessions' retained packets live.
    public var dataDirectory: String
    public var storageLimit: Int64 = 500 << 20
    /// Address and port the API listens on (port 0 picks a free one).
    public var host = "127.0.0.1"
    public var port = 8897
    /// Name reported in statistics and entries' `worker` field.
    public var name = "worker"
    /// Bound on the summaries waiting for one client, and on the full entries a session keeps.
    public var clientQueueBytes = 16 << 20
    public var sessionEntryBytes = 16 << 20
    /// Most sessions open at once.
    public var maxSessions = 32
    /// When set, every API request must carry it (required off loopback).
    public var accessToken: String?
    /// Plugins left out at start, each "what: why" (shown in statistics and the dashboard).
    public var refusedPlugins: [String] = []
    /// Scripts (docs/scripting.md): the global `env` they see, the URL
    /// prefixes `vendor.webhook` may call (empty: any), and each heap's limits.
    public var scriptEnv: [String: String] = [:]
    public var scriptWebhookAllow: [String] = []
    public var scriptLimits = ScriptLimits()
    /// Most bytes the scripting directory may hold (`<data-dir>/scripting`).
    public var scriptStorageLimitBytes: Int64 = 1 << 30

    public init(dataDirectory: String) { self.dataDirectory = dataDirectory }
}

/// The worker: capture into the master ring, dissection sessions on demand,
/// and the state the API serves. `WorkerAPI` puts it on the network.
public final class WorkerService: Sendable {
    public let configuration: WorkerConfiguration
    public let ring: PacketRing
    private let captureState = Mutex(CaptureState())
    private let pods = Mutex<[LocalPod]>([])
    private let node = Mutex(NodeState())
    let plugins: [LoadedPlugin]
    let macros: [String: String]
    let logger: Logger
    /// Pod names for entries' endpoints (set by `kubeshark tap`'s pod discovery).
    public let endpointNames = EndpointNames()
    /// TLS plaintext from the OpenSSL probes (filled by a `TLSTracer` when TLS capture is on).
    public let tlsLog = TLSChunkLog()
    private let sessions = Mutex<[String: ClientSession]>([:])
    private let nextSession = Atomic<Int>(1)
    private let startedNs = monotonicNanoseconds()
    /// The scripts loaded into this worker; files they write live under `<data-dir>/scripting`.
    public let scripts: ScriptManager

    private struct NodeState {
        var pods: [LocalPod] = []
        var receiver: (@Sendable ([LocalPod]) -> Void)?
    }

    private struct CaptureState {
        var current: CaptureLoop?
        /// Counters of the backends replaced so far (pods came and went).
        var retired = CaptureStatistics()
    }

    /// Opens the ring and starts capturing from `backend` into it.
    /// - Parameter plugins: started plugins, shared by every session.
    public convenience init(configuration: WorkerConfiguration, backend: CaptureBackend, plugins: [LoadedPlugin],
                            logger: Logger = Logger(label: "worker")) throws(RingError) {
        try self.init(configuration: configuration, linkType: backend.linkType, plugins: plugins, logger: logger)
        replaceCapture(with: backend)
    }

    /// Opens the ring for packets of `linkType`, without capturing yet (see `replaceCapture`).
    public init(configuration: WorkerConfiguration, linkType: Int32, plugins: [LoadedPlugin],
                logger: Logger = Logger(label: "worker")) throws(RingError) {
        self.configuration = configuration
        self.plugins = plugins
        self.logger = logger
        macros = KFLMacros.from(plugins: plugins)
        var ringConfig = RingConfiguration(directory: configuration.dataDirectory + "/ring", linkType: linkType,
                                           storageLimit: configuration.storageLimit)
        ringConfig.flushIntervalNs = 50_000_000
        ring = try PacketRing(configuration: ringConfig, logger: logger)
        var environment = ScriptEnvironment(ring: ring, plugins: plugins, directory: configuration.dataDirectory + "/scripting",
                                            sessionDirectory: configuration.dataDirectory + "/sessions")
        environment.macros = macros
        environment.endpointNames = endpointNames
        environment.env = configuration.scriptEnv
        environment.webhook = Webhook(allowedPrefixes: configuration.scriptWebhookAllow)
        environment.limits = configuration.scriptLimits
        environment.storageLimitBytes = configuration.scriptStorageLimitBytes
        environment.nodeName = configuration.name
        scripts = ScriptManager(environment: environment, log: ScriptLog(logger: logger))
    }

    /// Stops the current capture (every packet it read reaches the ring) and
    /// starts capturing from `backend` (nil: capture nothing), into the same ring.
    public func replaceCapture(with backend: CaptureBackend?) {
        let old = captureState.withLock { s -> CaptureLoop? in
            let old = s.current
            s.current = nil
            return old
        }
        if let old {
            old.stop()
            let stats = old.snapshot.statistics
            captureState.withLock { $0.retired.add(stats) }
            old.backend.close()
        }
        guard let backend else { return }
        let loop = CaptureLoop(backend: backend, ring: ring)
        captureState.withLock { $0.current = loop }
        loop.start()
    }

    /// The pods this worker captures (shown by `/api/pods`).
    public var targetedPods: [LocalPod] {
        get { pods.withLock { $0 } }
        set { pods.withLock { $0 = newValue } }
    }

    /// Every pod on this worker's node, targeted or not: what a hub chooses from
    /// (`GET /api/node/pods`).
    public var nodePods: [LocalPod] {
        get { node.withLock { $0.pods } }
        set { node.withLock { $0.pods = newValue } }
    }

    /// Lets a hub choose the pods to capture (`PUT /api/targets`): `receiver` gets
    /// the pods it sends. A worker without one captures what it was told at start.
    public func acceptTargets(_ receiver: @escaping @Sendable ([LocalPod]) -> Void) {
        node.withLock { $0.receiver = receiver }
    }

    /// Hands the hub's targets to the receiver; false when there is none.
    func receiveTargets(_ targets: [LocalPod]) -> Bool {
        guard let receiver = node.withLock({ $0.receiver }) else { return false }
        receiver(targets)
        return true
    }

    var acceptsTargets: Bool { node.withLock { $0.receiver != nil } }

    // MARK: Sessions

    /// Why a session was not opened.
    public enum OpenFailure: Error, Sendable {
        case badQuery(KFLError)
        case tooManySessions(Int)
        case storage(String)
    }

    /// Opens a session that dissects the ring (from `fromNs`, else the oldest
    /// packet) and then the live tail, for the entries `query` matches.
    public func openSession(query: String, fromNs: Int64? = nil) throws(OpenFailure) -> ClientSession {
        let compiled: KFLQuery?
        do {
            compiled = query.trimmingCharacters(in: .whitespaces).isEmpty ? nil : try KFLQuery.compile(query, macros: macros)
        } catch {
            throw .badQuery(error)
        }
        let open = sessions.withLock { $0.count }
        guard open < configuration.maxSessions else { throw .tooManySessions(configuration.maxSessions) }
        let id = "s\(nextSession.wrappingAdd(1, ordering: .relaxed).oldValue)"
        let outbound = OutboundQueue(limitBytes: configuration.clientQueueBytes)
        let entries = EntryStore(limitBytes: configuration.sessionEntryBytes)
        let sink = SummarySink(sessionID: id, outbound: outbound, entries: entries)
        let ringSession: RingSession
        do {
            ringSession = try RingSession(
                id: id, ring: ring, plugins: plugins, query: compiled, fromNs: fromNs,
                storeDirectory: configuration.dataDirectory + "/sessions/" + id, sink: sink, names: endpointNames,
                nowMs: { wallClockNanoseconds() / 1_000_000 }, tls: tlsLog)
        } catch {
            throw .storage(error.description)
        }
        let session = ClientSession(id: id, query: query, ringSession: ringSession, outbound: outbound, entries: entries)
        sessions.withLock { $0[id] = session }
        ringSession.start()
        logger.info("session \(id) opened: \(query.isEmpty ? "(all)" : query)")
        return session
    }

    /// Closes a session: stops its dissection and deletes what it retained.
    public func closeSession(_ id: String, reason: String) {
        guard let session = sessions.withLock({ $0.removeValue(forKey: id) }) else { return }
        session.ringSession.close()
        session.outbound.finish()
        logger.info("session \(id) closed: \(reason)")
    }

    public func session(_ id: String) -> ClientSession? { sessions.withLock { $0[id] } }
    public var openSessions: [ClientSession] { sessions.withLock { Array($0.values) }.sorted { $0.id < $1.id } }

    // MARK: State

    /// Capture runs (or a capture file was read whole) and the ring accepts packets.
    public var isReady: Bool {
        guard let capture = captureState.withLock({ $0.current }) else { return false }
        let s = capture.snapshot
        return s.running || (s.ended && s.failure == nil && capture.backend.name == "pcap-file")
    }
    public var captureSnapshot: (statistics: CaptureStatistics, running: Bool, failure: String?) {
        let (capture, retired) = captureState.withLock { ($0.current, $0.retired) }
        guard let capture else { return (retired, false, nil) }
        let s = capture.snapshot
        var total = retired
        total.add(s.statistics)
        return (total, s.running, s.failure)
    }
    public var backendName: String { captureState.withLock { $0.current?.backend.name } ?? "none" }
    public var uptimeSeconds: Double { Double(monotonicNanoseconds() - startedNs) / 1e9 }

    /// Stops capture, closes every session, and closes the ring (its last
    /// segment's index is written).
    public func shutdown() {
        scripts.shutdown()
        replaceCapture(with: nil)
        for s in openSessions { closeSession(s.id, reason: "worker stopping") }
        ring.close()
    }
}
