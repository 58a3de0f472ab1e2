import CTLSProbe
import Glibc
import TLSProbeObject

/// Why the TLS probes could not start (one line for the user).
public struct TLSProbeError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

/// The loaded OpenSSL uprobe program: attach it to libssl files, read the
/// plaintext it reports. Not thread-safe: one owner thread (see `TLSTracer`).
final class TLSProbe {
    private var probe: OpaquePointer?
    private let receiver: Receiver
    /// Libraries attached, by device and inode (one file can have several paths).
    private(set) var attached: [FileIdentity: String] = [:]

    /// Collects the callback's chunks during one `poll`.
    final class Receiver {
        var chunks: [TLSChunk] = []
        let clockOffsetNs: Int64
        let pool: TLSPayloadPool
        var names = TLSProcessNames()
        init(clockOffsetNs: Int64, pool: TLSPayloadPool = .shared) {
            self.clockOffsetNs = clockOffsetNs
            self.pool = pool
        }

        /// One event of the ring buffer (`size` bytes present).
        func receive(_ event: UnsafePointer<ks_tls_event>, size: Int) {
            let process = names.name(of: event)
            chunks.append(TLSChunk(event: event, size: size, clockOffsetNs: clockOffsetNs, process: process, pool: pool))
        }

        /// Hands the chunks collected to `out` (emptied first, its capacity kept for the next time).
        func take(into out: inout [TLSChunk]) {
            out.removeAll(keepingCapacity: true)
            swap(&chunks, &out)
        }
    }

    /// Loads the program and attaches its syscall tracepoints. The calling process is never traced.
    init() throws(TLSProbeError) {
        receiver = Receiver(clockOffsetNs: wallClockNanoseconds() - monotonicNanoseconds())
        if let reason = TLSProbe.kernelSupportProblem() { throw TLSProbeError(reason) }
        let object = TLSProbeObject.bytes()
        var error = [CChar](repeating: 0, count: 512)
        let context = Unmanaged.passUnretained(receiver).toOpaque()
        probe = object.withUnsafeBytes { bytes in
            ks_tls_open(bytes.baseAddress, bytes.count, UInt32(getpid()), { context, event, size in
                guard let context, let event else { return }
                Unmanaged<Receiver>.fromOpaque(context).takeUnretainedValue().receive(event, size: size)
            }, context, &error, error.count)
        }
        guard probe != nil else { throw TLSProbeError(text(error)) }
    }

    deinit { close() }

    /// Why this kernel cannot run the probes, checked before loading: nil when it can.
    static func kernelSupportProblem() -> String? {
        if access("/sys/kernel/btf/vmlinux", R_OK) != 0 {
            return "TLS capture unavailable: the kernel has no BTF (/sys/kernel/btf/vmlinux)"
        }
        if access("/sys/bus/event_source/devices/uprobe/type", R_OK) != 0 {
            return "TLS capture unavailable: the kernel has no uprobe support"
        }
        if access("/sys/kernel/tracing/events/syscalls", R_OK) != 0 && access("/sys/kernel/debug/tracing/events/syscalls", R_OK) != 0 {
            // Mount tracefs when it is missing; the syscall tracepoints live there.
            _ = mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nil)
            if access("/sys/kernel/tracing/events/syscalls", R_OK) != 0 {
                return "TLS capture unavailable: no syscall tracepoints (tracefs at /sys/kernel/tracing)"
            }
        }
        return nil
    }

    /// Attaches SSL_read/SSL_write(_ex) in the libssl at `path` for every process
    /// mapping it; a file already attached (under any path) is skipped.
    /// Returns false when the file exports none of them.
    @discardableResult
    func attach(library path: String) throws(TLSProbeError) -> Bool {
        guard let probe else { throw TLSProbeError("TLS probes closed") }
        guard let id = FileIdentity(path: path) else { throw TLSProbeError("cannot stat \(path)") }
        if attached[id] != nil { return true }
        var error = [CChar](repeating: 0, count: 512)
        let n = ks_tls_attach_library(probe, path, &error, error.count)
        if n < 0 { throw TLSProbeError(text(error)) }
        guard n > 0 else { return false }
        attached[id] = path
        return true
    }

    /// Whether `path` is attached already (under any of its names).
    func isAttached(_ path: String) -> Bool {
        guard let id = FileIdentity(path: path) else { return false }
        return attached[id] != nil
    }

    /// Only processes in the network namespaces added (`true`), or every process.
    func filterByNetworkNamespace(_ on: Bool) { if let probe { _ = ks_tls_set_filter(probe, on ? 1 : 0) } }
    func addNetworkNamespace(_ inode: UInt32) { if let probe { _ = ks_tls_add_netns(probe, inode) } }
    func removeNetworkNamespace(_ inode: UInt32) { if let probe { _ = ks_tls_remove_netns(probe, inode) } }

    /// Reads what the probes reported into `chunks` (replacing what it held), waiting at
    /// most `timeoutMs` for the first one. Reusing `chunks` allocates nothing.
    func poll(timeoutMs: Int32, into chunks: inout [TLSChunk]) {
        guard let probe else { return chunks.removeAll(keepingCapacity: true) }
        _ = ks_tls_poll(probe, timeoutMs)
        receiver.take(into: &chunks)
    }

    /// The program's counters (chunks written, refused by a full ring, ...).
    var counters: TLSProbeCounters {
        guard let probe else { return TLSProbeCounters() }
        return TLSProbeCounters(
            events: ks_tls_counter(probe, UInt32(KS_TLS_COUNT_EVENTS.rawValue)),
            lost: ks_tls_counter(probe, UInt32(KS_TLS_COUNT_LOST.rawValue)),
            truncatedCalls: ks_tls_counter(probe, UInt32(KS_TLS_COUNT_TRUNCATED.rawValue)),
            callsWithoutSocket: ks_tls_counter(probe, UInt32(KS_TLS_COUNT_NO_FD.rawValue)))
    }

    /// Links (uprobes and tracepoints) held.
    var linkCount: Int { probe.map { Int(ks_tls_link_count($0)) } ?? 0 }

    /// Detaches every probe and unloads the program.
    func close() {
        if let probe { ks_tls_close(probe) }
        probe = nil
        attached = [:]
    }
}

/// A NUL-terminated C buffer as text.
private func text(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The BPF program's counters.
public struct TLSProbeCounters: Sendable, Equatable {
    public var events: UInt64 = 0
    public var lost: UInt64 = 0
    public var truncatedCalls: UInt64 = 0
    public var callsWithoutSocket: UInt64 = 0
    public init() {}
    init(events: UInt64, lost: UInt64, truncatedCalls: UInt64, callsWithoutSocket: UInt64) {
        self.events = events
        self.lost = lost
        self.truncatedCalls = truncatedCalls
        self.callsWithoutSocket = callsWithoutSocket
    }
}

/// A file by device and inode.
struct FileIdentity: Hashable {
    var device: UInt64
    var inode: UInt64

    init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }
}
