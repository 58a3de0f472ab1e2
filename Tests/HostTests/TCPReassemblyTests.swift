import Testing
@testable import Host

/// Records what a `TCPDirection` delivers.
final class StreamRecorder {
    enum Event: Equatable {
        case data([UInt8])
        case gap(UInt64)
        case fin
        case reset
    }

    var events: [Event] = []
    /// Delivered bytes, with gaps filled by `gapFill`.
    var stream: [UInt8] = []
    var gapFill: UInt8 = 0
    /// Base addresses of delivered views, to check zero-copy delivery.
    var addresses: [UnsafeRawPointer?] = []
    var timestamps: [Int64] = []

    func record(_ event: ReassemblyEvent) {
        switch event {
        case .data(let bytes, let ts):
            #expect(!bytes.isEmpty)
            // Merge adjacent data events so tests do not depend on how bytes were split.
            if case .data(let previous)? = events.last {
                events[events.count - 1] = .data(previous + Array(bytes))
            } else {
                events.append(.data(Array(bytes)))
            }
            stream += bytes
            addresses.append(bytes.baseAddress)
            timestamps.append(ts)
        case .gap(let length, let ts):
            events.append(.gap(length))
            stream += [UInt8](repeating: gapFill, count: Int(length))
            timestamps.append(ts)
        case .fin(let ts):
            events.append(.fin)
            timestamps.append(ts)
        case .reset(let ts):
            events.append(.reset)
            timestamps.append(ts)
        }
    }
}

/// Drives one direction with byte arrays.
struct DirectionHarness {
    var direction: TCPDirection
    let recorder = StreamRecorder()
    let budget: ReassemblyBudget

    init(budget: ReassemblyBudget = ReassemblyBudget()) {
        self.budget = budget
        direction = TCPDirection(budget: budget)
    }

    mutating func send(_ seq: UInt32, _ bytes: [UInt8], flags: TCPFlags = [.ack], ts: Int64 = 1) {
        let recorder = self.recorder
        bytes.withUnsafeBytes { raw in
            direction.ingest(seq: seq, flags: flags, payload: raw, timestampNs: ts) { recorder.record($0) }
        }
    }

    mutating func ack(_ ack: UInt32, ts: Int64 = 2) {
        let recorder = self.recorder
        direction.peerAcknowledged(ack, timestampNs: ts) { recorder.record($0) }
    }

    mutating func flush(ts: Int64 = 3) {
        let recorder = self.recorder
        direction.flush(timestampNs: ts) { recorder.record($0) }
    }

    var events: [StreamRecorder.Event] { recorder.events }
}

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite("TCP reassembly")
struct TCPReassemblyTests {
    @Test("In-order segments are delivered zero-copy")
    func inOrderZeroCopy() {
        var h = DirectionHarness()
        h.send(100, [], flags: [.syn])
        let one = bytes("hello "), two = bytes("world")
        one.withUnsafeBytes { raw in
            let recorder = h.recorder
            h.direction.ingest(seq: 101, flags: [.ack], payload: raw, timestampNs: 5) { recorder.record($0) }
            #expect(recorder.addresses.last! == raw.baseAddress)
        }
        h.send(107, two, ts: 6)
        #expect(h.events == [.data(bytes("hello world"))])
        #expect(h.recorder.timestamps == [5, 6])
        #expect(h.direction.counters.deliveredBytes == 11)
        #expect(h.direction.counters.outOfOrderSegments == 0)
        #expect(h.direction.heldBytes == 0 && h.direction.reservedBytes == 0)
        #expect(h.direction.streamOffset == 11 && h.direction.nextSequence == 112)
        #expect(h.direction.sawSYN && !h.direction.pickedUpMidstream)
    }

    @Test("Out-of-order segments are held until the hole fills")
    func outOfOrder() {
        var h = DirectionHarness()
        h.send(0, [], flags: [.syn])
        h.send(1, bytes("aaaa"))
        h.send(9, bytes("cccc"), ts: 7)
        h.send(13, bytes("dddd"), ts: 8)
        #expect(h.events == [.data(bytes("aaaa"))])
        #expect(h.direction.heldBytes == 8)
        #expect(h.direction.reservedBytes >= 8 && h.budget.heldBytes == h.direction.reservedBytes)
        h.send(5, bytes("bbbb"), ts: 9)
        #expect(h.events == [.data(bytes("aaaabbbbccccdddd"))])
        #expect(h.direction.heldBytes == 0 && h.direction.reservedBytes == 0 && h.budget.heldBytes == 0)
        #expect(h.direction.counters.outOfOrderSegments == 2)
        // Held bytes keep the capture time of their newest segment.
        #expect(h.recorder.timestamps == [1, 9, 8])
    }

