/// The memory budget for out-of-order TCP data, shared by every direction of
/// every flow of one dissection session, and the pool its buffers come from.
///
/// Directions hold out-of-order bytes in power-of-two buffers taken from this
/// budget; what counts is the buffers' capacity (real memory), not just the
/// bytes stored in them. When a buffer is refused, the direction skips its
/// earliest hole (declaring a gap) instead of growing.
///
/// Buffers given back are kept in a pool (up to `poolLimitBytes`) so that
/// reordering episodes do not hit the allocator in steady state. Pooled memory
/// counts against `totalLimitBytes` and is freed first when room is needed.
///
/// Not thread-safe: use it from the session's own task or thread.
final class ReassemblyBudget {
    /// Cap on the buffer bytes of all directions together (in use + pooled).
    let totalLimitBytes: Int
    /// Cap on one direction's buffer, which is also how far ahead of the
    /// delivered data a direction buffers. Buffers are powers of two, so the
    /// effective cap is this rounded down to a power of two (`maxBufferBytes`).
    let perDirectionLimitBytes: Int
    /// Cap on separate held ranges (holes + 1) in one direction.
    let maxHeldRangesPerDirection: Int
    /// Cap on free buffer bytes kept for reuse.
    let poolLimitBytes: Int
    /// Largest buffer a direction may use.
    let maxBufferBytes: Int
    /// Smallest buffer handed out.
    let minBufferBytes: Int

    /// Buffer bytes currently in use by directions.
    private(set) var heldBytes = 0
    /// Highest `heldBytes` seen.
    private(set) var peakHeldBytes = 0
    /// Free buffer bytes kept in the pool.
    private(set) var pooledBytes = 0
    /// Buffer requests refused because of `totalLimitBytes`.
    private(set) var refusedReservations: UInt64 = 0
    /// Gaps declared (by any direction) to stay within a limit.
    private(set) var forcedGaps: UInt64 = 0
    /// Bytes skipped by those gaps.
    private(set) var forcedGapBytes: UInt64 = 0

    /// Free buffers by log2 of their size.
    private var pool: [[UnsafeMutableRawPointer]]

    init(totalLimitBytes: Int = 256 << 20, perDirectionLimitBytes: Int = 4 << 20,
         maxHeldRangesPerDirection: Int = 1024, poolLimitBytes: Int = 16 << 20) {
        self.totalLimitBytes = max(0, totalLimitBytes)
        self.perDirectionLimitBytes = max(0, perDirectionLimitBytes)
        self.maxHeldRangesPerDirection = max(1, maxHeldRangesPerDirection)
        self.poolLimitBytes = max(0, poolLimitBytes)
        let limit = max(0, perDirectionLimitBytes)
        maxBufferBytes = limit == 0 ? 0 : 1 << (Int.bitWidth - 1 - limit.leadingZeroBitCount)
        minBufferBytes = min(4096, maxBufferBytes)
        pool = Array(repeating: [], count: Int.bitWidth)
    }

    deinit {
        for bucket in pool {
            for buffer in bucket { buffer.deallocate() }
        }
    }

    /// The buffer size that covers `bytes` (a power of two, at least
    /// `minBufferBytes`), or nil beyond `maxBufferBytes`.
    func bufferSize(covering bytes: Int) -> Int? {
        guard bytes <= maxBufferBytes, maxBufferBytes > 0 else { return nil }
        var size = minBufferBytes
        while size < bytes { size <<= 1 }
        return size
    }

    /// A buffer of `size` bytes (from `bufferSize(covering:)`), charged to the
    /// budget; nil if the total limit refuses it. With `force`, the limit is
    /// ignored (copy-on-write duplicates only).
    func acquireBuffer(size: Int, force: Bool = false) -> UnsafeMutableRawPointer? {
        let bucket = size.trailingZeroBitCount
        if let reused = pool[bucket].popLast() {
            pooledBytes -= size
            charge(size)
            return reused
        }
        if !force {
            while heldBytes + pooledBytes + size > totalLimitBytes, pooledBytes > 0 {
                dropLargestPooledBuffer()
            }
            guard heldBytes + pooledBytes + size <= totalLimitBytes else {
                refusedReservations &+= 1
                return nil
            }
        }
        charge(size)
        return UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
    }

    /// Gives back a buffer from `acquireBuffer`.
    func releaseBuffer(_ buffer: UnsafeMutableRawPointer, size: Int) {
        heldBytes -= size
        assert(heldBytes >= 0, "released more than acquired")
        if pooledBytes + size <= poolLimitBytes && heldBytes + pooledBytes + size <= totalLimitBytes {
            pool[size.trailingZeroBitCount].append(buffer)
            pooledBytes += size
        } else {
            buffer.deallocate()
        }
    }

    /// Records a gap declared to respect a limit.
    func noteForcedGap(bytes: Int64) {
        forcedGaps &+= 1
        forcedGapBytes &+= UInt64(clamping: bytes)
    }

    private func charge(_ size: Int) {
        heldBytes += size
        if heldBytes > peakHeldBytes { peakHeldBytes = heldBytes }
    }

    private func dropLargestPooledBuffer() {
        for bucket in pool.indices.reversed() {
            if let buffer = pool[bucket].popLast() {
                buffer.deallocate()
                pooledBytes -= 1 << bucket
                return
            }
        }
    }
}
