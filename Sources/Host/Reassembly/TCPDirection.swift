/// Counters of one `TCPDirection`.
struct TCPDirectionCounters: Sendable, Hashable {
    /// Segments ingested (including pure ACKs).
    var segments: UInt64 = 0
    /// Payload bytes ingested.
    var payloadBytes: UInt64 = 0
    /// Bytes delivered as `.data`.
    var deliveredBytes: UInt64 = 0
    /// Segments that arrived ahead of a hole and were buffered.
    var outOfOrderSegments: UInt64 = 0
    /// Bytes copied into the out-of-order buffer.
    var bufferedBytes: UInt64 = 0
    /// Segments carrying only bytes already delivered (discarded).
    var retransmittedSegments: UInt64 = 0
    /// Bytes discarded because they were already delivered (whole or partial retransmissions).
    var retransmittedBytes: UInt64 = 0
    /// Bytes discarded because the same stream bytes were already held, or were
    /// superseded by an in-order segment (see `TCPDirection` for the policy).
    var overlappingBytes: UInt64 = 0
    /// `.gap` events delivered.
    var gaps: UInt64 = 0
    /// Bytes covered by `.gap` events.
    var gapBytes: UInt64 = 0
    /// Of those gaps, the ones declared to respect a memory limit.
    var memoryPressureGaps: UInt64 = 0
    /// Bytes skipped by memory-pressure gaps.
    var memoryPressureGapBytes: UInt64 = 0
    /// Segments ignored for a sequence number too far (≥ 1 GiB) from the expected one.
    var outOfWindowSegments: UInt64 = 0
    /// Payload bytes beyond the FIN, ignored.
    var bytesBeyondFIN: UInt64 = 0
    /// Segments ignored because the direction was already closed.
    var segmentsAfterClose: UInt64 = 0
}

/// Reassembles one direction of a TCP connection into in-order events.
///
/// - Sequence numbers are unwrapped with serial arithmetic (RFC 1982) into
///   64-bit stream offsets, so streams cross 2^32 freely.
/// - The SYN consumes one sequence number. Without a SYN, the first segment
///   with payload (or FIN/RST) fixes the start: a connection picked up
///   mid-stream is delivered from there.
/// - A segment that continues the delivered data is delivered straight from
///   the caller's bytes (zero copy). Segments ahead of a hole are copied into an
///   `OutOfOrderBuffer` until the hole fills, the peer acknowledges past it, or
///   a limit forces a gap.
/// - Overlap policy: bytes already delivered always win (retransmissions are
///   discarded); among buffered bytes the first copy wins (like Linux's
///   out-of-order queue); a segment that arrives in order is delivered whole and
///   supersedes buffered bytes it covers (what the Linux receive path hands to
///   the application). Discarded bytes are counted.
/// - A hole becomes a `.gap` when the peer has acknowledged bytes after it that
///   this direction did see (so they were lost in capture, not in the network),
///   at `flush`, at RST, or to respect a memory limit. A hole at the tail (no
///   bytes seen after it yet) is only remembered: the gap is declared as soon as
///   data after it shows up, so an ACK that the capture reorders ahead of the
///   data it acknowledges does not destroy that data.
/// - Sequence numbers 1 GiB or more away from the expected one are ignored.
///
/// The `deliver` callbacks run synchronously, inside the mutating call: they
/// must not access this same `TCPDirection`.
///
/// No allocation per in-order segment. The out-of-order buffer comes from the
/// `ReassemblyBudget`'s pool and goes back to it as soon as nothing is held.
/// A value type: copies are independent (the out-of-order buffer is copied on
/// write); everything is released when the direction is discarded.
struct TCPDirection {
    /// Sequence distance beyond which a segment is ignored (2^30, the largest TCP window).
    private static let window: Int64 = 1 << 30

    private let budget: ReassemblyBudget
    /// Out-of-order storage; created on the first out-of-order segment and
    /// kept (without its buffer, which returns to the budget's pool) while empty.
    private var held: OutOfOrderBuffer?
    /// Sequence number of stream offset 0.
    private var originSeq: UInt32 = 0
    /// Stream offset of the next byte to deliver.
    private var delivered: Int64 = 0
    /// Highest stream offset the peer acknowledged (a hole below it is lost in capture).
    private var peerAcked: Int64 = 0
    /// Stream offset of the FIN, once seen.
    private var finOffset: Int64?
    private var finDelivered = false
    private var resetDelivered = false

