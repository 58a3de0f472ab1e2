// The plugin over real traffic: the recordings in Tests/Fixtures/http2 (made
// by record.sh against grpcio, nghttp/nghttpd, python3-h2 and curl), the
// public corpus in ../shared/corpus/{http2,grpc}, compared with tshark, and a
// live exchange with a python3-h2 server captured by tcpdump.

import Foundation
import Testing

private func fixture(_ name: String) -> String { Tools.fixtures.appendingPathComponent(name).path }

@Suite struct RecordingTests {
    @Test func grpcCalls() throws {
        let entries = try Tools.dissect(fixture("grpc-calls.pcap"))
        #expect(entries.map { $0.request?.str("rpcMethod") ?? "" } == ["Unary", "ServerStream", "ClientStream", "Bidi", "Fail"])
        #expect(entries.map { $0.str("streaming") ?? "" } == ["unary", "serverStreaming", "clientStreaming", "bidiStreaming", "unary"])
        #expect(entries.map { $0.request?.arr("messages")?.count ?? -1 } == [1, 1, 4, 2, 1])
        #expect(entries.map { $0.response?.arr("messages")?.count ?? -1 } == [1, 3, 1, 2, 0])
        #expect(entries.map { $0.response?.int("grpcStatus") ?? -1 } == [0, 0, 0, 0, 5])
        #expect(entries.allSatisfy { ($0["protocol"] as? JSON)?.str("name") == "grpc" && $0.flags.isEmpty })
        let fail = entries[4]
        #expect(fail.response?.str("grpcMessage") == "no such thing: item 42")
        #expect(fail.str("statusText") == "NOT_FOUND")
        // The server-streaming replies, decoded as protobuf without a schema.
        let names = entries[1].response?.arr("messages")?.compactMap { $0.arr("protobuf")?.first?.str("string") }
        #expect(names == ["server item", "server item", "server item"])
        let counts = entries[1].response?.arr("messages")?.compactMap { $0.arr("protobuf")?[1].int("value") }
        #expect(counts == [0, 1, 2])
        let inner = entries[0].request?.arr("messages")?.first?.arr("protobuf")?[2].arr("message")?.first?.str("string")
        #expect(inner == "note-7")
    }

    @Test func grpcGzip() throws {
        let entries = try Tools.dissect(fixture("grpc-gzip.pcap"))
        try #require(entries.count == 5)
        let msgs = entries.flatMap { ($0.request?.arr("messages") ?? []) + ($0.response?.arr("messages") ?? []) }
        #expect(msgs.contains { $0.bool("compressed") == true })
        for m in msgs where m.bool("compressed") == true {
            #expect(m.bool("decoded") == true)
            #expect(m.arr("protobuf")?.first?.str("string") != nil)
        }
        #expect(entries[2].response?.arr("messages")?.first?.arr("protobuf")?[1].int("value") == 4)
        #expect(entries.allSatisfy { $0.request?.str("grpcEncoding") == "gzip" })
    }

    @Test func nghttpPriorKnowledge() throws {
        let entries = try Tools.dissect(fixture("nghttp-prior-knowledge.pcap"))
        #expect(entries.map { "\($0.str("method") ?? "") \($0.str("summary") ?? "") \($0.int("status") ?? 0)" }
            == ["GET /index.html 200", "GET /missing?x=1&y=two 404", "POST /index.html 200"])
        #expect(entries[0].response?.obj("content")?.str("text")?.contains("hello from nghttpd") == true)
        #expect(entries[1].request?.arr("queryString")?.count == 2)
        #expect(entries[2].request?.obj("postData")?.str("text") == "posted=1&name=kubeshark")
    }

    @Test func h2Features() throws {
        let entries = try Tools.dissect(fixture("h2-features.pcap"))
        let byPath = Dictionary(entries.map { ($0.request?.str("path") ?? "", $0) }) { a, _ in a }
        let gz = try #require(byPath["/gzip"]?.response?.obj("content"))
        #expect(gz.bool("decoded") == true)
        #expect(gz.str("text")?.hasPrefix("compressed hello from h2") == true)
        let tr = try #require(byPath["/trailers"])
        #expect(tr.response?.header("x-checksum", in: "trailers") == "abc123")
        #expect(tr.response?.obj("content")?.str("text") == "body before trailers\n")
        let big = try #require(byPath["/big"])
        #expect(big.response?.int("bodySize") == 40960)
        #expect(big.response?.obj("content")?.str("encoding") == "base64")
        let reset = try #require(byPath["/reset"])
        #expect(reset.obj("rstStream")?.str("error") == "CANCEL")
        #expect(byPath["/echo"]?.response?.obj("content")?.str("text") == "{\"echo\":23}")
    }

    @Test func upgradeRecordings() throws {
        let up = try Tools.dissect(fixture("nghttp-upgrade.pcap"))
        try #require(up.count == 1)
        #expect(up[0].obj("upgrade")?.bool("accepted") == true)
        #expect(up[0].response?.obj("content")?.bool("decoded") == true)
        #expect(up[0].int("streamId") == 1)
        let refused = try Tools.dissect(fixture("upgrade-refused.pcap"))
        try #require(refused.count == 1)
        #expect(refused[0].obj("upgrade")?.bool("accepted") == false)
        #expect(refused[0].int("status") == 200)
        #expect(refused[0].response?.obj("content")?.str("text")?.contains("hello from nghttpd") == true)
    }
}

