// Helpers for the HTTP/2 plugin tests: the plugin through the real loader, a
// small HTTP/2 + HPACK encoder for hand-made conversations, dissecting
// captures in-process, and reading tshark's view of them.

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

func makeHarness() throws -> PluginHarness { try PluginHarness(pluginNamed: "http2") }

func parseJSON(_ s: String) -> JSON {
    guard let data = s.data(using: .utf8), let obj = try? JSONSerialization.jsonObject(with: data) as? JSON else {
        Issue.record("entry is not a JSON object: \(s.prefix(300))")
        return [:]
    }
    return obj
}

/// Runs segments through a fresh harness and returns the decoded entries.
func run(_ segments: [Segment], closeReason: Int32 = KS_CLOSE_FIN) throws -> [JSON] {
    try makeHarness().runTCP(segments: segments, closeReason: closeReason).map(parseJSON)
}

/// The entry JSON without per-run identifiers and times, keys sorted.
func normalized(_ entries: [String]) -> [String] {
    entries.map { s in
        var o = parseJSON(s)
        for k in ["id", "stream", "timestamp", "elapsedTime"] { o[k] = nil }
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

    /// Value of the first header named `name` in `headers` (or another list key).
    func header(_ name: String, in key: String = "headers") -> String? {
        arr(key)?.first { ($0.str("name") ?? "").lowercased() == name }?.str("value")
    }
}

// MARK: Encoding HTTP/2 by hand

let preface = bytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

/// One frame: 9-byte header + payload.
func frame(_ type: UInt8, flags: UInt8 = 0, stream: UInt32, _ payload: [UInt8]) -> [UInt8] {
    let n = payload.count
    return [UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF), type, flags,
            UInt8(stream >> 24 & 0x7F), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF)]
        + payload
}

