import Foundation
import Host
import Synchronization

/// One active script: its own heap (DuktapeEngine) on its own thread, the
/// hooks it defines fed from its own ring session and packet tail, and its
/// jobs. A call that throws is logged and the script goes on; a call that runs
/// out of time or memory stops the script (its heap is not trusted again).
/// Nothing a script does blocks capture, other scripts, or the API.
public final class ScriptRunner: @unchecked Sendable {
    public let title: String
    public let source: String
    let environment: ScriptEnvironment
    let log: ScriptLog

    /// What the API shows about a script.
    public struct Status: Sendable, Equatable {
        /// "starting", "running", "stopped" (deactivated) or "failed".
        public var state = "starting"
        public var reason: String?
        public var hooks: [String] = []
        public var entries: UInt64 = 0
        public var packets: UInt64 = 0
        public var packetBatchesDropped: UInt64 = 0
        public var queries: UInt64 = 0
        public var errors: UInt64 = 0
        public var jobRuns: UInt64 = 0
        public var memoryBytes = 0
        public var memoryPeakBytes = 0
    }

    private let statusLock = Mutex(Status())
    public var status: Status { statusLock.withLock { $0 } }

    enum Work {
        case entry([UInt8], stream: String, flow: FlowHash)
        case packets([Double])
        case query([UInt8], flow: FlowHash?, stream: String?, reply: @Sendable ([UInt8]?) -> Void)
    }

    // Shared with producers, under `condition`.
    private let condition = NSCondition()
    private var work: [Work] = []
    private var queuedEntryBytes = 0
    private var queuedPacketBatches = 0
    private var closing = false
    private var thread: BackgroundThread?

    // The runner thread's own.
    private(set) var engine: DuktapeEngine?
    /// The entries of the batch the heap is running, for `kfl.match` on the hook's own argument.
    var batchEntries: [[UInt8]] = []
    private var session: RingSession?
    var sessionRetention: RetentionStore? { session?.retention }
    private var tail: PacketTail?
    var streams = StreamTable()
    var jobs: [String: ScheduledJob] = [:]
    var schedulerRunning = true
    var kflCache: [String: KFLQuery] = [:]
    let files: ScriptFiles
    var snapshotCounter = 0
    private var errorsLogged = 0
    private var lastErrorLogNs: Int64 = 0
    private var errorsSuppressed = 0
    var lastStorageLogNs: Int64 = 0
    var storageRefusalsSuppressed = 0

    struct ScheduledJob {
        var schedule: CronSchedule
        var nextNs: Int64?
    }

    init(title: String, source: String, environment: ScriptEnvironment, storage: ScriptStorage,
         log: ScriptLog) throws(HelperError) {
        self.title = title
        self.source = source
        self.environment = environment
        self.log = log
        files = try ScriptFiles(root: environment.directory, storage: storage)
    }

    /// Starts the script's thread: loads it, then serves its hooks and jobs.
    func start() {
        thread = BackgroundThread { [self] in main() }
    }

    /// Stops the script (a deactivation) and waits for its thread.
    func stop(reason: String) {
        condition.lock()
        let wasClosing = closing
        closing = true
        condition.broadcast()
        condition.unlock()
        guard let thread else { return }
        thread.join()
        self.thread = nil
        if !wasClosing {
            statusLock.withLock { s in
                if s.state != "failed" {
                    s.state = "stopped"
                    s.reason = reason
                }
            }
        }
    }

    // MARK: Producers (other threads)

    /// An entry from the script's session; waits while the script is behind.
    func offerEntry(_ json: [UInt8], stream: String, flow: FlowHash) {
        condition.lock()
        defer { condition.unlock() }
        while !closing && queuedEntryBytes > environment.entryQueueBytes { condition.wait() }
        guard !closing else { return }
        queuedEntryBytes += json.count
        // The script's thread waits only for an empty queue: wake it once per batch, not per entry.
        if work.isEmpty { condition.broadcast() }
        work.append(.entry(json, stream: stream, flow: flow))
    }

    /// A batch of packet metadata; dropped (and counted) when the script is far behind.
    func offerPackets(_ batch: [Double]) {
        condition.lock()
        defer { condition.unlock() }
        guard !closing else { return }
        guard queuedPacketBatches < 64 else {
            statusLock.withLock { $0.packetBatchesDropped += 1 }
            return
        }
        queuedPacketBatches += 1
        work.append(.packets(batch))
        condition.broadcast()
    }

    /// Runs `onItemQueried`; `reply` gets the changed entry, or nil to keep it as it was.
    func offerQuery(_ json: [UInt8], flow: FlowHash?, stream: String?, reply: @escaping @Sendable ([UInt8]?) -> Void) {
        condition.lock()
        guard !closing else {
            condition.unlock()
            reply(nil)
            return
        }
        work.append(.query(json, flow: flow, stream: stream, reply: reply))
        condition.broadcast()
        condition.unlock()
    }

