// Writing a message's flat RESP values into an entry, straight from their bytes.

import PluginKit

extension RESPValues {
    /// The text of node `i` as a String (rare paths: pub/sub kinds and channels).
    func string(_ i: Int) -> String { withText(i) { String(decoding: $0, as: UTF8.self) } }

    /// The text a scalar stands for in a flattened map: a verbatim string's text
    /// without its format; nil for aggregates and null.
    func withDisplayText<R>(_ i: Int, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        guard nodes[i].hasText else { return body(nil) }
        return withText(i) { t in
            if nodes[i].type == UInt8(ascii: "="), let (_, text) = verbatimParts(t) { return body(text) }
            return body(t)
        }
    }

    /// The `response` object: type, attributes of the top-level value, push fields, value.
    func writeResponse(_ e: inout EntryBuilder, push: (kind: String, channel: String?, pattern: String?)? = nil) {
        guard !nodes.isEmpty else { return }
        e.object("response") { r in
            let v = bare(0)
            nodes[v].typeName.withUTF8Buffer { r.string("type", bytes: UnsafeRawBufferPointer($0)) }
            if nodes[0].type == UInt8(ascii: "|") { writePairs(&r, "attributes", 0, depth: 0) }
            if let push {
                r.string("kind", push.kind)
                if let c = push.channel { r.string("channel", c) }
                if let p = push.pattern { r.string("pattern", p) }
            }
            writeValue(&r, "value", v, depth: 0)
        }
    }

    /// A map's (or attribute's) pairs: a JSON object when every key and value is
    /// text (not a number), an array of {"key", "value"} objects otherwise.
    func writePairs(_ e: inout EntryBuilder, _ key: StaticString?, _ i: Int, depth: Int) {
        var flat = true
        var it = children(i)
        while let k = it.next() {
            guard let v = it.next() else { break }
            let kb = nodes[bare(k)], vb = nodes[bare(v)]
            guard kb.hasText, vb.hasText, !vb.isNumberLike, kb.length > 0, kb.length <= 1024 else {
                flat = false
                break
            }
        }
        if flat {
            e.object(key) { o in
                var it = children(i)
                while let k = it.next() {
                    guard let v = it.next() else { break }
                    withDisplayText(bare(k)) { kt in
                        withDisplayText(bare(v)) { vt in
                            if let kt, let vt { o.string(rawKey: kt, bytes: vt) }
                        }
                    }
                }
            }
        } else {
            e.array(key) { a in
                var it = children(i)
                while let k = it.next() {
                    guard let v = it.next() else { break }
                    a.object(nil) { o in
                        writeValue(&o, "key", k, depth: depth + 2)
                        writeValue(&o, "value", v, depth: depth + 2)
                    }
                }
            }
        }
    }

    /// One value (and its subtree) under `key`.
    func writeValue(_ e: inout EntryBuilder, _ key: StaticString?, _ i: Int, depth: Int) {
        // The host nests at most 64 levels; the entry and response objects take 2.
        guard depth < 56 else {
            e.string(key, "[nested too deep]")
            return
        }
        let n = nodes[i]
        switch n.type {
        case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "$"), UInt8(ascii: "("), UInt8(ascii: "!"):
            withText(i) { e.string(key, bytes: $0) }
        case UInt8(ascii: ":"): e.int(key, n.integer)
        case UInt8(ascii: "#"): e.bool(key, n.integer != 0)
        case UInt8(ascii: ","):
            withText(i) { t in
                if let d = Double(String(decoding: t, as: UTF8.self)), d.isFinite { e.double(key, d) } else { e.string(key, bytes: t) }
            }
        case UInt8(ascii: "="):
            withText(i) { t in
                e.object(key) { o in
                    if let (format, text) = verbatimParts(t) {
                        o.string("format", bytes: format)
                        o.string("text", bytes: text)
                    } else {
                        o.string("format", "")
                        o.string("text", bytes: t)
                    }
                }
            }
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
            e.array(key) { a in for c in children(i) { writeValue(&a, nil, c, depth: depth + 1) } }
        case UInt8(ascii: "%"):
            writePairs(&e, key, i, depth: depth + 1)
        case UInt8(ascii: "|"):
            e.object(key) { o in
                writePairs(&o, "attributes", i, depth: depth + 1)
                let value = attributeEnd(i)
                if value < nodes.count { writeValue(&o, "value", value, depth: depth + 1) } else { o.null("value") }
            }
        default:
            e.null(key)
        }
    }
}

/// A verbatim string's `fmt:text` split in two; nil when it has no 3-byte format.
func verbatimParts(_ t: UnsafeRawBufferPointer) -> (UnsafeRawBufferPointer, UnsafeRawBufferPointer)? {
    guard t.count >= 4, t[3] == UInt8(ascii: ":") else { return nil }
    return (UnsafeRawBufferPointer(rebasing: t[0..<3]), UnsafeRawBufferPointer(rebasing: t[4...]))
}
