import PluginAPI

/// What a stream tells its owner after a call into the plugin.
enum StreamFeedOutcome {
    case ok
    /// The plugin said the stream is not its protocol (KS_PARSE_REJECT).
    case rejected
}

/// Host limits on one stream.
public struct StreamLimits: Sendable {
    /// Cap on unconsumed bytes per direction (the plugin may ask for less, or up to `maxBufferCeiling`).
    public var defaultBufferBytes = 1 << 20
    public var maxBufferCeiling = 16 << 20
    public init() {}
}

/// The host side of one flow handed to one plugin (`ks_stream *`): the plugin's
/// stream state, the per-direction buffers of unconsumed bytes, and the
/// {status, consumed, needed} contract enforcement.
final class StreamHandle {
    let plugin: LoadedPlugin
    var flow: ks_flow_info
    /// Where entries go; unowned because the session owns both.
    unowned(unsafe) let emitterRef: EntryEmitter
    var emitter: EntryEmitter? { emitterRef }
    private(set) var state: UnsafeMutableRawPointer?
    private(set) var isOpen = false
    var nextEntryIndex = 0
    /// Set when the bytes are TLS plaintext from a process's OpenSSL calls.
    var tlsOrigin: TLSOrigin?
    private(set) var confirmed = false
    private(set) var violations = 0
    private let bufferCap: Int
    private var directions = (DirectionFeed(), DirectionFeed())
    private var result = ks_parse_result()
    private var chunk = ks_chunk()

    init(plugin: LoadedPlugin, flow: ks_flow_info, emitter: EntryEmitter, limits: StreamLimits) {
        self.plugin = plugin
        self.flow = flow
        self.emitterRef = emitter
        let wanted = plugin.metadata.maxBufferBytes
        bufferCap = wanted > 0 ? min(wanted, limits.maxBufferCeiling) : limits.defaultBufferBytes
        result.struct_size = UInt32(MemoryLayout<ks_parse_result>.size)
        chunk.struct_size = UInt32(MemoryLayout<ks_chunk>.size)
    }

    /// Calls stream_open. Returns false when the plugin refused the stream.
    func open() -> Bool {
        guard let streamOpen = plugin.descriptor.pointee.stream_open else { return false }
        var st: UnsafeMutableRawPointer?
        let handle = OpaquePointer(Unmanaged.passUnretained(self).toOpaque())
        let status = withUnsafePointer(to: &flow) { streamOpen(plugin.context, $0, handle, &st) }
        guard status == KS_OK else {
            plugin.count("host.stream_open_failed")
            return false
        }
        state = st
        isOpen = true
        plugin.count("host.streams")
        return true
    }

    func confirm() { confirmed = true }

    func violation(_ reason: String) {
        violations += 1
        plugin.count("host.violations")
        if violations <= 3 {
            plugin.logger.debug("violation on stream \(flow.flow_id): \(reason)")
        }
    }

    /// Both directions stopped (errors or gaps without resync).
    var bothDirectionsStopped: Bool { directions.0.stopped && directions.1.stopped }

    /// Bytes held unconsumed in both directions.
    var bufferedBytes: Int { directions.0.pending + directions.1.pending }

    private func withDirection<R>(_ d: ks_direction, _ body: (inout DirectionFeed) -> R) -> R {
        d == KS_DIR_CLIENT_TO_SERVER ? body(&directions.0) : body(&directions.1)
    }

    // MARK: TCP data

    /// Delivers in-order bytes of one direction.
    func data(_ direction: ks_direction, _ bytes: UnsafeRawBufferPointer, timestampNs: Int64) -> StreamFeedOutcome {
        guard isOpen, let streamData = plugin.descriptor.pointee.stream_data else { return .ok }
        return withDirection(direction) { feed in
            feed.directionHint = direction
            return feed.deliver(bytes, timestampNs: timestampNs, cap: bufferCap, stream: self) { view, first, last, offset, flags in
                chunk.direction = direction
                chunk.data = view.baseAddress?.assumingMemoryBound(to: UInt8.self)
                chunk.len = UInt32(view.count)
                chunk.flags = flags
                chunk.stream_offset = offset
                chunk.ts_first_ns = first
                chunk.ts_last_ns = last
                result.status = KS_PARSE_ERROR
                result.consumed = 0
                result.needed = 0
                streamData(state, &chunk, &result)
                return result
            }
        }
    }