    /// A SYN, a payload or a FIN/RST fixed where the stream starts.
    private(set) var isSynchronized = false
    /// The stream start came from a SYN.
    private(set) var sawSYN = false
    /// The stream was picked up mid-connection (no SYN before the first data).
    private(set) var pickedUpMidstream = false
    private(set) var counters = TCPDirectionCounters()

    init(budget: ReassemblyBudget) {
        self.budget = budget
    }

    /// FIN or RST seen and everything before it delivered.
    var isClosed: Bool { finDelivered || resetDelivered }

    /// Out-of-order bytes waiting for a hole to fill.
    var heldBytes: Int { held?.heldBytes ?? 0 }

    /// Buffer capacity this direction currently takes from the budget.
    var reservedBytes: Int { held?.capacity ?? 0 }

    /// Stream offset of the next byte to deliver (bytes delivered plus gap bytes).
    var streamOffset: UInt64 { UInt64(delivered) }

    /// The sequence number of the next byte to deliver (once synchronized).
    var nextSequence: UInt32 { originSeq &+ UInt32(truncatingIfNeeded: delivered) }

    // MARK: - Input

    /// Feeds one segment of this direction. `deliver` is called zero or more
    /// times, synchronously, with in-order events. Once closed, segments are
    /// ignored, except that a RST after a FIN is still reported as `.reset`.
    mutating func ingest(seq: UInt32, flags: TCPFlags, payload: UnsafeRawBufferPointer, timestampNs: Int64,
                         deliver: (ReassemblyEvent) -> Void) {
        counters.segments &+= 1
        counters.payloadBytes &+= UInt64(payload.count)
        if isClosed {
            if flags.contains(.rst) && !resetDelivered {
                resetDelivered = true
                deliver(.reset(timestampNs: timestampNs))
            } else {
                counters.segmentsAfterClose &+= 1
            }
            return
        }
        var dataSeq = seq
        if flags.contains(.syn) {
            dataSeq = seq &+ 1
            if !isSynchronized {
                originSeq = dataSeq
                isSynchronized = true
                sawSYN = true
            }
        } else if !isSynchronized {
            guard !payload.isEmpty || flags.contains(.fin) || flags.contains(.rst) else { return }
            originSeq = seq
            isSynchronized = true
            pickedUpMidstream = true
        }
        let distance = Int64(Int32(bitPattern: dataSeq &- nextSequence))
        guard distance < Self.window && distance > -Self.window else {
            counters.outOfWindowSegments &+= 1
            return
        }
        let start = delivered + distance
        if flags.contains(.rst) {
            // Whatever is held is delivered (holes become gaps), then the reset.
            drainAll(timestampNs: timestampNs, toTail: false, deliver: deliver)
            deliverFINIfDue(timestampNs: timestampNs, deliver: deliver)
            resetDelivered = true
            deliver(.reset(timestampNs: timestampNs))
            releaseHeld()
            return
        }
        var end = start + Int64(payload.count)
        if flags.contains(.fin) { noteFIN(at: end) }
        if let fin = finOffset, end > fin {
            let cut = end - max(start, fin)
            counters.bytesBeyondFIN &+= UInt64(cut)
            end -= cut
        }
        if end > start {
            place(start: start, end: end, payload: payload, timestampNs: timestampNs, deliver: deliver)
        }
        if holdsData || finOffset != nil {
            advance(timestampNs: timestampNs, deliver: deliver)
        }
    }

