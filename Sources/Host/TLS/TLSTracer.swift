import Glibc
import Synchronization

/// Which processes TLS capture covers.
public enum TLSScope: Sendable, Equatable {
    /// Every process of the machine (but this one).
    case allProcesses
    /// The processes in these network namespaces (inodes), as pods are on this machine.
    case networkNamespaces(Set<UInt32>)

    /// The processes in the named network namespaces (`ip netns` names); unknown names are skipped.
    public static func namespaces(named names: [String]) -> TLSScope {
        .networkNamespaces(Set(names.compactMap { TLSProcesses.networkNamespace(named: $0) }))
    }
}

/// What TLS capture found about one process in scope.
public struct TLSProcessFinding: Sendable, Equatable, CustomStringConvertible {
    public var pid: Int32
    public var process: String
    /// `openssl` (probes attached), `openssl-static` (attached to the executable) or `unsupported`.
    public var status: String
    public var detail: String

    public var description: String { "TLS: process \(pid) (\(process)): \(detail)" }
}

/// Counters of TLS capture.
public struct TLSTracerStatistics: Sendable, Equatable {
    public var probe = TLSProbeCounters()
    /// Chunks read from the probes' ring, and those dropped because nobody drained them.
    public var chunksRead: UInt64 = 0
    public var chunksDropped: UInt64 = 0
    public var librariesAttached = 0
    public var links = 0
}

/// TLS capture: loads the OpenSSL uprobes, attaches them to each libssl the
/// processes in scope map (once per library file, for every process mapping
/// it; new processes are found by rescanning /proc), reports processes whose
/// TLS cannot be traced, and queues the plaintext for a dissection thread
/// (`drain`). Everything is detached on `close`.
public final class TLSTracer: @unchecked Sendable {
    /// Most chunks queued for `drain`; beyond it chunks are dropped and counted.
    public static let queueLimit = 65_536
    /// How often /proc is rescanned for new processes and libraries: often for targeted
    /// pods, seldom when every process is in scope (the system's libssl is attached from
    /// the start either way).
    var rescanIntervalNs: Int64 {
        if case .allProcesses = scope { return 2_000_000_000 }
        return 250_000_000
    }

    private let probe: TLSProbe
    private let log: TLSChunkLog?
    private let report: @Sendable (TLSProcessFinding) -> Void
    private let queue = Mutex<[TLSChunk]>([])
    /// The queue's other array: `drain(_:)` swaps the two, so neither is reallocated.
    private let drained = Mutex<[TLSChunk]>([])
    private let pendingScope = Mutex<TLSScope?>(nil)
    private let published = Mutex(TLSTracerStatistics())
    private let foundList = Mutex<[TLSProcessFinding]>([])
    private let running = Atomic<Bool>(true)
    private var thread: BackgroundThread?

    // Owned by the tracer's thread.
    private var scope: TLSScope = .allProcesses
    private var processes: [Int32: ProcessState] = [:]
    private var examinedExecutables: [FileIdentity: String?] = [:]
    /// Listening ports per network namespace, and when they were read.
    private var listening: [UInt32: (ports: Set<UInt16>, readNs: Int64)] = [:]
    private var read: UInt64 = 0
    private var dropped: UInt64 = 0

    private enum ProcessState { case waiting, traced, reported }

    /// Loads and starts TLS capture; throws one line when the kernel or the
    /// privileges do not allow it. `report` hears about each process in scope
    /// whose TLS is traced or cannot be. With `log`, chunks go there (for the worker's
    /// sessions) instead of waiting for `drain`.
    public init(scope: TLSScope, log: TLSChunkLog? = nil,
                report: @escaping @Sendable (TLSProcessFinding) -> Void = { _ in }) throws(TLSProbeError) {
        probe = try TLSProbe()
        self.log = log
        self.report = report
        apply(scope)
        // The system's libssl, so short-lived clients started before the next rescan are seen.
        for path in Self.systemLibraries where access(path, R_OK) == 0 { _ = try? probe.attach(library: path) }
        scan()
        publish()
        thread = BackgroundThread { [self] in run() }
    }

