import Foundation
import Testing

/// `kubeshark dissect` on real captures: the committed recordings, the public
/// corpus (compared with tshark 4.0, which calls Redis "resp"), and a live
/// recording against redis-server.
///
/// tshark 4.0 decodes RESP2 only: no inline commands (tcpdump__resp_2_inline,
/// zeek__redis-pipelining are inline, so tshark finds no command there) and no
/// RESP3 types (zeek__redis-attr-resp3 uses inline commands and `|` attributes).
/// We compare the RESP-array commands tshark decodes in frames sent to the server
/// with the array commands of our entries: every tshark command must be ours.
@Suite(.serialized) struct CaptureTests {
    static var fixtureFiles: [String] {
        ["commands", "resp3", "pubsub", "pipelined"].map { Tools.fixtures.appendingPathComponent("\($0).pcap").path }
    }

    static var corpusFiles: [String] {
        guard let dir = Tools.corpus,
            let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path)
        else { return [] }
        return names.filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
            .map { dir.appendingPathComponent($0).path }
    }

    static var fixturePort: Int {
        (try? String(contentsOf: Tools.fixtures.appendingPathComponent("port"), encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 6379
    }

    /// Dissects `file`, checks the run, and compares commands with tshark when it is installed.
    @discardableResult
    func compare(_ file: String, serverPort: Int) throws -> [JSON] {
        let (entries, result) = try Tools.dissect(file)
        let name = (file as NSString).lastPathComponent
        #expect(result.status == 0, "\(name): dissect failed: \(result.stderr.suffix(2000))")
        #expect(entries.allSatisfy { ($0["protocol"] as? JSON)?.str("name") == "redis" })
        guard Tools.which("tshark") != nil else {
            print("tshark-agreement \(name): skipped, tshark is not installed")
            return entries
        }
        let theirs = try Tools.tsharkCommands(file, serverPorts: [serverPort])
        let ours = arrayCommands(entries)
        let lost = missing(theirs, from: ours)
        print("tshark-agreement \(name): \(theirs.count - lost.count)/\(theirs.count) tshark commands found "
              + "(we emitted \(entries.count) entries, \(ours.count) RESP-array commands)")
        #expect(lost.isEmpty, "\(name): tshark commands we lack: \(lost)")
        return entries
    }

    @Test(.enabled(if: Tools.hasKubeshark, "kubeshark binary not built"))
    func committedRecordings() throws {
        let port = Self.fixturePort
        let commands = try compare(Self.fixtureFiles[0], serverPort: port)
        let methods = Set(commands.compactMap(\.method))
        for m in ["SET", "GET", "HSET", "HGETALL", "LPUSH", "LRANGE", "SADD", "SMEMBERS", "INCR", "AUTH"] {
            #expect(methods.contains(m), "commands.pcap lacks \(m)")
        }
        #expect(commands.allSatisfy { !$0.flags.contains("responseOnly") && !$0.flags.contains("requestOnly") })
        let auth = commands.first { $0.method == "AUTH" }
        #expect(auth?.request?.strings("args") == ["AUTH", "[redacted]"])
        let raw = try Tools.run(Tools.kubeshark, ["dissect", Self.fixtureFiles[0], "--plugins", "redis"])
        #expect(!raw.stdout.contains("sekrit-password"))

        let resp3 = try compare(Self.fixtureFiles[1], serverPort: port)
        #expect(resp3.filter { $0.method == "HELLO" }.allSatisfy { $0.response?.str("type") == "map" })
        let hgetall = resp3.first { $0.method == "HGETALL" }
        #expect(hgetall?.response?.str("type") == "map")
        #expect(hgetall?.response?.obj("value")?.str("f1") == "v1")
        #expect(resp3.first { $0.method == "SMEMBERS" }?.response?.str("type") == "set")

        let pubsub = try compare(Self.fixtureFiles[2], serverPort: port)
        #expect(pubsub.filter { $0.method == "MESSAGE" }.count == 2)   // RESP2 subscriber
        #expect(pubsub.filter { $0.method == "PMESSAGE" }.count == 2)  // RESP3 subscriber (pushes)
        #expect(pubsub.filter { $0.method == "MESSAGE" || $0.method == "PMESSAGE" }.allSatisfy { $0.request == nil })
        #expect(pubsub.filter { $0.method == "PUBLISH" }.count == 2)

        let pipelined = try compare(Self.fixtureFiles[3], serverPort: port)
        let sets = pipelined.filter { $0.method == "SET" }.count
        let gets = pipelined.filter { $0.method == "GET" }.count
        #expect(sets >= 200 && gets >= 200)
        #expect(pipelined.allSatisfy { $0.flags.isEmpty })
        #expect(pipelined.filter { $0.method == "GET" }.allSatisfy { $0.response?.str("type") == "bulk-string" })
    }

    @Test("corpus file agrees with tshark", .enabled(if: Tools.hasKubeshark, "kubeshark binary not built"),
          .enabled(if: Tools.corpus != nil, "../shared/corpus/redis is absent"), arguments: corpusFiles)
    func corpus(path: String) throws {
        let entries = try compare(path, serverPort: 6379)
        let name = (path as NSString).lastPathComponent
        #expect(!entries.isEmpty, "\(name): no entries")
        switch name {
        case "tcpdump__resp_3_malicious.pcap":
            // Hostile input: Redis answers most of it with errors; we keep going and flag what we cannot parse.
            #expect(entries.contains { $0.flags.contains("malformed") })
            #expect(entries.filter { $0.method == "PING" }.count >= 5)
        case "tcpdump__resp_2_inline.pcap":
            // tshark decodes none of these inline commands; we do.
            #expect(entries.allSatisfy { $0.request?.str("type") == "inline" })
        case "zeek__redis-auth.pcap":
            for e in entries where e.method == "AUTH" {
                #expect(e.request?.strings("args")?.dropFirst().last == "[redacted]")
            }
        case "zeek__redis-pubsub-resp3.pcap", "zeek__redis-pubsub.pcap":
            #expect(entries.contains { $0.method == "MESSAGE" || $0.method == "PMESSAGE" || $0.method == "SMESSAGE" })
        case "zeek__redis-attr-resp3.pcap":
            #expect(entries.contains { $0.response?["attributes"] != nil || "\($0.response ?? [:])".contains("attributes") })
        default:
            break
        }
    }

    static var canRecord: Bool {
        Tools.isRoot && ["redis-server", "redis-cli", "redis-benchmark", "tcpdump", "python3", "timeout"].allSatisfy { Tools.which($0) != nil }
    }

    /// Starts redis-server, records redis-cli, redis-cli -3, pub/sub and redis-benchmark
    /// (pipelined) with tcpdump using the same script as the committed captures.
    @Test("real peers: redis-server, redis-cli, redis-benchmark",
          .enabled(if: Tools.hasKubeshark, "kubeshark binary not built"),
          .enabled(if: canRecord, "needs root and redis-server, redis-tools, tcpdump (apt-get install redis-server redis-tools tcpdump)"))
    func realPeers() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("redis-live-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = Tools.fixtures.appendingPathComponent("record-redis.sh").path
        // SIGKILL after 3 minutes: nothing can hang the test run.
        let r = try Tools.run(Tools.which("timeout") ?? "/usr/bin/timeout", ["-s", "KILL", "180", "/bin/bash", script, dir.path])
        try #require(r.status == 0, "recording failed: \(r.stderr)")
        let port = Int((try String(contentsOf: dir.appendingPathComponent("port"), encoding: .utf8))
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 6379
        var total = 0
        for name in ["commands", "resp3", "pubsub", "pipelined"] {
            let entries = try compare(dir.appendingPathComponent("\(name).pcap").path, serverPort: port)
            #expect(!entries.isEmpty, "\(name): no entries")
            total += entries.count
        }
        #expect(total > 400)
    }
}
