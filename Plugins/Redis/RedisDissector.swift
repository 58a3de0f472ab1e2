// The Redis stream state machine: commands from the client queue in order;
// each reply from the server answers the oldest (pipelining). Pub/sub
// messages are entries of their own. Passwords never reach an entry. Commands
// unanswered for `RedisLimits.commandTimeoutNs` become timed-out entries.
//
// Replies are written into entries straight from the reader's flat values and
// commands wait in an arena (Commands.swift): the steady state allocates nothing.

import PluginKit

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
let subscribeCommands: Set<String> = ["SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"]
let messageKinds: Set<String> = ["message", "pmessage", "smessage"]

public final class RedisDissector: Dissector {
    let host: StreamHost
    let limits: RedisLimits
    var client: RESPReader
    var server: RESPReader
    var pending = PendingCommands()
    /// RESP2 subscribed mode: arrays from the server may be pub/sub messages.
    var subscribed = false
    var confirmed = false
    /// Reused to join a command's value arguments.
    var scratch: [UInt8] = []

    public init(flow: Flow, host: StreamHost) {
        self.host = host
        limits = .standard
        client = RESPReader(limits: limits.resp, isClient: true)
        server = RESPReader(limits: limits.resp, isClient: false)
    }

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
                if isClient {
                    if let partial = client.partial() { onCommand(partial) }
                    discardClient = true
                } else {
                    if let partial = server.partial() { onReply(partial) }
                    discardServer = true
                }
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

    /// Emits the commands waiting longer than the time-out, flagged timedOut. They
    /// stay queued (marked) so that a late reply still lines up with its command.
    public func tick(nowNs: Int64) {
        var i = max(pending.checked, pending.head)
        while i < pending.queue.count, nowNs - pending.queue[i].ts >= limits.commandTimeoutNs {
            if !pending.queue[i].timedOut {
                pending.queue[i].timedOut = true
                host.count("redis.timed_out")
                emit(command: pending.queue[i], reply: nil, values: nil, extra: .timedOut)
            }
            i += 1
        }
        pending.checked = i
    }

    public func close(reason: CloseReason) {
        if let p = client.partial() { onCommand(p) }
        if let p = server.partial() { onReply(p) }
        while !pending.isEmpty {
            let c = pending.pop()
            if c.timedOut { continue }
            if !c.confirmations.isEmpty {
                emitConfirmed(c)
            } else {
                emit(command: c, reply: nil, values: nil)
            }
        }
    }

    // MARK: Commands

    /// Queues the command just read (in `client.values`).
    func onCommand(_ m: RESPMessage) {
        let v = client.values
        var flags: EntryFlags = []
        if m.truncated { flags.insert(.truncated) }
        if m.malformed { flags.insert(.malformed) }
        var problem = m.problem
        let root = v.bare(0)
        // The arguments: every element's text (a non-text element is malformed, kept empty).
        var elements = v.children(root)
        var argCount = 0
        var weight = 16
        switch v.nodes[root].type {
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
            for c in v.children(root) {
                guard argCount < limits.maxArgs else { break }
                let e = v.nodes[v.bare(c)]
                if !e.hasText {
                    flags.insert(.malformed)
                    if problem == nil { problem = "command argument of type \(e.typeName)" }
                }
                weight += Int(e.hasText ? e.length : 0) + 16
                argCount += 1
            }
        case UInt8(ascii: "_"):
            elements.left = 0  // A null array from the client (partial or hostile).
        default:
            elements.left = 0
            flags.insert(.malformed)
            if problem == nil { problem = "command is not an array" }
        }
        // An empty inline line, `*0` or `*-1`: Redis reads them and sends no reply.
        if argCount == 0 && !flags.contains(.malformed) { return }
        // Room first (evicting may reset the arena), then the arguments go in.
        while !pending.isEmpty && (pending.count >= limits.maxPending || pending.weight + weight > limits.maxPendingBytes) {
            let old = pending.pop()
            host.count("redis.pending_overflow")
            if !old.timedOut { emit(command: old, reply: nil, values: nil) }
        }
        let (firstArg, firstByte) = pending.begin()
        for _ in 0..<argCount {
            guard let c = elements.next() else { break }
            v.withDisplayText(v.bare(c)) { pending.addArg($0 ?? UnsafeRawBufferPointer(start: nil, count: 0)) }
        }
        var c = Command(
            firstArg: firstArg, argCount: argCount, firstByte: firstByte, name: "", keyword: nil, keyArg: nil,
            valueArg: argCount, inline: m.inline, size: m.size, ts: m.timestampNs, flags: flags, problem: problem,
            weight: weight)
        if argCount > 0 { c.name = pending.withArg(c, 0) { uppercased($0) } }
        if commandsWithSecrets.contains(c.name) {
            let strings = (0..<argCount).map { pending.argString(c, $0) }
            for i in secretArguments(strings) { pending.redactArg(firstArg: firstArg, i) }
        }
        var next = 1
        if containerCommands.contains(c.name), next < argCount {
            c.keyword = pending.withArg(c, next) { uppercased($0) }
            next += 1
        }
        let isSubscribe = subscribeCommands.contains(c.name)
        if !keylessCommands.contains(c.name) || isSubscribe, next < argCount {
            c.keyArg = next
            next += 1
        }
        c.valueArg = min(next, argCount)
        if isSubscribe {
            c.confirmationsLeft = max(1, argCount - 1)
            if !c.name.hasSuffix("UNSUBSCRIBE") { subscribed = true }
        }
        if !confirmed && !flags.contains(.malformed) && knownCommands.contains(c.name) {
            confirmed = true
            host.confirm()
        }
        pending.push(c)
    }

