import Foundation
import Kube
import Testing

/// Collects a stream's events in the background for a test to look at.
actor Collected<Event: Sendable> {
    private(set) var events: [Event] = []
    private(set) var error: (any Error)?
    private(set) var finished = false
    func add(_ e: Event) { events.append(e) }
    func end(_ e: (any Error)?) { error = e; finished = true }

    static func start(_ stream: AsyncThrowingStream<Event, any Error>) -> (Collected, Task<Void, Never>) {
        let c = Collected()
        let task = Task {
            do {
                for try await e in stream { await c.add(e) }
                await c.end(nil)
            } catch { await c.end(error) }
        }
        return (c, task)
    }
}

func describe(_ e: WatchEvent<Pod>) -> String {
    switch e {
    case .added(let p): "ADDED \(p.name)"
    case .modified(let p): "MODIFIED \(p.name) \(p.phase ?? "")"
    case .deleted(let p): "DELETED \(p.name)"
    case .bookmark: "BOOKMARK"
    }
}

func describe(_ e: PodEvent) -> String {
    switch e {
    case .listed(let pods, _): "LISTED " + pods.map(\.name).joined(separator: ",")
    case .added(let p): "ADDED \(p.name)"
    case .modified(let p): "MODIFIED \(p.name) \(p.phase ?? "")"
    case .deleted(let p): "DELETED \(p.name)"
    case .bookmark: "BOOKMARK"
    }
}

@Suite("Watches, resumes and 410 Gone against the test API server")
struct WatchTests {
    @Test func watchDeliversEventsAndBookmarks() async throws {
        let server = try TestAPIServer()
        try server.putPod("a")
        try await withClient(server.config()) { client in
            let list = try await client.listPods()
            let (got, task) = Collected.start(client.watchPods(resourceVersion: list.resourceVersion, timeoutSeconds: 30))
            defer { task.cancel() }
            // Bookmarks go to the watches open when asked for: wait for this one.
            #expect(await eventually { ((try? server.stats())?["watches"] as? [Any])?.count == 1 })
            try server.putPod("b")
            try server.putPod("a", phase: "Failed")
            try server.deletePod("b")
            try server.control("POST", "/bookmark")
            #expect(await eventually { await got.events.count >= 4 })
            let events = await got.events
            #expect(events.map(describe) == ["ADDED b", "MODIFIED a Failed", "DELETED b", "BOOKMARK"])
            guard case .bookmark(let rv) = events.last else { return }
            #expect(Int(rv) ?? 0 >= Int(list.resourceVersion)! + 3)
        }
        let watches = try server.stats()["watches"] as? [[String: Any]] ?? []
        #expect(watches.first?["allowWatchBookmarks"] as? String == "true")
    }

    @Test func goneIsAnErrorBothWays() async throws {
        let server = try TestAPIServer()
        try server.putPod("a")
        try await withClient(server.config()) { client in
            let rv = try await client.listPods().resourceVersion
            try server.putPod("b")
            try server.control("POST", "/compact")
            for mode in ["event", "http"] {
                try server.control("POST", "/config", ["goneMode": mode])
                let (got, _) = Collected.start(client.watchPods(resourceVersion: rv, timeoutSeconds: 30))
                #expect(await eventually { await got.finished })
                let raw = await got.error
                let error = raw as? KubeAPIError
                #expect(error?.isGone == true, "\(mode): \(String(describing: raw))")
                #expect(error?.message.contains("too old resource version") == true)
            }
        }
    }

    @Test func podEventsResumeAfterADropAndRelistAfterGone() async throws {
        let server = try TestAPIServer()
        try server.putPod("a")
        try await withClient(server.config()) { client in
            let options = PodEventOptions(watchTimeoutSeconds: 30, retryDelay: .milliseconds(100))
            let (got, task) = Collected.start(client.podEvents(options: options))
            defer { task.cancel() }
            #expect(await eventually { await got.events.count >= 1 })
            try server.putPod("b")
            #expect(await eventually { await got.events.count >= 2 })
            let afterB = (try server.stats()["rv"] as? Int) ?? 0

            // The connection breaks: the next watch starts from the last resourceVersion seen.
            try server.control("POST", "/drop")
            #expect(await eventually { (try? server.stats()["watches"] as? [Any])??.count == 2 })
            let watches = try server.stats()["watches"] as? [[String: Any]] ?? []
            #expect(watches.last?["resourceVersion"] as? String == String(afterB))
            try server.putPod("c")
            #expect(await eventually { await got.events.count >= 3 })

            // History compacted while watching: ERROR 410, then a fresh list and a watch from it.
            try server.deletePod("a")
            #expect(await eventually { await got.events.count >= 4 })
            try server.control("POST", "/expire")
            #expect(await eventually { await got.events.count >= 5 })
            try server.putPod("d")
            #expect(await eventually { await got.events.contains { describe($0) == "ADDED d" } })
            let names = await got.events.map(describe)
            #expect(names == ["LISTED a", "ADDED b", "ADDED c", "DELETED a", "LISTED b,c", "ADDED d"])
            #expect(await got.error == nil)
        }
        let lists = try server.stats()["lists"] as? [Any] ?? []
        #expect(lists.count == 2)
    }

