// The Apache Kafka dissector plugin: metadata, probe and the exported entry
// symbol. Stream handling is in KafkaDissector.swift, schemas in
// KafkaSchema.swift, the reader and body decoder in KafkaDecoder.swift.

import PluginAPI
import PluginKit

@_cdecl("ks_plugin_v1")
public func ks_plugin_v1() -> UnsafePointer<ks_plugin_descriptor> {
    PluginExport.descriptor(for: KafkaDissector.self)
}

extension KafkaDissector {
    public static let metadata = PluginMetadata(
        name: "kafka",
        version: "1.0.0",
        vendor: "kubeshark-swift",
        license: "Apache-2.0",
        description: "Apache Kafka: request headers of every API, request/response matching by correlation id, "
            + "bodies of the common APIs (flexible versions too), record batches with gzip",
        referenceURL: "https://kafka.apache.org/protocol",
        layer4: .tcp,
        flags: [],
        defaultPorts: [9092...9092],
        priority: 60,
        probeMinBytes: 4,
        probeMaxBytes: 512,
        maxBufferBytes: UInt32(parseCap + (64 << 10)),
        protocols: [
            ProtocolInfo(
                name: "kafka", longName: "Apache Kafka", abbreviation: "KAFKA", version: "",
                macro: "kafka", backgroundColor: "#000000", foregroundColor: "#ffffff",
                referenceURL: "https://kafka.apache.org/protocol")
        ]
    )

    /// Only requests are probed (responses are not self-describing): a sane size,
    /// a known API key, a version in range, a plausible client id → 75.
    public static func probe(flow: Flow, chunk: Chunk) -> ProbeResult {
        let b = chunk.bytes
        guard b.count >= 14 else {
            return b.count >= 4 && !plausibleSize(b) ? .no : .maybe(needBytes: 14)
        }
        guard plausibleSize(b) else { return .no }
        let size = Int(b[0]) << 24 | Int(b[1]) << 16 | Int(b[2]) << 8 | Int(b[3])
        let apiKey = Int16(b[4]) << 8 | Int16(b[5])
        let version = Int16(b[6]) << 8 | Int16(b[7])
        guard apiKey >= 0, Int(apiKey) < apiNames.count, version >= 0, version <= maxProbeVersion else { return .no }
        let clientLen = Int(Int16(bitPattern: UInt16(b[12]) << 8 | UInt16(b[13])))
        guard clientLen >= -1, clientLen <= 1024, 10 + max(clientLen, 0) <= size else { return .no }
        if clientLen > 0 {
            let shown = min(clientLen, b.count - 14)
            for i in 14..<(14 + shown) where b[i] < 0x20 || b[i] == 0x7F { return .no }
        }
        if chunk.direction == .serverToClient && !flow.rolesGuessed { return .no }
        return .yes(confidence: ProbeResult.syntax, reversed: chunk.direction == .serverToClient)
    }

    static func plausibleSize(_ b: UnsafeRawBufferPointer) -> Bool {
        let size = Int(b[0]) << 24 | Int(b[1]) << 16 | Int(b[2]) << 8 | Int(b[3])
        return size >= 10 && size <= maxMessageSize
    }
}
