import Foundation
import Testing
import TestKit

/// Load that starts the moment capture says "capturing on": h2load against the
/// pod's nginx, both in the traced namespace, thousands of requests on 4
/// connections at once. Every request must become exactly one entry. (The
/// "start-up loss" once reported here was the benchmark script reading the
/// previous run's "capturing on" line and starting its load too early.)
extension TLSSuites {
@Suite("TLS from the first moment")
struct TLSStartTests {
    @Test("load started right after \"capturing on\" loses nothing", arguments: [("--h1", 1000), ("-m10", 2000)])
    func loadAtOnce(mode: String, requests: Int) throws {
        let h2load = try #require(TestProcess.which("h2load"), "needs h2load (nghttp2-client)")
        let pod = try TLSServerPod(tag: "tst\(requests % 7)", subnet: 84)
        defer { pod.remove() }
        let capture = TestProcess.unblocked(TestProcess.kubeshark, [
            "dissect", "--live", "-i", pod.hostInterface, "--tls-netns", pod.namespace, "--output", "json"])
        var load: ProcessResult?
        let run = try TestProcess.liveRun(capture, settle: 3) { _ in
            load = try TestProcess.run("/usr/sbin/ip", ["netns", "exec", pod.namespace, h2load, "-n", "\(requests)", "-c", "4", mode,
                                                        "https://\(pod.address):\(pod.port)/hello.txt"])
        }
        #expect(run.started, "capture did not start: \(run.stderr)")
        let summary = load?.stdout.split(separator: "\n").first { $0.hasPrefix("requests:") }.map(String.init) ?? ""
        #expect(summary.contains("\(requests) succeeded"), "h2load: \(load?.stdout ?? "") \(load?.stderr ?? "")")
        let ok = run.entries.filter { $0["status"] as? Int == 200 && $0["summary"] as? String == "/hello.txt" }
        #expect(ok.count == requests, "\(ok.count) entries of \(requests) requests; \(run.stderr.suffix(600))")
        #expect(run.entries.allSatisfy { $0["tls"] as? Bool == true })
        #expect(run.stderr.contains(" 0 lost in the kernel ring"), "\(run.stderr.suffix(600))")
    }
}
}
