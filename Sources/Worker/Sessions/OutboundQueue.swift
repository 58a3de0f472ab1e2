import Synchronization

/// Messages from a session's dissection thread to its client's connection,
/// bounded in bytes. A client that reads too slowly is not waited for: once the
/// bound is passed the queue is marked overflowed, what it held is dropped,
/// and the connection is closed with the reason, so capture and the other
/// sessions never slow down for one client.
final class OutboundQueue: Sendable {
    let limitBytes: Int
    private let state = Mutex(State())
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    private struct State {
        var messages: [[UInt8]] = []
        var bytes = 0
        var overflowed = false
        var finished = false
    }

    init(limitBytes: Int) {
        self.limitBytes = limitBytes
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues a message; `false` once the queue has overflowed (the message is dropped).
    @discardableResult
    func push(_ message: [UInt8]) -> Bool {
        let accepted = state.withLock { s -> Bool in
            guard !s.overflowed, !s.finished else { return false }
            if s.bytes + message.count > limitBytes {
                s.overflowed = true
                s.messages.removeAll()
                s.bytes = 0
                return false
            }
            s.messages.append(message)
            s.bytes += message.count
            return true
        }
        wake.yield()
        return accepted
    }

    /// No more messages will come.
    func finish() {
        state.withLock { $0.finished = true }
        wake.yield()
    }

    /// What a drain found.
    enum Batch {
        case messages([[UInt8]])
        case overflowed
        case finished
    }

    /// Waits for messages and takes them all.
    func next() async -> Batch {
        var iterator = wakeups.makeAsyncIterator()
        while true {
            let batch = state.withLock { s -> Batch? in
                if s.overflowed { return .overflowed }
                if !s.messages.isEmpty {
                    let taken = s.messages
                    s.messages.removeAll(keepingCapacity: true)
                    s.bytes = 0
                    return .messages(taken)
                }
                return s.finished ? .finished : nil
            }
            if let batch { return batch }
            if await iterator.next() == nil { return .finished }
        }
    }
}
