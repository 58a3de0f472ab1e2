import Host
import Prometheus
import Synchronization

/// The worker's Prometheus metrics (`/metrics`). Counters follow the capture
/// and ring counters (advanced by what they grew since the last scrape);
/// gauges are set at each scrape.
final class WorkerMetrics: Sendable {
    private let service: WorkerService
    private let registry = PrometheusCollectorRegistry()
    private let counters: [String: Counter]
    private let gauges: [String: Gauge]
    private let last = Mutex<[String: UInt64]>([:])

    private static let counterHelp: [(String, String)] = [
        ("kubeshark_capture_packets_received_total", "Packets the capture backend handed over."),
        ("kubeshark_capture_packets_dropped_kernel_total", "Packets the kernel dropped (buffer full)."),
        ("kubeshark_capture_packets_dropped_us_total", "Packets the backend dropped itself."),
        ("kubeshark_capture_bytes_total", "Bytes captured."),
        ("kubeshark_ring_packets_written_total", "Packets written to ring segments."),
        ("kubeshark_ring_bytes_written_total", "Bytes written to ring segments."),
        ("kubeshark_ring_packets_dropped_queue_full_total", "Packets dropped because the disk was too slow."),
        ("kubeshark_ring_packets_dropped_disk_error_total", "Packets dropped because the disk refused them."),
        ("kubeshark_ring_segments_flushed_total", "Segments flushed to stay under the storage limit."),
    ]
    private static let gaugeHelp: [(String, String)] = [
        ("kubeshark_ring_usage_bytes", "Bytes the ring takes on disk."),
        ("kubeshark_ring_limit_bytes", "The ring's storage limit."),
        ("kubeshark_ring_segments", "Segments on disk."),
        ("kubeshark_sessions_open", "Dissection sessions open."),
        ("kubeshark_capture_running", "1 while capture runs."),
    ]

    init(service: WorkerService) {
        self.service = service
        var c: [String: Counter] = [:]
        for (name, help) in Self.counterHelp { c[name] = registry.makeCounter(name: name, help: help) }
        var g: [String: Gauge] = [:]
        for (name, help) in Self.gaugeHelp { g[name] = registry.makeGauge(name: name, help: help) }
        counters = c
        gauges = g
    }

    /// The metrics in Prometheus' text format.
    func render() -> [UInt8] {
        let capture = service.captureSnapshot
        let ring = service.ring.statistics
        let now: [String: UInt64] = [
            "kubeshark_capture_packets_received_total": capture.statistics.received,
            "kubeshark_capture_packets_dropped_kernel_total": capture.statistics.droppedByKernel,
            "kubeshark_capture_packets_dropped_us_total": capture.statistics.droppedByUs,
            "kubeshark_capture_bytes_total": capture.statistics.bytes,
            "kubeshark_ring_packets_written_total": ring.packetsWritten,
            "kubeshark_ring_bytes_written_total": ring.bytesWritten,
            "kubeshark_ring_packets_dropped_queue_full_total": ring.droppedQueueFull,
            "kubeshark_ring_packets_dropped_disk_error_total": ring.droppedDiskError,
            "kubeshark_ring_segments_flushed_total": ring.segmentsFlushed,
        ]
        last.withLock { seen in
            for (name, value) in now {
                let before = seen[name] ?? 0
                if value > before { counters[name]?.increment(by: Int64(value - before)) }
                seen[name] = max(value, before)
            }
        }
        gauges["kubeshark_ring_usage_bytes"]?.set(to: Double(ring.usageBytes))
        gauges["kubeshark_ring_limit_bytes"]?.set(to: Double(ring.limitBytes))
        gauges["kubeshark_ring_segments"]?.set(to: Double(ring.segments))
        gauges["kubeshark_sessions_open"]?.set(to: Double(service.openSessions.count))
        gauges["kubeshark_capture_running"]?.set(to: capture.running ? 1.0 : 0.0)
        return registry.emitToBuffer()
    }
}
