import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TestKit
import Testing

/// `kubeshark worker` end to end: the real binary serving a ring, a real
/// WebSocket client (python3-websockets), curl-free REST through Foundation,
/// tcpdump reading the pcaps it hands out.
@Suite("Worker API", .serialized)
struct WorkerAPITests {
    static let python = "/usr/bin/python3"
    static var client: String { TestProcess.repoRoot.appendingPathComponent("Tests/WorkerTests/ws_client.py").path }

    static func fixture(_ name: String) -> String {
        TestProcess.repoRoot.appendingPathComponent("Tests/Fixtures/captures/\(name)").path
    }

    /// A running worker (or hub, or tap) process and its base URL (TestKit).
    typealias RunningWorker = RunningKubeshark

    static func entries(_ messages: [[String: Any]]) -> [[String: Any]] {
        messages.filter { $0["type"] as? String == "entry" && $0["full"] == nil }.compactMap { $0["entry"] as? [String: Any] }
    }

    /// Entries `kubeshark dissect` finds offline in the same file.
    static func offline(_ file: String, filter: String) throws -> [[String: Any]] {
        let r = try TestProcess.run(TestProcess.kubeshark, ["dissect", file, "--filter", filter])
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    static func tcpdumpCount(_ path: String, filter: [String] = []) throws -> Int {
        let r = try TestProcess.run("/usr/bin/tcpdump", ["-n", "-r", path] + filter)
        #expect(r.status == 0, "tcpdump: \(r.stderr)")
        return r.stdout.split(separator: "\n").count
    }

    @Test("a WebSocket query gets the same entries as offline dissection; one entry in full, by WebSocket and REST")
    func queryAndFetch() throws {
        let file = Self.fixture("http1-pipelined.pcap")
        let worker = try RunningWorker(["-r", file])
        defer { _ = worker.stop() }
        let expected = try Self.offline(file, filter: "http and response.status == 200")
        #expect(!expected.isEmpty)
        let messages = try worker.ws(["--query", "http and response.status == 200", "--want", "\(expected.count)",
                                      "--fetch-first"])
        #expect(messages.first?["type"] as? String == "session")
        let got = Self.entries(messages)
        #expect(got.count == expected.count)
        #expect(got.compactMap { $0["summary"] as? String } == expected.compactMap { $0["summary"] as? String })
        // Summaries leave the bodies out; the full entry has them.
        #expect(got.first?["request"] == nil)
        let full = try #require(messages.first { $0["full"] as? Bool == true }?["entry"] as? [String: Any])
        #expect(full["request"] != nil && full["response"] != nil)
        // The same entry over REST, while the session is open... it closed with the
        // client, so a new session answers 404 for it, with the reason.
        let session = try #require(messages.first?["session"] as? String)
        let id = try #require(got.first?["id"] as? String)
        let (status, body) = try worker.get("/api/sessions/\(session)/entries/\(id)")
        #expect(status == 404, "closed sessions forget their entries: \(String(decoding: body, as: UTF8.self))")
    }

    @Test("a bad query is refused with the position and what was expected")
    func badQuery() throws {
        let worker = try RunningWorker(["-r", Self.fixture("http1-pipelined.pcap")])
        defer { _ = worker.stop() }
        let messages = try worker.ws(["--query", "response.status == ", "--idle", "2"])
        let error = try #require(messages.first { $0["type"] as? String == "error" })
        #expect((error["error"] as? String)?.hasPrefix("bad query:") == true)
        #expect(error["position"] as? Int == 19)
        // The worker keeps serving.
        #expect(try worker.get("/healthz").0 == 200)
    }

    @Test("retention: after a forced flush the entry's stream is still downloadable as a pcap")
    func retentionSurvivesFlush() throws {
        let file = Self.fixture("http1-pipelined.pcap")
        let worker = try RunningWorker(["-r", file])
        defer { _ = worker.stop() }
        let out = worker.dataDirectory + "-stream.pcap"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let messages = try worker.ws(["--query", "http", "--idle", "1.5", "--flush-then-pcap", out])
        let flush = try #require(messages.first { $0["type"] as? String == "_flush" })
        #expect((flush["body"] as? String)?.contains("flushed") == true)
        let stats = try worker.json("/api/stats")
        #expect((stats["ring"] as? [String: Any])?["segments"] as? Int == 0, "the only segment was flushed")
        // Every packet of the capture belongs to its one connection.
        #expect(try Self.tcpdumpCount(out) == (try Self.tcpdumpCount(file)))
        let sessions = try #require(messages.first { $0["type"] as? String == "_sessions" }?["body"] as? [[String: Any]])
        #expect((sessions.first?["retainedPackets"] as? Int ?? 0) > 0)
    }

    @Test("a client too slow for its queue is dropped with the reason; the worker and other clients go on")
    func slowClient() throws {
        let worker = try RunningWorker(["-r", Self.fixture("http1-pipelined.pcap"), "--client-queue-limit", "100"])
        defer { _ = worker.stop() }
        let messages = try worker.ws(["--query", "http", "--idle", "3"])
        let closing = try #require(messages.first { $0["type"] as? String == "closing" })
        #expect((closing["reason"] as? String)?.hasPrefix("client too slow") == true)
        #expect(try worker.get("/healthz").0 == 200)
        let stats = try worker.json("/api/stats")
        #expect((stats["sessions"] as? [Any])?.isEmpty == true, "the slow client's session was closed")
    }

    @Test("off loopback an access token is required on every request but the probes")
    func accessToken() throws {
        let worker = try RunningWorker(["-r", Self.fixture("http1-get-query.pcap"), "--token", "s3cret"])
        defer { _ = worker.stop() }
        #expect(try worker.get("/api/stats").0 == 401)
        #expect(try worker.get("/").0 == 401)
        #expect(try worker.get("/healthz").0 == 200)
        var request = URLRequest(url: URL(string: worker.base + "/api/stats")!)
        request.setValue("Bearer s3cret", forHTTPHeaderField: "Authorization")
        #expect(try worker.send(request).0 == 200)
        request.setValue("Bearer wrong", forHTTPHeaderField: "Authorization")
        #expect(try worker.send(request).0 == 401)
        // The printed link sets a cookie that later requests (and the WebSocket) carry.
        let r = try TestProcess.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-D", "-", worker.base + "/?token=s3cret"])
        #expect(r.stdout.contains("200") && r.stdout.lowercased().contains("set-cookie: ks_token=s3cret"), "\(r.stdout)")
        let withCookie = try TestProcess.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}",
                                                               "-H", "Cookie: ks_token=s3cret", worker.base + "/api/stats"])
        #expect(withCookie.stdout == "200")
        let ws = try TestProcess.run(WorkerAPITests.python, [WorkerAPITests.client, worker.base, "--idle", "1"])
        #expect(ws.status != 0, "a WebSocket without the token is refused")
    }

    @Test("stats, metrics, health, readiness and the raw ring export")
    func statsAndExport() throws {
        let file = Self.fixture("http1-get-query.pcap")
        let worker = try RunningWorker(["-r", file])
        let packets = try Self.tcpdumpCount(file)
        Thread.sleep(forTimeInterval: 0.5)
        #expect(try worker.get("/readyz").0 == 200)
        let stats = try worker.json("/api/stats")
        #expect((stats["ring"] as? [String: Any])?["packetsWritten"] as? Int == packets)
        #expect((stats["capture"] as? [String: Any])?["received"] as? Int == packets)
        let metrics = String(decoding: try worker.get("/metrics").1, as: UTF8.self)
        #expect(metrics.contains("kubeshark_ring_packets_written_total \(packets)"))
        #expect(metrics.contains("# TYPE kubeshark_ring_usage_bytes gauge"))
        let (status, pcap) = try worker.get("/api/pcap")
        #expect(status == 200)
        let path = worker.dataDirectory + "-ring.pcap"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try pcap.write(to: URL(fileURLWithPath: path))
        #expect(try Self.tcpdumpCount(path) == packets)
        #expect(try worker.get("/api/pcap?from=yesterday").0 == 400)
        // pcapdump reads the same ring from outside, while the worker runs.
        let dump = worker.dataDirectory + "-dump.pcap"
        defer { try? FileManager.default.removeItem(atPath: dump) }
        let r = try TestProcess.run(TestProcess.kubeshark, ["pcapdump", "--data-dir", worker.dataDirectory, "-w", dump])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.tcpdumpCount(dump) == packets)
        let (code, log) = worker.stop()
        #expect(code == 0, "graceful stop on SIGTERM: \(log)")
    }
}

