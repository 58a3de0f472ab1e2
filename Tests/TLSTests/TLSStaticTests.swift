import Foundation
import Testing
import TestKit

/// OpenSSL linked into the executable, not loaded from libssl.so: a small TLS
/// server (`Tests/Fixtures/tls/static_tls_server.c`, built here against Debian's
/// libssl.a) in a pod, curl on the host (out of scope). With its symbols the
/// probes attach to the executable and its exchanges are decrypted; stripped,
/// it is reported as OpenSSL without symbols, never silently missed.
extension TLSSuites {
@Suite("TLS: OpenSSL linked statically")
struct TLSStaticTests {
    static var available: Bool {
        TestProcess.which("cc") != nil && FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/libssl.a")
    }

    @Test("with symbols: probes on the executable, every exchange decrypted; stripped: reported",
          .enabled(if: available, "needs cc and libssl-dev's libssl.a"), arguments: [false, true])
    func staticServer(stripped: Bool) throws {
        let pod = try TLSServerPod(tag: stripped ? "tss" : "tsu", subnet: 85)
        defer { pod.remove() }
        let exe = pod.directory.appendingPathComponent("static-tls").path
        let source = TestProcess.repoRoot.appendingPathComponent("Tests/Fixtures/tls/static_tls_server.c").path
        let cc = try TestProcess.run(TestProcess.which("cc")!, ["-O1", "-o", exe, source, "-Wl,-Bstatic", "-lssl", "-lcrypto",
                                                                "-Wl,-Bdynamic", "-ldl", "-pthread"])
        try #require(cc.status == 0, "cc: \(cc.stderr)")
        if stripped { _ = try TestProcess.run("/usr/bin/strip", ["-s", exe]) }
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        server.arguments = ["netns", "exec", pod.namespace, exe, pod.address, "8444",
                            pod.directory.appendingPathComponent("cert.pem").path, pod.directory.appendingPathComponent("key.pem").path]
        let serverOut = Pipe()
        server.standardOutput = serverOut
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        #expect(TestProcess.waitFor("listening", in: serverOut, timeout: 10).contains("listening"))

        let capture = TestProcess.unblocked(TestProcess.kubeshark, [
            "dissect", "--live", "-i", pod.hostInterface, "--bpf", "tcp port 8444", "--tls-netns", pod.namespace, "--output", "json"])
        func get(_ path: String) -> Int? {
            let r = try? TestProcess.run("/usr/bin/curl", ["-sk", "--http1.1", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}",
                                                           "https://\(pod.address):8444\(path)"])
            return r.flatMap { Int($0.stdout) }
        }
        let run = try TestProcess.liveRun(capture) { _ in
            usleep(1_000_000)  // the tracer's first scan of the namespace's processes
            for path in ["/static-1", "/static-2", "/static-3"] { #expect(get(path) == 200) }
        }
        #expect(run.started, "capture did not start: \(run.stderr)")
        let (entries, stderr) = (run.entries, run.stderr)
        if stripped {
            #expect(stderr.contains("(static-tls): OpenSSL linked statically, without symbols: not covered by TLS capture"), "\(stderr)")
            #expect(entries.isEmpty, "\(entries)")
        } else {
            #expect(stderr.contains("(static-tls): OpenSSL linked statically: probes attached to the executable"), "\(stderr)")
            #expect(entries.compactMap { $0["summary"] as? String }.sorted() == ["/static-1", "/static-2", "/static-3"], "\(entries) \(stderr)")
            #expect(entries.allSatisfy { $0["tls"] as? Bool == true && $0["process"] as? String == "static-tls" && $0["status"] as? Int == 200 })
        }
    }
}
}
