// The Redis (RESP2/RESP3) dissector plugin: metadata, probe and the exported
// entry symbol. The stream state machine is in RedisDissector.swift, the RESP
// reader in RESP.swift.

import PluginAPI
import PluginKit

@_cdecl("ks_plugin_v1")
public func ks_plugin_v1() -> UnsafePointer<ks_plugin_descriptor> {
    PluginExport.descriptor(for: RedisDissector.self)
}

/// Caps that keep one stream's memory and work bounded on hostile input.
public struct RedisLimits: Sendable {
    public var resp = RESPLimits()
    /// Most commands waiting for a reply per stream (beyond: the oldest is emitted unanswered).
    public var maxPending = 1024
    /// Most argument bytes kept for commands waiting for a reply per stream.
    public var maxPendingBytes = 4 << 20
    /// Most arguments shown per command.
    public var maxArgs = 1000
    /// A command unanswered for this long (capture time) becomes a timed-out entry.
    /// Blocking commands (BLPOP 0, XREAD BLOCK...) may legitimately wait longer: their
    /// late reply is then an entry of its own, named after the command.
    public var commandTimeoutNs: Int64 = 30_000_000_000
    public init() {}
    public static let standard = RedisLimits()
}

/// Command names the probe recognises (uppercase).
let knownCommands: Set<String> = [
    "ACL", "APPEND", "ASKING", "AUTH", "BGREWRITEAOF", "BGSAVE", "BITCOUNT", "BITFIELD", "BITFIELD_RO", "BITOP",
    "BITPOS", "BLMOVE", "BLMPOP", "BLPOP", "BRPOP", "BRPOPLPUSH", "BZMPOP", "BZPOPMAX", "BZPOPMIN", "CLIENT",
    "CLUSTER", "COMMAND", "CONFIG", "COPY", "DBSIZE", "DEBUG", "DECR", "DECRBY", "DEL", "DISCARD", "DUMP", "ECHO",
    "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "EXEC", "EXISTS", "EXPIRE", "EXPIREAT", "EXPIRETIME", "FAILOVER",
    "FCALL", "FCALL_RO", "FLUSHALL", "FLUSHDB", "FUNCTION", "GEOADD", "GEODIST", "GEOHASH", "GEOPOS", "GEORADIUS",
    "GEORADIUSBYMEMBER", "GEOSEARCH", "GEOSEARCHSTORE", "GET", "GETBIT", "GETDEL", "GETEX", "GETRANGE", "GETSET",
    "HDEL", "HELLO", "HEXISTS", "HGET", "HGETALL", "HINCRBY", "HINCRBYFLOAT", "HKEYS", "HLEN", "HMGET", "HMSET",
    "HRANDFIELD", "HSCAN", "HSET", "HSETNX", "HSTRLEN", "HVALS", "INCR", "INCRBY", "INCRBYFLOAT", "INFO", "KEYS",
    "LASTSAVE", "LATENCY", "LCS", "LINDEX", "LINSERT", "LLEN", "LMOVE", "LMPOP", "LOLWUT", "LPOP", "LPOS", "LPUSH",
    "LPUSHX", "LRANGE", "LREM", "LSET", "LTRIM", "MEMORY", "MGET", "MIGRATE", "MODULE", "MONITOR", "MOVE", "MSET",
    "MSETNX", "MULTI", "OBJECT", "PERSIST", "PEXPIRE", "PEXPIREAT", "PEXPIRETIME", "PFADD", "PFCOUNT", "PFMERGE",
    "PING", "PSETEX", "PSUBSCRIBE", "PSYNC", "PTTL", "PUBLISH", "PUBSUB", "PUNSUBSCRIBE", "QUIT", "RANDOMKEY",
    "READONLY", "READWRITE", "RENAME", "RENAMENX", "REPLCONF", "REPLICAOF", "RESET", "RESTORE", "ROLE", "RPOP",
    "RPOPLPUSH", "RPUSH", "RPUSHX", "SADD", "SAVE", "SCAN", "SCARD", "SCRIPT", "SDIFF", "SDIFFSTORE", "SELECT", "SET",
    "SETBIT", "SETEX", "SETNX", "SETRANGE", "SHUTDOWN", "SINTER", "SINTERCARD", "SINTERSTORE", "SISMEMBER",
    "SLAVEOF", "SLOWLOG", "SMEMBERS", "SMISMEMBER", "SMOVE", "SORT", "SORT_RO", "SPOP", "SPUBLISH", "SRANDMEMBER",
    "SREM", "SSCAN", "SSUBSCRIBE", "STRLEN", "SUBSCRIBE", "SUBSTR", "SUNION", "SUNIONSTORE", "SUNSUBSCRIBE",
    "SWAPDB", "SYNC", "TIME", "TOUCH", "TTL", "TYPE", "UNLINK", "UNSUBSCRIBE", "UNWATCH", "WAIT", "WAITAOF", "WATCH",
    "XACK", "XADD", "XAUTOCLAIM", "XCLAIM", "XDEL", "XGROUP", "XINFO", "XLEN", "XPENDING", "XRANGE", "XREAD",
    "XREADGROUP", "XREVRANGE", "XSETID", "XTRIM", "ZADD", "ZCARD", "ZCOUNT", "ZDIFF", "ZDIFFSTORE", "ZINCRBY",
    "ZINTER", "ZINTERCARD", "ZINTERSTORE", "ZLEXCOUNT", "ZMPOP", "ZMSCORE", "ZPOPMAX", "ZPOPMIN", "ZRANDMEMBER",
    "ZRANGE", "ZRANGEBYLEX", "ZRANGEBYSCORE", "ZRANGESTORE", "ZRANK", "ZREM", "ZREMRANGEBYLEX", "ZREMRANGEBYRANK",
    "ZREMRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYLEX", "ZREVRANGEBYSCORE", "ZREVRANK", "ZSCAN", "ZSCORE", "ZUNION",
    "ZUNIONSTORE",
]

