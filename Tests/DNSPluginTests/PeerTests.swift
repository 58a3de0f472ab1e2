// Real peers: dig against dnsmasq recorded with tcpdump (live, and the
// committed captures in Tests/Fixtures/dns), dissected by the `kubeshark`
// binary and compared with tshark; and the shared corpus under
// ../shared/corpus/dns compared with tshark.

import Foundation
import Testing

private let fixturePort = 53535

private let haveTShark = Tools.which("tshark") != nil
private let havePeers = Tools.isRoot && ["dnsmasq", "dig", "tcpdump", "tshark", "python3"].allSatisfy { Tools.which($0) != nil }

/// tshark's pairs with decode-as for a non-standard port.
private func tsharkExchanges(_ file: String, port: Int?) throws -> [Exchange] {
    guard let port else { return try TShark.exchanges(file: file) }
    return try TShark.exchanges(file: file, extra: ["-d", "udp.port==\(port),dns", "-d", "tcp.port==\(port),dns"])
}

/// Checks that every exchange tshark sees is one of ours, and reports the tally.
@discardableResult
private func compare(_ file: String, port: Int?, sourceLocation: SourceLocation = #_sourceLocation) throws -> (Int, Int) {
    let ours = exchanges(try Tools.dissect(file))
    let theirs = try tsharkExchanges(file, port: port)
    let n = matched(theirs, ours)
    print("dns: \(URL(fileURLWithPath: file).lastPathComponent): \(n)/\(theirs.count) tshark pairs matched, \(ours.count) entries")
    #expect(!theirs.isEmpty, sourceLocation: sourceLocation)
    #expect(n == theirs.count, "tshark: \(theirs)\nours: \(ours)", sourceLocation: sourceLocation)
    return (n, theirs.count)
}

/// Typed content of dnsmasq's answers, by query summary.
private func checkContent(_ entries: [JSON], sourceLocation: SourceLocation = #_sourceLocation) {
    func answers(_ summaryPrefix: String) -> [JSON] {
        entries.first { ($0.str("summary") ?? "").hasPrefix(summaryPrefix) }?.response?.arr("answers") ?? []
    }
    #expect(answers("A web.test ").first?.str("address") == "192.0.2.10", sourceLocation: sourceLocation)
    #expect(answers("AAAA host.test ").first?.str("address") == "2001:db8::20", sourceLocation: sourceLocation)
    #expect(answers("MX test ").first?.str("exchange") == "mail.test", sourceLocation: sourceLocation)
    #expect(answers("MX test ").first?.int("preference") == 10, sourceLocation: sourceLocation)
    #expect(answers("TXT txt.test ").first?.strs("strings") == ["v=spf1 -all", "hello world"],
            sourceLocation: sourceLocation)
    #expect(entries.contains { $0.str("summary") == "A nope.test -> NXDOMAIN 0 answers" }, sourceLocation: sourceLocation)
    #expect(entries.allSatisfy { $0.flags.isEmpty }, "\(entries.map { $0.flags })", sourceLocation: sourceLocation)
}

private func checkUDPContent(_ entries: [JSON], sourceLocation: SourceLocation = #_sourceLocation) {
    func answers(_ summaryPrefix: String) -> [JSON] {
        entries.first { ($0.str("summary") ?? "").hasPrefix(summaryPrefix) }?.response?.arr("answers") ?? []
    }
    #expect(answers("A www.test ").map { $0.str("type") ?? "" } == ["CNAME", "A"], sourceLocation: sourceLocation)
    #expect(answers("A www.test ").first?.str("target") == "host.test", sourceLocation: sourceLocation)
    let srv = answers("SRV _http._tcp.test ").first
    #expect(srv?.int("port") == 8080 && srv?.str("target") == "host.test", sourceLocation: sourceLocation)
    #expect(answers("PTR 30.2.0.192.in-addr.arpa ").first?.str("target") == "ptr-only.test", sourceLocation: sourceLocation)
    let caa = answers("CAA test ").first
    #expect(caa?.str("tag") == "issue" && caa?.str("value") == "letsencrypt.org", sourceLocation: sourceLocation)
    let https = answers("HTTPS svc.test ").first
    #expect(https?.arr("params")?.first?.str("value") == "h2,h3", sourceLocation: sourceLocation)
    #expect(entries.first?.request?.arr("additionals")?.first?.arr("options")?.first?.str("name") == "COOKIE",
            sourceLocation: sourceLocation)
}

@Suite(.serialized) struct PeerTests {
    @Test(.enabled(if: havePeers, "needs root, dnsmasq, dig (bind9-dnsutils), tcpdump, tshark and python3"))
    func liveDnsmasq() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ks-dns-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        defer { try? FileManager.default.removeItem(at: dir) }
        let port = 40000 + Int(getpid() % 20000)
        let script = Tools.fixtures.appendingPathComponent("record-dns.sh").path
        let r = try Tools.run("/usr/bin/env", ["DNS_PORT=\(port)", "timeout", "-s", "KILL", "120", "bash", script, dir.path])
        try #require(r.status == 0, "record-dns.sh failed: \(r.stderr)")
        let udp = dir.appendingPathComponent("dns-udp.pcap").path
        let tcp = dir.appendingPathComponent("dns-tcp.pcap").path
        let udpEntries = try Tools.dissect(udp)
        #expect(udpEntries.count == 12)
        checkContent(udpEntries)
        checkUDPContent(udpEntries)
        let tcpEntries = try Tools.dissect(tcp)
        #expect(tcpEntries.count == 5)
        checkContent(tcpEntries)
        try compare(udp, port: port)
        try compare(tcp, port: port)
    }

    @Test(.enabled(if: haveTShark, "needs tshark"))
    func committedFixtures() throws {
        let udp = Tools.fixtures.appendingPathComponent("dns-udp.pcap").path
        let tcp = Tools.fixtures.appendingPathComponent("dns-tcp.pcap").path
        let udpEntries = try Tools.dissect(udp)
        checkContent(udpEntries)
        checkUDPContent(udpEntries)
        checkContent(try Tools.dissect(tcp))
        try compare(udp, port: fixturePort)
        try compare(tcp, port: fixturePort)
    }

    @Test(.enabled(if: haveTShark && Tools.corpus != nil, "needs tshark and ../shared/corpus/dns"))
    func corpus() throws {
        let dir = try #require(Tools.corpus)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
        #expect(!files.isEmpty)
        var total = (0, 0)
        for f in files {
            let (n, of) = try compare(dir.appendingPathComponent(f).path, port: nil)
            total.0 += n
            total.1 += of
        }
        print("dns: corpus total \(total.0)/\(total.1)")
    }
}

