// Tests of the third-party example plugin Plugins/Examples/memcached: built
// with `cc` exactly as its Makefile does, loaded through the public loader and
// driven by PluginHarness the way the engine drives it.

import Foundation
import Host
import PluginAPI
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Building the plugin

/// Where the repository lives: three levels above this file (Tests/HostTests/<file>).
private let repoRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

private let ccPath: String? = {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let candidate = "\(dir)/cc"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}()

private let memcachedBinary = "/usr/bin/memcached"

struct ExampleBuildFailure: Error, CustomStringConvertible, Sendable {
    var description: String
}

/// Runs `executable` with `arguments`; returns the exit status and everything it printed.
private func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// The example plugin, compiled once per test run into a temporary directory with
/// the exact command of Plugins/Examples/memcached/Makefile.
enum MemcachedExample {
    static let built: Result<String, ExampleBuildFailure> = {
        guard let cc = ccPath else { return .failure(.init(description: "no C compiler (cc) on PATH")) }
        let source = repoRoot.appendingPathComponent("Plugins/Examples/memcached/memcached.c").path
        let include = repoRoot.appendingPathComponent("Sources/PluginAPI/include").path
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("ks-memcached-\(getpid())-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let output = dir.appendingPathComponent("libmemcached.so").path
            // Makefile: cc -std=c99 -O2 -Wall -Wextra -shared -fPIC -I$(KS_INCLUDE) -o libmemcached.so memcached.c
            let result = try run(
                cc, ["-std=c99", "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", "-I\(include)", "-o", output, source])
            guard result.status == 0 else {
                return .failure(.init(description: "cc failed (\(result.status)):\n\(result.output)"))
            }
            // A third-party plugin must build without a single warning.
            guard !result.output.contains("warning") else {
                return .failure(.init(description: "cc warned:\n\(result.output)"))
            }
            return .success(output)
        } catch {
            return .failure(.init(description: "cannot build the example: \(error)"))
        }
    }()

    static func harness() throws -> PluginHarness {
        try PluginHarness(pluginPath: built.get())
    }
}

// MARK: - Helpers

private typealias Segment = (HarnessDirection, [UInt8])

private func c(_ s: String) -> Segment { (.clientToServer, Array(s.utf8)) }
private func s(_ s: String) -> Segment { (.serverToClient, Array(s.utf8)) }
private func c(_ b: [UInt8]) -> Segment { (.clientToServer, b) }

private func parse(_ entries: [String], sourceLocation: SourceLocation = #_sourceLocation) -> [[String: Any]] {
    entries.compactMap { json in
        let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        #expect(object != nil, "entry is not a JSON object: \(json)", sourceLocation: sourceLocation)
        return object
    }
}

/// The entry without what depends on timing or on the flow id, as canonical JSON text.
private func normalized(_ entry: [String: Any]) -> String {
    var e = entry
    for key in ["id", "stream", "timestamp", "elapsedTime"] { e.removeValue(forKey: key) }
    let data = (try? JSONSerialization.data(withJSONObject: e, options: [.sortedKeys])) ?? Data()
    return String(decoding: data, as: UTF8.self)
}

private func normalized(_ entries: [String]) -> [String] { parse(entries).map(normalized) }

private func request(_ e: [String: Any]) -> [String: Any] { e["request"] as? [String: Any] ?? [:] }
private func response(_ e: [String: Any]) -> [String: Any] { e["response"] as? [String: Any] ?? [:] }
private func values(_ e: [String: Any]) -> [[String: Any]] { response(e)["values"] as? [[String: Any]] ?? [] }
private func flags(_ e: [String: Any]) -> [String] { e["flags"] as? [String] ?? [] }

/// A deterministic generator for the garbage tests.
private struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
}

