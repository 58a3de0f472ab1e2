import Synchronization

/// The TLS plaintext of a worker, kept in memory for the sessions over its ring:
/// chunks in arrival order, numbered, bounded in bytes (the oldest go first).
/// Each session reads it from its own cursor beside the packet ring, so a
/// dashboard connection opened later still dissects what came before it.
/// The bound counts the chunks' buffers (their size classes), and an evicted
/// chunk's buffer goes back to `TLSPayloadPool` for the next event.
public final class TLSChunkLog: Sendable {
    public let limitBytes: Int
    private let state = Mutex(State())

    private struct State {
        var chunks: [TLSChunk] = []
        /// Index in `chunks` of the oldest chunk kept (the ones before are evicted, not yet compacted).
        var head = 0
        /// Sequence number of `chunks[head]`.
        var first: UInt64 = 0
        var bytes = 0
        var evicted: UInt64 = 0
    }

    public init(limitBytes: Int = 64 << 20) { self.limitBytes = limitBytes }

    /// Adds chunks, evicting the oldest beyond the byte limit.
    public func append(_ new: [TLSChunk]) {
        var new = new
        append(taking: &new)
    }

    /// Adds chunks and empties `new` (its capacity kept, so the caller reuses it).
    public func append(taking new: inout [TLSChunk]) {
        guard !new.isEmpty else { return }
        state.withLock { s in
            // Index loops: generic iteration over chunks allocates in an unoptimised build.
            for i in 0..<new.count {
                s.bytes += new[i].payload.capacity
                s.chunks.append(new[i])
            }
            new.removeAll(keepingCapacity: true)
            while s.bytes > limitBytes && s.head < s.chunks.count {
                s.bytes -= s.chunks[s.head].payload.capacity
                TLSPayloadPool.shared.recycle(&s.chunks[s.head].payload)
                s.head += 1
                s.first &+= 1
                s.evicted &+= 1
            }
            if s.head > 4096 && s.head * 2 > s.chunks.count {
                s.chunks.removeFirst(s.head)
                s.head = 0
            }
        }
    }

    /// The sequence number of the first chunk at or after `fromNs` (the oldest kept when nil).
    public func cursor(fromNs: Int64?) -> UInt64 {
        state.withLock { s in
            guard let fromNs else { return s.first }
            var i = s.head
            while i < s.chunks.count && s.chunks[i].timestampNs < fromNs { i += 1 }
            return s.first &+ UInt64(i - s.head)
        }
    }

    /// Chunks from `cursor` on (at most `max`), moving the cursor past them; a cursor
    /// behind the oldest chunk kept skips to it.
    public func read(from cursor: inout UInt64, max: Int = 1024) -> [TLSChunk] {
        var chunks: [TLSChunk] = []
        read(from: &cursor, max: max, into: &chunks)
        return chunks
    }

    /// The same into `chunks` (replacing what it held): reusing it allocates nothing.
    public func read(from cursor: inout UInt64, max: Int = 1024, into chunks: inout [TLSChunk]) {
        chunks.removeAll(keepingCapacity: true)
        state.withLock { s in
            if cursor < s.first { cursor = s.first }
            let start = s.head + Int(cursor - s.first)
            guard start < s.chunks.count else { return }
            let end = min(s.chunks.count, start + max)
            cursor &+= UInt64(end - start)
            for i in start..<end { chunks.append(s.chunks[i]) }
        }
    }

    /// Chunks dropped for the byte limit so far.
    public var evicted: UInt64 { state.withLock { $0.evicted } }
}
