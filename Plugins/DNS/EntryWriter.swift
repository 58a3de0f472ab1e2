// The request/response objects of a DNS entry (fields in docs/protocols/dns.md).

import PluginKit

func writeMessage(_ b: inout EntryBuilder, _ m: DNSMessage) {
    if let error = m.error { b.string("error", error) }
    guard m.headerComplete else { return }
    b.uint("id", UInt64(m.id))
    b.string("opcode", opcodeName(m.opcode))
    if m.isResponse {
        b.string("rcode", rcodeName(m.rcode))
        b.uint("rcodeCode", UInt64(m.rcode))
    }
    b.object("flags") { b in
        b.bool("qr", m.isResponse)
        b.bool("aa", m.aa)
        b.bool("tc", m.tc)
        b.bool("rd", m.rd)
        b.bool("ra", m.ra)
        b.bool("z", m.z)
        b.bool("ad", m.ad)
        b.bool("cd", m.cd)
    }
    b.object("counts") { b in
        b.uint("questions", UInt64(m.qdcount))
        b.uint("answers", UInt64(m.ancount))
        b.uint("authorities", UInt64(m.nscount))
        b.uint("additionals", UInt64(m.arcount))
    }
    b.array("questions") { b in
        for q in m.questions {
            b.object(nil) { b in
                b.string("name", q.name)
                b.string("type", typeName(q.type))
                b.string("class", className(q.cls, mdnsBit: q.cls & 0x8000 != 0 && q.cls & 0x7FFF == 1))
                if q.cls & 0x8000 != 0 && q.cls & 0x7FFF == 1 { b.bool("unicastResponse", true) }
            }
        }
    }
    if m.ancount > 0 || m.isResponse { writeRecords(&b, "answers", m.answers) }
    if m.nscount > 0 || m.isResponse { writeRecords(&b, "authorities", m.authorities) }
    if m.arcount > 0 || m.isResponse { writeRecords(&b, "additionals", m.additionals) }
}

private func writeRecords(_ b: inout EntryBuilder, _ key: StaticString, _ records: [Record]) {
    b.array(key) { b in
        for r in records {
            b.object(nil) { b in
                b.string("name", r.name)
                b.string("type", typeName(r.type))
                if r.type == 41 {
                    // OPT: the class is the UDP payload size, the TTL holds flags.
                    b.uint("udpPayloadSize", UInt64(r.cls))
                    b.uint("extendedRcode", UInt64(r.ttl >> 24))
                    b.uint("version", UInt64((r.ttl >> 16) & 0xFF))
                    b.bool("do", r.ttl & 0x8000 != 0)
                } else {
                    let mdns = r.cls & 0x8000 != 0 && r.cls & 0x7FFF == 1
                    b.string("class", className(r.cls, mdnsBit: mdns))
                    if mdns { b.bool("cacheFlush", true) }
                    b.uint("ttl", UInt64(r.ttl))
                }
                b.uint("rdlength", UInt64(r.rdlength))
                writeFields(&b, r.data)
            }
        }
    }
}

private func writeFields(_ b: inout EntryBuilder, _ fields: [Field]) {
    for f in fields {
        switch f.value {
        case .string(let s): b.string(f.key, s)
        case .uint(let u): b.uint(f.key, u)
        case .bool(let v): b.bool(f.key, v)
        case .strings(let list):
            b.array(f.key) { b in for s in list { b.string(nil, s) } }
        case .objects(let list):
            b.array(f.key) { b in
                for o in list { b.object(nil) { b in writeFields(&b, o) } }
            }
        }
    }
}