    // MARK: The script's thread

    private func main() {
        if load() {
            serve()
        }
        shutdown()
    }

    /// Creates the heap, installs helpers and the prelude, runs the script's top level.
    private func load() -> Bool {
        do throws(ScriptFailure) {
            let engine = try DuktapeEngine(limits: environment.limits)
            self.engine = engine
            engine.install(helpers())
            try engine.run(source: Prelude.source, name: "prelude")
            var envObject: [JSONMember] = []
            for (k, v) in environment.env.sorted(by: { $0.key < $1.key }) { envObject.append(JSONMember(key: k, value: .string(v))) }
            try engine.run(source: "var env = " + String(decoding: JSONValue.object(envObject).jsonBytes, as: UTF8.self) + ";",
                           name: "env")
            try engine.run(source: source, name: title)
        } catch {
            fail("could not load: \(error)")
            return false
        }
        guard let engine else { return false }
        let hooks = ["onItemCaptured", "onPacketCaptured", "onItemQueried", "onJobPassed", "onJobFailed"]
            .filter { engine.hasFunction($0) }
        updateStatus { $0.state = "running"; $0.hooks = hooks }
        if hooks.contains("onItemCaptured") { openSession() }
        if hooks.contains("onPacketCaptured") {
            let tail = PacketTail(ring: environment.ring) { [weak self] in self?.offerPackets($0) }
            self.tail = tail
            tail.start()
        }
        log.append(script: title, level: "system", "activated (hooks: \(hooks.isEmpty ? "none" : hooks.joined(separator: ", ")))")
        return true
    }

