import Foundation
import PluginAPI
import Testing

@testable import Host

/// The engine end to end on synthetic packets: flows, roles, reassembly into
/// plugins, re-probing, the parse-result contract, buffer caps, UDP pseudo-flows
/// and timeouts. Plugins are the built-in HTTP plugin and tiny C plugins built
/// here, each misbehaving in one way.
@Suite("Dissection session")
struct DissectionSessionTests {
    // MARK: Helpers

    static let dltRaw: Int32 = 12
    static let t0: Int64 = 1_700_000_000_000_000_000

    /// A C plugin compiled with `-DMODE=n` and a name of its own.
    static func testPlugin(mode: Int, name: String) throws -> LoadedPlugin {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ks-engine-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let source = dir.appendingPathComponent("plugin.c")
        try cSource.write(to: source, atomically: true, encoding: .utf8)
        let output = dir.appendingPathComponent("lib\(name).so").path
        let header = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/PluginAPI/include").path
        let cc = Process()
        cc.executableURL = URL(fileURLWithPath: "/usr/bin/cc")
        cc.arguments = ["-std=c99", "-Wall", "-Werror", "-shared", "-fPIC", "-I", header, "-DMODE=\(mode)",
                        "-DNAME=\"\(name)\"", "-o", output, source.path]
        try cc.run()
        cc.waitUntilExit()
        guard cc.terminationStatus == 0 else { throw HarnessFailure(message: "cc failed for \(name)") }
        let plugin = try PluginLoader.load(path: output).get()
        try plugin.start()
        return plugin
    }

    struct HarnessFailure: Error { var message: String }

    static func httpPlugin() throws -> LoadedPlugin {
        let plugin = try PluginLoader.load(path: PluginLoader.executableDirectory + "/libksplugin-http.so").get()
        try plugin.start()
        return plugin
    }

    /// Builds raw IPv4/TCP packets of one connection, tracking sequence numbers.
    struct Conversation {
        var clientPort: UInt16 = 40123
        var serverPort: UInt16 = 80
        var clientSeq: UInt32 = 1000
        var serverSeq: UInt32 = 5000
        var clock: Int64 = DissectionSessionTests.t0

        mutating func tick() -> Int64 {
            clock += 1_000_000
            return clock
        }

        func packet(fromClient: Bool, seq: UInt32, ack: UInt32, flags: TCPFlags, payload: [UInt8]) -> [UInt8] {
            let tcp = PacketFixture.tcp(
                src: fromClient ? clientPort : serverPort, dst: fromClient ? serverPort : clientPort,
                seq: seq, ack: ack, flags: flags, payload: payload)
            return PacketFixture.ipv4(
                src: fromClient ? PacketFixture.clientV4 : PacketFixture.serverV4,
                dst: fromClient ? PacketFixture.serverV4 : PacketFixture.clientV4, payload: tcp)
        }

        mutating func handshake() -> [[UInt8]] {
            let syn = packet(fromClient: true, seq: clientSeq, ack: 0, flags: [.syn], payload: [])
            let synAck = packet(fromClient: false, seq: serverSeq, ack: clientSeq + 1, flags: [.syn, .ack], payload: [])
            clientSeq += 1
            serverSeq += 1
            let ack = packet(fromClient: true, seq: clientSeq, ack: serverSeq, flags: [.ack], payload: [])
            return [syn, synAck, ack]
        }

        mutating func send(fromClient: Bool, _ text: String) -> [UInt8] {
            send(fromClient: fromClient, Array(text.utf8))
        }

        mutating func send(fromClient: Bool, _ bytes: [UInt8]) -> [UInt8] {
            let p = packet(fromClient: fromClient, seq: fromClient ? clientSeq : serverSeq,
                           ack: fromClient ? serverSeq : clientSeq, flags: [.ack, .psh], payload: bytes)
            if fromClient { clientSeq &+= UInt32(bytes.count) } else { serverSeq &+= UInt32(bytes.count) }
            return p
        }

