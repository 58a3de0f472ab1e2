// Helpers for the HTTP/1.x plugin tests: loading the plugin through the real
// loader, running conversations, decoding entries, compressing bodies.

import CZlib
import Foundation
@_exported import TestKit
import PluginAPI
import Testing

@testable import Host

typealias Segment = (HarnessDirection, [UInt8])
typealias JSON = [String: Any]

let c2s = HarnessDirection.clientToServer
let s2c = HarnessDirection.serverToClient

/// A fixed capture time (ns) used where tests need deterministic timestamps.
let baseTs: Int64 = 1_700_000_000_000_000_000

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

func makeHarness() throws -> PluginHarness { try PluginHarness(pluginNamed: "http") }

func parseJSON(_ s: String) -> JSON {
    guard let data = s.data(using: .utf8),
        let obj = try? JSONSerialization.jsonObject(with: data) as? JSON
    else {
        Issue.record("entry is not a JSON object: \(s.prefix(300))")
        return [:]
    }
    return obj
}

/// Runs segments through a fresh harness and returns the decoded entries.
func run(
    _ segments: [Segment], timestamps: [Int64]? = nil, closeReason: Int32 = KS_CLOSE_FIN, deliverEOF: Bool = true
) throws -> [JSON] {
    let h = try makeHarness()
    return h.runTCP(segments: segments, timestampsNs: timestamps, closeReason: closeReason, deliverEOF: deliverEOF)
        .map(parseJSON)
}

/// Dissects a pcap file with the HTTP plugin through the host's session; the
/// harness (for its plugin and counters) and each entry's JSON.
func dissectPcap(_ path: String) throws -> (harness: PluginHarness, entries: [String]) {
    let h = try makeHarness()
    let sink = Collect()
    let session = DissectionSession(plugins: [h.plugin], sink: sink)
    let backend = try LibpcapBackend(file: path)
    #expect(CaptureRunner.drain(backend, into: session) == nil)
    session.finish()
    return (h, sink.entries)
}