    deinit { close() }

    static let systemLibraries: [String] = {
        var machine = utsname()
        uname(&machine)
        let arch = withUnsafeBytes(of: machine.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return ["/usr/lib/\(arch)-linux-gnu/libssl.so.3", "/usr/lib/\(arch)-linux-gnu/libssl.so.1.1",
                "/usr/lib64/libssl.so.3", "/usr/lib/libssl.so.3"]
    }()

    /// Changes which processes are traced (pods came or went).
    public func setScope(_ scope: TLSScope) { pendingScope.withLock { $0 = scope } }

    /// Takes the chunks read so far, oldest first.
    public func drain() -> [TLSChunk] {
        queue.withLock { q in
            defer { q.removeAll(keepingCapacity: true) }
            return q
        }
    }

    /// Hands each chunk read so far to `body`, oldest first, then gives its buffer back to
    /// the pool (unless `body` kept the chunk): the steady state allocates nothing.
    /// One caller at a time.
    public func drain(_ body: (TLSChunk) -> Void) {
        var batch = drained.withLock { spare in
            var taken: [TLSChunk] = []
            swap(&taken, &spare)
            return taken
        }
        queue.withLock { q in swap(&q, &batch) }
        for i in batch.indices {
            body(batch[i])
            TLSPayloadPool.shared.recycle(&batch[i].payload)
        }
        batch.removeAll(keepingCapacity: true)
        drained.withLock { spare in swap(&spare, &batch) }
    }

    public var statistics: TLSTracerStatistics { published.withLock { $0 } }

    /// Every finding so far.
    public var findings: [TLSProcessFinding] { foundList.withLock { $0 } }

    /// Stops reading and detaches every probe.
    public func close() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        thread?.join()
        thread = nil
        publish()
        probe.close()
    }

    // MARK: - The tracer's thread

    private func run() {
        var lastScan = monotonicNanoseconds()
        var chunks: [TLSChunk] = []
        while running.load(ordering: .acquiring) {
            probe.poll(timeoutMs: 50, into: &chunks)
            if !chunks.isEmpty { enqueue(&chunks) }
            if let next = pendingScope.withLock({ s -> TLSScope? in defer { s = nil }; return s }), next != scope {
                apply(next)
                // Processes examined while out of scope are looked at again.
                processes = processes.filter { $0.value != .waiting }
            }
            let now = monotonicNanoseconds()
            if now - lastScan >= rescanIntervalNs {
                lastScan = now
                scan()
                publish()
            }
        }
        // What is still in the ring when capture stops.
        probe.poll(timeoutMs: 0, into: &chunks)
        enqueue(&chunks)
    }

    /// Passes the chunks on (to the log, or the queue for `drain`); `chunks` is left empty.
    private func enqueue(_ chunks: inout [TLSChunk]) {
        for i in chunks.indices {
            if let port = chunks[i].local?.port { chunks[i].localIsServer = isListening(port, chunks[i]) }
        }
        read &+= UInt64(chunks.count)
        if let log {
            log.append(taking: &chunks)
            return
        }
        queue.withLock { q in
            let room = max(0, Self.queueLimit - q.count)
            if chunks.count > room { dropped &+= UInt64(chunks.count - room) }
            for i in 0..<min(room, chunks.count) { q.append(chunks[i]) }
        }
        chunks.removeAll(keepingCapacity: true)
    }

    /// Whether `port` listens in the chunk's process's network namespace: that end
    /// is the server. Re-read at most every 50 ms for a port not seen listening.
    private func isListening(_ port: UInt16, _ chunk: TLSChunk) -> Bool {
        let now = monotonicNanoseconds()
        if let known = listening[chunk.netns], known.ports.contains(port) || now - known.readNs < 50_000_000 {
            return known.ports.contains(port)
        }
        let ports = TLSProcesses.listeningPorts(of: chunk.pid)
        listening[chunk.netns] = (ports, now)
        return ports.contains(port)
    }

