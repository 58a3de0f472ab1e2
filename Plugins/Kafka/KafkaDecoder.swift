// A bounded reader of Kafka primitive types and a schema-driven body decoder.
// Reads past the end return zeros and set `bad` (sticky), so a short or
// malformed body yields the fields decoded so far, never a trap.

import CZlib
import PluginKit

/// A decoded value, kept until the entry is emitted.
indirect enum KValue {
    case int(Int64)
    case str(String)
    case bytes([UInt8])
    case bool(Bool)
    case null
    case obj([(StaticString, KValue)])
    case arr([KValue])
    /// A byte string kept as a range of the message (or inflated batch) it came from:
    /// shown as text when it is printable UTF-8, else as base64. No copy, no String.
    case span([UInt8], Range<Int>)

    func write(_ key: StaticString?, _ b: inout EntryBuilder) {
        switch self {
        case .int(let v): b.int(key, v)
        case .str(let s): b.string(key, s)
        case .bytes(let v): v.withUnsafeBytes { b.bytes(key, $0) }
        case .bool(let v): b.bool(key, v)
        case .null: b.null(key)
        case .obj(let fields):
            b.object(key) { o in for (k, v) in fields { v.write(k, &o) } }
        case .arr(let items):
            b.array(key) { a in for v in items { v.write(nil, &a) } }
        case .span(let bytes, let range):
            bytes.withUnsafeBytes { all in
                let v = UnsafeRawBufferPointer(rebasing: all[range])
                if isPrintableUTF8(v) { b.string(key, bytes: v) } else { b.bytes(key, v) }
            }
        }
    }
}

struct KafkaLimits {
    /// Most items kept per array (the rest are read and dropped).
    static let maxItems = 500
    /// Most bytes shown of one byte string.
    static let maxBytesShown = 4096
    /// Most decoded values per message.
    static let maxValues = 20000
    /// Most inflated bytes per gzip batch.
    static let maxInflated = 1 << 20
    /// Most records shown per batch.
    static let maxRecords = 200
    static let maxTopicsInSummary = 16
}

struct Reader {
    let b: [UInt8]
    var p: Int
    let end: Int
    var flexible: Bool
    var bad = false
    var problem: String?

    init(_ b: [UInt8], from: Int = 0, to: Int? = nil, flexible: Bool) {
        self.b = b
        p = from
        end = min(to ?? b.count, b.count)
        self.flexible = flexible
    }

    var remaining: Int { bad ? 0 : end - p }

    mutating func fail(_ why: String) {
        if !bad { problem = why }
        bad = true
    }

    mutating func take(_ n: Int) -> Range<Int>? {
        guard !bad, n >= 0, n <= end - p else {
            fail("field runs past the end of the message")
            return nil
        }
        defer { p += n }
        return p..<(p + n)
    }

    mutating func uint(_ n: Int) -> UInt64 {
        guard let r = take(n) else { return 0 }
        var v: UInt64 = 0
        for i in r { v = v << 8 | UInt64(b[i]) }
        return v
    }
    mutating func i8() -> Int8 { Int8(truncatingIfNeeded: uint(1)) }
    mutating func i16() -> Int16 { Int16(truncatingIfNeeded: uint(2)) }
    mutating func i32() -> Int32 { Int32(truncatingIfNeeded: uint(4)) }
    mutating func i64() -> Int64 { Int64(bitPattern: uint(8)) }

