/// The memory budget for out-of-order TCP data, shared by every direction of
/// every flow of one dissection session.
///
/// Directions charge it for the buffer capacity they reserve (not just the
/// bytes stored in it), so the limits bound real memory. When a reservation is
/// refused, the direction skips its earliest hole (declaring a gap) instead of
/// growing. Not thread-safe: use it from the session's own task or thread.
final class ReassemblyBudget {
    /// Cap on the bytes reserved by all directions together.
    let totalLimitBytes: Int
    /// Cap on what one direction may reserve; also the furthest ahead of the
    /// delivered data a direction buffers.
    let perDirectionLimitBytes: Int
    /// Cap on separate held ranges (holes + 1) in one direction.
    let maxHeldRangesPerDirection: Int

    /// Bytes currently reserved.
    private(set) var heldBytes = 0
    /// Highest `heldBytes` seen.
    private(set) var peakHeldBytes = 0
    /// Reservations refused because of `totalLimitBytes`.
    private(set) var refusedReservations: UInt64 = 0
    /// Gaps declared (by any direction) to stay within a limit.
    private(set) var forcedGaps: UInt64 = 0
    /// Bytes skipped by those gaps.
    private(set) var forcedGapBytes: UInt64 = 0

    init(totalLimitBytes: Int = 256 << 20, perDirectionLimitBytes: Int = 4 << 20,
         maxHeldRangesPerDirection: Int = 1024) {
        self.totalLimitBytes = max(0, totalLimitBytes)
        self.perDirectionLimitBytes = max(0, perDirectionLimitBytes)
        self.maxHeldRangesPerDirection = max(1, maxHeldRangesPerDirection)
    }

    /// Reserves `bytes` if the total limit allows it.
    func reserve(_ bytes: Int) -> Bool {
        guard heldBytes + bytes <= totalLimitBytes else {
            refusedReservations &+= 1
            return false
        }
        forceReserve(bytes)
        return true
    }

    /// Reserves `bytes` regardless of the limit (copy-on-write duplicates only).
    func forceReserve(_ bytes: Int) {
        heldBytes += bytes
        if heldBytes > peakHeldBytes { peakHeldBytes = heldBytes }
    }

    /// Returns a reservation.
    func release(_ bytes: Int) {
        heldBytes -= bytes
        assert(heldBytes >= 0, "released more than reserved")
    }

    /// Records a gap declared to respect a limit.
    func noteForcedGap(bytes: Int64) {
        forcedGaps &+= 1
        forcedGapBytes &+= UInt64(clamping: bytes)
    }
}
