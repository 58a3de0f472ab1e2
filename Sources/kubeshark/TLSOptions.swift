import ArgumentParser
import Host
import Worker

/// `--tls`: TLS plaintext from OpenSSL's calls through eBPF uprobes, beside live capture.
struct TLSOptions: ParsableArguments {
    @Flag(name: .customLong("tls"), inversion: .prefixedNo,
          help: "Also dissect the plaintext of OpenSSL-using processes through eBPF uprobes (on by default where the kernel allows; needs root or CAP_BPF+CAP_PERFMON+CAP_SYS_ADMIN).")
    var tls = true

    @Option(name: .customLong("tls-netns"),
            help: "Trace TLS in the processes of this network namespace (an 'ip netns' name; repeat for several). Default: the namespaces behind the captured veth interfaces (the pods they lead to).")
    var tlsNetns: [String] = []

    /// Starts TLS capture for live capture on `interfaces`: the processes of the namespaces
    /// given by --tls-netns, else of the pods the interfaces lead to. Nil (with one line)
    /// when there are none, so a capture never shows TLS of unrelated processes.
    func start(capturing interfaces: [String], log: TLSChunkLog? = nil) -> TLSTracer? {
        guard tls else { return nil }
        if !tlsNetns.isEmpty { return start(log: log) }
        let pods = (try? LocalPods.discover()) ?? []
        let behind = pods.filter { !Set($0.hostInterfaces).isDisjoint(with: interfaces) }.map(\.netns)
        guard !behind.isEmpty else {
            warn("TLS: no network namespace behind \(interfaces.joined(separator: ",")); give --tls-netns to trace TLS")
            return nil
        }
        return start(scope: behind, log: log)
    }

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
