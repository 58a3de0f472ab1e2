import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// AF_PACKET with several reader threads: `readers` sockets in one PACKET_FANOUT
/// group (hash mode, so both directions of a flow land on the same socket and
/// keep their order), each drained by its own thread into copied batches that
/// one consumer, the caller of `read`, takes in arrival order.
///
/// Copying costs one memcpy per packet; in exchange a slow consumer never holds
/// a ring block, and the readers keep the kernel rings empty. Batches waiting
/// for the consumer are bounded (`maxQueuedBatches`); past it a reader drops
/// the batch and counts it in `droppedByUs`.
public final class FanoutCapture: CaptureBackend, @unchecked Sendable {
    public let name = "af_packet"
    public let linkType: Int32
    private let readers: [AFPacketBackend]
    private var threads: [pthread_t] = []
    private let maxQueuedBatches: Int

    private struct Batch {
        var bytes: [UInt8] = []
        /// (offset in bytes, captured length, wire length, timestamp)
        var packets: [(Int, Int, Int, Int64)] = []
    }

    private struct Shared {
        var queue: [Batch] = []
        var head = 0
        var running = 0
        var droppedByUs: UInt64 = 0
        var readerStats: [CaptureStatistics] = []
        var failure: CaptureError?
    }

    private var mutex = pthread_mutex_t()
    private var ready = pthread_cond_t()
    private var shared = Shared()
    private var current = Batch()
    private let stopRequested = Atomic<Bool>(false)

    public init(interfaces: [String], readers count: Int, options: AFPacketBackend.Options = .init(),
                maxQueuedBatches: Int = 4096) throws(CaptureError) {
        var o = options
        o.fanoutGroup = UInt16(truncatingIfNeeded: getpid()) | 0x8000
        var opened: [AFPacketBackend] = []
        for _ in 0..<max(1, count) {
            opened.append(try AFPacketBackend(interfaces: interfaces, options: o))
        }
        readers = opened
        linkType = opened[0].linkType
        self.maxQueuedBatches = maxQueuedBatches
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&ready, nil)
        shared.readerStats = Array(repeating: CaptureStatistics(), count: readers.count)
        shared.running = readers.count
        for index in readers.indices {
            let box = Unmanaged.passRetained(ReaderStart(owner: self, index: index))
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { arg in
                let start = Unmanaged<ReaderStart>.fromOpaque(arg!).takeRetainedValue()
                start.owner.runReader(start.index)
                return nil
            }, box.toOpaque())
            if rc != 0 {
                box.release()
                lock { $0.running -= 1 }
            } else {
                threads.append(thread)
            }
        }
    }

    private final class ReaderStart {
        let owner: FanoutCapture
        let index: Int
        init(owner: FanoutCapture, index: Int) {
            self.owner = owner
            self.index = index
        }
    }

    private func lock<T>(_ body: (inout Shared) -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body(&shared)
    }

    /// One reader thread: read, copy, hand over, until the reader ends.
    private func runReader(_ index: Int) {
        // Signals go to the main thread, which breaks the loop.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let reader = readers[index]
        var failure: CaptureError?
        while true {
            var batch = Batch()
            let outcome: CaptureReadOutcome
            do {
                outcome = try reader.read(maxPackets: 512) { p in
                    batch.packets.append((batch.bytes.count, p.data.count, p.wireLength, p.timestampNs))
                    batch.bytes.append(contentsOf: p.data)
                }
            } catch {
                failure = error
                break
            }
            let stats = reader.statistics
            pthread_mutex_lock(&mutex)
            shared.readerStats[index] = stats
            if !batch.packets.isEmpty {
                if shared.queue.count - shared.head >= maxQueuedBatches {
                    shared.droppedByUs &+= UInt64(batch.packets.count)
                } else {
                    shared.queue.append(batch)
                    pthread_cond_signal(&ready)
                }
            }
            pthread_mutex_unlock(&mutex)
            if case .end = outcome { break }
        }
        pthread_mutex_lock(&mutex)
        shared.running -= 1
        if let failure, shared.failure == nil { shared.failure = failure }
        pthread_cond_broadcast(&ready)
        pthread_mutex_unlock(&mutex)
    }

    public func read(maxPackets: Int, _ handler: (CapturedPacket) -> Void) throws(CaptureError) -> CaptureReadOutcome {
        if cursor < current.packets.count { return deliver(maxPackets, handler) }
        pthread_mutex_lock(&mutex)
        while shared.head == shared.queue.count && shared.running > 0 && shared.failure == nil {
            var deadline = timespec()
            clock_gettime(CLOCK_REALTIME, &deadline)
            deadline.tv_nsec += 100_000_000
            if deadline.tv_nsec >= 1_000_000_000 { deadline.tv_sec += 1; deadline.tv_nsec -= 1_000_000_000 }
            if pthread_cond_timedwait(&ready, &mutex, &deadline) == ETIMEDOUT { break }
        }
        if let failure = shared.failure {
            shared.failure = nil
            pthread_mutex_unlock(&mutex)
            breakLoop()
            throw failure
        }
        if shared.head == shared.queue.count {
            let done = shared.running == 0
            pthread_mutex_unlock(&mutex)
            return done ? .end : .timeout
        }
        current = shared.queue[shared.head]
        shared.queue[shared.head] = Batch()
        shared.head += 1
        if shared.head > 1024 && shared.head * 2 > shared.queue.count {
            shared.queue.removeFirst(shared.head)
            shared.head = 0
        }
        pthread_mutex_unlock(&mutex)
        cursor = 0
        return deliver(maxPackets, handler)
    }

    /// Hands over at most `maxPackets` of the current batch.
    private func deliver(_ maxPackets: Int, _ handler: (CapturedPacket) -> Void) -> CaptureReadOutcome {
        let end = min(current.packets.count, cursor + max(1, maxPackets))
        let start = cursor
        current.bytes.withUnsafeBytes { raw in
            for i in start..<end {
                let (offset, length, wire, ts) = current.packets[i]
                handler(CapturedPacket(timestampNs: ts, data: UnsafeRawBufferPointer(rebasing: raw[offset..<offset + length]),
                                       wireLength: wire, linkType: linkType))
            }
        }
        cursor = end
        return .packets(end - start)
    }
    private var cursor = 0

    public var statistics: CaptureStatistics {
        lock { shared in
            var s = CaptureStatistics()
            for r in shared.readerStats {
                s.received &+= r.received
                s.droppedByKernel &+= r.droppedByKernel
                s.filtered &+= r.filtered
                s.bytes &+= r.bytes
            }
            s.droppedByUs = shared.droppedByUs
            return s
        }
    }

    /// A batch stays in `current` until the next read takes another.
    public var packetsValidUntilNextRead: Bool { true }

    public func breakLoop() {
        stopRequested.store(true, ordering: .relaxed)
        for r in readers { r.breakLoop() }
    }

    public func close() {
        breakLoop()
        for t in threads { pthread_join(t, nil) }
        threads = []
        for r in readers { r.close() }
    }

    deinit {
        close()
        pthread_cond_destroy(&ready)
        pthread_mutex_destroy(&mutex)
    }
}