    @Test("Retransmissions are discarded and counted")
    func retransmission() {
        var h = DirectionHarness()
        h.send(0, [], flags: [.syn])
        h.send(1, bytes("abcd"))
        h.send(1, bytes("abcd"))
        h.send(3, bytes("cdef"))  // partly old
        #expect(h.events == [.data(bytes("abcdef"))])
        let c = h.direction.counters
        #expect(c.retransmittedSegments == 1 && c.retransmittedBytes == 6)
    }

    @Test("Overlaps: first held copy wins, in-order segments supersede held bytes")
    func overlaps() {
        var h = DirectionHarness()
        h.send(0, [], flags: [.syn])
        h.send(11, bytes("KLMNO"))      // offsets 10..<15
        h.send(13, bytes("xxxxxQR"))    // offsets 12..<19: 12..<15 already held
        #expect(h.direction.counters.overlappingBytes == 3)
        #expect(h.direction.heldBytes == 9)
        h.send(1, bytes("ABCDEFGHIJKy"))  // offsets 0..<12, covers held offsets 10, 11
        #expect(h.events == [.data(bytes("ABCDEFGHIJKyMNOxxQR"))])
        #expect(h.direction.counters.overlappingBytes == 5)
    }

    @Test("SYN consumes a sequence number; FIN after the data; data after FIN ignored")
    func synFin() {
        var h = DirectionHarness()
        h.send(0xFFFF_FFFF, [], flags: [.syn])
        h.send(0, bytes("abc"))
        h.send(3, bytes("de"), flags: [.fin, .ack])
        #expect(h.events == [.data(bytes("abcde")), .fin])
        #expect(h.direction.isClosed)
        h.send(5, bytes("zz"))
        h.send(3, bytes("de"), flags: [.fin, .ack])
        #expect(h.events == [.data(bytes("abcde")), .fin])
        #expect(h.direction.counters.segmentsAfterClose == 2)
    }

    @Test("A FIN that arrives ahead of a hole waits for it")
    func finOutOfOrder() {
        var h = DirectionHarness()
        h.send(10, [], flags: [.syn])
        h.send(11, bytes("ab"))
        h.send(15, bytes("ef"), flags: [.fin, .ack])
        #expect(h.events == [.data(bytes("ab"))] && !h.direction.isClosed)
        h.send(13, bytes("cd"))
        #expect(h.events == [.data(bytes("abcdef")), .fin] && h.direction.isClosed)
        // A SYN carrying data (TCP Fast Open).
        var tfo = DirectionHarness()
        tfo.send(500, bytes("GET"), flags: [.syn])
        tfo.send(504, bytes(" /"))
        #expect(tfo.events == [.data(bytes("GET /"))])
    }

    @Test("RST: contiguous data, then held data after gaps, then reset")
    func reset() {
        var h = DirectionHarness()
        h.send(0, [], flags: [.syn])
        h.send(1, bytes("aa"))
        h.send(5, bytes("cc"))
        h.send(9, [], flags: [.rst])
        #expect(h.events == [.data(bytes("aa")), .gap(2), .data(bytes("cc")), .reset])
        #expect(h.direction.isClosed && h.direction.heldBytes == 0 && h.budget.heldBytes == 0)
        h.send(9, bytes("zz"))
        #expect(h.direction.counters.segmentsAfterClose == 1)
        // A RST after the FIN is still reported.
        var g = DirectionHarness()
        g.send(0, bytes("x"), flags: [.fin, .ack])
        g.send(2, [], flags: [.rst])
        #expect(g.events == [.data(bytes("x")), .fin, .reset])
    }

    @Test("Connection picked up mid-stream")
    func midstream() {
        var h = DirectionHarness()
        h.send(123_456, [], flags: [.ack])  // a pure ACK does not fix the start
        h.send(200_000, bytes("middle "))
        h.send(200_007, bytes("of it"))
        h.send(199_990, bytes("0123456789"))  // before the pickup point: old
        #expect(h.events == [.data(bytes("middle of it"))])
        #expect(h.direction.pickedUpMidstream && !h.direction.sawSYN)
        #expect(h.direction.counters.retransmittedSegments == 1)
    }

