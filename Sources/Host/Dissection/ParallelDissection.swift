#if canImport(Glibc)
import Glibc
#endif

/// Dissection on several threads, sharded by flow.
///
/// The caller's thread decodes every packet (IP fragments included) and hands
/// it, copied into a reusable batch, to the worker that owns its flow: a
/// symmetric hash of both endpoints, so both directions of a connection meet on
/// one thread. Each worker runs its own `DissectionSession` and sink, which the
/// ABI allows (a stream is used by one thread at a time; plugin contexts may
/// see concurrent calls unless a plugin is single-threaded, which keeps the
/// whole run on one worker). Entries of one flow keep their order; entries of
/// different flows interleave in no fixed order.
public final class ParallelDissection {
    private let workers: [Worker]
    private var decoder = PacketDecoder()
    private var current: [Batch]
    private var dispatcherSkipped: UInt64 = 0
    private var dispatcherMalformed: UInt64 = 0
    private var finished = false

    /// - Parameters:
    ///   - threads: worker threads (at least 1).
    ///   - makeSink: the sink of worker `i`; called once per worker, on this thread.
    public init(
        plugins: [LoadedPlugin], threads: Int, configuration: SessionConfiguration = SessionConfiguration(),
        makeSink: (Int) -> EntrySink
    ) {
        let singleThreaded = plugins.contains { $0.metadata.flags & 0x2 != 0 }
        let n = singleThreaded ? 1 : max(1, threads)
        workers = (0..<n).map { i in
            var config = configuration
            config.firstFlowID = configuration.firstFlowID + UInt64(i)
            config.flowIDStride = UInt64(n)
            return Worker(session: DissectionSession(plugins: plugins, sink: makeSink(i), configuration: config))
        }
        current = workers.map { $0.queue.takeFree() }
        for w in workers { w.start() }
    }

    /// The number of worker threads actually used.
    public var threadCount: Int { workers.count }

    /// Decodes one packet and queues it for its flow's worker.
    public func process(_ packet: CapturedPacket) {
        guard let linkType = LinkType(dlt: packet.linkType) else {
            dispatcherSkipped &+= 1
            return
        }
        switch decoder.decode(
            linkType: linkType, data: packet.data, wireLength: packet.wireLength, timestampNs: packet.timestampNs)
        {
        case .packet(let p):
            let shard = Self.shard(p, workers.count)
            if !current[shard].append(p) {
                workers[shard].queue.push(current[shard])
                current[shard] = workers[shard].queue.takeFree()
                _ = current[shard].append(p)
            }
        case .fragmentHeld:
            break
        case .skipped:
            dispatcherSkipped &+= 1
        case .malformed:
            dispatcherMalformed &+= 1
        }
    }

    /// Hands over what is queued, lets every worker close its flows, and waits.
    public func finish() {
        guard !finished else { return }
        finished = true
        for (i, w) in workers.enumerated() {
            if !current[i].isEmpty { w.queue.push(current[i]) }
            w.queue.close()
        }
        for w in workers { w.join() }
    }

    /// Counters of every worker added up (after `finish`).
    public var statistics: SessionStatistics {
        var total = SessionStatistics()
        total.skippedPackets = dispatcherSkipped
        total.malformedPackets = dispatcherMalformed
        total.packets = dispatcherSkipped + dispatcherMalformed
        for w in workers {
            let s = w.session.statistics
            total.packets += s.packets
            total.tcpPackets += s.tcpPackets
            total.udpPackets += s.udpPackets
            total.skippedPackets += s.skippedPackets
            total.malformedPackets += s.malformedPackets
            total.tcpFlows += s.tcpFlows
            total.udpFlows += s.udpFlows
            total.flowsDissected += s.flowsDissected
            total.flowsIgnored += s.flowsIgnored
            total.flowsEvicted += s.flowsEvicted
            total.reprobes += s.reprobes
            total.entries += s.entries
            total.entriesRefused += s.entriesRefused
        }
        return total
    }

