import Foundation
import Testing
import TestKit

/// A kernel without BTF or without uprobes, as kubeshark sees one: the test hides
/// the kernel's files in a mount namespace of its own (`unshare -m`, a tmpfs over
/// the directory) and runs `kubeshark dissect --live` there. TLS capture must say
/// why in one line and packet capture must go on (a plain HTTP request becomes an
/// entry).
extension TLSSuites {
@Suite("TLS on a kernel that cannot run the probes")
struct TLSKernelSupportTests {
    @Test("one clear line, and capture goes on", arguments: [
        ("/sys/kernel/btf", "TLS capture unavailable: the kernel has no BTF (/sys/kernel/btf/vmlinux)"),
        ("/sys/bus/event_source/devices", "TLS capture unavailable: the kernel has no uprobe support"),
    ])
    func missingKernelSupport(hidden: String, line: String) throws {
        let pod = try TLSServerPod(tag: "tk\(hidden.count % 10)", subnet: 86)
        defer { pod.remove() }
        let command = "mount -t tmpfs none \(hidden) && exec '\(TestProcess.kubeshark)' dissect --live -i \(pod.hostInterface) "
            + "--bpf 'tcp port \(pod.pod.port) or tcp port \(pod.port)' --output json"
        let process = TestProcess.unblocked("/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sh", "-c", command])
        let run = try TestProcess.liveRun(process) { _ in
            _ = try pod.pod.fetch("/hello.txt")
            #expect(pod.curl(["--http1.1", "/hello.txt"]) == 200)
        }
        #expect(run.started, "capture did not start: \(run.stderr)")
        #expect(run.status == 0, "\(run.stderr)")
        let stderr = run.stderr
        let tlsLines = stderr.split(separator: "\n").filter { $0.contains("TLS") }
        #expect(tlsLines == ["kubeshark: \(line); going on without TLS capture"], "\(stderr)")
        // The plain request is dissected; the HTTPS one is ciphertext only (no probes).
        let entries = run.entries
        #expect(entries.count == 1 && entries.first?["summary"] as? String == "/hello.txt", "\(entries)")
        #expect(entries.allSatisfy { $0["tls"] as? Bool != true })
    }
}
}
