// Helpers for the DNS plugin tests: loading the plugin through the real
// loader, building DNS messages from bytes, running flows, decoding entries,
// running external tools.

import Foundation
@_exported import TestKit
import PluginAPI
import Testing

@testable import Host

typealias Segment = (HarnessDirection, [UInt8])
typealias JSON = [String: Any]

let c2s = HarnessDirection.clientToServer
let s2c = HarnessDirection.serverToClient

let baseTs: Int64 = 1_700_000_000_000_000_000

func makeHarness() throws -> PluginHarness { try PluginHarness(pluginNamed: "dns") }

func parseJSON(_ s: String) -> JSON {
    guard let data = s.data(using: .utf8), let obj = try? JSONSerialization.jsonObject(with: data) as? JSON else {
        Issue.record("entry is not a JSON object: \(s.prefix(300))")
        return [:]
    }
    return obj
}

/// UDP datagrams through one pseudo-flow.
func runUDP(_ datagrams: [Segment]) throws -> [JSON] {
    try makeHarness().runUDP(datagrams: datagrams).map(parseJSON)
}

/// A TCP stream.
func runTCP(_ segments: [Segment]) throws -> [JSON] {
    try makeHarness().runTCP(segments: segments).map(parseJSON)
}

/// The entry JSON without per-run identifiers and times, keys sorted.
func normalized(_ entries: [String]) -> [String] {
    entries.map { s in
        var o = parseJSON(s)
        for k in ["id", "stream", "timestamp", "elapsedTime", "startTime"] { o[k] = nil }
        let data = (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

extension Dictionary where Key == String, Value == Any {
    func obj(_ k: String) -> JSON? { self[k] as? JSON }
    func arr(_ k: String) -> [JSON]? { self[k] as? [JSON] }
    func str(_ k: String) -> String? { self[k] as? String }
    func int(_ k: String) -> Int? { (self[k] as? NSNumber)?.intValue }
    func bool(_ k: String) -> Bool? { (self[k] as? NSNumber)?.boolValue }
    func strs(_ k: String) -> [String]? { self[k] as? [String] }
    var flags: [String] { self["flags"] as? [String] ?? [] }
    var request: JSON? { obj("request") }
    var response: JSON? { obj("response") }
    /// The first answer of the response.
    var answer: JSON? { response?.arr("answers")?.first }
}

// MARK: Building messages

enum RRType: UInt16 {
    case a = 1, ns = 2, cname = 5, soa = 6, ptr = 12, mx = 15, txt = 16, aaaa = 28, srv = 33, opt = 41
    case svcb = 64, https = 65, any = 255, caa = 257
}

/// A domain name in wire form, uncompressed.
func wireName(_ name: String) -> [UInt8] {
    var out: [UInt8] = []
    for label in name.split(separator: ".") where !label.isEmpty {
        out.append(UInt8(label.utf8.count))
        out += Array(label.utf8)
    }
    out.append(0)
    return out
}

func u16(_ v: Int) -> [UInt8] { [UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
func u32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

/// One resource record; `name` is raw wire bytes (may hold a pointer).
func rr(_ name: [UInt8], _ type: UInt16, ttl: UInt32 = 300, cls: Int = 1, _ rdata: [UInt8]) -> [UInt8] {
    name + u16(Int(type)) + u16(cls) + u32(ttl) + u16(rdata.count) + rdata
}

func rr(_ name: String, _ type: RRType, ttl: UInt32 = 300, _ rdata: [UInt8]) -> [UInt8] {
    rr(wireName(name), type.rawValue, ttl: ttl, rdata)
}

/// A pointer to the first question's name (offset 12).
let toQName: [UInt8] = [0xC0, 0x0C]

/// A whole message. `flags` is the 16-bit flags word.
func message(
    id: Int, flags: Int, questions: [(String, UInt16)], answers: [[UInt8]] = [], authorities: [[UInt8]] = [],
    additionals: [[UInt8]] = []
) -> [UInt8] {
    var m = u16(id) + u16(flags) + u16(questions.count) + u16(answers.count) + u16(authorities.count)
        + u16(additionals.count)
    for (n, t) in questions { m += wireName(n) + u16(Int(t)) + u16(1) }
    for r in answers + authorities + additionals { m += r }
    return m
}

func query(_ id: Int, _ name: String, _ type: RRType = .a, rd: Bool = true, additionals: [[UInt8]] = []) -> [UInt8] {
    message(id: id, flags: rd ? 0x0100 : 0, questions: [(name, type.rawValue)], additionals: additionals)
}

func response(
    _ id: Int, _ name: String, _ type: RRType = .a, rcode: Int = 0, answers: [[UInt8]] = [],
    authorities: [[UInt8]] = [], additionals: [[UInt8]] = []
) -> [UInt8] {
    message(id: id, flags: 0x8180 | rcode, questions: [(name, type.rawValue)], answers: answers,
            authorities: authorities, additionals: additionals)
}

/// A DNS message framed for TCP.
func tcp(_ m: [UInt8]) -> [UInt8] { u16(m.count) + m }


// MARK: Driving a UDP pseudo-flow by hand (ticks)

final class Collect: EntrySink {
    var entries: [String] = []
    func emit(_ entry: EntryView) { entries.append(String(decoding: entry.json, as: UTF8.self)) }
}

final class UDPDriver {
    let harness: PluginHarness
    let sink = Collect()
    let emitter: EntryEmitter
    let handle: StreamHandle

    init() throws {
        harness = try makeHarness()
        emitter = EntryEmitter(sink: sink)
        var flow = ks_flow_info()
        flow.struct_size = UInt32(MemoryLayout<ks_flow_info>.size)
        flow.layer4 = KS_L4_UDP
        flow.flow_id = 9
        flow.client.struct_size = UInt32(MemoryLayout<ks_endpoint>.size)
        flow.client.family = 4
        flow.client.port = 40000
        flow.server.struct_size = UInt32(MemoryLayout<ks_endpoint>.size)
        flow.server.family = 4
        flow.server.port = 53
        withUnsafeMutableBytes(of: &flow.client.addr) { $0[0] = 10; $0[3] = 1 }
        withUnsafeMutableBytes(of: &flow.server.addr) { $0[0] = 10; $0[3] = 53 }
        handle = StreamHandle(plugin: harness.plugin, flow: flow, emitter: emitter, limits: StreamLimits())
        #expect(handle.open())
    }

    func send(_ d: HarnessDirection, _ b: [UInt8], ts: Int64) {
        harness.plugin.clock.store(ts, ordering: .relaxed)
        let raw = d == .clientToServer ? KS_DIR_CLIENT_TO_SERVER : KS_DIR_SERVER_TO_CLIENT
        _ = b.withUnsafeBytes { handle.datagram(raw, $0, timestampNs: ts) }
    }

    func tick(_ now: Int64) { handle.tick(nowNs: now) }
    func close(_ reason: Int32 = KS_CLOSE_CAPTURE_END) { handle.close(reason) }
    var entries: [JSON] { sink.entries.map(parseJSON) }
}

// MARK: Processes and files

enum Tools {
    static let repoRoot = TestProcess.repoRoot
    static var kubeshark: String { TestProcess.kubeshark }
    static let fixtures = TestProcess.fixtures("dns")
    static let corpus = TestProcess.corpus("dns")

    static func which(_ tool: String) -> String? { TestProcess.which(tool) }

    static var isRoot: Bool { getuid() == 0 }

    typealias Result = ProcessResult

    static func run(_ executable: String, _ arguments: [String]) throws -> Result { try TestProcess.run(executable, arguments) }

    /// `kubeshark dissect FILE --plugins dns --output json`, one JSON object per line.
    static func dissect(_ file: String) throws -> [JSON] {
        let (entries, r) = try TestProcess.kubesharkJSONLines(["dissect", file, "--plugins", "dns", "--output", "json"])
        #expect(r.status == 0, "kubeshark dissect failed: \(r.stderr.prefix(500))")
        return entries
    }
}

// MARK: Comparing with tshark

/// One DNS exchange reduced to what both tools report.
struct Exchange: Hashable, CustomStringConvertible {
    var name: String?
    var type: String?
    var rcode: String?
    var answers: Int?
    var description: String { "\(type ?? "-") \(name ?? "-") -> \(rcode ?? "-") \(answers.map(String.init) ?? "-")" }
}

let typeNames: [Int: String] = [
    1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV",
    35: "NAPTR", 39: "DNAME", 41: "OPT", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 64: "SVCB", 65: "HTTPS",
    99: "SPF", 252: "AXFR", 255: "ANY", 257: "CAA",
]
let rcodeNames = [0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"]

enum TShark {
    /// Query/response pairs as tshark sees them: messages matched by
    /// (transport stream, id), a response with no earlier query stands alone.
    static func exchanges(file: String, extra: [String] = []) throws -> [Exchange] {
        let args = ["-n", "-r", file] + extra + ["-Y", "dns", "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a",
                    "-e", "udp.stream", "-e", "tcp.stream", "-e", "dns.id", "-e", "dns.flags.response",
                    "-e", "dns.qry.name", "-e", "dns.qry.type", "-e", "dns.flags.rcode", "-e", "dns.count.answers"]
        let r = try Tools.run(Tools.which("tshark") ?? "/usr/bin/tshark", args)
        var result: [Exchange] = []
        var open: [String: [Int]] = [:]
        for line in r.stdout.split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 8 else { continue }
            // tshark 4.0 prints several messages of one TCP segment comma-joined; take each.
            let ids = f[2].split(separator: ",").map(String.init)
            let responses = f[3].split(separator: ",").map(String.init)
            let names = f[4].split(separator: ",").map(String.init)
            let types = f[5].split(separator: ",").map(String.init)
            let rcodes = f[6].split(separator: ",").map(String.init)
            let counts = f[7].split(separator: ",").map(String.init)
            for i in ids.indices {
                let key = "\(f[0])/\(f[1])/\(ids[i])"
                let isResponse = i < responses.count && (responses[i] == "1" || responses[i] == "True")
                let name = i < names.count ? (names[i] == "<Root>" ? "." : names[i]) : nil
                let type = i < types.count ? Int(types[i]).map { typeNames[$0] ?? "TYPE\($0)" } : nil
                if !isResponse {
                    result.append(Exchange(name: name, type: type, rcode: nil, answers: nil))
                    open[key, default: []].append(result.count - 1)
                } else {
                    let rc = i < rcodes.count ? Int(rcodes[i]).map { rcodeNames[$0] ?? "RCODE\($0)" } : nil
                    let n = i < counts.count ? Int(counts[i]) : nil
                    if let idx = open[key]?.first {
                        open[key]?.removeFirst()
                        result[idx].rcode = rc
                        result[idx].answers = n
                    } else {
                        result.append(Exchange(name: name, type: type, rcode: rc, answers: n))
                    }
                }
            }
        }
        return result
    }
}

/// Our entries reduced the same way.
func exchanges(_ entries: [JSON]) -> [Exchange] {
    entries.map { e in
        let q = (e.request ?? e.response)?.arr("questions")?.first
        let r = e.response
        return Exchange(name: q?.str("name"), type: q?.str("type"), rcode: r?.str("rcode"),
                        answers: r?.obj("counts")?.int("answers"))
    }
}

/// How many of `expected` appear in `actual` (multisets).
func matched(_ expected: [Exchange], _ actual: [Exchange]) -> Int {
    var pool: [Exchange: Int] = [:]
    for a in actual { pool[a, default: 0] += 1 }
    var n = 0
    for e in expected where (pool[e] ?? 0) > 0 {
        pool[e]! -= 1
        n += 1
    }
    return n
}
