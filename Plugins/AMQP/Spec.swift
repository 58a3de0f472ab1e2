// AMQP 0-9-1 classes and methods: argument lists, synchronous replies, content.
// From amqp0-9-1.xml (with RabbitMQ's extensions: exchange.bind/unbind,
// basic.nack, confirm.select, connection.blocked/unblocked/update-secret).

/// Wire types of method arguments and content properties.
enum ArgType: Sendable {
    case octet, short, long, longlong, shortstr, longstr, bit, table, timestamp
    /// A longstr holding credentials: shown as "[redacted]".
    case secret
}

/// One method of the specification.
struct MethodSpec: Sendable {
    var classId: UInt16
    var methodId: UInt16
    var name: String
    /// Arguments in wire order; names starting with "reserved" are read but not shown.
    var args: [(StaticString, ArgType)]
    /// Method ids (same class) that answer this method; empty = asynchronous.
    var replies: [UInt16] = []
    /// Followed by a content header and body frames.
    var content = false
}

let classNames: [UInt16: String] = [
    10: "connection", 20: "channel", 40: "exchange", 50: "queue", 60: "basic", 85: "confirm", 90: "tx",
]

private let closeArgs: [(StaticString, ArgType)] = [
    ("replyCode", .short), ("replyText", .shortstr), ("classId", .short), ("methodId", .short),
]

