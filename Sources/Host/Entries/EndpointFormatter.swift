import PluginAPI

/// Text forms of flow endpoints for entries and tables.
enum EndpointFormatter {
    /// Appends `{"ip":"…","port":N}`, with `"name"` and `"namespace"` when
    /// `names` knows the address (a pod).
    static func json(_ e: ks_endpoint, names: EndpointNames? = nil, into w: inout JSONWriter) {
        w.raw("{\"ip\":\"")
        address(e, into: &w)
        w.raw("\",\"port\":")
        w.uint(UInt64(e.port))
        if let known = names?.name(of: e) {
            w.raw(",\"name\":")
            w.string(known.name)
            w.raw(",\"namespace\":")
            w.string(known.namespace)
        }
        w.raw(UInt8(ascii: "}"))
    }

    /// The endpoint's address as an `IPAddress`.
    static func ipAddress(_ e: ks_endpoint) -> IPAddress {
        withUnsafeBytes(of: e.addr) { a in
            IPAddress(networkBytes: UnsafeRawBufferPointer(rebasing: a[0..<(e.family == 6 ? 16 : 4)]))!
        }
    }

    /// Appends the address text (dotted quad, or RFC 5952 IPv6) without quotes.
    /// IPv4, the common case, is written digit by digit without allocating.
    static func address(_ e: ks_endpoint, into w: inout JSONWriter) {
        if e.family == 6 {
            var text = ipAddress(e).description
            text.withUTF8 { w.raw(UnsafeRawBufferPointer($0)) }
            return
        }
        withUnsafeBytes(of: e.addr) { a in
            for i in 0..<4 {
                if i > 0 { w.raw(UInt8(ascii: ".")) }
                w.uint(UInt64(a[i]))
            }
        }
    }

    /// The address as a String.
    static func addressString(_ e: ks_endpoint) -> String { ipAddress(e).description }

    private static let digits: StaticString = "0123456789abcdef"

    /// Appends `v` as 16 lowercase hex digits (stream ids).
    static func hex(_ v: UInt64, into w: inout JSONWriter) {
        digits.withUTF8Buffer { d in
            for shift in stride(from: 60, through: 0, by: -4) {
                w.raw(d[Int(v >> UInt64(shift) & 0xF)])
            }
        }
    }
}