/// A conversation covering every request kind, with one unanswered request at the end.
private let conversation: [Segment] = [
    c("set alpha 1 0 5\r\nhello\r\n"), s("STORED\r\n"),
    c("get alpha beta\r\n"), s("VALUE alpha 1 5\r\nhello\r\nEND\r\n"),
    c("gets alpha\r\n"), s("VALUE alpha 1 5 77\r\nhello\r\nEND\r\n"),
    c([UInt8]("set bin 0 0 4\r\n".utf8) + [0x00, 0x01, 0xFF, 0xFE] + [13, 10]), s("STORED\r\n"),
    c("incr n 5\r\n"), s("15\r\n"),
    c("delete alpha noreply\r\n"),
    c("append beta 0 0 3\r\nxyz\r\n"), s("NOT_STORED\r\n"),
    c("set big 0 0 2000\r\n" + String(repeating: "a", count: 2000) + "\r\n"), s("STORED\r\n"),
    c("cas alpha 0 0 1 77\r\nz\r\n"), s("EXISTS\r\n"),
    c("touch alpha 100\r\n"), s("TOUCHED\r\n"),
    c("gat 30 alpha\r\n"), s("VALUE alpha 1 5\r\nhello\r\nEND\r\n"),
    c("stats\r\n"), s("STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n"),
    c("bogus\r\n"), s("ERROR\r\n"),
    c("set k 0 0 x\r\n"), s("CLIENT_ERROR bad command line format\r\n"),
    c("version\r\n"), s("VERSION 1.6.21\r\n"),
    c("get missing\r\n"),
]
private let conversationEntryCount = 16

// MARK: - Tests

@Suite("memcached example plugin (C, third-party)", .enabled(if: ccPath != nil, "needs a C compiler (cc) to build the example"))
struct ExamplePluginTests {
    @Test("builds with the Makefile's command without warnings and passes the loader")
    func buildsAndLoads() throws {
        let h = try MemcachedExample.harness()
        #expect(h.plugin.metadata.name == "memcached")
        #expect(h.plugin.metadata.abiMajor == Int(KS_ABI_MAJOR))
        #expect(h.plugin.metadata.hints(port: 11211))
        #expect(h.plugin.metadata.protocols.first?.abbreviation == "MEMCACHED")
        #expect(h.plugin.metadata.protocols.first?.macro == "memcached")
        // The Makefile holds exactly the command the test used.
        let makefile = try String(contentsOf: repoRoot.appendingPathComponent("Plugins/Examples/memcached/Makefile"), encoding: .utf8)
        #expect(makefile.contains("cc -std=c99 -O2 -Wall -Wextra -shared -fPIC -I$(KS_INCLUDE) -o libmemcached.so memcached.c"))
        #expect(makefile.contains("KS_INCLUDE ?= ../../../Sources/PluginAPI/include"))
    }

    @Test("probe: command word → syntax confidence, prefix → maybe, other → no")
    func probe() throws {
        let h = try MemcachedExample.harness()
        for first in ["set k 0 0 1\r\n", "get k\r\n", "gets a b\r\n", "version\r\n", "stats\r\n", "flush_all\r\n",
                      "delete k\r\n", "incr k 1\r\n", "quit\r\n", "verbosity 1\r\n", "gat 1 k\r\n", "touch k 1\r\n"] {
            let r = h.probe(Array(first.utf8))
            #expect(r.verdict == KS_PROBE_YES && r.confidence == KS_CONFIDENCE_SYNTAX && !r.reversed, "\(first)")
        }
        for partial in ["s", "se", "set", "versio", "version", "version\r", "flush_"] {
            #expect(h.probe(Array(partial.utf8)).verdict == KS_PROBE_MAYBE, "\(partial)")
        }
        for other in ["GET / HTTP/1.1\r\n", "PRI * HTTP/2.0", "settle", "getaway\r\n", "\u{16}\u{03}\u{01}", "x"] {
            #expect(h.probe(Array(other.utf8)).verdict == KS_PROBE_NO, "\(other)")
        }
        // A response seen first: plausible; from the "client" side it means the roles are swapped.
        let fromServer = h.probe(Array("STORED\r\n".utf8), direction: .serverToClient)
        #expect(fromServer.verdict == KS_PROBE_YES && fromServer.confidence == KS_CONFIDENCE_PLAUSIBLE && !fromServer.reversed)
        let swapped = h.probe(Array("VALUE k 0 1\r\n".utf8), direction: .clientToServer)
        #expect(swapped.verdict == KS_PROBE_YES && swapped.reversed)
        let requestFromServer = h.probe(Array("get k\r\n".utf8), direction: .serverToClient)
        #expect(requestFromServer.verdict == KS_PROBE_YES && requestFromServer.reversed)
    }

