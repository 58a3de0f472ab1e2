import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TestKit
import Testing

/// The hub holds the tap scope and sends each worker the pods of its node in
/// scope: two worker processes (`worker --pods`), each owning some of this
/// machine's network namespaces as its "node", capture exactly what the hub
/// targets; a scope change and a worker restart are followed.
@Suite("Hub scope over two workers", .serialized,
       .enabled(if: getuid() == 0, "needs root for network namespaces and capture"))
struct HubScopeTests {
    // Pod names of their own: other suites' tests (tap --dryRun) list every pod on the machine and look for theirs.
    static let shop = "kshs\(getpid() % 10000)"
    static let other = "ksho\(getpid() % 10000)"

    /// Polls the hub's `/api/pods` until `want` (sorted "worker:namespace/name") shows, or 10 s pass.
    static func waitForPods(_ hub: WorkerAPITests.RunningWorker, _ want: [String]) -> [String] {
        var seen: [String] = []
        for _ in 0..<50 {
            let (status, data) = (try? hub.get("/api/pods")) ?? (0, Data())
            let pods = status == 200 ? (try? JSONSerialization.jsonObject(with: data) as? [[String: Any]]) ?? [] : []
            seen = pods.map { "\($0["worker"] ?? ""):\($0["namespace"] ?? "")/\($0["name"] ?? "")" }.sorted()
            if seen == want { break }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return seen
    }

    static func putScope(_ hub: WorkerAPITests.RunningWorker, _ json: String) throws -> (Int, String) {
        var request = URLRequest(url: URL(string: hub.base + "/api/scope")!)
        request.httpMethod = "PUT"
        request.httpBody = Data(json.utf8)
        let (status, data) = try hub.send(request)
        return (status, String(decoding: data, as: UTF8.self))
    }

    /// The pods named by the entries' destinations, as "namespace/name", sorted.
    static func destinations(_ entries: [[String: Any]]) -> [String] {
        entries.compactMap { ($0["dst"] as? [String: Any]).map { "\($0["namespace"] ?? "")/\($0["name"] ?? "")" } }.sorted()
    }

    @Test("each worker captures the pods of its node that the hub's scope selects; a new scope moves the capture")
    func scopePushedToWorkers() throws {
        let web = try TestPod(tag: "hsw", subnet: 56, netns: "\(Self.shop).front-1")
        defer { web.remove() }
        let api = try TestPod(tag: "hsa", subnet: 57, netns: "\(Self.shop).back-0")
        defer { api.remove() }
        let db = try TestPod(tag: "hsd", subnet: 58, netns: "\(Self.other).store-0")
        defer { db.remove() }
        // Node a has front-1 and store-0; node b has back-0.
        let a = try WorkerAPITests.RunningWorker(["--pods", "--netns", "^(\(Self.shop)\\.front|\(Self.other)\\.)", "--refresh", "0.5"])
        defer { _ = a.stop() }
        let b = try WorkerAPITests.RunningWorker(["--pods", "--netns", "^\(Self.shop)\\.back", "--refresh", "0.5"])
        defer { _ = b.stop() }
        // Before a hub says anything, a worker that follows one captures nothing.
        #expect(try a.json("/api/stats")["capture"].flatMap { ($0 as? [String: Any])?["running"] as? Bool } == false)
        let node = try a.json("/api/node/pods")
        #expect(node["acceptsTargets"] as? Bool == true)
        #expect(((node["pods"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }.sorted() == ["front-1", "store-0"])

        let hub = try WorkerAPITests.RunningWorker(
            ["-n", Self.shop, "--worker", "a=\(a.base)", "--worker", "b=\(b.base)"],
            command: "hub", ready: "hub listening on", usesDataDirectory: false)
        defer { _ = hub.stop() }
        let shopPods = ["a:\(Self.shop)/front-1", "b:\(Self.shop)/back-0"].sorted()
        #expect(Self.waitForPods(hub, shopPods) == shopPods)
        #expect((try hub.json("/api/scope"))["namespaces"] as? [String] == [Self.shop])
        Thread.sleep(forTimeInterval: 0.5)
        _ = try web.fetch("/hello.txt")
        _ = try api.fetch("/hello.txt")
        _ = try db.fetch("/hello.txt")  // not in scope: never captured
        let shopEntries = WorkerAPITests.entries(try hub.ws(["--query", "http", "--want", "2", "--idle", "4"]))
        #expect(Self.destinations(shopEntries) == ["\(Self.shop)/back-0", "\(Self.shop)/front-1"], "\(shopEntries)")
        #expect(Set(shopEntries.compactMap { $0["worker"] as? String }) == ["a", "b"])

        // A bad scope is refused and changes nothing; a good one moves the capture at once.
        let (badStatus, badBody) = try Self.putScope(hub, #"{"podRegex": "db["}"#)
        #expect(badStatus == 400 && badBody.contains("not a regular expression"), "\(badStatus) \(badBody)")
        let (status, body) = try Self.putScope(hub, #"{"namespaces": ["\#(Self.other)"]}"#)
        #expect(status == 200, "\(body)")
        #expect(Self.waitForPods(hub, ["a:\(Self.other)/store-0"]) == ["a:\(Self.other)/store-0"])
        Thread.sleep(forTimeInterval: 0.5)
        _ = try db.fetch("/hello.txt?after-the-change")
        _ = try web.fetch("/hello.txt?after-the-change")  // out of scope now
        let later = WorkerAPITests.entries(try hub.ws(["--query", #"http and request.url.contains("after-the-change")"#,
                                                       "--want", "1", "--idle", "4"]))
        #expect(Self.destinations(later) == ["\(Self.other)/store-0"], "\(later)")
    }

    @Test("a worker that restarts gets its targets again; a worker with fixed interfaces refuses targets")
    func restartAndFixedWorkers() throws {
        let api = try TestPod(tag: "hsr", subnet: 59, netns: "\(Self.shop).back-1")
        defer { api.remove() }
        let port = 20000 + Int((getpid() + 7) % 20000)
        let dir = NSTemporaryDirectory() + "ks-hubscope-\(getpid())"
        let args = ["--pods", "--netns", "^\(Self.shop)\\.back-1$", "--refresh", "0.5"]
        var b = try WorkerAPITests.RunningWorker(args, portArguments: ["--port", "\(port)"], dataDirectory: dir)
        defer { _ = b.stop() }  // whichever b runs at the end
        // On lo, with a filter that keeps the hub's own API calls out of the stream.
        let fixed = try WorkerAPITests.RunningWorker(["-i", "lo", "--filter", "udp port 9"])
        defer { _ = fixed.stop() }
        let hub = try WorkerAPITests.RunningWorker(
            ["-n", Self.shop, "--worker", "b=\(b.base)", "--worker", "fixed=\(fixed.base)"],
            command: "hub", ready: "hub listening on", usesDataDirectory: false)
        defer { _ = hub.stop() }
        let want = ["b:\(Self.shop)/back-1"]
        #expect(Self.waitForPods(hub, want) == want)
        // The fixed worker is left alone, and says why when asked directly.
        var put = URLRequest(url: URL(string: fixed.base + "/api/targets")!)
        put.httpMethod = "PUT"
        put.httpBody = Data(#"{"pods": [{"name": "back-1", "namespace": "x"}]}"#.utf8)
        let (status, body) = try fixed.send(put)
        #expect(status == 409 && String(decoding: body, as: UTF8.self).contains("--pods"))
        // b restarts (nothing targeted at start); the hub notices and sends its targets again.
        _ = b.stop()
        b = try WorkerAPITests.RunningWorker(args, portArguments: ["--port", "\(port)"], dataDirectory: dir)
        #expect(Self.waitForPods(hub, want) == want)
        Thread.sleep(forTimeInterval: 0.5)
        _ = try api.fetch("/hello.txt?after-restart")
        let entries = WorkerAPITests.entries(try hub.ws(["--query", "http", "--want", "1", "--idle", "4"]))
        #expect(Self.destinations(entries) == ["\(Self.shop)/back-1"], "\(entries)")
    }

    @Test("--by-address: the worker captures the targets' addresses on 'any', and names them as the hub did")
    func byAddress() throws {
        let web = try TestPod(tag: "hba", subnet: 60, netns: "\(Self.shop).front-7")
        defer { web.remove() }
        let db = try TestPod(tag: "hbd", subnet: 61, netns: "\(Self.shop).store-7")
        defer { db.remove() }
        // As in a cluster: no network namespace is known to this worker as a pod.
        let worker = try WorkerAPITests.RunningWorker(["--pods", "--by-address", "--netns", "^none$"])
        defer { _ = worker.stop() }
        var put = URLRequest(url: URL(string: worker.base + "/api/targets")!)
        put.httpMethod = "PUT"
        put.httpBody = Data(#"{"pods": [{"name": "web-9", "namespace": "prod", "ips": ["\#(web.podAddress)"]}]}"#.utf8)
        let (status, body) = try worker.send(put)
        #expect(status == 200, "\(String(decoding: body, as: UTF8.self))")
        let pods = (try JSONSerialization.jsonObject(with: worker.get("/api/pods").1) as? [[String: Any]]) ?? []
        #expect(pods.map { "\($0["namespace"] ?? "")/\($0["name"] ?? "")" } == ["prod/web-9"])
        Thread.sleep(forTimeInterval: 0.5)
        _ = try web.fetch("/hello.txt?by-address")
        _ = try db.fetch("/hello.txt?by-address")  // another address: not captured
        let entries = WorkerAPITests.entries(try worker.ws(["--query", "http", "--want", "2", "--idle", "3"]))
        #expect(Self.destinations(entries) == ["prod/web-9"], "\(entries)")
        let stats = try worker.json("/api/stats")
        #expect((stats["capture"] as? [String: Any])?["running"] as? Bool == true)
    }
}