/// Every request/response tshark decodes (method, path, :status, grpc-status per
/// stream) must be ours too, over the corpus and the recordings.
@Suite(.serialized) struct TsharkAgreementTests {
    struct Tally {
        var compared = 0
        var agreed = 0
        var notes: [String] = []
    }

    /// Compares one file; returns the tally.
    static func compare(_ path: String, decodeAs: String?, expectAgreement: Bool = true) throws -> Tally {
        let name = (path as NSString).lastPathComponent
        let ours = try Tools.dissect(path)
        var byKey: [String: JSON] = [:]
        for e in ours { if let k = streamKey(e) { byKey[k] = e } }
        let theirs = try Tshark.streams(path, decodeAs: decodeAs)
        var t = Tally()
        for (key, s) in theirs.sorted(by: { $0.key < $1.key }) {
            t.compared += 1
            guard let e = byKey[key] else {
                t.notes.append("\(name) \(key): tshark has \(s), we have no entry")
                continue
            }
            var same = true
            if let m = s.method, m != e.str("method") { same = false; t.notes.append("\(name) \(key): method \(m) vs \(e.str("method") ?? "nil")") }
            if let p = s.path, p != e.str("summary") { same = false; t.notes.append("\(name) \(key): path \(p) vs \(e.str("summary") ?? "nil")") }
            if let st = s.status, st != e.int("status") { same = false; t.notes.append("\(name) \(key): status \(st) vs \(e.int("status") ?? 0)") }
            if let g = s.grpcStatus, g != e.response?.int("grpcStatus") { same = false; t.notes.append("\(name) \(key): grpc-status \(g) vs \(e.response?.int("grpcStatus") ?? -1)") }
            if same { t.agreed += 1 }
        }
        print("tshark-agreement \(name): \(t.agreed)/\(t.compared) streams agree; our entries: \(ours.count)")
        for n in t.notes { print("  \(n)") }
        return t
    }

    @Test(.enabled(if: Tools.corpusRoot != nil && Tools.hasTshark, "corpus (../shared/corpus) or tshark missing"))
    func corpus() throws {
        var total = Tally()
        for file in Tools.corpusFiles {
            let name = (file as NSString).lastPathComponent
            let t = try Self.compare(file, decodeAs: Tools.decodeAs(file))
            total.compared += t.compared
            total.agreed += t.agreed
            #expect(t.compared > 0 || name.contains("unknown-malformed"), "\(name): tshark saw no HTTP/2 stream")
            #expect(t.agreed == t.compared, "\(name): \(t.notes.joined(separator: "; "))")
        }
        print("tshark-agreement corpus: \(total.agreed)/\(total.compared) streams agree")
    }

    @Test(.enabled(if: Tools.hasTshark, "tshark missing"))
    func recordings() throws {
        var total = Tally()
        for file in Tools.files(Tools.fixtures) {
            let port = try Tools.serverPort(file)
            // An h2c upgrade starts as HTTP/1.1: tshark follows it from its HTTP dissector.
            let proto = file.contains("upgrade") ? "http" : "http2"
            let t = try Self.compare(file, decodeAs: port.map { "tcp.port==\($0),\(proto)" })
            total.compared += t.compared
            total.agreed += t.agreed
            #expect(t.agreed == t.compared, "\((file as NSString).lastPathComponent): \(t.notes.joined(separator: "; "))")
        }
        #expect(total.compared >= 19)
        print("tshark-agreement recordings: \(total.agreed)/\(total.compared) streams agree")
    }
}

/// A live exchange: the python3-h2 server on a free loopback port, nghttp as the
/// client, recorded by tcpdump, dissected.
@Suite struct LiveTests {
    static var canRun: Bool {
        getuid() == 0 && TestProcess.which("tcpdump") != nil && TestProcess.which("nghttp") != nil
            && FileManager.default.fileExists(atPath: "/usr/bin/python3")
    }