/// The entry JSON without the per-run identifiers, keys sorted: equal for equal dissection.
func normalized(_ entries: [String]) -> [String] {
    entries.map { s in
        var o = parseJSON(s)
        o["id"] = nil
        o["stream"] = nil
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
    var flags: [String] { self["flags"] as? [String] ?? [] }
    var request: JSON? { obj("request") }
    var response: JSON? { obj("response") }

    /// Value of the first header named `name` (case-insensitive) in `headers`.
    func header(_ name: String) -> String? {
        arr("headers")?.first { ($0.str("name") ?? "").lowercased() == name.lowercased() }?.str("value")
    }
}

// MARK: Messages

func request(
    _ method: String = "GET", _ target: String = "/", version: String = "1.1", host: String? = "example.com",
    headers: [(String, String)] = [], body: [UInt8] = [], contentLength: Bool = true
) -> [UInt8] {
    var s = "\(method) \(target) HTTP/\(version)\r\n"
    if let host { s += "Host: \(host)\r\n" }
    for (n, v) in headers { s += "\(n): \(v)\r\n" }
    if contentLength && !body.isEmpty { s += "Content-Length: \(body.count)\r\n" }
    s += "\r\n"
    return bytes(s) + body
}

func response(
    _ status: Int = 200, _ reason: String = "OK", version: String = "1.1", headers: [(String, String)] = [],
    body: [UInt8] = [], contentLength: Bool = true
) -> [UInt8] {
    var s = "HTTP/\(version) \(status) \(reason)\r\n"
    for (n, v) in headers { s += "\(n): \(v)\r\n" }
    if contentLength { s += "Content-Length: \(body.count)\r\n" }
    s += "\r\n"
    return bytes(s) + body
}

/// `body` in chunked framing, cut into chunks of `size` (with an extension on the first).
func chunked(_ body: [UInt8], size: Int = 7, trailers: [(String, String)] = []) -> [UInt8] {
    var out: [UInt8] = []
    var i = 0
    var first = true
    while i < body.count {
        let n = min(size, body.count - i)
        out += bytes(String(n, radix: 16) + (first ? ";name=value" : "") + "\r\n")
        out += body[i..<(i + n)]
        out += bytes("\r\n")
        i += n
        first = false
    }
    out += bytes("0\r\n")
    for (k, v) in trailers { out += bytes("\(k): \(v)\r\n") }
    out += bytes("\r\n")
    return out
}

// MARK: Compression

enum ZFormat {
    case gzip, zlib, raw
    var windowBits: Int32 {
        switch self {
        case .gzip: return 31
        case .zlib: return 15
        case .raw: return -15
        }
    }
}

func compress(_ input: [UInt8], _ format: ZFormat) -> [UInt8] {
    var s = z_stream()
    let r = deflateInit2_(
        &s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, format.windowBits, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
        Int32(MemoryLayout<z_stream>.size))
    precondition(r == Z_OK)
    defer { deflateEnd(&s) }
    var out = [UInt8](repeating: 0, count: Int(deflateBound(&s, UInt(input.count))) + 64)
    var input = input
    let produced: Int = input.withUnsafeMutableBufferPointer { inp in
        out.withUnsafeMutableBufferPointer { o in
            s.next_in = inp.baseAddress
            s.avail_in = UInt32(inp.count)
            s.next_out = o.baseAddress
            s.avail_out = UInt32(o.count)
            let rc = deflate(&s, Z_FINISH)
            precondition(rc == Z_STREAM_END)
            return o.count - Int(s.avail_out)
        }
    }
    return Array(out[0..<produced])
}


/// A text body of `n` bytes.
func textBody(_ n: Int) -> [UInt8] {
    let line = bytes("kubeshark dissects HTTP/1.x bodies line by line 0123456789\n")
    var out: [UInt8] = []
    out.reserveCapacity(n)
    while out.count < n { out += line.prefix(n - out.count) }
    return out
}

// MARK: Driving a stream by hand (ticks, gaps, mid-stream flows)

final class Collect: EntrySink {
    var entries: [String] = []
    func emit(_ entry: EntryView) { entries.append(String(decoding: entry.json, as: UTF8.self)) }
}

/// One stream driven through the host's real `StreamHandle`, with the calls the
/// harness does not expose: tick, gap, EOF per direction, flow flags.
final class Driver {
    let harness: PluginHarness
    let sink = Collect()
    let emitter: EntryEmitter
    let handle: StreamHandle

    init(midstream: Bool = false) throws {
        harness = try makeHarness()
        emitter = EntryEmitter(sink: sink)
        var flow = ks_flow_info()
        flow.struct_size = UInt32(MemoryLayout<ks_flow_info>.size)
        flow.layer4 = KS_L4_TCP
        flow.flags = midstream ? KS_FLOW_MIDSTREAM : 0
        flow.flow_id = 7
        flow.client.struct_size = UInt32(MemoryLayout<ks_endpoint>.size)
        flow.client.family = 4
        flow.client.port = 40000
        flow.server.struct_size = UInt32(MemoryLayout<ks_endpoint>.size)
        flow.server.family = 4
        flow.server.port = 8080
        withUnsafeMutableBytes(of: &flow.client.addr) { $0[0] = 10; $0[3] = 1 }
        withUnsafeMutableBytes(of: &flow.server.addr) { $0[0] = 192; $0[1] = 168; $0[2] = 1; $0[3] = 2 }
        handle = StreamHandle(plugin: harness.plugin, flow: flow, emitter: emitter, limits: StreamLimits())
        #expect(handle.open())
    }

    private static func raw(_ d: HarnessDirection) -> ks_direction {
        d == .clientToServer ? KS_DIR_CLIENT_TO_SERVER : KS_DIR_SERVER_TO_CLIENT
    }

    func send(_ d: HarnessDirection, _ b: [UInt8], ts: Int64 = baseTs) {
        harness.plugin.clock.store(ts, ordering: .relaxed)
        _ = b.withUnsafeBytes { handle.data(Self.raw(d), $0, timestampNs: ts) }
    }

    func gap(_ d: HarnessDirection, _ length: UInt64) { handle.gap(Self.raw(d), length: length, timestampNs: baseTs) }
    func tick(_ now: Int64) { handle.tick(nowNs: now) }
    func eof(_ d: HarnessDirection) { _ = handle.endOfStream(Self.raw(d), timestampNs: baseTs) }
    func close(_ reason: Int32 = KS_CLOSE_FIN) { handle.close(reason) }

    var entries: [JSON] { sink.entries.map(parseJSON) }
    var counters: [String: Int64] { harness.counters }
}