    /// `length` bytes of `direction` will never arrive.
    func gap(_ direction: ks_direction, length: UInt64, timestampNs: Int64) {
        guard isOpen else { return }
        plugin.count("host.gaps")
        let gapFn = plugin.metadata.acceptsGaps ? plugin.descriptor.pointee.stream_gap : nil
        withDirection(direction) { feed in
            guard !feed.stopped else { return }
            let lost = length + UInt64(feed.pending)
            if let gapFn, gapFn(state, direction, lost) == KS_OK {
                feed.resetAfterGap(gapLength: length)
            } else {
                feed.stop()
                plugin.count("host.directions_stopped_by_gap")
            }
        }
    }

    /// No more bytes in `direction`: a last delivery of what is buffered, then stream_eof.
    func endOfStream(_ direction: ks_direction, timestampNs: Int64) -> StreamFeedOutcome {
        guard isOpen else { return .ok }
        var outcome = StreamFeedOutcome.ok
        let needsFlush = withDirection(direction) { feed -> Bool in
            guard !feed.eofDelivered else { return false }
            feed.eofDelivered = true
            return !feed.stopped && feed.pending > 0
        }
        if needsFlush {
            outcome = withDirection(direction) { feed in
                feed.untilEOF = false
                feed.want = 0
                return StreamFeedOutcome.ok
            }
            outcome = data(direction, UnsafeRawBufferPointer(start: nil, count: 0), timestampNs: timestampNs)
        }
        if outcome == .ok, let eof = plugin.descriptor.pointee.stream_eof {
            eof(state, direction)
        }
        return outcome
    }

    /// Whether stream_eof was already delivered for `direction`.
    func eofDelivered(_ direction: ks_direction) -> Bool { withDirection(direction) { $0.eofDelivered } }

    func tick(nowNs: Int64) {
        guard isOpen, let tick = plugin.descriptor.pointee.stream_tick else { return }
        tick(state, nowNs)
    }

    /// Calls stream_close exactly once.
    func close(_ reason: ks_close_reason) {
        guard isOpen else { return }
        isOpen = false
        plugin.descriptor.pointee.stream_close?(state, reason)
        state = nil
    }

    // MARK: UDP

    /// One datagram of a UDP pseudo-flow.
    func datagram(_ direction: ks_direction, _ bytes: UnsafeRawBufferPointer, timestampNs: Int64) -> StreamFeedOutcome {
        guard isOpen, let fn = plugin.descriptor.pointee.datagram else { return .ok }
        chunk.direction = direction
        chunk.data = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        chunk.len = UInt32(clamping: bytes.count)
        chunk.flags = 0
        chunk.stream_offset = 0
        chunk.ts_first_ns = timestampNs
        chunk.ts_last_ns = timestampNs
        result.status = KS_PARSE_ERROR
        result.consumed = 0
        result.needed = 0
        fn(state, &chunk, &result)
        switch result.status {
        case KS_PARSE_OK, KS_PARSE_SKIP, KS_PARSE_ERROR: return .ok
        case KS_PARSE_REJECT: return .rejected
        default:
            plugin.count("host.contract_violations")
            return .ok
        }
    }
}

/// One direction's unconsumed bytes and parse state.
struct DirectionFeed {
    private var buffer: [UInt8] = []
    private var start = 0
    /// Stream offset of the next byte to arrive.
    private(set) var nextOffset: UInt64 = 0
    /// Bytes the buffer must hold before the next call (0 = any).
    var want = 0
    var untilEOF = false
    private var skip: UInt64 = 0
    private(set) var stopped = false
    var eofDelivered = false
    private var afterGap = false
    private var first = true
    /// (stream offset, capture time) of each segment start still in the buffer.
    private var marks: [(offset: UInt64, ts: Int64)] = []

    var pending: Int { buffer.count - start }

    mutating func stop() {
        stopped = true
        buffer = []
        start = 0
        marks = []
    }

    /// Drops what is buffered after a gap of `gapLength` bytes the plugin accepted.
    mutating func resetAfterGap(gapLength: UInt64) {
        buffer.removeAll(keepingCapacity: true)
        start = 0
        marks.removeAll(keepingCapacity: true)
        want = 0
        untilEOF = false
        skip = 0
        afterGap = true
        nextOffset &+= gapLength
    }

