import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TestKit
import Testing

/// TLS capture in a worker that takes its targets from a hub by address, as in a
/// cluster (`worker --pods --by-address`): the pods' network namespaces have no
/// names there, so the tracer finds the processes whose namespace holds a
/// targeted pod's IP. Two nginx "pods" with TLS; only one is targeted.
extension TLSSuites {
@Suite("TLS of targeted pods, by address")
struct TLSTargetedPodsTests {
    @Test("a pod targeted by its IP has its HTTPS decrypted; an untargeted one's is not")
    func targetedByAddress() throws {
        let web = try TLSServerPod(tag: "tpa", subnet: 88)
        defer { web.remove() }
        let other = try TLSServerPod(tag: "tpb", subnet: 89)
        defer { other.remove() }
        let worker = try RunningKubeshark(["--pods", "--by-address", "--netns", "^none$", "--name", "node-a"])
        defer { _ = worker.stop() }
        // What a hub sends: the targeted pod, by name and address only.
        var put = URLRequest(url: URL(string: worker.base + "/api/targets")!)
        put.httpMethod = "PUT"
        put.setValue("application/json", forHTTPHeaderField: "Content-Type")
        put.httpBody = Data(#"{"pods": [{"name": "web-tls", "namespace": "shop", "ips": ["\#(web.address)"]}]}"#.utf8)
        #expect(try worker.send(put).0 == 200)
        var ready = false
        for _ in 0..<50 where !ready {
            Thread.sleep(forTimeInterval: 0.1)
            ready = worker.log.contains("capturing 1 pod(s)")
        }
        #expect(ready, "\(worker.log)")
        // The tracer rescans /proc for the namespace's processes; give it a moment.
        Thread.sleep(forTimeInterval: 1.5)
        for path in ["/targeted-1", "/targeted-2"] { #expect(web.curl(["--http1.1", path]) == 404) }
        #expect(web.curl(["--http2", "/targeted-h2"]) == 404)
        #expect(other.curl(["--http1.1", "/not-targeted"]) == 404)

        let client = TestProcess.repoRoot.appendingPathComponent("Tests/WorkerTests/ws_client.py").path
        let pcap = worker.dataDirectory + "-first.pcap"
        defer { try? FileManager.default.removeItem(atPath: pcap) }
        let ws = try TestProcess.run("/usr/bin/python3", [client, worker.base, "--query", "", "--want", "3", "--idle", "4",
                                                          "--pcap-first", pcap])
        let entries = TestProcess.jsonLines(ws.stdout).filter { $0["type"] as? String == "entry" }.compactMap { $0["entry"] as? [String: Any] }
        let paths = entries.compactMap { $0["summary"] as? String }.sorted()
        #expect(paths == ["/targeted-1", "/targeted-2", "/targeted-h2"], "\(paths) \(worker.log)")
        #expect(entries.allSatisfy { $0["tls"] as? Bool == true }, "\(entries)")
        #expect(entries.allSatisfy { ($0["dst"] as? [String: Any])?["name"] as? String == "web-tls" }, "\(entries)")
        #expect(entries.compactMap { $0["process"] as? String }.allSatisfy { $0.hasPrefix("nginx") }, "\(entries)")
        #expect(!worker.log.contains("not-targeted"))

        // The first entry's pcap is its decrypted stream: tshark reads the request and the
        // response in it, with valid IP and TCP checksums (the wire held only ciphertext).
        let first = try #require(entries.first?["summary"] as? String)
        let tshark = try TestProcess.run("/usr/bin/tshark", ["-r", pcap, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
                                                             "-T", "fields", "-e", "http.request.uri", "-e", "http2.header.value",
                                                             "-e", "http.response.code", "-e", "tcp.checksum.status", "-e", "ip.checksum.status"])
        #expect(tshark.status == 0, "\(tshark.stderr)")
        #expect(tshark.stdout.contains(first), "tshark: \(tshark.stdout)")
        let statuses = tshark.stdout.split(separator: "\n").flatMap { $0.split(separator: "\t").suffix(2) }
        #expect(!statuses.isEmpty && Set(statuses) == ["1"], "every checksum checked and good: \(tshark.stdout)")
        let tcpdump = try TestProcess.run("/usr/bin/tcpdump", ["-nr", pcap])
        #expect(tcpdump.status == 0 && tcpdump.stdout.contains("Flags [S]"), "\(tcpdump.stdout) \(tcpdump.stderr)")
    }
}
}
