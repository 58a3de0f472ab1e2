// The Redis stream state machine: commands from the client queue in order;
// each reply from the server answers the oldest (pipelining). Pub/sub
// messages are entries of their own. Passwords never reach an entry.

import PluginKit

/// One command waiting for its reply.
struct Command {
    var args: [String]
    var name: String
    var keyword: String?
    var key: String?
    var value: String?
    var inline: Bool
    var size: UInt64
    var ts: Int64
    var flags: EntryFlags
    var problem: String?
    /// Subscribe-family commands get one confirmation per channel.
    var confirmationsLeft = 0
    var confirmations: [RESPValue] = []
    var confirmationsSize: UInt64 = 0
    var confirmationsTs: Int64 = 0
    /// Approximate bytes kept for this command while it waits.
    var weight = 0
}

/// Commands whose first argument is a subcommand (the entry's `keyword`).
let containerCommands: Set<String> = [
    "ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DEBUG", "FUNCTION", "LATENCY", "MEMORY", "MODULE", "OBJECT",
    "PUBSUB", "SCRIPT", "SLOWLOG", "XGROUP", "XINFO",
]

/// Commands without a key.
let keylessCommands: Set<String> = [
    "AUTH", "HELLO", "PING", "ECHO", "INFO", "SELECT", "DBSIZE", "FLUSHDB", "FLUSHALL", "QUIT", "TIME", "MULTI", "EXEC",
    "DISCARD", "SAVE", "BGSAVE", "BGREWRITEAOF", "LASTSAVE", "RESET", "WAIT", "WAITAOF", "MONITOR", "SHUTDOWN",
    "SWAPDB", "ROLE", "READONLY", "READWRITE", "RANDOMKEY", "UNWATCH", "SYNC", "PSYNC", "REPLCONF", "REPLICAOF",
    "SLAVEOF", "FAILOVER", "LOLWUT", "ASKING", "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO", "SCAN",
    "KEYS", "PUNSUBSCRIBE", "UNSUBSCRIBE", "SUNSUBSCRIBE",
]

let subscribeKinds: Set<String> = ["subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe"]
let messageKinds: Set<String> = ["message", "pmessage", "smessage"]

let redacted = "[redacted]"

/// Replaces passwords in a command's arguments.
func redact(_ args: [String]) -> [String] {
    guard let first = args.first else { return args }
    var a = args
    switch first.uppercased() {
    case "AUTH":
        // AUTH password | AUTH username password
        if a.count >= 2 { a[a.count - 1] = redacted }
        if a.count > 3 { for i in 1..<a.count { a[i] = redacted } }
    case "HELLO":
        // HELLO [protover [AUTH username password] [SETNAME clientname]]
        var i = 1
        while i < a.count {
            if a[i].uppercased() == "AUTH" {
                if i + 2 < a.count { a[i + 2] = redacted } else if i + 1 < a.count { a[i + 1] = redacted }
                i += 3
            } else {
                i += 1
            }
        }
    case "MIGRATE":
        var i = 1
        while i < a.count {
            let w = a[i].uppercased()
            if w == "AUTH", i + 1 < a.count {
                a[i + 1] = redacted
                i += 2
            } else if w == "AUTH2", i + 2 < a.count {
                a[i + 2] = redacted
                i += 3
            } else {
                i += 1
            }
        }
    case "CONFIG":
        if a.count >= 4, a[1].uppercased() == "SET" {
            var i = 2
            while i + 1 < a.count {
                let p = a[i].lowercased()
                if p == "requirepass" || p == "masterauth" || p == "masteruser" { a[i + 1] = redacted }
                i += 2
            }
        }
    case "ACL":
        if a.count >= 3, a[1].uppercased() == "SETUSER" {
            for i in 3..<max(3, a.count) where a[i].hasPrefix(">") || a[i].hasPrefix("#") || a[i].hasPrefix("<") {
                a[i] = redacted
            }
        }
    default:
        break
    }
    return a
}

public final class RedisDissector: Dissector {
    let host: StreamHost
    let limits: RedisLimits
    var client: RESPReader
    var server: RESPReader
    var pending: [Command] = []
    var pendingHead = 0
    var pendingBytes = 0
    /// RESP2 subscribed mode: arrays from the server may be pub/sub messages.
    var subscribed = false
    var confirmed = false

    public init(flow: Flow, host: StreamHost) {
        self.host = host
        limits = .standard
        client = RESPReader(limits: limits.resp, isClient: true)
        server = RESPReader(limits: limits.resp, isClient: false)
    }

