/// Identifies one datagram under reassembly: (src, dst, protocol, id) as in
/// RFC 791 for IPv4; for IPv6, (src, dst, 32-bit id) as in RFC 8200 plus the
/// fragment header's next-header value (identical in every fragment).
struct FragmentKey: Hashable, Sendable {
    var src: IPAddress
    var dst: IPAddress
    var id: UInt32
    /// IPv4 protocol field, or the IPv6 fragment header's next header.
    var proto: UInt8

    var isIPv6: Bool { src.isIPv6 }
}

/// What to do when a fragment partly overlaps data already held.
enum FragmentOverlapPolicy: Sendable, Hashable {
    /// Discard the whole datagram, like Linux does for IPv4 and IPv6
    /// (RFC 5722). Fragments entirely inside data already held are ignored as
    /// duplicates and do not discard anything.
    case discardDatagram
    /// Keep the bytes already held and store only the new bytes of the
    /// fragment ("first wins").
    case firstWins
}

/// Limits of an `IPv4Reassembler`.
struct FragmentLimits: Sendable, Hashable {
    /// A datagram not completed within this much capture time after its first
    /// fragment is dropped.
    var timeoutNs: Int64 = 30_000_000_000
    /// Cap on fragment bytes held across all datagrams; the oldest datagrams
    /// are evicted to stay under it.
    var maxHeldBytes: Int = 4 << 20
    /// Cap on datagrams under reassembly at once; the oldest is evicted to
    /// admit a new one.
    var maxDatagrams: Int = 256
    /// A datagram arriving in more pieces than this is dropped.
    var maxFragmentsPerDatagram: Int = 256
    var overlapPolicy: FragmentOverlapPolicy = .discardDatagram

    init(timeoutNs: Int64 = 30_000_000_000, maxHeldBytes: Int = 4 << 20, maxDatagrams: Int = 256,
         maxFragmentsPerDatagram: Int = 256, overlapPolicy: FragmentOverlapPolicy = .discardDatagram) {
        self.timeoutNs = timeoutNs
        self.maxHeldBytes = maxHeldBytes
        self.maxDatagrams = maxDatagrams
        self.maxFragmentsPerDatagram = maxFragmentsPerDatagram
        self.overlapPolicy = overlapPolicy
    }
}

/// Counters of an `IPv4Reassembler`.
struct FragmentCounters: Sendable, Hashable {
    /// Fragments offered for reassembly.
    var received: UInt64 = 0
    /// Datagrams completed.
    var reassembled: UInt64 = 0
    /// Fragments ignored because every byte was already held.
    var duplicates: UInt64 = 0
    /// Bytes ignored because already held (`firstWins` policy only).
    var overlappingBytes: UInt64 = 0
    /// Datagrams discarded because a fragment partly overlapped (`discardDatagram` policy).
    var overlapDiscards: UInt64 = 0
    /// Datagrams discarded because fragments disagree on the datagram's end.
    var inconsistent: UInt64 = 0
    /// Datagrams discarded for arriving in more than `maxFragmentsPerDatagram` pieces.
    var tooManyFragments: UInt64 = 0
    /// Datagrams dropped by the timeout.
    var expired: UInt64 = 0
    /// Datagrams dropped to respect `maxHeldBytes` or `maxDatagrams`.
    var evicted: UInt64 = 0
    /// Fragments refused as invalid (bad length, beyond 65535); also counted as malformed.
    var rejected: UInt64 = 0
    /// Datagrams currently under reassembly.
    var heldDatagrams: Int = 0
    /// Fragment bytes currently held.
    var heldBytes: Int = 0
    /// Highest `heldBytes` seen.
    var peakHeldBytes: Int = 0

    /// Datagrams given up on, for any reason.
    var datagramsDropped: UInt64 { overlapDiscards &+ inconsistent &+ tooManyFragments &+ expired &+ evicted }
}

/// The result of offering one fragment to an `IPv4Reassembler`.
enum FragmentResult {
    /// Stored; the datagram is not complete yet.
    case held
    /// The datagram is complete. The buffer holds its fragmentable part (for
    /// IPv4, everything after the IP header) and stays valid until the next
    /// call to `add`. It is shorter than `declaredLength` when a fragment was
    /// cut by the snap length (the buffer then ends at the first missing byte).
    case complete(UnsafeRawBufferPointer, declaredLength: Int)
    /// Not stored (duplicate, overlap, inconsistency or limits; see the counters).
    case discarded
    /// The fragment itself is invalid.
    case invalid(MalformedReason)
}