func settings(_ pairs: [(UInt16, UInt32)] = [], ack: Bool = false) -> [UInt8] {
    var p: [UInt8] = []
    for (id, v) in pairs { p += [UInt8(id >> 8), UInt8(id & 0xFF), UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    return frame(4, flags: ack ? 1 : 0, stream: 0, p)
}

func u32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

/// HPACK integer with an N-bit prefix and the given high bits.
func hpackInt(_ v: Int, prefix n: Int, high: UInt8) -> [UInt8] {
    let max = (1 << n) - 1
    if v < max { return [high | UInt8(v)] }
    var out: [UInt8] = [high | UInt8(max)]
    var r = v - max
    while r >= 128 {
        out.append(UInt8(r & 0x7F | 0x80))
        r >>= 7
    }
    out.append(UInt8(r))
    return out
}

func hpackString(_ s: String) -> [UInt8] { hpackInt(s.utf8.count, prefix: 7, high: 0) + bytes(s) }

/// A header block of literals without indexing (new names), so blocks can be
/// decoded in any order; `indexed` adds them with incremental indexing instead.
func block(_ fields: [(String, String)], indexed: Bool = false) -> [UInt8] {
    var out: [UInt8] = []
    for (n, v) in fields { out += [indexed ? 0x40 : 0x00] + hpackString(n) + hpackString(v) }
    return out
}

func headers(_ stream: UInt32, _ fields: [(String, String)], endStream: Bool = false, indexed: Bool = false) -> [UInt8] {
    frame(1, flags: 0x4 | (endStream ? 1 : 0), stream: stream, block(fields, indexed: indexed))
}

func data(_ stream: UInt32, _ payload: [UInt8], endStream: Bool = false) -> [UInt8] {
    frame(0, flags: endStream ? 1 : 0, stream: stream, payload)
}

func get(_ stream: UInt32, _ path: String, method: String = "GET", extra: [(String, String)] = [], endStream: Bool = true) -> [UInt8] {
    headers(stream, [(":method", method), (":scheme", "http"), (":authority", "example.com"), (":path", path)] + extra,
            endStream: endStream)
}

func ok(_ stream: UInt32, status: String = "200", extra: [(String, String)] = [], endStream: Bool = false) -> [UInt8] {
    headers(stream, [(":status", status)] + extra, endStream: endStream)
}

/// A gRPC length-prefixed message.
func grpcMessage(_ m: [UInt8], compressed: Bool = false) -> [UInt8] {
    [compressed ? 1 : 0] + u32(UInt32(m.count)) + m
}

/// A simple prior-knowledge conversation: GET /a and POST /b, both answered.
func simpleConversation() -> [Segment] {
    [
        (c2s, preface + settings([(1, 4096)]) + get(1, "/a?x=1&y=%20z")),
        (s2c, settings() + settings(ack: true) + ok(1, extra: [("content-type", "text/plain")]) + data(1, bytes("hello"), endStream: true)),
        (c2s, settings(ack: true) + get(3, "/b", method: "POST", extra: [("content-type", "application/json")], endStream: false)
            + data(3, bytes("{\"k\":1}"), endStream: true)),
        (s2c, ok(3, status: "201", extra: [("content-type", "application/json")]) + data(3, bytes("{}"), endStream: true)),
    ]
}

/// Every segment cut into single bytes.
func byteByByte(_ segments: [Segment]) -> [Segment] {
    segments.flatMap { s in s.1.map { (s.0, [$0]) } }
}

// MARK: Captures and tools

enum Tools {
    static let repoRoot = TestProcess.repoRoot
    static let fixtures = TestProcess.fixtures("http2")
    static let corpusRoot: URL? = {
        let url = repoRoot.deletingLastPathComponent().appendingPathComponent("shared/corpus")
        return FileManager.default.fileExists(atPath: url.appendingPathComponent("http2").path) ? url : nil
    }()
    static var hasTshark: Bool { TestProcess.which("tshark") != nil }

    static func files(_ dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
            .filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted().map { dir.appendingPathComponent($0).path }
    }

    static var corpusFiles: [String] {
        guard let root = corpusRoot else { return [] }
        return files(root.appendingPathComponent("http2")) + files(root.appendingPathComponent("grpc"))
    }

    /// The entries of a capture, dissected in-process with the HTTP/2 and HTTP/1 plugins.
    static func dissect(_ path: String) throws -> [JSON] {
        try dissectRaw(path).entries.map(parseJSON)
    }

    /// The entries as JSON text (for KFL), and the plugins that made them.
    static func dissectRaw(_ path: String) throws -> (entries: [String], plugins: [LoadedPlugin]) {
        let plugins = [try makeHarness().plugin, try PluginHarness(pluginNamed: "http").plugin]
        let sink = Collect()
        let session = DissectionSession(plugins: plugins, sink: sink)
        let backend = try LibpcapBackend(file: path)
        #expect(CaptureRunner.drain(backend, into: session) == nil)
        session.finish()
        return (sink.entries, plugins)
    }

    /// The decode-as rule of a corpus file from SOURCES.md (`-d tcp.port==N,http2`), if any.
    static func decodeAs(_ path: String) -> String? {
        guard let root = corpusRoot,
            let text = try? String(contentsOf: root.appendingPathComponent("SOURCES.md"), encoding: .utf8)
        else { return nil }
        let name = (path as NSString).lastPathComponent
        for line in text.split(separator: "\n") where line.contains("`\(name)`") {
            if let r = line.range(of: "`-d ") {
                let rest = line[r.upperBound...]
                if let end = rest.firstIndex(of: "`") { return String(rest[..<end]) }
            }
        }
        return nil
    }

    /// The server port of a recording: the destination port of its first packet's SYN.
    static func serverPort(_ path: String) throws -> String? {
        let r = try TestProcess.run(TestProcess.which("tshark")!, ["-r", path, "-Y", "tcp.flags.syn==1 && tcp.flags.ack==0",
                                                                    "-T", "fields", "-e", "tcp.dstport", "-c", "1"])
        return r.stdout.split(separator: "\n").first.map(String.init)
    }
}

final class Collect: EntrySink {
    var entries: [String] = []
    func emit(_ entry: EntryView) { entries.append(String(decoding: entry.json, as: UTF8.self)) }
}

/// What tshark says about one HTTP/2 stream.
struct TsharkStream {
    var method: String?
    var path: String?
    var status: Int?
    var grpcStatus: Int?
}

enum Tshark {
    /// Streams keyed by "lowPort-highPort/streamId".
    static func streams(_ path: String, decodeAs: String?) throws -> [String: TsharkStream] {
        var args = ["-r", path, "-Y", "http2", "-T", "json", "--no-duplicate-keys", "-J", "http2 tcp"]
        if let decodeAs { args += ["-d", decodeAs] }
        let r = try TestProcess.run(TestProcess.which("tshark")!, args)
        guard let packets = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [JSON] else { return [:] }
        var out: [String: TsharkStream] = [:]
        for p in packets {
            guard let layers = p.obj("_source")?.obj("layers"), let tcp = layers.obj("tcp"),
                let a = Int(tcp.str("tcp.srcport") ?? ""), let b = Int(tcp.str("tcp.dstport") ?? "")
            else { continue }
            let conn = "\(min(a, b))-\(max(a, b))"
            var frames: [JSON] = []
            collectFrames(layers["http2"], into: &frames)
            for f in frames {
                // A PUSH_PROMISE's fields are the request of the promised stream.
                let promised = f.str("http2.type") == "5" ? f.str("http2.push_promise.promised_stream_id") : nil
                guard let sid = promised ?? f.str("http2.streamid"), sid != "0" else { continue }
                var hs: [(String, String)] = []
                collectHeaders(f["http2.header"], into: &hs)
                if hs.isEmpty { continue }
                var s = out["\(conn)/\(sid)"] ?? TsharkStream()
                for (n, v) in hs {
                    switch n {
                    case ":method": s.method = s.method ?? v
                    case ":path": s.path = s.path ?? v
                    case ":status": if let c = Int(v), c >= 200 || s.status == nil { s.status = c }
                    case "grpc-status": s.grpcStatus = Int(v)
                    default: break
                    }
                }
                out["\(conn)/\(sid)"] = s
            }
        }
        return out
    }

    private static func collectFrames(_ v: Any?, into out: inout [JSON]) {
        if let list = v as? [Any] {
            for x in list { collectFrames(x, into: &out) }
        } else if let o = v as? JSON {
            if o["http2.streamid"] != nil { out.append(o); return }
            for (_, x) in o { collectFrames(x, into: &out) }
        }
    }

    private static func collectHeaders(_ v: Any?, into out: inout [(String, String)]) {
        if let list = v as? [Any] {
            for x in list { collectHeaders(x, into: &out) }
        } else if let o = v as? JSON {
            if let n = o.str("http2.header.name") {
                out.append((n, o.str("http2.header.value") ?? ""))
                return
            }
            for (_, x) in o { collectHeaders(x, into: &out) }
        }
    }
}

/// The key of an entry in ``Tshark/streams``.
func streamKey(_ e: JSON) -> String? {
    guard let a = e.obj("src")?.int("port"), let b = e.obj("dst")?.int("port"), let sid = e.int("streamId") else { return nil }
    return "\(min(a, b))-\(max(a, b))/\(sid)"
}
