// The HTTP/2 connection state machine: per direction it recognises the start
// (client preface, an HTTP/1.1 `Upgrade: h2c` exchange, or frames of a capture
// that began mid-connection), then reads frames, assembles header blocks
// (HEADERS/PUSH_PROMISE + CONTINUATION), decodes them with that direction's
// HPACK decoder, feeds DATA payloads incrementally to the stream's body and
// gRPC reader, and emits one entry per stream when both halves have ended
// (or RST_STREAM / GOAWAY / the end of the connection ends it).
//
// Buffering: DATA payloads are consumed as they arrive, so the host keeps at
// most one partial non-DATA frame (bounded by `maxFrameBytes`); larger ones
// are skipped and noted.

import PluginZlib
import PluginKit

/// What one direction is reading.
enum ReadMode {
    /// Nothing seen yet.
    case start
    /// An HTTP/1.1 message (the upgrade request, or the server's answer to it).
    case http1Head
    /// The body of that HTTP/1.1 message: bytes left.
    case http1Body(Int)
    /// After the upgrade request: the client preface is due.
    case awaitPreface
    /// HTTP/2 frames.
    case frames
    /// Not parsed any more (a refused upgrade, or an unrecoverable error).
    case passthrough
}

/// The reading state of one direction.
struct DirectionState {
    var mode = ReadMode.start
    /// Inside a DATA frame: its stream, payload bytes left, padding left, END_STREAM.
    var dataStream: UInt32 = 0
    var dataRemaining = 0
    var padRemaining = 0
    var dataEndStream = false
    var inData = false
    /// A header block waiting for CONTINUATION frames.
    var block: [UInt8] = []
    var blockActive = false
    var blockStream: UInt32 = 0
    var blockEndStream = false
    var blockPromised: UInt32 = 0  // non-zero for PUSH_PROMISE
    var blockOversized = false
    var blockWire = 0
    /// Bytes were lost between frames: look for the next plausible frame header.
    var resync = false
}

/// One HTTP/2 connection (a TCP stream): reads both directions' frames and
/// emits an entry per HTTP/2 stream, as protocol `http2` or, for
/// `application/grpc` streams, `grpc`.
public final class HTTP2Dissector: Dissector {
    let host: StreamHost
    let flow: Flow
    let limits = HTTP2Limits.standard

    var client = DirectionState()
    var server = DirectionState()
    /// Decoder for blocks the client encoded (requests) and the server encoded (responses, pushes).
    var clientHPACK = HPACKDecoder()
    var serverHPACK = HPACKDecoder()

    var streams: [UInt32: H2Stream] = [:]
    private var pool: [H2Stream] = []
    /// Recently finished stream ids, so late frames do not open them again.
    private var closed = [UInt32](repeating: 0, count: 64)
    private var closedNext = 0
    /// The connection start (preface or upgrade) was seen.
    var startSeen = false
    /// Frames were read without the connection start: HPACK state is partial.
    var midstream = false
    /// Connection-level problems, attached to the next entry.
    var connectionErrors: [String] = []
    /// Decoded header block scratch.
    let blockList = HeaderList()
    lazy var inflater = Inflater()
    var scratch: [UInt8] = []
    /// The upgrade request's head, kept until the server answers.
    var upgradePending = false

    /// Last time (capture clock) idle streams were looked for.
    private var lastSweepNs: Int64 = 0
    private var expired: [H2Stream] = []

    /// A new connection.
    public init(flow: Flow, host: StreamHost) {
        self.flow = flow
        self.host = host
    }

    // MARK: Receive

    /// Bytes of one direction: frames are read as far as they are complete.
    public func receive(_ chunk: Chunk) -> ParseResult {
        // The state is used in place (a copy would duplicate the header-block buffer on every write).
        chunk.direction == .clientToServer ? receive(chunk, &client) : receive(chunk, &server)
    }

