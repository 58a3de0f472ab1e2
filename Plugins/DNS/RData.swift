// Typed RDATA of the common record types, and the names of types, classes,
// rcodes, opcodes and EDNS options.

/// Decodes the RDATA in `start..<end`. Names inside may be compressed (they
/// may point anywhere before them in the message) but their own bytes must
/// lie inside the RDATA.
func parseRData(_ m: UnsafeRawBufferPointer, type: UInt16, start: Int, end: Int) throws(DNSError) -> [Field] {
    let n = end - start
    func need(_ count: Int) throws(DNSError) {
        guard n == count else { throw DNSError("rdata of \(n) bytes, expected \(count)") }
    }
    func name(_ at: Int) throws(DNSError) -> (String, Int) {
        guard at < end else { throw DNSError("rdata ends before a name") }
        let (s, next) = try readName(m, at)
        guard next <= end else { throw DNSError("name runs past the rdata") }
        return (s, next)
    }
    switch type {
    case 1:  // A
        try need(4)
        return [Field("address", .string(ipv4(m, start)))]
    case 28:  // AAAA
        try need(16)
        return [Field("address", .string(ipv6(m, start)))]
    case 2, 5, 12, 39, 3, 4, 7, 8, 9:  // NS, CNAME, PTR, DNAME, MD, MF, MB, MG, MR
        let (target, next) = try name(start)
        guard next == end else { throw DNSError("\(n - (next - start)) bytes after the name") }
        return [Field("target", .string(target))]
    case 15:  // MX
        guard n >= 3 else { throw DNSError("MX rdata of \(n) bytes") }
        let (exchange, next) = try name(start + 2)
        guard next == end else { throw DNSError("bytes after the MX exchange") }
        return [Field("preference", .uint(UInt64(be16(m, start)))), Field("exchange", .string(exchange))]
    case 16, 99:  // TXT, SPF
        var strings: [String] = []
        var p = start
        while p < end {
            let len = Int(m[p])
            guard p + 1 + len <= end else { throw DNSError("character-string runs past the rdata") }
            strings.append(characterString(m, p + 1, p + 1 + len))
            p += 1 + len
        }
        return [Field("strings", .strings(strings))]
    case 6:  // SOA
        let (mname, a) = try name(start)
        let (rname, b) = try name(a)
        guard b + 20 == end else { throw DNSError("SOA rdata has \(end - b) bytes after the names, expected 20") }
        return [
            Field("mname", .string(mname)), Field("rname", .string(rname)),
            Field("serial", .uint(UInt64(be32(m, b)))), Field("refresh", .uint(UInt64(be32(m, b + 4)))),
            Field("retry", .uint(UInt64(be32(m, b + 8)))), Field("expire", .uint(UInt64(be32(m, b + 12)))),
            Field("minimum", .uint(UInt64(be32(m, b + 16)))),
        ]
    case 33:  // SRV
        guard n >= 7 else { throw DNSError("SRV rdata of \(n) bytes") }
        let (target, next) = try name(start + 6)
        guard next == end else { throw DNSError("bytes after the SRV target") }
        return [
            Field("priority", .uint(UInt64(be16(m, start)))), Field("weight", .uint(UInt64(be16(m, start + 2)))),
            Field("port", .uint(UInt64(be16(m, start + 4)))), Field("target", .string(target)),
        ]
    case 257:  // CAA
        guard n >= 2 else { throw DNSError("CAA rdata of \(n) bytes") }
        let flags = m[start]
        let tagLength = Int(m[start + 1])
        guard start + 2 + tagLength <= end else { throw DNSError("CAA tag runs past the rdata") }
        return [
            Field("flags", .uint(UInt64(flags))), Field("critical", .bool(flags & 0x80 != 0)),
            Field("tag", .string(characterString(m, start + 2, start + 2 + tagLength))),
            Field("value", .string(characterString(m, start + 2 + tagLength, end))),
        ]
    case 13:  // HINFO
        var strings: [String] = []
        var p = start
        while p < end {
            let len = Int(m[p])
            guard p + 1 + len <= end else { throw DNSError("character-string runs past the rdata") }
            strings.append(characterString(m, p + 1, p + 1 + len))
            p += 1 + len
        }
        guard strings.count == 2 else { throw DNSError("HINFO needs 2 strings, has \(strings.count)") }
        return [Field("cpu", .string(strings[0])), Field("os", .string(strings[1]))]
    case 64, 65:  // SVCB, HTTPS
        return try parseSVCB(m, start: start, end: end, name: name)
    case 41:  // OPT
        return try parseOptions(m, start: start, end: end)
    case 43, 59:  // DS, CDS
        guard n >= 4 else { throw DNSError("DS rdata of \(n) bytes") }
        return [
            Field("keyTag", .uint(UInt64(be16(m, start)))), Field("algorithm", .uint(UInt64(m[start + 2]))),
            Field("digestType", .uint(UInt64(m[start + 3]))), Field("digest", .string(hex(m, start + 4, end))),
        ]
    default:
        return [Field("rdata", .string(hex(m, start, end)))]
    }
}