    @Test("Sequence numbers wrap around 2^32")
    func wrapAround() {
        var h = DirectionHarness()
        let isn: UInt32 = 0xFFFF_FF00
        h.send(isn, [], flags: [.syn])
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        // 100-byte segments, odd ones first.
        let order = [1, 3, 5, 7, 9, 0, 2, 4, 6, 8]
        for i in order {
            h.send(isn &+ 1 &+ UInt32(i * 100), Array(data[(i * 100)..<(i * 100 + 100)]))
        }
        #expect(h.recorder.stream == data)
        #expect(h.direction.nextSequence == isn &+ 1001)
        #expect(h.direction.streamOffset == 1000)
        // An ACK from the peer across the wrap is understood too.
        h.ack(isn &+ 1001)
        #expect(h.events.count == 1)
    }

    @Test("A segment lost in capture becomes a gap when the peer acknowledges past it")
    func gapByAck() {
        var h = DirectionHarness()
        h.send(0, [], flags: [.syn])
        h.send(1, bytes("aaaa"))
        h.send(9, bytes("cccc"))   // 5..<9 was not captured
        h.ack(5)                   // acknowledges only what was seen: nothing to do
        #expect(h.events == [.data(bytes("aaaa"))])
        h.ack(13, ts: 42)
        #expect(h.events == [.data(bytes("aaaa")), .gap(4), .data(bytes("cccc"))])
        #expect(h.direction.counters.gaps == 1 && h.direction.counters.gapBytes == 4)
        #expect(h.direction.counters.memoryPressureGaps == 0)
        // A retransmission of the lost bytes arriving later is discarded.
        h.send(5, bytes("bbbb"))
        #expect(h.direction.counters.retransmittedBytes == 4)
    }

    @Test("A tail hole acknowledged before data after it arrives")
    func tailHole() {
        var h = DirectionHarness()
        h.send(0, [], flags: [.syn])
        h.send(1, bytes("aaaa"))
        h.ack(9)   // the peer got 5..<9, which the capture missed (or has not shown yet)
        #expect(h.events == [.data(bytes("aaaa"))])
        // The ACK was reordered ahead of its data: the data is still delivered.
        h.send(5, bytes("bbbb"))
        #expect(h.events == [.data(bytes("aaaabbbb"))])
        h.ack(13)
        h.send(13, bytes("dddd"))  // 9..<13 lost: known at once, since the peer acknowledged it
        #expect(h.events == [.data(bytes("aaaabbbb")), .gap(4), .data(bytes("dddd"))])
        #expect(h.direction.heldBytes == 0)
    }

    @Test("Flush turns holes into gaps")
    func flushGaps() {
        var h = DirectionHarness()
        h.send(0, [], flags: [.syn])
        h.send(1, bytes("aa"))
        h.send(5, bytes("cc"))
        h.send(9, bytes("ee"), flags: [.fin, .ack])
        #expect(h.events == [.data(bytes("aa"))])
        h.flush()
        #expect(h.events == [.data(bytes("aa")), .gap(2), .data(bytes("cc")), .gap(2), .data(bytes("ee")), .fin])
        #expect(h.direction.isClosed && h.budget.heldBytes == 0)
        // Flush with a tail hole the peer acknowledged.
        var t = DirectionHarness()
        t.send(0, bytes("ab"))
        t.ack(6)
        t.flush()
        #expect(t.events == [.data(bytes("ab")), .gap(4)])
        #expect(!t.direction.isClosed)
        t.send(6, bytes("g"))
        #expect(t.events == [.data(bytes("ab")), .gap(4), .data(bytes("g"))])
    }

    @Test("FIN beyond a lost segment, both acknowledged")
    func finAfterLoss() {
        var h = DirectionHarness()
        h.send(0, [], flags: [.syn])
        h.send(1, bytes("ab"))
        h.send(5, [], flags: [.fin, .ack])  // 3..<5 lost
        h.ack(6)
        #expect(h.events == [.data(bytes("ab")), .gap(2), .fin])
    }

    @Test("The per-direction limit forces gaps instead of growing")
    func perDirectionLimit() {
        let budget = ReassemblyBudget(totalLimitBytes: 1 << 20, perDirectionLimitBytes: 8192)
        var h = DirectionHarness(budget: budget)
        h.send(0, [], flags: [.syn])
        h.send(1, bytes("head"))
        // Lose offsets 4..<104, then stream 1000-byte segments.
        var seq: UInt32 = 105
        for _ in 0..<20 {
            h.send(seq, [UInt8](repeating: 0x55, count: 1000))
            seq += 1000
            #expect(h.direction.reservedBytes <= 8192)
            #expect(h.direction.heldBytes <= 8192)
        }
        let c = h.direction.counters
        #expect(c.memoryPressureGaps == 1 && c.memoryPressureGapBytes == 100)
        #expect(budget.forcedGaps == 1 && budget.forcedGapBytes == 100)
        #expect(h.events.first == .data(bytes("head")) && h.events[1] == .gap(100))
        #expect(h.direction.streamOffset == 4 + 100 + 20_000)
        // A segment bigger than the limit on its own goes through after a gap.
        h.send(seq + 50, [UInt8](repeating: 1, count: 10_000))
        #expect(h.direction.streamOffset == UInt64(4 + 100 + 20_000 + 50 + 10_000))
        #expect(h.direction.heldBytes == 0)
    }