    // MARK: Replies

    /// Handles the reply just read (in `server.values`).
    func onReply(_ m: RESPMessage) {
        let v = server.values
        let root = v.bare(0)
        let type = v.nodes[root].type
        var pushKind: String?
        let isPush = type == UInt8(ascii: ">")
        if isPush || (subscribed && type == UInt8(ascii: "*") && v.nodes[root].count >= 3) {
            var firstChild = v.children(root)
            let first = firstChild.next().map { v.bare($0) }
            if let first, v.nodes[first].hasText {
                let k = v.string(first).lowercased()
                if isPush || messageKinds.contains(k) || subscribeKinds.contains(k) { pushKind = k }
            }
        }
        if let kind = pushKind, subscribeKinds.contains(kind) {
            let h = pending.head
            if !pending.isEmpty, pending.queue[h].name.lowercased() == kind, pending.queue[h].confirmationsLeft > 0 {
                if pending.queue[h].confirmations.isEmpty { pending.queue[h].confirmationsTs = m.timestampNs }
                pending.queue[h].confirmations.append(v)
                pending.queue[h].confirmationsSize += m.size
                pending.queue[h].confirmationsLeft -= 1
                if m.malformed { pending.queue[h].flags.insert(.malformed) }
                if m.truncated { pending.queue[h].flags.insert(.truncated) }
                trackSubscriptions(kind, v)
                if pending.queue[h].confirmationsLeft == 0 {
                    emitConfirmed(pending.pop())
                }
                return
            }
            trackSubscriptions(kind, v)
            emitPush(m, kind: kind)
            return
        }
        if let kind = pushKind, messageKinds.contains(kind) || isPush {
            emitPush(m, kind: kind)
            return
        }
        // A regular reply answers the oldest command.
        if let f = pending.first, !f.confirmations.isEmpty {
            emitConfirmed(pending.pop())
        }
        if !pending.isEmpty {
            let c = pending.pop()
            if c.name == "HELLO" || c.name == "RESET" { subscribed = false }
            emit(command: c, reply: m, values: v)
        } else {
            emit(command: nil, reply: m, values: v)
        }
    }

    /// An unsubscribe confirmation with a count of 0 leaves subscribed mode.
    private func trackSubscriptions(_ kind: String, _ v: RESPValues) {
        guard kind.hasSuffix("unsubscribe") else { return }
        let root = v.bare(0)
        let items = Array(v.children(root).prefix(3))
        guard items.count == 3 else { return }
        let n = v.nodes[v.bare(items[2])]
        if n.type == UInt8(ascii: ":") && n.integer == 0 { subscribed = false }
    }

    private func emitConfirmed(_ c: Command) {
        var values: RESPValues
        if c.confirmations.count == 1 {
            values = c.confirmations[0]
        } else {
            values = RESPValues()
            values.nodes.append(RESPNode(type: UInt8(ascii: "*"), count: Int32(c.confirmations.count)))
            for v in c.confirmations { values.append(v) }
        }
        let m = RESPMessage(
            size: c.confirmationsSize, timestampNs: c.confirmationsTs, truncated: false, malformed: false,
            problem: nil, inline: false)
        emit(command: c, reply: m, values: values)
    }

    // MARK: Entries

