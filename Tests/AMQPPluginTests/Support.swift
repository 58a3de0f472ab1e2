// Helpers for the AMQP plugin tests: an AMQP 0-9-1 frame encoder, running
// conversations through the real loader, tools (tshark, kubeshark).

import Foundation
@_exported import TestKit
import PluginAPI
import Testing

@testable import Host

typealias Segment = (HarnessDirection, [UInt8])
typealias JSON = [String: Any]

let c2s = HarnessDirection.clientToServer
let s2c = HarnessDirection.serverToClient

func makeHarness() throws -> PluginHarness { try PluginHarness(pluginNamed: "amqp") }

func parseJSON(_ s: String) -> JSON {
    guard let data = s.data(using: .utf8), let obj = try? JSONSerialization.jsonObject(with: data) as? JSON else {
        Issue.record("entry is not a JSON object: \(s.prefix(300))")
        return [:]
    }
    return obj
}

func run(_ segments: [Segment], closeReason: Int32 = KS_CLOSE_FIN) throws -> [JSON] {
    try makeHarness().runTCP(segments: segments, closeReason: closeReason).map(parseJSON)
}

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
    func str(_ k: String) -> String? { self[k] as? String }
    func int(_ k: String) -> Int? { (self[k] as? NSNumber)?.intValue }
    func bool(_ k: String) -> Bool? { (self[k] as? NSNumber)?.boolValue }
    func double(_ k: String) -> Double? { (self[k] as? NSNumber)?.doubleValue }
    var flags: [String] { self["flags"] as? [String] ?? [] }
    var request: JSON? { obj("request") }
    var response: JSON? { obj("response") }
    var method: String? { str("method") }
    var args: JSON? { obj("arguments") }
}

// MARK: Encoder

/// A field-table value for the encoder.
enum TV {
    case bool(Bool), i8(Int8), u8(UInt8), i16(Int16), u16(UInt16), i32(Int32), u32(UInt32), i64(Int64)
    case float(Float), double(Double), decimal(UInt8, Int32), str(String), bytes([UInt8]), array([TV])
    case timestamp(UInt64), table([(String, TV)]), void
}

struct Enc {
    var out: [UInt8] = []
    mutating func u8(_ v: UInt8) { out.append(v) }
    mutating func u16(_ v: UInt16) { out += [UInt8(v >> 8), UInt8(v & 0xFF)] }
    mutating func u32(_ v: UInt32) { for s in stride(from: 24, through: 0, by: -8) { out.append(UInt8((v >> UInt32(s)) & 0xFF)) } }
    mutating func u64(_ v: UInt64) { for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8((v >> UInt64(s)) & 0xFF)) } }
    mutating func shortstr(_ s: String) { u8(UInt8(s.utf8.count)); out += Array(s.utf8) }
    mutating func longstr(_ s: [UInt8]) { u32(UInt32(s.count)); out += s }
    mutating func longstr(_ s: String) { longstr(Array(s.utf8)) }
    mutating func bits(_ b: Bool...) {
        var o: UInt8 = 0
        for (i, x) in b.enumerated() where x { o |= 1 << i }
        u8(o)
    }
    mutating func table(_ t: [(String, TV)]) {
        var inner = Enc()
        for (k, v) in t {
            inner.shortstr(k)
            inner.value(v)
        }
        longstr(inner.out)
    }
    mutating func value(_ v: TV) {
        switch v {
        case .bool(let b): u8(UInt8(ascii: "t")); u8(b ? 1 : 0)
        case .i8(let x): u8(UInt8(ascii: "b")); u8(UInt8(bitPattern: x))
        case .u8(let x): u8(UInt8(ascii: "B")); u8(x)
        case .i16(let x): u8(UInt8(ascii: "s")); u16(UInt16(bitPattern: x))
        case .u16(let x): u8(UInt8(ascii: "u")); u16(x)
        case .i32(let x): u8(UInt8(ascii: "I")); u32(UInt32(bitPattern: x))
        case .u32(let x): u8(UInt8(ascii: "i")); u32(x)
        case .i64(let x): u8(UInt8(ascii: "l")); u64(UInt64(bitPattern: x))
        case .float(let x): u8(UInt8(ascii: "f")); u32(x.bitPattern)
        case .double(let x): u8(UInt8(ascii: "d")); u64(x.bitPattern)
        case .decimal(let s, let x): u8(UInt8(ascii: "D")); u8(s); u32(UInt32(bitPattern: x))
        case .str(let s): u8(UInt8(ascii: "S")); longstr(s)
        case .bytes(let b): u8(UInt8(ascii: "x")); longstr(b)
        case .timestamp(let t): u8(UInt8(ascii: "T")); u64(t)
        case .void: u8(UInt8(ascii: "V"))
        case .table(let t): u8(UInt8(ascii: "F")); table(t)
        case .array(let a):
            u8(UInt8(ascii: "A"))
            var inner = Enc()
            for x in a { inner.value(x) }
            longstr(inner.out)
        }
    }
}

