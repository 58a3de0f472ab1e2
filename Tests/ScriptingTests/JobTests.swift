import Foundation
import Host
import Scripting
import TestKit
import Testing

/// Jobs and the script lifecycle in a `ScriptManager` over a real (empty) ring.
@Suite struct JobTests {
    static func manager(storageLimitBytes: Int64 = 1 << 30) throws -> (ScriptManager, PacketRing, String) {
        let dir = NSTemporaryDirectory() + "ks-jobs-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let ring = try PacketRing(configuration: RingConfiguration(directory: dir + "/ring", linkType: 1))
        var environment = ScriptEnvironment(ring: ring, plugins: [], directory: dir + "/scripting",
                                            sessionDirectory: dir + "/sessions")
        environment.env = ["GREETING": "hi"]
        environment.limits = ScriptLimits(memoryBytes: 16 << 20, callBudgetMs: 300)
        environment.storageLimitBytes = storageLimitBytes
        return (ScriptManager(environment: environment), ring, dir)
    }

    static func waitFor(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        TestProcess.eventually(within: seconds, every: 0.05, condition)
    }

    @Test func jobsRunOnScheduleWithArgumentsUpToTheirLimitAndReportFailures() throws {
        let (scripts, ring, dir) = try Self.manager()
        defer {
            scripts.shutdown()
            ring.close()
            try? FileManager.default.removeItem(atPath: dir)
        }
        let title = scripts.put(code: """
            // Jobs
            jobs.schedule("greet", "@every 1s", function (who, n) { console.log(env.GREETING, who, n); }, 2, "you", 7);
            jobs.schedule("broken", "*/1 * * * * *", function () { throw new Error("job broke"); }, 1);
            jobs.schedule("never", "0 0 1 1 *", function () {}, 0);
            var refused = "";
            try { for (var i = 0; i < 2000; i++) jobs.schedule("many" + i, "0 0 1 1 *", function () {}); } catch (e) { refused = e.message; }
            console.log("refused at", jobs.list().length, refused);
            for (var j = 0; j < 2000; j++) jobs.remove("many" + j);
            console.log("listed", JSON.stringify(jobs.list().sort()));
            function onJobPassed(tag, cron, limit) { console.log("passed", tag, cron, limit, JSON.stringify(jobs.list().sort())); }
            function onJobFailed(tag, cron, limit, err) { console.log("failed", tag, limit, err.split("\\n")[0]); }
            """, active: true)
        #expect(title == "Jobs")
        func messages() -> [String] { scripts.log.lines(script: "Jobs").map(\.message) }
        #expect(Self.waitFor(5) { messages().filter { $0.hasPrefix("passed greet") }.count == 2 }, "\(messages())")
        let m = messages()
        #expect(m.contains(#"listed ["broken","greet","never"]"#))
        #expect(m.contains("refused at 1000 jobs.schedule: a script may schedule at most 1000 jobs"), "\(m)")
        #expect(m.filter { $0 == "hi you 7" }.count == 2)
        #expect(m.contains("failed broken 1 Error: job broke"), "\(m)")
        #expect(m.contains { $0.hasPrefix("job broken failed: Error: job broke") })
        // After its second run "greet" reached its limit and left the list.
        #expect(m.contains(#"passed greet @every 1s 2 ["never"]"#), "\(m)")
        Thread.sleep(forTimeInterval: 1.2)
        #expect(messages().filter { $0 == "hi you 7" }.count == 2, "no third run")
        #expect(scripts.all.first?.status?.state == "running")
    }

    @Test func titlesLoadErrorsAndDeactivation() throws {
        let (scripts, ring, dir) = try Self.manager()
        defer {
            scripts.shutdown()
            ring.close()
            try? FileManager.default.removeItem(atPath: dir)
        }
        #expect(ScriptManager.title(of: "  /*\n * Block title\n */ var x;", fallback: "f") == "Block title")
        #expect(ScriptManager.title(of: "var x; // late", fallback: "file") == "file")
        let bad = scripts.put(code: "// Broken\nfunction (", active: true)
        #expect(Self.waitFor(3) { scripts.all.first { $0.title == bad }?.status?.state == "failed" })
        #expect(scripts.log.lines(script: "Broken").contains { $0.message.hasPrefix("stopped: could not load: SyntaxError") })
        let good = scripts.put(code: "// Fine\nvar n = 1;", active: true)
        #expect(Self.waitFor(3) { scripts.all.first { $0.title == good }?.status?.state == "running" })
        try scripts.deactivate(good)
        #expect(scripts.all.first { $0.title == good }?.status == nil)
        #expect(throws: ScriptManager.Failure.self) { try scripts.activate("Missing") }
    }

    @Test("Kubeshark's published examples run as written: pass/fail in onItemQueried, a per-minute packet log job")
    func kubesharkExamples() async throws {
        let (scripts, ring, dir) = try Self.manager()
        defer {
            scripts.shutdown()
            ring.close()
            try? FileManager.default.removeItem(atPath: dir)
        }
        scripts.put(code: """
            // Monitoring: Pass HTTP Traffic, Fail Anything Else
            function onItemQueried(data) {
              if (data.protocol.name == "http")
                return test.pass(data);
              else
                return test.fail(data);
            }
            """, active: true)
        scripts.put(code: """
            // Log Total Traffic Volume Periodically
            var packetCount = 0;
            var totalKB = 0;
            function onPacketCaptured(info) {
              packetCount++;
              totalKB += info.length / 1000;
            }
            function logPacketCountTotalBytes() {
              if (packetCount === 0) return;
              console.log("Captured packet count per minute:", packetCount);
              console.log("Total KB captured per minute:", totalKB);
              packetCount = 0;
              totalKB = 0;
            }
            jobs.schedule("log-packet-count-total-bytes", "0 */1 * * * *", logPacketCountTotalBytes);
            """, active: true)
        #expect(Self.waitFor(3) { scripts.all.allSatisfy { $0.status?.state == "running" } })
        let http = await scripts.itemQueried(Array(#"{"stream":"01","protocol":{"name":"http"}}"#.utf8), flow: nil)
        #expect(String(decoding: http, as: UTF8.self) == #"{"stream":"01","protocol":{"name":"http"},"passed":true,"failed":false}"#)
        let dns = await scripts.itemQueried(Array(#"{"stream":"02","protocol":{"name":"dns"}}"#.utf8), flow: nil)
        #expect(String(decoding: dns, as: UTF8.self).hasSuffix(#""passed":false,"failed":true}"#))
        let meter = scripts.all.first { $0.title == "Log Total Traffic Volume Periodically" }
        #expect(meter?.status?.hooks == ["onPacketCaptured"])
    }
}