    @Test("set and get: request fields, response values, summary row")
    func setAndGet() throws {
        let h = try MemcachedExample.harness()
        let entries = parse(h.runTCP(segments: [
            c("set foo 42 3600 11\r\nhello world\r\n"), s("STORED\r\n"),
            c("get foo\r\n"), s("VALUE foo 42 11\r\nhello world\r\nEND\r\n"),
        ]))
        try #require(entries.count == 2)
        let set = entries[0]
        #expect(set["method"] as? String == "set")
        #expect(set["summary"] as? String == "foo")
        #expect(set["statusText"] as? String == "STORED")
        #expect(set["requestSize"] as? Int == 33)
        #expect(set["responseSize"] as? Int == 8)
        #expect((set["protocol"] as? [String: Any])?["abbr"] as? String == "MEMCACHED")
        #expect(set["unanswered"] == nil)
        let rq = request(set)
        #expect(rq["command"] as? String == "set")
        #expect(rq["keys"] as? [String] == ["foo"])
        #expect(rq["flags"] as? Int == 42)
        #expect(rq["exptime"] as? Int == 3600)
        #expect(rq["bytes"] as? Int == 11)
        #expect(rq["noreply"] as? Bool == false)
        #expect(rq["value"] as? String == "hello world")
        #expect(rq["valueEncoding"] as? String == "utf8")
        #expect(rq["truncated"] as? Bool == false)
        #expect(response(set)["result"] as? String == "STORED")

        let get = entries[1]
        #expect(get["method"] as? String == "get")
        #expect(get["summary"] as? String == "foo")
        #expect(get["statusText"] as? String == "END")
        #expect(request(get)["keys"] as? [String] == ["foo"])
        let v = values(get)
        try #require(v.count == 1)
        #expect(v[0]["key"] as? String == "foo")
        #expect(v[0]["flags"] as? Int == 42)
        #expect(v[0]["bytes"] as? Int == 11)
        #expect(v[0]["value"] as? String == "hello world")
        #expect(v[0]["cas"] == nil)
    }

    @Test("gets (cas), multi-get with a miss, binary values as base64")
    func retrieval() throws {
        let h = try MemcachedExample.harness()
        let binary: [UInt8] = [0x00, 0xFF, 0x10, 0x80]
        let entries = parse(h.runTCP(segments: [
            c("gets a b c\r\n"),
            (.serverToClient, Array("VALUE a 0 1 101\r\nA\r\nVALUE c 3 4 102\r\n".utf8) + binary + Array("\r\nEND\r\n".utf8)),
            c("get nothing\r\n"), s("END\r\n"),
        ]))
        try #require(entries.count == 2)
        #expect(request(entries[0])["keys"] as? [String] == ["a", "b", "c"])
        let v = values(entries[0])
        try #require(v.count == 2)
        #expect(v[0]["cas"] as? Int == 101)
        #expect(v[1]["key"] as? String == "c")
        #expect(v[1]["valueEncoding"] as? String == "base64")
        #expect(v[1]["value"] as? String == Data(binary).base64EncodedString())
        #expect(values(entries[1]).isEmpty)
        #expect(response(entries[1])["result"] as? String == "END")
    }

