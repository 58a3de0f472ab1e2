import Foundation
import Scripting
import Testing

/// Cron schedules and the scripting directory's confinement.
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
