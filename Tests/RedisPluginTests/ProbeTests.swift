import Host
import PluginAPI
import Testing

@Suite struct ProbeTests {
    @Test func metadata() throws {
        let h = try makeHarness()
        let m = h.plugin.metadata
        #expect(m.name == "redis")
        #expect(m.handlesTCP && !m.handlesUDP)
        #expect(m.hints(port: 6379) && !m.hints(port: 6380))
        #expect(m.protocols.count == 1)
        let p = m.protocols[0]
        #expect(p.name == "redis" && p.abbreviation == "REDIS" && p.macro == "redis")
        #expect(p.backgroundColor == "#a41e11" && p.foregroundColor == "#ffffff")
        #expect(p.referenceURL == "https://redis.io/docs/latest/develop/reference/protocol-spec/")
    }

    @Test func knownCommandArray() throws {
        let h = try makeHarness()
        for c in [command("SET", "a", "b"), command("get", "x"), command("PING"), command("HELLO", "3")] {
            let r = h.probe(c, direction: .clientToServer)
            #expect(r.verdict == KS_PROBE_YES && r.confidence == 75 && !r.reversed)
            let fromServer = probe(h, c, direction: .serverToClient, rolesGuessed: true)
            #expect(fromServer.verdict == KS_PROBE_YES && fromServer.reversed)
            // Roles from the handshake are trusted (a master feeding a replica sends commands).
            let known = probe(h, c, direction: .serverToClient, rolesGuessed: false)
            #expect(known.verdict == KS_PROBE_YES && !known.reversed)
        }
        let unknown = h.probe(command("FROBNICATE", "x"))
        #expect(unknown.verdict == KS_PROBE_YES && unknown.confidence == 50)
    }

    @Test func inlineCommand() throws {
        let h = try makeHarness()
        for s in ["PING\r\n", "set a b\r\n", "GET key\n"] {
            let r = h.probe(bytes(s))
            #expect(r.verdict == KS_PROBE_YES && r.confidence == 50, "\(s.debugDescription)")
        }
        #expect(h.probe(bytes("PI")).verdict == KS_PROBE_MAYBE)
        #expect(h.probe(bytes("*1\r\n$4\r\nPI")).verdict == KS_PROBE_MAYBE)
    }

    @Test func replies() throws {
        let h = try makeHarness()
        for s in ["+OK\r\n", "-ERR unknown command\r\n", ":12\r\n", "$5\r\nhello\r\n", "*2\r\n:1\r\n:2\r\n",
                  "%1\r\n+a\r\n:1\r\n", ">3\r\n$7\r\nmessage\r\n", "_\r\n", "#t\r\n"]
        {
            let fromServer = h.probe(bytes(s), direction: .serverToClient)
            #expect(fromServer.verdict == KS_PROBE_YES && !fromServer.reversed, "\(s.debugDescription)")
            #expect(fromServer.confidence < 75)
            let fromClient = probe(h, bytes(s), direction: .clientToServer, rolesGuessed: true)
            #expect(fromClient.verdict == KS_PROBE_YES && fromClient.reversed, "\(s.debugDescription)")
            // With roles from the handshake, reply-like client bytes are an odd inline command.
            let known = probe(h, bytes(s), direction: .clientToServer, rolesGuessed: false)
            #expect(known.verdict == KS_PROBE_YES && !known.reversed && known.confidence == 25)
        }
    }

    @Test func notRedis() throws {
        let h = try makeHarness()
        for s in ["GET / HTTP/1.1\r\nHost: a\r\n\r\n", "\u{16}\u{03}\u{01}\u{02}\u{00}", "SSH-2.0-OpenSSH\r\n",
                  "HTTP/1.1 200 OK\r\n", "*x\r\n", "$abc\r\n", "-err lower\r\n", "frobnicate now\r\n"]
        {
            let r = h.probe(bytes(s))
            #expect(r.verdict == KS_PROBE_NO, "\(s.debugDescription)")
        }
        var rng = SplitMix(state: 3)
        for _ in 0..<500 {
            let b = rng.bytes(Int(rng.next() % 64) + 1)
            let r = h.probe(b)
            #expect(r.verdict != KS_PROBE_YES || r.confidence <= 75)
        }
    }
}
