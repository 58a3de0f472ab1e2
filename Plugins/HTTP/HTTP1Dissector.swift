// The HTTP/1.x stream state machine: one instance per TCP connection.
//
// Each direction parses straight from the host's chunk. A header block is
// consumed only once it is complete (the host keeps the unconsumed bytes);
// bodies are consumed as they arrive, copied up to the display cap and, once
// nothing more would be shown, skipped unseen (KS_PARSE_SKIP). Requests enter
// a FIFO when their head parses; each final response is matched to the oldest
// request without one. An exchange is emitted when both of its messages are
// complete; what is left at close (or after the request timeout) is emitted
// as unanswered.

import PluginZlib
import PluginKit

/// How the body of the message being read is delimited.
enum Framing: Equatable {
    case none
    case length(UInt64)
    case chunkSize
    case chunkData(UInt64)
    case chunkDataEnd
    case trailers
    case untilClose
}

enum Phase: Equatable {
    /// Waiting for (or inside) a header block.
    case head
    case body
    /// After lost bytes or mid-stream pickup: looking for the next start line.
    case resync
    /// After a protocol switch (101, CONNECT 2xx): bytes are not HTTP/1.x.
    case tunnel
    /// After an unrecoverable error or the end of the direction.
    case stopped
}

/// Parser state of one direction.
final class DirectionState {
    let isRequestSide: Bool
    var phase: Phase = .head
    var framing: Framing = .none
    /// The message whose body is being read.
    var current: Message?
    /// Bytes of the current head already searched for the empty line, from the message start.
    var scanned = 0
    /// Start of the unfinished header line, from the message start.
    var lineStart = 0
    /// Bytes left unconsumed by the previous call (for timestamps).
    var leftover = 0
    /// In resync: chunk offset 0 begins a line.
    var atLineStart = true
    var inflater: Inflater?
    var seenMessage = false
    /// The next message follows lost bytes.
    var gapPending = false
    var ended = false
    var tunnelAfterMessage = false
    var stopAfterMessage = false

    init(isRequestSide: Bool) { self.isRequestSide = isRequestSide }

    func inflaterInstance() -> Inflater {
        if let inflater { return inflater }
        let i = Inflater()
        inflater = i
        return i
    }
}

/// A request and what answered it.
final class Exchange {
    var request: Message?
    var response: Message?
    var interim: [Message] = []
    /// 101 Switching Protocols.
    var switched = false
    /// CONNECT answered 2xx.
    var tunnel = false
    var emitted = false
    /// Bytes of the request counted in `pendingBytes`.
    var accounted = 0

    var ready: Bool { (request?.complete ?? true) && (response?.complete ?? false) }
}

public final class HTTP1Dissector: Dissector {
    let host: StreamHost
    let flow: Flow
    let limits: HTTP1Limits
    let client = DirectionState(isRequestSide: true)
    let server = DirectionState(isRequestSide: false)

    var queue: [Exchange] = []
    var queueHead = 0
    /// Requests in the queue without a response.
    var awaiting = 0
    var pendingBytes = 0
    var confirmed = false
    var closed = false
    var pool: [Message] = []
    var exchangePool: [Exchange] = []
    /// Capture time of the newest bytes (for releasing buffers of idle streams).
    var lastActivityNs: Int64 = 0
    /// An idle stream gives back its inflaters and pooled buffers after this long.
    static let idleTrimNs: Int64 = 2_000_000_000
    /// Reused buffer for URLs, decoded query strings and unfolded header values.
    var scratch: [UInt8] = []

    static let maxSkip: UInt64 = 1 << 30

    public init(flow: Flow, host: StreamHost) {
        self.flow = flow
        self.host = host
        self.limits = .standard
    }

    // MARK: Dissector

    public func receive(_ chunk: Chunk) -> ParseResult {
        let d = chunk.direction == .clientToServer ? client : server
        lastActivityNs = chunk.lastTimestampNs
        let r = parse(d, chunk)
        switch r {
        case .ok(let c), .needMore(let c, _), .needUntilEOF(let c):
            d.leftover = chunk.bytes.count - c
        default:
            d.leftover = 0
        }
        return r
    }

