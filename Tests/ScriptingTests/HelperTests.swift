import Foundation
import Host
import Scripting
import Testing

/// Cron schedules, the scripting directory's confinement and its disk cap.
@Suite struct HelperTests {
    static let t0: Int64 = 1_795_000_000 * 1_000_000_000  // 2026-11-18T11:06:40Z, a Wednesday
    static func at(_ seconds: Int64) -> Int64? { seconds * 1_000_000_000 }

    @Test func cronFieldsAndAliases() throws {
        // Every 5 seconds (six fields: seconds first).
        let five = try CronSchedule("*/5 * * * * *")
        #expect(five.next(afterNs: Self.t0) == Self.t0 + 5_000_000_000)
        // Five fields: minute 0 of every hour.
        let hourly = try CronSchedule("0 * * * *")
        #expect(hourly.next(afterNs: Self.t0) == Self.at(1_795_003_200))  // 12:00:00
        #expect(try CronSchedule("@hourly").next(afterNs: Self.t0) == hourly.next(afterNs: Self.t0))
        // Mondays at 09:30 (day-of-week 1): the next Monday is 2026-11-23.
        let monday = try CronSchedule("30 9 * * 1")
        #expect(monday.next(afterNs: Self.t0) == Self.at(1_795_426_200))
        #expect(try CronSchedule("@every 90s").next(afterNs: Self.t0) == Self.t0 + 90_000_000_000)
        // February 30th never comes.
        #expect(try CronSchedule("0 0 30 2 *").next(afterNs: Self.t0) == nil)
    }

    @Test(arguments: ["", "* * *", "61 * * * *", "*/0 * * * *", "a b c d e", "5-1 * * * *", "@every", "@every 5y", "* * * * * * *"])
    func badCronIsRefused(_ text: String) {
        #expect(throws: HelperError.self) { try CronSchedule(text) }
    }

    @Test func pathsStayInsideTheScriptingDirectory() throws {
        let root = NSTemporaryDirectory() + "ks-files-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let files = try ScriptFiles(root: root)
        #expect(try files.resolve("a/b.txt") == files.root + "/a/b.txt")
        #expect(try files.resolve("a/../c") == files.root + "/c")
        #expect(try files.resolve(files.root + "/x") == files.root + "/x")
        for bad in ["../x", "a/../../x", "/etc/passwd", "/", "", "a\0b"] {
            #expect(throws: HelperError.self, "\(bad)") { try files.resolve(bad) }
        }
        // A link planted inside does not lead out.
        try FileManager.default.createSymbolicLink(atPath: files.root + "/out", withDestinationPath: "/etc")
        #expect(throws: HelperError.self) { try files.resolve("out/passwd") }
    }
}

extension HelperTests {
    @Test("writing past --script-storage-limit is refused (thrown and logged) by every helper that adds bytes; deleting makes room")
    func storageLimit() throws {
        let (scripts, ring, dir) = try JobTests.manager(storageLimitBytes: 64 << 10)
        defer {
            scripts.shutdown()
            ring.close()
            try? FileManager.default.removeItem(atPath: dir)
        }
        scripts.put(code: """
            // Filler
            var chunk = new Array(4097).join('x'), written = 0;
            try { for (var i = 0; i < 1000; i++) { file.append('fill/big.txt', chunk); written += chunk.length; } }
            catch (e) { console.log('append:', e.message); }
            console.log('written', written);
            var tries = [function () { file.write('other.txt', 'y'); }, function () { file.copy('fill/big.txt', 'copy.txt'); },
                         function () { file.tar('fill'); }, function () { pcap.snapshot(); }];
            for (var t = 0; t < tries.length; t++) {
              try { tries[t](); console.log('not refused', t); } catch (e) { console.log('refused', t, e.message.split(':')[0]); }
            }
            file.move('fill/big.txt', 'moved.txt');
            file.delete('moved.txt');
            file.write('after.txt', 'room again');
            console.log('after delete:', file.tar('after.txt'));
            """, active: true)
        func messages() -> [String] { scripts.log.lines(script: "Filler").map(\.message) }
        #expect(JobTests.waitFor(5) { messages().contains { $0.hasPrefix("after delete:") } }, "\(messages())")
        let m = messages()
        let refusal = "file.append: refused: the scripting directory would hold 69632 bytes, more than its storage limit of 64Ki"
            + " (--script-storage-limit); delete files first"
        #expect(m.contains("append: " + refusal), "\(m)")
        #expect(m.contains("written 65536"))
        #expect(m.contains(refusal), "logged by the host too, though the script caught it")
        #expect(m.filter { $0.hasPrefix("refused ") } == ["refused 0 file.write", "refused 1 file.copy", "refused 2 file.tar",
                                                          "refused 3 pcap.snapshot"], "\(m)")
        #expect(scripts.all.first?.status?.state == "running")
        let root = dir + "/scripting"
        #expect(ScriptStorage.bytes(under: root) <= 64 << 10)
        #expect(FileManager.default.fileExists(atPath: root + "/after.txt.tar.gz"))
        #expect(!FileManager.default.fileExists(atPath: root + "/copy.txt"))
    }
}