    /// The peer acknowledged `ack` in the other direction. Holes below it that
    /// are followed by bytes this direction saw were lost in capture: they
    /// become gaps and the buffered bytes after them are delivered. (A hole at
    /// the tail becomes a gap once bytes after it arrive, or at `flush`.)
    mutating func peerAcknowledged(_ ack: UInt32, timestampNs: Int64, deliver: (ReassemblyEvent) -> Void) {
        guard isSynchronized, !isClosed else { return }
        let distance = Int64(Int32(bitPattern: ack &- nextSequence))
        guard distance > 0, distance < Self.window else { return }
        let acked = delivered + distance
        if acked > peerAcked { peerAcked = acked }
        if holdsData || finOffset != nil {
            advance(timestampNs: timestampNs, deliver: deliver)
        }
    }

    /// End of the flow or idle timeout: delivers everything held, turning holes
    /// into gaps (including a tail hole up to the FIN or up to what the peer
    /// acknowledged), then the FIN if one was seen. The direction stays usable.
    mutating func flush(timestampNs: Int64, deliver: (ReassemblyEvent) -> Void) {
        guard isSynchronized, !isClosed else { return }
        drainAll(timestampNs: timestampNs, toTail: true, deliver: deliver)
        releaseHeld()
        deliverFINIfDue(timestampNs: timestampNs, deliver: deliver)
    }

    // MARK: - Placement

    /// Handles the payload bytes `[start, end)` (stream offsets) of a segment.
    private mutating func place(start: Int64, end: Int64, payload: UnsafeRawBufferPointer, timestampNs: Int64,
                                deliver: (ReassemblyEvent) -> Void) {
        while true {
            if end <= delivered {
                counters.retransmittedSegments &+= 1
                counters.retransmittedBytes &+= UInt64(end - start)
                return
            }
            if start <= delivered {
                // In order: deliver the caller's bytes directly.
                let skip = Int(delivered - start)
                if skip > 0 { counters.retransmittedBytes &+= UInt64(skip) }
                let count = Int(end - delivered)
                deliver(.data(payload.wireSlice(skip..<(skip + count)), timestampNs: timestampNs))
                counters.deliveredBytes &+= UInt64(count)
                delivered = end
                return
            }
            // Ahead of a hole. If the peer already acknowledged past the start
            // of this segment, the hole was lost in capture: skip it. (Nothing
            // is held inside it: `advance` consumes held bytes the peer acknowledged.)
            if start <= peerAcked {
                declareGap(start - delivered, timestampNs: timestampNs, forced: false, deliver: deliver)
                continue
            }
            if buffer(start: start, bytes: payload.wireSlice(0..<Int(end - start)), timestampNs: timestampNs) {
                return
            }
            // A limit forbids holding it: give up on the earliest hole.
            forceEarliestGap(before: start, timestampNs: timestampNs, deliver: deliver)
        }
    }

    /// Copies out-of-order bytes into the buffer; false if a limit forbids it.
    private mutating func buffer(start: Int64, bytes: UnsafeRawBufferPointer, timestampNs: Int64) -> Bool {
        let end = start + Int64(bytes.count)
        guard end - delivered <= Int64(budget.maxBufferBytes) else { return false }
        if held == nil { held = OutOfOrderBuffer(budget: budget, base: delivered) }
        guard let store = uniqueHeld(),
              store.ranges.count < budget.maxHeldRangesPerDirection,
              store.ensureSpan(floor: delivered, end: end) else { return false }
        let overlap = store.insert(start: start, bytes: bytes, timestampNs: timestampNs)
        counters.outOfOrderSegments &+= 1
        counters.overlappingBytes &+= UInt64(overlap)
        counters.bufferedBytes &+= UInt64(bytes.count - overlap)
        return true
    }

    // MARK: - Delivery

    /// Delivers held bytes that became contiguous, turns holes the peer
    /// acknowledged into gaps, and delivers the FIN when due.
    private mutating func advance(timestampNs: Int64, deliver: (ReassemblyEvent) -> Void) {
        while let store = uniqueHeld() {
            let superseded = store.discard(below: delivered)
            counters.overlappingBytes &+= UInt64(superseded)
            guard let first = store.ranges.first else {
                store.releaseStorage()
                break
            }
            if first.lower == delivered {
                deliverFirstRange(of: store, deliver: deliver)
            } else if first.lower <= peerAcked {
                declareGap(first.lower - delivered, timestampNs: timestampNs, forced: false, deliver: deliver)
            } else {
                break
            }
        }
        if !holdsData, let fin = finOffset, fin > delivered, fin <= peerAcked {
            declareGap(fin - delivered, timestampNs: timestampNs, forced: false, deliver: deliver)
        }
        deliverFINIfDue(timestampNs: timestampNs, deliver: deliver)
    }

