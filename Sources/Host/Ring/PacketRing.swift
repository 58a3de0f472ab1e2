import Logging

#if canImport(Glibc)
import Glibc
#endif

/// How a ring is laid out and bounded.
public struct RingConfiguration: Sendable {
    /// Directory of the segment files (created when missing).
    public var directory: String
    /// The most bytes the segments (and their indexes) may take on disk.
    public var storageLimit: Int64 = 500 << 20
    /// Size of one segment; by default an eighth of the limit (between 64 KiB and
    /// 64 MiB), so a flush never loses more than that share of the ring.
    public var segmentBytes: Int64?
    /// Size of each of the two buffers between capture and disk. A packet that
    /// finds both full is dropped and counted: capture never waits for the disk.
    public var queueBytes = 8 << 20
    /// Longest time a packet waits in memory before it is written.
    public var flushIntervalNs: Int64 = 100_000_000
    /// Link type (DLT_*) of the packets appended.
    public var linkType: Int32

    public init(directory: String, linkType: Int32, storageLimit: Int64 = 500 << 20) {
        self.directory = directory
        self.linkType = linkType
        self.storageLimit = storageLimit
    }

    var effectiveSegmentBytes: Int64 {
        segmentBytes ?? min(64 << 20, max(64 << 10, storageLimit / 8))
    }
}

/// Counters of a ring.
public struct RingStatistics: Sendable, Equatable {
    /// Packets written to segments.
    public var packetsWritten: UInt64 = 0
    /// Bytes written to segments (record headers included).
    public var bytesWritten: UInt64 = 0
    /// Packets dropped because both buffers were full (the disk is too slow).
    public var droppedQueueFull: UInt64 = 0
    /// Packets dropped because the disk refused them (full, or gone).
    public var droppedDiskError: UInt64 = 0
    /// Segments removed to stay under the limit.
    public var segmentsFlushed: UInt64 = 0
    /// Segments found deleted by someone else.
    public var segmentsLost: UInt64 = 0
    /// Bytes cut from torn last records at start-up.
    public var tornBytesCut: UInt64 = 0
    /// Segments on disk now, and the bytes they take (indexes included).
    public var segments = 0
    public var usageBytes: Int64 = 0
    public var limitBytes: Int64 = 0
}

/// Told about segments that are about to disappear, so what must outlive the
/// ring (a session's retained flows) can be copied out first.
public protocol RingEvictionObserver: AnyObject, Sendable {
    /// Called on the ring's salvage thread; the file at `path` stays readable
    /// during the call and is deleted afterwards.
    func segmentEvicted(path: String, index: SegmentIndex)
}

/// The master PCAP ring: every captured packet is appended to a ring of pcap
/// segment files under one directory, bounded by a storage limit. When the
/// limit is reached the oldest segment is flushed. Each segment is a valid
/// pcap while it is written and after a crash (a torn last record is cut at
/// the next start), and has a small index (time range, packet count, flows).
///
/// `append` is called by the capture thread and never waits for the disk: it
/// copies the packet into one of two buffers, which a writer thread drains in
/// large writes. Readers (`RingReader`) follow the segments, the live one too.
public final class PacketRing: @unchecked Sendable {
    public let configuration: RingConfiguration
    private let logger: Logger
    private let segmentLimit: Int64

    // Guarded by `lock`.
    private let lock = ConditionLock()
    private var filling: RecordBuffer
    private var writing: RecordBuffer
    private var stopping = false
    private var syncRequested = 0
    private var syncCompleted = 0
    private var rotateRequested = false
    private var closed: [ClosedSegment] = []
    private var active: SegmentIndex?
    private var stats = RingStatistics()
    private var observers: [ObjectIdentifier: RingEvictionObserver] = [:]
    private var salvageQueue: [(String, SegmentIndex)] = []

    // Owned by the writer thread.
    private var activeFD: Int32 = -1
    private var nextSequence: UInt64 = 1
    private var classifier = FlowClassifier()
    private var lastLiveCheckNs: Int64 = 0
    private var diskErrorLogged = false

    private var writerThread: BackgroundThread?
    private var salvageThread: BackgroundThread?

    private struct ClosedSegment {
        var index: SegmentIndex
        var indexFileBytes: Int64
        var diskBytes: Int64 { index.fileBytes + indexFileBytes }
    }