    public func gap(direction: Direction, length: UInt64) -> Bool {
        let d = direction == .clientToServer ? client : server
        host.count("http.gaps")
        switch d.phase {
        case .tunnel, .stopped:
            return true
        case .resync:
            d.atLineStart = true
            return true
        case .head:
            enterResync(d)
            return true
        case .body:
            guard let m = d.current else {
                enterResync(d)
                return true
            }
            m.flags.insert(.afterGap)
            switch d.framing {
            case .length(let rem) where length <= rem:
                m.bodyWire &+= length
                m.countUnseenPayload(length, lost: true)
                if length == rem {
                    d.framing = .length(0)
                    completeMessage(d, m, ts: m.lastTs)
                } else {
                    d.framing = .length(rem - length)
                }
            case .chunkData(let rem) where length <= rem:
                m.bodyWire &+= length
                m.countUnseenPayload(length, lost: true)
                d.framing = length == rem ? .chunkDataEnd : .chunkData(rem - length)
            case .untilClose:
                m.bodyWire &+= length
                m.countUnseenPayload(length, lost: true)
            default:
                // The end of the message was lost with the bytes.
                m.markBodyCut()
                if m.error == nil { m.error = "bytes lost inside the message" }
                completeMessage(d, m, ts: m.lastTs)
                enterResync(d)
            }
            return true
        }
    }

    public func endOfStream(direction: Direction) {
        finishDirection(direction == .clientToServer ? client : server)
        drain()
    }

    public func tick(nowNs: Int64) {
        while queueHead < queue.count {
            let x = queue[queueHead]
            if x.emitted {
                queueHead += 1
                continue
            }
            guard x.response == nil, let r = x.request, r.complete,
                nowNs &- r.firstTs >= limits.requestTimeoutNs
            else { break }
            awaiting -= 1
            emit(x, extraFlags: .timedOut)
            queueHead += 1
        }
        compactQueue()
        if nowNs &- lastActivityNs >= Self.idleTrimNs { trimIdle() }
    }

    /// Gives back memory an idle keep-alive stream does not need: zlib state
    /// (~55 KiB per direction) and pooled message buffers.
    private func trimIdle() {
        if client.phase != .body { client.inflater = nil }
        if server.phase != .body { server.inflater = nil }
        pool.removeAll()
        exchangePool.removeAll()
        if scratch.capacity > 4096 { scratch = [] }
    }

    public func close(reason: CloseReason) {
        guard !closed else { return }
        closed = true
        finishDirection(client)
        finishDirection(server)
        drain()
        // Whatever is left has no (complete) response.
        for i in queueHead..<queue.count where !queue[i].emitted {
            emit(queue[i], extraFlags: [])
        }
        queue.removeAll()
        queueHead = 0
        awaiting = 0
        pendingBytes = 0
        pool.removeAll()
        client.inflater = nil
        server.inflater = nil
        client.current = nil
        server.current = nil
    }

    // MARK: Parsing loop

    enum HeadStep {
        case needMore
        case done(Int)
        case reject
        /// The direction stopped (or switched to tunnel/resync); see `phase`.
        case redo
    }

    enum BodyStep {
        case done(Int)
        case result(ParseResult)
    }

    private func parse(_ d: DirectionState, _ chunk: Chunk) -> ParseResult {
        let b = chunk.bytes
        let n = b.count
        var pos = 0
        if chunk.afterGap, d.phase == .head, d.scanned > 0 {
            // Bytes before the gap are not contiguous with these.
            enterResync(d)
        }
        while true {
            switch d.phase {
            case .tunnel, .stopped:
                return .ok(consumed: n)
            case .resync:
                switch resyncScan(d, b, from: pos) {
                case .found(let p):
                    pos = p
                    d.phase = .head
                    d.scanned = 0
                    d.lineStart = 0
                case .partial(let p):
                    return .needMore(consumed: p, needed: nil)
                case .none:
                    return .ok(consumed: n)
                }
            case .head:
                if d.scanned == 0 {
                    while pos < n, b[pos] == CR || b[pos] == LF { pos += 1 }
                }
                if pos == n { return .ok(consumed: n) }
                switch readHead(d, chunk, from: pos) {
                case .needMore:
                    return .needMore(consumed: pos, needed: nil)
                case .done(let end):
                    pos = end
                case .reject:
                    return .reject
                case .redo:
                    if d.phase == .resync {
                        // Skip the rejected line; the scanner starts at the next one.
                        if let lf = find(LF, in: b, from: pos, to: n) {
                            pos = lf + 1
                            d.atLineStart = true
                        } else {
                            d.atLineStart = false
                            return .ok(consumed: n)
                        }
                    }
                }
            case .body:
                switch readBody(d, chunk, from: pos) {
                case .done(let end):
                    pos = end
                case .result(let r):
                    return r
                }
            }
        }
    }