/// Reassembles IPv4 fragments, and IPv6 fragments too (the key carries the
/// address family and the 32-bit IPv6 id).
///
/// Fragments are kept per datagram in arrival order in one byte array, with a
/// sorted list of the ranges they cover; arrays are reused across datagrams,
/// so steady state does not allocate beyond the fragment bytes held. A
/// completed datagram is assembled into one 64 KiB buffer reused for every
/// datagram.
///
/// Overlaps follow `FragmentLimits.overlapPolicy` (by default Linux's: a
/// partial overlap discards the datagram, a fragment fully inside held data is
/// a duplicate and is ignored). A datagram is dropped when fragments disagree
/// on its end, when it exceeds 65535 bytes, after the timeout (measured in
/// capture time from its first fragment), or when it is the oldest and room is
/// needed.
///
/// A value type: copies are independent (the output buffer is copied on write).
struct IPv4Reassembler: Sendable {
    /// One stored range of a datagram: `length` bytes at `offset` in the
    /// datagram, of which the first `storedLength` were captured and sit at
    /// `dataStart` in `Datagram.data`.
    private struct Piece: Sendable {
        var offset: Int
        var length: Int
        var dataStart: Int
        var storedLength: Int
        var end: Int { offset + length }
    }

    /// State of one datagram under reassembly (a reusable slot).
    private struct Datagram: Sendable {
        var key = FragmentKey(src: IPAddress(ipv4: 0), dst: IPAddress(ipv4: 0), id: 0, proto: 0)
        var active = false
        var firstSeenNs: Int64 = 0
        /// End of the datagram, known once the last fragment arrived; -1 before.
        var totalLength = -1
        /// Bytes of the datagram covered by pieces.
        var covered = 0
        /// Sorted by offset, non-overlapping.
        var pieces: [Piece] = []
        /// Captured bytes of the pieces, in arrival order.
        var data: [UInt8] = []
    }

    /// Slots whose byte array grew beyond this give it back when freed.
    private static let retainedCapacity = 16 << 10
    /// Size of the output buffer: the largest possible datagram.
    private static let outputCapacity = 1 << 16

    let limits: FragmentLimits
    private(set) var counters = FragmentCounters()
    private var slots: [Datagram] = []
    private var freeSlots: [Int] = []
    private var index: [FragmentKey: Int] = [:]
    private var output: ReassemblyOutputBuffer?
    private var nextSweepNs: Int64 = .min

    init(limits: FragmentLimits = FragmentLimits()) {
        self.limits = limits
    }

