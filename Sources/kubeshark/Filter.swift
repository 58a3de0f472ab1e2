import ArgumentParser
import Host

#if canImport(Glibc)
import Glibc
#endif

struct Filter: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Filter entries (JSON lines, as `dissect` prints them) with a KFL query.",
        discussion: """
            Reads entries from the files given, or standard input, and prints those the query matches \
            (redacted as it says, up to its limit(n)). Plugins' macros (http, dns, ...) are known.
            Example: kubeshark dissect big.pcap | kubeshark filter 'http and response.status >= 500'
            """)

    @Argument(help: "The KFL query.")
    var query: String

    @Argument(help: "Files of JSON lines (default: standard input).")
    var files: [String] = []

    @OptionGroup var pluginOptions: PluginOptions

    func run() throws {
        pluginOptions.bootstrapLogging()
        let macros = KFLMacros.from(plugins: pluginOptions.catalog(reportRefusals: false).plugins)
        let compiled: KFLQuery
        do { compiled = try KFLQuery.compile(query, macros: macros) } catch {
            throw fail("bad query: \(error.message) at position \(error.position): \(query)")
        }
        var out: [UInt8] = []
        out.reserveCapacity(1 << 20)
        var matched = 0
        let now = wallClockNanoseconds() / 1_000_000
        func line(_ bytes: UnsafeRawBufferPointer) -> Bool {
            if let limit = compiled.limit, matched >= limit { return false }
            guard !bytes.isEmpty, compiled.matches(json: bytes, nowMs: now) else { return true }
            matched += 1
            if !compiled.redactions.isEmpty, let redacted = compiled.redact(json: bytes) {
                out.append(contentsOf: redacted)
            } else {
                out.append(contentsOf: bytes)
            }
            out.append(UInt8(ascii: "\n"))
            if out.count >= 1 << 20 { flush(&out) }
            return true
        }
        for path in files.isEmpty ? ["-"] : files {
            let fd = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw fail("cannot read \(path): \(String(cString: strerror(errno)))") }
            defer { if fd != 0 { close(fd) } }
            guard LineReader(fd: fd).forEachLine(line) else { break }
        }
        flush(&out)
    }

    private func flush(_ out: inout [UInt8]) {
        out.withUnsafeBytes { b in
            var offset = 0
            while offset < b.count {
                let n = write(1, b.baseAddress! + offset, b.count - offset)
                if n <= 0 { if errno == EINTR { continue }; return }
                offset += n
            }
        }
        out.removeAll(keepingCapacity: true)
    }
}

/// Splits a file descriptor's bytes into lines through one reused buffer.
struct LineReader {
    let fd: Int32

    /// Calls `body` with each line (without its newline) until it returns false
    /// or the input ends; `false` when `body` stopped it.
    func forEachLine(_ body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var filled = 0
        while true {
            if filled == buffer.count { buffer.append(contentsOf: repeatElement(0, count: buffer.count)) }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 && errno == EINTR { continue }
            let atEnd = n <= 0
            if !atEnd { filled += n }
            var start = 0
            let keepGoing: Bool = buffer.withUnsafeBytes { b in
                var i = 0
                while i < filled {
                    if b[i] == UInt8(ascii: "\n") {
                        if !body(UnsafeRawBufferPointer(rebasing: b[start..<i])) { return false }
                        start = i + 1
                    }
                    i += 1
                }
                if atEnd && start < filled {
                    if !body(UnsafeRawBufferPointer(rebasing: b[start..<filled])) { return false }
                    start = filled
                }
                return true
            }
            if !keepGoing { return false }
            if atEnd { return true }
            buffer.withUnsafeMutableBytes { b in
                if start > 0 { b.baseAddress!.copyMemory(from: b.baseAddress! + start, byteCount: filled - start) }
            }
            filled -= start
        }
    }
}
