// The AMQP 0-9-1 dissector plugin: metadata, probe and the exported entry
// symbol. The stream state machine is in AMQPDissector.swift, the method table
// in Spec.swift, wire values and field tables in Wire.swift.

import PluginAPI
import PluginKit

@_cdecl("ks_plugin_v1")
public func ks_plugin_v1() -> UnsafePointer<ks_plugin_descriptor> {
    PluginExport.descriptor(for: AMQPDissector.self)
}

private let amqpMagic: [UInt8] = [0x41, 0x4D, 0x51, 0x50, 0, 0, 9, 1]

extension AMQPDissector {
    public static let metadata = PluginMetadata(
        name: "amqp",
        version: "1.0.0",
        vendor: "kubeshark-swift",
        license: "Apache-2.0",
        description: "AMQP 0-9-1 (RabbitMQ): every method with its arguments, content reassembly, -ok matching per channel",
        referenceURL: "https://www.rabbitmq.com/resources/specs/amqp0-9-1.pdf",
        layer4: .tcp,
        flags: [],
        defaultPorts: [5672...5672],
        priority: 40,
        probeMinBytes: 1,
        probeMaxBytes: 4096,
        maxBufferBytes: 256 << 10,
        protocols: [
            ProtocolInfo(
                name: "amqp", longName: "Advanced Message Queuing Protocol", abbreviation: "AMQP", version: "0-9-1",
                macro: "amqp", backgroundColor: "#ff6600", foregroundColor: "#ffffff",
                referenceURL: "https://www.rabbitmq.com/resources/specs/amqp0-9-1.pdf")
        ]
    )

    /// "AMQP\0\0\9\1" → 100 (from the server side: reversed); a complete frame of
    /// type 1/2/3/8 ending in 0xCE → 75 (a method frame must name a known method).
    public static func probe(flow: Flow, chunk: Chunk) -> ProbeResult {
        let b = chunk.bytes
        guard !b.isEmpty else { return .maybe(needBytes: 8) }
        let fromClient = chunk.direction == .clientToServer
        if b[0] == 0x41 {
            let n = min(b.count, 8)
            for i in 0..<n where b[i] != amqpMagic[i] {
                // "AMQP" with another version is still AMQP asking for something else.
                return i >= 4 && n == 8 ? .yes(confidence: ProbeResult.syntax, reversed: !fromClient) : .no
            }
            if n < 8 { return .maybe(needBytes: 8) }
            return .yes(confidence: ProbeResult.magic, reversed: !fromClient && flow.rolesGuessed)
        }
        let type = b[0]
        guard type == 1 || type == 2 || type == 3 || type == 8 else { return .no }
        guard b.count >= 7 else { return .maybe(needBytes: 8) }
        var size: UInt32 = 0
        for i in 3..<7 { size = size << 8 | UInt32(b[i]) }
        guard size <= 131_072 else { return .no }
        let total = Int(size) + 8
        if type == 8 && size != 0 { return .no }
        guard b.count >= total else {
            return total <= Int(metadata.probeMaxBytes) ? .maybe(needBytes: UInt32(total)) : .no
        }
        guard b[total - 1] == 0xCE else { return .no }
        if type == 1 {
            guard size >= 4 else { return .no }
            let c = UInt16(b[7]) << 8 | UInt16(b[8])
            let m = UInt16(b[9]) << 8 | UInt16(b[10])
            guard let i = specIndex[methodKey(c, m)] else { return .no }
            // Methods only a server sends, seen from the "client": the roles are the other way round.
            let serverOnly = ["connection.start", "connection.tune", "basic.deliver", "basic.get-ok", "basic.return"]
            let reversed = flow.rolesGuessed && fromClient && serverOnly.contains(methodSpecs[i].name)
            return .yes(confidence: ProbeResult.syntax, reversed: reversed)
        }
        return .yes(confidence: ProbeResult.syntax)
    }
}