    /// Delivers every held range, holes before them becoming gaps; with
    /// `toTail`, also a final hole up to the FIN or to what the peer acknowledged.
    private mutating func drainAll(timestampNs: Int64, toTail: Bool, deliver: (ReassemblyEvent) -> Void) {
        while let store = uniqueHeld() {
            let superseded = store.discard(below: delivered)
            counters.overlappingBytes &+= UInt64(superseded)
            guard let first = store.ranges.first else {
                store.releaseStorage()
                break
            }
            if first.lower > delivered {
                declareGap(first.lower - delivered, timestampNs: timestampNs, forced: false, deliver: deliver)
            }
            deliverFirstRange(of: store, deliver: deliver)
        }
        if toTail {
            let tail = finOffset ?? peerAcked
            if tail > delivered {
                declareGap(tail - delivered, timestampNs: timestampNs, forced: false, deliver: deliver)
            }
        }
    }

    /// A limit forbids buffering a segment starting at `start`: declares the
    /// earliest hole a gap and delivers what follows it.
    private mutating func forceEarliestGap(before start: Int64, timestampNs: Int64,
                                           deliver: (ReassemblyEvent) -> Void) {
        advance(timestampNs: timestampNs, deliver: deliver)
        guard start > delivered else { return }
        var target = start
        if let first = held?.ranges.first, first.lower < target { target = first.lower }
        declareGap(target - delivered, timestampNs: timestampNs, forced: true, deliver: deliver)
        advance(timestampNs: timestampNs, deliver: deliver)
    }

    private mutating func deliverFirstRange(of store: OutOfOrderBuffer, deliver: (ReassemblyEvent) -> Void) {
        let range = store.ranges[0]
        deliver(.data(store.firstRangeBytes(), timestampNs: range.timestampNs))
        store.removeFirstRange()
        counters.deliveredBytes &+= UInt64(range.count)
        delivered = range.upper
    }

    private mutating func declareGap(_ length: Int64, timestampNs: Int64, forced: Bool,
                                     deliver: (ReassemblyEvent) -> Void) {
        guard length > 0 else { return }
        deliver(.gap(length: UInt64(length), timestampNs: timestampNs))
        counters.gaps &+= 1
        counters.gapBytes &+= UInt64(length)
        if forced {
            counters.memoryPressureGaps &+= 1
            counters.memoryPressureGapBytes &+= UInt64(length)
            budget.noteForcedGap(bytes: length)
        }
        delivered += length
    }

    private mutating func noteFIN(at offset: Int64) {
        guard finOffset == nil, offset >= delivered else { return }
        finOffset = offset
        if let store = uniqueHeld() {
            counters.bytesBeyondFIN &+= UInt64(store.truncate(from: offset))
            if store.isEmpty { store.releaseStorage() }
        }
    }

    private mutating func deliverFINIfDue(timestampNs: Int64, deliver: (ReassemblyEvent) -> Void) {
        guard let fin = finOffset, !finDelivered, delivered >= fin else { return }
        finDelivered = true
        releaseHeld()
        deliver(.fin(timestampNs: timestampNs))
    }

    /// Out-of-order bytes are waiting.
    private var holdsData: Bool {
        guard let held else { return false }
        return !held.isEmpty
    }

    /// Drops everything held and gives the buffer back to the budget.
    private mutating func releaseHeld() {
        guard held != nil else { return }
        if isKnownUniquelyReferenced(&held!) {
            _ = held!.discard(below: .max)
            held!.releaseStorage()
        } else {
            held = nil  // shared with a copy, which keeps it
        }
    }

    /// The held buffer, copied first if another `TCPDirection` value shares it.
    private mutating func uniqueHeld() -> OutOfOrderBuffer? {
        guard held != nil else { return nil }
        if !isKnownUniquelyReferenced(&held!) { held = held!.copy() }
        return held
    }
}
