// The AMQP 0-9-1 stream state machine: frames per direction, methods matched
// to their -ok replies per channel, content (header + body frames) attached to
// basic.publish / deliver / get-ok / return. Heartbeats are counted, not listed.

import PluginKit

/// A decoded argument or property value.
enum ArgValue {
    case int(Int64)
    case uint(UInt64)
    case bool(Bool)
    case str([UInt8])
    case table([([UInt8], FieldValue)])
    case redacted
}

/// One method frame (and, for content methods, its content).
struct Message {
    var name: String
    var classId: UInt16
    var methodId: UInt16
    var channel: UInt16
    var fromClient: Bool
    var args: [(StaticString, ArgValue)] = []
    var problem: String?
    var ts: Int64
    var size: UInt64
    var expectsContent = false
    var headerSeen = false
    var properties: [(StaticString, ArgValue)] = []
    var bodySize: UInt64 = 0
    var received: UInt64 = 0
    var body: [UInt8] = []
    var truncated = false
    /// basic.get answered by this get-ok.
    var request: [Message] = []

    /// The argument named `name` (compared as bytes: no String is made per key).
    func arg(_ name: StaticString) -> ArgValue? {
        for (k, v) in args where k.withUTF8Buffer({ a in name.withUTF8Buffer { a.elementsEqual($0) } }) { return v }
        return nil
    }

    func text(_ name: StaticString) -> String? {
        if case .str(let s)? = arg(name) { return String(decoding: s, as: UTF8.self) }
        return nil
    }

    var noWait: Bool {
        if case .bool(true)? = arg("noWait") { return true }
        return false
    }
}

public struct AMQPLimits: Sendable {
    /// Largest method or content-header frame buffered whole.
    public var maxFrame = 128 << 10
    /// Body bytes kept per message for display.
    public var maxBodyKept = 16 << 10
    /// Most synchronous methods waiting for their reply per stream.
    public var maxPending = 256
    /// Most content messages being reassembled at once per stream (one per channel and direction).
    public var maxContents = 128
    public init() {}
}

struct DirectionState {
    var started = false
    var discard = false
    /// Payload bytes of the current body frame still to come.
    var bodyRemaining = 0
    var bodyChannel: UInt16 = 0
    var needFrameEnd = false
}

public final class AMQPDissector: Dissector {
    let host: StreamHost
    let limits = AMQPLimits()
    var dirs = [DirectionState(), DirectionState()]
    /// Synchronous methods waiting for a reply, oldest first.
    var pending: [Message] = []
    /// Content methods waiting for header/body, by (direction, channel).
    var contents: [UInt32: Message] = [:]
    var protocolHeader: String?
    var confirmed = false

    public init(flow: Flow, host: StreamHost) {
        self.host = host
    }

    @inline(__always) func contentKey(_ fromClient: Bool, _ channel: UInt16) -> UInt32 {
        (fromClient ? 0x1_0000 : 0) | UInt32(channel)
    }