    /// Timestamp of the byte at `pos`: bytes left over from earlier calls came
    /// with the packet of `bytes[0]`, new bytes with the newest packet.
    @inline(__always)
    private func timestamp(_ chunk: Chunk, _ d: DirectionState, at pos: Int) -> Int64 {
        pos == 0 || pos < d.leftover ? chunk.firstTimestampNs : chunk.lastTimestampNs
    }

    private func enterResync(_ d: DirectionState) {
        d.phase = .resync
        d.scanned = 0
        d.lineStart = 0
        d.atLineStart = true
        d.gapPending = true
        d.current = nil
        d.framing = .none
    }

    enum ResyncResult {
        case found(Int)
        case partial(Int)
        case none
    }

    /// Looks for the next start line at a line start from `from`.
    private func resyncScan(_ d: DirectionState, _ b: UnsafeRawBufferPointer, from: Int) -> ResyncResult {
        let n = b.count
        var cand = from
        if !d.atLineStart {
            guard let lf = find(LF, in: b, from: from, to: n) else { return .none }
            cand = lf + 1
            d.atLineStart = true
        }
        let limit = limits.maxResyncLineBytes
        while cand < n {
            let rest = slice(b, cand, n)
            let v =
                d.isRequestSide
                ? checkRequestLine(rest, limit: limit, knownOnly: true) : checkStatusLine(rest, limit: limit)
            switch v {
            case .complete:
                return .found(cand)
            case .incomplete:
                if rest.count < limit { return .partial(cand) }
            case .invalid:
                break
            }
            guard let lf = find(LF, in: b, from: cand, to: n) else {
                d.atLineStart = false
                return .none
            }
            cand = lf + 1
        }
        return .none
    }

    // MARK: Heads

    private func readHead(_ d: DirectionState, _ chunk: Chunk, from start: Int) -> HeadStep {
        let b = chunk.bytes
        let n = b.count
        let cap = limits.maxHeaderBytes
        if d.lineStart == 0 {
            // Catch garbage early, before a whole line (or the cap) has arrived.
            let rest = slice(b, start, n)
            let v =
                d.isRequestSide
                ? checkRequestLine(rest, limit: 48, knownOnly: false) : checkStatusLine(rest, limit: 48)
            if v == .invalid { return badHead(d, chunk, at: start, "not an HTTP/1.x start line") }
        }
        let searchEnd = min(n, start + cap + 1)
        var i = start + d.scanned
        var ls = start + d.lineStart
        var end: Int?
        while i < searchEnd, let lf = find(LF, in: b, from: i, to: searchEnd) {
            if ls == start {
                // The start line is complete: check it whole.
                let line = lineContent(b, start, lf)
                let ok = d.isRequestSide ? parseRequestLine(line) != nil : parseStatusLine(line) != nil
                if !ok { return badHead(d, chunk, at: start, "not an HTTP/1.x start line") }
            } else if lf == ls || (lf == ls + 1 && b[ls] == CR) {
                end = lf + 1
                break
            }
            ls = lf + 1
            i = lf + 1
        }
        guard let end, end - start <= cap else {
            if searchEnd - start > cap {
                // No empty line within the cap: keep what fits, flag it, stop the direction.
                return oversizedHead(d, chunk, from: start)
            }
            d.scanned = n - start
            d.lineStart = ls - start
            return .needMore
        }

        let m = newMessage(isRequest: d.isRequestSide)
        m.head.append(contentsOf: slice(b, start, end))
        m.headSize = end - start
        m.firstTs = timestamp(chunk, d, at: start)
        m.lastTs = chunk.lastTimestampNs
        d.scanned = 0
        d.lineStart = 0
        let status = m.parseHead(maxHeaders: limits.maxHeaders)
        if status == .badStartLine {
            recycle(m)
            return badHead(d, chunk, at: start, "not an HTTP/1.x start line")
        }
        acceptedHead(d, m)
        if status == .tooManyHeaders {
            host.count("http.violations")
            host.violation("HTTP: more than \(limits.maxHeaders) header fields")
            d.stopAfterMessage = true
            deliverWithoutBody(d, m, ts: chunk.lastTimestampNs)
            return .redo
        }
        if d.isRequestSide {
            startRequest(d, m, chunk)
        } else {
            startResponse(d, m, chunk)
        }
        return .done(end)
    }