/// Uppercases ASCII letters of a short word; nil when it is not a plausible command word.
func commandWord(_ b: UnsafeRawBufferPointer) -> String? {
    guard !b.isEmpty, b.count <= 24 else { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(b.count)
    for c in b {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"): out.append(c - 32)
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"), UInt8(ascii: "-"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."):
            out.append(c)
        default: return nil
        }
    }
    return String(decoding: out, as: UTF8.self)
}

extension RedisDissector {
    public static let metadata = PluginMetadata(
        name: "redis",
        version: "1.0.0",
        vendor: "kubeshark-swift",
        license: "Apache-2.0",
        description: "Redis RESP2/RESP3: pipelining, inline commands, pub/sub, attributes; AUTH passwords redacted",
        referenceURL: "https://redis.io/docs/latest/develop/reference/protocol-spec/",
        layer4: .tcp,
        flags: [],
        defaultPorts: [6379...6379],
        priority: 40,
        probeMinBytes: 1,
        probeMaxBytes: 1024,
        maxBufferBytes: 128 << 10,
        protocols: [
            ProtocolInfo(
                name: "redis", longName: "Redis Serialization Protocol", abbreviation: "REDIS", version: "3",
                macro: "redis", backgroundColor: "#a41e11", foregroundColor: "#ffffff",
                referenceURL: "https://redis.io/docs/latest/develop/reference/protocol-spec/")
        ]
    )

    /// Client: a RESP array of bulk strings naming a known command → 75; an inline
    /// known command word → 50. Server bytes (a reply type line) → reversed, 50 for
    /// framing only RESP has, 25 for a lone simple line.
    public static func probe(flow: Flow, chunk: Chunk) -> ProbeResult {
        let b = UnsafeRawBufferPointer(rebasing: chunk.bytes.prefix(Int(metadata.probeMaxBytes)))
        guard !b.isEmpty else { return .maybe(needBytes: 4) }
        let fromClient = chunk.direction == .clientToServer
        let complete = b.count == chunk.bytes.count
        // Roles learned from the handshake are kept: a "command" from the server is a
        // master feeding a replica, a "reply" from the client is an odd inline command
        // (Redis reads `$0` from a client as one), so only guessed roles are reversed.
        let mayReverse = flow.rolesGuessed
        switch probeCommand(b) {
        case .yes(let c): return .yes(confidence: c, reversed: !fromClient && mayReverse)
        case .maybe: if complete { return .maybe(needBytes: UInt32(b.count + 16)) }
        case .no: break
        }
        switch probeReply(b) {
        case .yes(let c):
            if fromClient && !mayReverse { return .yes(confidence: ProbeResult.port) }
            return .yes(confidence: c, reversed: fromClient)
        case .maybe: if complete { return .maybe(needBytes: UInt32(b.count + 16)) }
        case .no: break
        }
        return .no
    }

    enum Guess { case yes(UInt32), maybe, no }

