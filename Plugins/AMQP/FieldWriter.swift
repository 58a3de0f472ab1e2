// Field tables into entries with their types kept: integers and timestamps as
// JSON numbers, booleans, decimals as numbers, strings, byte arrays as base64,
// nested tables as objects, arrays as arrays, void as null.

import PluginKit

/// Writes a field table's pairs into the open object. Names keep their bytes;
/// an empty name is shown as "(empty)" and a repeated name keeps its first value
/// (a JSON object cannot hold both).
func writeTable(_ table: [([UInt8], FieldValue)], _ b: inout EntryBuilder) {
    // Small tables (the usual) are checked pairwise; large hostile ones through a set.
    var seen: Set<[UInt8]>? = table.count > 32 ? [] : nil
    for (i, (name, value)) in table.enumerated() {
        if seen != nil {
            if !seen!.insert(name).inserted { continue }
        } else if table[..<i].contains(where: { $0.0 == name }) {
            continue
        }
        if name.isEmpty {
            emptyName.withUnsafeBytes { writeField(value, key: $0, &b) }
        } else {
            name.withUnsafeBytes { writeField(value, key: $0, &b) }
        }
    }
}

private let emptyName = Array("(empty)".utf8)

/// Inside an array the key is ignored: the empty key stands for "no key".
private var noKey: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: nil, count: 0) }

/// One field value under `key` (or as an array element when `key` is empty).
func writeField(_ v: FieldValue, key: UnsafeRawBufferPointer, _ b: inout EntryBuilder) {
    switch v {
    case .bool(let x): b.bool(rawKey: key, x)
    case .int(let i): b.int(rawKey: key, i)
    case .uint(let u): b.uint(rawKey: key, u)
    case .timestamp(let t): b.uint(rawKey: key, t)
    case .double(let d): b.double(rawKey: key, d)
    case .decimal(let scale, let value): b.double(rawKey: key, decimalValue(scale: scale, value: value))
    case .string(let s): s.withUnsafeBytes { b.string(rawKey: key, bytes: $0) }
    case .bytes(let s): s.withUnsafeBytes { b.bytes(rawKey: key, $0) }
    case .void: b.null(rawKey: key)
    case .array(let items): b.array(rawKey: key) { a in for x in items { writeField(x, key: noKey, &a) } }
    case .table(let t): b.object(rawKey: key) { o in writeTable(t, &o) }
    }
}

/// An AMQP decimal (value × 10^-scale) as a double: 12345 with scale 2 is 123.45.
func decimalValue(scale: UInt8, value: Int32) -> Double {
    // 10^n is exact in a double up to n = 22: one correctly rounded division.
    var power = 1.0
    for _ in 0..<min(scale, 22) { power *= 10 }
    var d = Double(value) / power
    if scale > 22 { for _ in 22..<scale { d /= 10 } }
    return d
}