    /// Delivers `input` (possibly empty, to flush) through `call`, buffering what
    /// is left unconsumed and enforcing the result contract.
    mutating func deliver(
        _ input: UnsafeRawBufferPointer, timestampNs: Int64, cap: Int, stream: StreamHandle,
        call: (UnsafeRawBufferPointer, Int64, Int64, UInt64, UInt32) -> ks_parse_result
    ) -> StreamFeedOutcome {
        guard !stopped else {
            if !input.isEmpty { stream.plugin.count("host.bytes_after_stop", Int64(input.count)) }
            return .ok
        }
        var input = input
        var inputOffset = nextOffset
        nextOffset &+= UInt64(input.count)
        if skip > 0 && !input.isEmpty {
            let n = Int(min(skip, UInt64(input.count)))
            skip -= UInt64(n)
            input = UnsafeRawBufferPointer(rebasing: input[n...])
            inputOffset &+= UInt64(n)
        }
        if pending > 0 || input.isEmpty {
            if !input.isEmpty {
                guard pending + input.count <= cap else {
                    // Overflow: what is buffered can never complete within the cap.
                    stream.plugin.count("host.buffer_overflows")
                    let lost = UInt64(pending)
                    buffer.removeAll(keepingCapacity: true)
                    start = 0
                    marks.removeAll(keepingCapacity: true)
                    want = 0
                    untilEOF = false
                    if stream.plugin.metadata.acceptsGaps,
                        let gapFn = stream.plugin.descriptor.pointee.stream_gap,
                        gapFn(stream.state, directionHint, lost) == KS_OK
                    {
                        afterGap = true
                        return deliverDirect(input, offset: inputOffset, ts: timestampNs, cap: cap, stream: stream, call: call)
                    }
                    stop()
                    stream.plugin.count("host.directions_stopped_by_overflow")
                    return .ok
                }
                compactIfNeeded()
                buffer.append(contentsOf: input)
                appendMark(inputOffset, timestampNs)
            }
            if pending == 0 { return .ok }
            if untilEOF && !input.isEmpty { return .ok }
            if want > 0 && pending < want && !input.isEmpty { return .ok }
            return deliverBuffered(timestampNs: timestampNs, cap: cap, stream: stream, call: call)
        }
        return deliverDirect(input, offset: inputOffset, ts: timestampNs, cap: cap, stream: stream, call: call)
    }

    /// Set by the owner before deliver so overflow gaps name the right direction.
    var directionHint: ks_direction = 0

    private mutating func flags() -> UInt32 {
        var f: UInt32 = 0
        if afterGap { f |= KS_CHUNK_AFTER_GAP }
        if first { f |= KS_CHUNK_FIRST }
        return f
    }

    /// Fast path: nothing buffered, hand the caller's bytes straight to the plugin.
    private mutating func deliverDirect(
        _ input: UnsafeRawBufferPointer, offset: UInt64, ts: Int64, cap: Int, stream: StreamHandle,
        call: (UnsafeRawBufferPointer, Int64, Int64, UInt64, UInt32) -> ks_parse_result
    ) -> StreamFeedOutcome {
        var view = input
        var offset = offset
        while !view.isEmpty {
            let r = call(view, ts, ts, offset, flags())
            afterGap = false
            first = false
            switch interpret(r, length: view.count, stream: stream) {
            case .stop:
                stop()
                return .ok
            case .reject:
                return .rejected
            case .advance(let consumed, let skipAfter, let again):
                view = UnsafeRawBufferPointer(rebasing: view[consumed...])
                offset &+= UInt64(consumed)
                if skipAfter > 0 {
                    let n = Int(min(skipAfter, UInt64(view.count)))
                    view = UnsafeRawBufferPointer(rebasing: view[n...])
                    offset &+= UInt64(n)
                    skip = skipAfter - UInt64(n)
                    continue
                }
                if again && !view.isEmpty { continue }
                if !view.isEmpty {
                    guard view.count <= cap else {
                        stream.plugin.count("host.buffer_overflows")
                        stop()
                        return .ok
                    }
                    buffer.removeAll(keepingCapacity: true)
                    start = 0
                    buffer.append(contentsOf: view)
                    marks.removeAll(keepingCapacity: true)
                    appendMark(offset, ts)
                }
                return .ok
            }
        }
        return .ok
    }

