import Synchronization

/// A dissection session over the ring: opened by a query (a dashboard
/// connection, a script), it dissects the ring from its oldest packet (or a
/// given time) and then the live tail, on its own thread with its own
/// reassembly state, and sends the entries its query matches to `sink`.
///
/// While it is open, the flows it produced entries for are retained: when the
/// ring flushes a segment holding their packets, those packets are copied to
/// the session's store first (`RetentionStore`), so the entry's pcap stays
/// downloadable. Closing the session deletes what it kept.
public final class RingSession: @unchecked Sendable {
    public let id: String
    public let retention: RetentionStore
    private let ring: PacketRing
    private let reader: RingReader
    private let dissection: DissectionSession
    private let retaining: RetainingSink
    /// TLS plaintext dissected beside the ring's packets, and where this session is in it.
    private let tls: TLSChunkLog?
    private var tlsCursor: UInt64 = 0
    /// The TLS chunks being dissected, reused from batch to batch.
    private var tlsBatch: [TLSChunk] = []
    private var thread: BackgroundThread?
    private let progress = Mutex(Progress())

    /// What a session has done so far.
    public struct Progress: Sendable, Equatable {
        public var packetsRead: UInt64 = 0
        public var entriesMatched: UInt64 = 0
        /// The session caught up with the live end of the ring at least once.
        public var caughtUp = false
        public var segmentsMissed = 0
    }

    /// - Parameters:
    ///   - plugins: started plugins (shared with other sessions).
    ///   - query: entries to pass on; nil passes all.
    ///   - fromNs: start at this capture time instead of the oldest packet.
    ///   - storeDirectory: where the session keeps retained packets (its own directory).
    ///   - sink: receives matching entries, on the session's thread.
    ///   - names: pod names for the entries' endpoints.
    ///   - nowMs: the clock for KFL's `now()`.
    ///   - tls: the worker's TLS plaintext, dissected beside the packets (see `TLSTracer`).
    public init(id: String, ring: PacketRing, plugins: [LoadedPlugin], query: KFLQuery?, fromNs: Int64? = nil,
                storeDirectory: String, sink: EntrySink, names: EndpointNames? = nil,
                nowMs: @escaping () -> Int64, tls: TLSChunkLog? = nil) throws(RingError) {
        self.id = id
        self.tls = tls
        tlsCursor = tls?.cursor(fromNs: fromNs) ?? 0
        self.ring = ring
        retention = try RetentionStore(directory: storeDirectory, linkType: ring.configuration.linkType)
        let retaining = RetainingSink(next: sink, store: retention)
        self.retaining = retaining
        let filtered: EntrySink = query.map { KFLFilterSink(query: $0, next: retaining, nowMs: nowMs) } ?? retaining
        var configuration = SessionConfiguration()
        configuration.endpointNames = names
        dissection = DissectionSession(plugins: plugins, sink: filtered, configuration: configuration)
        reader = RingReader(catalogue: ring, fromNs: fromNs, follow: true)
    }

    /// Starts dissecting on the session's own thread.
    public func start() {
        ring.addEvictionObserver(retention)
        thread = BackgroundThread { [self] in run() }
    }

    private func run() {
        while true {
            let outcome: CaptureReadOutcome
            do {
                outcome = try reader.read(maxPackets: 256) { dissection.process($0) }
            } catch {
                break
            }
            if let tls {
                tls.read(from: &tlsCursor, into: &tlsBatch)
                for i in tlsBatch.indices { dissection.process(tls: tlsBatch[i]) }
            }
            let stats = reader.statistics
            progress.withLock {
                $0.packetsRead = stats.received
                $0.entriesMatched = retaining.count
                $0.segmentsMissed = reader.segmentsMissed
                if outcome == .timeout { $0.caughtUp = true }
            }
            if outcome == .end { break }
        }
        dissection.finish()
        progress.withLock { $0.entriesMatched = retaining.count }
    }

    /// What the session has done so far.
    public var current: Progress { progress.withLock { $0 } }

    /// Stops the session, emits what is pending, and deletes what it retained.
    public func close() {
        reader.breakLoop()
        thread?.join()
        thread = nil
        ring.removeEvictionObserver(retention)
        retention.close()
    }
}

/// Marks the flow of every entry it passes on as retained.
final class RetainingSink: EntrySink {
    private let next: EntrySink
    private let store: RetentionStore
    private let matched = Atomic<UInt64>(0)

    init(next: EntrySink, store: RetentionStore) {
        self.next = next
        self.store = store
    }

    var count: UInt64 { matched.load(ordering: .relaxed) }

    func emit(_ entry: EntryView) {
        store.retain(FlowHash(entry: entry))
        matched.add(1, ordering: .relaxed)
        next.emit(entry)
    }
}