        mutating func fin(fromClient: Bool) -> [UInt8] {
            let p = packet(fromClient: fromClient, seq: fromClient ? clientSeq : serverSeq,
                           ack: fromClient ? serverSeq : clientSeq, flags: [.fin, .ack], payload: [])
            if fromClient { clientSeq &+= 1 } else { serverSeq &+= 1 }
            return p
        }
    }

    /// Runs packets through a fresh session; returns the entries' JSON objects.
    static func run(_ packets: [[UInt8]], plugins: [LoadedPlugin], timestamps: [Int64]? = nil,
                    configure: (inout SessionConfiguration) -> Void = { _ in })
        -> (entries: [[String: Any]], session: DissectionSession)
    {
        let sink = CollectingSink()
        var config = SessionConfiguration()
        configure(&config)
        let session = DissectionSession(plugins: plugins, sink: sink, configuration: config)
        for (i, p) in packets.enumerated() {
            p.withUnsafeBytes { raw in
                session.process(CapturedPacket(
                    timestampNs: timestamps?[i] ?? t0 + Int64(i) * 1_000_000, data: raw, wireLength: raw.count,
                    linkType: dltRaw))
            }
        }
        session.finish()
        let entries = sink.entries.compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        return (entries, session)
    }

    static let request = "GET /a?x=1 HTTP/1.1\r\nHost: example\r\n\r\n"
    static let response = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"

    // MARK: Tests

    @Test("a whole connection gives one entry with the SYN sender as client")
    func wholeConnection() throws {
        var c = Conversation()
        var packets = c.handshake()
        packets.append(c.send(fromClient: true, Self.request))
        packets.append(c.send(fromClient: false, Self.response))
        packets.append(c.fin(fromClient: true))
        packets.append(c.fin(fromClient: false))
        let (entries, session) = Self.run(packets, plugins: [try Self.httpPlugin()])
        #expect(entries.count == 1)
        let e = try #require(entries.first)
        #expect(e["method"] as? String == "GET")
        #expect(e["summary"] as? String == "/a?x=1")
        #expect(e["status"] as? Int == 200)
        #expect((e["src"] as? [String: Any])?["ip"] as? String == "10.0.0.1")
        #expect((e["dst"] as? [String: Any])?["port"] as? Int == 80)
        #expect(session.statistics.tcpFlows == 1)
        #expect(session.statistics.flowsDissected == 1)
    }