    private func publish() {
        let s = TLSTracerStatistics(probe: probe.counters, chunksRead: read, chunksDropped: dropped,
                                    librariesAttached: probe.attached.count, links: probe.linkCount)
        published.withLock { $0 = s }
    }

    private func apply(_ next: TLSScope) {
        if case .networkNamespaces(let old) = scope { for ns in old { probe.removeNetworkNamespace(ns) } }
        scope = next
        switch next {
        case .allProcesses:
            probe.filterByNetworkNamespace(false)
        case .networkNamespaces(let set):
            for ns in set { probe.addNetworkNamespace(ns) }
            probe.filterByNetworkNamespace(true)
        }
    }

    private func inScope(_ pid: Int32) -> Bool {
        switch scope {
        case .allProcesses: return true
        case .networkNamespaces(let set): return TLSProcesses.networkNamespace(of: pid).map(set.contains) ?? false
        }
    }

    /// Finds the processes in scope and attaches to the TLS libraries they map.
    private func scan() {
        let me = getpid()
        var alive: Set<Int32> = []
        for pid in TLSProcesses.pids() where pid != me {
            alive.insert(pid)
            if let state = processes[pid], state != .waiting { continue }
            guard inScope(pid) else { continue }
            processes[pid] = examine(pid)
        }
        processes = processes.filter { alive.contains($0.key) }
    }

    private func examine(_ pid: Int32) -> ProcessState {
        guard let maps = readFile("/proc/\(pid)/maps") else { return .waiting }
        let name = readFile("/proc/\(pid)/comm") ?? "?"
        switch TLSProcesses.library(inMaps: maps) {
        case .openSSL(let path):
            // Through /proc/PID/root so a library inside a container's filesystem resolves too.
            let reachable = "/proc/\(pid)/root\(path)"
            do {
                let fresh = !probe.isAttached(reachable)
                guard try probe.attach(library: reachable) else {
                    note(pid, name, "unsupported", "\(path) does not export SSL_read/SSL_write")
                    return .reported
                }
                if fresh { note(pid, name, "openssl", "probes attached to \(path)") }
                return .traced
            } catch {
                note(pid, name, "unsupported", "cannot attach to \(path): \(error)")
                return .reported
            }
        case .unsupported(let library):
            note(pid, name, "unsupported", "uses \(library), which TLS capture does not cover")
            return .reported
        case .none:
            return examineExecutable(pid, name)
        }
    }

    /// No TLS library mapped: OpenSSL linked into the executable (with symbols: attach
    /// there), another TLS stack linked in (reported), or no TLS yet (looked at again later).
    /// Executables are only read for targeted processes, not when every process is in scope.
    private func examineExecutable(_ pid: Int32, _ name: String) -> ProcessState {
        if case .allProcesses = scope { return .waiting }
        let exe = "/proc/\(pid)/exe"
        guard let id = FileIdentity(path: exe) else { return .waiting }
        let verdict: String?
        if let known = examinedExecutables[id] {
            verdict = known
        } else {
            if (try? probe.attach(library: exe)) == true {
                verdict = "openssl-static"
            } else {
                verdict = TLSProcesses.staticTLS(inExecutable: exe)
            }
            examinedExecutables[id] = verdict
            if verdict == "openssl-static" { note(pid, name, "openssl-static", "OpenSSL linked statically: probes attached to the executable") }
        }
        guard let verdict else { return .waiting }
        if verdict == "openssl-static" { return .traced }
        note(pid, name, "unsupported", "\(verdict): not covered by TLS capture")
        return .reported
    }

    private func note(_ pid: Int32, _ name: String, _ status: String, _ detail: String) {
        guard !foundList.withLock({ $0.contains { $0.pid == pid && $0.detail == detail } }) else { return }
        let finding = TLSProcessFinding(pid: pid, process: name, status: status, detail: detail)
        foundList.withLock { $0.append(finding) }
        report(finding)
    }
}