    @Test("delete, incr/decr, touch, flush_all, verbosity, errors")
    func otherCommands() throws {
        let h = try MemcachedExample.harness()
        let entries = parse(h.runTCP(segments: [
            c("delete foo\r\n"), s("DELETED\r\n"),
            c("delete foo\r\n"), s("NOT_FOUND\r\n"),
            c("incr n 5\r\n"), s("15\r\n"),
            c("decr n 18446744073709551615\r\n"), s("0\r\n"),
            c("touch k -1\r\n"), s("TOUCHED\r\n"),
            c("flush_all 10\r\n"), s("OK\r\n"),
            c("verbosity 1\r\n"), s("OK\r\n"),
            c("incr s 1\r\n"), s("CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
            c("nonsense here\r\n"), s("ERROR\r\n"),
        ]))
        try #require(entries.count == 9)
        #expect(entries.map { $0["statusText"] as? String } == [
            "DELETED", "NOT_FOUND", "NUMBER", "NUMBER", "TOUCHED", "OK", "OK", "CLIENT_ERROR", "ERROR",
        ])
        #expect(request(entries[0])["keys"] as? [String] == ["foo"])
        #expect(request(entries[2])["delta"] as? Int == 5)
        #expect(response(entries[2])["number"] as? Int == 15)
        #expect((request(entries[3])["delta"] as? NSNumber)?.uint64Value == UInt64.max)
        #expect(response(entries[3])["number"] as? Int == 0)
        #expect(request(entries[4])["exptime"] as? Int == -1)
        #expect(request(entries[5])["delay"] as? Int == 10)
        #expect(request(entries[6])["level"] as? Int == 1)
        #expect(response(entries[7])["message"] as? String == "cannot increment or decrement non-numeric value")
        #expect(request(entries[8])["command"] as? String == "nonsense")
        #expect(request(entries[8])["args"] as? [String] == ["here"])
    }

    @Test("stats: STAT lines until END become an object")
    func stats() throws {
        let h = try MemcachedExample.harness()
        let entries = parse(h.runTCP(segments: [
            c("stats\r\n"), s("STAT pid 4242\r\nSTAT version 1.6.21\r\n"), s("STAT rusage_user 0.123456\r\nEND\r\n"),
            c("stats settings\r\n"), s("STAT maxbytes 67108864\r\nEND\r\n"),
            c("stats reset\r\n"), s("RESET\r\n"),
        ]))
        try #require(entries.count == 3)
        let stats = response(entries[0])["stats"] as? [String: String]
        #expect(stats == ["pid": "4242", "version": "1.6.21", "rusage_user": "0.123456"])
        #expect(entries[0]["statusText"] as? String == "END")
        #expect(request(entries[1])["args"] as? [String] == ["settings"])
        #expect((response(entries[1])["stats"] as? [String: String])?["maxbytes"] == "67108864")
        #expect(response(entries[2])["result"] as? String == "RESET")
    }

    @Test("noreply: an entry with no response, not marked unanswered; FIFO pairing skips it")
    func noreply() throws {
        let h = try MemcachedExample.harness()
        let entries = parse(h.runTCP(segments: [
            c("set a 0 0 1 noreply\r\nx\r\nadd b 0 0 1 noreply\r\ny\r\nget a\r\n"),
            s("VALUE a 0 1\r\nx\r\nEND\r\n"),
            c("delete a noreply\r\nincr b 1 noreply\r\nquit\r\n"),
        ]))
        try #require(entries.count == 6)
        #expect(entries.map { request($0)["command"] as? String } == ["set", "add", "get", "delete", "incr", "quit"])
        for i in [0, 1, 3, 4] {
            #expect(request(entries[i])["noreply"] as? Bool == true)
            #expect(entries[i]["response"] == nil)
            #expect(entries[i]["unanswered"] == nil)
            #expect(flags(entries[i]).isEmpty)
        }
        #expect(entries[5]["response"] == nil && entries[5]["unanswered"] == nil)
        #expect(values(entries[2]).first?["value"] as? String == "x")
    }

    @Test("pipelining: requests in one segment, responses in another, matched in order")
    func pipelining() throws {
        let h = try MemcachedExample.harness()
        var requests = ""
        var responses = ""
        for i in 0..<50 {
            requests += "set k\(i) \(i) 0 \(String(i).count)\r\n\(i)\r\nget k\(i)\r\n"
            responses += "STORED\r\nVALUE k\(i) \(i) \(String(i).count)\r\n\(i)\r\nEND\r\n"
        }
        let entries = parse(h.runTCP(segments: [c(requests), s(responses)]))
        try #require(entries.count == 100)
        for i in 0..<50 {
            let set = entries[2 * i], get = entries[2 * i + 1]
            #expect(request(set)["keys"] as? [String] == ["k\(i)"])
            #expect(response(set)["result"] as? String == "STORED")
            #expect(request(get)["keys"] as? [String] == ["k\(i)"])
            #expect(values(get).first?["key"] as? String == "k\(i)")
            #expect(values(get).first?["value"] as? String == "\(i)")
        }
    }

    @Test("unanswered requests are emitted at close as request-only entries")
    func unanswered() throws {
        let h = try MemcachedExample.harness()
        let entries = parse(h.runTCP(segments: [
            c("get a\r\nget b\r\nset c 0 0 3\r\nabc\r\n"), s("VALUE a 0 1\r\n1\r\nEND\r\n"),
        ]))
        try #require(entries.count == 3)
        #expect(entries[0]["unanswered"] == nil)
        for e in entries[1...] {
            #expect(e["unanswered"] as? Bool == true)
            #expect(flags(e).contains("requestOnly"))
            #expect(e["response"] == nil)
            #expect(e["statusText"] == nil)
        }
        #expect(request(entries[2])["value"] as? String == "abc")
    }

    @Test("a response without a request is emitted response-only")
    func responseOnly() throws {
        let h = try MemcachedExample.harness()
        let entries = parse(h.runTCP(segments: [s("VALUE x 0 1\r\n1\r\nEND\r\nSTORED\r\n")]))
        try #require(entries.count == 2)
        #expect(flags(entries[0]) == ["responseOnly"])
        #expect(entries[0]["request"] == nil)
        #expect(entries[0]["summary"] as? String == "x")
        #expect(response(entries[1])["result"] as? String == "STORED")
    }

    @Test("the same entries whether the conversation comes whole, pipelined or split at any byte")
    func splitAtEveryByte() throws {
        let h = try MemcachedExample.harness()
        let reference = normalized(h.runTCP(segments: conversation))
        try #require(reference.count == conversationEntryCount)

        // Pipelined: every request first, then every response.
        let pipelined = [
            (HarnessDirection.clientToServer, conversation.filter { $0.0 == .clientToServer }.flatMap(\.1)),
            (HarnessDirection.serverToClient, conversation.filter { $0.0 == .serverToClient }.flatMap(\.1)),
        ]
        #expect(normalized(h.runTCP(segments: pipelined)) == reference)

        // One byte per segment.
        let bytewise = conversation.flatMap { seg in seg.1.map { (seg.0, [$0]) } }
        #expect(normalized(h.runTCP(segments: bytewise)) == reference)

        // Every segment split in two at every position.
        var mismatches = 0
        for (i, seg) in conversation.enumerated() {
            for cut in 1..<seg.1.count {
                var segments = conversation
                segments.replaceSubrange(i...i, with: [(seg.0, Array(seg.1[..<cut])), (seg.0, Array(seg.1[cut...]))])
                let got = normalized(h.runTCP(segments: segments))
                if got != reference {
                    mismatches += 1
                    if mismatches <= 3 { Issue.record("segment \(i) cut at \(cut): \(got) != \(reference)") }
                }
            }
        }
        #expect(mismatches == 0)
    }

    @Test("values over 1 KiB are capped and flagged; huge declared sizes are skipped, never buffered")
    func bigValues() throws {
        let h = try MemcachedExample.harness()
        // 5 MB value in 64 KiB segments.
        let size = 5_000_000
        let block = [UInt8](repeating: UInt8(ascii: "v"), count: size)
        var segments: [Segment] = [c("set big 0 0 \(size)\r\n")]
        var offset = 0
        while offset < size {
            let end = min(offset + 65536, size)
            segments.append((.clientToServer, Array(block[offset..<end])))
            offset = end
        }
        segments.append(c("\r\n"))
        segments.append(s("STORED\r\n"))
        segments.append(c("get big\r\n"))
        segments.append((.serverToClient, Array("VALUE big 0 \(size)\r\n".utf8) + block + Array("\r\nEND\r\n".utf8)))
        let entries = parse(h.runTCP(segments: segments))
        try #require(entries.count == 2)
        let rq = request(entries[0])
        #expect(rq["bytes"] as? Int == size)
        #expect((rq["value"] as? String)?.utf8.count == 1024)
        #expect(rq["truncated"] as? Bool == true)
        #expect(flags(entries[0]).contains("truncated"))
        #expect(entries[0]["requestSize"] as? Int == "set big 0 0 \(size)\r\n".utf8.count + size + 2)
        #expect(response(entries[0])["result"] as? String == "STORED")
        #expect((values(entries[1]).first?["value"] as? String)?.utf8.count == 1024)
        #expect(values(entries[1]).first?["truncated"] as? Bool == true)
        #expect(entries[1]["responseSize"] as? Int == "VALUE big 0 \(size)\r\n".utf8.count + size + 2 + 5)

        // A hostile size: 2^64-1 bytes announced, 3 MB sent, then the connection ends.
        let before = h.counters
        var hostile: [Segment] = [c("set k 0 0 18446744073709551615\r\n")]
        for _ in 0..<48 { hostile.append((.clientToServer, [UInt8](repeating: 0x41, count: 65536))) }
        let cut = parse(h.runTCP(segments: hostile))
        try #require(cut.count == 1)
        #expect(cut[0]["unanswered"] as? Bool == true)
        #expect(flags(cut[0]).contains("truncated"))
        #expect(request(cut[0])["incomplete"] as? Bool == true)
        let after = h.counters
        // The plugin never made the host buffer the block.
        #expect(after["host.buffer_overflows", default: 0] == before["host.buffer_overflows", default: 0])
        #expect(after["host.need_exceeds_cap", default: 0] == before["host.need_exceeds_cap", default: 0])
    }

    @Test("a line without an end beyond the cap is a violation and a parse error, not a crash")
    func longLine() throws {
        let h = try MemcachedExample.harness()
        let before = h.counters
        let entries = parse(h.runTCP(segments: [
            c("get a\r\n"), s("END\r\n"),
            c("get " + String(repeating: "k", count: 100_000)),
        ]))
        #expect(entries.count == 1)
        let after = h.counters
        #expect(after["host.violations", default: 0] > before["host.violations", default: 0])
        #expect(after["host.parse_errors", default: 0] > before["host.parse_errors", default: 0])
        #expect(after["memcached.line_too_long", default: 0] > before["memcached.line_too_long", default: 0])

        // A long multi-get line (many keys, under the get cap) is fine.
        let keys = (0..<2000).map { "key\($0)" }
        let many = parse(h.runTCP(segments: [c("get " + keys.joined(separator: " ") + "\r\n"), s("END\r\n")]))
        try #require(many.count == 1)
        #expect(request(many[0])["keyCount"] as? Int == 2000)
        #expect((request(many[0])["keys"] as? [String])?.first == "key0")
        #expect(flags(many[0]).contains("truncated"))
    }

    @Test("the pending queue is bounded and pairing stays aligned after an overflow")
    func boundedQueue() throws {
        let h = try MemcachedExample.harness()
        let n = 300
        let requests = (0..<n).map { "get k\($0)\r\n" }.joined()
        let responses = (0..<n).map { "VALUE k\($0) 0 1\r\nx\r\nEND\r\n" }.joined()
        let entries = parse(h.runTCP(segments: [c(requests), s(responses)]))
        let paired = entries.filter { $0["request"] != nil && $0["response"] != nil }
        let requestOnly = entries.filter { $0["response"] == nil }
        let responseOnly = entries.filter { $0["request"] == nil }
        #expect(requestOnly.count == responseOnly.count)
        #expect(paired.count + requestOnly.count == n)
        #expect(paired.count >= 256)
        for e in paired {
            #expect(request(e)["keys"] as? [String] == [values(e).first?["key"] as? String ?? "?"])
        }
    }

    @Test("garbage, truncation and mutations never crash and always give valid JSON")
    func garbage() throws {
        let h = try MemcachedExample.harness()
        var rng = SplitMix64(state: 0x6D65_6D63_6163_6865)
        // Every prefix of the conversation, as if the capture stopped there.
        let whole = conversation
        let total = whole.reduce(0) { $0 + $1.1.count }
        for cut in stride(from: 0, through: total, by: 7) {
            var left = cut
            var segments: [Segment] = []
            for seg in whole where left > 0 {
                let take = min(left, seg.1.count)
                segments.append((seg.0, Array(seg.1[..<take])))
                left -= take
            }
            let entries = parse(h.runTCP(segments: segments))
            #expect(entries.count <= conversationEntryCount + 2)
        }
        // Random bytes, random protocol-looking tokens, and mutated conversations.
        let words = ["set ", "get ", "VALUE ", "END\r\n", "STAT ", " 0", " 99999999999", "\r\n", "\n", " noreply",
                     "gets", "cas ", "-1", "\r", " ", "incr", "STORED\r\n", "18446744073709551616"]
        for round in 0..<400 {
            var segments: [Segment] = []
            for _ in 0..<(1 + rng.below(12)) {
                var bytes: [UInt8] = []
                for _ in 0..<rng.below(40) {
                    if rng.below(2) == 0 {
                        bytes += Array(words[rng.below(words.count)].utf8)
                    } else {
                        bytes.append(UInt8(truncatingIfNeeded: rng.next()))
                    }
                }
                segments.append((rng.below(2) == 0 ? .clientToServer : .serverToClient, bytes))
            }
            if round % 4 == 0 {
                segments = whole.map { seg in
                    var b = seg.1
                    if !b.isEmpty && rng.below(3) == 0 { b[rng.below(b.count)] = UInt8(truncatingIfNeeded: rng.next()) }
                    return (seg.0, b)
                }
            }
            _ = parse(h.runTCP(segments: segments))
            _ = h.runTCP(segments: segments, deliverEOF: false)
        }
    }

    @Test(
        "real memcached server: a recorded set/get/delete conversation dissects to matching entries",
        .enabled(if: FileManager.default.isExecutableFile(atPath: memcachedBinary),
                 "memcached is not installed (/usr/bin/memcached): apt-get install memcached to run this test"),
        .timeLimit(.minutes(1)))
    func realServer() throws {
        let server = try MemcachedServer()
        defer { server.stop() }
        let client = try RecordingClient(port: server.port)
        defer { client.close() }

        let binary: [UInt8] = [0x00, 0x01, 0xFE, 0xFF]
        try client.exchange("set greeting 42 0 11\r\nhello world\r\n", until: "\r\n")
        try client.exchange("get greeting\r\n", until: "END\r\n")
        try client.exchange("gets greeting\r\n", until: "END\r\n")
        try client.exchange("set counter 0 0 2\r\n10\r\n", until: "\r\n")
        try client.exchange("incr counter 5\r\n", until: "\r\n")
        try client.exchange(Array("set bin 7 0 4\r\n".utf8) + binary + [13, 10], until: "\r\n")
        try client.exchange("get bin greeting nothere\r\n", until: "END\r\n")
        try client.exchange("delete greeting\r\n", until: "\r\n")
        try client.exchange("get greeting\r\n", until: "END\r\n")
        try client.send("set quiet 0 0 1 noreply\r\nq\r\n")
        try client.exchange("get quiet\r\n", until: "END\r\n")
        try client.exchange("touch quiet 100\r\n", until: "\r\n")
        try client.exchange("delete nothere\r\n", until: "\r\n")
        try client.exchange("stats\r\n", until: "END\r\n")
        try client.exchange("version\r\n", until: "\r\n")

        let h = try MemcachedExample.harness()
        let entries = parse(h.runTCP(segments: client.segments))
        try #require(entries.count == 15, "\(entries)")
        #expect(entries.map { request($0)["command"] as? String } == [
            "set", "get", "gets", "set", "incr", "set", "get", "delete", "get", "set", "get", "touch", "delete",
            "stats", "version",
        ])
        #expect(entries.map { $0["statusText"] as? String } == [
            "STORED", "END", "END", "STORED", "NUMBER", "STORED", "END", "DELETED", "END", nil, "END", "TOUCHED",
            "NOT_FOUND", "END", "VERSION",
        ])
        #expect(request(entries[0])["value"] as? String == "hello world")
        #expect(request(entries[0])["flags"] as? Int == 42)
        let got = values(entries[1])
        #expect(got.count == 1 && got.first?["value"] as? String == "hello world" && got.first?["flags"] as? Int == 42)
        let gets = values(entries[2])
        #expect((gets.first?["cas"] as? Int ?? 0) > 0)
        #expect(response(entries[4])["number"] as? Int == 15)
        #expect(request(entries[5])["value"] as? String == Data(binary).base64EncodedString())
        let multi = values(entries[6])
        #expect(multi.compactMap { $0["key"] as? String } == ["bin", "greeting"])
        #expect(multi.first?["value"] as? String == Data(binary).base64EncodedString())
        #expect(multi.first?["flags"] as? Int == 7)
        #expect(values(entries[8]).isEmpty)
        #expect(request(entries[9])["noreply"] as? Bool == true && entries[9]["response"] == nil)
        #expect(values(entries[10]).first?["value"] as? String == "q")
        let stats = response(entries[13])["stats"] as? [String: String] ?? [:]
        #expect(stats["pid"] == String(server.pid))
        #expect(stats["version"] != nil)
        #expect(response(entries[14])["message"] as? String == stats["version"])
        // Sizes are what went over the wire.
        let sent = client.segments.filter { $0.0 == .clientToServer }.reduce(0) { $0 + $1.1.count }
        let received = client.segments.filter { $0.0 == .serverToClient }.reduce(0) { $0 + $1.1.count }
        #expect(entries.reduce(0) { $0 + ($1["requestSize"] as? Int ?? 0) } == sent)
        #expect(entries.reduce(0) { $0 + ($1["responseSize"] as? Int ?? 0) } == received)

        // The same recording split at every byte gives the same entries.
        let bytewise = client.segments.flatMap { seg in seg.1.map { (seg.0, [$0]) } }
        #expect(normalized(h.runTCP(segments: bytewise)) == entries.map(normalized))
    }
}