    /// Offers one fragment.
    ///
    /// - Parameters:
    ///   - offset: Fragment offset in bytes.
    ///   - moreFragments: The MF flag.
    ///   - length: Length of the fragment's data as the IP header announces it.
    ///   - captured: The fragment's data as captured (at most `length` bytes;
    ///     fewer if the snap length cut it).
    ///   - maxDatagramLength: Largest allowed end of the fragmentable part
    ///     (65535 minus the IPv4 header length, or 65535 for IPv6).
    mutating func add(key: FragmentKey, offset: Int, moreFragments: Bool, length: Int,
                      captured: UnsafeRawBufferPointer, maxDatagramLength: Int,
                      timestampNs: Int64) -> FragmentResult {
        counters.received &+= 1
        guard length > 0, !moreFragments || length & 7 == 0 else {
            counters.rejected &+= 1
            return .invalid(.fragmentBadLength)
        }
        let end = offset + length
        guard offset >= 0, end <= maxDatagramLength else {
            counters.rejected &+= 1
            return .invalid(.fragmentTooLarge)
        }
        if timestampNs >= nextSweepNs {
            expire(nowNs: timestampNs)
            nextSweepNs = timestampNs &+ min(limits.timeoutNs, 1_000_000_000)
        }

        // Find or open the datagram.
        var slot: Int
        if let existing = index[key] {
            slot = existing
            if timestampNs &- slots[slot].firstSeenNs >= limits.timeoutNs {
                release(slot)
                counters.expired &+= 1
                guard let fresh = open(key, timestampNs) else { return .discarded }
                slot = fresh
            }
        } else {
            guard let fresh = open(key, timestampNs) else { return .discarded }
            slot = fresh
        }

        // The datagram's end must be consistent across fragments.
        let knownEnd = slots[slot].totalLength
        let highestEnd = slots[slot].pieces.last?.end ?? 0
        if !moreFragments {
            if (knownEnd >= 0 && knownEnd != end) || highestEnd > end {
                counters.inconsistent &+= 1
                release(slot)
                return .discarded
            }
            slots[slot].totalLength = end
        } else if knownEnd >= 0 && end > knownEnd {
            counters.inconsistent &+= 1
            release(slot)
            return .discarded
        }

        // Overlap with what is held.
        let capturedEnd = offset + min(captured.count, length)
        let survey = survey(slot, offset: offset, end: end, capturedEnd: capturedEnd)
        if survey.covered == length {
            counters.duplicates &+= 1
            return .discarded
        }
        if survey.covered > 0 {
            if limits.overlapPolicy == .discardDatagram {
                counters.overlapDiscards &+= 1
                release(slot)
                return .discarded
            }
            counters.overlappingBytes &+= UInt64(survey.covered)
        }
        guard slots[slot].pieces.count + survey.newPieces <= limits.maxFragmentsPerDatagram else {
            counters.tooManyFragments &+= 1
            release(slot)
            return .discarded
        }
        guard makeRoom(for: survey.newBytes, keeping: slot) else {
            counters.evicted &+= 1
            release(slot)
            return .discarded
        }

        store(slot, captured: captured, offset: offset, end: end, capturedEnd: capturedEnd)
        counters.heldBytes += survey.newBytes
        if counters.heldBytes > counters.peakHeldBytes { counters.peakHeldBytes = counters.heldBytes }

        let total = slots[slot].totalLength
        guard total >= 0 && slots[slot].covered == total else { return .held }
        return assemble(slot)
    }

    /// Drops every datagram whose first fragment is `timeoutNs` or more older than `nowNs`.
    mutating func expire(nowNs: Int64) {
        guard counters.heldDatagrams > 0 else { return }
        for slot in slots.indices where slots[slot].active {
            if nowNs &- slots[slot].firstSeenNs >= limits.timeoutNs {
                release(slot)
                counters.expired &+= 1
            }
        }
    }

    // MARK: - Slots

    private mutating func open(_ key: FragmentKey, _ timestampNs: Int64) -> Int? {
        guard limits.maxDatagrams > 0 else {
            counters.evicted &+= 1
            return nil
        }
        if slots.isEmpty {
            let reserve = min(limits.maxDatagrams, 1024)
            slots.reserveCapacity(reserve)
            freeSlots.reserveCapacity(reserve)
            index.reserveCapacity(reserve)
        }
        while counters.heldDatagrams >= limits.maxDatagrams, let victim = oldest(excluding: -1) {
            release(victim)
            counters.evicted &+= 1
        }
        let slot: Int
        if let reused = freeSlots.popLast() {
            slot = reused
        } else {
            slots.append(Datagram())
            slot = slots.count - 1
        }
        slots[slot].key = key
        slots[slot].active = true
        slots[slot].firstSeenNs = timestampNs
        slots[slot].totalLength = -1
        slots[slot].covered = 0
        index[key] = slot
        counters.heldDatagrams += 1
        return slot
    }

    private mutating func release(_ slot: Int) {
        guard slots[slot].active else { return }
        counters.heldBytes -= slots[slot].data.count
        counters.heldDatagrams -= 1
        index.removeValue(forKey: slots[slot].key)
        slots[slot].active = false
        slots[slot].pieces.removeAll(keepingCapacity: true)
        if slots[slot].data.capacity > Self.retainedCapacity {
            slots[slot].data = []
        } else {
            slots[slot].data.removeAll(keepingCapacity: true)
        }
        freeSlots.append(slot)
    }

    private func oldest(excluding excluded: Int) -> Int? {
        var best: Int?
        var bestTime = Int64.max
        for slot in slots.indices where slot != excluded && slots[slot].active {
            if slots[slot].firstSeenNs <= bestTime {
                bestTime = slots[slot].firstSeenNs
                best = slot
            }
        }
        return best
    }