    public func receive(_ chunk: Chunk) -> ParseResult {
        let d = chunk.direction == .clientToServer ? 0 : 1
        let fromClient = d == 0
        let b = chunk.bytes
        let ts = chunk.firstTimestampNs
        var pos = 0
        if dirs[d].discard { return .ok(consumed: b.count) }
        while true {
            let avail = b.count - pos
            if dirs[d].bodyRemaining > 0 {
                if avail == 0 { return .ok(consumed: pos) }
                let n = min(avail, dirs[d].bodyRemaining)
                appendBody(fromClient, dirs[d].bodyChannel, UnsafeRawBufferPointer(rebasing: b[pos..<(pos + n)]))
                pos += n
                dirs[d].bodyRemaining -= n
                if dirs[d].bodyRemaining > 0 { return .ok(consumed: pos) }
                dirs[d].needFrameEnd = true
                continue
            }
            if dirs[d].needFrameEnd {
                if avail == 0 { return .ok(consumed: pos) }
                guard b[pos] == 0xCE else {
                    fatal(d, "frame-end octet missing after a body frame", ts: ts)
                    return .ok(consumed: b.count)
                }
                pos += 1
                dirs[d].needFrameEnd = false
                finishBodyFrame(fromClient, dirs[d].bodyChannel)
                continue
            }
            if avail == 0 { return .ok(consumed: pos) }
            if !dirs[d].started && b[pos] == UInt8(ascii: "A") {
                if avail < 8 { return .needMore(consumed: pos, needed: 8 - avail) }
                guard b[pos + 1] == UInt8(ascii: "M"), b[pos + 2] == UInt8(ascii: "Q"), b[pos + 3] == UInt8(ascii: "P")
                else {
                    fatal(d, "neither a protocol header nor a frame", ts: ts)
                    return .ok(consumed: b.count)
                }
                onProtocolHeader(fromClient, b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7], ts: ts)
                dirs[d].started = true
                pos += 8
                continue
            }
            dirs[d].started = true
            if avail < 7 { return .needMore(consumed: pos, needed: 7 - avail) }
            let type = b[pos]
            let channel = UInt16(b[pos + 1]) << 8 | UInt16(b[pos + 2])
            var size32: UInt32 = 0
            for i in 3..<7 { size32 = size32 << 8 | UInt32(b[pos + i]) }
            let size = Int(size32)
            if type == 3 {
                pos += 7
                dirs[d].bodyChannel = channel
                dirs[d].bodyRemaining = size
                startBodyFrame(fromClient, channel, size: size, ts: ts)
                if size == 0 { dirs[d].needFrameEnd = true }
                continue
            }
            guard type == 1 || type == 2 || type == 8 else {
                fatal(d, "unknown frame type \(type)", ts: ts)
                return .ok(consumed: b.count)
            }
            guard size <= limits.maxFrame else {
                fatal(d, "frame of \(size) bytes exceeds the \(limits.maxFrame)-byte cap", ts: ts)
                return .ok(consumed: b.count)
            }
            let total = size + 8
            if avail < total { return .needMore(consumed: pos, needed: total - avail) }
            guard b[pos + 7 + size] == 0xCE else {
                fatal(d, "frame-end octet missing", ts: ts)
                return .ok(consumed: b.count)
            }
            let payload = UnsafeRawBufferPointer(rebasing: b[(pos + 7)..<(pos + 7 + size)])
            pos += total
            if !confirmed {
                confirmed = true
                host.confirm()
            }
            switch type {
            case 1: onMethod(fromClient, channel, payload, ts: ts, size: UInt64(total))
            case 2: onContentHeader(fromClient, channel, payload, size: UInt64(total))
            default: host.count("amqp.heartbeats")
            }
        }
    }

    public func close(reason: CloseReason) {
        for key in contents.keys.sorted() {
            if var m = contents.removeValue(forKey: key) {
                m.problem = m.problem ?? "content incomplete at end of stream"
                emitContent(m)
            }
        }
        let rest = pending
        pending.removeAll()
        for m in rest { emit(request: m, response: nil, flags: .requestOnly) }
    }

    // MARK: Frames

    func fatal(_ d: Int, _ reason: String, ts: Int64) {
        host.violation(reason)
        host.count("amqp.malformed")
        dirs[d].discard = true
        let fromClient = d == 0
        // Content cut short in this direction.
        for key in contents.keys.sorted() where (key & 0x1_0000 != 0) == fromClient {
            if var m = contents.removeValue(forKey: key) {
                m.problem = m.problem ?? reason
                emitContent(m)
            }
        }
        var m = Message(name: "frame-error", classId: 0, methodId: 0, channel: 0, fromClient: fromClient, ts: ts, size: 0)
        m.problem = reason
        emitLone(m)
    }

    func onProtocolHeader(_ fromClient: Bool, _ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, ts: Int64) {
        let version = a == 0 ? "\(b)-\(c)-\(d)" : "\(a)-\(b)-\(c)-\(d)"
        if fromClient {
            protocolHeader = "AMQP \(version)"
            if a != 0 || b != 0 || c != 9 || d != 1 { host.violation("client asks for AMQP \(version)") }
        } else {
            // A server answers the header with its own only to refuse the version.
            var m = Message(name: "protocol-header", classId: 0, methodId: 0, channel: 0, fromClient: false, ts: ts, size: 8)
            m.args = [("version", .str(Array(version.utf8)))]
            emitLone(m, statusText: "version refused")
        }
    }

    func onMethod(_ fromClient: Bool, _ channel: UInt16, _ p: UnsafeRawBufferPointer, ts: Int64, size: UInt64) {
        var c = Cursor(p)
        let classId = c.u16() ?? 0
        let methodId = c.u16() ?? 0
        let spec = specIndex[methodKey(classId, methodId)].map { methodSpecs[$0] }
        var m = Message(
            name: spec?.name ?? "\(classNames[classId] ?? String(classId)).\(methodId)",
            classId: classId, methodId: methodId, channel: channel, fromClient: fromClient, ts: ts, size: size)
        if p.count < 4 {
            m.problem = "method frame shorter than its class and method ids"
        } else if let spec {
            readArgs(spec.args, &c, into: &m.args, problem: &m.problem)
            if m.problem == nil && c.remaining > 0 { m.problem = "\(c.remaining) bytes after the arguments" }
        } else {
            m.problem = "unknown method \(classId).\(methodId)"
        }
        if m.problem != nil { host.count("amqp.malformed") }

        // A new method on a channel ends any content still arriving there.
        let key = contentKey(fromClient, channel)
        if var old = contents.removeValue(forKey: key) {
            old.problem = old.problem ?? "content cut short by the next method"
            emitContent(old)
        }
        guard let spec, m.problem == nil else {
            emitLone(m)
            return
        }
        if spec.content {
            m.expectsContent = true
            if replyKeys.contains(methodKey(classId, methodId)), let req = takePending(for: m) { m.request = [req] }
            if contents.count >= limits.maxContents, let oldest = contents.keys.min(),
                var old = contents.removeValue(forKey: oldest)
            {
                old.problem = old.problem ?? "too many messages reassembled at once"
                host.count("amqp.malformed")
                emitContent(old)
            }
            contents[key] = m
            return
        }
        if replyKeys.contains(methodKey(classId, methodId)) {
            if let req = takePending(for: m) {
                emit(request: req, response: m, flags: [])
            } else {
                emit(request: nil, response: m, flags: .responseOnly)
            }
            return
        }
        if (classId == 10 && methodId == 50) || (classId == 20 && methodId == 40) {
            // close: whatever the peer still waits for on this channel (or connection) is answered by it.
            let all = classId == 10
            var keep: [Message] = []
            var flushed: [Message] = []
            for q in pending {
                if q.fromClient != fromClient && (all || q.channel == channel) { flushed.append(q) } else { keep.append(q) }
            }
            pending = keep
            for q in flushed { emit(request: q, response: nil, flags: .requestOnly) }
        }
        if !spec.replies.isEmpty && !m.noWait {
            if pending.count >= limits.maxPending {
                let oldest = pending.removeFirst()
                emit(request: oldest, response: nil, flags: .requestOnly)
            }
            pending.append(m)
            return
        }
        emitLone(m)
    }

    /// The oldest method from the other peer on the same channel that `reply` answers.
    func takePending(for reply: Message) -> Message? {
        for (i, q) in pending.enumerated()
        where q.fromClient != reply.fromClient && q.channel == reply.channel && q.classId == reply.classId {
            guard let s = specIndex[methodKey(q.classId, q.methodId)] else { continue }
            if methodSpecs[s].replies.contains(reply.methodId) { return pending.remove(at: i) }
        }
        return nil
    }

    func readArgs(
        _ specs: [(StaticString, ArgType)], _ c: inout Cursor, into out: inout [(StaticString, ArgValue)],
        problem: inout String?
    ) {
        var bits: UInt8 = 0
        var bitIndex = 8
        for (name, type) in specs {
            var v: ArgValue?
            if case .bit = type {
                if bitIndex == 8 {
                    guard let o = c.u8() else {
                        problem = "arguments end before \(name)"
                        return
                    }
                    bits = o
                    bitIndex = 0
                }
                v = .bool(bits & (1 << bitIndex) != 0)
                bitIndex += 1
            } else {
                bitIndex = 8
                v = readValue(type, &c)
            }
            guard let v else {
                problem = "arguments end before \(name) or it is malformed"
                return
            }
            if name.description.hasPrefix("reserved") { continue }
            out.append((name, v))
        }
    }

    func readValue(_ type: ArgType, _ c: inout Cursor) -> ArgValue? {
        switch type {
        case .octet: return c.u8().map { .uint(UInt64($0)) }
        case .short: return c.u16().map { .uint(UInt64($0)) }
        case .long: return c.u32().map { .uint(UInt64($0)) }
        case .longlong, .timestamp: return c.u64().map { .uint($0) }
        case .shortstr: return c.shortstr().map { .str($0) }
        case .longstr: return c.longstr().map { .str($0) }
        case .secret: return c.longstr().map { _ in .redacted }
        case .table: return readTable(&c).map { .table($0) }
        case .bit: return nil
        }
    }

    func onContentHeader(_ fromClient: Bool, _ channel: UInt16, _ p: UnsafeRawBufferPointer, size: UInt64) {
        let key = contentKey(fromClient, channel)
        guard var m = contents[key], !m.headerSeen else {
            host.violation("content header without a content method on channel \(channel)")
            host.count("amqp.malformed")
            return
        }
        m.headerSeen = true
        m.size += size
        var c = Cursor(p)
        guard let classId = c.u16(), c.u16() != nil, let bodySize = c.u64() else {
            m.problem = "content header too short"
            contents[key] = nil
            emitContent(m)
            return
        }
        m.bodySize = bodySize
        if classId != m.classId { m.problem = "content header of class \(classId) after a class \(m.classId) method" }
        // Property flags: 15 bits each, bit 0 set when another flag word follows.
        var flags: [UInt16] = []
        while let f = c.u16() {
            flags.append(f)
            if f & 1 == 0 || flags.count > 8 { break }
        }
        if flags.isEmpty || flags.last! & 1 != 0 {
            m.problem = m.problem ?? "content header property flags are cut short"
        } else if classId == 60 {
            var props: [(StaticString, ArgValue)] = []
            for (i, (name, type)) in basicProperties.enumerated() where flags[0] & (1 << (15 - i)) != 0 {
                guard let v = readValue(type, &c) else {
                    m.problem = m.problem ?? "property \(name) is cut short or malformed"
                    break
                }
                props.append((name, v))
            }
            m.properties = props
        }
        if m.problem != nil { host.count("amqp.malformed") }
        if bodySize == 0 {
            contents[key] = nil
            emitContent(m)
        } else {
            contents[key] = m
        }
    }

    func startBodyFrame(_ fromClient: Bool, _ channel: UInt16, size: Int, ts: Int64) {
        let key = contentKey(fromClient, channel)
        guard var m = contents[key], m.headerSeen else {
            host.violation("body frame without a content header on channel \(channel)")
            host.count("amqp.malformed")
            return
        }
        m.size += UInt64(size) + 8
        contents[key] = m
    }

    func appendBody(_ fromClient: Bool, _ channel: UInt16, _ bytes: UnsafeRawBufferPointer) {
        let key = contentKey(fromClient, channel)
        guard contents[key]?.headerSeen == true else { return }
        contents[key]!.received += UInt64(bytes.count)
        let room = limits.maxBodyKept - contents[key]!.body.count
        if room > 0 {
            contents[key]!.body.append(contentsOf: bytes.prefix(room))
        }
        if bytes.count > room { contents[key]!.truncated = true }
    }

    func finishBodyFrame(_ fromClient: Bool, _ channel: UInt16) {
        let key = contentKey(fromClient, channel)
        guard let m = contents[key], m.headerSeen, m.received >= m.bodySize else { return }
        contents[key] = nil
        var done = m
        if m.received > m.bodySize { done.problem = done.problem ?? "body frames exceed the declared body size" }
        emitContent(done)
    }

    // MARK: Entries

    func emitContent(_ m: Message) {
        if let req = m.request.first {
            emit(request: req, response: m, flags: [])
        } else {
            emitLone(m)
        }
    }

    /// Asynchronous methods: in `request` when the client sent them, in `response` when the server did.
    func emitLone(_ m: Message, statusText: String? = nil) {
        if m.fromClient {
            emit(request: m, response: nil, flags: [], statusText: statusText)
        } else {
            emit(request: nil, response: m, flags: [], statusText: statusText)
        }
    }

    func emit(request: Message?, response: Message?, flags: EntryFlags, statusText: String? = nil) {
        guard let main = request ?? response else { return }
        var flags = flags
        var status: Int32 = 0
        var statusText = statusText
        // (Not a loop over [request, response]: that array would copy both messages.)
        func note(_ m: Message) {
            if m.problem != nil { flags.insert(.malformed) }
            if m.truncated { flags.insert(.truncated) }
            if case .uint(let code)? = m.arg("replyCode") {
                status = Int32(clamping: code)
                statusText = m.text("replyText")
            }
        }
        if let request { note(request) }
        if let response { note(response) }
        if response?.name == "basic.get-empty" { statusText = "empty" }
        let summary = EntrySummary(
            flags: flags, status: status,
            requestTimestampNs: request?.ts ?? 0, responseTimestampNs: response?.ts ?? 0,
            requestSize: request?.size ?? 0, responseSize: response?.size ?? 0,
            method: main.name, summary: summaryText(request, response), statusText: statusText)
        host.emit(summary) { b in
            if let request { self.write(request, key: "request", &b) }
            if let response { self.write(response, key: "response", &b) }
        }
    }

    func summaryText(_ request: Message?, _ response: Message?) -> String? {
        if let request, let s = summaryText(request) { return s }
        if let response { return summaryText(response) }
        return nil
    }

    /// The queue, exchange/routing key, binding, virtual host or consumer tag of one method.
    private func summaryText(_ m: Message) -> String? {
        if let q = m.text("queue"), !q.isEmpty { return q }
        if let ex = m.text("exchange") {
            let rk = m.text("routingKey") ?? ""
            if !ex.isEmpty || !rk.isEmpty { return rk.isEmpty ? ex : ex.isEmpty ? rk : "\(ex)/\(rk)" }
        }
        if let s = m.text("source"), let dst = m.text("destination") { return "\(s) → \(dst)" }
        if let v = m.text("virtualHost") { return v }
        if let t = m.text("consumerTag") { return t }
        return m.problem
    }

    func write(_ m: Message, key: StaticString, _ b: inout EntryBuilder) {
        b.object(key) { b in
            b.string("method", m.name)
            b.uint("channel", UInt64(m.channel))
            b.uint("classId", UInt64(m.classId))
            b.uint("methodId", UInt64(m.methodId))
            if m.name == "connection.start", let h = self.protocolHeader { b.string("protocolHeader", h) }
            if !m.args.isEmpty {
                b.object("arguments") { b in self.writeArgs(m.args, &b) }
            }
            if m.expectsContent {
                if m.headerSeen {
                    b.object("properties") { b in self.writeArgs(m.properties, &b) }
                    b.uint("bodySize", m.bodySize)
                    m.body.withUnsafeBytes { raw in
                        if String(validating: m.body, as: UTF8.self) != nil {
                            b.string("body", bytes: raw)
                        } else {
                            b.bytes("body", raw)
                            b.string("bodyEncoding", "base64")
                        }
                    }
                    if m.truncated { b.bool("bodyTruncated", true) }
                }
            }
            if let p = m.problem { b.string("error", p) }
        }
    }

    func writeArgs(_ args: [(StaticString, ArgValue)], _ b: inout EntryBuilder) {
        for (name, v) in args {
            switch v {
            case .int(let i): b.int(name, i)
            case .uint(let u): b.uint(name, u)
            case .bool(let x): b.bool(name, x)
            case .redacted: b.string(name, "[redacted]")
            case .str(let s): s.withUnsafeBytes { b.string(name, bytes: $0) }
            case .table(let t):
                b.object(name) { b in writeTable(t, &b) }
            }
        }
    }
}
