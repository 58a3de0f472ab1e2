// Protocol Buffers wire format without a schema
// (https://protobuf.dev/programming-guides/encoding/): every field with its
// number and wire type; length-delimited values shown as a nested message
// when they parse as one completely (within depth and size bounds), else as
// text when they are printable UTF-8, else as base64 bytes. Packed repeated
// fields cannot be told from bytes without a schema and stay bytes.

import PluginKit

/// Writes raw protobuf fields through the entry builder.
struct ProtobufWriter {
    /// Deepest nesting tried.
    var maxDepth = 8
    /// Most fields written per message (the rest are counted).
    var maxFields = 256

    /// Whether `p` is a complete, well-formed sequence of fields (up to `depth`).
    func isMessage(_ p: UnsafeRawBufferPointer) -> Bool {
        guard !p.isEmpty else { return false }
        var r = WireReader(p)
        var fields = 0
        while !r.atEnd {
            guard let (number, wire) = r.tag(), number >= 1, r.skip(wire) else { return false }
            fields += 1
            if fields > 100_000 { return false }
        }
        return true
    }

    /// Writes the fields of `p` as an array of `{field, wireType, value...}`.
    func write(_ p: UnsafeRawBufferPointer, depth: Int, _ b: inout EntryBuilder) {
        var r = WireReader(p)
        var written = 0
        while !r.atEnd {
            let at = r.offset
            guard let (number, wire) = r.tag(), number >= 1 else {
                b.object(nil) { b in
                    b.string("error", "bad tag")
                    b.bytes("rest", UnsafeRawBufferPointer(rebasing: p[at...]))
                }
                return
            }
            if written == maxFields {
                b.object(nil) { b in b.string("error", "more fields not shown") }
                return
            }
            written += 1
            switch wire {
            case 0:
                guard let v = r.varint() else { return malformed(p, at, &b) }
                b.object(nil) { b in
                    b.uint("field", number)
                    b.string("wireType", "varint")
                    b.uint("value", v)
                    let zz = Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1)))
                    if zz < 0 { b.int("zigzag", zz) }
                }
            case 1, 5:
                let wide = wire == 1
                guard let v = r.fixed(wide ? 8 : 4) else { return malformed(p, at, &b) }
                b.object(nil) { b in
                    b.uint("field", number)
                    b.string("wireType", wide ? "i64" : "i32")
                    b.uint("value", v)
                    if wide {
                        b.double("double", Double(bitPattern: v))
                    } else {
                        b.double("float", Double(Float(bitPattern: UInt32(truncatingIfNeeded: v))))
                    }
                }
            case 2:
                guard let v = r.lengthDelimited() else { return malformed(p, at, &b) }
                b.object(nil) { b in
                    b.uint("field", number)
                    b.string("wireType", "len")
                    b.uint("length", UInt64(v.count))
                    if let n = textLength(v, allowCutTail: false), n == v.count, printable(v) {
                        b.string("string", bytes: v)
                    } else if depth < maxDepth, isMessage(v) {
                        b.array("message") { b in self.write(v, depth: depth + 1, &b) }
                    } else {
                        b.bytes("bytes", v)
                    }
                }
            default:
                return malformed(p, at, &b)
            }
        }
    }

    private func malformed(_ p: UnsafeRawBufferPointer, _ at: Int, _ b: inout EntryBuilder) {
        b.object(nil) { b in
            b.string("error", "malformed field")
            b.bytes("rest", UnsafeRawBufferPointer(rebasing: p[at...]))
        }
    }

    /// Text without control characters other than tab, CR and LF.
    private func printable(_ v: UnsafeRawBufferPointer) -> Bool {
        for c in v where (c < 0x20 && c != 0x09 && c != 0x0A && c != 0x0D) || c == 0x7F { return false }
        return true
    }
}

/// Reads protobuf wire primitives.
struct WireReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ b: UnsafeRawBufferPointer) { bytes = b }

    var atEnd: Bool { offset >= bytes.count }

    mutating func varint() -> UInt64? {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while offset < bytes.count, shift < 64 {
            let b = bytes[offset]
            offset += 1
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
        }
        return nil
    }

    mutating func tag() -> (UInt64, UInt64)? {
        guard let t = varint() else { return nil }
        return (t >> 3, t & 7)
    }

    mutating func fixed(_ n: Int) -> UInt64? {
        guard bytes.count - offset >= n else { return nil }
        var v: UInt64 = 0
        for k in 0..<n { v |= UInt64(bytes[offset + k]) << UInt64(8 * k) }
        offset += n
        return v
    }

    mutating func lengthDelimited() -> UnsafeRawBufferPointer? {
        guard let l = varint(), l <= UInt64(bytes.count - offset) else { return nil }
        let s = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + Int(l))])
        offset += Int(l)
        return s
    }

    /// Skips a value of wire type `wire` (groups are not accepted).
    mutating func skip(_ wire: UInt64) -> Bool {
        switch wire {
        case 0: return varint() != nil
        case 1: return fixed(8) != nil
        case 5: return fixed(4) != nil
        case 2: return lengthDelimited() != nil
        default: return false
        }
    }
}
