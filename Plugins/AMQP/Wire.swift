// Reading AMQP 0-9-1 wire values: integers, strings, bits and field tables.

/// A bounds-checked reader over one frame payload. Every read returns nil past the end.
struct Cursor {
    let b: UnsafeRawBufferPointer
    var pos: Int
    let end: Int

    init(_ b: UnsafeRawBufferPointer) {
        self.b = b
        pos = 0
        end = b.count
    }

    var remaining: Int { end - pos }

    mutating func u8() -> UInt8? {
        guard pos < end else { return nil }
        defer { pos += 1 }
        return b[pos]
    }

    mutating func u16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { pos += 2 }
        return UInt16(b[pos]) << 8 | UInt16(b[pos + 1])
    }

    mutating func u32() -> UInt32? {
        guard remaining >= 4 else { return nil }
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(b[pos + i]) }
        pos += 4
        return v
    }

    mutating func u64() -> UInt64? {
        guard remaining >= 8 else { return nil }
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(b[pos + i]) }
        pos += 8
        return v
    }

    mutating func take(_ n: Int) -> [UInt8]? {
        guard n >= 0, remaining >= n else { return nil }
        defer { pos += n }
        return Array(b[pos..<(pos + n)])
    }

    mutating func shortstr() -> [UInt8]? {
        guard let n = u8() else { return nil }
        return take(Int(n))
    }

    mutating func longstr() -> [UInt8]? {
        guard let n = u32(), Int(n) <= remaining else { return nil }
        return take(Int(n))
    }
}

/// A value of a field table (RabbitMQ's interpretation of the 0-9-1 types).
indirect enum FieldValue {
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case decimal(scale: UInt8, value: Int32)
    case string([UInt8])
    case bytes([UInt8])
    case table([([UInt8], FieldValue)])
    case array([FieldValue])
    case timestamp(UInt64)
    case void
}

/// Most nested tables/arrays read; deeper input is malformed.
let maxFieldDepth = 8

/// Reads a field table (long size, then name/type/value triples). nil when malformed.
func readTable(_ c: inout Cursor, depth: Int = 0) -> [([UInt8], FieldValue)]? {
    guard depth < maxFieldDepth, let size = c.u32(), Int(size) <= c.remaining else { return nil }
    var inner = Cursor(UnsafeRawBufferPointer(rebasing: c.b[c.pos..<(c.pos + Int(size))]))
    c.pos += Int(size)
    var out: [([UInt8], FieldValue)] = []
    while inner.remaining > 0 {
        guard let name = inner.shortstr(), let v = readFieldValue(&inner, depth: depth) else { return nil }
        out.append((name, v))
    }
    return out
}

func readArray(_ c: inout Cursor, depth: Int) -> [FieldValue]? {
    guard depth < maxFieldDepth, let size = c.u32(), Int(size) <= c.remaining else { return nil }
    var inner = Cursor(UnsafeRawBufferPointer(rebasing: c.b[c.pos..<(c.pos + Int(size))]))
    c.pos += Int(size)
    var out: [FieldValue] = []
    while inner.remaining > 0 {
        guard let v = readFieldValue(&inner, depth: depth) else { return nil }
        out.append(v)
    }
    return out
}

func readFieldValue(_ c: inout Cursor, depth: Int) -> FieldValue? {
    guard let t = c.u8() else { return nil }
    switch t {
    case UInt8(ascii: "t"): return c.u8().map { .bool($0 != 0) }
    case UInt8(ascii: "b"): return c.u8().map { .int(Int64(Int8(bitPattern: $0))) }
    case UInt8(ascii: "B"): return c.u8().map { .uint(UInt64($0)) }
    case UInt8(ascii: "s"), UInt8(ascii: "U"): return c.u16().map { .int(Int64(Int16(bitPattern: $0))) }
    case UInt8(ascii: "u"): return c.u16().map { .uint(UInt64($0)) }
    case UInt8(ascii: "I"): return c.u32().map { .int(Int64(Int32(bitPattern: $0))) }
    case UInt8(ascii: "i"): return c.u32().map { .uint(UInt64($0)) }
    case UInt8(ascii: "l"): return c.u64().map { .int(Int64(bitPattern: $0)) }
    case UInt8(ascii: "L"): return c.u64().map { .uint($0) }
    case UInt8(ascii: "f"): return c.u32().map { .double(Double(Float(bitPattern: $0))) }
    case UInt8(ascii: "d"): return c.u64().map { .double(Double(bitPattern: $0)) }
    case UInt8(ascii: "D"):
        guard let s = c.u8(), let v = c.u32() else { return nil }
        return .decimal(scale: s, value: Int32(bitPattern: v))
    case UInt8(ascii: "S"): return c.longstr().map { .string($0) }
    case UInt8(ascii: "x"): return c.longstr().map { .bytes($0) }
    case UInt8(ascii: "A"): return readArray(&c, depth: depth + 1).map { .array($0) }
    case UInt8(ascii: "T"): return c.u64().map { .timestamp($0) }
    case UInt8(ascii: "F"): return readTable(&c, depth: depth + 1).map { .table($0) }
    case UInt8(ascii: "V"): return .void
    default: return nil
    }
}