    @Test("The shared budget caps all directions together")
    func globalBudget() {
        let budget = ReassemblyBudget(totalLimitBytes: 16384, perDirectionLimitBytes: 16384)
        var a = DirectionHarness(budget: budget)
        var b = DirectionHarness(budget: budget)
        a.send(0, bytes("a"), flags: [.ack])
        b.send(0, bytes("b"), flags: [.ack])
        a.send(10, [UInt8](repeating: 1, count: 9000))  // holds 16 KiB of buffer
        #expect(budget.heldBytes == 16384)
        b.send(10, [UInt8](repeating: 2, count: 100))   // refused: b skips its hole instead
        #expect(b.events == [.data(bytes("b")), .gap(9), .data([UInt8](repeating: 2, count: 100))])
        #expect(budget.refusedReservations >= 1 && budget.forcedGaps == 1)
        #expect(budget.heldBytes == 16384 && budget.peakHeldBytes == 16384)
        a.flush()
        #expect(budget.heldBytes == 0)
    }

    @Test("Too many separate holes force gaps")
    func rangeLimit() {
        let budget = ReassemblyBudget(maxHeldRangesPerDirection: 4)
        var h = DirectionHarness(budget: budget)
        h.send(0, [], flags: [.syn])
        for i in 0..<10 { h.send(UInt32(1 + 2 * i + 1), [UInt8(i)]) }  // every other byte
        #expect(h.direction.counters.memoryPressureGaps > 0)
        h.flush()
        #expect(h.recorder.stream.count == 20)
        #expect(budget.heldBytes == 0)
    }

    @Test("Segments far outside the window are ignored")
    func outOfWindow() {
        var h = DirectionHarness()
        h.send(0, [], flags: [.syn])
        h.send(1, bytes("ok"))
        h.send(3 &+ 0x4000_0000, bytes("bogus"))
        h.send(1 &- 0x5000_0000, bytes("bogus"))
        #expect(h.direction.counters.outOfWindowSegments == 2)
        #expect(h.direction.heldBytes == 0)
        h.ack(0x6000_0000)
        h.flush()
        #expect(h.events == [.data(bytes("ok"))])
    }

    @Test("Direction copies are independent")
    func copies() {
        var h = DirectionHarness()
        h.send(0, [], flags: [.syn])
        h.send(5, bytes("efgh"))
        var copy = h.direction
        h.send(1, bytes("abcd"))
        #expect(h.events == [.data(bytes("abcdefgh"))])
        let other = StreamRecorder()
        bytes("ABCD").withUnsafeBytes { raw in
            copy.ingest(seq: 1, flags: [.ack], payload: raw, timestampNs: 1) { other.record($0) }
        }
        #expect(other.events == [.data(bytes("ABCDefgh"))])
    }