    /// Opens (or creates) the ring in `configuration.directory`: recovers the
    /// segments found there (cutting torn records, rebuilding missing indexes,
    /// flushing what is over the limit), then starts the writer.
    public init(configuration: RingConfiguration, logger: Logger = Logger(label: "ring")) throws(RingError) {
        self.configuration = configuration
        self.logger = logger
        segmentLimit = configuration.effectiveSegmentBytes
        guard configuration.storageLimit >= 2 * segmentLimit else {
            throw .configuration("storage limit \(StorageQuantity(bytes: configuration.storageLimit)) is below two segments "
                + "of \(StorageQuantity(bytes: segmentLimit))")
        }
        filling = RecordBuffer(capacity: configuration.queueBytes)
        writing = RecordBuffer(capacity: configuration.queueBytes)
        try RingDirectory.create(configuration.directory)
        let recovered = try RingRecovery(directory: configuration.directory, logger: logger).run()
        closed = recovered.segments.map { ClosedSegment(index: $0.index, indexFileBytes: $0.indexFileBytes) }
        stats.tornBytesCut = recovered.tornBytesCut
        nextSequence = (closed.last?.index.sequence ?? 0) + 1
        stats.limitBytes = configuration.storageLimit
        lock.locked { enforceLimit(reserve: segmentLimit) }
        updateUsage()
        writerThread = BackgroundThread { [self] in writerLoop() }
        salvageThread = BackgroundThread { [self] in salvageLoop() }
    }

    deinit { close() }

    // MARK: Capture side

    /// Queues one packet for the disk. Never blocks on I/O; when both buffers
    /// are full the packet is dropped and counted in `droppedQueueFull` —
    /// unless `waitIfFull` (a capture file, which can wait for the disk and
    /// must not lose packets), then it waits for the writer.
    public func append(_ packet: CapturedPacket, waitIfFull: Bool = false) {
        let length = min(packet.data.count, PcapFormat.maxRecordLength)
        lock.locked {
            while !stopping {
                let before = filling.count
                if filling.append(packet, capturedLength: length) {
                    // Wake the writer once, when the buffer crosses half full (a
                    // wake-up per packet costs a futex call each).
                    let half = filling.capacity / 2
                    if before < half && filling.count >= half { lock.broadcast() }
                    return
                }
                lock.broadcast()
                if !waitIfFull {
                    stats.droppedQueueFull &+= 1
                    return
                }
                lock.wait()
            }
        }
    }

    /// Waits until every packet appended before the call is written.
    public func sync() {
        lock.locked {
            syncRequested += 1
            let ticket = syncRequested
            lock.broadcast()
            while syncCompleted < ticket && writerThread != nil { lock.wait(nanoseconds: 100_000_000) }
        }
    }

    /// Stops the writer after writing what is queued, and closes the live segment
    /// (its index is written). The ring can be opened again later.
    public func close() {
        let threads: (BackgroundThread?, BackgroundThread?) = lock.locked {
            if stopping { return (nil, nil) }
            stopping = true
            lock.broadcast()
            return (writerThread, salvageThread)
        }
        threads.0?.join()
        threads.1?.join()
        lock.locked {
            writerThread = nil
            salvageThread = nil
            lock.broadcast()
        }
    }

    // MARK: Reading the catalogue

    /// Counters and usage now.
    public var statistics: RingStatistics { lock.locked { stats } }

    /// The segments now on disk, oldest first; the last may be the live one
    /// (`isLive`), whose `fileBytes` is what is written so far.
    public func segments() -> [RingSegment] {
        lock.locked {
            var list = closed.map { RingSegment(index: $0.index, isLive: false) }
            if let active { list.append(RingSegment(index: active, isLive: true)) }
            return list
        }
    }

    /// Path of segment `sequence`'s pcap file.
    public func path(ofSegment sequence: UInt64) -> String {
        RingDirectory.segmentPath(configuration.directory, sequence)
    }

    /// Waits until the live segment grows past `offset` of segment `sequence`,
    /// a newer segment starts, the ring closes, or `timeoutNs` passes.
    public func waitForData(beyond sequence: UInt64, offset: Int64, timeoutNs: Int64) {
        lock.locked {
            let newerClosed = (closed.last?.index.sequence ?? 0) > sequence
            let grown = active.map { $0.sequence > sequence || ($0.sequence == sequence && $0.fileBytes > offset) } ?? false
            guard !stopping, !newerClosed, !grown else { return }
            lock.wait(nanoseconds: timeoutNs)
        }
    }

    /// Whether the ring has stopped writing.
    var isClosed: Bool { lock.locked { stopping && writerThread == nil } }

    // MARK: Eviction observers

    public func addEvictionObserver(_ observer: RingEvictionObserver) {
        lock.locked { observers[ObjectIdentifier(observer)] = observer }
    }

    public func removeEvictionObserver(_ observer: RingEvictionObserver) {
        lock.locked { _ = observers.removeValue(forKey: ObjectIdentifier(observer)) }
    }

