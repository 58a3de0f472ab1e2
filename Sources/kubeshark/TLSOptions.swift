import ArgumentParser
import Host

/// `--tls`: TLS plaintext from OpenSSL's calls through eBPF uprobes, beside live capture.
struct TLSOptions: ParsableArguments {
    @Flag(name: .customLong("tls"), inversion: .prefixedNo,
          help: "Also dissect the plaintext of OpenSSL-using processes through eBPF uprobes (on by default where the kernel allows; needs root or CAP_BPF+CAP_PERFMON+CAP_SYS_ADMIN).")
    var tls = true

    @Option(name: .customLong("tls-netns"),
            help: "Trace TLS only in the processes of this network namespace (an 'ip netns' name; repeat for several). Default: every process.")
    var tlsNetns: [String] = []

    /// Starts TLS capture, or says in one line why it cannot and returns nil (capture goes on without it).
    /// `podNamespaces`: the scope when pods define it (tap); `log`: where a worker's sessions read the chunks.
    func start(scope podNamespaces: [String]? = nil, log: TLSChunkLog? = nil) -> TLSTracer? {
        guard tls else { return nil }
        let names = podNamespaces ?? tlsNetns
        let scope: TLSScope
        if names.isEmpty && podNamespaces == nil {
            scope = .allProcesses
        } else {
            for name in names where TLSScope.namespaces(named: [name]) == .networkNamespaces([]) {
                warn("TLS: no network namespace named \(name)")
            }
            scope = .namespaces(named: names)
        }
        do {
            let tracer = try TLSTracer(scope: scope, log: log) { finding in
                if finding.status != "openssl" || podNamespaces != nil || !names.isEmpty { warn(finding.description) }
            }
            return tracer
        } catch {
            warn("\(error.description); going on without TLS capture")
            return nil
        }
    }
}