    /// Calls `body` with the list row's status text of a reply: a simple string
    /// (64 bytes at most), an error (128), or the type name.
    private func withStatusText<R>(_ v: RESPValues, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let i = v.bare(0)
        let n = v.nodes[i]
        switch n.type {
        case UInt8(ascii: "+"): return v.withText(i) { body(UnsafeRawBufferPointer(rebasing: $0.prefix(64))) }
        case UInt8(ascii: "-"), UInt8(ascii: "!"): return v.withText(i) { body(UnsafeRawBufferPointer(rebasing: $0.prefix(128))) }
        default: return n.typeName.withUTF8Buffer { body(UnsafeRawBufferPointer($0)) }
        }
    }

    /// One entry: a command and its reply (either may be missing). A reply to a
    /// command that already timed out is a reply-only entry named after it.
    private func emit(command c: Command?, reply m: RESPMessage?, values: RESPValues?, extra: EntryFlags = []) {
        let late = c?.timedOut == true && m != nil
        var flags: EntryFlags = late ? [] : c?.flags ?? []
        flags.formUnion(extra)
        if c == nil || late { flags.insert(.responseOnly) }
        if m == nil { flags.insert(.requestOnly) }
        if let m {
            if m.truncated { flags.insert(.truncated) }
            if m.malformed { flags.insert(.malformed) }
        }
        let request = late ? nil : c
        let summary = EntrySummary(
            flags: flags, status: 0, requestTimestampNs: request?.ts ?? 0, responseTimestampNs: m?.timestampNs ?? 0,
            requestSize: request?.size ?? 0, responseSize: m?.size ?? 0,
            method: c.map { $0.name.isEmpty ? "?" : $0.name })
        var problems = 0
        if request?.problem != nil { problems += 1 }
        if m?.problem != nil || late { problems += 1 }
        _ = withOptionalKey(c) { key in
            withOptionalStatus(values) { status in
                host.emit(summary, texts: EntryTexts(summary: key, statusText: status)) { e in
                    if let request { writeRequest(&e, request) }
                    if let values { values.writeResponse(&e) }
                    if problems > 0 {
                        e.array("problems") { a in
                            if let p = request?.problem { a.string(nil, p) }
                            if let p = m?.problem { a.string(nil, p) }
                            if late { a.string(nil, "the command timed out before this reply") }
                        }
                    }
                }
            }
        }
    }

    private func withOptionalKey<R>(_ c: Command?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        guard let c, let k = c.keyArg else { return body(nil) }
        return pending.withArg(c, k) { body($0) }
    }

    private func withOptionalStatus<R>(_ v: RESPValues?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        guard let v, !v.nodes.isEmpty else { return body(nil) }
        return withStatusText(v) { body($0) }
    }

    /// The `request` object: how it was sent, command, key, value, keyword, arguments.
    private func writeRequest(_ e: inout EntryBuilder, _ c: Command) {
        let pending = self.pending
        scratch.removeAll(keepingCapacity: true)
        for i in c.valueArg..<c.argCount {
            if i > c.valueArg { scratch.append(0x20) }
            pending.withArg(c, i) { scratch.append(contentsOf: $0) }
        }
        e.object("request") { r in
            r.string("type", c.inline ? "inline" : "array")
            r.string("command", c.name)
            if let k = c.keyArg { pending.withArg(c, k) { r.string("key", bytes: $0) } }
            if c.valueArg < c.argCount { scratch.withUnsafeBytes { r.string("value", bytes: $0) } }
            if let k = c.keyword { r.string("keyword", k) }
            r.array("args") { a in for i in 0..<c.argCount { pending.withArg(c, i) { a.string(nil, bytes: $0) } } }
        }
    }

    private func emitPush(_ m: RESPMessage, kind: String) {
        var flags: EntryFlags = []
        if m.truncated { flags.insert(.truncated) }
        if m.malformed { flags.insert(.malformed) }
        let v = server.values
        let items = Array(v.children(v.bare(0)).prefix(3)).map { v.bare($0) }
        func text(_ i: Int) -> String? { i < items.count && v.nodes[items[i]].hasText ? v.string(items[i]) : nil }
        // message channel payload | pmessage pattern channel payload
        let channel = text(kind == "pmessage" ? 2 : 1)
        let pattern = kind == "pmessage" ? text(1) : nil
        let summary = EntrySummary(
            flags: flags, status: 0, requestTimestampNs: 0, responseTimestampNs: m.timestampNs, requestSize: 0,
            responseSize: m.size, method: kind.uppercased(), summary: channel, statusText: "push")
        let problem = m.problem
        host.emit(summary) { b in
            v.writeResponse(&b, push: (kind, channel, pattern))
            if let problem { b.array("problems") { a in a.string(nil, problem) } }
        }
    }
}
