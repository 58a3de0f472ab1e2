// Helpers for the Kafka plugin tests: the plugin through the real loader, a
// small Kafka encoder, running tools and tshark.

import Foundation
@_exported import TestKit
import PluginAPI
import Testing

@testable import Host

typealias Segment = (HarnessDirection, [UInt8])
typealias JSON = [String: Any]

let c2s = HarnessDirection.clientToServer
let s2c = HarnessDirection.serverToClient

func makeHarness() throws -> PluginHarness { try PluginHarness(pluginNamed: "kafka") }

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
func run(_ segments: [Segment], closeReason: Int32 = KS_CLOSE_FIN) throws -> [JSON] {
    let h = try makeHarness()
    return h.runTCP(segments: segments, closeReason: closeReason).map(parseJSON)
}

/// The entry JSON without the per-run identifiers, keys sorted.
func normalized(_ entries: [String]) -> [String] {
    entries.map { s in
        var o = parseJSON(s)
        for k in ["id", "stream", "timestamp", "elapsedTime"] { o[k] = nil }
        if var req = o["request"] as? JSON { req["size"] = nil; o["request"] = req }
        let data = (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

extension Dictionary where Key == String, Value == Any {
    func obj(_ k: String) -> JSON? { self[k] as? JSON }
    func arr(_ k: String) -> [JSON]? { self[k] as? [JSON] }
    func str(_ k: String) -> String? { self[k] as? String }
    func int(_ k: String) -> Int? { (self[k] as? NSNumber)?.intValue }
    var flags: [String] { self["flags"] as? [String] ?? [] }
    var request: JSON? { obj("request") }
    var response: JSON? { obj("response") }
    var method: String? { str("method") }
}

// MARK: Kafka encoder

struct Enc {
    var b: [UInt8] = []
    var flexible = false
    init(flexible: Bool = false) { self.flexible = flexible }

    mutating func i8(_ v: Int8) { b.append(UInt8(bitPattern: v)) }
    mutating func i16(_ v: Int16) { b += withUnsafeBytes(of: v.bigEndian, Array.init) }
    mutating func i32(_ v: Int32) { b += withUnsafeBytes(of: v.bigEndian, Array.init) }
    mutating func i64(_ v: Int64) { b += withUnsafeBytes(of: v.bigEndian, Array.init) }
    mutating func uvarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { b.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        b.append(UInt8(v))
    }
    mutating func varint(_ v: Int64) { uvarint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }
    mutating func str(_ s: String?) {
        guard let s else { if flexible { uvarint(0) } else { i16(-1) }; return }
        if flexible { uvarint(UInt64(s.utf8.count + 1)) } else { i16(Int16(s.utf8.count)) }
        b += Array(s.utf8)
    }
    mutating func bytes(_ v: [UInt8]?) {
        guard let v else { if flexible { uvarint(0) } else { i32(-1) }; return }
        if flexible { uvarint(UInt64(v.count + 1)) } else { i32(Int32(v.count)) }
        b += v
    }
    mutating func count(_ n: Int) { if flexible { uvarint(UInt64(n + 1)) } else { i32(Int32(n)) } }
    mutating func tags() { if flexible { uvarint(0) } }
}

/// A framed request: size, header (v1, or v2 when flexible), body.
func request(key: Int16, version: Int16, correlation: Int32, client: String? = "test-client", flexible: Bool = false,
             _ body: (inout Enc) -> Void = { _ in }) -> [UInt8] {
    var e = Enc()
    e.i16(key)
    e.i16(version)
    e.i32(correlation)
    e.str(client)
    e.flexible = flexible
    e.tags()
    body(&e)
    return frame(e.b)
}

/// A framed response: size, correlation id, tagged fields when `taggedHeader`, body.
func response(correlation: Int32, flexible: Bool = false, taggedHeader: Bool? = nil,
              _ body: (inout Enc) -> Void = { _ in }) -> [UInt8] {
    var e = Enc(flexible: flexible)
    e.i32(correlation)
    if taggedHeader ?? flexible { e.uvarint(0) }
    body(&e)
    return frame(e.b)
}

func frame(_ m: [UInt8]) -> [UInt8] { withUnsafeBytes(of: Int32(m.count).bigEndian, Array.init) + m }

struct TestRecord {
    var key: String?
    var value: String?
    var headers: [(String, String)] = []
    /// Raw value bytes (any, not only UTF-8); used instead of `value` when set.
    var rawValue: [UInt8]? = nil
}

/// The records of a magic-2 batch, uncompressed.
func recordsBytes(_ records: [TestRecord]) -> [UInt8] {
    var out: [UInt8] = []
    for (i, r) in records.enumerated() {
        var x = Enc()
        x.i8(0)
        x.varint(Int64(i))  // timestamp delta
        x.varint(Int64(i))  // offset delta
        if let k = r.key { x.varint(Int64(k.utf8.count)); x.b += Array(k.utf8) } else { x.varint(-1) }
        if let v = r.rawValue ?? r.value.map({ Array($0.utf8) }) { x.varint(Int64(v.count)); x.b += v } else { x.varint(-1) }
        x.varint(Int64(r.headers.count))
        for (hk, hv) in r.headers {
            x.varint(Int64(hk.utf8.count)); x.b += Array(hk.utf8)
            x.varint(Int64(hv.utf8.count)); x.b += Array(hv.utf8)
        }
        var l = Enc()
        l.varint(Int64(x.b.count))
        out += l.b + x.b
    }
    return out
}

/// A magic-2 record batch around `payload` (records, possibly compressed with `codec`).
func recordBatch(baseOffset: Int64 = 0, count: Int, payload: [UInt8], codec: Int16 = 0) -> [UInt8] {
    var after = Enc()
    after.i32(0)  // partition leader epoch
    after.i8(2)  // magic
    after.i32(0)  // crc (not checked)
    after.i16(codec)
    after.i32(Int32(count - 1))
    after.i64(1_700_000_000_000)
    after.i64(1_700_000_000_000)
    after.i64(-1)
    after.i16(-1)
    after.i32(-1)
    after.i32(Int32(count))
    after.b += payload
    var e = Enc()
    e.i64(baseOffset)
    e.i32(Int32(after.b.count))
    return e.b + after.b
}


// MARK: Tools (kubeshark binary, tshark, redis)

enum Tools {
    static var kubeshark: String { TestProcess.kubeshark }
    static var hasKubeshark: Bool { TestProcess.hasKubeshark }
    static let corpus = TestProcess.corpus("kafka")
    static let fixtures = TestProcess.fixtures("kafka")

    static func which(_ tool: String) -> String? { TestProcess.which(tool) }

    static var isRoot: Bool { getuid() == 0 }

    typealias Result = ProcessResult

    /// Runs a program to completion, capturing both outputs.
    static func run(_ executable: String, _ arguments: [String], stdin: String? = nil) throws -> Result { try TestProcess.run(executable, arguments, stdin: stdin) }

    /// `kubeshark dissect FILE --plugins kafka --output json`, every line parsed.
    static func dissect(_ file: String) throws -> (entries: [JSON], result: Result) {
        try TestProcess.kubesharkJSONLines(["dissect", file, "--plugins", "kafka", "--output", "json"])
    }

    /// tshark's Kafka PDUs, one per message: (correlation id, request key or nil,
    /// response key or nil, api version or nil).
    static func tsharkKafka(_ file: String, decodeAs: String?) throws -> [TsharkPDU] {
        var args = ["-n", "-r", file]
        if let decodeAs, !decodeAs.isEmpty { args += ["-d", decodeAs] }
        args += ["-Y", "kafka", "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,",
                 "-e", "kafka.correlation_id", "-e", "kafka.request_key", "-e", "kafka.response_key",
                 "-e", "kafka.api_version"]
        let r = try run(which("tshark") ?? "/usr/bin/tshark", args)
        var out: [TsharkPDU] = []
        for line in r.stdout.split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 4 else { continue }
            let corr = f[0].split(separator: ",").compactMap { Int($0) }
            // One frame may hold several PDUs; keys are listed only for the PDUs tshark understood.
            let req = f[1].split(separator: ",").compactMap { Int($0) }
            let resp = f[2].split(separator: ",").compactMap { Int($0) }
            let ver = f[3].split(separator: ",").compactMap { Int($0) }
            for (i, c) in corr.enumerated() {
                out.append(TsharkPDU(correlationId: c, requestKey: i < req.count ? req[i] : nil,
                                     responseKey: i < resp.count ? resp[i] : nil, version: i < ver.count ? ver[i] : nil))
            }
        }
        return out
    }

    /// The decode-as rule of a corpus file from the corpus manifest.
    static func decodeAs(_ name: String) -> String? {
        guard let corpus, let text = try? String(contentsOf: corpus.deletingLastPathComponent()
            .appendingPathComponent("manifest.tsv"), encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            if f.count >= 8, f[0] == "kafka/\(name)" { return f[7].isEmpty ? nil : String(f[7]) }
        }
        return nil
    }
}

struct TsharkPDU {
    var correlationId: Int
    var requestKey: Int?
    var responseKey: Int?
    var version: Int?
}