    @Test("Randomized: shuffled, duplicated, overlapping segments rebuild the stream", arguments: [1, 2, 3, 4, 5] as [UInt64])
    func randomized(seed: UInt64) {
        var rng = FixtureRNG(seed: seed &* 0x9E37_79B9)
        let original = (0..<100_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        // ISN close to the wrap so the stream crosses 2^32.
        let isn = UInt32.max &- UInt32(rng.next() % 50_000)
        var segments: [(offset: Int, count: Int)] = []
        var offset = 0
        while offset < original.count {
            let count = min(1 + Int(rng.next() % 3000), original.count - offset)
            segments.append((offset, count))
            offset += count
        }
        // Duplicates and re-cut overlapping copies (same bytes, different boundaries).
        for _ in 0..<(segments.count / 5) {
            segments.append(segments[Int(rng.next() % UInt64(segments.count))])
            let start = Int(rng.next() % UInt64(original.count))
            segments.append((start, min(1 + Int(rng.next() % 4000), original.count - start)))
        }
        // Local shuffling: swap each segment with one up to 8 positions away.
        for i in segments.indices {
            let j = min(segments.count - 1, i + Int(rng.next() % 8))
            segments.swapAt(i, j)
        }
        var h = DirectionHarness()
        h.send(isn, [], flags: [.syn])
        for (i, s) in segments.enumerated() {
            h.send(isn &+ 1 &+ UInt32(s.offset), Array(original[s.offset..<(s.offset + s.count)]), ts: Int64(i))
        }
        h.send(isn &+ 1 &+ UInt32(original.count), [], flags: [.fin, .ack])
        #expect(h.recorder.stream.count == original.count)
        #expect(h.recorder.stream == original)
        #expect(h.events.last == .fin)
        #expect(!h.events.contains { if case .gap = $0 { return true } else { return false } })
        #expect(h.direction.heldBytes == 0 && h.budget.heldBytes == 0)
        let c = h.direction.counters
        #expect(c.deliveredBytes == UInt64(original.count))
        #expect(c.retransmittedBytes + c.overlappingBytes > 0)
    }

    @Test("Fuzz: random segments, flags and ACKs on directions sharing a small budget")
    func fuzz() {
        let budget = ReassemblyBudget(totalLimitBytes: 36 << 10, perDirectionLimitBytes: 16 << 10,
                                      maxHeldRangesPerDirection: 8)
        var rng = FixtureRNG(seed: 0xF00D)
        /// The byte every segment carries at stream offset `o`.
        func content(_ o: Int) -> UInt8 { UInt8(truncatingIfNeeded: o &* 31 &+ o >> 8) }
        var totals = TCPDirectionCounters()
        for round in 0..<30 {
            var harnesses = (0..<3).map { _ in DirectionHarness(budget: budget) }
            var frontiers = [0, 0, 0]
            let isns = (0..<3).map { _ in UInt32(truncatingIfNeeded: rng.next()) }
            for i in 0..<3 where rng.next() % 2 == 0 { harnesses[i].send(isns[i] &- 1, [], flags: [.syn]) }
            for step in 0..<400 {
                let d = Int(rng.next() % 3)
                let roll = rng.next() % 100
                let ts = Int64(round * 1000 + step)
                if roll < 80 {
                    let offset = max(0, frontiers[d] + Int(rng.next() % 6000) - 3000)
                    let length = Int(rng.next() % 1500)
                    var flags: TCPFlags = [.ack]
                    if rng.next() % 200 == 0 { flags.insert(.fin) }
                    if rng.next() % 400 == 0 { flags.insert(.rst) }
                    if rng.next() % 300 == 0 { flags.insert(.syn) }
                    // A SYN's data starts one sequence number after it.
                    let first = flags.contains(.syn) ? offset + 1 : offset
                    let payload = (first..<(first + length)).map(content)
                    harnesses[d].send(isns[d] &+ UInt32(truncatingIfNeeded: offset), payload, flags: flags, ts: ts)
                    frontiers[d] = max(frontiers[d], offset + length)
                } else if roll < 97 {
                    let acked = max(0, frontiers[d] + Int(rng.next() % 4000) - 3000)
                    harnesses[d].ack(isns[d] &+ UInt32(truncatingIfNeeded: acked), ts: ts)
                } else {
                    harnesses[d].flush(ts: ts)
                }
                #expect(budget.heldBytes == harnesses.reduce(0) { $0 + $1.direction.reservedBytes })
                #expect(harnesses[d].direction.reservedBytes <= 16 << 10)
                #expect(harnesses[d].direction.heldBytes <= harnesses[d].direction.reservedBytes)
            }
            for i in 0..<3 {
                harnesses[i].flush(ts: 1 << 40)
                let h = harnesses[i]
                // Every delivered byte is the right byte for its stream offset.
                let c = h.direction.counters
                totals.outOfOrderSegments += c.outOfOrderSegments
                totals.memoryPressureGaps += c.memoryPressureGaps
                totals.gaps += c.gaps
                totals.overlappingBytes += c.overlappingBytes
                #expect(c.deliveredBytes + c.gapBytes == UInt64(h.recorder.stream.count))
                #expect(h.direction.heldBytes == 0)
                guard h.direction.isSynchronized else { continue }
                var position = Int(h.direction.nextSequence &- isns[i]) - h.recorder.stream.count
                for event in h.events {
                    switch event {
                    case .data(let bytes):
                        #expect(bytes == (position..<(position + bytes.count)).map(content))
                        position += bytes.count
                    case .gap(let length):
                        position += Int(length)
                    case .fin, .reset:
                        break
                    }
                }
            }
        }
        #expect(budget.heldBytes == 0)
        // The run exercised the interesting paths.
        #expect(totals.outOfOrderSegments > 100 && totals.memoryPressureGaps > 0)
        #expect(totals.gaps > totals.memoryPressureGaps && totals.overlappingBytes > 0)
        #expect(budget.refusedReservations > 0)
    }
}
