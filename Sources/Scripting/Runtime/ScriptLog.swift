import Host
import Logging
import Synchronization

/// The lines scripts log (console.log/error) and the lines logged about them
/// (errors, stops), kept in a bounded ring for the API and the dashboard, and
/// passed to the process logger.
public final class ScriptLog: Sendable {
    /// One line.
    public struct Line: Sendable, Equatable {
        /// Increasing number of the line, for `lines(after:)`.
        public var sequence: UInt64
        /// Wall clock, Unix milliseconds.
        public var timeMs: Int64
        public var script: String
        /// "log" (console.log), "error" (console.error), or "system" (about the script).
        public var level: String
        public var message: String
    }

    private struct State {
        var lines: [Line] = []
        var next: UInt64 = 1
    }

    private let state = Mutex(State())
    private let capacity: Int
    private let logger: Logger
    /// Longest message kept, in characters.
    static let maxMessage = 8192

    public init(capacity: Int = 4096, logger: Logger = Logger(label: "scripts")) {
        self.capacity = capacity
        self.logger = logger
    }

    public func append(script: String, level: String, _ message: String) {
        let text = message.count > Self.maxMessage ? String(message.prefix(Self.maxMessage)) + "…" : message
        state.withLock { s in
            s.lines.append(Line(sequence: s.next, timeMs: wallClockNanoseconds() / 1_000_000, script: script,
                                level: level, message: text))
            s.next += 1
            if s.lines.count > capacity { s.lines.removeFirst(s.lines.count - capacity) }
        }
        switch level {
        case "error": logger.error("script \(script): \(text)")
        case "system": logger.warning("script \(script): \(text)")
        default: logger.info("script \(script): \(text)")
        }
    }

    /// The lines kept whose sequence is above `after`, oldest first.
    public func lines(after: UInt64 = 0, script: String? = nil) -> [Line] {
        state.withLock { s in s.lines.filter { $0.sequence > after && (script == nil || $0.script == script) } }
    }
}