    static func freePort() -> Int {
        let r = try? TestProcess.run("/usr/bin/python3", ["-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"])
        return Int(r?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
    }

    static func waitForPort(_ port: Int) {
        for _ in 0..<100 {
            let r = try? TestProcess.run("/usr/bin/python3", ["-c", "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',\(port))))"])
            if r?.status == 0 { return }
            usleep(100_000)
        }
    }

    @Test(.enabled(if: canRun, "needs root, tcpdump, nghttp and /usr/bin/python3"))
    func liveServer() throws {
        let port = Self.freePort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = [Tools.fixtures.appendingPathComponent("h2_server.py").path, String(port)]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        // Swift Testing blocks SIGTERM/SIGINT in its threads: stop children with SIGKILL.
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        Self.waitForPort(port)
        let pcap = FileManager.default.temporaryDirectory.appendingPathComponent("ks-http2-live-\(port).pcap").path
        defer { try? FileManager.default.removeItem(atPath: pcap) }
        let dump = Process()
        dump.executableURL = URL(fileURLWithPath: TestProcess.which("tcpdump")!)
        dump.arguments = ["-i", "lo", "--immediate-mode", "-U", "-s", "0", "-w", pcap, "tcp port \(port)"]
        let err = Pipe()
        dump.standardError = err
        dump.standardOutput = FileHandle.nullDevice
        try dump.run()
        usleep(1_000_000)
        let r = try TestProcess.run(TestProcess.which("nghttp")!, ["-n", "http://127.0.0.1:\(port)/echo", "http://127.0.0.1:\(port)/gzip",
                                                                    "http://127.0.0.1:\(port)/nope"])
        #expect(r.status == 0, "nghttp: \(r.stderr)")
        usleep(1_500_000)
        kill(dump.processIdentifier, SIGKILL)
        dump.waitUntilExit()
        let entries = try Tools.dissect(pcap)
        let rows = Set(entries.map { "\($0.str("method") ?? "") \($0.str("summary") ?? "") \($0.int("status") ?? 0)" })
        #expect(rows == ["GET /echo 200", "GET /gzip 200", "GET /nope 404"])
        #expect(entries.first { $0.str("summary") == "/gzip" }?.response?.obj("content")?.bool("decoded") == true)
    }
}

/// Corpus files with a particular story.
@Suite(.enabled(if: Tools.corpusRoot != nil, "corpus (../shared/corpus) missing"))
struct CorpusDetailTests {
    private func corpus(_ rel: String) -> String { Tools.corpusRoot!.appendingPathComponent(rel).path }

    /// 17 bytes are missing between two frames: the reader finds the next frame,
    /// and the trailers (grpc-status 0) still come out.
    @Test func gapBetweenFrames() throws {
        let e = try #require(try Tools.dissect(corpus("grpc/deepflow__grpc-server-stream.pcap")).first)
        #expect(e.response?.int("grpcStatus") == 0)
        #expect(e.request?.str("rpcMethod") == "ServerStreamQuery")
    }

    /// Two packets from the middle of a connection: fields that refer to
    /// dynamic-table entries inserted before the capture are reported, not guessed.
    @Test func midstreamUnknownIndices() throws {
        let entries = try Tools.dissect(corpus("http2/deepflow__http2-multi.pcap"))
        #expect(!entries.isEmpty)
        #expect(entries.allSatisfy { $0.bool("midstream") == true })
        #expect(entries.contains { (($0["hpackErrors"] as? [String]) ?? []).contains { $0.contains("unknown") } })
    }

    @Test func continuationFrames() throws {
        let e = try #require(try Tools.dissect(corpus("http2/suricata-verify__http2-continuation.pcap")).first)
        #expect(e.str("summary") == "/tata")
        #expect(e["hpackErrors"] == nil)
    }

    @Test func upgradeWithDeflateBody() throws {
        let e = try #require(try Tools.dissect(corpus("http2/suricata-verify__http2-upgrade-deflate.pcap")).first)
        #expect(e.obj("upgrade")?.bool("accepted") == true)
        #expect(e.response?.obj("content")?.str("contentEncoding") == "deflate")
        #expect(e.response?.obj("content")?.bool("decoded") == true)
    }
}

/// One KFL query over HTTP/1 and HTTP/2 entries: the field names are shared.
@Suite struct KFLAcrossVersionsTests {
    static var hasKubeshark: Bool { TestProcess.hasKubeshark }

    private func count(_ file: String, _ query: String) throws -> Int {
        let r = try TestProcess.run(TestProcess.kubeshark, ["dissect", file, "--plugins", "http,http2", "--output", "json", "--filter", query])
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.split(separator: "\n").count
    }

    @Test(.enabled(if: hasKubeshark, "kubeshark binary missing"))
    func sameQueryBothVersions() throws {
        let h1 = TestProcess.repoRoot.appendingPathComponent("Tests/Fixtures/captures/http1-head-204-304.pcap").path
        let h2 = Tools.fixtures.appendingPathComponent("nghttp-prior-knowledge.pcap").path
        let q = #"request.method == "GET" and response.status >= 200 and response.status < 300 and request.path.startsWith("/")"#
        #expect(try count(h1, q) == 1)  // GET /no-content 204 (HEAD and the 304 do not match)
        #expect(try count(h2, q) == 1)  // GET /index.html 200
        #expect(try count(h2, "http2") == 3)
        #expect(try count(Tools.fixtures.appendingPathComponent("grpc-calls.pcap").path,
                          #"grpc and response.grpcStatus == 5 and request.rpcMethod == "Fail""#) == 1)
    }
}
