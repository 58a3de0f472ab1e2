// HPACK header decompression (RFC 7541): the static table, one dynamic table
// per direction with size updates, integer and string primitives, and the
// header-block decoder writing into a reusable header list.
//
// A capture that starts mid-connection has missed the dynamic-table insertions
// made before it: such references are reported as unknown (never guessed),
// and literals inserted while the table was unknown keep their place so later
// indices still line up.

/// The RFC 7541 Appendix A static table (index 1...61).
let hpackStaticTable: [(name: [UInt8], value: [UInt8])] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
].map { (Array($0.0.utf8), Array($0.1.utf8)) }

/// One decoded header field: spans into HeaderList/bytes.
struct HeaderField {
    var nameStart: Int32
    var nameLength: Int32
    var valueStart: Int32
    var valueLength: Int32
}

/// A decoded header block (or trailer block): names and values in one byte
/// buffer, reused from exchange to exchange.
final class HeaderList {
    var bytes: [UInt8] = []
    var fields: [HeaderField] = []
    /// Some fields were not kept (list size or count cap).
    var truncated = false
    /// The block was seen (even if empty).
    var present = false
    /// Bytes of the block on the wire (frame payloads without padding/priority).
    var wireSize = 0

    func reset() {
        bytes.removeAll(keepingCapacity: true)
        fields.removeAll(keepingCapacity: true)
        truncated = false
        present = false
        wireSize = 0
    }

    /// Calls `body` with the name and value bytes of field `i`.
    @inline(__always)
    func withField<R>(_ i: Int, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> R) -> R {
        let f = fields[i]
        return bytes.withUnsafeBytes { b in
            body(
                UnsafeRawBufferPointer(rebasing: b[Int(f.nameStart)..<Int(f.nameStart + f.nameLength)]),
                UnsafeRawBufferPointer(rebasing: b[Int(f.valueStart)..<Int(f.valueStart + f.valueLength)]))
        }
    }

    /// The index of the first field named `name` (names are lower case in HTTP/2;
    /// compared ASCII case-insensitively anyway).
    func index(of name: StaticString) -> Int? {
        let n = UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        for i in fields.indices where withField(i, { f, _ in equalsLowercase(f, n) }) { return i }
        return nil
    }

    /// The value of the first field named `name` as a String (for short values).
    func value(_ name: StaticString) -> String? {
        guard let i = index(of: name) else { return nil }
        return withField(i) { _, v in String(decoding: v, as: UTF8.self) }
    }

    /// Appends a field; false when a cap left it out.
    func append(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, limits: HTTP2Limits) -> Bool {
        guard fields.count < limits.maxHeaderFields,
            bytes.count + name.count + value.count <= limits.maxHeaderListBytes
        else {
            truncated = true
            return false
        }
        let ns = Int32(bytes.count)
        bytes.append(contentsOf: name)
        let vs = Int32(bytes.count)
        bytes.append(contentsOf: value)
        fields.append(HeaderField(nameStart: ns, nameLength: Int32(name.count), valueStart: vs, valueLength: Int32(value.count)))
        return true
    }

    func copy(from other: HeaderList) {
        bytes.removeAll(keepingCapacity: true)
        bytes.append(contentsOf: other.bytes)
        fields.removeAll(keepingCapacity: true)
        fields.append(contentsOf: other.fields)
        truncated = other.truncated
        present = other.present
        wireSize = other.wireSize
    }
}

/// ASCII case-insensitive equality of `a` with the lower-case `lower`.
@inline(__always)
func equalsLowercase(_ a: UnsafeRawBufferPointer, _ lower: UnsafeRawBufferPointer) -> Bool {
    guard a.count == lower.count else { return false }
    for i in 0..<a.count {
        var c = a[i]
        if c >= 0x41 && c <= 0x5A { c |= 0x20 }
        if c != lower[i] { return false }
    }
    return true
}

