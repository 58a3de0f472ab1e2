import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TestKit
import Testing

/// `kubeshark hub` over two real worker processes: one merged stream in
/// timestamp order, entries and pcaps routed to the worker that holds them, and
/// a worker that dies and comes back shown down, then up, its stream resumed.
@Suite("Hub over two workers", .serialized)
struct HubTests {
    static func hub(_ workers: [WorkerAPITests.RunningWorker]) throws -> WorkerAPITests.RunningWorker {
        let args = zip(["a", "b"], workers).flatMap { ["--worker", "\($0)=\($1.base)"] }
        return try WorkerAPITests.RunningWorker(args, command: "hub", ready: "hub listening on", usesDataDirectory: false)
    }

    @Test("one stream merged by time from both workers; a full entry and a pcap come from the right worker")
    func mergedStream() throws {
        let fileA = WorkerAPITests.fixture("http1-pipelined.pcap")
        let fileB = WorkerAPITests.fixture("http1-get-query.pcap")
        let a = try WorkerAPITests.RunningWorker(["-r", fileA])
        defer { _ = a.stop() }
        let b = try WorkerAPITests.RunningWorker(["-r", fileB])
        defer { _ = b.stop() }
        let hub = try Self.hub([a, b])
        defer { _ = hub.stop() }
        let expectedA = try WorkerAPITests.offline(fileA, filter: "http").count
        let expectedB = try WorkerAPITests.offline(fileB, filter: "http").count
        let pcap = hub.dataDirectory + "-first.pcap"
        defer { try? FileManager.default.removeItem(atPath: pcap) }
        let messages = try hub.ws(["--query", "http", "--want", "\(expectedA + expectedB)", "--idle", "5",
                                   "--fetch-first", "--pcap-first", pcap])
        let entries = WorkerAPITests.entries(messages)
        #expect(entries.count == expectedA + expectedB)
        let workers = entries.compactMap { $0["worker"] as? String }
        #expect(workers.filter { $0 == "a" }.count == expectedA && workers.filter { $0 == "b" }.count == expectedB)
        #expect(entries.allSatisfy { ($0["id"] as? String)?.hasPrefix("\($0["worker"] ?? "")~") == true })
        let times = entries.compactMap { $0["timestamp"] as? Int }
        #expect(times == times.sorted(), "merged in timestamp order")
        #expect(messages.filter { $0["type"] as? String == "worker" && $0["up"] as? Bool == true }.count == 2)
        // The first entry in full, fetched through the hub from its worker.
        let full = try #require(messages.first { $0["full"] as? Bool == true })
        #expect((full["id"] as? String) == (entries.first?["id"] as? String))
        #expect((full["entry"] as? [String: Any])?["request"] != nil)
        // Its stream as a pcap, from the worker that holds it.
        let first = try #require(entries.first)
        let source = first["worker"] as? String == "a" ? fileA : fileB
        #expect(try WorkerAPITests.tcpdumpCount(pcap) == (try WorkerAPITests.tcpdumpCount(source)),
                "each fixture is one connection")
        let stats = try hub.json("/api/stats")
        let list = (stats["workers"] as? [[String: Any]]) ?? []
        #expect(list.count == 2 && list.allSatisfy { $0["up"] as? Bool == true })
        let received = (stats["capture"] as? [String: Any])?["received"] as? Int
        #expect(received == (try WorkerAPITests.tcpdumpCount(fileA)) + (try WorkerAPITests.tcpdumpCount(fileB)))
    }

    @Test("a worker that dies is shown down; when it comes back its stream resumes, the other keeps flowing")
    func workerRestart() throws {
        let fileA = WorkerAPITests.fixture("http1-pipelined.pcap")
        let fileB = WorkerAPITests.fixture("http1-post-json.pcap")
        let a = try WorkerAPITests.RunningWorker(["-r", fileA])
        defer { _ = a.stop() }
        let port = 20000 + Int(getpid() % 20000)
        let dirB = NSTemporaryDirectory() + "ks-hub-b-\(getpid())"
        let b = try WorkerAPITests.RunningWorker(["-r", fileB], portArguments: ["--port", "\(port)"], dataDirectory: dirB)
        let hub = try Self.hub([a, b])
        defer { _ = hub.stop() }
        let pidFile = dirB + ".pid"
        defer {
            if let pid = try? String(contentsOfFile: pidFile, encoding: .utf8), let n = Int32(pid.trimmingCharacters(in: .whitespacesAndNewlines)) {
                kill(n, SIGKILL)
            }
            try? FileManager.default.removeItem(atPath: dirB)
            try? FileManager.default.removeItem(atPath: pidFile)
        }
        // Once the session is open: kill b, wait, start it again on the same port and data.
        let restart = "sleep 1; kill -9 \(b.process.processIdentifier); sleep 1.5; "
            + "'\(TestProcess.kubeshark)' worker -r '\(fileB)' --port \(port) --data-dir '\(dirB)' >/dev/null 2>&1 & echo $! > '\(pidFile)'"
        let messages = try hub.ws(["--query", "http", "--idle", "6", "--run", restart])
        let bEvents = messages.filter { $0["type"] as? String == "worker" && $0["worker"] as? String == "b" }
            .compactMap { $0["up"] as? Bool }
        #expect(bEvents.starts(with: [true, false, true]), "b: up, down, up again: \(bEvents)")
        let entries = WorkerAPITests.entries(messages)
        let fromA = entries.filter { $0["worker"] as? String == "a" }.count
        #expect(fromA == (try WorkerAPITests.offline(fileA, filter: "http").count), "a's stream is whole")
        #expect(entries.contains { $0["worker"] as? String == "b" })
    }

    @Test("a plugin file the host refuses leaves the worker running; the refusal shows in its and the hub's statistics")
    func refusedPlugin() throws {
        let dir = NSTemporaryDirectory() + "ks-bad-plugins-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("not a shared object".utf8).write(to: URL(fileURLWithPath: dir + "/libksplugin-broken.so"))
        let file = WorkerAPITests.fixture("http1-pipelined.pcap")
        let a = try WorkerAPITests.RunningWorker(["-r", file, "--plugins-dir", dir])
        defer { _ = a.stop() }
        let stats = try a.json("/api/stats")
        let refused = (stats["pluginsRefused"] as? [String]) ?? []
        #expect(refused.count == 1 && refused[0].contains("libksplugin-broken.so: refused:"), "\(refused)")
        #expect(((stats["plugins"] as? [[String: Any]]) ?? []).contains { $0["name"] as? String == "http" })
        // The worker dissects with the plugins that did load.
        let expected = try WorkerAPITests.offline(file, filter: "http").count
        #expect(WorkerAPITests.entries(try a.ws(["--query", "http", "--want", "\(expected)"])).count == expected)
        let hub = try Self.hub([a])
        defer { _ = hub.stop() }
        let hubRefused = (try hub.json("/api/stats")["pluginsRefused"] as? [String]) ?? []
        #expect(hubRefused.count == 1 && hubRefused[0].hasPrefix("a: ") && hubRefused[0].contains("libksplugin-broken.so"), "\(hubRefused)")
    }

    @Test("workers register themselves with a hub (worker --hub), come back at a new address, and can be removed")
    func registration() throws {
        let hub = try WorkerAPITests.RunningWorker([], command: "hub", ready: "hub listening on", usesDataDirectory: false)
        defer { _ = hub.stop() }
        let fileA = WorkerAPITests.fixture("http1-pipelined.pcap")
        let fileB = WorkerAPITests.fixture("http1-get-query.pcap")
        let register = ["--hub", hub.base, "--hub-interval", "0.3"]
        let a = try WorkerAPITests.RunningWorker(["-r", fileA, "--name", "a"] + register)
        defer { _ = a.stop() }
        var b = try WorkerAPITests.RunningWorker(["-r", fileB, "--name", "b"] + register)
        defer { _ = b.stop() }  // whichever b runs at the end
        func registered() -> [String: String] {
            let list = (try? JSONSerialization.jsonObject(with: (try? hub.get("/api/workers").1) ?? Data()) as? [[String: Any]]) ?? []
            return Dictionary(list.compactMap { w in (w["name"] as? String).map { ($0, w["url"] as? String ?? "") } }) { $1 }
        }
        func waitFor(_ want: [String: String]) -> [String: String] {
            var seen: [String: String] = [:]
            for _ in 0..<40 {
                seen = registered()
                if seen == want { break }
                Thread.sleep(forTimeInterval: 0.25)
            }
            return seen
        }
        #expect(waitFor(["a": a.base, "b": b.base]) == ["a": a.base, "b": b.base])
        let expectedA = try WorkerAPITests.offline(fileA, filter: "http").count
        let expectedB = try WorkerAPITests.offline(fileB, filter: "http").count
        let entries = WorkerAPITests.entries(try hub.ws(["--query", "http", "--want", "\(expectedA + expectedB)", "--idle", "5"]))
        #expect(entries.filter { $0["worker"] as? String == "a" }.count == expectedA)
        #expect(entries.filter { $0["worker"] as? String == "b" }.count == expectedB)
        // b comes back on another port: the hub follows it there.
        _ = b.stop()
        b = try WorkerAPITests.RunningWorker(["-r", fileB, "--name", "b"] + register)
        #expect(waitFor(["a": a.base, "b": b.base]) == ["a": a.base, "b": b.base])
        let again = WorkerAPITests.entries(try hub.ws(["--query", "http", "--want", "\(expectedA + expectedB)", "--idle", "5"]))
        #expect(again.filter { $0["worker"] as? String == "b" }.count == expectedB)
        // A bad registration is refused; an operator can remove a worker.
        var bad = URLRequest(url: URL(string: hub.base + "/api/workers")!)
        bad.httpMethod = "POST"
        bad.httpBody = Data(#"{"name": "x~y", "url": "ftp://nowhere"}"#.utf8)
        #expect(try hub.send(bad).0 == 400)
        #expect(try hub.request("/api/workers/zzz", method: "DELETE").0 == 404)
        _ = a.stop()  // or it registers again
        #expect(try hub.request("/api/workers/a", method: "DELETE").0 == 200)
        #expect(waitFor(["b": b.base]) == ["b": b.base])
    }
}