    /// Both directions of a flow give the same shard.
    static func shard(_ p: DecodedPacket, _ n: Int) -> Int {
        guard n > 1 else { return 0 }
        let a = p.src.high ^ p.src.low ^ UInt64(p.srcPort) << 48
        let b = p.dst.high ^ p.dst.low ^ UInt64(p.dstPort) << 48
        var h = (a ^ b) &+ UInt64(p.transport.rawValue)
        h ^= h >> 33
        h &*= 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        return Int(h % UInt64(n))
    }
}

/// Decoded packets with their payloads, copied for a worker; reused.
final class Batch {
    static let maxPackets = 512
    static let arenaBytes = 512 << 10
    private(set) var packets: [DecodedPacket] = []
    private var offsets: [Int] = []
    private let arena: UnsafeMutableRawPointer
    private var used = 0

    init() {
        arena = .allocate(byteCount: Self.arenaBytes, alignment: 16)
        packets.reserveCapacity(Self.maxPackets)
        offsets.reserveCapacity(Self.maxPackets)
    }

    deinit { arena.deallocate() }

    var isEmpty: Bool { packets.isEmpty }

    /// Copies `p` in; false when the batch is full (an oversized payload is cut to fit an empty batch).
    func append(_ p: DecodedPacket) -> Bool {
        var count = p.payload.count
        if packets.count >= Self.maxPackets || (used + count > Self.arenaBytes && !packets.isEmpty) { return false }
        count = min(count, Self.arenaBytes)
        if count > 0, let src = p.payload.baseAddress { (arena + used).copyMemory(from: src, byteCount: count) }
        var copy = p
        copy.payload = UnsafeRawBufferPointer(start: nil, count: 0)
        if count < p.payload.count { copy.payloadTruncated = true }
        packets.append(copy)
        offsets.append(used)
        used += count
        offsets.append(count)
        return true
    }

    /// Calls `body` with each packet, its payload pointing into the arena.
    func forEach(_ body: (DecodedPacket) -> Void) {
        for i in packets.indices {
            var p = packets[i]
            p.payload = UnsafeRawBufferPointer(start: arena + offsets[2 * i], count: offsets[2 * i + 1])
            body(p)
        }
    }

    func reset() {
        packets.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        used = 0
    }
}

/// Full batches to a worker, empty ones back; bounded, so a slow worker slows the reader.
final class BatchQueue: @unchecked Sendable {
    private let lock = ConditionLock()
    private var full: [Batch] = []
    private var free: [Batch] = []
    private var created = 0
    private let maxBatches = 8
    private var closed = false

    func push(_ batch: Batch) {
        lock.locked {
            full.append(batch)
            lock.broadcast()
        }
    }

    /// An empty batch: a recycled one, a new one while under the cap, or waits.
    func takeFree() -> Batch {
        lock.locked {
            while true {
                if let b = free.popLast() { return b }
                if created < maxBatches {
                    created += 1
                    return Batch()
                }
                lock.wait()
            }
        }
    }

    /// The next full batch, or nil once closed and drained.
    func pop() -> Batch? {
        lock.locked {
            while full.isEmpty && !closed { lock.wait() }
            return full.isEmpty ? nil : full.removeFirst()
        }
    }

    func recycle(_ batch: Batch) {
        batch.reset()
        lock.locked {
            free.append(batch)
            lock.broadcast()
        }
    }

    func close() {
        lock.locked {
            closed = true
            lock.broadcast()
        }
    }
}

/// One worker thread and its session.
final class Worker: @unchecked Sendable {
    let session: DissectionSession
    let queue = BatchQueue()
    private var thread: BackgroundThread?

    init(session: DissectionSession) { self.session = session }

    func start() {
        thread = BackgroundThread { [self] in run() }
    }

    private func run() {
        while let batch = queue.pop() {
            batch.forEach { session.process(decoded: $0) }
            queue.recycle(batch)
        }
        session.finish()
    }

    func join() {
        thread?.join()
        thread = nil
    }
}