    var pendingCount: Int { pending.count - pendingHead }

    /// Directions desynchronised by a fatal error: their bytes are consumed unseen.
    /// (Consuming rather than answering KS_PARSE_ERROR keeps the other direction
    /// and the pending commands alive, and no bytes are buffered.)
    var discardClient = false
    var discardServer = false

    public func receive(_ chunk: Chunk) -> ParseResult {
        let b = chunk.bytes
        var pos = 0
        let isClient = chunk.direction == .clientToServer
        if isClient ? discardClient : discardServer { return .ok(consumed: b.count) }
        while true {
            let step = isClient
                ? client.step(b, &pos, ts: chunk.firstTimestampNs) : server.step(b, &pos, ts: chunk.firstTimestampNs)
            switch step {
            case .message(let m):
                if isClient { onCommand(m) } else { onReply(m) }
                let skip = isClient ? client.pendingSkip : server.pendingSkip
                if skip > 0 {
                    if isClient { client.pendingSkip = 0 } else { server.pendingSkip = 0 }
                    return .skip(consumed: pos, count: skip)
                }
            case .needMore(let n):
                if pos == b.count { return .ok(consumed: pos) }
                return .needMore(consumed: pos, needed: n)
            case .skip(let n):
                return .skip(consumed: pos, count: n)
            case .fatal(let reason):
                host.violation(reason)
                host.count("redis.malformed")
                let partial = isClient ? client.partial() : server.partial()
                if let partial {
                    if isClient { onCommand(partial) } else { onReply(partial) }
                }
                if isClient { discardClient = true } else { discardServer = true }
                return .ok(consumed: b.count)
            }
        }
    }

    public func endOfStream(direction: Direction) {
        if direction == .clientToServer {
            if let p = client.partial() { onCommand(p) }
        } else {
            if let p = server.partial() { onReply(p) }
        }
    }

    public func close(reason: CloseReason) {
        if let p = client.partial() { onCommand(p) }
        if let p = server.partial() { onReply(p) }
        while pendingHead < pending.count {
            let c = popPending()
            if !c.confirmations.isEmpty {
                emitConfirmed(c)
            } else {
                emit(command: c, reply: nil)
            }
        }
        pending.removeAll()
        pendingHead = 0
        pendingBytes = 0
    }

    // MARK: Commands

    func onCommand(_ m: RESPMessage) {
        var args: [String] = []
        var flags: EntryFlags = []
        if m.truncated { flags.insert(.truncated) }
        if m.malformed { flags.insert(.malformed) }
        var problem = m.problem
        if let elements = m.value.elements {
            for e in elements.prefix(limits.maxArgs) {
                if let t = e.text {
                    args.append(t)
                } else {
                    args.append("")
                    flags.insert(.malformed)
                    if problem == nil { problem = "command argument of type \(e.typeName)" }
                }
            }
        } else if case .null = m.value.bare {
            // A null array from the client (partial or hostile).
        } else {
            flags.insert(.malformed)
            if problem == nil { problem = "command is not an array" }
        }
        // An empty inline line, `*0` or `*-1`: Redis reads them and sends no reply.
        if args.isEmpty && !flags.contains(.malformed) { return }
        args = redact(args)
        let name = args.first?.uppercased() ?? ""
        var rest = ArraySlice(args.dropFirst())
        var keyword: String?
        if containerCommands.contains(name), let k = rest.first {
            keyword = k.uppercased()
            rest = rest.dropFirst()
        }
        var key: String?
        if !keylessCommands.contains(name) || subscribeKinds.contains(name.lowercased()), let k = rest.first {
            key = k
            rest = rest.dropFirst()
        }
        let value = rest.isEmpty ? nil : rest.joined(separator: " ")
        var c = Command(
            args: args, name: name, keyword: keyword, key: key, value: value, inline: m.inline, size: m.size,
            ts: m.timestampNs, flags: flags, problem: problem)
        let lower = name.lowercased()
        if subscribeKinds.contains(lower) {
            c.confirmationsLeft = max(1, args.count - 1)
            if lower.hasSuffix("subscribe") && !lower.hasSuffix("unsubscribe") { subscribed = true }
        }
        if !confirmed && !flags.contains(.malformed) && knownCommands.contains(name) {
            confirmed = true
            host.confirm()
        }
        c.weight = args.reduce(16) { $0 + $1.utf8.count + 16 }
        while pendingCount > 0 && (pendingCount >= limits.maxPending || pendingBytes + c.weight > limits.maxPendingBytes) {
            let old = popPending()
            host.count("redis.pending_overflow")
            emit(command: old, reply: nil)
        }
        if pendingHead > 64 && pendingHead * 2 > pending.count {
            pending.removeFirst(pendingHead)
            pendingHead = 0
        }
        pending.append(c)
        pendingBytes += c.weight
    }