    mutating func uvarint() -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard !bad, p < end else {
                fail("varint runs past the end of the message")
                return 0
            }
            let c = b[p]
            p += 1
            v |= UInt64(c & 0x7F) << shift
            if c & 0x80 == 0 { return v }
            shift += 7
            if shift > 63 {
                fail("varint too long")
                return 0
            }
        }
    }
    mutating func varint() -> Int64 {
        let u = uvarint()
        return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
    }

    /// A length: compact (uvarint N+1, 0 = null) or classic (`width` bytes, -1 = null). nil = null.
    mutating func length(width: Int) -> Int? {
        if flexible {
            let n = uvarint()
            if n == 0 { return nil }
            guard n - 1 <= UInt64(remaining) else {
                fail("length \(n - 1) exceeds the message")
                return nil
            }
            return Int(n - 1)
        }
        let n = width == 2 ? Int64(i16()) : Int64(i32())
        if n < 0 { return nil }
        guard n <= Int64(remaining) else {
            fail("length \(n) exceeds the message")
            return nil
        }
        return Int(n)
    }

    /// A string, at most `KafkaLimits.maxBytesShown` bytes of it kept.
    mutating func string() -> String? {
        guard let n = length(width: 2), let r = take(n) else { return nil }
        return String(decoding: b[r.lowerBound..<min(r.upperBound, r.lowerBound + KafkaLimits.maxBytesShown)],
                      as: UTF8.self)
    }

    mutating func bytesRange() -> Range<Int>? {
        guard let n = length(width: 4) else { return nil }
        return take(n)
    }

    /// An array count (nil = null); each element takes at least one byte.
    mutating func count() -> Int? { length(width: 4) }

    mutating func taggedFields() {
        guard flexible else { return }
        let n = uvarint()
        guard n <= UInt64(remaining) else { return fail("tagged field count \(n) exceeds the message") }
        for _ in 0..<n {
            _ = uvarint()
            let size = uvarint()
            guard size <= UInt64(remaining) else { return fail("tagged field size \(size) exceeds the message") }
            p += Int(size)
        }
    }
}

/// A byte string (capped) to be shown as text when it is printable UTF-8, else as bytes.
func shownBytes(_ b: [UInt8], _ r: Range<Int>) -> KValue {
    .span(b, r.lowerBound..<min(r.upperBound, r.lowerBound + KafkaLimits.maxBytesShown))
}

/// Valid UTF-8 (shortest forms, no surrogates, at most U+10FFFF) without control
/// characters other than tab, CR and LF: what `printable` accepts, checked on the bytes.
func isPrintableUTF8(_ b: UnsafeRawBufferPointer) -> Bool {
    var i = 0
    let n = b.count
    while i < n {
        let c = b[i]
        if c < 0x80 {
            if c < 0x20 && c != 0x0A && c != 0x0D && c != 0x09 { return false }
            i += 1
            continue
        }
        let length: Int
        var lower: UInt8 = 0x80, upper: UInt8 = 0xBF  // bounds of the second byte
        switch c {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; upper = 0x9F
        case 0xF0: length = 4; lower = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; upper = 0x8F
        default: return false
        }
        guard i + length <= n, b[i + 1] >= lower, b[i + 1] <= upper else { return false }
        var k = 2
        while k < length {
            guard b[i + k] & 0xC0 == 0x80 else { return false }
            k += 1
        }
        i += length
    }
    return true
}

/// Decodes a body by schema, collecting topics and error codes.
struct BodyDecoder {
    var r: Reader
    let version: Int16
    var topics: [String] = []
    var firstError: Int16 = 0
    var values = 0
    var truncatedRecords = false

    init(reader: Reader, version: Int16) {
        r = reader
        self.version = version
    }

    mutating func object(_ fields: [Field]) -> KValue {
        var out: [(StaticString, KValue)] = []
        for fd in fields where version >= fd.lo && version <= fd.hi {
            if r.bad { break }
            let v = value(fd.type)
            if values < KafkaLimits.maxValues { out.append((fd.name, v)) }
        }
        r.taggedFields()
        return .obj(out)
    }

    mutating func noteTopic(_ s: String) {
        if topics.count < KafkaLimits.maxTopicsInSummary, !topics.contains(s) { topics.append(s) }
    }

    mutating func array(_ element: (inout BodyDecoder) -> KValue) -> KValue {
        guard let n = r.count() else { return .null }
        var items: [KValue] = []
        for _ in 0..<n {
            if r.bad { break }
            let v = element(&self)
            if items.count < KafkaLimits.maxItems, values < KafkaLimits.maxValues { items.append(v) }
        }
        return .arr(items)
    }