// MARK: - A real memcached and a recording client

private struct SocketError: Error, CustomStringConvertible {
    var description: String
}

/// `memcached -l 127.0.0.1 -p <free port> -U 0`, started for one test.
private final class MemcachedServer {
    let process = Process()
    let port: UInt16
    var pid: Int32 { process.processIdentifier }

    init() throws {
        port = try freePort()
        process.executableURL = URL(fileURLWithPath: memcachedBinary)
        var arguments = ["-l", "127.0.0.1", "-p", String(port), "-U", "0", "-m", "16", "-t", "1"]
        if geteuid() == 0 { arguments += ["-u", "root"] }  // memcached refuses root without -u
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until it accepts connections.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let fd = try? connectTCP(port: port) {
                Glibc.close(fd)
                return
            }
            guard process.isRunning else { break }
            usleep(20_000)
        }
        stop()
        throw SocketError(description: "memcached did not start on port \(port)")
    }

    func stop() {
        guard process.isRunning else { return }
        // SIGKILL, not terminate(): a child spawned from a Swift Testing worker thread
        // inherits that thread's blocked signal mask, so SIGTERM would stay pending forever.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// A plain TCP client that records every byte it sends and receives, in order.
private final class RecordingClient {
    let fd: Int32
    var segments: [(HarnessDirection, [UInt8])] = []

    init(port: UInt16) throws {
        fd = try connectTCP(port: port)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func close() { Glibc.close(fd) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw SocketError(description: "send failed: errno \(errno)") }
            sent += n
        }
        segments.append((.clientToServer, bytes))
    }

    /// Sends a request and records what comes back until the reply ends with `terminator`.
    func exchange(_ text: String, until terminator: String) throws { try exchange(Array(text.utf8), until: terminator) }

    func exchange(_ bytes: [UInt8], until terminator: String) throws {
        try send(bytes)
        let end = Array(terminator.utf8)
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !(reply.count >= end.count && Array(reply.suffix(end.count)) == end) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw SocketError(description: "recv failed (\(n), errno \(errno)) after \(reply.count) bytes") }
            reply += buffer[..<n]
            segments.append((.serverToClient, Array(buffer[..<n])))
        }
    }
}

private func loopback(port: UInt16) -> sockaddr_in {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    return addr
}

private func connectTCP(port: UInt16) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw SocketError(description: "socket failed: errno \(errno)") }
    var addr = loopback(port: port)
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else {
        Glibc.close(fd)
        throw SocketError(description: "connect to 127.0.0.1:\(port) failed: errno \(errno)")
    }
    return fd
}

/// A port nothing listens on right now (bind to 0, read it back, release it).
private func freePort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw SocketError(description: "socket failed: errno \(errno)") }
    defer { Glibc.close(fd) }
    var addr = loopback(port: 0)
    let bound = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw SocketError(description: "bind failed: errno \(errno)") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw SocketError(description: "getsockname failed: errno \(errno)") }
    return UInt16(bigEndian: addr.sin_port)
}
