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

/// `dissect --filter 'KFL'`: the query language offline.
@Suite("KFL filter on the CLI")
struct KFLFilterCLITests {
    let captures = FixtureConformanceTests.captures.map { TestSupport.fixtures.appendingPathComponent($0).path }

    @Test("a query selects exactly the matching entries, on one thread or several")
    func selects() throws {
        for threads in ["1", "2"] {
            let (entries, r) = try TestSupport.dissect(captures + ["--threads", threads, "--filter",
                                                                   "http and response.status == 304"])
            #expect(r.status == 0)
            #expect(entries.count == 1)
            #expect(entries.first?["summary"] as? String == "/static/page.txt")
        }
        let (heads, _) = try TestSupport.dissect(captures + ["--filter", #"request.method == "HEAD""#])
        #expect(heads.count == 1)
        let (api, _) = try TestSupport.dissect(captures + ["--filter", #"request.path.startsWith("/pipe/")"#])
        #expect(api.count == 3)
    }

    @Test("limit(n) holds across worker threads; redact() blanks fields")
    func limitAndRedact() throws {
        let (limited, _) = try TestSupport.dissect(captures + ["--threads", "3", "--filter", #"request.method == "GET" and limit(2)"#])
        #expect(limited.count == 2)
        let (redacted, _) = try TestSupport.dissect(
            [TestSupport.fixtures.appendingPathComponent("http1-get-query.pcap").path, "--filter", #"redact("request.headers")"#])
        let request = redacted.first?["request"] as? [String: Any]
        #expect(request?["headers"] as? String == "[REDACTED]")
    }

    @Test("a bad query is one line naming the position, and nothing is dissected")
    func badQuery() throws {
        let r = try TestSupport.run(TestSupport.kubeshark, ["dissect", captures[0], "--filter", "http and (response.status == 304"])
        #expect(r.status != 0)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("bad --filter query: expected ')' at position 32"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
    }
}