    private func openSession() {
        let id = "script-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        do {
            let session = try RingSession(
                id: id, ring: environment.ring, plugins: environment.plugins, query: nil,
                storeDirectory: environment.sessionDirectory + "/" + id,
                sink: ScriptEntrySink(runner: self), names: environment.endpointNames,
                nowMs: { wallClockNanoseconds() / 1_000_000 })
            self.session = session
            session.start()
        } catch {
            log.append(script: title, level: "system", "onItemCaptured gets no entries: cannot open a session: \(error)")
        }
    }

    private func serve() {
        while true {
            condition.lock()
            while work.isEmpty && !closing {
                let due = nextJobDueNs()
                if let due {
                    let waitNs = due - wallClockNanoseconds()
                    if waitNs <= 0 { break }
                    _ = condition.wait(until: Date(timeIntervalSinceNow: Double(waitNs) / 1e9))
                } else {
                    condition.wait()
                }
            }
            if closing {
                condition.unlock()
                return
            }
            let batch = work
            work.removeAll(keepingCapacity: true)
            queuedEntryBytes = 0
            queuedPacketBatches = 0
            condition.broadcast()
            condition.unlock()

            guard runDueJobs() else { return }
            var i = 0
            while i < batch.count {
                // Consecutive entries go to the heap together (one call, one JSON decode).
                var end = i, bytes = 0
                while end < batch.count, end - i < Self.entryBatchCount, bytes < Self.entryBatchBytes,
                      case .entry(let json, _, _) = batch[end] {
                    bytes += json.count
                    end += 1
                }
                let ok = end > i ? handleEntries(batch[i..<end]) : handle(batch[i])
                i = max(end, i + 1)
                guard ok else {
                    for case .query(_, _, _, let reply) in batch[i...] { reply(nil) }
                    return
                }
            }
        }
    }

    /// Most entries, and about the most bytes of them, in one call into the heap.
    static let entryBatchCount = 256
    static let entryBatchBytes = 1 << 20

    /// Hands consecutive entries to `onItemCaptured` in one call: the prelude's
    /// `__ksEntries` gets them as one array (one JSON decode) and calls the hook per entry,
    /// each call with its own budget; a throw ends only its entry's call.
    private func handleEntries(_ items: ArraySlice<Work>) -> Bool {
        guard let engine else { return false }
        var list: [UInt8] = [UInt8(ascii: "[")]
        batchEntries.removeAll(keepingCapacity: true)
        for case .entry(let json, let stream, let flow) in items {
            streams.remember(stream, flow)
            if !batchEntries.isEmpty { list.append(UInt8(ascii: ",")) }
            list.append(contentsOf: json)
            batchEntries.append(json)
        }
        list.append(UInt8(ascii: "]"))
        updateStatus { $0.entries += UInt64(batchEntries.count) }
        defer { batchEntries.removeAll(keepingCapacity: true) }
        return call(engine, "__ksEntries", [.jsonBytes(list)], items: batchEntries.count, as: "onItemCaptured") != nil
    }

    /// Handles one item; false when the script had to be stopped.
    private func handle(_ item: Work) -> Bool {
        guard let engine else { return false }
        switch item {
        case .entry:
            return handleEntries([item][...])
        case .packets(let batch):
            updateStatus { $0.packets += UInt64(batch.count / PacketTail.stride) }
            return call(engine, "__ksPackets", [.numbers(batch)]) != nil
        case .query(let json, let flow, let stream, let reply):
            if let flow, let stream { streams.remember(stream, flow) }
            updateStatus { $0.queries += 1 }
            let result = call(engine, "onItemQueried", [.jsonBytes(json)])
            switch result {
            case .json(let text)?: reply(Array(text.utf8))
            default: reply(nil)
            }
            return result != nil
        }
    }

    /// Calls a function (`label` names it in the log); logs a throw. Returns nil when the script was stopped.
    private func call(_ engine: DuktapeEngine, _ function: String, _ arguments: [ScriptValue], items: Int = 0,
                      as label: String? = nil) -> ScriptValue? {
        let name = label ?? function
        do throws(ScriptFailure) {
            let value = try engine.call(function, arguments, items: items)
            updateStatus { $0.memoryBytes = engine.memoryUsed; $0.memoryPeakBytes = engine.memoryPeak }
            return value
        } catch {
            if error.isFatal {
                fail("\(name): \(error)")
                return nil
            }
            updateStatus { $0.errors += 1 }
            logError("\(name) threw: \(error)")
            return .undefined
        }
    }

    /// Logs a script's error, at most a few a second (a hook failing on every entry).
    func logError(_ message: String) {
        let now = monotonicNanoseconds()
        if errorsLogged < 10 || now - lastErrorLogNs >= 1_000_000_000 {
            let more = errorsSuppressed > 0 ? " (\(errorsSuppressed) more errors not shown)" : ""
            log.append(script: title, level: "error", message + more)
            errorsLogged += 1
            errorsSuppressed = 0
            lastErrorLogNs = now
        } else {
            errorsSuppressed += 1
        }
    }

    private func fail(_ reason: String) {
        log.append(script: title, level: "system", "stopped: \(reason)")
        updateStatus { $0.state = "failed"; $0.reason = reason }
        condition.lock()
        closing = true
        condition.broadcast()
        condition.unlock()
    }

    private func shutdown() {
        condition.lock()
        closing = true
        let pending = work
        work.removeAll()
        condition.broadcast()
        condition.unlock()
        for case .query(_, _, _, let reply) in pending { reply(nil) }
        session?.close()
        session = nil
        tail?.stop()
        tail = nil
        engine = nil
    }

    func updateStatus(_ change: (inout Status) -> Void) { statusLock.withLock { change(&$0) } }

    // MARK: Jobs

    private func nextJobDueNs() -> Int64? {
        guard schedulerRunning else { return nil }
        return jobs.values.compactMap(\.nextNs).min()
    }

    /// Runs every job due now; false when the script had to be stopped.
    private func runDueJobs() -> Bool {
        guard schedulerRunning, let engine else { return true }
        let now = wallClockNanoseconds()
        for (tag, job) in jobs.sorted(by: { $0.key < $1.key }) {
            guard let due = job.nextNs, due <= now else { continue }
            jobs[tag]?.nextNs = job.schedule.next(afterNs: now)
            updateStatus { $0.jobRuns += 1 }
            guard call(engine, "__ksRunJob", [.string(tag)]) != nil else { return false }
        }
        return true
    }
}

/// Hands a script session's entries to its runner.
final class ScriptEntrySink: EntrySink {
    private weak var runner: ScriptRunner?

    init(runner: ScriptRunner) { self.runner = runner }

    func emit(_ entry: EntryView) {
        runner?.offerEntry(Array(entry.json), stream: StreamTable.key(entry.streamID), flow: FlowHash(entry: entry))
    }
}

/// The flows behind the `stream` values a script has seen, for `pcap.path`
/// and `pcap.snapshot`; the oldest are forgotten beyond a bound.
struct StreamTable {
    static let capacity = 65_536
    private var flows: [String: FlowHash] = [:]
    private var order: [String] = []
    private var head = 0

    /// An entry's `stream` text for its stream id (as the entry JSON writes it).
    static func key(_ id: UInt64) -> String {
        let hex = String(id, radix: 16)
        return String(repeating: "0", count: max(0, 16 - hex.count)) + hex
    }

    mutating func remember(_ stream: String, _ flow: FlowHash) {
        if flows.updateValue(flow, forKey: stream) == nil {
            order.append(stream)
            if order.count - head > Self.capacity {
                flows.removeValue(forKey: order[head])
                head += 1
                if head > Self.capacity {
                    order.removeFirst(head)
                    head = 0
                }
            }
        }
    }

    func flow(_ stream: String) -> FlowHash? { flows[stream] }
}
