import Foundation
import Host
import Synchronization

/// Moves packets from a capture backend into the ring on a thread of its own,
/// and publishes the backend's counters for the API (the backend itself is
/// only touched by this thread).
final class CaptureLoop: @unchecked Sendable {
    let backend: CaptureBackend
    private let ring: PacketRing
    private let published = Mutex(Snapshot())
    private var thread: Thread?
    private let done = Atomic<Bool>(false)

    struct Snapshot: Sendable {
        var statistics = CaptureStatistics()
        var running = false
        var ended = false
        var failure: String?
    }

    init(backend: CaptureBackend, ring: PacketRing) {
        self.backend = backend
        self.ring = ring
    }

    var snapshot: Snapshot { published.withLock { $0 } }

    func start() {
        published.withLock { $0.running = true }
        let thread = Thread { [self] in run() }
        thread.name = "capture"
        self.thread = thread
        thread.start()
    }

    private func run() {
        // A capture file can wait for the disk; a live interface cannot.
        let fromFile = backend is LibpcapBackend && backend.name == "pcap-file"
        var lastPublishNs = monotonicNanoseconds()
        var failure: String?
        loop: while true {
            do {
                switch try backend.read(maxPackets: 512, { ring.append($0, waitIfFull: fromFile) }) {
                case .end: break loop
                case .packets, .timeout: break
                }
            } catch {
                failure = error.message
                break
            }
            let now = monotonicNanoseconds()
            if now - lastPublishNs > 200_000_000 {
                lastPublishNs = now
                let stats = backend.statistics
                published.withLock { $0.statistics = stats }
            }
        }
        let stats = backend.statistics
        published.withLock {
            $0.statistics = stats
            $0.running = false
            $0.ended = true
            $0.failure = failure
        }
        done.store(true, ordering: .releasing)
    }

    /// Stops capture and waits until every packet read so far is in the ring.
    func stop() {
        backend.breakLoop()
        while !done.load(ordering: .acquiring) && thread != nil { usleep(10_000) }
        ring.sync()
    }
}

extension CaptureStatistics {
    /// Adds another backend's counters (a capture replaced when pods changed).
    mutating func add(_ other: CaptureStatistics) {
        received &+= other.received
        droppedByKernel &+= other.droppedByKernel
        droppedByUs &+= other.droppedByUs
        filtered &+= other.filtered
        bytes &+= other.bytes
    }
}
