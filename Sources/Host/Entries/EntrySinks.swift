import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Serialises writes of several sinks to one file descriptor, so each buffer
/// of whole lines lands in one piece.
public final class OutputLock: Sendable {
    let mutex = Mutex(())
    public init() {}
}

/// Writes each entry as one JSON line to a file descriptor, buffered.
public final class JSONLinesSink: EntrySink {
    private var buffer: [UInt8] = []
    private let fd: Int32
    private let flushThreshold: Int
    private let lock: OutputLock?
    public private(set) var count = 0
    /// Set when a write failed (for example a closed pipe); later entries are dropped.
    public private(set) var writeError: Int32 = 0

    public init(fileDescriptor: Int32 = 1, flushThreshold: Int = 1 << 20, lock: OutputLock? = nil) {
        fd = fileDescriptor
        self.flushThreshold = flushThreshold
        self.lock = lock
        buffer.reserveCapacity(flushThreshold + (64 << 10))
    }

    public func emit(_ entry: EntryView) {
        count += 1
        buffer.append(contentsOf: entry.json)
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= flushThreshold { flush() }
    }

    /// Writes out what is buffered.
    public func flush() {
        guard writeError == 0 else {
            buffer.removeAll(keepingCapacity: true)
            return
        }
        if let lock {
            lock.mutex.withLock { _ in writeBuffer() }
        } else {
            writeBuffer()
        }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeBuffer() {
        var offset = 0
        buffer.withUnsafeBytes { b in
            while offset < b.count {
                let n = write(fd, b.baseAddress! + offset, b.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    writeError = errno
                    return
                }
                offset += n
            }
        }
    }

    deinit { flush() }
}

/// Collects entries as rows of an aligned table, for people.
public final class TableSink: EntrySink {
    public struct Row: Sendable {
        public var time: String
        public var proto: String
        public var source: String
        public var destination: String
        public var method: String
        public var summary: String
        public var status: String
        public var elapsed: String
    }

    public private(set) var rows: [Row] = []
    private var times: [Int64] = []

    /// Takes the rows of other tables (one per worker thread), keeping time order.
    public func merge(_ others: [TableSink]) {
        var all = zip(times, rows).map { ($0, $1) }
        for o in others { all += zip(o.times, o.rows).map { ($0, $1) } }
        all.sort { $0.0 < $1.0 }
        times = all.map(\.0)
        rows = all.map(\.1)
    }

    public init() {}

    public func emit(_ entry: EntryView) {
        func text(_ b: UnsafeRawBufferPointer) -> String { String(decoding: b, as: UTF8.self) }
        var status = entry.status != 0 ? String(entry.status) : ""
        if !entry.statusText.isEmpty { status += (status.isEmpty ? "" : " ") + text(entry.statusText) }
        if entry.flags & 0x1 != 0 && status.isEmpty { status = "(no response)" }
        var elapsed = ""
        if entry.requestTimestampNs != 0 && entry.responseTimestampNs != 0 {
            let micros = max(0, entry.responseTimestampNs - entry.requestTimestampNs) / 1000
            elapsed = "\(micros / 1000).\(String(micros % 1000).leftPadded(3)) ms"
        }
        times.append(entry.timestampNs)
        rows.append(Row(
            time: TimeFormatter.utc(entry.timestampNs),
            proto: entry.protocolInfo.abbreviation,
            source: "\(EndpointFormatter.addressString(entry.client)):\(entry.client.port)",
            destination: "\(EndpointFormatter.addressString(entry.server)):\(entry.server.port)",
            method: text(entry.method),
            summary: String(text(entry.summary).prefix(80)),
            status: status,
            elapsed: elapsed))
    }

    /// The table as text, columns aligned.
    public func render() -> String {
        let header = Row(time: "TIME (UTC)", proto: "PROTO", source: "SOURCE", destination: "DESTINATION",
                         method: "METHOD", summary: "PATH/SUMMARY", status: "STATUS", elapsed: "ELAPSED")
        let all = [header] + rows
        func cells(_ r: Row) -> [String] { [r.time, r.proto, r.source, r.destination, r.method, r.summary, r.status, r.elapsed] }
        var widths = [Int](repeating: 0, count: 8)
        for r in all { for (i, c) in cells(r).enumerated() { widths[i] = max(widths[i], c.count) } }
        var out = ""
        for r in all {
            let line = cells(r).enumerated().map { i, c in i == 7 ? c : c.rightPadded(widths[i]) }.joined(separator: "  ")
            out += line.trimmingTrailingSpaces() + "\n"
        }
        return out
    }
}

/// UTC times for tables and logs.
enum TimeFormatter {
    /// "2024-05-01 12:34:56.789".
    static func utc(_ ns: Int64) -> String {
        var seconds = time_t(ns / 1_000_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let millis = (ns / 1_000_000) % 1000
        func two(_ v: Int32) -> String { String(v).leftPadded(2) }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(String(millis).leftPadded(3))"
    }
}

extension String {
    func leftPadded(_ width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }

    func rightPadded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }

    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
