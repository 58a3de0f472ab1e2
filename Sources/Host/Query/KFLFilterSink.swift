import Synchronization

/// Matches counted across several filter sinks (one per worker thread).
public final class MatchCounter: Sendable {
    let value = Atomic<Int>(0)
    public init() {}
    public var count: Int { value.load(ordering: .relaxed) }
}

/// Passes on the entries a KFL query matches, redacted as the query says, and
/// stops passing after the query's `limit(n)` (counted across every sink that
/// shares `counter`, so parallel workers honour one limit).
public final class KFLFilterSink: EntrySink {
    private let query: KFLQuery
    private let next: EntrySink
    private let counter: MatchCounter?
    private var localCount = 0
    private let clock: () -> Int64

    /// - Parameters:
    ///   - query: the compiled filter.
    ///   - next: where matching entries go.
    ///   - sharedCounter: matches counted across sinks, for `limit(n)`; nil for one sink.
    ///   - nowMs: the clock for `now()` and the time helpers.
    public init(query: KFLQuery, next: EntrySink, sharedCounter: MatchCounter? = nil, nowMs: @escaping () -> Int64) {
        self.query = query
        self.next = next
        self.counter = sharedCounter
        self.clock = nowMs
    }

    /// True once `limit(n)` matches went through; the caller may stop reading.
    public var limitReached: Bool {
        guard let limit = query.limit else { return false }
        return (counter?.count ?? localCount) >= limit
    }

    public func emit(_ entry: EntryView) {
        guard !limitReached, query.matches(json: entry.json, nowMs: clock()) else { return }
        if let limit = query.limit {
            if let counter {
                guard counter.value.wrappingAdd(1, ordering: .relaxed).newValue <= limit else { return }
            } else {
                localCount += 1
            }
        }
        guard !query.redactions.isEmpty, let redacted = query.redact(json: entry.json) else {
            next.emit(entry)
            return
        }
        redacted.withUnsafeBytes { bytes in
            var copy = entry
            copy.json = bytes
            next.emit(copy)
        }
    }
}