    private func acceptedHead(_ d: DirectionState, _ m: Message) {
        if !confirmed {
            confirmed = true
            host.confirm()
        }
        d.seenMessage = true
        if d.gapPending {
            m.flags.insert(.afterGap)
            d.gapPending = false
        }
    }

    /// A header block larger than the cap: its complete lines become a
    /// malformed, truncated message and the direction stops.
    private func oversizedHead(_ d: DirectionState, _ chunk: Chunk, from start: Int) -> HeadStep {
        let m = newMessage(isRequest: d.isRequestSide)
        m.head.append(contentsOf: slice(chunk.bytes, start, start + limits.maxHeaderBytes))
        m.headSize = m.head.count
        m.firstTs = timestamp(chunk, d, at: start)
        m.lastTs = chunk.lastTimestampNs
        d.scanned = 0
        d.lineStart = 0
        if m.parseHead(maxHeaders: limits.maxHeaders) == .badStartLine {
            recycle(m)
            return badHead(d, chunk, at: start, "not an HTTP/1.x start line")
        }
        acceptedHead(d, m)
        m.fail("header block larger than the cap")
        m.flags.insert(.truncated)
        host.count("http.violations")
        host.violation("HTTP: header block larger than \(limits.maxHeaderBytes) bytes")
        d.stopAfterMessage = true
        deliverWithoutBody(d, m, ts: chunk.lastTimestampNs)
        return .redo
    }

    /// Bytes that do not start a message.
    private func badHead(_ d: DirectionState, _ chunk: Chunk, at pos: Int, _ reason: StaticString) -> HeadStep {
        d.scanned = 0
        d.lineStart = 0
        if d.isRequestSide, upgradeInFlight() {
            // The client speaks the protocol it asked to switch to.
            d.phase = .tunnel
            return .redo
        }
        if !d.seenMessage, flow.isMidstream || chunk.afterGap || d.gapPending {
            // Picked up inside a message: look for the next one quietly.
            d.phase = .resync
            d.gapPending = true
            return .redo
        }
        if !confirmed { return .reject }
        host.count("http.violations")
        host.violation("HTTP: \(reason)")
        d.phase = .stopped
        return .redo
    }

    /// A request with `Upgrade` or a CONNECT is waiting for its answer (or was switched).
    private func upgradeInFlight() -> Bool {
        for i in queueHead..<queue.count {
            let x = queue[i]
            guard !x.emitted, let r = x.request else { continue }
            if x.switched || x.tunnel { return true }
            if x.response == nil, r.upgrade != nil || isMethod(r, "CONNECT") { return true }
        }
        return false
    }

    // MARK: Requests and responses

    private func startRequest(_ d: DirectionState, _ m: Message, _ chunk: Chunk) {
        var framing = Framing.none
        if m.transferEncoding != nil {
            if m.chunked {
                framing = .chunkSize
                m.hasBody = true
            } else {
                framingError(d, m, "Transfer-Encoding without a final chunked")
            }
        } else if m.contentLengthInvalid {
            framingError(d, m, "invalid or conflicting Content-Length")
        } else if let cl = m.contentLength {
            m.hasBody = true
            if cl > 0 { framing = .length(cl) }
        }
        let x = newExchange()
        x.request = m
        queue.append(x)
        awaiting += 1
        enforceBounds()
        begin(d, m, framing, ts: chunk.lastTimestampNs)
    }

