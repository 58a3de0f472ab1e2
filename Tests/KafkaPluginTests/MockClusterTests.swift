import Foundation
import Testing

/// A live exchange: librdkafka's mock cluster (a small C program built by the
/// test), kcat producing (gzip, with a header) and consuming, captured with
/// tcpdump on loopback and dissected by the `kubeshark` binary.
/// Needs root, cc, librdkafka-dev, kcat and tcpdump.
@Suite(.serialized) struct MockClusterTests {
    static var available: Bool {
        Tools.isRoot && Tools.hasKubeshark && Tools.which("cc") != nil && Tools.which("kcat") != nil
            && Tools.which("tcpdump") != nil && FileManager.default.fileExists(atPath: "/usr/include/librdkafka/rdkafka_mock.h")
    }

    @Test(.enabled(if: available, "needs root, cc, librdkafka-dev, kcat, tcpdump and the kubeshark binary"))
    func produceAndConsumeThroughMockCluster() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kafka-mock-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let exe = dir.appendingPathComponent("mockcluster").path
        let cc = try Tools.run(Tools.which("cc")!, ["-O1", "-o", exe,
            Tools.fixtures.appendingPathComponent("mockcluster.c").path, "-lrdkafka"])
        try #require(cc.status == 0, "cc: \(cc.stderr)")

        let mock = Process()
        mock.executableURL = URL(fileURLWithPath: exe)
        mock.arguments = ["60"]
        let out = Pipe()
        mock.standardOutput = out
        mock.standardError = FileHandle.nullDevice
        try mock.run()
        defer { kill(mock.processIdentifier, SIGKILL); mock.waitUntilExit() }
        var text = ""
        let deadline = Date().addingTimeInterval(10)
        while !text.contains("\n"), Date() < deadline {
            let d = out.fileHandleForReading.availableData
            if d.isEmpty { break }
            text += String(decoding: d, as: UTF8.self)
        }
        let bootstrap = text.split(separator: "\n").first.map(String.init) ?? ""
        try #require(bootstrap.contains(":"), "no bootstrap from mock cluster: \(text)")
        let port = String(bootstrap.split(separator: ":").last!)

        let pcap = dir.appendingPathComponent("kafka.pcap").path
        let dump = Process()
        dump.executableURL = URL(fileURLWithPath: Tools.which("tcpdump")!)
        dump.arguments = ["-U", "-i", "lo", "-w", pcap, "tcp", "port", port]
        dump.standardOutput = FileHandle.nullDevice
        dump.standardError = FileHandle.nullDevice
        try dump.run()
        Thread.sleep(forTimeInterval: 1.5)

        let kcat = Tools.which("kcat")!
        // Long enough that librdkafka finds gzip worth it (it sends small batches plain).
        let long = String(repeating: "hello ", count: 100)
        let timeout = Tools.which("timeout") ?? "/usr/bin/timeout"
        let produce = try Tools.run(timeout, ["-s", "KILL", "20", kcat, "-b", bootstrap, "-P", "-t", "orders", "-K:",
                                              "-H", "trace=abc", "-z", "gzip"], stdin: "k1:\(long)\nk2:world\n")
        #expect(produce.status == 0, "kcat -P: \(produce.stderr)")
        let consume = try Tools.run(timeout, ["-s", "KILL", "20", kcat, "-b", bootstrap, "-C", "-t", "orders",
                                              "-o", "beginning", "-e", "-f", "%k=%s\\n"])
        #expect(consume.stdout.contains("k2=world"), "kcat -C: \(consume.stdout) \(consume.stderr)")
        Thread.sleep(forTimeInterval: 1)
        kill(dump.processIdentifier, SIGKILL)
        dump.waitUntilExit()

        let (entries, result) = try Tools.dissect(pcap)
        #expect(result.status == 0, "\(result.stderr.suffix(1000))")
        let methods = Set(entries.compactMap(\.method))
        for m in ["ApiVersions", "Metadata", "Produce", "Fetch"] { #expect(methods.contains(m), "no \(m) in \(methods)") }
        #expect(entries.allSatisfy { !$0.flags.contains("malformed") })
        let produceEntries = entries.filter { $0.method == "Produce" }
        try #require(!produceEntries.isEmpty)
        #expect(produceEntries.allSatisfy { $0.str("summary") == "orders" && $0.str("statusText") == "NONE" })
        // librdkafka usually sends both messages in one batch, but under load its linger
        // timer can fire between them: the records are gathered across every Produce.
        let batches = produceEntries.flatMap { e -> [JSON] in
            e.request?.obj("payload")?.arr("topics")?.first?.arr("partitions")?.first?.arr("records") ?? []
        }
        let records = batches.flatMap { $0.arr("records") ?? [] }
        #expect(records.compactMap { $0.str("value") } == [long, "world"])
        #expect(records.first?.arr("headers")?.first?.str("key") == "trace")
        // The long value is worth compressing; librdkafka gzips the batch that carries it.
        #expect(batches.first?.str("compression") == "gzip")
        // The consumer's fetch responses carry the records back.
        let fetched = entries.filter { $0.method == "Fetch" }.flatMap { e -> [String] in
            let parts = e.response?.obj("payload")?.arr("responses")?.flatMap { $0.arr("partitions") ?? [] } ?? []
            return parts.flatMap { $0.arr("records") ?? [] }.flatMap { $0.arr("records") ?? [] }
                .compactMap { $0.str("value") }
        }
        #expect(fetched.contains("world"), "fetch responses: \(fetched)")
        print("mock-cluster: \(entries.count) entries, methods \(methods.sorted())")
    }
}
