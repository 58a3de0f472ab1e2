import Foundation
import TestKit
import Testing

/// `kubeshark tap` on this machine: network namespaces as pods, scoped like
/// Kubeshark, captured live, entries naming the pods, and pods that appear
/// after the tap started picked up.
@Suite("kubeshark tap", .serialized,
       .enabled(if: getuid() == 0, "needs root for network namespaces and capture"))
struct TapTests {
    static let shopNamespace = "kstap\(getpid() % 10000)"

    @Test("--dryRun prints the targeted pods per namespace, scoped by regex, -n and -e")
    func dryRun() throws {
        let web = try TestPod(tag: "tpw", subnet: 51, netns: "\(Self.shopNamespace).web-1")
        defer { web.remove() }
        let db = try TestPod(tag: "tpd", subnet: 52, netns: "\(Self.shopNamespace).db-0")
        defer { db.remove() }
        func run(_ args: [String]) throws -> String {
            let r = try TestProcess.run(TestProcess.kubeshark, ["tap", "--dryRun"] + args)
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout
        }
        let all = try run(["-n", Self.shopNamespace])
        #expect(all.contains("targeted pods: 2 of"))
        #expect(all.contains("\(Self.shopNamespace):") && all.contains("web-1") && all.contains("db-0"))
        #expect(all.contains("ips=\(web.podAddress)") && all.contains("interfaces=\(web.hostInterface)"))
        let onlyWeb = try run(["^web", "-n", Self.shopNamespace])
        #expect(onlyWeb.contains("web-1") && !onlyWeb.contains("db-0"))
        let excluded = try run(["-e", Self.shopNamespace])
        #expect(!excluded.contains("web-1") && !excluded.contains("db-0"))
        let bad = try TestProcess.run(TestProcess.kubeshark, ["tap", "--dryRun", "web["])
        #expect(bad.status != 0 && bad.stderr.contains("not a regular expression"))
    }

    @Test("live entries name the pods; a pod created after the tap started is picked up",
          arguments: ["af_packet", "af_xdp"])
    func liveTap(backend: String) throws {
        let web = try TestPod(tag: "tlw", subnet: 53, netns: "\(Self.shopNamespace).web-1")
        defer { web.remove() }
        let worker = try WorkerAPITests.RunningWorker(
            ["-n", Self.shopNamespace, "--capture", backend, "--refresh", "0.5"], command: "tap",
            portArguments: ["--proxy-front-port", "0"], ready: "tap: dashboard at ")
        defer { _ = worker.stop() }
        Thread.sleep(forTimeInterval: 0.5)
        #expect(try web.fetch("/hello.txt") == "hello from the pod\n")
        // A second pod appears while the tap runs.
        let api = try TestPod(tag: "tla", subnet: 54, netns: "\(Self.shopNamespace).api-0")
        defer { api.remove() }
        var picked = false
        for _ in 0..<40 where !picked {
            Thread.sleep(forTimeInterval: 0.25)
            let pods = (try? JSONSerialization.jsonObject(with: worker.get("/api/pods").1) as? [[String: Any]]) ?? []
            picked = pods.contains { $0["name"] as? String == "api-0" }
        }
        #expect(picked, "the new pod is targeted")
        Thread.sleep(forTimeInterval: 0.5)
        _ = try api.fetch("/from-the-new-pod")
        let messages = try worker.ws(["--query", "http", "--want", "2", "--idle", "6"])
        let entries = WorkerAPITests.entries(messages)
        let pods = entries.compactMap { ($0["dst"] as? [String: Any]).map { "\($0["namespace"] ?? "")/\($0["name"] ?? "")" } }
        #expect(pods.sorted() == ["\(Self.shopNamespace)/api-0", "\(Self.shopNamespace)/web-1"], "\(entries)")
    }

