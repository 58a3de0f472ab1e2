// DNS message parsing (RFC 1035 and successors): header, questions, resource
// records with typed RDATA, name compression with loop protection. The parser
// never traps on hostile input: it records the first problem in `error` and
// keeps what it parsed before it.

/// A problem found while parsing; the text goes into the entry's `error` field.
struct DNSError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// One value of a typed RDATA field.
enum FieldValue {
    case string(String)
    case uint(UInt64)
    case bool(Bool)
    case strings([String])
    case objects([[Field]])
}

/// A key/value pair of a record's typed data.
struct Field {
    var key: StaticString
    var value: FieldValue
    init(_ key: StaticString, _ value: FieldValue) {
        self.key = key
        self.value = value
    }
}

struct Question {
    var name: String
    var type: UInt16
    var cls: UInt16
}

struct Record {
    var name: String
    var type: UInt16
    var cls: UInt16
    var ttl: UInt32
    var rdlength: Int
    var data: [Field]
}

/// Caps that keep one message's decoded form bounded.
enum DNSLimits {
    /// Most records kept per section (the rest are counted, not shown).
    static let maxRecordsPerSection = 256
    /// Most compression pointers followed in one name.
    static let maxPointers = 126
    /// A query waiting this long (capture time) is emitted as timed out.
    static let queryTimeoutNs: Int64 = 5_000_000_000
    /// Most unanswered queries kept per flow.
    static let maxPending = 1024
}

struct DNSMessage {
    var size: Int
    var headerComplete = false
    var id: UInt16 = 0
    var flagBits: UInt16 = 0
    var qdcount = 0, ancount = 0, nscount = 0, arcount = 0
    var questions: [Question] = []
    var answers: [Record] = []
    var authorities: [Record] = []
    var additionals: [Record] = []
    /// The OPT record's upper rcode bits, when there is one.
    var extendedRcodeHigh: UInt16?
    var error: String?
    var truncated = false

    var isResponse: Bool { flagBits & 0x8000 != 0 }
    var opcode: Int { Int(flagBits >> 11) & 0xF }
    var aa: Bool { flagBits & 0x0400 != 0 }
    var tc: Bool { flagBits & 0x0200 != 0 }
    var rd: Bool { flagBits & 0x0100 != 0 }
    var ra: Bool { flagBits & 0x0080 != 0 }
    var z: Bool { flagBits & 0x0040 != 0 }
    var ad: Bool { flagBits & 0x0020 != 0 }
    var cd: Bool { flagBits & 0x0010 != 0 }
    /// The full rcode, with the EDNS extension when an OPT record carries it.
    var rcode: Int { Int(flagBits & 0xF) | Int(extendedRcodeHigh ?? 0) << 4 }

    /// Parses one message (the UDP payload, or a TCP message without its length prefix).
    static func parse(_ m: UnsafeRawBufferPointer) -> DNSMessage {
        var msg = DNSMessage(size: m.count)
        do throws(DNSError) {
            try msg.parseBody(m)
        } catch {
            msg.error = error.message
        }
        return msg
    }

    private mutating func parseBody(_ m: UnsafeRawBufferPointer) throws(DNSError) {
        guard m.count >= 12 else { throw DNSError("message of \(m.count) bytes is shorter than the 12-byte header") }
        id = be16(m, 0)
        flagBits = be16(m, 2)
        qdcount = Int(be16(m, 4))
        ancount = Int(be16(m, 6))
        nscount = Int(be16(m, 8))
        arcount = Int(be16(m, 10))
        headerComplete = true
        var p = 12
        for i in 0..<qdcount {
            guard p < m.count else { throw DNSError("question count \(qdcount) exceeds the message (found \(i))") }
            let (name, next) = try readName(m, p)
            guard next + 4 <= m.count else { throw DNSError("question \(i + 1) is cut short") }
            let q = Question(name: name, type: be16(m, next), cls: be16(m, next + 2))
            p = next + 4
            if questions.count < DNSLimits.maxRecordsPerSection { questions.append(q) } else { truncated = true }
        }
        // Each section keeps the records parsed before an error.
        var list: [Record] = []
        do { p = try parseSection(m, p, count: ancount, label: "answer", into: &list) } catch {
            answers = list
            throw error
        }
        answers = list
        list = []
        do { p = try parseSection(m, p, count: nscount, label: "authority", into: &list) } catch {
            authorities = list
            throw error
        }
        authorities = list
        list = []
        // Trailing bytes after the last record are tolerated (some stacks pad).
        do { _ = try parseSection(m, p, count: arcount, label: "additional", into: &list) } catch {
            additionals = list
            throw error
        }
        additionals = list
    }

