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
}
