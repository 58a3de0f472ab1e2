import Foundation
import Testing
import TestKit

/// `kubeshark dissect --live --tls`: nginx over TLS (HTTP/1.1 and HTTP/2) in a
/// network namespace, real OpenSSL clients (curl, openssl s_client, Python's
/// ssl), the plaintext read by the eBPF uprobes and dissected by the same plugins.
extension TLSSuites {
@Suite("TLS capture (CLI)")
struct TLSCaptureTests {
    struct Exchange: Hashable, CustomStringConvertible {
        var method: String
        var path: String
        var status: Int
        var description: String { "\(method) \(path) \(status)" }
    }

    /// Runs `kubeshark dissect --live` on the pod's host interface with TLS scoped to
    /// `netns` (nil: the default, the namespace behind the interface), makes the traffic
    /// once capture runs, and returns the entries and stderr.
    func capture(on pod: TLSServerPod, netns: String?, traffic: () -> Void) throws -> ([[String: Any]], String) {
        let process = TestProcess.unblocked(TestProcess.kubeshark, [
            "dissect", "--live", "-i", pod.hostInterface, "--bpf", "tcp port \(pod.port)", "--output", "json"]
            + (netns.map { ["--tls-netns", $0] } ?? []))
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        var stderr = TestProcess.waitFor("capturing on", in: err)
        #expect(stderr.contains("capturing on"), "capture did not start: \(stderr)")
        #expect(tlsPrograms(heldBy: process.processIdentifier).count == 8, "the TLS probes are not loaded while capturing")
        traffic()
        usleep(1_000_000)
        process.interrupt()
        let pid = process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 20) { kill(pid, SIGKILL) }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        stderr += String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(stderr)")
        return (TestProcess.jsonLines(String(decoding: data, as: UTF8.self)), stderr)
    }

    func exchanges(_ entries: [[String: Any]]) -> [Exchange] {
        entries.compactMap { e in
            guard let m = e["method"] as? String, let p = e["summary"] as? String, let s = e["status"] as? Int else { return nil }
            return Exchange(method: m, path: p, status: s)
        }
    }