    private mutating func parseSection(
        _ m: UnsafeRawBufferPointer, _ start: Int, count: Int, label: String, into list: inout [Record]
    ) throws(DNSError) -> Int {
        var p = start
        for i in 0..<count {
            guard p < m.count else { throw DNSError("\(label) count \(count) exceeds the message (found \(i))") }
            let (name, next) = try readName(m, p)
            guard next + 10 <= m.count else { throw DNSError("\(label) record \(i + 1) header is cut short") }
            let type = be16(m, next)
            let cls = be16(m, next + 2)
            let ttl = be32(m, next + 4)
            let rdlength = Int(be16(m, next + 8))
            let rdStart = next + 10
            guard rdStart + rdlength <= m.count else {
                throw DNSError(
                    "\(label) record \(i + 1) rdlength \(rdlength) runs past the end of the message (\(m.count - rdStart) bytes left)")
            }
            var record = Record(name: name, type: type, cls: cls, ttl: ttl, rdlength: rdlength, data: [])
            do throws(DNSError) {
                record.data = try parseRData(m, type: type, start: rdStart, end: rdStart + rdlength)
            } catch {
                // Keep the record with its raw bytes; the message is flagged malformed.
                record.data = [Field("rdata", .string(hex(m, rdStart, rdStart + rdlength)))]
                if self.error == nil { self.error = "\(label) record \(i + 1) (\(typeName(type))): \(error.message)" }
            }
            if type == 41 {
                extendedRcodeHigh = UInt16(ttl >> 24)
            }
            if list.count < DNSLimits.maxRecordsPerSection { list.append(record) } else { truncated = true }
            p = rdStart + rdlength
        }
        return p
    }
}

// MARK: - Primitive readers

@inline(__always)
func be16(_ m: UnsafeRawBufferPointer, _ i: Int) -> UInt16 { UInt16(m[i]) << 8 | UInt16(m[i + 1]) }

@inline(__always)
func be32(_ m: UnsafeRawBufferPointer, _ i: Int) -> UInt32 {
    UInt32(m[i]) << 24 | UInt32(m[i + 1]) << 16 | UInt32(m[i + 2]) << 8 | UInt32(m[i + 3])
}

private let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

func hex(_ m: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(max(0, end - start) * 2)
    var i = start
    while i < end {
        out.append(hexDigits[Int(m[i] >> 4)])
        out.append(hexDigits[Int(m[i] & 0xF)])
        i += 1
    }
    return String(decoding: out, as: UTF8.self)
}

