import Host

/// The worker's statistics as JSON (`/api/stats`).
enum WorkerStats {
    static func describe(_ service: WorkerService) -> JSONValue {
        let capture = service.captureSnapshot
        let ring = service.ring.statistics
        func n<T: BinaryInteger>(_ v: T) -> JSONValue { .number(Double(v)) }
        var captureMembers: [JSONMember] = [
            JSONMember(key: "backend", value: .string(service.backendName)),
            JSONMember(key: "running", value: .bool(capture.running)),
            JSONMember(key: "received", value: n(capture.statistics.received)),
            JSONMember(key: "droppedByKernel", value: n(capture.statistics.droppedByKernel)),
            JSONMember(key: "droppedByUs", value: n(capture.statistics.droppedByUs)),
            JSONMember(key: "filtered", value: n(capture.statistics.filtered)),
            JSONMember(key: "bytes", value: n(capture.statistics.bytes)),
        ]
        if let failure = capture.failure { captureMembers.append(JSONMember(key: "failure", value: .string(failure))) }
        let ringValue = JSONValue.object([
            JSONMember(key: "directory", value: .string(service.ring.configuration.directory)),
            JSONMember(key: "limitBytes", value: n(ring.limitBytes)),
            JSONMember(key: "usageBytes", value: n(ring.usageBytes)),
            JSONMember(key: "segments", value: n(ring.segments)),
            JSONMember(key: "packetsWritten", value: n(ring.packetsWritten)),
            JSONMember(key: "bytesWritten", value: n(ring.bytesWritten)),
            JSONMember(key: "droppedQueueFull", value: n(ring.droppedQueueFull)),
            JSONMember(key: "droppedDiskError", value: n(ring.droppedDiskError)),
            JSONMember(key: "segmentsFlushed", value: n(ring.segmentsFlushed)),
            JSONMember(key: "segmentsLost", value: n(ring.segmentsLost)),
            JSONMember(key: "tornBytesCut", value: n(ring.tornBytesCut)),
        ])
        let plugins = JSONValue.array(service.plugins.map { p in
            .object([
                JSONMember(key: "name", value: .string(p.metadata.name)),
                JSONMember(key: "counters", value: .object(p.counterSnapshot.sorted { $0.key < $1.key }.map {
                    JSONMember(key: $0.key, value: n($0.value))
                })),
            ])
        })
        return .object([
            JSONMember(key: "worker", value: .string(service.configuration.name)),
            JSONMember(key: "uptimeSeconds", value: .number(service.uptimeSeconds)),
            JSONMember(key: "capture", value: .object(captureMembers)),
            JSONMember(key: "ring", value: ringValue),
            JSONMember(key: "sessions", value: .array(service.openSessions.map(describe))),
            JSONMember(key: "plugins", value: plugins),
            JSONMember(key: "pluginsRefused", value: .array(service.configuration.refusedPlugins.map { .string($0) })),
        ])
    }

    static func describe(_ session: ClientSession) -> JSONValue {
        let p = session.progress
        return .object([
            JSONMember(key: "id", value: .string(session.id)),
            JSONMember(key: "query", value: .string(session.query)),
            JSONMember(key: "packetsRead", value: .number(Double(p.packetsRead))),
            JSONMember(key: "entriesMatched", value: .number(Double(p.entriesMatched))),
            JSONMember(key: "caughtUp", value: .bool(p.caughtUp)),
            JSONMember(key: "segmentsMissed", value: .number(Double(p.segmentsMissed))),
            JSONMember(key: "entriesHeld", value: .number(Double(session.entries.count))),
            JSONMember(key: "retainedPackets", value: .number(Double(session.ringSession.retention.retainedPackets))),
            JSONMember(key: "retainedBytes", value: .number(Double(session.ringSession.retention.retainedBytes))),
        ])
    }
}