    @Test("a connection picked up mid-stream: roles guessed from the port, the lone response kept")
    func midstream() throws {
        var c = Conversation()
        // The capture starts with the server answering a request we never saw.
        let packets = [
            c.send(fromClient: false, Self.response),
            c.send(fromClient: true, Self.request),
            c.send(fromClient: false, Self.response),
        ]
        let (entries, _) = Self.run(packets, plugins: [try Self.httpPlugin()])
        #expect(entries.count == 2)
        #expect(entries.first?["flags"] as? [String] == ["responseOnly"])
        #expect(entries.last?["method"] as? String == "GET")
        #expect(entries.last?["status"] as? Int == 200)
        for e in entries { #expect((e["dst"] as? [String: Any])?["port"] as? Int == 80) }
    }

    @Test("out-of-order and retransmitted segments reassemble before the plugin sees them")
    func outOfOrder() throws {
        var c = Conversation()
        var packets = c.handshake()
        let bytes = Array(Self.request.utf8)
        let first = c.send(fromClient: true, Array(bytes[0..<10]))
        let second = c.send(fromClient: true, Array(bytes[10...]))
        packets += [second, first, first]  // reversed, then a retransmission
        packets.append(c.send(fromClient: false, Self.response))
        let (entries, _) = Self.run(packets, plugins: [try Self.httpPlugin()])
        #expect(entries.count == 1)
        #expect(entries.first?["summary"] as? String == "/a?x=1")
        #expect(entries.first?["status"] as? Int == 200)
    }

    @Test("a plugin that rejects the stream hands it to the next candidate with every byte")
    func reprobeAfterReject() throws {
        let grabby = try Self.testPlugin(mode: 1, name: "test_reject")
        var c = Conversation()
        var packets = c.handshake()
        packets.append(c.send(fromClient: true, Self.request))
        packets.append(c.send(fromClient: false, Self.response))
        let (entries, session) = Self.run(packets, plugins: [grabby, try Self.httpPlugin()])
        #expect(session.statistics.reprobes == 1)
        #expect(entries.count == 1)
        #expect(entries.first?["status"] as? Int == 200)
        #expect((entries.first?["protocol"] as? [String: Any])?["name"] as? String == "http")
    }

    @Test("a result that consumes more than it was given is a contract violation, not a crash")
    func overconsumingPlugin() throws {
        let bad = try Self.testPlugin(mode: 2, name: "test_overconsume")
        var c = Conversation()
        var packets = c.handshake()
        for _ in 0..<5 { packets.append(c.send(fromClient: true, "some bytes")) }
        let (entries, _) = Self.run(packets, plugins: [bad])
        #expect(entries.isEmpty)
        #expect(bad.counterSnapshot["host.contract_violations"] == 1, "\(bad.counterSnapshot)")
        #expect((bad.counterSnapshot["host.bytes_after_stop"] ?? 0) > 0)
    }

    @Test("a plugin that never consumes is capped at the per-direction buffer limit")
    func bufferCap() throws {
        let hoarder = try Self.testPlugin(mode: 3, name: "test_hoard")
        var c = Conversation()
        var packets = c.handshake()
        let block = [UInt8](repeating: 0x41, count: 1400)
        for _ in 0..<200 { packets.append(c.send(fromClient: true, block)) }
        let (_, _) = Self.run(packets, plugins: [hoarder]) { $0.streamLimits.defaultBufferBytes = 64 << 10 }
        #expect(hoarder.counterSnapshot["host.buffer_overflows"] == 1, "\(hoarder.counterSnapshot)")
        #expect(hoarder.counterSnapshot["host.directions_stopped_by_overflow"] == 1)
    }

    @Test("a lost segment stops a plugin that does not accept gaps, and only that direction")
    func gapWithoutResync() throws {
        var c = Conversation()
        var packets = c.handshake()
        packets.append(c.send(fromClient: true, Self.request))
        let head = "HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n"
        packets.append(c.send(fromClient: false, head))
        _ = c.send(fromClient: false, [UInt8](repeating: 0x42, count: 1000))  // never captured
        packets.append(c.send(fromClient: false, [UInt8](repeating: 0x42, count: 2000)))
        packets.append(c.fin(fromClient: false))
        packets.append(c.fin(fromClient: true))
        let http = try Self.httpPlugin()
        let (entries, _) = Self.run(packets, plugins: [http])
        // The request is still reported, as unanswered: its response was cut by the gap.
        #expect(entries.count == 1)
        #expect(entries.first?["method"] as? String == "GET")
        #expect((http.counterSnapshot["host.gaps"] ?? 0) >= 1, "\(http.counterSnapshot)")
    }

    @Test("UDP datagrams form a pseudo-flow; the plugin pairs them")
    func udpPseudoFlow() throws {
        let ping = try Self.testPlugin(mode: 4, name: "test_udp")
        func datagram(_ fromClient: Bool, _ text: String) -> [UInt8] {
            PacketFixture.ipv4(
                src: fromClient ? PacketFixture.clientV4 : PacketFixture.serverV4,
                dst: fromClient ? PacketFixture.serverV4 : PacketFixture.clientV4, proto: 17,
                payload: PacketFixture.udp(src: fromClient ? 50000 : 7, dst: fromClient ? 7 : 50000, payload: Array(text.utf8)))
        }
        let packets = [datagram(true, "ping 1"), datagram(false, "pong 1"), datagram(true, "ping 2"), datagram(false, "pong 2"),
                       datagram(true, "noise")]
        // Picked up at a reply: the probe reverses the guessed roles.
        let (late, _) = Self.run([datagram(false, "pong 0"), datagram(true, "ping 1"), datagram(false, "pong 1")],
                                 plugins: [ping])
        #expect(late.count == 2)
        #expect(late.allSatisfy { ($0["src"] as? [String: Any])?["port"] as? Int == 50000 })
        let (entries, session) = Self.run(packets, plugins: [ping])
        #expect(session.statistics.udpFlows == 1)
        #expect(entries.count == 2)
        #expect((entries.first?["response"] as? [String: Any])?["text"] as? String == "pong 1")
        #expect((entries.first?["src"] as? [String: Any])?["port"] as? Int == 50000)
    }

    @Test("a probe that reverses the roles mid-delivery swaps client and server safely")
    func probeReversesRoles() throws {
        let plugin = try Self.testPlugin(mode: 5, name: "test_reverse")
        // Mid-stream, both ports high: the host guesses the first sender (40000) is the
        // client, but it sends "pong": the plugin reverses the roles.
        var c = Conversation()
        c.clientPort = 50000
        c.serverPort = 40000
        let packets = [
            c.send(fromClient: false, "pong 0"),
            c.send(fromClient: true, "ping 1"),
            c.send(fromClient: false, "pong 1"),
        ]
        let (entries, _) = Self.run(packets, plugins: [plugin])
        #expect(entries.count == 2)
        for e in entries {
            #expect((e["src"] as? [String: Any])?["port"] as? Int == 50000)
            #expect((e["dst"] as? [String: Any])?["port"] as? Int == 40000)
        }
    }

    @Test("an idle flow times out on capture time and its pending request becomes an entry")
    func idleTimeout() throws {
        var a = Conversation()
        var b = Conversation()
        b.clientPort = 40999
        let packets = a.handshake() + [a.send(fromClient: true, Self.request)] + b.handshake()
        var times = (0..<packets.count).map { Self.t0 + Int64($0) * 1_000_000 }
        // b's handshake comes ten minutes later: a is idle past the timeout by then.
        for i in 4..<times.count { times[i] += 600 * 1_000_000_000 }
        let sink = CollectingSink()
        let session = DissectionSession(plugins: [try Self.httpPlugin()], sink: sink)
        for (i, p) in packets.enumerated() {
            p.withUnsafeBytes {
                session.process(CapturedPacket(timestampNs: times[i], data: $0, wireLength: $0.count, linkType: Self.dltRaw))
            }
        }
        // Before finish(): the timeout alone produced the entry.
        #expect(sink.entries.count == 1)
        #expect(sink.entries.first?.contains("\"unanswered\":true") == true)
        session.finish()
    }

    // MARK: The C test plugin

    static let cSource = #"""
    #include "kubeshark_plugin.h"
    #include <stdlib.h>
    #include <string.h>

    /* MODE 1: probes YES 100 and rejects every stream.
     * MODE 2: consumes one byte more than it was given.
     * MODE 3: never consumes (NEED_MORE, any amount).
     * MODE 4: UDP "ping N"/"pong N" datagrams, one entry per pong.
     * MODE 5: the same over TCP; a "pong" seen from the guessed client reverses the roles. */

    static const ks_host_api *host;

    static ks_status p_init(const ks_host_api *h, void *hctx, const char *c, size_t n, void **ctx) {
        (void)hctx; (void)c; (void)n;
        host = h;
        *ctx = NULL;
        return KS_OK;
    }

    static void p_probe(void *ctx, const ks_flow_info *f, const ks_chunk *c, ks_probe_result *r) {
        (void)ctx; (void)f;
    #if MODE == 4 || MODE == 5
        if (c->len >= 4 && (memcmp(c->data, "ping", 4) == 0 || memcmp(c->data, "pong", 4) == 0)) {
            r->verdict = KS_PROBE_YES;
            r->confidence = KS_CONFIDENCE_SYNTAX;
            r->flags = memcmp(c->data, "pong", 4) == 0 && c->direction == KS_DIR_CLIENT_TO_SERVER ? KS_PROBE_REVERSED : 0;
        } else {
            r->verdict = KS_PROBE_NO;
        }
    #else
        (void)c;
        r->verdict = KS_PROBE_YES;
        r->confidence = KS_CONFIDENCE_MAGIC;
    #endif
    }

    typedef struct { ks_stream *stream; int64_t ping_ts; } state;
    static void p_datagram(void *sp, const ks_chunk *c, ks_parse_result *r);

    static ks_status p_open(void *ctx, const ks_flow_info *f, ks_stream *s, void **out) {
        (void)ctx; (void)f;
        state *st = calloc(1, sizeof *st);
        if (!st) return KS_E_NOMEM;
        st->stream = s;
        *out = st;
        return KS_OK;
    }

    static void p_data(void *st, const ks_chunk *c, ks_parse_result *r) {
        (void)st;
    #if MODE == 1
        (void)c;
        r->status = KS_PARSE_REJECT;
    #elif MODE == 2
        r->status = KS_PARSE_OK;
        r->consumed = c->len + 1;
    #elif MODE == 3
        (void)c;
        r->status = KS_PARSE_NEED_MORE;
        r->consumed = 0;
        r->needed = KS_NEED_ANY;
    #elif MODE == 5
        p_datagram(st, c, r);
    #else
        r->status = KS_PARSE_OK;
        r->consumed = c->len;
    #endif
    }

    static void p_datagram(void *sp, const ks_chunk *c, ks_parse_result *r) {
        state *st = sp;
        r->consumed = c->len;
        if (c->len < 4 || (memcmp(c->data, "ping", 4) != 0 && memcmp(c->data, "pong", 4) != 0)) {
            host->violation(st->stream, "not ping/pong", 13);
            r->status = KS_PARSE_OK;
            return;
        }
        if (c->direction == KS_DIR_CLIENT_TO_SERVER) {
            st->ping_ts = c->ts_first_ns;
        } else {
            ks_entry_info info;
            memset(&info, 0, sizeof info);
            info.struct_size = sizeof info;
            info.request_ts_ns = st->ping_ts;
            info.response_ts_ns = c->ts_first_ns;
            info.method = "PING";
            info.method_len = 4;
            ks_entry *e = host->entry_begin(st->stream, &info);
            if (e) {
                if (host->entry_object_begin(e, "response", 8) == KS_OK &&
                    host->entry_string(e, "text", 4, (const char *)c->data, c->len) == KS_OK &&
                    host->entry_object_end(e) == KS_OK) {
                    host->entry_commit(e);
                } else {
                    host->entry_abort(e);
                }
            }
        }
        r->status = KS_PARSE_OK;
    }

    static void p_close(void *st, ks_close_reason why) { (void)why; free(st); }

    static const ks_protocol protos[] = {{
        sizeof(ks_protocol), 0, NAME, NAME, "TEST", "1", NAME, "#000000", "#ffffff", "https://example.invalid"
    }};

    static const ks_plugin_descriptor descriptor = {
        .struct_size = sizeof(ks_plugin_descriptor),
        .abi_major = KS_ABI_MAJOR,
        .abi_minor = KS_ABI_MINOR,
        .name = NAME,
        .version = "0.0.1",
        .vendor = "tests",
        .license = "Apache-2.0",
        .description = "engine test plugin",
        .reference_url = "",
    #if MODE == 4
        .layer4 = KS_L4_UDP,
    #else
        .layer4 = KS_L4_TCP,
    #endif
        .priority = 0,
        .probe_min_bytes = 1,
        .probe_max_bytes = 64,
        .protocols = protos,
        .protocol_count = 1,
        .init = p_init,
        .probe = p_probe,
        .stream_open = p_open,
        .stream_data = p_data,
        .stream_close = p_close,
        .datagram = p_datagram,
    };

    const ks_plugin_descriptor *ks_plugin_v1(void) { return &descriptor; }
    """#
}
