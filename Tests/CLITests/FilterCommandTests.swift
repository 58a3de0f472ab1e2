import Foundation
import Testing

/// `kubeshark filter`: KFL over entries saved as JSON lines, checked against
/// jq running the equivalent filter over the same lines.
@Suite("kubeshark filter")
struct FilterCommandTests {
    static func entriesFile() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ks-filter-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).jsonl").path
        let files = try FileManager.default.contentsOfDirectory(atPath: TestSupport.fixtures.path)
            .filter { $0.hasSuffix(".pcap") }.sorted().map { TestSupport.fixtures.appendingPathComponent($0).path }
        let r = try TestSupport.run(TestSupport.kubeshark, ["dissect"] + files)
        #expect(r.status == 0, "\(r.stderr)")
        try r.stdout.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("the lines KFL keeps are the lines jq keeps",
          .enabled(if: TestSupport.which("jq") != nil, "needs jq"),
          arguments: [
              ("http and response.status == 200", #"select(.protocol.name=="http" and .response.status==200)"#),
              (#"request.method == "POST" or response.status >= 400"#, #"select(.request.method=="POST" or .response.status>=400)"#),
              (#"request.path.startsWith("/s")"#, #"select((.request.path // "") | startswith("/s"))"#),
          ])
    func agreesWithJQ(kfl: String, jq: String) throws {
        let file = try Self.entriesFile()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let ours = try TestSupport.run(TestSupport.kubeshark, ["filter", kfl, file])
        #expect(ours.status == 0, "\(ours.stderr)")
        let theirs = try TestSupport.run(TestSupport.which("jq")!, ["-c", jq, file])
        #expect(theirs.status == 0, "\(theirs.stderr)")
        let ids: (String) -> [String] = { out in
            out.split(separator: "\n").compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["id"] as? String
            }
        }
        #expect(!ids(ours.stdout).isEmpty)
        #expect(ids(ours.stdout) == ids(theirs.stdout))
    }

    @Test("standard input, limit(n), and a bad query named by position")
    func stdinLimitAndErrors() throws {
        let file = try Self.entriesFile()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let limited = try TestSupport.run("/bin/sh", ["-c", "'\(TestSupport.kubeshark)' filter 'http and limit(3)' < '\(file)'"])
        #expect(limited.status == 0)
        #expect(limited.stdout.split(separator: "\n").count == 3)
        #expect(text.split(separator: "\n").count > 3)
        let bad = try TestSupport.run(TestSupport.kubeshark, ["filter", "response.status ==", file])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("at position 18"))
        #expect(bad.stdout.isEmpty)
    }
}
