// The built-in DNS dissector plugin: metadata, probe and the exported entry
// symbol. Parsing is in Message.swift and RData.swift, the per-flow matching
// in DNSDissector.swift, the entry layout in EntryWriter.swift.

import PluginAPI
import PluginKit

@_cdecl("ks_plugin_v1")
public func ks_plugin_v1() -> UnsafePointer<ks_plugin_descriptor> {
    PluginExport.descriptor(for: DNSDissector.self)
}

extension DNSDissector {
    public static let metadata = PluginMetadata(
        name: "dns",
        version: "1.0.0",
        vendor: "kubeshark-swift",
        license: "Apache-2.0",
        description: "DNS over UDP and TCP (also mDNS and LLMNR): queries matched to responses, typed records, EDNS",
        referenceURL: "https://datatracker.ietf.org/doc/html/rfc1035",
        layer4: [.tcp, .udp],
        flags: [],
        defaultPorts: [53...53, 5353...5353, 5355...5355],
        priority: 20,
        probeMinBytes: 1,
        probeMaxBytes: 4096,
        maxBufferBytes: 2 * 65537,
        protocols: [
            ProtocolInfo(
                name: "dns", longName: "Domain Name System", abbreviation: "DNS", version: "",
                macro: "dns", backgroundColor: "#606060", foregroundColor: "#ffffff",
                referenceURL: "https://datatracker.ietf.org/doc/html/rfc1035")
        ]
    )

    static let dnsPorts: Set<UInt16> = [53, 5353, 5355]

    /// 75 when the header is sane and the first question parses, 50 for a
    /// sane header whose question is not there yet on a DNS port (mDNS
    /// answers without questions too), 25 for a DNS port whose bytes are not
    /// a sane header, MAYBE while a TCP prefix is too short to tell.
    public static func probe(flow: Flow, chunk: Chunk) -> ProbeResult {
        let onPort = dnsPorts.contains(flow.server.port) || dnsPorts.contains(flow.client.port)
        let isTCP = flow.layer4 == .tcp
        var b = chunk.bytes
        if isTCP {
            guard b.count >= 2 else { return .maybe(needBytes: 14) }
            let length = Int(be16(b, 0))
            guard length >= 12 else { return onPort ? .yes(confidence: ProbeResult.port) : .no }
            b = UnsafeRawBufferPointer(rebasing: b[2...])
            if b.count < 12 { return .maybe(needBytes: 14) }
        } else if b.count < 12 {
            return onPort ? .yes(confidence: ProbeResult.port) : .no
        }
        let flags = be16(b, 2)
        let isResponse = flags & 0x8000 != 0
        let opcode = Int(flags >> 11) & 0xF
        let rcode = flags & 0xF
        let qd = be16(b, 4), an = be16(b, 6), ns = be16(b, 8), ar = be16(b, 10)
        let reversed = (chunk.direction == .clientToServer) == isResponse
        var sane = [0, 2, 4, 5].contains(opcode) && qd <= 1 && ar <= 64
        if !isResponse {
            sane = sane && rcode == 0 && (opcode == 5 || an <= 16) && (opcode == 5 || ns <= 16)
        }
        guard sane else { return onPort ? .yes(confidence: ProbeResult.port) : .no }
        guard qd == 1 else {
            // mDNS announcements carry answers only.
            return onPort && isResponse && an > 0 ? .yes(confidence: ProbeResult.plausible, reversed: reversed)
                : (onPort ? .yes(confidence: ProbeResult.port) : .no)
        }
        do throws(DNSError) {
            let (_, next) = try readName(b, 12)
            guard next + 4 <= b.count else { throw DNSError("short") }
            let cls = be16(b, next + 2) & 0x7FFF
            guard [1, 3, 4, 254, 255].contains(cls) else { return onPort ? .yes(confidence: ProbeResult.port) : .no }
            return .yes(confidence: ProbeResult.syntax, reversed: reversed)
        } catch {
            if isTCP, b.count < Int(be16(chunk.bytes, 0)), chunk.bytes.count < Int(metadata.probeMaxBytes) {
                return .maybe(needBytes: UInt32(min(Int(be16(chunk.bytes, 0)) + 2, Int(metadata.probeMaxBytes))))
            }
            return onPort ? .yes(confidence: ProbeResult.port) : .no
        }
    }
}
