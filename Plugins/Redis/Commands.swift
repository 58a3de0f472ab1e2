// Commands waiting for their replies, in order (Redis answers in order), with
// their arguments' bytes in one arena that is reused: queuing and answering a
// command allocates nothing once the arrays have grown.

import PluginKit

/// Bytes of one argument in the arena; `start < 0` is a redacted password.
struct ArgSpan {
    var start: Int32
    var length: Int32
    static let redacted = ArgSpan(start: -1, length: 0)
}

/// One command waiting for its reply.
struct Command {
    /// Its arguments: `PendingCommands.args[firstArg ..< firstArg + argCount]`.
    var firstArg: Int
    var argCount: Int
    /// Where its bytes start in the arena (for compaction).
    var firstByte: Int
    /// The command name, uppercased (short: no allocation).
    var name: String
    /// The subcommand of container commands (CONFIG GET...), uppercased.
    var keyword: String?
    /// Index (within its arguments) of the key, if any, and of the first argument of the value.
    var keyArg: Int?
    var valueArg: Int
    var inline: Bool
    var size: UInt64
    var ts: Int64
    var flags: EntryFlags
    var problem: String?
    /// Subscribe-family commands get one confirmation per channel.
    var confirmationsLeft = 0
    var confirmations: [RESPValues] = []
    var confirmationsSize: UInt64 = 0
    var confirmationsTs: Int64 = 0
    /// Approximate bytes kept for this command while it waits.
    var weight = 0
    /// Emitted as timed out; it stays in the queue only to take its late reply.
    var timedOut = false

    init(
        firstArg: Int, argCount: Int, firstByte: Int, name: String, keyword: String?, keyArg: Int?, valueArg: Int,
        inline: Bool, size: UInt64, ts: Int64, flags: EntryFlags, problem: String?, weight: Int
    ) {
        self.firstArg = firstArg
        self.argCount = argCount
        self.firstByte = firstByte
        self.name = name
        self.keyword = keyword
        self.keyArg = keyArg
        self.valueArg = valueArg
        self.inline = inline
        self.size = size
        self.ts = ts
        self.flags = flags
        self.problem = problem
        self.weight = weight
    }
}

/// The queue of commands waiting for replies, oldest first.
struct PendingCommands {
    var queue: [Command] = []
    var head = 0
    var args: [ArgSpan] = []
    var bytes: [UInt8] = []
    /// Sum of the waiting commands' weights.
    var weight = 0
    /// Commands before this index have been checked for time-out.
    var checked = 0

    var count: Int { queue.count - head }
    var isEmpty: Bool { head == queue.count }

    /// The oldest waiting command.
    var first: Command? { isEmpty ? nil : queue[head] }

    /// Starts a command: its arguments are added with `addArg` before `push`.
    /// An empty queue is reused from the start (popped commands stay readable until then).
    mutating func begin() -> (firstArg: Int, firstByte: Int) {
        if isEmpty {
            queue.removeAll(keepingCapacity: true)
            args.removeAll(keepingCapacity: true)
            bytes.removeAll(keepingCapacity: true)
            head = 0
            checked = 0
            weight = 0
        }
        return (args.count, bytes.count)
    }

    /// Adds one argument's bytes to the arena.
    mutating func addArg(_ text: UnsafeRawBufferPointer) {
        args.append(ArgSpan(start: Int32(bytes.count), length: Int32(text.count)))
        bytes.append(contentsOf: text)
    }

    mutating func push(_ c: Command) {
        compact()
        queue.append(c)
        weight += c.weight
    }

    /// Takes the oldest waiting command (its arguments stay readable until the next `begin`).
    mutating func pop() -> Command {
        let c = queue[head]
        head += 1
        weight -= c.weight
        return c
    }

    /// Drops the answered prefix once it is most of the queue (amortised O(1)).
    private mutating func compact() {
        guard head > 64, head * 2 > queue.count else { return }
        let argBase = queue[head].firstArg
        let byteBase = queue[head].firstByte
        queue.removeFirst(head)
        checked = max(0, checked - head)
        head = 0
        args.removeFirst(argBase)
        bytes.removeFirst(byteBase)
        for i in args.indices where args[i].start >= 0 { args[i].start -= Int32(byteBase) }
        for i in queue.indices {
            queue[i].firstArg -= argBase
            queue[i].firstByte -= byteBase
        }
    }

    /// Calls `body` with argument `i` of command `c` (`[redacted]` for a password).
    @inline(__always)
    func withArg<R>(_ c: Command, _ i: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let span = args[c.firstArg + i]
        if span.start < 0 { return redactedText.withUnsafeBytes(body) }
        return bytes.withUnsafeBytes { b in body(UnsafeRawBufferPointer(rebasing: b[Int(span.start)..<Int(span.start + span.length)])) }
    }

    /// Argument `i` of command `c` as a String (rare paths).
    func argString(_ c: Command, _ i: Int) -> String { withArg(c, i) { String(decoding: $0, as: UTF8.self) } }

    /// Marks argument `i` of the command being built (from `firstArg`) as a redacted password.
    mutating func redactArg(firstArg: Int, _ i: Int) { args[firstArg + i] = .redacted }
}

let redacted = "[redacted]"
private let redactedText: [UInt8] = Array(redacted.utf8)

/// Commands whose arguments can hold passwords.
let commandsWithSecrets: Set<String> = ["AUTH", "HELLO", "MIGRATE", "CONFIG", "ACL"]

/// Indices of the arguments of `args` (the whole command, name first) that are passwords.
func secretArguments(_ args: [String]) -> [Int] {
    guard let first = args.first else { return [] }
    var secret: [Int] = []
    let a = args
    switch first.uppercased() {
    case "AUTH":
        // AUTH password | AUTH username password
        if a.count >= 2 { secret.append(a.count - 1) }
        if a.count > 3 { secret += Array(1..<a.count) }
    case "HELLO":
        // HELLO [protover [AUTH username password] [SETNAME clientname]]
        var i = 1
        while i < a.count {
            if a[i].uppercased() == "AUTH" {
                if i + 2 < a.count { secret.append(i + 2) } else if i + 1 < a.count { secret.append(i + 1) }
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
                secret.append(i + 1)
                i += 2
            } else if w == "AUTH2", i + 2 < a.count {
                secret.append(i + 2)
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
                if p == "requirepass" || p == "masterauth" || p == "masteruser" { secret.append(i + 1) }
                i += 2
            }
        }
    case "ACL":
        if a.count >= 3, a[1].uppercased() == "SETUSER" {
            for i in 3..<max(3, a.count) where a[i].hasPrefix(">") || a[i].hasPrefix("#") || a[i].hasPrefix("<") {
                secret.append(i)
            }
        }
    default:
        break
    }
    return secret
}

/// `b` uppercased (ASCII) as a String; short names make no allocation.
func uppercased(_ b: UnsafeRawBufferPointer) -> String {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(1, b.count)) { out in
        for (i, c) in b.enumerated() { out[i] = c >= 0x61 && c <= 0x7A ? c - 32 : c }
        return String(decoding: UnsafeBufferPointer(rebasing: out[0..<b.count]), as: UTF8.self)
    }
}
