import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TestKit
import Testing

/// Scripts in a real `kubeshark worker` (docs/scripting.md): hooks over real
/// traffic checked against tshark and tcpdump, the forensics example, webhooks
/// to a server the test runs, and hostile scripts stopped while capture goes on.
@Suite("Scripts", .serialized)
struct ScriptTests {
    typealias Worker = WorkerAPITests.RunningWorker

    /// A folder holding `scripts` (file name → code), removed by the caller.
    static func folder(_ scripts: [String: String]) throws -> String {
        let dir = NSTemporaryDirectory() + "ks-scripts-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, code) in scripts { try code.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
        return dir
    }

    static func scripts(_ worker: Worker) throws -> [String: [String: Any]] {
        let (status, data) = try worker.get("/api/scripts")
        #expect(status == 200)
        let list = (try JSONSerialization.jsonObject(with: data) as? [[String: Any]]) ?? []
        return Dictionary(list.map { ($0["title"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
    }

    static func logs(_ worker: Worker) throws -> [[String: Any]] {
        let (_, data) = try worker.get("/api/scripts/logs")
        return (try JSONSerialization.jsonObject(with: data) as? [[String: Any]]) ?? []
    }

    /// Polls until `condition` holds (or `seconds` pass); returns whether it did.
    static func wait(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        try TestProcess.eventually(within: seconds, condition)
    }

    static func post(_ worker: Worker, _ path: String, _ body: [String: Any]) throws -> Int {
        var req = URLRequest(url: URL(string: worker.base + path)!)
        req.httpMethod = "POST"
        req.httpBody = try JSONSerialization.data(withJSONObject: body)
        req.setValue("application/json", forHTTPHeaderField: "Content-Type")
        return try worker.send(req).0
    }

    @Test("a hook counting live entries by status agrees with tshark on the ring's packets")
    func statusCounts() throws {
        let pod = try TestPod(tag: "scnt", subnet: 61)
        defer { pod.remove() }
        let dir = try Self.folder(["count.js": """
            // Status counter
            var counts = {};
            function onItemCaptured(data) {
              if (!kfl.match("http", data) || !data.status) return;
              counts[data.status] = (counts[data.status] || 0) + 1;
              file.write("counts.json", JSON.stringify(counts));
            }
            """])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let worker = try Worker(["-i", pod.hostInterface, "--filter", "tcp port \(pod.port)", "--scripts", dir])
        defer { _ = worker.stop() }
        Thread.sleep(forTimeInterval: 0.3)
        // python's http.server: 200 for a file, 404 for none, 501 for POST.
        for _ in 0..<4 { try pod.fetch("/hello.txt") }
        for i in 0..<3 { try pod.fetch("/missing-\(i)") }
        for _ in 0..<2 {
            _ = try TestProcess.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-X", "POST", "-d", "x",
                                                      "http://\(pod.podAddress):\(pod.port)/hello.txt"])
        }
        let countsPath = worker.dataDirectory + "/scripting/counts.json"
        func counts() -> [String: Int] {
            guard let data = FileManager.default.contents(atPath: countsPath) else { return [:] }
            return (try? JSONSerialization.jsonObject(with: data) as? [String: Int]) ?? [:]
        }
        #expect(Self.wait(15) { counts().values.reduce(0, +) >= 9 })
        Thread.sleep(forTimeInterval: 0.5)

        // tshark's count over the same packets, taken from the worker's ring.
        let pcapPath = worker.dataDirectory + "-ring.pcap"
        defer { try? FileManager.default.removeItem(atPath: pcapPath) }
        let (status, data) = try worker.get("/api/pcap")
        #expect(status == 200)
        try data.write(to: URL(fileURLWithPath: pcapPath))
        let tshark = try TestProcess.run("/usr/bin/tshark", ["-r", pcapPath, "-Y", "http.response", "-T", "fields",
                                                             "-e", "http.response.code"])
        var expected: [String: Int] = [:]
        for code in tshark.stdout.split(separator: "\n") { expected[String(code), default: 0] += 1 }
        #expect(expected == ["200": 4, "404": 3, "501": 2], "tshark: \(tshark.stdout) \(tshark.stderr)")
        #expect(counts() == expected)
    }

    @Test("the forensics example records entries and, after a forced ring flush, still archives their packets")
    func forensicsSurvivesFlush() throws {
        let file = WorkerAPITests.fixture("http1-pipelined.pcap")
        let example = TestProcess.repoRoot.appendingPathComponent("examples/scripts").path
        let worker = try Worker(["-r", file, "--scripts", example, "--script-env", "RECORDING_KFL=http",
                                 "--script-env", "RECORDING_ROTATE=@every 4s"])
        defer { _ = worker.stop() }
        let title = "Forensics: record matching traffic beyond the ring"
        #expect(Self.wait(10) { ((try? Self.scripts(worker))?[title]?["entries"] as? Int ?? 0) >= 3 })
        #expect(try Self.post(worker, "/api/ring/flush-oldest", [:]) == 200)
        let flushedAt = Date()
        let stats = try worker.json("/api/stats")
        #expect((stats["ring"] as? [String: Any])?["segments"] as? Int == 0, "the ring holds nothing any more")

        let recordings = worker.dataDirectory + "/scripting/recordings"
        func archives() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: recordings)) ?? []).filter { $0.hasSuffix(".tar.gz") }
        }
        let logs = try Self.logs(worker)
        #expect(Self.wait(10) { !archives().isEmpty }, "\(logs)")
        let archive = try #require(archives().first)
        let modified = try FileManager.default.attributesOfItem(atPath: recordings + "/" + archive)[.modificationDate] as? Date
        #expect(modified.map { $0 > flushedAt } == true, "archived after the flush, so from retained packets")

        let out = worker.dataDirectory + "-unpacked"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: out) }
        let untar = try TestProcess.run("/bin/tar", ["-xzf", recordings + "/" + archive, "-C", out])
        #expect(untar.status == 0, "\(untar.stderr)")
        let found = FileManager.default.enumerator(atPath: out)?.allObjects as? [String] ?? []
        let snapshot = try #require(found.first { $0.hasSuffix(".pcap") }, "\(found)")
        let jsonl = try #require(found.first { $0.hasSuffix("entries.jsonl") })
        let lines = try String(contentsOfFile: out + "/" + jsonl, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3)
        // The same packets as the capture (one connection): tcpdump reads both alike.
        let original = try TestProcess.run("/usr/bin/tcpdump", ["-n", "-tt", "-r", file])
        let copy = try TestProcess.run("/usr/bin/tcpdump", ["-n", "-tt", "-r", out + "/" + snapshot])
        #expect(copy.status == 0, "\(copy.stderr)")
        #expect(!original.stdout.isEmpty && copy.stdout == original.stdout)
        #expect(try Self.logs(worker).contains { ($0["message"] as? String)?.hasPrefix("recording rotated:") == true })
    }

    @Test("vendor.webhook reaches a local HTTP server with method, body and headers; the allow-list refuses others")
    func webhook() throws {
        let received = NSTemporaryDirectory() + "ks-hook-\(getpid()).txt"
        defer { try? FileManager.default.removeItem(atPath: received) }
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = ["-c", """
            import http.server, sys
            class H(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    body = self.rfile.read(int(self.headers['Content-Length']))
                    open(sys.argv[1], 'a').write(self.command + ' ' + self.path + ' ' + self.headers.get('X-Kind', '') + ' ' + body.decode() + '\\n')
                    self.send_response(202); self.end_headers(); self.wfile.write(b'noted')
                def log_message(self, *a): pass
            s = http.server.HTTPServer(('127.0.0.1', 0), H)
            print(s.server_address[1], flush=True)
            s.serve_forever()
            """, received]
        let portPipe = Pipe()
        server.standardOutput = portPipe
        try server.run()
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        let portLine = String(decoding: portPipe.fileHandleForReading.availableData, as: UTF8.self)
        let port = try #require(Int(portLine.trimmingCharacters(in: .whitespacesAndNewlines)))
        let hook = "http://127.0.0.1:\(port)/hook"
        let dir = try Self.folder(["hook.js": """
            // Webhook
            var sent = 0;
            function onItemCaptured(data) {
              if (sent++ > 0) return;
              var answer = vendor.webhook("POST", env.HOOK, JSON.stringify({id: data.id, status: data.status}), {"X-Kind": "entry"});
              console.log("webhook answered", answer.status, answer.body);
              try {
                vendor.webhook("POST", "http://127.0.0.1:1/elsewhere", "{}", {});
              } catch (e) {
                console.error("refused:", e.message);
              }
            }
            """])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let worker = try Worker(["-r", WorkerAPITests.fixture("http1-post-json.pcap"), "--scripts", dir,
                                 "--script-env", "HOOK=\(hook)", "--script-webhook-allow", "http://127.0.0.1:\(port)/"])
        defer { _ = worker.stop() }
        #expect(Self.wait(10) { (try? String(contentsOfFile: received, encoding: .utf8))?.isEmpty == false })
        let line = try String(contentsOfFile: received, encoding: .utf8)
        #expect(line.hasPrefix("POST /hook entry {\"id\":"), "\(line)")
        #expect(line.contains("\"status\":201"))
        func logged(_ text: String) -> Bool {
            ((try? Self.logs(worker)) ?? []).contains { ($0["message"] as? String)?.contains(text) == true }
        }
        #expect(Self.wait(5) { logged("webhook answered 202 noted") })
        #expect(Self.wait(5) { logged("refused: vendor.webhook: http://127.0.0.1:1/elsewhere is not in the allowed list") })
    }

    @Test("an endless loop, endless allocation and a throw are each stopped with a clear log line; capture and other scripts go on")
    func hostileScriptsAreStopped() throws {
        let pod = try TestPod(tag: "shos", subnet: 62)
        defer { pod.remove() }
        let dir = try Self.folder([
            "loop.js": "// Looper\nfunction onItemCaptured(data) { for (;;) { try { while (true) {} } catch (e) {} } }\n",
            // Arrays of one-character strings: 16 MiB within the budget. (Strings that
            // differ only at their end share Duktape's sampled hash, so filling the heap
            // with them is quadratic: slower than the budget, and stopped for that.)
            "hog.js": "// Hog\nvar keep = [];\nfunction onItemCaptured(data) { for (;;) keep.push(JSON.stringify(data).split('')); }\n",
            "throw.js": "// Thrower\nfunction onItemCaptured(data) {\n  throw new Error('no good: ' + data.status);\n}\n",
            "good.js": "// Counter\nvar n = 0;\nfunction onItemCaptured(data) { n++; file.write('good.txt', String(n)); }\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let worker = try Worker(["-i", pod.hostInterface, "--filter", "tcp port \(pod.port)", "--scripts", dir,
                                 "--script-memory-limit", "16Mi", "--script-call-budget", "300"])
        defer { _ = worker.stop() }
        Thread.sleep(forTimeInterval: 0.3)
        try pod.fetch("/hello.txt")
        func state(_ title: String) -> String? { (try? Self.scripts(worker))?[title]?["state"] as? String }
        #expect(Self.wait(15) { state("Looper") == "failed" && state("Hog") == "failed" })
        let lines = try Self.logs(worker).compactMap { l -> String? in
            guard let s = l["script"] as? String, let m = l["message"] as? String else { return nil }
            return "\(s): \(m)"
        }
        #expect(lines.contains("Looper: stopped: onItemCaptured: stopped: ran longer than its 300 ms budget (an endless loop?)"), "\(lines)")
        #expect(lines.contains("Hog: stopped: onItemCaptured: stopped: needed more than its 16 MiB memory cap"), "\(lines)")
        #expect(lines.contains { $0.hasPrefix("Thrower: onItemCaptured threw: Error: no good: 200") && $0.contains("at onItemCaptured (Thrower:3)") }, "\(lines)")
        #expect(state("Thrower") == "running", "a throw stops the call, not the script")

        // Capture and the good script go on after the failures.
        let before = try worker.json("/api/stats")
        let packetsBefore = ((before["ring"] as? [String: Any])?["packetsWritten"] as? Int) ?? -1
        for _ in 0..<3 { try pod.fetch("/hello.txt") }
        let good = worker.dataDirectory + "/scripting/good.txt"
        #expect(Self.wait(10) { (try? String(contentsOfFile: good, encoding: .utf8)) == "4" })
        let after = try worker.json("/api/stats")
        #expect((((after["ring"] as? [String: Any])?["packetsWritten"] as? Int) ?? 0) > packetsBefore)
        #expect((after["capture"] as? [String: Any])?["running"] as? Bool == true)
        #expect(try worker.get("/healthz").0 == 200)
        // A failed script can be started again by title.
        #expect(try Self.post(worker, "/api/scripts/activate", ["title": "Looper"]) == 200)
        #expect(Self.wait(5) { state("Looper") == "running" || state("Looper") == "failed" })
    }

    @Test("kubeshark scripts loads a folder into a running worker; onItemQueried redacts fetched entries; onPacketCaptured sees every packet")
    func cliQueriedAndPackets() throws {
        let pod = try TestPod(tag: "scli", subnet: 63)
        defer { pod.remove() }
        let worker = try Worker(["-i", pod.hostInterface, "--filter", "tcp port \(pod.port)"])
        defer { _ = worker.stop() }
        let dir = try Self.folder([
            "redact.js": """
                // Redact user agents
                function onItemQueried(data) {
                  if (!data.request || !data.request.headers) return;
                  for (var i = 0; i < data.request.headers.length; i++) {
                    if (data.request.headers[i].name.toLowerCase() === "user-agent") data.request.headers[i].value = "[REDACTED]";
                  }
                  return data;
                }
                """,
            "packets.js": """
                /* Packet meter */
                var packets = 0, bytes = 0;
                function onPacketCaptured(info) {
                  packets++;
                  bytes += info.length;
                  if (info.truncated || info.fragmented || info.captureLength > info.length) throw new Error("odd packet");
                }
                jobs.schedule("save", "@every 1s", function () { file.write("packets.json", JSON.stringify({packets: packets, bytes: bytes})); });
                """,
            "thrower.js": """
                // Throws on every second packet
                var n = 0;
                function onPacketCaptured(info) { n++; if (n % 2 === 0) throw new Error("even packet " + n); }
                jobs.schedule("save", "@every 1s", function () { file.write("thrower.json", JSON.stringify({packets: n})); });
                """,
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let upload = try TestProcess.run(TestProcess.kubeshark, ["scripts", "--url", worker.base, "--dir", dir])
        #expect(upload.status == 0, "\(upload.stderr)")
        #expect(upload.stderr.contains("Redact user agents (redact.js) loaded and activated"))
        func state(_ title: String) -> String? { (try? Self.scripts(worker))?[title]?["state"] as? String }
        #expect(Self.wait(5) { state("Redact user agents") == "running" && state("Packet meter") == "running" })
        Thread.sleep(forTimeInterval: 0.3)
        for _ in 0..<3 { try pod.fetch("/hello.txt") }

        // The dashboard's fetch of a full entry goes through onItemQueried.
        let messages = try worker.ws(["--query", "http", "--want", "3", "--fetch-first"])
        let full = try #require(messages.first { $0["full"] as? Bool == true }?["entry"] as? [String: Any])
        let headers = ((full["request"] as? [String: Any])?["headers"] as? [[String: Any]]) ?? []
        let agent = headers.first { ($0["name"] as? String)?.lowercased() == "user-agent" }
        #expect(agent?["value"] as? String == "[REDACTED]", "\(headers)")

        // Every packet the ring took reached onPacketCaptured.
        let ring = { ((try? worker.json("/api/stats"))?["ring"] as? [String: Any])?["packetsWritten"] as? Int ?? -1 }
        let saved = worker.dataDirectory + "/scripting/packets.json"
        func seen() -> Int {
            guard let data = FileManager.default.contents(atPath: saved),
                  let o = try? JSONSerialization.jsonObject(with: data) as? [String: Int] else { return -2 }
            return o["packets"] ?? -2
        }
        #expect(Self.wait(10) { ring() > 0 && seen() == ring() }, "script saw \(seen()), ring wrote \(ring())")
        #expect((try Self.scripts(worker))["Packet meter"]?["errors"] as? Int == 0)
        // A throw ends only that packet's call: the thrower saw every packet too, and each throw is counted.
        let thrown = worker.dataDirectory + "/scripting/thrower.json"
        func thrownSeen() -> Int {
            guard let data = FileManager.default.contents(atPath: thrown),
                  let o = try? JSONSerialization.jsonObject(with: data) as? [String: Int] else { return -2 }
            return o["packets"] ?? -2
        }
        #expect(Self.wait(10) { thrownSeen() == ring() }, "thrower saw \(thrownSeen()), ring wrote \(ring())")
        #expect((try Self.scripts(worker))["Throws on every second packet"]?["errors"] as? Int == ring() / 2)

        // Deactivate by title; the list shows it.
        let off = try TestProcess.run(TestProcess.kubeshark, ["scripts", "--url", worker.base, "--deactivate", "Packet meter", "--list"])
        #expect(off.status == 0, "\(off.stderr)")
        #expect(off.stdout.contains("Packet meter\tinactive"), "\(off.stdout)")
        let missing = try TestProcess.run(TestProcess.kubeshark, ["scripts", "--url", worker.base, "--activate", "No such"])
        #expect(missing.status != 0 && missing.stderr.contains("no script titled 'No such'"), "\(missing.stderr)")
    }

    @Test("entries reach onItemCaptured in batches: a throw on one entry loses none of the others, each entry's call has the whole budget, kfl.match on the argument agrees with a copy")
    func batchedEntries() throws {
        let dir = try Self.folder(["batch.js": """
            // Batch
            var n = 0, matched = 0, agree = 0, q = 'request.path == "/pipe/2.txt"';
            function onItemCaptured(data) {
              n++;
              var copy = JSON.parse(JSON.stringify(data));
              var own = kfl.match(q, data);
              if (own) matched++;
              if (own === kfl.match(q, copy)) agree++;
              var end = Date.now() + 200;
              while (Date.now() < end) {}
              file.write('batch.json', JSON.stringify({n: n, matched: matched, agree: agree}));
              if (own) throw new Error('not this one');
            }
            """])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Three pipelined requests, read at once: 200 ms each against a 300 ms budget.
        let worker = try Worker(["-r", WorkerAPITests.fixture("http1-pipelined.pcap"), "--scripts", dir,
                                 "--script-call-budget", "300"])
        defer { _ = worker.stop() }
        let saved = worker.dataDirectory + "/scripting/batch.json"
        func result() -> [String: Int] {
            guard let data = FileManager.default.contents(atPath: saved) else { return [:] }
            return (try? JSONSerialization.jsonObject(with: data) as? [String: Int]) ?? [:]
        }
        #expect(Self.wait(10) { result()["n"] == 3 }, "\(result())")
        #expect(result() == ["n": 3, "matched": 1, "agree": 3])
        let status = try #require(try Self.scripts(worker)["Batch"])
        #expect(status["state"] as? String == "running")
        #expect(status["errors"] as? Int == 1)
        #expect(status["entries"] as? Int == 3)
        #expect(try Self.logs(worker).contains { ($0["message"] as? String)?.hasPrefix("onItemCaptured threw: Error: not this one") == true })
    }

    @Test("a script writing without end is refused at --script-storage-limit with a clear log line while capture goes on")
    func storageLimitRefusesWriting() throws {
        let pod = try TestPod(tag: "sfil", subnet: 64)
        defer { pod.remove() }
        let dir = try Self.folder(["fill.js": """
            // Filler
            var chunk = new Array(64 * 1024 + 1).join('x');
            function onItemCaptured(data) { for (;;) file.append('fill.txt', chunk); }
            """])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let worker = try Worker(["-i", pod.hostInterface, "--filter", "tcp port \(pod.port)", "--scripts", dir,
                                 "--script-storage-limit", "1Mi"])
        defer { _ = worker.stop() }
        Thread.sleep(forTimeInterval: 0.3)
        try pod.fetch("/hello.txt")
        func lines() -> [String] {
            ((try? Self.logs(worker)) ?? []).compactMap { l in (l["message"] as? String).map { "\(l["script"] ?? ""): \($0)" } }
        }
        let refusal = "file.append: refused: the scripting directory would hold 1114112 bytes, more than its storage limit of 1Mi"
            + " (--script-storage-limit); delete files first"
        #expect(Self.wait(10) { lines().contains("Filler: " + refusal) }, "\(lines())")
        #expect(lines().contains { $0.hasPrefix("Filler: onItemCaptured threw: Error: " + refusal) }, "\(lines())")
        let filled = worker.dataDirectory + "/scripting/fill.txt"
        let size = (try FileManager.default.attributesOfItem(atPath: filled)[.size] as? Int) ?? -1
        #expect(size == 1 << 20, "16 chunks of 64 KiB, the 17th refused")

        // The script and capture go on.
        let before = try worker.json("/api/stats")
        let packetsBefore = ((before["ring"] as? [String: Any])?["packetsWritten"] as? Int) ?? -1
        for _ in 0..<3 { try pod.fetch("/hello.txt") }
        #expect(Self.wait(10) { ((try? Self.scripts(worker))?["Filler"]?["entries"] as? Int ?? 0) >= 4 })
        let after = try worker.json("/api/stats")
        #expect((((after["ring"] as? [String: Any])?["packetsWritten"] as? Int) ?? 0) > packetsBefore)
        #expect((after["capture"] as? [String: Any])?["running"] as? Bool == true)
        #expect(try Self.scripts(worker)["Filler"]?["state"] as? String == "running")
        #expect(((try? FileManager.default.attributesOfItem(atPath: filled)[.size] as? Int) ?? -1) == 1 << 20)
    }

    @Test("the forensics example keeps only its newest RECORDING_KEEP archives")
    func forensicsKeepsNewestArchives() throws {
        let pod = try TestPod(tag: "skep", subnet: 68)
        defer { pod.remove() }
        let example = TestProcess.repoRoot.appendingPathComponent("examples/scripts").path
        let worker = try Worker(["-i", pod.hostInterface, "--filter", "tcp port \(pod.port)", "--scripts", example,
                                 "--script-env", "RECORDING_KFL=http", "--script-env", "RECORDING_ROTATE=@every 1s",
                                 "--script-env", "RECORDING_KEEP=1"])
        defer { _ = worker.stop() }
        Thread.sleep(forTimeInterval: 0.3)
        let recordings = worker.dataDirectory + "/scripting/recordings"
        func archives() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: recordings)) ?? []).filter { $0.hasSuffix(".tar.gz") }
        }
        func rotations() -> [String] {
            ((try? Self.logs(worker)) ?? []).compactMap { $0["message"] as? String }.filter { $0.hasPrefix("recording rotated:") }
        }
        try pod.fetch("/hello.txt")
        #expect(Self.wait(10) { rotations().count == 1 })
        let first = archives()
        #expect(first.count == 1, "\(first)")
        try pod.fetch("/hello.txt")
        #expect(Self.wait(10) { rotations().count == 2 }, "\(rotations())")
        let second = archives()
        #expect(second.count == 1, "the older archive was deleted: \(second)")
        #expect(second != first)
    }
}