let methodSpecs: [MethodSpec] = [
    // connection
    MethodSpec(classId: 10, methodId: 10, name: "connection.start",
               args: [("versionMajor", .octet), ("versionMinor", .octet), ("serverProperties", .table),
                      ("mechanisms", .longstr), ("locales", .longstr)], replies: [11]),
    MethodSpec(classId: 10, methodId: 11, name: "connection.start-ok",
               args: [("clientProperties", .table), ("mechanism", .shortstr), ("response", .secret),
                      ("locale", .shortstr)]),
    MethodSpec(classId: 10, methodId: 20, name: "connection.secure", args: [("challenge", .longstr)], replies: [21]),
    MethodSpec(classId: 10, methodId: 21, name: "connection.secure-ok", args: [("response", .secret)]),
    MethodSpec(classId: 10, methodId: 30, name: "connection.tune",
               args: [("channelMax", .short), ("frameMax", .long), ("heartbeat", .short)], replies: [31]),
    MethodSpec(classId: 10, methodId: 31, name: "connection.tune-ok",
               args: [("channelMax", .short), ("frameMax", .long), ("heartbeat", .short)]),
    MethodSpec(classId: 10, methodId: 40, name: "connection.open",
               args: [("virtualHost", .shortstr), ("reserved1", .shortstr), ("reserved2", .bit)], replies: [41]),
    MethodSpec(classId: 10, methodId: 41, name: "connection.open-ok", args: [("reserved1", .shortstr)]),
    MethodSpec(classId: 10, methodId: 50, name: "connection.close", args: closeArgs, replies: [51]),
    MethodSpec(classId: 10, methodId: 51, name: "connection.close-ok", args: []),
    MethodSpec(classId: 10, methodId: 60, name: "connection.blocked", args: [("reason", .shortstr)]),
    MethodSpec(classId: 10, methodId: 61, name: "connection.unblocked", args: []),
    MethodSpec(classId: 10, methodId: 70, name: "connection.update-secret",
               args: [("newSecret", .secret), ("reason", .shortstr)], replies: [71]),
    MethodSpec(classId: 10, methodId: 71, name: "connection.update-secret-ok", args: []),
    // channel
    MethodSpec(classId: 20, methodId: 10, name: "channel.open", args: [("reserved1", .shortstr)], replies: [11]),
    MethodSpec(classId: 20, methodId: 11, name: "channel.open-ok", args: [("reserved1", .longstr)]),
    MethodSpec(classId: 20, methodId: 20, name: "channel.flow", args: [("active", .bit)], replies: [21]),
    MethodSpec(classId: 20, methodId: 21, name: "channel.flow-ok", args: [("active", .bit)]),
    MethodSpec(classId: 20, methodId: 40, name: "channel.close", args: closeArgs, replies: [41]),
    MethodSpec(classId: 20, methodId: 41, name: "channel.close-ok", args: []),
    // exchange
    MethodSpec(classId: 40, methodId: 10, name: "exchange.declare",
               args: [("reserved1", .short), ("exchange", .shortstr), ("type", .shortstr), ("passive", .bit),
                      ("durable", .bit), ("autoDelete", .bit), ("internal", .bit), ("noWait", .bit),
                      ("arguments", .table)], replies: [11]),
    MethodSpec(classId: 40, methodId: 11, name: "exchange.declare-ok", args: []),
    MethodSpec(classId: 40, methodId: 20, name: "exchange.delete",
               args: [("reserved1", .short), ("exchange", .shortstr), ("ifUnused", .bit), ("noWait", .bit)],
               replies: [21]),
    MethodSpec(classId: 40, methodId: 21, name: "exchange.delete-ok", args: []),
    MethodSpec(classId: 40, methodId: 30, name: "exchange.bind",
               args: [("reserved1", .short), ("destination", .shortstr), ("source", .shortstr),
                      ("routingKey", .shortstr), ("noWait", .bit), ("arguments", .table)], replies: [31]),
    MethodSpec(classId: 40, methodId: 31, name: "exchange.bind-ok", args: []),
    MethodSpec(classId: 40, methodId: 40, name: "exchange.unbind",
               args: [("reserved1", .short), ("destination", .shortstr), ("source", .shortstr),
                      ("routingKey", .shortstr), ("noWait", .bit), ("arguments", .table)], replies: [51]),
    MethodSpec(classId: 40, methodId: 51, name: "exchange.unbind-ok", args: []),
    // queue
    MethodSpec(classId: 50, methodId: 10, name: "queue.declare",
               args: [("reserved1", .short), ("queue", .shortstr), ("passive", .bit), ("durable", .bit),
                      ("exclusive", .bit), ("autoDelete", .bit), ("noWait", .bit), ("arguments", .table)],
               replies: [11]),
    MethodSpec(classId: 50, methodId: 11, name: "queue.declare-ok",
               args: [("queue", .shortstr), ("messageCount", .long), ("consumerCount", .long)]),
    MethodSpec(classId: 50, methodId: 20, name: "queue.bind",
               args: [("reserved1", .short), ("queue", .shortstr), ("exchange", .shortstr),
                      ("routingKey", .shortstr), ("noWait", .bit), ("arguments", .table)], replies: [21]),
    MethodSpec(classId: 50, methodId: 21, name: "queue.bind-ok", args: []),
    MethodSpec(classId: 50, methodId: 30, name: "queue.purge",
               args: [("reserved1", .short), ("queue", .shortstr), ("noWait", .bit)], replies: [31]),
    MethodSpec(classId: 50, methodId: 31, name: "queue.purge-ok", args: [("messageCount", .long)]),
    MethodSpec(classId: 50, methodId: 40, name: "queue.delete",
               args: [("reserved1", .short), ("queue", .shortstr), ("ifUnused", .bit), ("ifEmpty", .bit),
                      ("noWait", .bit)], replies: [41]),
    MethodSpec(classId: 50, methodId: 41, name: "queue.delete-ok", args: [("messageCount", .long)]),
    MethodSpec(classId: 50, methodId: 50, name: "queue.unbind",
               args: [("reserved1", .short), ("queue", .shortstr), ("exchange", .shortstr),
                      ("routingKey", .shortstr), ("arguments", .table)], replies: [51]),
    MethodSpec(classId: 50, methodId: 51, name: "queue.unbind-ok", args: []),
    // basic
    MethodSpec(classId: 60, methodId: 10, name: "basic.qos",
               args: [("prefetchSize", .long), ("prefetchCount", .short), ("global", .bit)], replies: [11]),
    MethodSpec(classId: 60, methodId: 11, name: "basic.qos-ok", args: []),
    MethodSpec(classId: 60, methodId: 20, name: "basic.consume",
               args: [("reserved1", .short), ("queue", .shortstr), ("consumerTag", .shortstr), ("noLocal", .bit),
                      ("noAck", .bit), ("exclusive", .bit), ("noWait", .bit), ("arguments", .table)],
               replies: [21]),
    MethodSpec(classId: 60, methodId: 21, name: "basic.consume-ok", args: [("consumerTag", .shortstr)]),
    MethodSpec(classId: 60, methodId: 30, name: "basic.cancel",
               args: [("consumerTag", .shortstr), ("noWait", .bit)], replies: [31]),
    MethodSpec(classId: 60, methodId: 31, name: "basic.cancel-ok", args: [("consumerTag", .shortstr)]),
    MethodSpec(classId: 60, methodId: 40, name: "basic.publish",
               args: [("reserved1", .short), ("exchange", .shortstr), ("routingKey", .shortstr),
                      ("mandatory", .bit), ("immediate", .bit)], content: true),
    MethodSpec(classId: 60, methodId: 50, name: "basic.return",
               args: [("replyCode", .short), ("replyText", .shortstr), ("exchange", .shortstr),
                      ("routingKey", .shortstr)], content: true),
    MethodSpec(classId: 60, methodId: 60, name: "basic.deliver",
               args: [("consumerTag", .shortstr), ("deliveryTag", .longlong), ("redelivered", .bit),
                      ("exchange", .shortstr), ("routingKey", .shortstr)], content: true),
    MethodSpec(classId: 60, methodId: 70, name: "basic.get",
               args: [("reserved1", .short), ("queue", .shortstr), ("noAck", .bit)], replies: [71, 72]),
    MethodSpec(classId: 60, methodId: 71, name: "basic.get-ok",
               args: [("deliveryTag", .longlong), ("redelivered", .bit), ("exchange", .shortstr),
                      ("routingKey", .shortstr), ("messageCount", .long)], content: true),
    MethodSpec(classId: 60, methodId: 72, name: "basic.get-empty", args: [("reserved1", .shortstr)]),
    MethodSpec(classId: 60, methodId: 80, name: "basic.ack", args: [("deliveryTag", .longlong), ("multiple", .bit)]),
    MethodSpec(classId: 60, methodId: 90, name: "basic.reject",
               args: [("deliveryTag", .longlong), ("requeue", .bit)]),
    MethodSpec(classId: 60, methodId: 100, name: "basic.recover-async", args: [("requeue", .bit)]),
    MethodSpec(classId: 60, methodId: 110, name: "basic.recover", args: [("requeue", .bit)], replies: [111]),
    MethodSpec(classId: 60, methodId: 111, name: "basic.recover-ok", args: []),
    MethodSpec(classId: 60, methodId: 120, name: "basic.nack",
               args: [("deliveryTag", .longlong), ("multiple", .bit), ("requeue", .bit)]),
    // confirm
    MethodSpec(classId: 85, methodId: 10, name: "confirm.select", args: [("noWait", .bit)], replies: [11]),
    MethodSpec(classId: 85, methodId: 11, name: "confirm.select-ok", args: []),
    // tx
    MethodSpec(classId: 90, methodId: 10, name: "tx.select", args: [], replies: [11]),
    MethodSpec(classId: 90, methodId: 11, name: "tx.select-ok", args: []),
    MethodSpec(classId: 90, methodId: 20, name: "tx.commit", args: [], replies: [21]),
    MethodSpec(classId: 90, methodId: 21, name: "tx.commit-ok", args: []),
    MethodSpec(classId: 90, methodId: 30, name: "tx.rollback", args: [], replies: [31]),
    MethodSpec(classId: 90, methodId: 31, name: "tx.rollback-ok", args: []),
]

@inline(__always) func methodKey(_ c: UInt16, _ m: UInt16) -> UInt32 { UInt32(c) << 16 | UInt32(m) }

/// Index of each spec by (class, method).
let specIndex: [UInt32: Int] = {
    var d: [UInt32: Int] = [:]
    for (i, s) in methodSpecs.enumerated() { d[methodKey(s.classId, s.methodId)] = i }
    return d
}()

/// (class, method) of every reply method.
let replyKeys: Set<UInt32> = {
    var s = Set<UInt32>()
    for m in methodSpecs { for r in m.replies { s.insert(methodKey(m.classId, r)) } }
    return s
}()

/// Basic-class content properties in flag order (bit 15 first).
let basicProperties: [(StaticString, ArgType)] = [
    ("contentType", .shortstr), ("contentEncoding", .shortstr), ("headers", .table), ("deliveryMode", .octet),
    ("priority", .octet), ("correlationId", .shortstr), ("replyTo", .shortstr), ("expiration", .shortstr),
    ("messageId", .shortstr), ("timestamp", .timestamp), ("type", .shortstr), ("userId", .shortstr),
    ("appId", .shortstr), ("clusterId", .shortstr),
]