    private func receive(_ chunk: Chunk, _ st: inout DirectionState) -> ParseResult {
        let d = chunk.direction
        let b = chunk.bytes
        var i = 0
        while true {
            let ts = i == 0 ? chunk.firstTimestampNs : chunk.lastTimestampNs
            switch st.mode {
            case .passthrough:
                return .ok(consumed: b.count)
            case .start:
                if let r = detectStart(&st, d, b) { return r }
            case .awaitPreface:
                let n = min(b.count - i, connectionPreface.count)
                if !connectionPreface.withUnsafeBytes({ $0.prefix(n).elementsEqual(b[i..<(i + n)]) }) {
                    // The server refused the upgrade (or ignored it): HTTP/1.1 goes on.
                    st.mode = .passthrough
                    continue
                }
                if n < connectionPreface.count { return .needMore(consumed: i, needed: connectionPreface.count - n) }
                i += n
                st.mode = .frames
            case .http1Head:
                switch readHTTP1Head(&st, d, UnsafeRawBufferPointer(rebasing: b[i...]), ts: ts) {
                case .consumed(let n): i += n
                case .needMore: return .needMore(consumed: i, needed: nil)
                }
            case .http1Body(let left):
                let n = min(left, b.count - i)
                http1Body(d, UnsafeRawBufferPointer(rebasing: b[i..<(i + n)]))
                i += n
                if left - n > 0 {
                    st.mode = .http1Body(left - n)
                    return .ok(consumed: i)
                }
                http1BodyEnded(&st, d)
            case .frames:
                return readFrames(&st, d, b, from: i, chunk: chunk)
            }
            if i >= b.count, !isStart(st.mode) { return .ok(consumed: i) }
        }
    }

    private func isStart(_ m: ReadMode) -> Bool {
        if case .start = m { return true }
        return false
    }

    /// Decides how a direction begins. Returns a result when more bytes are needed.
    private func detectStart(_ st: inout DirectionState, _ d: Direction, _ b: UnsafeRawBufferPointer) -> ParseResult? {
        if d == .clientToServer {
            let n = min(b.count, connectionPreface.count)
            if connectionPreface.withUnsafeBytes({ $0.prefix(n).elementsEqual(b.prefix(n)) }) {
                if n < connectionPreface.count { return .needMore(consumed: 0, needed: connectionPreface.count - n) }
                startSeen = true
                st.mode = .awaitPreface
                return nil
            }
            if looksLikeHTTP1Request(b) {
                st.mode = .http1Head
                return nil
            }
            if couldBeHTTP1Method(b) { return .needMore(consumed: 0, needed: nil) }
        } else {
            let prefix = staticBytes("HTTP/1.")
            let n = min(b.count, prefix.count)
            if b.prefix(n).elementsEqual(prefix.prefix(n)) {
                if n < prefix.count { return .needMore(consumed: 0, needed: prefix.count - n) }
                st.mode = .http1Head
                return nil
            }
        }
        st.mode = .frames
        if d == .clientToServer {
            if !startSeen {
                // Client frames without the preface: a capture that began mid-connection.
                midstream = true
                clientHPACK.tableUnknown = true
                serverHPACK.tableUnknown = true
            }
        } else if !startSeen && flow.isMidstream {
            // The server's bytes came first (its SETTINGS usually do) and the handshake
            // was not seen: what the server's blocks refer to may predate the capture.
            serverHPACK.tableUnknown = true
        }
        return nil
    }

    // MARK: Frames