    mutating func value(_ t: FieldType) -> KValue {
        values += 1
        switch t {
        case .i8: return .int(Int64(r.i8()))
        case .i16: return .int(Int64(r.i16()))
        case .i32: return .int(Int64(r.i32()))
        case .i64: return .int(r.i64())
        case .bool: return .bool(r.i8() != 0)
        case .str, .nstr: return r.string().map { .str($0) } ?? .null
        case .topic:
            guard let s = r.string() else { return .null }
            noteTopic(s)
            return .str(s)
        case .err:
            let e = r.i16()
            if firstError == 0, !r.bad { firstError = e }
            return .str(errorName(e))
        case .uuid:
            guard let range = r.take(16) else { return .null }
            let hex = Array("0123456789abcdef".utf8)
            var s: [UInt8] = []
            for (i, c) in r.b[range].enumerated() {
                if i == 4 || i == 6 || i == 8 || i == 10 { s.append(UInt8(ascii: "-")) }
                s.append(hex[Int(c >> 4)])
                s.append(hex[Int(c & 15)])
            }
            return .str(String(decoding: s, as: UTF8.self))
        case .bytes:
            guard let range = r.bytesRange() else { return .null }
            return shownBytes(r.b, range)
        case .i32s: return array { .int(Int64($0.r.i32())) }
        case .i64s: return array { .int($0.r.i64()) }
        case .strs: return array { d in d.r.string().map { .str($0) } ?? .null }
        case .topics: return array { d in d.value(.topic) }
        case .arr(let fields): return array { d in d.object(fields) }
        case .records:
            guard let range = r.bytesRange() else { return .null }
            return recordBatches(range)
        }
    }

    /// Record batches inside a records field.
    mutating func recordBatches(_ range: Range<Int>) -> KValue {
        var batches: [KValue] = []
        var p = range.lowerBound
        while p < range.upperBound, batches.count < 64 {
            var h = Reader(r.b, from: p, to: range.upperBound, flexible: false)
            let baseOffset = h.i64()
            let length = Int(h.i32())
            let batchEnd = p + 12 + length
            if h.bad || length < 0 {
                truncatedRecords = true
                break
            }
            if batchEnd > range.upperBound {
                // A fetch response may end with a partial batch.
                batches.append(.obj([("baseOffset", .int(baseOffset)), ("partial", .bool(true))]))
                break
            }
            let leaderEpoch = h.i32()
            let magic = h.i8()
            guard magic == 2 else {
                batches.append(.obj([
                    ("baseOffset", .int(baseOffset)), ("magic", .int(Int64(magic))),
                    ("note", .str("legacy message set not decoded")),
                ]))
                p = batchEnd
                continue
            }
            var b = Reader(r.b, from: h.p, to: batchEnd, flexible: false)
            let crc = b.uint(4)
            let attributes = b.i16()
            let lastOffsetDelta = b.i32()
            let baseTimestamp = b.i64()
            let maxTimestamp = b.i64()
            let producerId = b.i64()
            let producerEpoch = b.i16()
            let baseSequence = b.i32()
            let count = b.i32()
            let codec = Int(attributes & 7)
            var fields: [(StaticString, KValue)] = [
                ("baseOffset", .int(baseOffset)), ("partitionLeaderEpoch", .int(Int64(leaderEpoch))),
                ("magic", .int(2)), ("crc", .int(Int64(crc))), ("attributes", .int(Int64(attributes))),
                ("compression", .str(codec < compressionNames.count ? compressionNames[codec] : "unknown(\(codec))")),
                ("transactional", .bool(attributes & 0x10 != 0)), ("control", .bool(attributes & 0x20 != 0)),
                ("lastOffsetDelta", .int(Int64(lastOffsetDelta))), ("baseTimestamp", .int(baseTimestamp)),
                ("maxTimestamp", .int(maxTimestamp)), ("producerId", .int(producerId)),
                ("producerEpoch", .int(Int64(producerEpoch))), ("baseSequence", .int(Int64(baseSequence))),
                ("recordCount", .int(Int64(count))),
            ]
            if b.bad {
                fields.append(("problem", .str("batch header runs past its end")))
            } else if codec == 0 {
                fields.append(("records", records(b.b, from: b.p, to: batchEnd, count: Int(count), base: baseOffset)))
            } else if codec == 1 {
                if let plain = gunzip(Array(b.b[b.p..<batchEnd])) {
                    fields.append(("records", records(plain, from: 0, to: plain.count, count: Int(count), base: baseOffset)))
                } else {
                    fields.append(("problem", .str("gzip data could not be inflated")))
                }
            } else {
                fields.append(("recordsNotDecoded", .str("compression codec not decoded")))
            }
            batches.append(.obj(fields))
            p = batchEnd
        }
        return .arr(batches)
    }

