import Foundation
import Testing

/// The CLI's promises about bad input: one clear line on stderr, a non-zero exit,
/// and nothing lost that came before the damage.
@Suite("CLI errors")
struct CLIErrorTests {
    let sample = TestSupport.fixtures.appendingPathComponent("http1-pipelined.pcap").path

    @Test func missingFile() throws {
        let r = try TestSupport.run(TestSupport.kubeshark, ["dissect", "/nonexistent/capture.pcap"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("/nonexistent/capture.pcap"))
        #expect(r.stderr.contains("No such file"))
        #expect(r.stderr.split(separator: "\n").count == 1, "one line, got: \(r.stderr)")
    }

    @Test func notACapture() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("not-a-capture-\(getpid()).pcap").path
        try Data("GET / HTTP/1.1\r\n\r\n this is text, not a capture".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try TestSupport.run(TestSupport.kubeshark, ["dissect", path])
        #expect(r.status != 0)
        #expect(r.stderr.contains("not a readable pcap/pcapng capture"))
    }

    @Test("a truncated capture yields every entry before the damage, then fails")
    func truncated() throws {
        let full = try Data(contentsOf: URL(fileURLWithPath: sample))
        let (allEntries, _) = try TestSupport.dissect([sample])
        // Cut in the middle of the last packet record.
        let cut = full.prefix(full.count - 20)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("truncated-\(getpid()).pcap").path
        try cut.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (entries, r) = try TestSupport.dissect([path])
        #expect(r.status != 0)
        #expect(r.stderr.contains("damaged") || r.stderr.contains("truncated"), "stderr: \(r.stderr)")
        #expect(entries.count == allEntries.count, "the last packet is a FIN; every entry comes before it")
    }

    @Test func unreadablePluginDirectory() throws {
        let r = try TestSupport.run(TestSupport.kubeshark, ["dissect", sample, "--plugins-dir", "/nonexistent/plugins"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("cannot read plugin directory /nonexistent/plugins"))
    }

    @Test func unknownPluginSelection() throws {
        let r = try TestSupport.run(TestSupport.kubeshark, ["dissect", sample, "--plugins", "nosuch"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("no plugin named 'nosuch'"))
    }

    @Test func pluginsListShowsBuiltIns() throws {
        let r = try TestSupport.run(TestSupport.kubeshark, ["plugins", "list", "--output", "json"])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let http = lines.first { $0["name"] as? String == "http" }
        #expect(http?["loaded"] as? Bool == true)
        #expect(http?["abi"] as? String == "1.0")
        #expect((http?["protocols"] as? [[String: Any]])?.first?["macro"] as? String == "http")
    }

    @Test func tableOutput() throws {
        let r = try TestSupport.run(TestSupport.kubeshark, ["dissect", sample, "--output", "table"])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("TIME (UTC)") == true)
        #expect(lines.count == 4)
        #expect(lines.dropFirst().allSatisfy { $0.contains("GET") && $0.contains("/pipe/") && $0.contains("200 OK") })
    }

    @Test func version() throws {
        let r = try TestSupport.run(TestSupport.kubeshark, ["version"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("plugin ABI 1.0"))
    }
}

/// `--threads N` shards flows over worker threads: the same entries as one thread.
@Suite("Parallel dissection")
struct ParallelDissectionCLITests {
    /// Entries without their ids (flow numbering differs between shards), as sorted JSON text.
    func canonical(_ entries: [[String: Any]]) throws -> [String] {
        try entries.map { e -> String in
            var e = e
            e["id"] = nil
            e["stream"] = nil
            return String(decoding: try JSONSerialization.data(withJSONObject: e, options: .sortedKeys), as: UTF8.self)
        }.sorted()
    }

    @Test("every fixture, one thread or three: identical entries, unique ids")
    func sameEntries() throws {
        let files = FixtureConformanceTests.captures.map { TestSupport.fixtures.appendingPathComponent($0).path }
        let (one, r1) = try TestSupport.dissect(files)
        let (three, r3) = try TestSupport.dissect(files + ["--threads", "3"])
        #expect(r1.status == 0 && r3.status == 0, "\(r1.stderr) \(r3.stderr)")
        #expect(one.count >= 20)
        #expect(try canonical(one) == canonical(three))
        let ids = three.compactMap { $0["id"] as? String }
        #expect(Set(ids).count == ids.count)
    }

    @Test("--threads is validated")
    func validated() throws {
        let r = try TestSupport.run(TestSupport.kubeshark, ["dissect", "x.pcap", "--threads", "0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--threads"))
    }
}