    private func readFrames(
        _ st: inout DirectionState, _ d: Direction, _ b: UnsafeRawBufferPointer, from start: Int, chunk: Chunk
    ) -> ParseResult {
        var i = start
        let n = b.count
        if st.resync {
            switch findFrame(b, from: i) {
            case .found(let j):
                if j > i { noteConnection("resynchronised after lost bytes: \(j - i) bytes skipped") }
                i = j
                st.resync = false
            case .wait(let j, let needed):
                return .needMore(consumed: j, needed: needed)
            }
        }
        while i < n {
            let ts = i == 0 ? chunk.firstTimestampNs : chunk.lastTimestampNs
            if st.inData {
                if st.dataRemaining > 0 {
                    let take = min(st.dataRemaining, n - i)
                    feedData(d, st.dataStream, UnsafeRawBufferPointer(rebasing: b[i..<(i + take)]), ts: ts)
                    st.dataRemaining -= take
                    i += take
                    if st.dataRemaining > 0 { break }
                }
                if st.padRemaining > 0 {
                    let take = min(st.padRemaining, n - i)
                    st.padRemaining -= take
                    i += take
                    if st.padRemaining > 0 { break }
                }
                st.inData = false
                if st.dataEndStream { endStream(d, st.dataStream) }
                continue
            }
            if n - i < FrameHeader.size { return .needMore(consumed: i, needed: FrameHeader.size - (n - i)) }
            let h = FrameHeader(b, at: i)
            let total = FrameHeader.size + h.length
            if h.type == FrameType.data.rawValue {
                let padded = h.flags & FrameFlag.padded != 0
                if padded && n - i < FrameHeader.size + 1 { return .needMore(consumed: i, needed: FrameHeader.size + 1 - (n - i)) }
                var pad = 0
                if padded && h.length == 0 {
                    noteConnection("DATA frame on stream \(h.streamID): PADDED without a pad length")
                    i += FrameHeader.size
                    continue
                }
                if padded {
                    pad = Int(b[i + FrameHeader.size])
                    if h.length == 0 || pad > h.length - 1 {
                        noteConnection("DATA frame on stream \(h.streamID): padding longer than the frame")
                        pad = max(0, h.length - 1)
                    }
                }
                let stream = dataStream(d, h.streamID, frameBytes: total, ts: ts)
                _ = stream
                st.inData = true
                st.dataStream = h.streamID
                st.dataRemaining = h.length - (padded ? 1 : 0) - pad
                st.padRemaining = pad
                st.dataEndStream = h.flags & FrameFlag.endStream != 0
                i += FrameHeader.size + (padded ? 1 : 0)
                if st.dataRemaining == 0 && st.padRemaining == 0 {
                    // An empty DATA frame (often END_STREAM alone, as curl and
                    // Hypercorn send) is done now, even when it ends the chunk:
                    // waiting for more bytes would leave the stream open until the
                    // connection closes, and flag it as cut inside a DATA frame.
                    st.inData = false
                    if st.dataEndStream { endStream(d, st.dataStream) }
                }
                continue
            }
            if total > limits.maxFrameBytes {
                noteConnection("\(frameName(h.type)) frame of \(h.length) bytes skipped (over the \(limits.maxFrameBytes)-byte cap)")
                if h.type == FrameType.headers.rawValue || h.type == FrameType.continuation.rawValue
                    || h.type == FrameType.pushPromise.rawValue
                {
                    markTableUnknown(d)
                    if let s = streams[h.streamID] {
                        s.note("header block skipped: frame over the size cap")
                        s.flags.insert(.truncated)
                    }
                    st.blockActive = false
                }
                return .skip(consumed: i, count: total)
            }
            if n - i < total { return .needMore(consumed: i, needed: total - (n - i)) }
            frame(&st, d, h, UnsafeRawBufferPointer(rebasing: b[(i + FrameHeader.size)..<(i + total)]), ts: ts)
            i += total
        }
        return .ok(consumed: i)
    }

    /// The HPACK table of the blocks `d` carries can no longer be trusted.
    func markTableUnknown(_ d: Direction) {
        if d == .clientToServer { clientHPACK.tableUnknown = true } else { serverHPACK.tableUnknown = true }
    }