    private func startResponse(_ d: DirectionState, _ m: Message, _ chunk: Chunk) {
        if m.isInterim {
            m.complete = true
            if let x = firstAwaiting() {
                if x.interim.count < limits.maxInterimResponses {
                    x.interim.append(m)
                } else {
                    recycle(m)
                }
            } else {
                let x = newExchange()
                x.response = m
                emit(x, extraFlags: [])
            }
            return
        }
        let x: Exchange
        if let w = firstAwaiting() {
            x = w
            awaiting -= 1
        } else {
            x = newExchange()
            queue.append(x)
        }
        x.response = m
        let req = x.request
        var framing = Framing.none
        let code = m.statusCode
        if code == 101 {
            x.switched = true
        } else if let req, isMethod(req, "CONNECT"), code >= 200, code < 300 {
            x.tunnel = true
        } else if let req, isMethod(req, "HEAD") {
            // No body, whatever the fields say.
        } else if code == 204 || code == 304 {
            // No body.
        } else if m.transferEncoding != nil {
            m.hasBody = true
            framing = m.chunked ? .chunkSize : .untilClose
        } else if m.contentLengthInvalid {
            framingError(d, m, "invalid or conflicting Content-Length")
        } else if let cl = m.contentLength {
            m.hasBody = true
            if cl > 0 { framing = .length(cl) }
        } else {
            m.hasBody = true
            framing = .untilClose
        }
        if x.switched || x.tunnel {
            // Both directions leave HTTP/1.x once this exchange is over.
            d.tunnelAfterMessage = true
            switch client.phase {
            case .head, .resync:
                client.phase = .tunnel
            case .body:
                client.tunnelAfterMessage = true
            case .tunnel, .stopped:
                break
            }
        }
        begin(d, m, framing, ts: chunk.lastTimestampNs)
    }

    /// The body cannot be delimited: the message is malformed and, once
    /// delivered without a body, the direction stops.
    private func framingError(_ d: DirectionState, _ m: Message, _ reason: StaticString) {
        m.fail(reason)
        host.count("http.violations")
        host.violation("HTTP: \(reason)")
        d.stopAfterMessage = true
    }

    /// Starts reading the body (or completes a message without one).
    private func begin(_ d: DirectionState, _ m: Message, _ framing: Framing, ts: Int64) {
        if framing == .none {
            completeMessage(d, m, ts: ts)
        } else {
            d.current = m
            d.framing = framing
            d.phase = .body
        }
    }

    private func deliverWithoutBody(_ d: DirectionState, _ m: Message, ts: Int64) {
        if d.isRequestSide {
            let x = newExchange()
            x.request = m
            queue.append(x)
            awaiting += 1
            enforceBounds()
            completeMessage(d, m, ts: ts)
        } else if m.isInterim {
            let x = newExchange()
            x.response = m
            m.complete = true
            emit(x, extraFlags: [])
            d.phase = .stopped
        } else {
            let x: Exchange
            if let w = firstAwaiting() {
                x = w
                awaiting -= 1
            } else {
                x = newExchange()
                queue.append(x)
            }
            x.response = m
            completeMessage(d, m, ts: ts)
        }
    }

    private func completeMessage(_ d: DirectionState, _ m: Message, ts: Int64) {
        m.finishPayload(limits: limits, inflater: d.inflaterInstance)
        m.complete = true
        if ts != 0 { m.lastTs = ts }
        if d.current === m { d.current = nil }
        d.framing = .none
        d.scanned = 0
        d.lineStart = 0
        if d.tunnelAfterMessage {
            d.phase = .tunnel
        } else if d.stopAfterMessage || d.ended {
            d.phase = .stopped
        } else {
            d.phase = .head
        }
        if m.isRequest {
            // The request completing is (almost always) the newest one.
            var i = queue.count - 1
            while i >= queueHead {
                if queue[i].request === m {
                    let size = m.storedBytes
                    queue[i].accounted = size
                    pendingBytes += size
                    break
                }
                i -= 1
            }
            enforceBounds()
        }
        drain()
    }

    /// The direction ends: a body read until close is complete, anything else is cut.
    private func finishDirection(_ d: DirectionState) {
        guard !d.ended else { return }
        d.ended = true
        if d.phase == .head, d.scanned > 0 {
            // A header block cut by the end of the stream: nothing to show.
            host.count("http.partial_head_at_eof")
        }
        if d.phase == .body, let m = d.current {
            if d.framing != .untilClose {
                m.markBodyCut()
                if m.error == nil { m.error = "the stream ended inside the body" }
            }
            completeMessage(d, m, ts: 0)
        }
        d.phase = .stopped
    }

    // MARK: Bodies

