import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TestKit
import Testing

/// Scripts through a hub (docs/scripting.md, "Scripts on a hub and in a
/// cluster"): `kubeshark scripts --url HUB --dir D --watch` puts a folder's
/// scripts on every worker, including one that joins later, follows the
/// folder's edits and deletions, gathers the workers' logs, and leaves a
/// worker's own scripts alone.
@Suite("Scripts through a hub", .serialized)
struct HubScriptTests {
    typealias Worker = WorkerAPITests.RunningWorker

    static func scripts(_ service: Worker) -> [String: [String: Any]] {
        guard let (status, data) = try? service.get("/api/scripts"), status == 200,
              let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]]
        else { return [:] }
        return Dictionary(list.map { ($0["title"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
    }

    static func logs(_ service: Worker) -> [[String: Any]] {
        guard let (_, data) = try? service.get("/api/scripts/logs") else { return [] }
        return (try? JSONSerialization.jsonObject(with: data) as? [[String: Any]]) ?? []
    }

    @Test("a watched folder's scripts run on every worker, follow its edits and deletions, and log through the hub")
    func watchedFolderThroughHub() throws {
        let fileA = WorkerAPITests.fixture("http1-pipelined.pcap")
        let fileB = WorkerAPITests.fixture("http1-get-query.pcap")
        let a = try Worker(["-r", fileA])
        defer { _ = a.stop() }
        let b = try Worker(["-r", fileB])
        defer { _ = b.stop() }
        // A worker's own script: the hub must leave it alone.
        #expect(try ScriptTests.post(b, "/api/scripts", ["title": "Local only", "code": "// Local only\nvar x = 1;"]) == 200)
        let hub = try HubTests.hub([a, b])
        defer { _ = hub.stop() }

        let counter = { (version: String) in """
            // Counter
            var n = 0;
            console.log("\(version) loaded");
            function onItemCaptured(data) { n++; }
            """ }
        let dir = try ScriptTests.folder(["counter.js": counter("v1")])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let watcher = Process()
        watcher.executableURL = URL(fileURLWithPath: TestProcess.kubeshark)
        watcher.arguments = ["scripts", "--url", hub.base, "--dir", dir, "--watch"]
        let watcherLog = hub.dataDirectory + "-watch.log"
        FileManager.default.createFile(atPath: watcherLog, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: watcherLog) }
        watcher.standardError = FileHandle(forWritingAtPath: watcherLog)
        watcher.standardOutput = FileHandle.nullDevice
        try watcher.run()
        defer {
            kill(watcher.processIdentifier, SIGKILL)
            watcher.waitUntilExit()
        }
        func watchLog() -> String { (try? String(contentsOfFile: watcherLog, encoding: .utf8)) ?? "" }

        // Both workers run it and see their own traffic; the hub sums them.
        let expected = try WorkerAPITests.offline(fileA, filter: "http").count + (try WorkerAPITests.offline(fileB, filter: "http").count)
        #expect(ScriptTests.wait(20) {
            let s = Self.scripts(hub)["Counter"]
            return s?["state"] as? String == "running" && (s?["workers"] as? [Any])?.count == 2
                && s?["entries"] as? Int == expected
        }, "hub: \(Self.scripts(hub)["Counter"] ?? [:]) watcher: \(watchLog()) hub log: \(hub.log)")
        #expect(Self.scripts(hub)["Counter"]?["managed"] as? Bool == true)
        #expect(Self.scripts(hub)["Local only"]?["managed"] as? Bool == false, "a worker's own script is listed, not managed")
        #expect(ScriptTests.wait(5) {
            Set(Self.logs(hub).filter { $0["message"] as? String == "v1 loaded" }.compactMap { $0["worker"] as? String }) == ["a", "b"]
        }, "\(Self.logs(hub))")

        // An edit reaches every worker.
        try counter("v2").write(toFile: dir + "/counter.js", atomically: true, encoding: .utf8)
        #expect(ScriptTests.wait(10) {
            [a, b].allSatisfy { (Self.scripts($0)["Counter"]?["code"] as? String)?.contains("v2 loaded") == true }
        }, "\(watchLog())")
        #expect(ScriptTests.wait(5) {
            Self.logs(hub).filter { $0["message"] as? String == "v2 loaded" }.count == 2
        })

        // A worker that joins later gets the hub's scripts.
        let c = try Worker(["-r", fileB])
        defer { _ = c.stop() }
        var join = URLRequest(url: URL(string: hub.base + "/api/workers")!)
        join.httpMethod = "POST"
        join.httpBody = Data(#"{"name":"c","url":"\#(c.base)"}"#.utf8)
        #expect(try hub.send(join).0 == 200)
        #expect(ScriptTests.wait(10) { Self.scripts(c)["Counter"]?["state"] as? String == "running" })

        // Deactivated through the hub: every worker stops it.
        let off = try TestProcess.run(TestProcess.kubeshark, ["scripts", "--url", hub.base, "--deactivate", "Counter"])
        #expect(off.status == 0, "\(off.stderr)")
        #expect([a, b, c].allSatisfy { Self.scripts($0)["Counter"]?["active"] as? Bool == false })

        // The file goes: the script goes from every worker; the worker's own stays.
        try FileManager.default.removeItem(atPath: dir + "/counter.js")
        #expect(ScriptTests.wait(10) { [a, b, c].allSatisfy { Self.scripts($0)["Counter"] == nil } }, "\(watchLog())")
        #expect(Self.scripts(b)["Local only"] != nil)
        #expect(watchLog().contains("Counter removed"))
    }

    @Test("the hub refuses changes to scripts it does not hold, with a clear message")
    func unknownTitle() throws {
        let a = try Worker(["-r", WorkerAPITests.fixture("http1-get-query.pcap")])
        defer { _ = a.stop() }
        let hub = try HubTests.hub([a])
        defer { _ = hub.stop() }
        let r = try TestProcess.run(TestProcess.kubeshark, ["scripts", "--url", hub.base, "--activate", "Nope"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("HTTP 404") && r.stderr.contains("no script titled 'Nope' on the hub"), "\(r.stderr)")
    }

    @Test("a deployment's scripting.env ($SCRIPTING_ENV, from its Secret) is the scripts' env, under --script-env")
    func environmentFromTheDeployment() throws {
        let dir = try ScriptTests.folder(["env.js": "// Env\nconsole.log(env.RECORDING_KFL + '|' + env.A + '|' + env.B);\n"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let worker = try Worker(["-r", WorkerAPITests.fixture("http1-get-query.pcap"), "--scripts", dir, "--script-env", "B=flag"],
                                environment: ["SCRIPTING_ENV": #"{"RECORDING_KFL":"http and response.status >= 500","A":1,"B":"secret"}"#])
        defer { _ = worker.stop() }
        #expect(ScriptTests.wait(10) {
            Self.logs(worker).contains { $0["message"] as? String == "http and response.status >= 500|1|flag" }
        }, "\(Self.logs(worker))")
        let bad = try TestProcess.run(TestProcess.kubeshark, ["worker", "-r", WorkerAPITests.fixture("http1-get-query.pcap"),
                                                              "--port", "0"], environment: ["SCRIPTING_ENV": "not json"])
        #expect(bad.status != 0 && bad.stderr.contains("$SCRIPTING_ENV is not a JSON object"), "\(bad.stderr)")
    }
}
