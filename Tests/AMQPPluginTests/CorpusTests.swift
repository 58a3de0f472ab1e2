import Foundation
import Testing

/// Our methods against tshark's over the shared corpus: the same (channel, class,
/// method) multiset per file, no malformed entries.
@Suite struct CorpusTests {
    static var kubeshark: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("kubeshark").path
    }

    static var files: [String] {
        guard let dir = Tools.corpus,
            let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path)
        else { return [] }
        return names.filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
    }

    @Test(arguments: files)
    func methodsMatchTshark(file: String) throws {
        guard let dir = Tools.corpus else { return }
        try compareWithTshark(dir.appendingPathComponent(file).path, port: nil)
    }

    /// The committed recording (Tests/Fixtures/amqp/live_capture.py with a 20,000-byte
    /// body against rabbitmq-server): the whole session in order, and tshark agrees.
    @Test func committedRecording() throws {
        let fixtures = Tools.repoRoot.appendingPathComponent("Tests/Fixtures/amqp")
        let path = fixtures.appendingPathComponent("pika-session.pcap").path
        let port = Int(try String(contentsOfFile: fixtures.appendingPathComponent("port").path, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines))
        guard FileManager.default.isExecutableFile(atPath: Self.kubeshark) else { return }
        let e = try dissectWithKubeshark(path)
        #expect(e.map { $0.method ?? "" } == liveSessionMethods)
        let headers = e.first { $0.str("summary") == "ks-ex/rk" }?.request?.obj("properties")?.obj("headers")
        #expect(headers?.int("n") == 1 && headers?.str("s") == "v")
        try compareWithTshark(path, port: port)
    }

    /// Our (channel, class, method) multiset equals tshark's, and nothing is malformed.
    func compareWithTshark(_ path: String, port: Int?, sourceLocation: SourceLocation = #_sourceLocation) throws {
        guard let tshark = Tools.which("tshark"), FileManager.default.isExecutableFile(atPath: Self.kubeshark) else { return }
        let file = (path as NSString).lastPathComponent
        var ours: [String: Int] = [:]
        var malformed = 0
        let out = try Tools.run(Self.kubeshark, ["dissect", path, "--plugins", "amqp", "--output", "json"])
        for line in out.split(separator: "\n") {
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? JSON else { continue }
            if o.flags.contains("malformed") { malformed += 1 }
            for side in [o.request, o.response] {
                guard let r = side, let c = r.int("classId"), c != 0 else { continue }
                ours["\(r.int("channel") ?? -1):\(c).\(r.int("methodId") ?? -1)", default: 0] += 1
            }
        }
        let decodeAs = port.map { ["-d", "tcp.port==\($0),amqp"] } ?? []
        let t = try Tools.run(tshark, ["-n", "-r", path] + decodeAs + ["-Y", "amqp", "-T", "fields", "-E", "occurrence=a",
                                       "-E", "aggregator=,", "-e", "amqp.type", "-e", "amqp.channel",
                                       "-e", "amqp.method.class", "-e", "amqp.method.method"])
        var theirs: [String: Int] = [:]
        for line in t.split(separator: "\n") {
            let p = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard p.count >= 4 else { continue }
            let types = p[0].split(separator: ","), chans = p[1].split(separator: ",")
            let classes = p[2].split(separator: ","), methods = p[3].split(separator: ",")
            var j = 0
            for (ty, ch) in zip(types, chans) where ty == "1" {
                if j < classes.count && j < methods.count { theirs["\(ch):\(classes[j]).\(methods[j])", default: 0] += 1 }
                j += 1
            }
        }
        #expect(!theirs.isEmpty, "\(file): tshark decoded nothing", sourceLocation: sourceLocation)
        #expect(ours == theirs, "\(file)", sourceLocation: sourceLocation)
        #expect(malformed == 0, "\(file)", sourceLocation: sourceLocation)
    }
}
