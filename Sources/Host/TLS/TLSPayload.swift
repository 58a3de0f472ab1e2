import Synchronization

/// The plaintext bytes of one TLS chunk, in a buffer of a fixed size class that
/// goes back to `TLSPayloadPool` once nobody holds the chunk: the event path
/// (ring → chunk → log or queue → dissection) allocates nothing per event in
/// the steady state.
///
/// Written only while the writer holds the sole reference (just taken from the pool).
final class TLSPayload: @unchecked Sendable {
    /// Bytes the buffer holds at most (a size class of `TLSPayloadPool`).
    let capacity: Int
    private(set) var count = 0
    private let storage: UnsafeMutableRawPointer

    init(capacity: Int) {
        self.capacity = capacity
        storage = UnsafeMutableRawPointer.allocate(byteCount: max(capacity, 1), alignment: 16)
    }

    deinit { storage.deallocate() }

    /// Copies `bytes` in (at most `capacity`).
    func fill(_ bytes: UnsafeRawBufferPointer) {
        count = min(bytes.count, capacity)
        if count > 0, let base = bytes.baseAddress { storage.copyMemory(from: base, byteCount: count) }
    }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage, count: count))
    }

    /// No bytes: what a chunk holds once its buffer went back to the pool.
    static let empty = TLSPayload(capacity: 0)
}

/// Free `TLSPayload` buffers by size class (powers of two from 256 bytes to the
/// probe's 16 KiB chunk), so a small chunk does not hold 16 KiB of memory.
final class TLSPayloadPool: Sendable {
    static let shared = TLSPayloadPool()

    static let smallest = 256
    static let classes = 7 // 256 … 16384
    /// Free buffers kept per class; beyond, returned buffers are freed.
    let keptPerClass: Int
    private let free: Mutex<[[TLSPayload]]>
    private let made = Atomic<Int>(0)

    init(keptPerClass: Int = 4096) {
        self.keptPerClass = keptPerClass
        free = Mutex((0..<Self.classes).map { _ in
            var list: [TLSPayload] = []
            list.reserveCapacity(keptPerClass)
            return list
        })
    }

    /// Buffers made so far (not taken from the free lists).
    var buffersMade: Int { made.load(ordering: .relaxed) }

    /// A buffer holding a copy of `bytes`.
    func take(copying bytes: UnsafeRawBufferPointer) -> TLSPayload {
        let c = Self.sizeClass(of: bytes.count)
        let reused = free.withLock { lists in lists[c].popLast() }
        let payload = reused ?? {
            made.add(1, ordering: .relaxed)
            return TLSPayload(capacity: Self.smallest << c)
        }()
        payload.fill(bytes)
        return payload
    }

    /// Takes `payload` back when nobody else holds it; leaves `.empty` in its place.
    func recycle(_ payload: inout TLSPayload) {
        defer { payload = .empty }
        guard payload.capacity >= Self.smallest, isKnownUniquelyReferenced(&payload) else { return }
        let c = Self.sizeClass(of: payload.capacity)
        let given = payload
        free.withLock { lists in
            if lists[c].count < keptPerClass { lists[c].append(given) }
        }
    }

    static func sizeClass(of count: Int) -> Int {
        var c = 0
        while c < classes - 1 && smallest << c < count { c += 1 }
        return c
    }
}