/// The dynamic table of one direction (RFC 7541 section 2.3.2, 4).
struct DynamicTable {
    struct Entry {
        var name: [UInt8]
        var value: [UInt8]
        /// Inserted while the table content was unknown (the name or value could not be decoded).
        var unknown: Bool
        var size: Int { name.count + value.count + 32 }
    }

    /// Oldest first; `start` entries at the front are evicted (compacted lazily).
    private var entries: [Entry] = []
    private var start = 0
    private(set) var size = 0
    /// The size in force (changed by size updates).
    private(set) var maxSize = 4096
    /// The bound a size update may reach (SETTINGS_HEADER_TABLE_SIZE of the decoder side).
    var settingsBound = 4096

    var count: Int { entries.count - start }

    /// Entry for dynamic index `i` (1 = newest).
    func entry(_ i: Int) -> Entry? {
        guard i >= 1, i <= count else { return nil }
        return entries[entries.count - i]
    }

    /// Keeps every entry's place and size but forgets its content.
    mutating func forgetContents() {
        for i in start..<entries.count { entries[i].unknown = true }
    }

    mutating func setMaxSize(_ n: Int) {
        maxSize = n
        evict(toFit: 0)
    }

    mutating func insert(_ e: Entry) {
        let s = e.size
        if s > maxSize {
            // RFC 7541 4.4: an entry larger than the table empties it.
            entries.removeAll(keepingCapacity: true)
            start = 0
            size = 0
            return
        }
        evict(toFit: s)
        entries.append(e)
        size += s
    }

    private mutating func evict(toFit extra: Int) {
        while size + extra > maxSize, start < entries.count {
            size -= entries[start].size
            start += 1
        }
        if start > 64 && start * 2 > entries.count {
            entries.removeFirst(start)
            start = 0
        }
    }
}

/// Decodes header blocks of one direction into a HeaderList.
struct HPACKDecoder {
    var table = DynamicTable()
    /// The table's earlier content is unknown (the capture started mid-connection,
    /// or an earlier block could not be decoded).
    var tableUnknown = false
    private var name: [UInt8] = []
    private var value: [UInt8] = []

    /// Problems found in the last block, for the entry (empty when fine).
    var errors: [String] = []

    init() {
        name.reserveCapacity(256)
        value.reserveCapacity(1024)
    }

    /// Bytes of this direction were lost: what the table holds can no longer be trusted.
    mutating func forgetTable() {
        table.forgetContents()
        tableUnknown = true
    }