    @Test func aSilentWatchIsTakenUpAgainAfterTheIdleTimeout() async throws {
        let server = try TestAPIServer()
        try server.putPod("a")
        let client = try KubeClient(config: server.config(), watchIdleTimeout: .milliseconds(800))
        let (got, task) = Collected.start(client.podEvents(options: PodEventOptions(watchTimeoutSeconds: 60, retryDelay: .milliseconds(50))))
        // Nothing changes: each watch goes silent, fails after 0.8 s and is opened again from the same resourceVersion.
        #expect(await eventually { ((try? server.stats())?["watches"] as? [Any])?.count ?? 0 >= 3 })
        let watches = try server.stats()["watches"] as? [[String: Any]] ?? []
        #expect(Set(watches.map { $0["resourceVersion"] as? String ?? "" }).count == 1)
        try server.putPod("b")
        #expect(await eventually { await got.events.map(describe) == ["LISTED a", "ADDED b"] })
        #expect((try server.stats()["lists"] as? [Any])?.count == 1)
        task.cancel()
        await client.shutdown()
    }

    @Test func badWatchLinesEndTheWatchWithAClearError() async throws {
        let server = try TestAPIServer()
        let client = try KubeClient(config: server.config(), maxWatchEventBytes: 1000)
        // Not an event: the sequence ends with the line quoted, and podEvents does not retry it.
        let (events, eventsTask) = Collected.start(client.podEvents(options: PodEventOptions(retryDelay: .milliseconds(50))))
        #expect(await eventually { ((try? server.stats())?["watches"] as? [Any])?.count == 1 })
        try server.control("POST", "/inject", ["text": "this is not json\n"])
        #expect(await eventually { await events.finished })
        #expect("\(await events.error.map { "\($0)" } ?? "none")" == "watch sent a line that is not an event: this is not json")
        #expect(((try server.stats())["watches"] as? [Any])?.count == 1)
        eventsTask.cancel()
        // A line longer than the bound (no newline in 5000 bytes): refused before it grows further.
        let (long, longTask) = Collected.start(client.watchPods(resourceVersion: nil, timeoutSeconds: 30))
        #expect(await eventually { ((try? server.stats())?["watches"] as? [Any])?.count == 2 })
        try server.control("POST", "/inject", ["text": "x", "repeat": 5000])
        #expect(await eventually { await long.finished })
        #expect("\(await long.error.map { "\($0)" } ?? "none")" == "watch event longer than 1000 bytes")
        longTask.cancel()
        await client.shutdown()
    }

    @Test func serverErrorsAreRetried() async throws {
        let server = try TestAPIServer()
        try server.putPod("a")
        try server.control("POST", "/config", ["failLists": 2])
        try await withClient(server.config()) { client in
            // A single request reports the 500 as it came.
            await #expect(throws: KubeAPIError(code: 500, reason: "InternalError", message: "Internal error occurred: etcdserver: leader changed",
                                               status: Status(status: "Failure", message: "Internal error occurred: etcdserver: leader changed",
                                                              reason: "InternalError", code: 500))) {
                try await client.listPods()
            }
            // The event loop waits and lists again.
            let (got, task) = Collected.start(client.podEvents(options: PodEventOptions(retryDelay: .milliseconds(50))))
            defer { task.cancel() }
            #expect(await eventually { await got.events.map(describe) == ["LISTED a"] })
        }
        #expect((try server.stats()["lists"] as? [Any])?.count == 3)
    }

    @Test func podEventsStopOnForbidden() async throws {
        let server = try TestAPIServer()
        try server.control("POST", "/config", ["forbid": ["pods"]])
        try await withClient(server.config()) { client in
            let (got, _) = Collected.start(client.podEvents(options: PodEventOptions(retryDelay: .milliseconds(50))))
            #expect(await eventually { await got.finished })
            #expect((await got.error as? KubeAPIError)?.code == 403)
        }
    }

    @Test func podCacheConvergesToTheServer() async throws {
        let server = try TestAPIServer()
        for i in 0..<5 { try server.putPod("p\(i)", namespace: i % 2 == 0 ? "a" : "b", ip: "10.0.1.\(i)") }
        try await withClient(server.config()) { client in
            let cache = PodCache(client: client, options: PodEventOptions(watchTimeoutSeconds: 2, retryDelay: .milliseconds(100)))
            await cache.start()
            #expect(await eventually { await cache.isSynced })
            let updates = await cache.updates()
            #expect(await cache.pods.map(\.name) == ["p0", "p2", "p4", "p1", "p3"])
            try server.putPod("p5", namespace: "a")
            try server.putPod("p0", namespace: "a", phase: "Succeeded")
            try server.deletePod("p3", namespace: "b")
            // Past a server-side watch timeout (2 s) and a relist, it still follows.
            try await Task.sleep(for: .milliseconds(2500))
            try server.control("POST", "/expire")
            try server.deletePod("p1", namespace: "b")
            func serverPods() async throws -> [String] {
                try await client.listPods().items.map { "\($0.namespace)/\($0.name)/\($0.phase ?? "")" }
            }
            #expect(await eventually {
                let mine = await cache.pods.map { "\($0.namespace)/\($0.name)/\($0.phase ?? "")" }
                return (try? await serverPods()) == mine
            })
            #expect(try await serverPods() == ["a/p0/Succeeded", "a/p2/Running", "a/p4/Running", "a/p5/Running"])
            #expect(await cache.lists == 2)
            var seen: [Pod]?
            for await snapshot in updates { seen = snapshot; if snapshot.count == 4 { break } }
            #expect(seen?.count == 4)
            await cache.stop()
        }
    }
}