    /// One complete non-DATA frame.
    private func frame(_ st: inout DirectionState, _ d: Direction, _ h: FrameHeader, _ p: UnsafeRawBufferPointer, ts: Int64) {
        let total = FrameHeader.size + h.length
        if st.blockActive && h.type != FrameType.continuation.rawValue {
            noteConnection("\(frameName(h.type)) frame inside a header block of stream \(st.blockStream)")
            abandonBlock(&st, d)
        }
        guard let kind = h.kind else { return }  // unknown types are ignored (RFC 9113 5.5)
        switch kind {
        case .data:
            break  // handled incrementally
        case .headers, .pushPromise:
            guard h.streamID != 0 else { return noteConnection("\(frameName(h.type)) frame on stream 0") }
            var s = 0
            var e = p.count
            if h.flags & FrameFlag.padded != 0 {
                guard p.count >= 1, Int(p[0]) <= p.count - 1 else {
                    return malformedBlock(d, h, "\(frameName(h.type)) padding longer than the frame")
                }
                e -= Int(p[0])
                s = 1
            }
            var promised: UInt32 = 0
            if kind == .headers, h.flags & FrameFlag.priority != 0 {
                guard e - s >= 5 else { return malformedBlock(d, h, "HEADERS priority fields cut") }
                s += 5
            }
            if kind == .pushPromise {
                guard e - s >= 4 else { return malformedBlock(d, h, "PUSH_PROMISE promised stream id cut") }
                promised = (UInt32(p[s]) << 24 | UInt32(p[s + 1]) << 16 | UInt32(p[s + 2]) << 8 | UInt32(p[s + 3])) & 0x7FFF_FFFF
                s += 4
                if promised == 0 { promised = 0x7FFF_FFFF }
            }
            st.block.removeAll(keepingCapacity: true)
            st.block.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[s..<e]))
            st.blockActive = true
            st.blockStream = h.streamID
            st.blockEndStream = kind == .headers && h.flags & FrameFlag.endStream != 0
            st.blockPromised = promised
            st.blockOversized = false
            st.blockWire = total
            if let stream = streamFor(d, h.streamID, opening: kind == .headers) {
                stream.half(d).saw(frameBytes: 0, at: ts)
            }
            if h.flags & FrameFlag.endHeaders != 0 { finishBlock(&st, d, ts: ts) }
        case .continuation:
            guard st.blockActive, st.blockStream == h.streamID else {
                return noteConnection("CONTINUATION on stream \(h.streamID) without a header block")
            }
            st.blockWire += total
            if st.block.count + p.count > limits.maxHeaderBlockBytes {
                st.blockOversized = true
            } else {
                st.block.append(contentsOf: p)
            }
            if h.flags & FrameFlag.endHeaders != 0 { finishBlock(&st, d, ts: ts) }
        case .priority, .windowUpdate, .ping:
            break  // flow control and priorities are not needed for entries
        case .rstStream:
            guard p.count == 4, h.streamID != 0 else { return noteConnection("malformed RST_STREAM") }
            let code = UInt32(p[0]) << 24 | UInt32(p[1]) << 16 | UInt32(p[2]) << 8 | UInt32(p[3])
            guard let s = streams[h.streamID] ?? streamFor(d, h.streamID, opening: false) else { return }
            s.half(d).saw(frameBytes: total, at: ts)
            s.rst = StreamReset(code: code, byServer: d == .serverToClient)
            finish(s)
        case .settings:
            guard h.flags & FrameFlag.ack == 0 else { return }
            guard p.count % 6 == 0 else { return noteConnection("SETTINGS length not a multiple of 6") }
            var k = 0
            while k + 6 <= p.count {
                let id = UInt16(p[k]) << 8 | UInt16(p[k + 1])
                let v = Int(p[k + 2]) << 24 | Int(p[k + 3]) << 16 | Int(p[k + 4]) << 8 | Int(p[k + 5])
                if id == 1 { applyHeaderTableSize(v, settingsFrom: d) }
                k += 6
            }
        case .goaway:
            guard p.count >= 8 else { return noteConnection("GOAWAY shorter than 8 bytes") }
            let last = (UInt32(p[0]) << 24 | UInt32(p[1]) << 16 | UInt32(p[2]) << 8 | UInt32(p[3])) & 0x7FFF_FFFF
            let code = UInt32(p[4]) << 24 | UInt32(p[5]) << 16 | UInt32(p[6]) << 8 | UInt32(p[7])
            goaway(from: d, lastStreamID: last, code: code)
        }
    }

    /// SETTINGS_HEADER_TABLE_SIZE sent by one side bounds the other side's encoder.
    func applyHeaderTableSize(_ v: Int, settingsFrom d: Direction) {
        if d == .clientToServer { serverHPACK.table.settingsBound = v } else { clientHPACK.table.settingsBound = v }
    }

    private func malformedBlock(_ d: Direction, _ h: FrameHeader, _ why: String) {
        // The block cannot be decoded: the HPACK table of this direction is now partly unknown.
        markTableUnknown(d)
        if let s = streamFor(d, h.streamID, opening: true) {
            s.note(why)
            s.flags.insert(.malformed)
        } else {
            noteConnection(why)
        }
    }

    private func abandonBlock(_ st: inout DirectionState, _ d: Direction) {
        st.blockActive = false
        markTableUnknown(d)
        if let s = streams[st.blockStream] {
            s.note("header block abandoned before END_HEADERS")
            s.flags.insert(.malformed)
        }
    }

    /// A complete header block: decode it and apply it to its stream.
    private func finishBlock(_ st: inout DirectionState, _ d: Direction, ts: Int64) {
        st.blockActive = false
        blockList.reset()
        var ok = true
        var hpackErrors: [String] = []
        if st.blockOversized {
            markTableUnknown(d)
            hpackErrors.append("header block over the \(limits.maxHeaderBlockBytes)-byte cap: not decoded")
            ok = false
        } else {
            ok = st.block.withUnsafeBytes { blk in
                d == .clientToServer
                    ? clientHPACK.decode(blk, into: blockList, limits: limits)
                    : serverHPACK.decode(blk, into: blockList, limits: limits)
            }
            let errs = d == .clientToServer ? clientHPACK.errors : serverHPACK.errors
            if !errs.isEmpty { hpackErrors = errs }
        }
        blockList.wireSize = st.blockWire
        let targetID = st.blockPromised != 0 ? st.blockPromised : st.blockStream
        if st.blockPromised != 0 {
            // PUSH_PROMISE: the block is the request of the promised stream.
            guard let pushed = streamFor(.clientToServer, targetID, opening: true) else { return }
            pushed.pushedBy = st.blockStream
            apply(pushed, .clientToServer, hpackErrors: hpackErrors, ok: ok, ts: ts)
            pushed.request.ended = true
            if let parent = streams[st.blockStream] { parent.response.saw(frameBytes: st.blockWire, at: ts) }
            return
        }
        guard let s = streamFor(d, targetID, opening: true) else { return }
        s.half(d).saw(frameBytes: st.blockWire, at: ts)
        apply(s, d, hpackErrors: hpackErrors, ok: ok, ts: ts)
        if st.blockEndStream { endStream(d, targetID) }
    }

    /// Puts the decoded `blockList` into the right place of a stream half.
    private func apply(_ s: H2Stream, _ d: Direction, hpackErrors: [String], ok: Bool, ts: Int64) {
        for e in hpackErrors { s.note(e) }
        if !ok { s.flags.insert(.malformed) }
        if blockList.truncated { s.flags.insert(.truncated) }
        let half = s.half(d)
        if half.firstTs == 0 { half.firstTs = ts }
        if !half.headers.present {
            if d == .serverToClient, let st = statusCode(blockList), st >= 100, st < 200 {
                if half.interimStatuses.count < 8 { half.interimStatuses.append(st) }
                return
            }
            half.headers.copy(from: blockList)
            if isGRPCContentType(blockList) { s.isGRPC = true }
        } else if !half.trailers.present {
            half.trailers.copy(from: blockList)
        } else {
            s.note("more than one trailer block")
        }
    }

    // MARK: Streams

    /// The stream `id`, created when `opening` (or for any frame midstream).
    func streamFor(_ d: Direction, _ id: UInt32, opening: Bool) -> H2Stream? {
        if let s = streams[id] { return s }
        guard id != 0 else { return nil }
        if closed.contains(id) { return nil }
        guard opening || midstream else { return nil }
        if streams.count >= limits.maxOpenStreams {
            // Bounded: the oldest stream goes out as it is.
            if let oldest = streams.keys.min(), let s = streams[oldest] {
                s.note("emitted early: more than \(limits.maxOpenStreams) open streams")
                s.flags.insert(.truncated)
                finish(s)
            }
        }
        let s = pool.popLast() ?? H2Stream()
        s.reset(id: id)
        streams[id] = s
        return s
    }

    /// The stream a DATA frame belongs to, with the frame accounted.
    private func dataStream(_ d: Direction, _ id: UInt32, frameBytes: Int, ts: Int64) -> H2Stream? {
        guard let s = streamFor(d, id, opening: false) else { return nil }
        s.half(d).saw(frameBytes: frameBytes, at: ts)
        return s
    }

    private func feedData(_ d: Direction, _ id: UInt32, _ p: UnsafeRawBufferPointer, ts: Int64) {
        guard let s = streams[id] else { return }
        let half = s.half(d)
        if s.isGRPC {
            half.body.size &+= UInt64(p.count)
            half.grpc.feed(p, limits: limits)
        } else {
            half.body.feed(p, cap: limits.maxBodyBytes)
        }
        half.lastTs = ts
    }

    func endStream(_ d: Direction, _ id: UInt32) {
        guard let s = streams[id] else { return }
        s.half(d).ended = true
        if s.request.ended && s.response.ended { finish(s) }
    }

    private func goaway(from d: Direction, lastStreamID: UInt32, code: UInt32) {
        // Streams started by the receiver of the GOAWAY above the last one were not processed.
        let receiverParity: UInt32 = d == .serverToClient ? 1 : 0
        let named = streams.values.filter { $0.id > lastStreamID && $0.id & 1 == receiverParity }.sorted { $0.id < $1.id }
        for s in named {
            s.goaway = (code, lastStreamID, d == .serverToClient)
            finish(s)
        }
        if code != 0 { noteConnection("GOAWAY \(errorCodeName(code)) from the \(d == .serverToClient ? "server" : "client")") }
    }

    /// Emits a stream's entry and returns it to the pool.
    func finish(_ s: H2Stream) {
        emit(s)
        streams[s.id] = nil
        closed[closedNext] = s.id
        closedNext = (closedNext + 1) % closed.count
        if pool.count < 16 { pool.append(s) }
    }

    func noteConnection(_ e: String) {
        host.violation(e)
        if connectionErrors.count < 16 { connectionErrors.append(e) }
    }

    // MARK: Gaps

    enum FrameSearch {
        case found(Int)
        /// Keep the bytes from the first index; the second is how many more would tell.
        case wait(Int, Int?)
    }

    /// The first offset from `start` where a plausible frame begins and is
    /// followed by another plausible frame (or ends the buffer).
    private func findFrame(_ b: UnsafeRawBufferPointer, from start: Int) -> FrameSearch {
        let n = b.count
        var j = start
        while n - j >= FrameHeader.size {
            let h = FrameHeader(b, at: j)
            if h.plausible(maxLength: 1 << 14) {
                let end = j + FrameHeader.size + h.length
                if end == n { return .found(j) }
                if end > n { return .wait(j, end - n) }
                if n - end < FrameHeader.size { return .wait(j, FrameHeader.size - (n - end)) }
                if FrameHeader(b, at: end).plausible(maxLength: 1 << 14) { return .found(j) }
            }
            j += 1
        }
        return .wait(j, nil)
    }

    /// Bytes were lost: inside a DATA payload they are counted and the stream
    /// marked; between frames the reader looks for the next frame, and the HPACK
    /// table of that direction is no longer trusted (a lost block may have
    /// changed it).
    /// Bytes were lost in one direction; always keeps the direction.
    public func gap(direction d: Direction, length: UInt64) -> Bool {
        d == .clientToServer ? gap(d, length, &client) : gap(d, length, &server)
    }

    private func gap(_ d: Direction, _ length: UInt64, _ st: inout DirectionState) -> Bool {
        var lost = Int(clamping: length)
        switch st.mode {
        case .frames: break
        default:
            st.mode = .passthrough
            return true
        }
        if st.inData {
            let inPayload = min(lost, st.dataRemaining)
            if let s = streams[st.dataStream] {
                let half = s.half(d)
                half.body.size &+= UInt64(inPayload)
                half.body.cut = true
                half.grpc.skip(inPayload)
                s.flags.insert(.afterGap)
                s.note("\(length) bytes lost in the capture")
            }
            st.dataRemaining -= inPayload
            lost -= inPayload
            let inPadding = min(lost, st.padRemaining)
            st.padRemaining -= inPadding
            lost -= inPadding
            if lost == 0 { return true }
            st.inData = false
            if st.dataEndStream { endStream(d, st.dataStream) }
        }
        if st.blockActive {
            st.blockActive = false
            if let s = streams[st.blockStream] {
                s.note("header block lost in a capture gap")
                s.flags.insert(.afterGap)
            }
        }
        if d == .clientToServer { clientHPACK.forgetTable() } else { serverHPACK.forgetTable() }
        st.resync = true
        return true
    }

    // MARK: End

    /// Streams idle (capture time) longer than the timeout are emitted, flagged `timedOut`.
    public func tick(nowNs: Int64) {
        guard nowNs - lastSweepNs >= 1_000_000_000 else { return }
        lastSweepNs = nowNs
        expired.removeAll(keepingCapacity: true)
        for s in streams.values {
            let last = max(s.request.lastTs, s.response.lastTs)
            if last != 0, nowNs - last > limits.streamTimeoutNs { expired.append(s) }
        }
        expired.sort { $0.id < $1.id }
        for s in expired {
            s.flags.insert(.timedOut)
            finish(s)
        }
        expired.removeAll(keepingCapacity: true)
    }

    /// The connection ends: every stream still open is emitted as it is.
    public func close(reason: CloseReason) {
        for id in streams.keys.sorted() {
            guard let s = streams[id] else { continue }
            finish(s)
        }
    }

    /// No more bytes in one direction: a frame cut there is noted on its stream.
    public func endOfStream(direction: Direction) {
        let st = direction == .clientToServer ? client : server
        if st.inData || st.blockActive {
            let id = st.inData ? st.dataStream : st.blockStream
            if let s = streams[id] {
                s.note("connection ended inside a \(st.inData ? "DATA frame" : "header block")")
                s.flags.insert(.truncated)
            }
        }
    }
}