    @Test("TLS: a pod's HTTPS traffic (HTTP/1.1 and HTTP/2) appears decrypted, with tls:true, the process and the pod's name",
          .enabled(if: TestProcess.which("nginx") != nil && TestProcess.which("openssl") != nil, "needs nginx and openssl"))
    func tlsEntries() throws {
        let web = try TLSServerPod(tag: "tlt", subnet: 75, netns: "\(Self.shopNamespace).secure-0")
        defer { web.remove() }
        let worker = try WorkerAPITests.RunningWorker(
            ["-n", Self.shopNamespace, "--refresh", "0.5"], command: "tap",
            portArguments: ["--proxy-front-port", "0"], ready: "tap: dashboard at ")
        defer { _ = worker.stop() }
        #expect(web.curl(["--http1.1", "/hello.txt"]) == 200)
        #expect(web.curl(["--http2", "/api/orders"]) == 201)
        let messages = try worker.ws(["--query", "http or http2", "--want", "2", "--idle", "6"])
        let entries = WorkerAPITests.entries(messages)
        let seen = entries.map { "\($0["method"] ?? "-") \($0["summary"] ?? "-") \($0["status"] ?? "-")" }.sorted()
        #expect(seen == ["GET /api/orders 201", "GET /hello.txt 200"], "\(entries)")
        for e in entries {
            #expect(e["tls"] as? Bool == true && e["process"] as? String == "nginx", "\(e)")
            let dst = e["dst"] as? [String: Any]
            #expect(dst?["name"] as? String == "secure-0" && dst?["namespace"] as? String == Self.shopNamespace, "\(e)")
        }
        // In the dashboard: a lock on both rows, and the detail says where the plaintext came from.
        guard TestProcess.which("chromium") != nil else { return }
        let steps = try DashboardBrowserTests.drive(worker, ["--expect-count", "2"])
        let rows = (steps["load"]?["rows"] as? [[String]]) ?? []
        #expect(rows.count == 2 && rows.allSatisfy { $0.first?.hasSuffix("🔒") == true }, "\(rows)")
        let detail = try #require(steps["detail"])
        #expect(detail["tls"] as? String == "🔒 TLS", "\(detail)")
        let meta = (detail["meta"] as? [[String]]) ?? []
        #expect(meta.contains { $0.first == "TLS" && $0.last?.hasPrefix("decrypted in nginx (pid ") == true }, "\(meta)")
        #expect(detail["elements"] as? Int == 0)
    }

    @Test("in the browser: pod names in the list, the body in the detail, a captured <script> shown as text, the pcap",
          .enabled(if: TestProcess.which("chromium") != nil, "needs Chromium (Debian package chromium)"))
    func dashboardOnLivePods() throws {
        let web = try TestPod(tag: "tbw", subnet: 55, netns: "\(Self.shopNamespace).web-1")
        defer { web.remove() }
        let tap = try WorkerAPITests.RunningWorker(
            ["-n", Self.shopNamespace], command: "tap", portArguments: ["--proxy-front-port", "0"], ready: "tap: dashboard at ")
        defer { _ = tap.stop() }
        Thread.sleep(forTimeInterval: 0.5)
        // A hostile header first (the entry the driver opens), then a plain request.
        let evil = try TestProcess.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-H", "X-Evil: <script>window.pwned=1</script><img src=x>",
                                                         "http://\(web.podAddress):\(web.port)/hello.txt"])
        #expect(evil.status == 0)
        Thread.sleep(forTimeInterval: 0.3)
        _ = try web.fetch("/hello.txt")
        let pcap = tap.dataDirectory + "-browser.pcap"
        defer { try? FileManager.default.removeItem(atPath: pcap) }
        let steps = try DashboardBrowserTests.drive(tap, ["--expect-count", "2", "--pcap-out", pcap])
        let rows = (steps["load"]?["rows"] as? [[String]]) ?? []
        #expect(rows.count == 2)
        #expect(rows.allSatisfy { $0.contains { $0 == "\(Self.shopNamespace)/web-1" } }, "destination names the pod: \(rows)")
        let detail = try #require(steps["detail"])
        let headers = (detail["requestHeaders"] as? [[String]]) ?? []
        #expect(headers.contains { $0.first?.lowercased() == "x-evil" && $0.last == "<script>window.pwned=1</script><img src=x>" },
                "the header is shown as text: \(headers)")
        #expect(detail["elements"] as? Int == 0, "no element was created from captured text")
        #expect(((detail["body"] as? [String]) ?? []).contains { $0.contains("hello from the pod") })
        #expect(try WorkerAPITests.tcpdumpCount(pcap) >= 6, "the stream's pcap opens with tcpdump")
        let consoleErrors = (steps["errors"]?["errors"] as? [Any]) ?? ["no error report"]
        #expect(consoleErrors.isEmpty, "no console errors")
    }
}