    /// Flushes the oldest closed segment now, as reaching the limit would (the
    /// live segment is closed first when it is the only one). For operators
    /// and tests; returns the flushed segment's sequence.
    @discardableResult
    public func flushOldest() -> UInt64? {
        sync()
        return lock.locked {
            if closed.isEmpty { rotateRequested = true; lock.broadcast() }
            while closed.isEmpty && rotateRequested && !stopping { lock.wait(nanoseconds: 50_000_000) }
            guard !closed.isEmpty else { return nil }
            let victim = closed.removeFirst()
            evict(victim)
            updateUsageLocked()
            return victim.index.sequence
        }
    }
    // MARK: Writer thread

    private func writerLoop() {
        while true {
            let (stop, ticket, rotate) = lock.locked { () -> (Bool, Int, Bool) in
                if filling.count == 0 && !stopping && syncRequested == syncCompleted && !rotateRequested {
                    lock.wait(nanoseconds: configuration.flushIntervalNs)
                }
                let full = filling
                filling = writing
                writing = full
                if writing.count > 0 { lock.broadcast() }  // an appender may wait for room
                return (stopping, syncRequested, rotateRequested)
            }
            if writing.count > 0 { write(writing) }
            writing.reset()
            if rotate, activeFD >= 0 { closeActive() }
            if stop {
                closeActive()
                lock.locked {
                    rotateRequested = false
                    syncCompleted = ticket
                    lock.broadcast()
                }
                return
            }
            lock.locked {
                if rotate { rotateRequested = false }
                syncCompleted = ticket
                lock.broadcast()
            }
        }
    }

    /// Writes a buffer of records, cutting it at segment boundaries.
    private func write(_ buffer: RecordBuffer) {
        checkActiveStillExists()
        var runStart = 0
        var offset = 0
        buffer.bytes.withUnsafeBytes { all in
            let bytes = UnsafeRawBufferPointer(rebasing: all[0..<buffer.count])
            while offset < bytes.count {
                let header = PcapFormat.parseRecordHeader(bytes, at: offset, scale: 1)!
                let size = PcapFormat.recordHeaderSize + header.capturedLength
                let pending = Int64(offset - runStart)
                if activeFD < 0
                    || ((active!.packets > 0 || pending > 0) && active!.fileBytes + pending + Int64(size) > segmentLimit)
                {
                    flushRun(bytes, runStart..<offset)
                    runStart = offset
                    closeActive()
                    openActive()
                }
                offset += size
            }
            flushRun(bytes, runStart..<offset)
        }
    }

    /// Writes records `range` of `bytes` to the live segment and indexes them.
    private func flushRun(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) {
        guard !range.isEmpty else { return }
        let run = UnsafeRawBufferPointer(rebasing: bytes[range])
        guard activeFD >= 0, var index = lock.locked({ active }) else {
            let records = RecordBuffer.count(run)
            lock.locked { stats.droppedDiskError &+= UInt64(records) }
            return
        }
        var accepted = run
        let (written, failure) = RingDirectory.writePrefix(activeFD, run)
        if let failure {
            // Keep the whole records the disk took; cut a torn one back off.
            var boundary = 0
            while let header = PcapFormat.parseRecordHeader(run, at: boundary, scale: 1),
                boundary + PcapFormat.recordHeaderSize + header.capturedLength <= written
            {
                boundary += PcapFormat.recordHeaderSize + header.capturedLength
            }
            _ = ftruncate(activeFD, off_t(index.fileBytes) + off_t(boundary))
            accepted = UnsafeRawBufferPointer(rebasing: run[0..<boundary])
            let lost = RecordBuffer.count(run) - RecordBuffer.count(accepted)
            lock.locked { stats.droppedDiskError &+= UInt64(lost) }
            if !diskErrorLogged {
                logger.error("ring: cannot write segment \(index.sequence): \(failure); packets are dropped and counted until the disk accepts them")
                diskErrorLogged = true
            }
        } else {
            diskErrorLogged = false
        }
        var offset = 0
        var kept = 0
        while offset < accepted.count {
            kept += 1
            let header = PcapFormat.parseRecordHeader(accepted, at: offset, scale: 1)!
            let data = UnsafeRawBufferPointer(rebasing: accepted[(offset + PcapFormat.recordHeaderSize)..<(offset + PcapFormat.recordHeaderSize + header.capturedLength)])
            index.record(timestampNs: header.timestampNs, recordBytes: PcapFormat.recordHeaderSize + header.capturedLength,
                         flow: classifier.flow(of: data, linkType: configuration.linkType,
                                               wireLength: header.wireLength, timestampNs: header.timestampNs))
            offset += PcapFormat.recordHeaderSize + header.capturedLength
        }
        lock.locked {
            active = index
            stats.packetsWritten &+= UInt64(kept)
            stats.bytesWritten &+= UInt64(accepted.count)
            updateUsageLocked()
            lock.broadcast()
        }
    }