    /// Takes the oldest waiting command.
    private func popPending() -> Command {
        let c = pending[pendingHead]
        pendingHead += 1
        pendingBytes -= c.weight
        return c
    }

    // MARK: Replies

    func onReply(_ m: RESPMessage) {
        let bare = m.value.bare
        var pushKind: String?
        var isPush = false
        if case .push(let e) = bare {
            isPush = true
            pushKind = e.first?.text?.lowercased()
        } else if subscribed, case .array(let e) = bare, e.count >= 3, let k = e.first?.text?.lowercased(),
            messageKinds.contains(k) || subscribeKinds.contains(k)
        {
            pushKind = k
        }
        if let kind = pushKind, subscribeKinds.contains(kind) {
            if pendingHead < pending.count, pending[pendingHead].name.lowercased() == kind,
                pending[pendingHead].confirmationsLeft > 0
            {
                if pending[pendingHead].confirmations.isEmpty { pending[pendingHead].confirmationsTs = m.timestampNs }
                pending[pendingHead].confirmations.append(m.value)
                pending[pendingHead].confirmationsSize += m.size
                pending[pendingHead].confirmationsLeft -= 1
                if m.malformed { pending[pendingHead].flags.insert(.malformed) }
                if m.truncated { pending[pendingHead].flags.insert(.truncated) }
                trackSubscriptions(kind, bare)
                if pending[pendingHead].confirmationsLeft == 0 {
                    emitConfirmed(popPending())
                }
                return
            }
            trackSubscriptions(kind, bare)
            emitPush(m, kind: kind)
            return
        }
        if let kind = pushKind, messageKinds.contains(kind) || isPush {
            emitPush(m, kind: kind)
            return
        }
        // A regular reply answers the oldest command.
        if pendingHead < pending.count, !pending[pendingHead].confirmations.isEmpty {
            emitConfirmed(popPending())
        }
        if pendingHead < pending.count {
            let c = popPending()
            if c.name == "HELLO" || c.name == "RESET" { subscribed = false }
            emit(command: c, reply: m)
        } else {
            emit(command: nil, reply: m)
        }
    }

    /// An unsubscribe confirmation with a count of 0 leaves subscribed mode.
    private func trackSubscriptions(_ kind: String, _ v: RESPValue) {
        guard kind.hasSuffix("unsubscribe"), let e = v.elements, e.count >= 3 else { return }
        if case .integer(0) = e[2].bare { subscribed = false }
    }

    private func emitConfirmed(_ c: Command) {
        let value: RESPValue = c.confirmations.count == 1 ? c.confirmations[0] : .array(c.confirmations)
        let m = RESPMessage(
            value: value, size: c.confirmationsSize, timestampNs: c.confirmationsTs, truncated: false,
            malformed: false, problem: nil, inline: false)
        emit(command: c, reply: m)
    }

    // MARK: Entries

    private func statusText(_ v: RESPValue) -> String {
        switch v.bare {
        case .simpleString(let s): return String(s.prefix(64))
        case .simpleError(let s), .bulkError(let s): return String(s.prefix(128))
        default: return v.typeName
        }
    }

    private func emit(command c: Command?, reply m: RESPMessage?) {
        var flags: EntryFlags = c?.flags ?? []
        if c == nil { flags.insert(.responseOnly) }
        if m == nil { flags.insert(.requestOnly) }
        if let m {
            if m.truncated { flags.insert(.truncated) }
            if m.malformed { flags.insert(.malformed) }
        }
        let summary = EntrySummary(
            flags: flags, status: 0, requestTimestampNs: c?.ts ?? 0, responseTimestampNs: m?.timestampNs ?? 0,
            requestSize: c?.size ?? 0, responseSize: m?.size ?? 0,
            method: c.map { $0.name.isEmpty ? "?" : $0.name }, summary: c?.key,
            statusText: m.map { statusText($0.value) })
        let problems = [c?.problem, m?.problem].compactMap { $0 }
        host.emit(summary) { e in
            if let c { writeRequest(&e, c) }
            if let m { writeResponse(&e, m.value) }
            if !problems.isEmpty {
                e.array("problems") { a in for p in problems { a.string(nil, p) } }
            }
        }
    }