    static func probeCommand(_ b: UnsafeRawBufferPointer) -> Guess {
        if b[0] == UInt8(ascii: "*") {
            guard let e1 = findCRLF(b, from: 1) else { return b.count < 16 && digitsOnly(b, 1, b.count) ? .maybe : .no }
            guard let n = parseInt(UnsafeRawBufferPointer(rebasing: b[1..<e1])), n >= 1, n < 1 << 20 else { return .no }
            let p = e1 + 2
            guard p < b.count else { return .maybe }
            guard b[p] == UInt8(ascii: "$") else { return .no }
            guard let e2 = findCRLF(b, from: p + 1) else { return b.count - p < 16 ? .maybe : .no }
            guard let len = parseInt(UnsafeRawBufferPointer(rebasing: b[(p + 1)..<e2])), len >= 1, len <= 64 else {
                return .no
            }
            let s = e2 + 2
            guard s + Int(len) + 2 <= b.count else { return .maybe }
            guard b[s + Int(len)] == 0x0D, b[s + Int(len) + 1] == 0x0A else { return .no }
            guard let word = commandWord(UnsafeRawBufferPointer(rebasing: b[s..<(s + Int(len))])) else { return .no }
            return knownCommands.contains(word) ? .yes(ProbeResult.syntax) : .yes(ProbeResult.plausible)
        }
        // Inline: a known word followed by space or end of line.
        var i = 0
        while i < b.count, i < 25, b[i] != 0x20, b[i] != 0x0D, b[i] != 0x0A { i += 1 }
        guard let word = commandWord(UnsafeRawBufferPointer(rebasing: b[0..<i])) else { return .no }
        if i == b.count {
            return knownCommands.contains(where: { $0.hasPrefix(word) }) ? .maybe : .no
        }
        guard knownCommands.contains(word) else { return .no }
        // The whole line must be text ending in CRLF or LF (or still be arriving).
        var j = i
        while j < b.count, b[j] != 0x0A {
            if b[j] < 0x20 && b[j] != 0x0D && b[j] != 0x09 { return .no }
            // "GET / HTTP/1.1" is HTTP, not an inline GET.
            if b[j] == UInt8(ascii: "H"), j + 5 <= b.count, b[j - 1] == 0x20, b[j + 1] == UInt8(ascii: "T"),
                b[j + 2] == UInt8(ascii: "T"), b[j + 3] == UInt8(ascii: "P"), b[j + 4] == UInt8(ascii: "/")
            {
                return .no
            }
            j += 1
        }
        return .yes(ProbeResult.plausible)
    }

    static func probeReply(_ b: UnsafeRawBufferPointer) -> Guess {
        let t = b[0]
        guard let e = findCRLF(b, from: 1) else {
            if b.count > 256 { return .no }
            return "+-:$*%~>|_,#(=!".utf8.contains(t) ? .maybe : .no
        }
        let body = UnsafeRawBufferPointer(rebasing: b[1..<e])
        switch t {
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            for c in body where c < 0x20 && c != 0x09 { return .no }
            if t == UInt8(ascii: "-") {
                // Redis errors start with an uppercase code: ERR, WRONGTYPE, NOAUTH...
                guard let f = body.first, f >= UInt8(ascii: "A"), f <= UInt8(ascii: "Z") else { return .no }
            }
            return .yes(ProbeResult.port)
        case UInt8(ascii: ":"):
            return parseInt(body) != nil ? .yes(ProbeResult.port) : .no
        case UInt8(ascii: "_"):
            return body.isEmpty ? .yes(ProbeResult.port) : .no
        case UInt8(ascii: "$"), UInt8(ascii: "="), UInt8(ascii: "!"):
            guard let n = parseInt(body), n >= -1 else { return .no }
            if n == -1 { return t == UInt8(ascii: "$") && e + 2 == b.count ? .yes(ProbeResult.port) : .no }
            let end = e + 2 + Int(min(n, 1 << 20))
            if end + 2 > b.count { return .yes(ProbeResult.port) }
            return b[end] == 0x0D && b[end + 1] == 0x0A ? .yes(ProbeResult.plausible) : .no
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            guard let n = parseInt(body), n >= -1 else { return .no }
            if n <= 0 { return e + 2 == b.count ? .yes(ProbeResult.port) : .no }
            guard e + 2 < b.count else { return .maybe }
            return "+-:$*%~>|_,#(=!".utf8.contains(b[e + 2]) ? .yes(ProbeResult.plausible) : .no
        case UInt8(ascii: ","), UInt8(ascii: "("):
            return body.isEmpty ? .no : .yes(ProbeResult.port)
        case UInt8(ascii: "#"):
            return body.count == 1 && (body[0] == UInt8(ascii: "t") || body[0] == UInt8(ascii: "f"))
                ? .yes(ProbeResult.port) : .no
        default:
            return .no
        }
    }

    private static func digitsOnly(_ b: UnsafeRawBufferPointer, _ from: Int, _ to: Int) -> Bool {
        var i = from
        while i < to {
            if !(b[i] >= 0x30 && b[i] <= 0x39) && b[i] != 0x0D && b[i] != UInt8(ascii: "-") { return false }
            i += 1
        }
        return true
    }
}