    @Test("requests to a TLS server in scope appear once each, decrypted, with tls:true and the process")
    func serverInScope() throws {
        let pod = try TLSServerPod(tag: "tlss", subnet: 70)
        defer { pod.remove() }
        var made: [Exchange] = []
        var http2Paths: Set<String> = []
        let (entries, stderr) = try capture(on: pod, netns: pod.namespace) {
            #expect(pod.curl(["--http1.1", "/hello.txt"]) == 200)
            #expect(pod.curl(["--http1.1", "-X", "POST", "-d", "a=1", "/api/items"]) == 201)
            #expect(pod.curl(["--http2", "/h2/missing"]) == 404)
            #expect(pod.curl(["--http2", "/teapot/h2"]) == 418)
            #expect(pod.sClient("/sclient") == "HTTP/1.1 404 Not Found")
            #expect(pod.python("POST", "/api/python") == 201)
            made = [Exchange(method: "GET", path: "/hello.txt", status: 200),
                    Exchange(method: "POST", path: "/api/items", status: 201),
                    Exchange(method: "GET", path: "/h2/missing", status: 404),
                    Exchange(method: "GET", path: "/teapot/h2", status: 418),
                    Exchange(method: "GET", path: "/sclient", status: 404),
                    Exchange(method: "POST", path: "/api/python", status: 201)]
            http2Paths = ["/h2/missing", "/teapot/h2"]
        }
        let tls = entries.filter { $0["tls"] as? Bool == true }
        // Exactly the requests made, each once: the ciphertext on the wire adds nothing.
        #expect(exchanges(tls).sorted { $0.path < $1.path } == made.sorted { $0.path < $1.path },
                "entries: \(exchanges(entries)) stderr: \(stderr)")
        #expect(entries.count == tls.count, "entries without tls:true: \(entries.filter { $0["tls"] as? Bool != true })")
        for e in tls {
            #expect(e["process"] as? String == "nginx")
            let dst = e["dst"] as? [String: Any]
            #expect(dst?["ip"] as? String == pod.address && dst?["port"] as? Int == pod.port)
            #expect((e["src"] as? [String: Any])?["ip"] as? String == pod.pod.hostAddress)
            let path = e["summary"] as? String ?? ""
            let proto = e["protocol"] as? [String: Any]
            if http2Paths.contains(path) {
                #expect(proto?["name"] as? String == "http2" && proto?["version"] as? String == "2",
                        "\(path): \(proto ?? [:])")
            } else {
                #expect(proto?["version"] as? String == "1.1", "\(path): \(proto ?? [:])")
            }
        }
        // Capture stopped: no probe program is left in the kernel.
        #expect(orphanedTLSPrograms().isEmpty, "left behind: \(orphanedTLSPrograms())")
    }

    @Test("gRPC through nginx (TLS, grpc_pass to grpcio in plaintext): service, method and status, decrypted",
          .enabled(if: FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/grpc"), "needs python3-grpcio"))
    func grpcOverTLS() throws {
        let pod = try TLSServerPod(tag: "tlsg", subnet: 76)
        defer { pod.remove() }
        try pod.startGRPCServer()
        let (entries, stderr) = try capture(on: pod, netns: pod.namespace) {
            // grpcio's own TLS is BoringSSL (not traced): the client is curl, nginx's OpenSSL calls are read.
            #expect(pod.grpc("/kstest.Greeter/Hello") == 200)
            #expect(pod.grpc("/kstest.Greeter/Fail") == 200)
        }
        let calls = entries.filter { ($0["protocol"] as? [String: Any])?["name"] as? String == "grpc" }
        #expect(calls.count == 2 && entries.count == 2, "entries: \(entries) stderr: \(stderr)")
        var statuses: [String: Int] = [:]
        for e in calls {
            #expect(e["tls"] as? Bool == true && e["process"] as? String == "nginx", "\(e)")
            let request = e["request"] as? [String: Any]
            #expect(request?["service"] as? String == "kstest.Greeter", "\(e)")
            let response = e["response"] as? [String: Any]
            if let method = request?["rpcMethod"] as? String { statuses[method] = response?["grpcStatus"] as? Int }
            if request?["rpcMethod"] as? String == "Fail" {
                #expect(response?["grpcMessage"] as? String == "no such greeting", "\(e)")
            }
        }
        #expect(statuses == ["Hello": 0, "Fail": 5], "\(calls)")
    }

    @Test("a process outside the scope is not captured")
    func processOutOfScope() throws {
        let pod = try TLSServerPod(tag: "tlso", subnet: 71)
        defer { pod.remove() }
        // An empty namespace in scope; nginx (in the pod) and the clients (on the host) are outside it.
        let other = "kstest-tlsempty-\(getpid())"
        _ = try TestProcess.run("/usr/sbin/ip", ["netns", "add", other])
        defer { _ = try? TestProcess.run("/usr/sbin/ip", ["netns", "del", other]) }
        let (entries, stderr) = try capture(on: pod, netns: other) {
            #expect(pod.curl(["--http1.1", "/hello.txt"]) == 200)
            #expect(pod.curl(["--http2", "/api/h2"]) == 201)
            #expect(pod.python("GET", "/hello.txt") == 200)
        }
        #expect(entries.isEmpty, "captured out of scope: \(exchanges(entries)) \(stderr)")
    }

    @Test("by default the pod behind the interface is traced; both ends traced: each exchange is shown once")
    func bothEndsInScope() throws {
        let pod = try TLSServerPod(tag: "tlsb", subnet: 72)
        defer { pod.remove() }
        let (entries, stderr) = try capture(on: pod, netns: nil) {
            // Clients inside the pod's namespace: curl and nginx are both in scope.
            for i in 0..<3 { #expect(pod.curl(["--http1.1", "/hello.txt?n=\(i)"], netns: pod.namespace) == 200) }
            #expect(pod.curl(["--http2", "/api/both"], netns: pod.namespace) == 201)
        }
        let found = exchanges(entries.filter { $0["tls"] as? Bool == true })
        #expect(found.count == 4, "\(found) \(stderr)")
        #expect(Set(found.map(\.path)) == ["/hello.txt?n=0", "/hello.txt?n=1", "/hello.txt?n=2", "/api/both"])
        #expect(Set(entries.compactMap { $0["process"] as? String }).isSubset(of: ["curl", "nginx"]))
    }
}
}
