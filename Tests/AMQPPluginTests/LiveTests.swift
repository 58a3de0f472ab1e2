import Foundation
import Testing

/// A real rabbitmq-server and pika client (Tests/Fixtures/amqp/live_capture.py),
/// captured with tcpdump and dissected by the built kubeshark binary. Skipped
/// when rabbitmq-server, tcpdump, pika or root are missing.
@Suite struct LiveTests {
    @Test func rabbitmqAndPika() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: CorpusTests.kubeshark),
            FileManager.default.fileExists(atPath: "/usr/lib/rabbitmq/bin/rabbitmq-server"),
            // Debian's python3 has python3-pika (scripts/install-deps); another python3 first on PATH may not.
            let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : Tools.which("python3")
        else {
            print("LiveTests: skipped (needs root, kubeshark, rabbitmq-server, python3)")
            return
        }
        let pcap = FileManager.default.temporaryDirectory.appendingPathComponent("ks-amqp-\(getpid()).pcap").path
        defer { try? FileManager.default.removeItem(atPath: pcap) }
        let script = Tools.repoRoot.appendingPathComponent("Tests/Fixtures/amqp/live_capture.py").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [script, pcap]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        if p.terminationStatus == 77 {
            print("LiveTests: skipped (tcpdump, epmd or pika missing)")
            return
        }
        #expect(p.terminationStatus == 0)
        guard p.terminationStatus == 0 else { return }
        let e = try dissectWithKubeshark(pcap)
        #expect(e.map { $0.method ?? "" } == liveSessionMethods)
        guard e.count == 15 else { return }
        #expect(e[0].response?.args?.str("response") == "[redacted]")
        #expect(e[4].request?.args?.obj("arguments")?.int("x-max-length") == 100)
        let pub = e[7].request
        #expect(pub?.str("body") == "hello from pika")
        #expect(pub?.obj("properties")?.obj("headers")?.str("s") == "v")
        #expect(pub?.obj("properties")?.obj("headers")?.int("n") == 1)
        #expect(e[8].flags == ["truncated"] && e[8].request?.int("bodySize") == 300_000)
        #expect(e[9].response?.method == "basic.get-ok" && e[9].response?.str("body") == "hello from pika")
        #expect(e[10].response?.int("bodySize") == 300_000)
        #expect(e[11].str("statusText") == "empty")
        #expect(e[14].response?.method == "connection.close-ok")
        #expect(e.allSatisfy { !$0.flags.contains("malformed") && !$0.flags.contains("requestOnly") })
    }
}