    /// Decodes one complete header block into `out`. Returns false when the block
    /// is malformed (the rest of the block is lost and the table may be out of step).
    mutating func decode(_ block: UnsafeRawBufferPointer, into out: HeaderList, limits: HTTP2Limits) -> Bool {
        errors.removeAll(keepingCapacity: true)
        out.present = true
        var r = ByteReader(block)
        while !r.atEnd {
            let b = r.peek
            if b & 0x80 != 0 {
                guard let index = r.integer(prefixBits: 7), index > 0 else { return fail("hpack: bad indexed field") }
                switch lookup(index) {
                case .found(let n, let v):
                    n.withUnsafeBytes { n in v.withUnsafeBytes { v in _ = out.append(name: n, value: v, limits: limits) } }
                case .unknown:
                    note("hpack: dynamic-table index \(index) unknown (its insertion was not captured)")
                case .outOfRange:
                    return fail("hpack: index \(index) beyond the tables")
                }
                continue
            }
            if b & 0xE0 == 0x20 {
                guard let size = r.integer(prefixBits: 5) else { return fail("hpack: bad table size update") }
                if size > table.settingsBound { note("hpack: table size update \(size) above the SETTINGS bound") }
                if size > limits.maxHeaderTableSize {
                    note("hpack: table size update \(size) above our cap; table content is no longer known")
                    tableUnknown = true
                }
                table.setMaxSize(min(size, limits.maxHeaderTableSize))
                continue
            }
            let indexing = b & 0xC0 == 0x40
            guard let nameIndex = r.integer(prefixBits: indexing ? 6 : 4) else { return fail("hpack: bad literal") }
            var nameKnown = true
            name.removeAll(keepingCapacity: true)
            if nameIndex == 0 {
                switch r.string(into: &name, cap: limits.maxHeaderListBytes) {
                case .ok: break
                case .huffmanError: nameKnown = false; note("hpack: bad Huffman code in a name")
                case .malformed: return fail("hpack: literal name runs past the block")
                }
            } else {
                switch lookup(nameIndex) {
                case .found(let n, _): name.append(contentsOf: n)
                case .unknown:
                    nameKnown = false
                    note("hpack: name index \(nameIndex) unknown (its insertion was not captured)")
                case .outOfRange: return fail("hpack: name index \(nameIndex) beyond the tables")
                }
            }
            value.removeAll(keepingCapacity: true)
            var valueKnown = true
            switch r.string(into: &value, cap: limits.maxHeaderListBytes) {
            case .ok: break
            case .huffmanError: valueKnown = false; note("hpack: bad Huffman code in a value")
            case .malformed: return fail("hpack: literal value runs past the block")
            }
            if indexing {
                table.insert(DynamicTable.Entry(name: name, value: value, unknown: !(nameKnown && valueKnown)))
            }
            if nameKnown && valueKnown {
                name.withUnsafeBytes { n in value.withUnsafeBytes { v in _ = out.append(name: n, value: v, limits: limits) } }
            }
        }
        return true
    }

    enum Lookup {
        case found([UInt8], [UInt8])
        case unknown
        case outOfRange
    }

    private func lookup(_ index: Int) -> Lookup {
        if index <= hpackStaticTable.count {
            let e = hpackStaticTable[index - 1]
            return .found(e.name, e.value)
        }
        let d = index - hpackStaticTable.count
        if let e = table.entry(d) { return e.unknown ? .unknown : .found(e.name, e.value) }
        return tableUnknown ? .unknown : .outOfRange
    }

    private mutating func note(_ s: String) {
        if errors.count < 16 { errors.append(s) }
    }

    private mutating func fail(_ s: String) -> Bool {
        note(s)
        // What followed in the block is lost: later references may not match.
        tableUnknown = true
        return false
    }
}

/// Reads HPACK primitives from a block.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ b: UnsafeRawBufferPointer) { bytes = b }

    var atEnd: Bool { offset >= bytes.count }
    var peek: UInt8 { bytes[offset] }

    /// An N-bit prefix integer (RFC 7541 5.1), at most 2^28; nil when malformed.
    mutating func integer(prefixBits n: Int) -> Int? {
        guard offset < bytes.count else { return nil }
        let mask = (1 << n) - 1
        var v = Int(bytes[offset]) & mask
        offset += 1
        if v < mask { return v }
        var shift = 0
        while offset < bytes.count {
            let b = Int(bytes[offset])
            offset += 1
            v += (b & 0x7F) << shift
            if v > 1 << 28 { return nil }
            if b & 0x80 == 0 { return v }
            shift += 7
            if shift > 28 { return nil }
        }
        return nil
    }

    enum StringResult { case ok, huffmanError, malformed }

    /// A string literal (RFC 7541 5.2) appended to `out` (at most `cap` bytes kept).
    mutating func string(into out: inout [UInt8], cap: Int) -> StringResult {
        guard offset < bytes.count else { return .malformed }
        let huffman = bytes[offset] & 0x80 != 0
        guard let length = integer(prefixBits: 7), length <= bytes.count - offset else { return .malformed }
        let s = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
        offset += length
        if huffman {
            var cut = false
            return HuffmanTable.shared.decode(s, into: &out, cap: cap, cut: &cut) ? .ok : .huffmanError
        }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: s.prefix(cap)))
        return .ok
    }
}