    private func openActive() {
        let sequence = nextSequence
        nextSequence += 1
        let path = RingDirectory.segmentPath(configuration.directory, sequence)
        do {
            activeFD = try RingDirectory.createSegment(path, linkType: configuration.linkType)
        } catch {
            activeFD = -1
            if !diskErrorLogged {
                logger.error("ring: \(error); packets are dropped and counted until a segment can be created")
                diskErrorLogged = true
            }
            return
        }
        lock.locked {
            active = SegmentIndex(sequence: sequence, linkType: configuration.linkType)
            enforceLimit(reserve: segmentLimit)
            updateUsageLocked()
            lock.broadcast()
        }
    }

    /// Closes the live segment: writes its index beside it, moves it to the closed list.
    private func closeActive() {
        guard activeFD >= 0 else { return }
        Glibc.close(activeFD)
        activeFD = -1
        lock.locked {
            guard let index = active else { return }
            active = nil
            if index.packets == 0 {
                unlink(RingDirectory.segmentPath(configuration.directory, index.sequence))
                return
            }
            let indexBytes = RingDirectory.writeIndex(index, directory: configuration.directory)
            closed.append(ClosedSegment(index: index, indexFileBytes: indexBytes))
            updateUsageLocked()
            lock.broadcast()
        }
    }

    /// Notices a live segment deleted from under the ring and starts a new one.
    private func checkActiveStillExists() {
        let now = monotonicNanoseconds()
        guard activeFD >= 0, now - lastLiveCheckNs > 1_000_000_000 else { return }
        lastLiveCheckNs = now
        var info = stat()
        guard fstat(activeFD, &info) == 0, info.st_nlink == 0 else { return }
        let sequence = lock.locked { active?.sequence ?? 0 }
        logger.warning("ring: live segment \(sequence) was deleted by someone else; its packets are lost, starting a new segment")
        Glibc.close(activeFD)
        activeFD = -1
        lock.locked {
            active = nil
            stats.segmentsLost &+= 1
        }
        try? RingDirectory.create(configuration.directory)
    }

    // MARK: Limit and eviction (lock held)

    /// Flushes the oldest segments until the closed ones plus `reserve` fit the limit.
    private func enforceLimit(reserve: Int64) {
        var used = closed.reduce(Int64(0)) { $0 + $1.diskBytes }
        while !closed.isEmpty && used + reserve > configuration.storageLimit {
            let victim = closed.removeFirst()
            used -= victim.diskBytes
            evict(victim)
        }
    }

    private func evict(_ victim: ClosedSegment) {
        let path = RingDirectory.segmentPath(configuration.directory, victim.index.sequence)
        unlink(RingDirectory.indexPath(configuration.directory, victim.index.sequence))
        stats.segmentsFlushed &+= 1
        if observers.isEmpty {
            if unlink(path) != 0 && errno == ENOENT { stats.segmentsLost &+= 1 }
            return
        }
        // Sessions want to salvage flows from it: move it aside (same file
        // system, so a rename) and let the salvage thread copy and delete it.
        let aside = RingDirectory.evictedPath(configuration.directory, victim.index.sequence)
        if rename(path, aside) != 0 {
            if errno == ENOENT { stats.segmentsLost &+= 1 }
            return
        }
        salvageQueue.append((aside, victim.index))
        lock.broadcast()
    }

    private func salvageLoop() {
        while true {
            let next: ((String, SegmentIndex), [RingEvictionObserver])? = lock.locked {
                while salvageQueue.isEmpty && !stopping { lock.wait(nanoseconds: 500_000_000) }
                guard !salvageQueue.isEmpty else { return nil }
                return (salvageQueue.removeFirst(), Array(observers.values))
            }
            guard let ((path, index), watchers) = next else { return }
            for watcher in watchers { watcher.segmentEvicted(path: path, index: index) }
            unlink(path)
        }
    }

    private func updateUsage() { lock.locked { updateUsageLocked() } }

    private func updateUsageLocked() {
        stats.segments = closed.count + (active == nil ? 0 : 1)
        stats.usageBytes = closed.reduce(Int64(0)) { $0 + $1.diskBytes } + (active?.fileBytes ?? 0)
    }
}

/// One segment as the catalogue lists it.
public struct RingSegment: Sendable, Equatable {
    public var index: SegmentIndex
    /// The segment being written now.
    public var isLive: Bool
}