private func parseSVCB(
    _ m: UnsafeRawBufferPointer, start: Int, end: Int, name: (Int) throws(DNSError) -> (String, Int)
) throws(DNSError) -> [Field] {
    guard end - start >= 3 else { throw DNSError("SVCB rdata of \(end - start) bytes") }
    let priority = be16(m, start)
    let (target, after) = try name(start + 2)
    var params: [[Field]] = []
    var p = after
    while p < end {
        guard p + 4 <= end else { throw DNSError("SvcParam header cut short") }
        let key = be16(m, p)
        let len = Int(be16(m, p + 2))
        let v = p + 4
        guard v + len <= end else { throw DNSError("SvcParam \(key) value runs past the rdata") }
        var value = ""
        switch key {
        case 0:  // mandatory
            guard len % 2 == 0 else { throw DNSError("mandatory SvcParam of odd length") }
            value = stride(from: v, to: v + len, by: 2).map { svcKeyName(be16(m, $0)) }.joined(separator: ",")
        case 1:  // alpn
            var ids: [String] = []
            var q = v
            while q < v + len {
                let l = Int(m[q])
                guard q + 1 + l <= v + len else { throw DNSError("alpn id runs past its SvcParam") }
                ids.append(characterString(m, q + 1, q + 1 + l))
                q += 1 + l
            }
            value = ids.joined(separator: ",")
        case 3:  // port
            guard len == 2 else { throw DNSError("port SvcParam of \(len) bytes") }
            value = String(be16(m, v))
        case 4:  // ipv4hint
            guard len % 4 == 0 else { throw DNSError("ipv4hint of \(len) bytes") }
            value = stride(from: v, to: v + len, by: 4).map { ipv4(m, $0) }.joined(separator: ",")
        case 6:  // ipv6hint
            guard len % 16 == 0 else { throw DNSError("ipv6hint of \(len) bytes") }
            value = stride(from: v, to: v + len, by: 16).map { ipv6(m, $0) }.joined(separator: ",")
        case 7:  // dohpath
            value = characterString(m, v, v + len)
        default:  // no-default-alpn (empty), ech, unknown: hex
            value = hex(m, v, v + len)
        }
        params.append([
            Field("key", .string(svcKeyName(key))), Field("code", .uint(UInt64(key))), Field("value", .string(value)),
        ])
        p = v + len
    }
    return [Field("priority", .uint(UInt64(priority))), Field("target", .string(target)), Field("params", .objects(params))]
}

private func svcKeyName(_ k: UInt16) -> String {
    switch k {
    case 0: return "mandatory"
    case 1: return "alpn"
    case 2: return "no-default-alpn"
    case 3: return "port"
    case 4: return "ipv4hint"
    case 5: return "ech"
    case 6: return "ipv6hint"
    case 7: return "dohpath"
    case 8: return "ohttp"
    default: return "key\(k)"
    }
}

/// EDNS(0) options of an OPT record (RFC 6891), with the common ones decoded.
private func parseOptions(_ m: UnsafeRawBufferPointer, start: Int, end: Int) throws(DNSError) -> [Field] {
    var options: [[Field]] = []
    var p = start
    while p < end {
        guard p + 4 <= end else { throw DNSError("EDNS option header cut short") }
        let code = be16(m, p)
        let len = Int(be16(m, p + 2))
        let v = p + 4
        guard v + len <= end else { throw DNSError("EDNS option \(code) runs past the rdata") }
        var o: [Field] = [
            Field("code", .uint(UInt64(code))), Field("name", .string(ednsOptionName(code))),
            Field("data", .string(hex(m, v, v + len))),
        ]
        switch code {
        case 3 where len > 0:  // NSID
            o.append(Field("text", .string(characterString(m, v, v + len))))
        case 8 where len >= 4:  // Client subnet
            let family = be16(m, v)
            o.append(Field("family", .uint(UInt64(family))))
            o.append(Field("sourcePrefixLength", .uint(UInt64(m[v + 2]))))
            o.append(Field("scopePrefixLength", .uint(UInt64(m[v + 3]))))
            let addressBytes = len - 4
            if family == 1, addressBytes <= 4 {
                var a = [UInt8](repeating: 0, count: 4)
                for i in 0..<addressBytes { a[i] = m[v + 4 + i] }
                o.append(Field("address", .string(a.withUnsafeBytes { ipv4($0, 0) })))
            } else if family == 2, addressBytes <= 16 {
                var a = [UInt8](repeating: 0, count: 16)
                for i in 0..<addressBytes { a[i] = m[v + 4 + i] }
                o.append(Field("address", .string(a.withUnsafeBytes { ipv6($0, 0) })))
            }
        case 10 where len >= 8:  // COOKIE
            o.append(Field("clientCookie", .string(hex(m, v, v + 8))))
            if len > 8 { o.append(Field("serverCookie", .string(hex(m, v + 8, v + len)))) }
        case 11 where len == 2:  // edns-tcp-keepalive
            o.append(Field("timeout", .uint(UInt64(be16(m, v)))))
        case 15 where len >= 2:  // Extended DNS Error
            o.append(Field("infoCode", .uint(UInt64(be16(m, v)))))
            if len > 2 { o.append(Field("extraText", .string(characterString(m, v + 2, v + len)))) }
        default:
            break
        }
        options.append(o)
        p = v + len
    }
    return [Field("options", .objects(options))]
}

