import Foundation
import TestKit
import Testing

/// The web dashboard served by the worker: its static route (content types, cache
/// headers, no way out of the directory) and the page itself, driven in a real
/// headless Chromium through the DevTools protocol (dashboard_driver.py).
@Suite("Dashboard static files", .serialized)
struct DashboardStaticTests {
    /// One request with curl, sending the path exactly as written (`--path-as-is`:
    /// no `..` folding on our side). Returns the status, the headers (lowercased
    /// names) and the body.
    static func curl(_ url: String, headers: [String] = []) throws -> (Int, [String: String], String) {
        let r = try TestProcess.run("/usr/bin/curl", ["-s", "-i", "--path-as-is", "--max-time", "10"]
            + headers.flatMap { ["-H", $0] } + [url])
        let parts = r.stdout.components(separatedBy: "\r\n\r\n")
        let head = parts.first ?? ""
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.isEmpty ? "" : lines.removeFirst()
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        var fields: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (status, fields, parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    @Test("the files are served with their content types and revalidation headers")
    func contentTypes() throws {
        let worker = try WorkerAPITests.RunningWorker(["-r", WorkerAPITests.fixture("http1-pipelined.pcap")])
        defer { _ = worker.stop() }
        let expected: [(String, String)] = [
            ("/", "text/html; charset=utf-8"), ("/dashboard/", "text/html; charset=utf-8"),
            ("/dashboard/index.html", "text/html; charset=utf-8"),
            ("/dashboard/app.js", "text/javascript; charset=utf-8"),
            ("/dashboard/style.css", "text/css; charset=utf-8"), ("/dashboard/favicon.svg", "image/svg+xml"),
        ]
        for (path, type) in expected {
            let (status, headers, _) = try Self.curl(worker.base + path)
            #expect(status == 200, "\(path)")
            #expect(headers["content-type"] == type, "\(path): \(headers)")
            #expect(headers["cache-control"] == "no-cache", "\(path)")
            #expect(headers["x-content-type-options"] == "nosniff", "\(path)")
            #expect(headers["etag"] != nil, "\(path)")
        }
        // The page forbids scripts from anywhere but the worker (and inline ones).
        let (_, page, html) = try Self.curl(worker.base + "/")
        #expect(page["content-security-policy"]?.contains("default-src 'self'") == true)
        #expect(html.contains("/dashboard/app.js"))
        // The bytes shipped are the files of Sources/Worker/Dashboard.
        let (_, js, body) = try Self.curl(worker.base + "/dashboard/app.js")
        let source = try String(contentsOf: TestProcess.repoRoot.appendingPathComponent("Sources/Worker/Dashboard/app.js"),
                                encoding: .utf8)
        #expect(body == source)
        // An unchanged file is not sent again.
        let (again, _, empty) = try Self.curl(worker.base + "/dashboard/app.js", headers: ["If-None-Match: \(js["etag"] ?? "")"])
        #expect(again == 304 && empty.isEmpty)
        // /dashboard redirects to the directory.
        let (moved, where_, _) = try Self.curl(worker.base + "/dashboard")
        #expect(moved == 301 && where_["location"] == "/dashboard/")
    }

    @Test("no path reaches a file outside the dashboard directory")
    func pathTraversal() throws {
        let worker = try WorkerAPITests.RunningWorker(["-r", WorkerAPITests.fixture("http1-pipelined.pcap")])
        defer { _ = worker.stop() }
        let refused = [
            "/dashboard/../Package.swift", "/dashboard/../../Package.swift", "/dashboard/%2e%2e/Package.swift",
            "/dashboard/..%2fPackage.swift", "/dashboard/%2e%2e%2f%2e%2e%2fPackage.swift",
            "/dashboard/../../../../../../etc/passwd", "/dashboard//etc/passwd", "/dashboard/./app.js",
            "/dashboard/.hidden", "/dashboard/%00app.js", "/dashboard/..\\Package.swift", "/dashboard/nothing.js",
            "/dashboard/../API/DashboardRoutes.swift", "/dashboard/../Support.swift",
        ]
        for path in refused {
            let (status, _, body) = try Self.curl(worker.base + path)
            #expect(status == 404, "\(path) answered \(status): \(body.prefix(200))")
            #expect(!body.contains("PackageDescription") && !body.contains("root:"), "\(path)")
        }
        // The API is still there around it.
        #expect(try Self.curl(worker.base + "/healthz").0 == 200)
    }
}

/// Chromium on PATH, if installed.
private let chromiumPath = TestProcess.which("chromium")

@Suite("Dashboard in headless Chromium", .serialized,
       .enabled(if: chromiumPath != nil,
                "needs Chromium (Debian package chromium: apt-get install -y chromium); skipped"))
struct DashboardBrowserTests {
    static let chromium = chromiumPath
    static var driver: String { TestProcess.repoRoot.appendingPathComponent("Tests/WorkerTests/dashboard_driver.py").path }

    /// Runs the driver against `worker`; returns its steps by name.
    static func drive(_ worker: WorkerAPITests.RunningWorker, _ arguments: [String]) throws -> [String: [String: Any]] {
        let r = try TestProcess.run(WorkerAPITests.python, [driver, worker.base, "--chromium", chromium!] + arguments)
        var steps: [String: [String: Any]] = [:]
        for line in r.stdout.split(separator: "\n") {
            if let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let step = o["step"] as? String {
                steps[step] = o
            }
        }
        #expect(r.status == 0 && steps["failed"] == nil, "driver: \(r.stdout) \(r.stderr)")
        return steps
    }

    /// Console errors, exceptions and failed loads (every one is unexpected).
    static func unexpectedErrors(_ steps: [String: [String: Any]]) -> [[String: Any]] {
        steps["errors"]?["errors"] as? [[String: Any]] ?? [["text": "no error report"]]
    }

    @Test("entries appear, a filter narrows them, a bad one shows where, an entry opens, its pcap downloads")
    func userJourney() throws {
        let file = WorkerAPITests.fixture("http1-head-204-304.pcap")
        let worker = try WorkerAPITests.RunningWorker(["-r", file])
        defer { _ = worker.stop() }
        let pcap = worker.dataDirectory + "-download.pcap"
        defer { try? FileManager.default.removeItem(atPath: pcap) }
        let steps = try Self.drive(worker, [
            "--expect-count", "3", "--filter", "response.status == 204", "--filter-count", "1",
            "--bad-filter", "response.status == ", "--pcap-out", pcap, "--pause-query", "http",
        ])

        let load = try #require(steps["load"])
        #expect(load["count"] as? Int == 3)
        let rows = (load["rows"] as? [[String]]) ?? []
        #expect(rows.count == 3)
        #expect(rows.allSatisfy { $0.first == "HTTP" }, "protocol badges: \(rows)")
        #expect(rows.contains { $0.contains("/no-content") && $0.contains("204") && $0.contains("GET") }, "\(rows)")
        #expect(rows.contains { $0.contains("/static/page.txt") && $0.contains("304") }, "\(rows)")
        #expect(rows.allSatisfy { $0.contains("10.231.0.1:80") }, "destination ip:port: \(rows)")
        #expect(load["conn"] as? String == "live")
        // Statistics from /api/stats: every packet of the file received, none dropped.
        let stats = (load["stats"] as? [String: String]) ?? [:]
        #expect(stats["received"] == String(try WorkerAPITests.tcpdumpCount(file)), "\(stats)")
        #expect(stats["dropped by kernel"] == "0" && stats["dropped by us"] == "0", "\(stats)")
        #expect(stats["capture"] == "pcap-file (stopped)" && stats["segments"] == "1", "\(stats)")
        #expect((load["ring"] as? String)?.hasSuffix("of 500.0 MiB") == true, "\(load["ring"] ?? "")")
        // A worker serving a file targets no pods (/api/pods is empty), and the panel says so.
        #expect((load["pods"] as? String)?.contains("No targeted pods (/api/pods)") == true, "\(load["pods"] ?? "")")

        let filter = try #require(steps["filter"])
        #expect(filter["focused"] as? String == "filter", "/ focuses the filter")
        #expect(filter["count"] as? Int == 1)
        let narrowed = (filter["rows"] as? [[String]]) ?? []
        #expect(narrowed.count == 1 && narrowed.first?.contains("/no-content") == true, "\(narrowed)")
        #expect((filter["url"] as? String)?.contains("?q=response.status") == true, "the query is kept in the URL")

        let bad = try #require(steps["bad-filter"])
        #expect((bad["error"] as? String)?.contains("bad query") == true, "\(bad)")
        #expect(bad["position"] as? String == "19")
        #expect(bad["invalid"] as? String == "true")
        #expect(bad["count"] as? Int == 1, "a refused query keeps the list it had")
        #expect(bad["url"] as? String == filter["url"] as? String, "and the URL of the query still shown")

        let detail = try #require(steps["detail"])
        #expect(detail["opened"] as? Bool == true, "\(detail)")
        let headers = (detail["requestHeaders"] as? [[String]]) ?? []
        #expect(headers.contains(["Host", "10.231.0.1"]), "request headers: \(headers)")
        #expect(headers.contains { $0.first == "User-Agent" })
        #expect(detail["responseStatus"] as? String == "204")
        #expect((detail["pcap"] as? String)?.hasSuffix("/pcap") == true)

        let download = try #require(steps["pcap"])
        #expect(download["downloaded"] as? String != nil, "\(download)")
        #expect(FileManager.default.fileExists(atPath: pcap))
        if FileManager.default.fileExists(atPath: pcap) {
            // One connection holds every packet of the capture.
            #expect(try WorkerAPITests.tcpdumpCount(pcap) == (try WorkerAPITests.tcpdumpCount(file)))
        }
        #expect(steps["close"]?["hidden"] as? Bool == true, "Esc closes the detail")

        // Paused, a new query's entries wait (counted on the button); resumed, they show.
        let pause = try #require(steps["pause"])
        #expect(pause["conn"] as? String == "paused (live)")
        let whilePaused = (pause["whilePaused"] as? [String: Any]) ?? [:]
        #expect(whilePaused["count"] as? Int == 0 && whilePaused["button"] as? String == "Resume (3 new)", "\(whilePaused)")
        #expect(pause["count"] as? Int == 3 && pause["button"] as? String == "Pause")
        #expect(pause["active"] as? String == "row-1", "g then j selects the second row")
        #expect(Self.unexpectedErrors(steps).isEmpty, "\(Self.unexpectedErrors(steps))")
    }

    @Test("the Scripts panel lists the scripts, a failed one with its reason, and their log lines")
    func scriptsPanel() throws {
        let dir = try ScriptTests.folder([
            "hello.js": "// Greeter\nfunction onItemCaptured(data) { console.log('saw', data.method, data.summary); }\n",
            "loop.js": "// Looper\nfunction onItemCaptured(data) { for (;;) {} }\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let worker = try WorkerAPITests.RunningWorker(["-r", WorkerAPITests.fixture("http1-post-json.pcap"), "--scripts", dir,
                                                       "--script-call-budget", "200"])
        defer { _ = worker.stop() }
        let steps = try Self.drive(worker, ["--expect-count", "1", "--scripts-log", "Looper] stopped"])
        let panel = try #require(steps["scripts"])
        #expect(panel["hidden"] as? Bool == false)
        let log = panel["log"] as? String ?? ""
        #expect(log.contains("[Greeter] saw POST /api/items"), "\(log)")
        #expect(log.contains("[Looper] stopped: onItemCaptured: stopped: ran longer than its 200 ms budget"), "\(log)")
        let table = panel["table"] as? String ?? ""
        #expect(table.contains("Greeterrunning") && table.contains("Looperfailed"), "\(table)")
        #expect(Self.unexpectedErrors(steps).isEmpty, "\(Self.unexpectedErrors(steps))")
    }

    @Test("a script loaded from the Scripts panel's form runs; its button deactivates it; all by keyboard")
    func scriptsFromTheDashboard() throws {
        let worker = try WorkerAPITests.RunningWorker(["-r", WorkerAPITests.fixture("http1-post-json.pcap")])
        defer { _ = worker.stop() }
        let code = "// Typed in\nfunction onItemCaptured(data) { console.log('typed saw', data.method); }\n"
        let steps = try Self.drive(worker, ["--expect-count", "1", "--script-load", code])
        let ui = try #require(steps["script-ui"])
        #expect(ui["loaded"] as? Bool == true && ui["deactivated"] as? Bool == true, "\(ui)")
        #expect(ui["textarea"] as? String == "", "the form is cleared once loaded")
        #expect(ui["focused"] as? String == "Activate Typed in", "the focus stays on the row's button across redraws: \(ui)")
        #expect(ui["error"] as? String == "")
        // The worker has it, as typed, deactivated, and it ran while active.
        let script = try #require(ScriptTests.scripts(worker)["Typed in"])
        #expect(script["code"] as? String == code && script["active"] as? Bool == false)
        #expect(try ScriptTests.logs(worker).contains { $0["message"] as? String == "typed saw POST" })
        #expect(Self.unexpectedErrors(steps).isEmpty, "\(Self.unexpectedErrors(steps))")
        // A page of another origin cannot load one: the API takes JSON only (the browser would ask first).
        let plain = try TestProcess.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: text/plain",
                                                          "--data", #"{"code":"// x\nvar a;"}"#, worker.base + "/api/scripts"])
        #expect(plain.stdout == "415")
    }

    @Test("a DNS entry (not HTTP-shaped) opens as a generic table of its fields")
    func nonHTTPEntry() throws {
        let worker = try WorkerAPITests.RunningWorker(["-r", TestProcess.repoRoot
            .appendingPathComponent("Tests/Fixtures/dns/dns-udp.pcap").path])
        defer { _ = worker.stop() }
        let steps = try Self.drive(worker, ["--expect-count", "1"])
        let rows = (steps["load"]?["rows"] as? [[String]]) ?? []
        #expect(rows.first?.first == "DNS", "\(rows)")
        let detail = try #require(steps["detail"])
        #expect(detail["opened"] as? Bool == true)
        #expect((detail["title"] as? String)?.contains("web.test") == true, "\(detail)")
        let sides = (detail["sides"] as? [String]) ?? []
        #expect(sides.count == 2 && sides.allSatisfy { $0.contains("questions") && $0.contains("web.test") }, "\(sides)")
        #expect(sides.last?.contains("answers") == true)
        #expect(Self.unexpectedErrors(steps).isEmpty, "\(Self.unexpectedErrors(steps))")
    }

    @Test("a client the worker drops as too slow shows the reason and reconnects, waiting longer each time")
    func slowClientReconnects() throws {
        let worker = try WorkerAPITests.RunningWorker(["-r", WorkerAPITests.fixture("http1-pipelined.pcap"),
                                                       "--client-queue-limit", "100"])
        defer { _ = worker.stop() }
        let steps = try Self.drive(worker, ["--expect-count", "0", "--watch-conn", "5"])
        let states = (steps["conn"]?["states"] as? [String]) ?? []
        let closed = states.filter { $0.hasPrefix("closed: client too slow") }
        #expect(closed.count >= 2, "\(states)")
        #expect(closed.first?.hasSuffix("reconnecting in 1s") == true, "\(states)")
        #expect(closed.contains { $0.hasSuffix("reconnecting in 2s") }, "the wait grows: \(states)")
        #expect(Self.unexpectedErrors(steps).isEmpty, "\(Self.unexpectedErrors(steps))")
    }

    @Test("markup captured in traffic is shown as text, never made into elements")
    func capturedMarkupIsText() throws {
        // The fixture's request with its User-Agent (curl/kstest) replaced by markup of
        // the same length (the dissector does not verify checksums).
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: WorkerAPITests.fixture("http1-post-json.pcap"))))
        let from = Array("curl/kstest".utf8), to = Array("<img src=x>".utf8)
        var replaced = 0
        var i = 0
        while i + from.count <= bytes.count {
            if Array(bytes[i..<i + from.count]) == from {
                bytes.replaceSubrange(i..<i + from.count, with: to)
                replaced += 1
            }
            i += 1
        }
        #expect(replaced == 1)
        let file = NSTemporaryDirectory() + "ks-markup-\(getpid()).pcap"
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let worker = try WorkerAPITests.RunningWorker(["-r", file])
        defer { _ = worker.stop() }
        let steps = try Self.drive(worker, ["--expect-count", "1"])
        let detail = try #require(steps["detail"])
        let headers = (detail["requestHeaders"] as? [[String]]) ?? []
        #expect(headers.contains(["User-Agent", "<img src=x>"]), "\(headers)")
        #expect(detail["elements"] as? Int == 0, "no element made from captured text")
        #expect(Self.unexpectedErrors(steps).isEmpty, "\(Self.unexpectedErrors(steps))")
    }
}