    /// Slow path: the buffer holds unconsumed bytes plus the new ones.
    private mutating func deliverBuffered(
        timestampNs: Int64, cap: Int, stream: StreamHandle,
        call: (UnsafeRawBufferPointer, Int64, Int64, UInt64, UInt32) -> ks_parse_result
    ) -> StreamFeedOutcome {
        while pending > 0 {
            let offset = nextOffset &- UInt64(pending)
            let firstTs = timestamp(at: offset) ?? timestampNs
            let r = buffer.withUnsafeBytes { all in
                call(UnsafeRawBufferPointer(rebasing: all[start...]), firstTs, timestampNs, offset, flags())
            }
            afterGap = false
            first = false
            let length = pending
            switch interpret(r, length: length, stream: stream) {
            case .stop:
                stop()
                return .ok
            case .reject:
                return .rejected
            case .advance(let consumed, let skipAfter, let again):
                consume(consumed)
                if skipAfter > 0 {
                    let n = Int(min(skipAfter, UInt64(pending)))
                    consume(n)
                    skip = skipAfter - UInt64(n)
                    continue
                }
                if again && pending > 0 { continue }
                return .ok
            }
        }
        return .ok
    }

    private mutating func consume(_ n: Int) {
        start += n
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
            marks.removeAll(keepingCapacity: true)
        } else {
            let offset = nextOffset &- UInt64(pending)
            // Drop marks wholly before the new first byte, keeping the one that covers it.
            var keepFrom = 0
            while keepFrom + 1 < marks.count && marks[keepFrom + 1].offset <= offset { keepFrom += 1 }
            if keepFrom > 0 { marks.removeFirst(keepFrom) }
        }
    }

    private mutating func compactIfNeeded() {
        if start > 0 && (start >= 4096 || start * 2 >= buffer.count) {
            buffer.removeFirst(start)
            start = 0
        }
    }

    private mutating func appendMark(_ offset: UInt64, _ ts: Int64) {
        if marks.count >= 1024 { marks.removeFirst(512) }
        marks.append((offset, ts))
    }

    private func timestamp(at offset: UInt64) -> Int64? {
        var found: Int64?
        for m in marks {
            if m.offset <= offset { found = m.ts } else { break }
        }
        return found ?? marks.first?.ts
    }

    enum Step {
        case advance(consumed: Int, skip: UInt64, again: Bool)
        case stop
        case reject
    }

    /// Checks one parse result against the contract and says what to do.
    private mutating func interpret(_ r: ks_parse_result, length: Int, stream: StreamHandle) -> Step {
        let consumed = Int(r.consumed)
        guard consumed <= length else {
            stream.plugin.count("host.contract_violations")
            stream.violation("parse result consumed \(consumed) of \(length) bytes")
            return .stop
        }
        switch r.status {
        case KS_PARSE_OK:
            want = 0
            untilEOF = false
            return .advance(consumed: consumed, skip: 0, again: consumed > 0)
        case KS_PARSE_NEED_MORE:
            untilEOF = r.needed == KS_NEED_UNTIL_EOF
            if untilEOF || r.needed == KS_NEED_ANY {
                want = 0
            } else {
                let total = (length - consumed) + Int(r.needed)
                guard total <= stream.bufferCapForContract else {
                    stream.plugin.count("host.need_exceeds_cap")
                    return .stop
                }
                want = total
            }
            return .advance(consumed: consumed, skip: 0, again: false)
        case KS_PARSE_SKIP:
            want = 0
            untilEOF = false
            guard consumed > 0 || r.needed > 0 else { return .stop }
            return .advance(consumed: consumed, skip: UInt64(r.needed), again: true)
        case KS_PARSE_ERROR:
            stream.plugin.count("host.parse_errors")
            return .stop
        case KS_PARSE_REJECT:
            return .reject
        default:
            stream.plugin.count("host.contract_violations")
            stream.violation("unknown parse status \(r.status)")
            return .stop
        }
    }
}

extension StreamHandle {
    var bufferCapForContract: Int { bufferCap }
}