    private func readBody(_ d: DirectionState, _ chunk: Chunk, from start: Int) -> BodyStep {
        let b = chunk.bytes
        let n = b.count
        guard let m = d.current else {
            d.phase = .head
            return .done(start)
        }
        var pos = start
        let inflater = d.inflaterInstance
        while true {
            switch d.framing {
            case .none:
                completeMessage(d, m, ts: chunk.lastTimestampNs)
                return .done(pos)

            case .length(let rem):
                let take = Int(min(UInt64(n - pos), rem))
                m.feedPayload(slice(b, pos, pos + take), limits: limits, inflater: inflater)
                m.bodyWire &+= UInt64(take)
                pos += take
                var left = rem - UInt64(take)
                if left == 0 {
                    completeMessage(d, m, ts: chunk.lastTimestampNs)
                    return .done(pos)
                }
                m.lastTs = chunk.lastTimestampNs
                if !m.wantsPayload {
                    let skip = min(left, Self.maxSkip)
                    m.countUnseenPayload(skip, lost: false)
                    m.bodyWire &+= skip
                    left -= skip
                    d.framing = .length(left)
                    if left == 0 { completeMessage(d, m, ts: chunk.lastTimestampNs) }
                    return .result(.skip(consumed: n, count: Int(skip)))
                }
                d.framing = .length(left)
                return .result(.ok(consumed: n))

            case .chunkSize:
                let lineCap = limits.maxChunkLineBytes
                guard let lf = find(LF, in: b, from: pos, to: min(n, pos + lineCap + 1)) else {
                    if n - pos > lineCap { return chunkError(d, m, chunk, "chunk size line too long") }
                    return .result(.needMore(consumed: pos, needed: nil))
                }
                guard let size = parseChunkSize(lineContent(b, pos, lf)) else {
                    return chunkError(d, m, chunk, "bad chunk size line")
                }
                m.bodyWire &+= UInt64(lf + 1 - pos)
                pos = lf + 1
                d.framing = size == 0 ? .trailers : .chunkData(size)

            case .chunkData(let rem):
                let take = Int(min(UInt64(n - pos), rem))
                m.feedPayload(slice(b, pos, pos + take), limits: limits, inflater: inflater)
                m.bodyWire &+= UInt64(take)
                pos += take
                var left = rem - UInt64(take)
                if left == 0 {
                    d.framing = .chunkDataEnd
                    continue
                }
                m.lastTs = chunk.lastTimestampNs
                if !m.wantsPayload {
                    let skip = min(left, Self.maxSkip)
                    m.countUnseenPayload(skip, lost: false)
                    m.bodyWire &+= skip
                    left -= skip
                    d.framing = left == 0 ? .chunkDataEnd : .chunkData(left)
                    return .result(.skip(consumed: n, count: Int(skip)))
                }
                d.framing = .chunkData(left)
                return .result(.ok(consumed: n))

            case .chunkDataEnd:
                if pos == n { return .result(.ok(consumed: n)) }
                if b[pos] == LF {
                    pos += 1
                    m.bodyWire &+= 1
                } else if b[pos] == CR {
                    if pos + 1 == n { return .result(.needMore(consumed: pos, needed: 1)) }
                    guard b[pos + 1] == LF else { return chunkError(d, m, chunk, "no CRLF after chunk data") }
                    pos += 2
                    m.bodyWire &+= 2
                } else {
                    return chunkError(d, m, chunk, "no CRLF after chunk data")
                }
                d.framing = .chunkSize

            case .trailers:
                let lineCap = limits.maxTrailerBytes
                guard let lf = find(LF, in: b, from: pos, to: min(n, pos + lineCap + 1)) else {
                    if n - pos > lineCap { return chunkError(d, m, chunk, "trailer line too long") }
                    return .result(.needMore(consumed: pos, needed: nil))
                }
                let line = lineContent(b, pos, lf)
                m.bodyWire &+= UInt64(lf + 1 - pos)
                pos = lf + 1
                if line.isEmpty {
                    completeMessage(d, m, ts: chunk.lastTimestampNs)
                    return .done(pos)
                }
                m.addTrailerLine(line, maxFields: limits.maxHeaders, maxBytes: limits.maxTrailerBytes)

            case .untilClose:
                m.feedPayload(slice(b, pos, n), limits: limits, inflater: inflater)
                m.bodyWire &+= UInt64(n - pos)
                m.lastTs = chunk.lastTimestampNs
                return .result(.ok(consumed: n))
            }
        }
    }