    /// Evicts the oldest other datagrams until `bytes` more fit; false if they cannot.
    private mutating func makeRoom(for bytes: Int, keeping slot: Int) -> Bool {
        while counters.heldBytes + bytes > limits.maxHeldBytes {
            guard let victim = oldest(excluding: slot) else { return false }
            release(victim)
            counters.evicted &+= 1
        }
        return true
    }

    // MARK: - Pieces

    /// Index of the first piece ending after `offset`.
    private func firstPiece(endingAfter offset: Int, in slot: Int) -> Int {
        var low = 0, high = slots[slot].pieces.count
        while low < high {
            let mid = (low + high) >> 1
            if slots[slot].pieces[mid].end <= offset { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// How much of [offset, end) is already held, and what storing the rest would add.
    private func survey(_ slot: Int, offset: Int, end: Int, capturedEnd: Int)
        -> (covered: Int, newPieces: Int, newBytes: Int) {
        var covered = 0, newPieces = 0, newBytes = 0
        var cursor = offset
        var i = firstPiece(endingAfter: offset, in: slot)
        let pieces = slots[slot].pieces.count
        while cursor < end {
            if i < pieces && slots[slot].pieces[i].offset <= cursor {
                let pieceEnd = min(slots[slot].pieces[i].end, end)
                covered += pieceEnd - cursor
                cursor = pieceEnd
                i += 1
                continue
            }
            let gapEnd = i < pieces ? min(slots[slot].pieces[i].offset, end) : end
            newPieces += 1
            newBytes += max(0, min(gapEnd, capturedEnd) - cursor)
            cursor = gapEnd
        }
        return (covered, newPieces, newBytes)
    }

    /// Stores the parts of [offset, end) not held yet.
    private mutating func store(_ slot: Int, captured: UnsafeRawBufferPointer, offset: Int, end: Int, capturedEnd: Int) {
        var cursor = offset
        var i = firstPiece(endingAfter: offset, in: slot)
        while cursor < end {
            if i < slots[slot].pieces.count && slots[slot].pieces[i].offset <= cursor {
                cursor = min(slots[slot].pieces[i].end, end)
                i += 1
                continue
            }
            let gapEnd = i < slots[slot].pieces.count ? min(slots[slot].pieces[i].offset, end) : end
            let stored = max(0, min(gapEnd, capturedEnd) - cursor)
            let piece = Piece(offset: cursor, length: gapEnd - cursor,
                              dataStart: slots[slot].data.count, storedLength: stored)
            if stored > 0 {
                let from = cursor - offset
                slots[slot].data.append(contentsOf: captured.wireSlice(from..<(from + stored)))
            }
            slots[slot].pieces.insert(piece, at: i)
            slots[slot].covered += piece.length
            i += 1
            cursor = gapEnd
        }
    }

    /// Copies a complete datagram into the output buffer and frees its slot.
    private mutating func assemble(_ slot: Int) -> FragmentResult {
        if output == nil || !isKnownUniquelyReferenced(&output!) {
            output = ReassemblyOutputBuffer(capacity: Self.outputCapacity)
        }
        let out = output!.base
        let total = slots[slot].totalLength
        var valid = total
        slots[slot].data.withUnsafeBytes { data in
            for piece in slots[slot].pieces {
                if piece.storedLength > 0 {
                    out.advanced(by: piece.offset).copyMemory(
                        from: data.baseAddress!.advanced(by: piece.dataStart), byteCount: piece.storedLength)
                }
                if piece.storedLength < piece.length {
                    valid = min(valid, piece.offset + piece.storedLength)
                }
            }
        }
        release(slot)
        counters.reassembled &+= 1
        return .complete(UnsafeRawBufferPointer(start: out, count: valid), declaredLength: total)
    }
}

/// The buffer a completed datagram is assembled into; `DecodedPacket.payload`
/// may point into it.
///
/// `@unchecked Sendable`: it is only written through a uniquely referenced
/// instance (`IPv4Reassembler` copies it on write), like an array's storage.
final class ReassemblyOutputBuffer: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit { base.deallocate() }
}