/// Reads a possibly compressed domain name at `start`; returns it in
/// presentation form (no trailing dot, "." for the root) and the offset just
/// after it. Every compression pointer must point strictly before the labels
/// it continues, so loops are impossible; the pointer count and the 255-byte
/// name length are capped as well.
func readName(_ m: UnsafeRawBufferPointer, _ start: Int) throws(DNSError) -> (String, Int) {
    var p = start
    var runStart = start
    var end: Int?
    var out: [UInt8] = []
    var wireLength = 0
    var pointers = 0
    while true {
        guard p < m.count else { throw DNSError("name at offset \(start) runs past the end of the message") }
        let len = Int(m[p])
        switch len & 0xC0 {
        case 0x00:
            if len == 0 {
                if end == nil { end = p + 1 }
                let name = out.isEmpty ? "." : String(decoding: out, as: UTF8.self)
                return (name, end!)
            }
            guard p + 1 + len <= m.count else {
                throw DNSError("label at offset \(p) runs past the end of the message")
            }
            wireLength += len + 1
            guard wireLength + 1 <= 255 else { throw DNSError("name at offset \(start) is longer than 255 bytes") }
            if !out.isEmpty { out.append(UInt8(ascii: ".")) }
            for i in (p + 1)..<(p + 1 + len) { appendEscaped(m[i], to: &out) }
            p += 1 + len
        case 0xC0:
            guard p + 1 < m.count else { throw DNSError("compression pointer at offset \(p) is cut short") }
            let target = (len & 0x3F) << 8 | Int(m[p + 1])
            if end == nil { end = p + 2 }
            guard target < m.count else {
                throw DNSError("compression pointer at offset \(p) points out of the message (to \(target))")
            }
            guard target < runStart else {
                throw DNSError("compression pointer loop at offset \(p) (points forward or back into its own name, to \(target))")
            }
            pointers += 1
            guard pointers <= DNSLimits.maxPointers else { throw DNSError("too many compression pointers in one name") }
            runStart = target
            p = target
        default:
            throw DNSError("label length byte 0x\(String(len, radix: 16)) at offset \(p): label longer than 63 or unknown label type")
        }
    }
}

/// Presentation-form escaping of one label byte (RFC 4343): dots and
/// backslashes are escaped, non-printable bytes become \DDD.
@inline(__always)
private func appendEscaped(_ c: UInt8, to out: inout [UInt8]) {
    switch c {
    case UInt8(ascii: "."), UInt8(ascii: "\\"):
        out.append(UInt8(ascii: "\\"))
        out.append(c)
    case 0x21...0x7E:
        out.append(c)
    default:
        out.append(UInt8(ascii: "\\"))
        out.append(UInt8(ascii: "0") + c / 100)
        out.append(UInt8(ascii: "0") + (c / 10) % 10)
        out.append(UInt8(ascii: "0") + c % 10)
    }
}

func ipv4(_ m: UnsafeRawBufferPointer, _ i: Int) -> String {
    "\(m[i]).\(m[i + 1]).\(m[i + 2]).\(m[i + 3])"
}

/// RFC 5952 text form of the 16 bytes at `i`.
func ipv6(_ m: UnsafeRawBufferPointer, _ i: Int) -> String {
    var groups = [UInt16](repeating: 0, count: 8)
    for g in 0..<8 { groups[g] = be16(m, i + 2 * g) }
    var bestStart = -1, bestLen = 0, curStart = -1, curLen = 0
    for g in 0..<8 {
        if groups[g] == 0 {
            if curStart < 0 { curStart = g; curLen = 0 }
            curLen += 1
            if curLen > bestLen { bestStart = curStart; bestLen = curLen }
        } else {
            curStart = -1
        }
    }
    if bestLen < 2 { bestStart = -1 }
    var s = ""
    var g = 0
    while g < 8 {
        if g == bestStart {
            s += "::"
            g += bestLen
            continue
        }
        if !s.isEmpty && !s.hasSuffix(":") { s += ":" }
        s += String(groups[g], radix: 16)
        g += 1
    }
    return s
}

/// The bytes as text: printable ASCII kept, others escaped as \DDD (like dig).
func characterString(_ m: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(end - start)
    for i in start..<end {
        let c = m[i]
        if c == UInt8(ascii: "\\") || c == UInt8(ascii: "\"") {
            out.append(UInt8(ascii: "\\"))
            out.append(c)
        } else if c >= 0x20 && c <= 0x7E {
            out.append(c)
        } else {
            out.append(UInt8(ascii: "\\"))
            out.append(UInt8(ascii: "0") + c / 100)
            out.append(UInt8(ascii: "0") + (c / 10) % 10)
            out.append(UInt8(ascii: "0") + c % 10)
        }
    }
    return String(decoding: out, as: UTF8.self)
}