    private func emitPush(_ m: RESPMessage, kind: String) {
        var flags: EntryFlags = []
        if m.truncated { flags.insert(.truncated) }
        if m.malformed { flags.insert(.malformed) }
        let e = m.value.elements ?? []
        // message channel payload | pmessage pattern channel payload
        let channelIndex = kind == "pmessage" ? 2 : 1
        let channel = channelIndex < e.count ? e[channelIndex].text : nil
        let summary = EntrySummary(
            flags: flags, status: 0, requestTimestampNs: 0, responseTimestampNs: m.timestampNs, requestSize: 0,
            responseSize: m.size, method: kind.uppercased(), summary: channel, statusText: "push")
        let problem = m.problem
        host.emit(summary) { b in
            writeResponse(&b, m.value, push: (kind, channel, kind == "pmessage" && e.count > 1 ? e[1].text : nil))
            if let problem { b.array("problems") { a in a.string(nil, problem) } }
        }
    }
}

// MARK: Writing values

private func writeRequest(_ e: inout EntryBuilder, _ c: Command) {
    e.object("request") { r in
        r.string("type", c.inline ? "inline" : "array")
        r.string("command", c.name)
        if let k = c.key { r.string("key", k) }
        if let v = c.value { r.string("value", v) }
        if let k = c.keyword { r.string("keyword", k) }
        r.array("args") { a in for s in c.args { a.string(nil, s) } }
    }
}

private func writeResponse(
    _ e: inout EntryBuilder, _ v: RESPValue, push: (kind: String, channel: String?, pattern: String?)? = nil
) {
    e.object("response") { r in
        r.string("type", v.typeName)
        if case .attributed(let attrs, _) = v {
            writePairs(&r, "attributes", attrs)
        }
        if let push {
            r.string("kind", push.kind)
            if let c = push.channel { r.string("channel", c) }
            if let p = push.pattern { r.string("pattern", p) }
        }
        writeValue(&r, "value", v.bare, depth: 0)
    }
}

/// Keys can only be static for nested containers in the SDK, so a map becomes a
/// JSON object when every key and value is a string, and an array of
/// {"key", "value"} pairs otherwise.
private func writePairs(
    _ e: inout EntryBuilder, _ key: StaticString?, _ pairs: [(RESPValue, RESPValue)], depth: Int = 0
) {
    var flat = true
    for (k, v) in pairs {
        guard k.text != nil, v.text != nil, !isNumberLike(v), k.text?.isEmpty == false,
            (k.text?.utf8.count ?? 0) <= 1024
        else {
            flat = false
            break
        }
    }
    if flat {
        e.object(key) { o in
            for (k, v) in pairs {
                var s = v.text ?? ""
                s.withUTF8 { u in o.string(dynamicKey: k.text ?? "", bytes: UnsafeRawBufferPointer(u)) }
            }
        }
    } else {
        e.array(key) { a in
            for (k, v) in pairs {
                a.object(nil) { o in
                    writeValue(&o, "key", k, depth: depth + 2)
                    writeValue(&o, "value", v, depth: depth + 2)
                }
            }
        }
    }
}

private func isNumberLike(_ v: RESPValue) -> Bool {
    switch v.bare {
    case .integer, .boolean, .double: return true
    default: return false
    }
}

private func writeValue(_ e: inout EntryBuilder, _ key: StaticString?, _ v: RESPValue, depth: Int) {
    // The host nests at most 64 levels; the entry and response objects take 2.
    guard depth < 56 else {
        e.string(key, "[nested too deep]")
        return
    }
    switch v {
    case .simpleString(let s), .simpleError(let s), .bulkString(let s), .bigNumber(let s), .bulkError(let s):
        e.string(key, s)
    case .integer(let i): e.int(key, i)
    case .null: e.null(key)
    case .boolean(let b): e.bool(key, b)
    case .double(let s):
        if let d = Double(s), d.isFinite { e.double(key, d) } else { e.string(key, s) }
    case .verbatim(let format, let text):
        e.object(key) { o in
            o.string("format", format)
            o.string("text", text)
        }
    case .array(let items), .set(let items), .push(let items):
        e.array(key) { a in for i in items { writeValue(&a, nil, i, depth: depth + 1) } }
    case .map(let pairs):
        writePairs(&e, key, pairs, depth: depth + 1)
    case .attributed(let attrs, let inner):
        e.object(key) { o in
            writePairs(&o, "attributes", attrs, depth: depth + 1)
            writeValue(&o, "value", inner, depth: depth + 1)
        }
    }
}