    /// Broken chunked framing: the message ends here (malformed) and the direction stops.
    private func chunkError(_ d: DirectionState, _ m: Message, _ chunk: Chunk, _ reason: StaticString) -> BodyStep {
        m.fail(reason)
        m.flags.insert(.truncated)
        host.count("http.violations")
        host.violation("HTTP: \(reason)")
        d.stopAfterMessage = true
        completeMessage(d, m, ts: chunk.lastTimestampNs)
        return .result(.ok(consumed: chunk.bytes.count))
    }

    // MARK: Queue

    private func firstAwaiting() -> Exchange? {
        var i = queueHead
        while i < queue.count {
            let x = queue[i]
            if !x.emitted, x.response == nil, x.request != nil { return x }
            i += 1
        }
        return nil
    }

    /// Emits the exchanges at the head of the queue that are complete.
    private func drain() {
        while queueHead < queue.count {
            let x = queue[queueHead]
            if !x.emitted {
                guard x.ready else { break }
                emit(x, extraFlags: [])
            }
            queueHead += 1
        }
        compactQueue()
    }

    private func compactQueue() {
        if queueHead == queue.count {
            reuse(queue[...])
            queue.removeAll(keepingCapacity: queue.count <= 64)
            queueHead = 0
        } else if queueHead > 32, queueHead * 2 > queue.count {
            reuse(queue[0..<queueHead])
            queue.removeFirst(queueHead)
            queueHead = 0
        }
    }

    /// Too many requests (or bytes) waiting: the oldest unanswered one goes out as unanswered.
    private func enforceBounds() {
        while awaiting > limits.maxPendingRequests || pendingBytes > limits.maxPendingBytes {
            var victim: Int?
            for i in queueHead..<queue.count {
                let x = queue[i]
                if !x.emitted, x.response == nil, let r = x.request, r.complete {
                    victim = i
                    break
                }
            }
            guard let v = victim else { return }
            let x = queue[v]
            awaiting -= 1
            host.count("http.unanswered_evicted")
            emit(x, extraFlags: [])
        }
    }

    private func isMethod(_ m: Message, _ name: StaticString) -> Bool {
        m.head.withUnsafeBytes { h in h[span: m.method].elementsEqual(staticBytes(name)) }
    }

    // MARK: Pool

    func newMessage(isRequest: Bool) -> Message {
        let m = pool.popLast() ?? Message()
        m.reset(isRequest: isRequest)
        return m
    }

    func recycle(_ m: Message) {
        guard pool.count < 2, !closed else { return }
        let capacity = m.head.capacity + m.display.capacity + m.raw.capacity + m.trailerBytes.capacity
        guard capacity <= 16 << 10 else { return }
        pool.append(m)
    }

    func newExchange() -> Exchange {
        guard let x = exchangePool.popLast() else { return Exchange() }
        x.switched = false
        x.tunnel = false
        x.emitted = false
        x.accounted = 0
        return x
    }

    /// Releases an emitted exchange. It goes back to the pool only once it has
    /// left the queue (the queue still refers to it until compaction).
    func retire(_ x: Exchange) {
        x.emitted = true
        pendingBytes -= x.accounted
        x.accounted = 0
        if let r = x.request { recycle(r) }
        if let r = x.response { recycle(r) }
        for m in x.interim { recycle(m) }
        x.request = nil
        x.response = nil
        x.interim.removeAll(keepingCapacity: true)
    }

    /// Exchanges dropped from the queue can be reused.
    private func reuse(_ exchanges: ArraySlice<Exchange>) {
        guard !closed else { return }
        for x in exchanges where x.emitted && exchangePool.count < 4 { exchangePool.append(x) }
    }
}

/// Parses a chunk-size line: hex digits, optional whitespace, optional `;ext`.
func parseChunkSize(_ line: UnsafeRawBufferPointer) -> UInt64? {
    var v: UInt64 = 0
    var i = 0
    let n = line.count
    while i < n, isWhitespace(line[i]) { i += 1 }  // tolerated
    let digitsStart = i
    while i < n, let h = hexValue(line[i]) {
        guard v >> 60 == 0 else { return nil }  // would overflow
        v = v << 4 | UInt64(h)
        i += 1
    }
    guard i > digitsStart else { return nil }
    while i < n, isWhitespace(line[i]) { i += 1 }
    guard i == n || line[i] == UInt8(ascii: ";") else { return nil }
    return v
}
