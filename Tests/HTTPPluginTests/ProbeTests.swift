import Host
import PluginAPI
import Testing

@Suite struct ProbeTests {
    @Test func metadata() throws {
        let h = try makeHarness()
        let m = h.plugin.metadata
        #expect(m.name == "http")
        #expect(m.priority == 10)
        #expect(m.handlesTCP && !m.handlesUDP)
        #expect(m.acceptsGaps)
        #expect(m.hints(port: 80) && m.hints(port: 8080) && m.hints(port: 8000) && m.hints(port: 8099))
        #expect(!m.hints(port: 443))
        #expect(m.protocols.count == 3)
        let p11 = m.protocols[0]
        #expect(p11.name == "http" && p11.abbreviation == "HTTP" && p11.version == "1.1" && p11.macro == "http")
        #expect(p11.backgroundColor == "#205cf5" && p11.foregroundColor == "#ffffff")
        #expect(p11.referenceURL == "https://datatracker.ietf.org/doc/html/rfc9112")
        let p10 = m.protocols[1]
        #expect(p10.name == "http" && p10.version == "1.0" && p10.macro == "http")
        #expect(p11.extraMacros.isEmpty && p10.extraMacros.isEmpty)
        let gql = m.protocols[2]
        #expect(gql.name == "graphql" && gql.abbreviation == "GQL" && gql.macro == "gql" && gql.extraMacros == ["http"])
        #expect(gql.referenceURL == "https://spec.graphql.org/October2021/")
    }

    @Test func fullRequestLine() throws {
        let h = try makeHarness()
        for line in ["GET / HTTP/1.1\r\n", "POST /x?y=1 HTTP/1.0\r\nHost: a\r\n", "PROPFIND /dav HTTP/1.1\r\n",
            "PATCH /a HTTP/1.1\r\n", "M-SEARCH * HTTP/1.1\r\n", "GET / HTTP/1.1"]
        {
            let r = h.probe(bytes(line), direction: .clientToServer)
            #expect(r.verdict == KS_PROBE_YES, "\(line)")
            #expect(r.confidence == 75, "\(line)")
            #expect(!r.reversed)
        }
    }

    @Test func plausiblePrefix() throws {
        let h = try makeHarness()
        for prefix in ["GET ", "GET /index.ht", "DELETE /a/b HTTP/1"] {
            let r = h.probe(bytes(prefix))
            #expect(r.verdict == KS_PROBE_YES, "\(prefix)")
            #expect(r.confidence == 50, "\(prefix)")
        }
    }

    @Test func maybeInsideMethod() throws {
        let h = try makeHarness()
        for prefix in ["G", "GE", "GET", "PROPF", "H", "HE", "M-SE"] {
            let r = h.probe(bytes(prefix))
            #expect(r.verdict == KS_PROBE_MAYBE, "\(prefix)")
        }
    }

    @Test func statusLine() throws {
        let h = try makeHarness()
        let fromServer = h.probe(bytes("HTTP/1.1 200 OK\r\n"), direction: .serverToClient)
        #expect(fromServer.verdict == KS_PROBE_YES && fromServer.confidence == 75 && !fromServer.reversed)
        let fromClient = h.probe(bytes("HTTP/1.0 404 Not Found\r\n"), direction: .clientToServer)
        #expect(fromClient.verdict == KS_PROBE_YES && fromClient.confidence == 75 && fromClient.reversed)
        let short = h.probe(bytes("HTTP/1.1 20"), direction: .serverToClient)
        #expect(short.verdict == KS_PROBE_MAYBE)
        let requestFromServer = h.probe(bytes("GET / HTTP/1.1\r\n"), direction: .serverToClient)
        #expect(requestFromServer.verdict == KS_PROBE_YES && requestFromServer.reversed)
    }

    @Test func notHTTP() throws {
        let h = try makeHarness()
        for s in ["PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/2 200\r\n", "get / HTTP/1.1\r\n", "\u{16}\u{03}\u{01}\u{02}",
            "GET / HTTP/2.0\r\n", "SSH-2.0-OpenSSH\r\n", "GETX / HTTP/1.1\r\n", "GET\t/ HTTP/1.1\r\n", "HTTP/1.1 abc\r\n",
            "*1\r\n$4\r\nPING\r\n"]
        {
            let r = h.probe(bytes(s))
            #expect(r.verdict == KS_PROBE_NO, "\(s.debugDescription)")
        }
        var rng = SplitMix(state: 1)
        for _ in 0..<500 {
            let b = rng.bytes(Int(rng.next() % 64) + 1)
            let r = h.probe(b)
            #expect(r.verdict != KS_PROBE_YES || r.confidence <= 75)
        }
    }
}
