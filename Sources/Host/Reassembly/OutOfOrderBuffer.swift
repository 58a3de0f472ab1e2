/// Out-of-order bytes of one TCP direction, stored at their stream offsets in
/// one contiguous buffer, plus the sorted list of ranges actually held.
///
/// The buffer covers stream offsets `[base, base + capacity)`. It comes from
/// the `ReassemblyBudget` (which charges and pools it), grows by powers of two
/// up to the budget's per-direction limit, slides forward (compacting the live
/// bytes to its start) as data is delivered, and goes back to the budget when
/// the direction holds nothing (`releaseStorage`) or on deinit.
///
/// Among held bytes the first copy wins: `insert` only writes bytes no range
/// covers yet.
final class OutOfOrderBuffer {
    /// A held run of bytes `[lower, upper)` (stream offsets); `timestampNs` is
    /// the capture time of the newest segment that contributed to it.
    struct HeldRange: Equatable {
        var lower: Int64
        var upper: Int64
        var timestampNs: Int64
        var count: Int { Int(upper - lower) }
    }

    private let budget: ReassemblyBudget
    /// Stream offset of `storage[0]`.
    private(set) var base: Int64
    private var storage: UnsafeMutableRawPointer?
    /// Bytes of the buffer (charged to the budget); 0 when released.
    private(set) var capacity = 0
    /// Held ranges, sorted, non-overlapping and non-adjacent.
    private(set) var ranges: [HeldRange] = []
    /// Bytes held (sum of the ranges).
    private(set) var heldBytes = 0

    init(budget: ReassemblyBudget, base: Int64) {
        self.budget = budget
        self.base = base
    }

    deinit {
        if let storage { budget.releaseBuffer(storage, size: capacity) }
    }

    /// An independent copy (for copy-on-write of `TCPDirection`); charged to the
    /// budget even beyond its limit, since the original is usually about to go.
    func copy() -> OutOfOrderBuffer {
        let twin = OutOfOrderBuffer(budget: budget, base: base)
        if let storage, let copied = budget.acquireBuffer(size: capacity, force: true) {
            copied.copyMemory(from: storage, byteCount: capacity)
            twin.storage = copied
            twin.capacity = capacity
        }
        twin.ranges = ranges
        twin.heldBytes = heldBytes
        return twin
    }

    var isEmpty: Bool { ranges.isEmpty }

    /// Makes the buffer cover `[floor, end)`, where nothing below `floor` is
    /// needed any more. Returns false when the per-direction limit or the
    /// budget forbids it (the buffer is then unchanged).
    func ensureSpan(floor: Int64, end: Int64) -> Bool {
        if storage != nil && end - base <= Int64(capacity) { return true }
        let needed = end - floor
        guard needed <= Int64(budget.maxBufferBytes), let size = budget.bufferSize(covering: Int(needed)) else {
            return false
        }
        if let storage, size <= capacity {
            slide(to: floor, into: storage)
            return true
        }
        guard let fresh = budget.acquireBuffer(size: size) else { return false }
        slide(to: floor, into: fresh)
        if let storage { budget.releaseBuffer(storage, size: capacity) }
        storage = fresh
        capacity = size
        return true
    }

    /// Gives the buffer back to the budget; only when nothing is held.
    func releaseStorage() {
        precondition(ranges.isEmpty)
        if let storage { budget.releaseBuffer(storage, size: capacity) }
        storage = nil
        capacity = 0
        if ranges.capacity > 16 { ranges = [] }
    }

    /// Moves the live bytes so that `target[0]` is stream offset `floor`.
    private func slide(to floor: Int64, into target: UnsafeMutableRawPointer) {
        precondition(floor >= base)
        if let first = ranges.first, let last = ranges.last, let storage {
            precondition(first.lower >= floor)
            target.advanced(by: Int(first.lower - floor))
                .copyMemory(from: storage.advanced(by: Int(first.lower - base)), byteCount: Int(last.upper - first.lower))
        }
        base = floor
    }

    /// Stores the bytes of `[start, start + bytes.count)` that are not held
    /// yet; `ensureSpan` must have covered them. Returns how many bytes were
    /// already held (and kept: first copy wins).
    func insert(start: Int64, bytes: UnsafeRawBufferPointer, timestampNs: Int64) -> Int {
        let end = start + Int64(bytes.count)
        precondition(start >= base && end - base <= Int64(capacity) && !bytes.isEmpty)
        let storage = storage!
        // First range that overlaps or touches [start, end).
        var low = 0, high = ranges.count
        while low < high {
            let mid = (low + high) >> 1
            if ranges[mid].upper < start { low = mid + 1 } else { high = mid }
        }
        let first = low
        var cursor = start
        var overlap = 0
        var merged = HeldRange(lower: start, upper: end, timestampNs: timestampNs)
        var i = first
        while i < ranges.count && ranges[i].lower <= end {
            let range = ranges[i]
            if range.lower > cursor {
                copy(bytes, from: cursor, to: range.lower, segmentStart: start, into: storage)
            }
            overlap += max(0, Int(min(range.upper, end) - max(range.lower, start)))
            cursor = max(cursor, range.upper)
            merged.lower = min(merged.lower, range.lower)
            merged.upper = max(merged.upper, range.upper)
            merged.timestampNs = max(merged.timestampNs, range.timestampNs)
            i += 1
        }
        if cursor < end {
            copy(bytes, from: cursor, to: end, segmentStart: start, into: storage)
        }
        heldBytes += bytes.count - overlap
        ranges.replaceSubrange(first..<i, with: CollectionOfOne(merged))
        return overlap
    }

    private func copy(_ bytes: UnsafeRawBufferPointer, from: Int64, to: Int64, segmentStart: Int64,
                      into storage: UnsafeMutableRawPointer) {
        storage.advanced(by: Int(from - base))
            .copyMemory(from: bytes.baseAddress!.advanced(by: Int(from - segmentStart)), byteCount: Int(to - from))
    }

    /// Drops held bytes below `offset`; returns how many.
    func discard(below offset: Int64) -> Int {
        var dropped = 0
        var remove = 0
        while remove < ranges.count && ranges[remove].lower < offset {
            if ranges[remove].upper <= offset {
                dropped += ranges[remove].count
                remove += 1
            } else {
                dropped += Int(offset - ranges[remove].lower)
                ranges[remove].lower = offset
                break
            }
        }
        if remove > 0 { ranges.removeFirst(remove) }
        heldBytes -= dropped
        return dropped
    }

    /// Drops held bytes at or after `offset`; returns how many.
    func truncate(from offset: Int64) -> Int {
        var dropped = 0
        while let last = ranges.last, last.upper > offset {
            if last.lower >= offset {
                dropped += last.count
                ranges.removeLast()
            } else {
                dropped += Int(last.upper - offset)
                ranges[ranges.count - 1].upper = offset
            }
        }
        heldBytes -= dropped
        return dropped
    }

    /// The bytes of the first held range (valid until the buffer is next mutated).
    func firstRangeBytes() -> UnsafeRawBufferPointer {
        let range = ranges[0]
        return UnsafeRawBufferPointer(start: storage!.advanced(by: Int(range.lower - base)), count: range.count)
    }

    /// Forgets the first held range (after its bytes were delivered).
    func removeFirstRange() {
        heldBytes -= ranges[0].count
        ranges.removeFirst()
    }
}