let protocolHeader: [UInt8] = Array("AMQP".utf8) + [0, 0, 9, 1]

func frame(_ type: UInt8, _ channel: UInt16, _ payload: [UInt8]) -> [UInt8] {
    var e = Enc()
    e.u8(type)
    e.u16(channel)
    e.u32(UInt32(payload.count))
    return e.out + payload + [0xCE]
}

func method(_ channel: UInt16, _ cls: UInt16, _ m: UInt16, _ args: (inout Enc) -> Void = { _ in }) -> [UInt8] {
    var e = Enc()
    e.u16(cls)
    e.u16(m)
    args(&e)
    return frame(1, channel, e.out)
}

/// A basic-class content header with content-type, delivery-mode and headers.
func contentHeader(_ channel: UInt16, bodySize: UInt64, contentType: String? = "text/plain",
                   headers: [(String, TV)]? = nil, deliveryMode: UInt8? = 2) -> [UInt8] {
    var e = Enc()
    e.u16(60)
    e.u16(0)
    e.u64(bodySize)
    var flags: UInt16 = 0
    if contentType != nil { flags |= 1 << 15 }
    if headers != nil { flags |= 1 << 13 }
    if deliveryMode != nil { flags |= 1 << 12 }
    e.u16(flags)
    if let contentType { e.shortstr(contentType) }
    if let headers { e.table(headers) }
    if let deliveryMode { e.u8(deliveryMode) }
    return frame(2, channel, e.out)
}

func bodyFrame(_ channel: UInt16, _ b: [UInt8]) -> [UInt8] { frame(3, channel, b) }
let heartbeat = frame(8, 0, [])

func publish(_ channel: UInt16, exchange: String, key: String, body: [UInt8], headers: [(String, TV)]? = nil,
             frameMax: Int = 131072) -> [UInt8] {
    var out = method(channel, 60, 40) { e in e.u16(0); e.shortstr(exchange); e.shortstr(key); e.bits(false, false) }
    out += contentHeader(channel, bodySize: UInt64(body.count), headers: headers)
    var i = 0
    while i < body.count {
        out += bodyFrame(channel, Array(body[i..<min(body.count, i + frameMax)]))
        i += frameMax
    }
    return out
}

func deliver(_ channel: UInt16, tag: String, deliveryTag: UInt64, exchange: String, key: String, body: [UInt8]) -> [UInt8] {
    method(channel, 60, 60) { e in e.shortstr(tag); e.u64(deliveryTag); e.bits(false); e.shortstr(exchange); e.shortstr(key) }
        + contentHeader(channel, bodySize: UInt64(body.count)) + bodyFrame(channel, body)
}

/// connection.start … channel.open-ok on channel 1.
func handshake() -> [Segment] {
    [
        (c2s, protocolHeader),
        (s2c, method(0, 10, 10) { e in
            e.u8(0); e.u8(9)
            e.table([("product", .str("RabbitMQ")), ("capabilities", .table([("publisher_confirms", .bool(true))]))])
            e.longstr("PLAIN AMQPLAIN"); e.longstr("en_US")
        }),
        (c2s, method(0, 10, 11) { e in
            e.table([("product", .str("pika")), ("platform", .str("Python"))])
            e.shortstr("PLAIN"); e.longstr([0] + Array("guest".utf8) + [0] + Array("secret".utf8)); e.shortstr("en_US")
        }),
        (s2c, method(0, 10, 30) { e in e.u16(2047); e.u32(131072); e.u16(60) }),
        (c2s, method(0, 10, 31) { e in e.u16(2047); e.u32(131072); e.u16(60) }
            + method(0, 10, 40) { e in e.shortstr("/"); e.shortstr(""); e.bits(false) }),
        (s2c, method(0, 10, 41) { e in e.shortstr("") }),
        (c2s, method(1, 20, 10) { e in e.shortstr("") }),
        (s2c, method(1, 20, 11) { e in e.longstr("") }),
    ]
}


// MARK: Tools

enum Tools {
    static let repoRoot = TestProcess.repoRoot
    static let corpus = TestProcess.corpus("amqp")

    static func which(_ tool: String) -> String? { TestProcess.which(tool) }

    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        try TestProcess.run(executable, arguments).stdout
    }
}

// MARK: Recorded sessions

/// The methods of Tests/Fixtures/amqp/live_capture.py's session, in order.
let liveSessionMethods = [
    "connection.start", "connection.tune", "connection.open", "channel.open", "queue.declare",
    "exchange.declare", "queue.bind", "basic.publish", "basic.publish", "basic.get", "basic.get", "basic.get",
    "queue.delete", "channel.close", "connection.close",
]

/// The entries the built `kubeshark dissect --plugins amqp` prints for a capture.
func dissectWithKubeshark(_ path: String) throws -> [JSON] {
    let out = try Tools.run(CorpusTests.kubeshark, ["dissect", path, "--plugins", "amqp", "--output", "json"])
    return out.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? JSON }
}