    func records(_ data: [UInt8], from: Int, to: Int, count: Int, base: Int64) -> KValue {
        var rd = Reader(data, from: from, to: to, flexible: false)
        var out: [KValue] = []
        var i = 0
        while i < count, rd.remaining > 0, out.count < KafkaLimits.maxRecords {
            let len = rd.varint()
            guard len >= 0, len <= Int64(rd.remaining) else { break }
            let recEnd = rd.p + Int(len)
            var x = Reader(data, from: rd.p, to: recEnd, flexible: false)
            _ = x.i8()
            let tsDelta = x.varint()
            let offDelta = x.varint()
            let key = varBytes(&x)
            let value = varBytes(&x)
            let nh = x.varint()
            var headers: [KValue] = []
            if nh > 0 && nh <= Int64(x.remaining) {
                for _ in 0..<nh {
                    let hk = varBytes(&x)
                    let hv = varBytes(&x)
                    if x.bad { break }
                    let pair: [(StaticString, KValue)] = [("key", hk), ("value", hv)]
                    headers.append(.obj(pair))
                }
            }
            var fields: [(StaticString, KValue)] = [
                ("offset", .int(base &+ offDelta)), ("timestampDelta", .int(tsDelta)), ("key", key), ("value", value),
                ("headers", .arr(headers)),
            ]
            if x.bad { fields.append(("problem", .str(x.problem ?? "malformed record"))) }
            out.append(.obj(fields))
            rd.p = recEnd
            i += 1
        }
        return .arr(out)
    }

    func varBytes(_ x: inout Reader) -> KValue {
        let n = x.varint()
        if n < 0 { return .null }
        guard n <= Int64(x.remaining), let range = x.take(Int(n)) else {
            x.fail("record field length exceeds the record")
            return .null
        }
        return shownBytes(x.b, range)
    }
}

/// Inflates gzip data, at most `KafkaLimits.maxInflated` bytes; nil on error.
func gunzip(_ input: [UInt8]) -> [UInt8]? {
    guard !input.isEmpty else { return nil }
    // zlib keeps a pointer to its z_stream: it must not move.
    let s = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    s.initialize(to: z_stream())
    defer { s.deinitialize(count: 1); s.deallocate() }
    guard inflateInit2_(s, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
    defer { inflateEnd(s) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 << 10)
    var input = input
    let ok: Bool = input.withUnsafeMutableBufferPointer { inp in
        s.pointee.next_in = inp.baseAddress
        s.pointee.avail_in = UInt32(inp.count)
        while true {
            let (rc, produced) = chunk.withUnsafeMutableBufferPointer { c -> (Int32, Int) in
                s.pointee.next_out = c.baseAddress
                s.pointee.avail_out = UInt32(c.count)
                let rc = inflate(s, Z_NO_FLUSH)
                return (rc, c.count - Int(s.pointee.avail_out))
            }
            out += chunk[0..<produced]
            if out.count >= KafkaLimits.maxInflated { return true }
            if rc == Z_STREAM_END { return true }
            if rc != Z_OK { return false }
            if produced == 0 && s.pointee.avail_in == 0 { return true }
        }
    }
    return ok ? out : nil
}