func ednsOptionName(_ code: UInt16) -> String {
    switch code {
    case 1: return "LLQ"
    case 2: return "UL"
    case 3: return "NSID"
    case 5: return "DAU"
    case 6: return "DHU"
    case 7: return "N3U"
    case 8: return "CLIENT-SUBNET"
    case 9: return "EXPIRE"
    case 10: return "COOKIE"
    case 11: return "TCP-KEEPALIVE"
    case 12: return "PADDING"
    case 13: return "CHAIN"
    case 14: return "KEY-TAG"
    case 15: return "EDE"
    case 16: return "CLIENT-TAG"
    case 17: return "SERVER-TAG"
    case 18: return "REPORT-CHANNEL"
    case 19: return "ZONEVERSION"
    default: return "OPTION\(code)"
    }
}

func typeName(_ t: UInt16) -> String {
    switch t {
    case 1: return "A"
    case 2: return "NS"
    case 3: return "MD"
    case 4: return "MF"
    case 5: return "CNAME"
    case 6: return "SOA"
    case 7: return "MB"
    case 8: return "MG"
    case 9: return "MR"
    case 10: return "NULL"
    case 11: return "WKS"
    case 12: return "PTR"
    case 13: return "HINFO"
    case 14: return "MINFO"
    case 15: return "MX"
    case 16: return "TXT"
    case 17: return "RP"
    case 18: return "AFSDB"
    case 24: return "SIG"
    case 25: return "KEY"
    case 28: return "AAAA"
    case 29: return "LOC"
    case 33: return "SRV"
    case 35: return "NAPTR"
    case 36: return "KX"
    case 37: return "CERT"
    case 39: return "DNAME"
    case 41: return "OPT"
    case 42: return "APL"
    case 43: return "DS"
    case 44: return "SSHFP"
    case 45: return "IPSECKEY"
    case 46: return "RRSIG"
    case 47: return "NSEC"
    case 48: return "DNSKEY"
    case 49: return "DHCID"
    case 50: return "NSEC3"
    case 51: return "NSEC3PARAM"
    case 52: return "TLSA"
    case 53: return "SMIMEA"
    case 55: return "HIP"
    case 59: return "CDS"
    case 60: return "CDNSKEY"
    case 61: return "OPENPGPKEY"
    case 62: return "CSYNC"
    case 63: return "ZONEMD"
    case 64: return "SVCB"
    case 65: return "HTTPS"
    case 99: return "SPF"
    case 249: return "TKEY"
    case 250: return "TSIG"
    case 251: return "IXFR"
    case 252: return "AXFR"
    case 253: return "MAILB"
    case 254: return "MAILA"
    case 255: return "ANY"
    case 256: return "URI"
    case 257: return "CAA"
    case 32769: return "DLV"
    default: return "TYPE\(t)"
    }
}

/// The class name; `qu` is the top bit (mDNS unicast-response / cache-flush).
func className(_ c: UInt16, mdnsBit: Bool) -> String {
    let v = mdnsBit ? c & 0x7FFF : c
    switch v {
    case 1: return "IN"
    case 2: return "CS"
    case 3: return "CH"
    case 4: return "HS"
    case 254: return "NONE"
    case 255: return "ANY"
    default: return "CLASS\(c)"
    }
}

func rcodeName(_ r: Int) -> String {
    switch r {
    case 0: return "NOERROR"
    case 1: return "FORMERR"
    case 2: return "SERVFAIL"
    case 3: return "NXDOMAIN"
    case 4: return "NOTIMP"
    case 5: return "REFUSED"
    case 6: return "YXDOMAIN"
    case 7: return "YXRRSET"
    case 8: return "NXRRSET"
    case 9: return "NOTAUTH"
    case 10: return "NOTZONE"
    case 11: return "DSOTYPENI"
    case 16: return "BADVERS"
    case 17: return "BADKEY"
    case 18: return "BADTIME"
    case 19: return "BADMODE"
    case 20: return "BADNAME"
    case 21: return "BADALG"
    case 22: return "BADTRUNC"
    case 23: return "BADCOOKIE"
    default: return "RCODE\(r)"
    }
}

func opcodeName(_ o: Int) -> String {
    switch o {
    case 0: return "QUERY"
    case 1: return "IQUERY"
    case 2: return "STATUS"
    case 4: return "NOTIFY"
    case 5: return "UPDATE"
    case 6: return "DSO"
    default: return "OPCODE\(o)"
    }
}
