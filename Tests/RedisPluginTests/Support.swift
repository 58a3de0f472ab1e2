// Helpers for the Redis plugin tests: loading the plugin through the real
// loader, running conversations, RESP encoders, running tools and tshark.

import Foundation
@_exported import TestKit
import PluginAPI
import Testing

@testable import Host

typealias Segment = (HarnessDirection, [UInt8])
typealias JSON = [String: Any]

let c2s = HarnessDirection.clientToServer
let s2c = HarnessDirection.serverToClient

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

func makeHarness() throws -> PluginHarness { try PluginHarness(pluginNamed: "redis") }

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
func run(_ segments: [Segment], closeReason: Int32 = KS_CLOSE_FIN, deliverEOF: Bool = true) throws -> [JSON] {
    let h = try makeHarness()
    return h.runTCP(segments: segments, closeReason: closeReason, deliverEOF: deliverEOF).map(parseJSON)
}

/// The entry JSON without the per-run identifiers, keys sorted: equal for equal dissection.
func normalized(_ entries: [String]) -> [String] {
    entries.map { s in
        var o = parseJSON(s)
        o["id"] = nil
        o["stream"] = nil
        o["timestamp"] = nil
        o["elapsedTime"] = nil
        let data = (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

extension Dictionary where Key == String, Value == Any {
    func obj(_ k: String) -> JSON? { self[k] as? JSON }
    func str(_ k: String) -> String? { self[k] as? String }
    func int(_ k: String) -> Int? { (self[k] as? NSNumber)?.intValue }
    func strings(_ k: String) -> [String]? { self[k] as? [String] }
    var flags: [String] { self["flags"] as? [String] ?? [] }
    var request: JSON? { obj("request") }
    var response: JSON? { obj("response") }
    var method: String? { str("method") }
}

// MARK: RESP encoders

/// A command as RESP: an array of bulk strings.
func command(_ args: String...) -> [UInt8] { command(args) }
func command(_ args: [String]) -> [UInt8] {
    var out = bytes("*\(args.count)\r\n")
    for a in args { out += bulk(a) }
    return out
}
func bulk(_ s: String) -> [UInt8] { bytes("$\(s.utf8.count)\r\n\(s)\r\n") }
func simple(_ s: String) -> [UInt8] { bytes("+\(s)\r\n") }
func error(_ s: String) -> [UInt8] { bytes("-\(s)\r\n") }
func integer(_ i: Int) -> [UInt8] { bytes(":\(i)\r\n") }
func array(_ items: [[UInt8]], type: Character = "*") -> [UInt8] {
    bytes("\(type)\(items.count)\r\n") + items.flatMap { $0 }
}
func map(_ pairs: [([UInt8], [UInt8])], type: Character = "%") -> [UInt8] {
    bytes("\(type)\(pairs.count)\r\n") + pairs.flatMap { $0.0 + $0.1 }
}


// MARK: Tools (kubeshark binary, tshark, redis)

enum Tools {
    static var kubeshark: String { TestProcess.kubeshark }
    static var hasKubeshark: Bool { TestProcess.hasKubeshark }
    static let corpus = TestProcess.corpus("redis")
    static let fixtures = TestProcess.fixtures("redis")

    static func which(_ tool: String) -> String? { TestProcess.which(tool) }

    static var isRoot: Bool { getuid() == 0 }

    typealias Result = ProcessResult

    /// Runs a program to completion, capturing both outputs.
    static func run(_ executable: String, _ arguments: [String], stdin: String? = nil) throws -> Result { try TestProcess.run(executable, arguments, stdin: stdin) }

    /// `kubeshark dissect FILE --plugins redis --output json`, every line parsed.
    static func dissect(_ file: String) throws -> (entries: [JSON], result: Result) {
        try TestProcess.kubesharkJSONLines(["dissect", file, "--plugins", "redis", "--output", "json"])
    }

    /// Command names (uppercase) of the RESP arrays tshark decodes in frames sent
    /// to one of `serverPorts`. tshark 4.0 decodes RESP2 only and no inline commands;
    /// a client frame never nests arrays, so each array length starts one command
    /// whose first bulk string is its name.
    static func tsharkCommands(_ file: String, serverPorts: Set<Int>) throws -> [String] {
        let args = ["-n", "-r", file, "-d", "tcp.port==\(serverPorts.first ?? 6379),resp", "-Y", "resp", "-T", "fields",
                    "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=/s",
                    "-e", "tcp.dstport", "-e", "resp.array.length", "-e", "resp.bulk_string.value"]
        let r = try run(which("tshark") ?? "/usr/bin/tshark", args)
        var names: [String] = []
        for line in r.stdout.split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 3, let port = Int(f[0]), serverPorts.contains(port) else { continue }
            let lengths = f[1].split(separator: " ").compactMap { Int($0) }
            let values = f[2].split(separator: " ").map(String.init)
            var i = 0
            for n in lengths where n > 0 {
                guard i < values.count else { break }
                names.append(hexText(values[i]).uppercased())
                i += n
            }
        }
        return names
    }

    static func hexText(_ hex: String) -> String {
        let digits = Array(hex.utf8.filter { $0 != UInt8(ascii: ":") })
        var out: [UInt8] = []
        var i = 0
        while i + 1 < digits.count {
            if let b = UInt8(String(decoding: digits[i...i + 1], as: UTF8.self), radix: 16) { out.append(b) }
            i += 2
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Command names of our entries that carry a RESP-array request.
func arrayCommands(_ entries: [JSON]) -> [String] {
    entries.compactMap { e in
        guard let r = e.request, r.str("type") == "array" else { return nil }
        return r.str("command")
    }
}

/// Multiset difference: elements of `a` not matched in `b`.
func missing(_ a: [String], from b: [String]) -> [String] {
    var pool: [String: Int] = [:]
    for x in b { pool[x, default: 0] += 1 }
    var out: [String] = []
    for x in a {
        if (pool[x] ?? 0) > 0 { pool[x]! -= 1 } else { out.append(x) }
    }
    return out
}

/// The plugin's probe on a flow whose roles were guessed (`rolesGuessed`) or learned from the SYN.
func probe(_ h: PluginHarness, _ data: [UInt8], direction: HarnessDirection = .clientToServer, rolesGuessed: Bool)
    -> (verdict: Int32, confidence: UInt32, reversed: Bool)
{
    var flow = ks_flow_info()
    flow.struct_size = UInt32(MemoryLayout<ks_flow_info>.size)
    flow.layer4 = KS_L4_TCP
    flow.flags = rolesGuessed ? KS_FLOW_ROLES_GUESSED | KS_FLOW_MIDSTREAM : 0
    flow.client.struct_size = UInt32(MemoryLayout<ks_endpoint>.size)
    flow.client.family = 4
    flow.client.port = 40000
    flow.server.struct_size = UInt32(MemoryLayout<ks_endpoint>.size)
    flow.server.family = 4
    flow.server.port = 6379
    var chunk = ks_chunk()
    chunk.struct_size = UInt32(MemoryLayout<ks_chunk>.size)
    chunk.direction = direction == .clientToServer ? KS_DIR_CLIENT_TO_SERVER : KS_DIR_SERVER_TO_CLIENT
    chunk.flags = KS_CHUNK_FIRST
    var result = ks_probe_result()
    result.struct_size = UInt32(MemoryLayout<ks_probe_result>.size)
    data.withUnsafeBufferPointer { b in
        chunk.data = b.baseAddress
        chunk.len = UInt32(b.count)
        h.plugin.descriptor.pointee.probe?(h.plugin.context, &flow, &chunk, &result)
    }
    return (result.verdict, result.confidence, result.flags & KS_PROBE_REVERSED != 0)
}
