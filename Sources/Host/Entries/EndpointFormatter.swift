import PluginAPI

/// Text forms of flow endpoints for entries and tables.
enum EndpointFormatter {
    /// Appends `{"ip":"…","port":N}`. Names and namespaces are added by the cluster layer when known.
    static func json(_ e: ks_endpoint, into w: inout JSONWriter) {
        w.raw("{\"ip\":\"")
        address(e, into: &w)
        w.raw("\",\"port\":")
        w.uint(UInt64(e.port))
        w.raw(UInt8(ascii: "}"))
    }

    /// Appends the address text (dotted quad, or RFC 5952 IPv6) without quotes.
    static func address(_ e: ks_endpoint, into w: inout JSONWriter) {
        var copy = e
        withUnsafeBytes(of: &copy.addr) { a in
            if e.family == 6 {
                ipv6(a, into: &w)
            } else {
                for i in 0..<4 {
                    if i > 0 { w.raw(UInt8(ascii: ".")) }
                    w.uint(UInt64(a[i]))
                }
            }
        }
    }

    /// The address as a String.
    static func addressString(_ e: ks_endpoint) -> String {
        var w = JSONWriter(capacity: 48)
        address(e, into: &w)
        return String(decoding: w.bytes, as: UTF8.self)
    }

    /// RFC 5952: lowercase hex, leading zeros dropped, the longest run (>= 2) of zero groups as "::".
    private static func ipv6(_ a: UnsafeRawBufferPointer, into w: inout JSONWriter) {
        var groups = [UInt16](repeating: 0, count: 8)
        for i in 0..<8 { groups[i] = UInt16(a[2 * i]) << 8 | UInt16(a[2 * i + 1]) }
        var bestStart = -1
        var bestLength = 0
        var i = 0
        while i < 8 {
            if groups[i] == 0 {
                var j = i
                while j < 8 && groups[j] == 0 { j += 1 }
                if j - i > bestLength && j - i >= 2 {
                    bestStart = i
                    bestLength = j - i
                }
                i = j
            } else {
                i += 1
            }
        }
        // IPv4-mapped ::ffff:a.b.c.d keeps its dotted tail.
        if bestStart == 0 && bestLength == 5 && groups[5] == 0xFFFF {
            w.raw("::ffff:")
            for k in 12..<16 {
                if k > 12 { w.raw(UInt8(ascii: ".")) }
                w.uint(UInt64(a[k]))
            }
            return
        }
        i = 0
        while i < 8 {
            if i == bestStart {
                w.raw("::")
                i += bestLength
                continue
            }
            if i > 0 && i != bestStart + bestLength { w.raw(UInt8(ascii: ":")) }
            hexGroup(groups[i], into: &w)
            i += 1
        }
    }

    private static let digits: StaticString = "0123456789abcdef"

    private static func hexGroup(_ v: UInt16, into w: inout JSONWriter) {
        var started = false
        digits.withUTF8Buffer { d in
            for shift in stride(from: 12, through: 0, by: -4) {
                let nibble = Int(v >> UInt16(shift) & 0xF)
                if nibble != 0 || started || shift == 0 {
                    w.raw(d[nibble])
                    started = true
                }
            }
        }
    }

    /// Appends `v` as 16 lowercase hex digits (stream ids).
    static func hex(_ v: UInt64, into w: inout JSONWriter) {
        digits.withUTF8Buffer { d in
            for shift in stride(from: 60, through: 0, by: -4) {
                w.raw(d[Int(v >> UInt64(shift) & 0xF)])
            }
        }
    }
}
