import ArgumentParser
import Host

#if canImport(Glibc)
import Glibc
#endif

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case json, table
}

enum CaptureBackendChoice: String, ExpressibleByArgument, CaseIterable {
    case afPacket = "af_packet"
    case afXDP = "af_xdp"
    case libpcap
    /// The best backend that starts here: AF_XDP, else AF_PACKET, else libpcap.
    case auto
}

struct Dissect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Dissect capture files (pcap, pcapng) or a live interface into entries.",
        discussion: "json prints one entry per line; table prints aligned columns for people.")

    @Argument(help: "Capture files to read, in order.")
    var files: [String] = []

    @Option(name: [.short, .customLong("interface")],
            help: "Capture live on this interface instead of files (repeat, or a comma list, for several; 'any' for all with af_packet or libpcap).")
    var interface: [String] = []

    @Option(name: .customLong("bpf"), help: "BPF capture filter for live capture (tcpdump syntax).")
    var captureFilter: String?

    @Flag(name: .customLong("live"), help: "Dissect live traffic (the interfaces given with -i); -i alone implies it.")
    var liveFlag = false

    @OptionGroup var live: LiveCaptureOptions

    @OptionGroup var tlsOptions: TLSOptions

    @Option(name: [.short, .customLong("count")], help: "Stop a live capture after this many packets.")
    var count: Int?

    @Option(name: .customLong("output"), help: "json or table.")
    var output: OutputFormat = .json

    @Option(name: .customLong("filter"), help: "KFL query: only matching entries are printed (e.g. 'http and response.status >= 500').")
    var filter: String?

    @Option(name: .customLong("threads"), help: "Dissect capture files on this many threads, sharded by flow (entries of different flows then interleave).")
    var threads: Int = 1

    @OptionGroup var pluginOptions: PluginOptions

    func validate() throws {
        if liveFlag && interface.isEmpty {
            throw ValidationError("--live needs -i INTERFACE (repeat it, or a comma list, for several)")
        }
        if files.isEmpty && interface.isEmpty {
            throw ValidationError("give at least one capture file, or --interface for live capture")
        }
        if !files.isEmpty && !interface.isEmpty {
            throw ValidationError("give capture files or --interface, not both")
        }
        if threads < 1 || threads > 64 {
            throw ValidationError("--threads must be between 1 and 64")
        }
    }

    func run() throws {
        pluginOptions.bootstrapLogging()
        let plugins = try pluginOptions.startPlugins()

        if interface.isEmpty && threads > 1 {
            try runParallel(plugins: plugins)
            return
        }
        let jsonSink = JSONLinesSink()
        let tableSink = TableSink()
        let query = try compileFilter(plugins: plugins)
        let sink = filtered(output == .json ? jsonSink : tableSink, query, counter: nil)
        let session = DissectionSession(plugins: plugins, sink: sink)
        var failure: String?

        if !interface.isEmpty {
            let interfaces = LiveCapture.interfaces(interface)
            do {
                let backend = try LiveCapture.open(interfaces, options: live, filter: captureFilter)
                // Closing removes what a backend set up on the node (the AF_XDP mirror), also on a failed read.
                defer { backend.close() }
                // Attached before the "capturing on" line, so traffic sent after it is seen.
                let tracer = tlsOptions.start(capturing: interfaces)
                defer {
                    if let tracer {
                        tracer.close()
                        tracer.drain { session.process(tls: $0) }
                        let s = tracer.statistics
                        warn("TLS: \(s.chunksRead) chunks read, \(s.probe.lost) lost in the kernel ring, "
                            + "\(s.chunksDropped) dropped by us, \(s.probe.truncatedCalls) calls larger than the probes copy")
                    }
                }
                LiveStop.install(backend, interface: interfaces.joined(separator: ","))
                var seen = 0
                loop: while true {
                    let limit = count.map { max(0, $0 - seen) } ?? 256
                    if limit == 0 { break }
                    let outcome = try backend.read(maxPackets: min(limit, 256), { session.process($0); seen += 1 })
                    if let tracer { tracer.drain { session.process(tls: $0) } }
                    switch outcome {
                    case .end: break loop
                    case .packets, .timeout:
                        if output == .json { jsonSink.flush() }
                    }
                }
                let stats = backend.statistics
                warn("\(stats.received) packets received, \(stats.droppedByKernel) dropped by kernel, "
                    + "\(stats.droppedByUs) dropped by us, \(stats.filtered) filtered")
            } catch {
                failure = error.message
            }
        } else {
            failure = readFiles(into: session.process)
        }
        session.finish()
        switch output {
        case .json:
            jsonSink.flush()
        case .table:
            print(tableSink.render(), terminator: "")
        }
        if let failure { throw fail(failure) }
    }
}

extension Dissect {
    /// Compiles --filter once, with the loaded plugins' macros; a bad query is one line naming the position.
    func compileFilter(plugins: [LoadedPlugin]) throws -> KFLQuery? {
        guard let filter else { return nil }
        do {
            return try KFLQuery.compile(filter, macros: KFLMacros.from(plugins: plugins))
        } catch {
            throw fail("bad --filter query: \(error.message) at position \(error.position): \(filter)")
        }
    }

    /// `sink` behind the KFL filter, when there is one.
    func filtered(_ sink: EntrySink, _ query: KFLQuery?, counter: MatchCounter?) -> EntrySink {
        guard let query else { return sink }
        return KFLFilterSink(query: query, next: sink, sharedCounter: counter) { wallClockNanoseconds() / 1_000_000 }
    }

    /// Reads every capture file in order into `handler`; returns the first error,
    /// after every packet before it was handled.
    func readFiles(into handler: (CapturedPacket) -> Void) -> String? {
        for file in files {
            do {
                let backend = try LibpcapBackend(file: file)
                defer { backend.close() }
                if let error = CaptureRunner.drain(backend, into: handler) { return error.message }
            } catch {
                return error.message
            }
        }
        return nil
    }

    /// Capture files through `ParallelDissection`: this thread reads and decodes,
    /// `threads` workers dissect.
    func runParallel(plugins: [LoadedPlugin]) throws {
        let lock = OutputLock()
        var jsonSinks: [JSONLinesSink] = []
        var tableSinks: [TableSink] = []
        let query = try compileFilter(plugins: plugins)
        let counter = MatchCounter()
        let parallel = ParallelDissection(plugins: plugins, threads: threads) { _ in
            if output == .json {
                let s = JSONLinesSink(lock: lock)
                jsonSinks.append(s)
                return filtered(s, query, counter: counter)
            }
            let t = TableSink()
            tableSinks.append(t)
            return filtered(t, query, counter: counter)
        }
        let failure = readFiles(into: parallel.process)
        parallel.finish()
        for s in jsonSinks { s.flush() }
        if let first = tableSinks.first {
            first.merge(Array(tableSinks.dropFirst()))
            print(first.render(), terminator: "")
        }
        if let failure { throw fail(failure) }
    }
}

/// Stops a live capture cleanly on SIGINT/SIGTERM so pending entries are still printed.
enum LiveStop {
    nonisolated(unsafe) static var backend: CaptureBackend?

    /// Installs the handlers and says on stderr that capture has started
    /// (scripts and tests wait for this line before sending traffic).
    static func install(_ b: CaptureBackend, interface: String) {
        backend = b
        // A parent may have spawned us with these signals blocked; we want them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        signal(SIGINT) { _ in LiveStop.backend?.breakLoop() }
        signal(SIGTERM) { _ in LiveStop.backend?.breakLoop() }
        warn("capturing on \(interface) with \(b.name)")
    }
}
