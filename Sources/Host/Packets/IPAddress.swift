/// An IPv4 or IPv6 address, held inline as a 128-bit number plus a family
/// flag: no heap, cheap to copy, hash and compare.
///
/// IPv4 addresses live in the low 32 bits of `low` with `high == 0`; the family
/// flag keeps them distinct from the IPv6 address `::a.b.c.d`.
struct IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Sixteen bytes, the layout of C's `uint8_t addr[16]` (as in `ks_endpoint.addr`).
    typealias Bytes16 = (
        UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
        UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
    )

    /// Upper 64 bits of the address (IPv6), zero for IPv4.
    let high: UInt64
    /// Lower 64 bits of the address (IPv6), or the IPv4 address in the low 32 bits.
    let low: UInt64
    /// `true` for IPv6, `false` for IPv4.
    let isIPv6: Bool

    /// An IPv4 address from its numeric value (`a.b.c.d` is `0xaabbccdd`).
    @inline(__always)
    init(ipv4 value: UInt32) {
        high = 0
        low = UInt64(value)
        isIPv6 = false
    }

    /// The IPv4 address `a.b.c.d`.
    init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        self.init(ipv4: UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d))
    }

    /// An IPv6 address from its two 64-bit halves (numeric, most significant first).
    @inline(__always)
    init(ipv6High high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
        isIPv6 = true
    }

    /// An address from its network-order bytes: 4 bytes make an IPv4 address,
    /// 16 an IPv6 address; any other count gives `nil`.
    init?(networkBytes bytes: UnsafeRawBufferPointer) {
        switch bytes.count {
        case 4: self.init(ipv4: bytes.wireU32(at: 0))
        case 16: self.init(ipv6High: bytes.wireU64(at: 0), low: bytes.wireU64(at: 8))
        default: return nil
        }
    }

    /// Parses dotted-quad IPv4 text or RFC 4291 IPv6 text (with `::` and an
    /// optional embedded dotted quad). No zone ids, no prefixes.
    init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        if utf8.contains(UInt8(ascii: ":")) {
            guard let (h, l) = IPAddress.parseIPv6(utf8) else { return nil }
            self.init(ipv6High: h, low: l)
        } else {
            guard let v = IPAddress.parseDottedQuad(utf8[...]) else { return nil }
            self.init(ipv4: v)
        }
    }

    /// The IPv4 value, or `nil` for an IPv6 address.
    var ipv4Value: UInt32? { isIPv6 ? nil : UInt32(truncatingIfNeeded: low) }

    /// 4 or 6, as in `ks_endpoint.family`.
    var family: UInt8 { isIPv6 ? 6 : 4 }

    /// Number of meaningful bytes: 4 or 16.
    var byteCount: Int { isIPv6 ? 16 : 4 }

    /// The address in network order, laid out like `ks_endpoint.addr`: an IPv6
    /// address fills all 16 bytes; an IPv4 address fills the first 4 and the
    /// rest are zero. Assign it directly: `endpoint.addr = address.bytes16`.
    var bytes16: Bytes16 {
        var out: Bytes16 = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &out) { raw in
            if isIPv6 {
                raw.storeBytes(of: high.bigEndian, toByteOffset: 0, as: UInt64.self)
                raw.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
            } else {
                raw.storeBytes(of: UInt32(truncatingIfNeeded: low).bigEndian, toByteOffset: 0, as: UInt32.self)
            }
        }
        return out
    }

    /// Calls `body` with the address's network-order bytes (4 or 16 of them).
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let bytes = bytes16
        return try Swift.withUnsafeBytes(of: bytes) { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[0..<byteCount]))
        }
    }

    /// IPv4 sorts before IPv6; within a family, numeric order.
    static func < (a: IPAddress, b: IPAddress) -> Bool {
        if a.isIPv6 != b.isIPv6 { return !a.isIPv6 }
        if a.high != b.high { return a.high < b.high }
        return a.low < b.low
    }

    /// Dotted quad for IPv4; RFC 5952 text for IPv6 (lower-case hex, leading
    /// zeros dropped, the longest run of two or more zero groups as `::`, and
    /// IPv4-mapped addresses as `::ffff:a.b.c.d`).
    var description: String {
        if !isIPv6 { return IPAddress.dottedQuad(UInt32(truncatingIfNeeded: low)) }
        if high == 0 && low >> 32 == 0xFFFF {
            return "::ffff:" + IPAddress.dottedQuad(UInt32(truncatingIfNeeded: low))
        }
        // Longest run of zero groups (first one wins a tie), only if >= 2 long.
        var bestStart = -1, bestLength = 0, runStart = -1
        for i in 0..<9 {
            if i < 8 && group(i) == 0 {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength { bestStart = runStart; bestLength = i - runStart }
                runStart = -1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        var text = ""
        var i = 0
        while i < 8 {
            if i == bestStart {
                text += "::"
                i += bestLength
                continue
            }
            if !text.isEmpty && !text.hasSuffix(":") { text += ":" }
            text += String(group(i), radix: 16)
            i += 1
        }
        return text
    }

    /// The `index`th 16-bit group of an IPv6 address (0 is the most significant).
    private func group(_ index: Int) -> UInt16 {
        let word = index < 4 ? high : low
        return UInt16(truncatingIfNeeded: word >> UInt64(48 - 16 * (index & 3)))
    }

    private static func dottedQuad(_ v: UInt32) -> String {
        "\(v >> 24).\((v >> 16) & 0xFF).\((v >> 8) & 0xFF).\(v & 0xFF)"
    }

    private static func parseDottedQuad(_ text: ArraySlice<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        var parts = 0
        var current: UInt32 = 0
        var digits = 0
        for c in text {
            if c == UInt8(ascii: ".") {
                guard digits > 0, parts < 3 else { return nil }
                value = value << 8 | current
                parts += 1
                current = 0
                digits = 0
            } else if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                guard digits < 3 else { return nil }
                current = current * 10 + UInt32(c - UInt8(ascii: "0"))
                guard current <= 255 else { return nil }
                digits += 1
            } else {
                return nil
            }
        }
        guard digits > 0, parts == 3 else { return nil }
        return value << 8 | current
    }

    private static func parseIPv6(_ text: [UInt8]) -> (UInt64, UInt64)? {
        // Split into the part before "::" and the part after (if any).
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawDoubleColon = false
        var i = 0
        let n = text.count
        if n >= 2 && text[0] == UInt8(ascii: ":") && text[1] == UInt8(ascii: ":") {
            sawDoubleColon = true
            i = 2
        } else if n >= 1 && text[0] == UInt8(ascii: ":") {
            return nil
        }
        while i < n {
            // Parse one group, or an embedded dotted quad at the end.
            var j = i
            while j < n && text[j] != UInt8(ascii: ":") { j += 1 }
            let field = text[i..<j]
            guard !field.isEmpty else { return nil }
            if field.contains(UInt8(ascii: ".")) {
                guard j == n, let v4 = parseDottedQuad(field) else { return nil }
                let hi = UInt16(truncatingIfNeeded: v4 >> 16), lo = UInt16(truncatingIfNeeded: v4)
                if sawDoubleColon { tail += [hi, lo] } else { head += [hi, lo] }
            } else {
                guard field.count <= 4 else { return nil }
                var v: UInt16 = 0
                for c in field {
                    let d: UInt8
                    switch c {
                    case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
                    case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
                    case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
                    default: return nil
                    }
                    v = v << 4 | UInt16(d)
                }
                if sawDoubleColon { tail.append(v) } else { head.append(v) }
            }
            i = j
            if i < n {
                // At a colon: "::" starts the tail, ":" separates groups.
                if i + 1 < n && text[i + 1] == UInt8(ascii: ":") {
                    guard !sawDoubleColon else { return nil }
                    sawDoubleColon = true
                    i += 2
                } else {
                    i += 1
                    guard i < n else { return nil }  // trailing single colon
                }
            }
        }
        let total = head.count + tail.count
        if sawDoubleColon {
            guard total <= 7 else { return nil }
        } else {
            guard total == 8 else { return nil }
        }
        var groups = head + [UInt16](repeating: 0, count: 8 - total) + tail
        if !sawDoubleColon { groups = head }
        var h: UInt64 = 0, l: UInt64 = 0
        for k in 0..<4 { h = h << 16 | UInt64(groups[k]) }
        for k in 4..<8 { l = l << 16 | UInt64(groups[k]) }
        return (h, l)
    }
}