/// The worker on live traffic: a pod in a network namespace, the worker
/// capturing its veth with AF_PACKET, a WebSocket client that connects between
/// two requests and must receive both (from before and after it connected).
@Suite("Worker on a live pod", .serialized,
       .enabled(if: getuid() == 0, "needs root for network namespaces and capture"))
struct WorkerLiveTests {
    @Test("entries from before and after the client connected, captured from a namespace pod", arguments: ["af_packet", "libpcap"])
    func liveSession(backend: String) throws {
        let pod = try TestPod(tag: "wrk", subnet: 41)
        defer { pod.remove() }
        let worker = try WorkerAPITests.RunningWorker(["-i", pod.hostInterface, "--capture", backend,
                                                       "--filter", "tcp port \(pod.port)"])
        defer { _ = worker.stop() }
        Thread.sleep(forTimeInterval: 0.3)
        #expect(try pod.fetch("/hello.txt") == "hello from the pod\n")
        let messages = try worker.ws([
            "--query", "http and request.path.startsWith(\"/\")", "--want", "2", "--idle", "5",
            "--run", "curl -s -o /dev/null http://\(pod.podAddress):\(pod.port)/after-connect",
        ])
        let entries = WorkerAPITests.entries(messages)
        let paths = entries.compactMap { ($0["summary"] as? String) }
        #expect(entries.count == 2, "\(messages)")
        #expect(paths.contains { $0.contains("/hello.txt") }, "the request from before the client connected: \(paths)")
        #expect(paths.contains { $0.contains("/after-connect") }, "the request made after it connected: \(paths)")
        let statuses = entries.compactMap { $0["status"] as? Int }.sorted()
        #expect(statuses == [200, 404])
        let stats = try worker.json("/api/stats")
        #expect((stats["capture"] as? [String: Any])?["running"] as? Bool == true)
    }
}