/// Bytes of a static string.
@inline(__always)
func staticBytes(_ s: StaticString) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount)
}

/// Whether a block's content-type starts with application/grpc (compared without allocating).
func isGRPCContentType(_ l: HeaderList) -> Bool {
    guard let i = l.index(of: "content-type") else { return false }
    return l.withField(i) { _, v in
        let p = staticBytes("application/grpc")
        return v.count >= p.count && equalsLowercase(UnsafeRawBufferPointer(rebasing: v[0..<p.count]), p)
    }
}

/// The :status of a response block.
func statusCode(_ l: HeaderList) -> Int? {
    guard let i = l.index(of: ":status") else { return nil }
    return l.withField(i) { _, v in
        guard v.count == 3 else { return nil }
        var n = 0
        for c in v {
            guard c >= 0x30, c <= 0x39 else { return nil }
            n = n * 10 + Int(c - 0x30)
        }
        return n
    }
}

func frameName(_ t: UInt8) -> String {
    switch FrameType(rawValue: t) {
    case .data: return "DATA"
    case .headers: return "HEADERS"
    case .priority: return "PRIORITY"
    case .rstStream: return "RST_STREAM"
    case .settings: return "SETTINGS"
    case .pushPromise: return "PUSH_PROMISE"
    case .ping: return "PING"
    case .goaway: return "GOAWAY"
    case .windowUpdate: return "WINDOW_UPDATE"
    case .continuation: return "CONTINUATION"
    case nil: return "type-\(t)"
    }
}
