// The Kafka stream state machine: each direction is a sequence of
// size-prefixed messages. Requests wait in a bounded map keyed by correlation
// id; a response takes its request's API key and version from there (responses
// are not self-describing).

import PluginKit

/// One decoded request.
struct KafkaRequest {
    var apiKey: Int16
    var version: Int16
    var correlationId: Int32
    var clientId: String?
    var payload: KValue?
    var note: String?
    var topics: [String] = []
    var size: UInt64
    var ts: Int64
    var flags: EntryFlags = []
    var problem: String?
    var acksZero = false
    /// Approximate bytes kept while it waits.
    var weight = 0
}

/// One response before it is matched.
struct KafkaResponse {
    var correlationId: Int32
    var payload: KValue?
    var note: String?
    var topics: [String] = []
    var firstError: Int16 = 0
    var size: UInt64
    var ts: Int64
    var flags: EntryFlags = []
    var problem: String?
    /// The API of the request this answers when that request had already timed out.
    var lateForApiKey: Int16?
}

/// What is kept of a request that timed out: enough to decode a late response.
struct ExpiredRequest {
    var apiKey: Int16
    var version: Int16
}

public final class KafkaDissector: Dissector {
    /// Largest message size accepted on the wire.
    static let maxMessageSize = 100 << 20
    /// Bytes of one message parsed; the rest is skipped unseen.
    static let parseCap = 1 << 20
    /// Most requests waiting for a response.
    static let maxPending = 1024
    /// Most message bytes (an estimate of the kept trees) waiting for a response.
    static let maxPendingBytes = 32 << 20
    /// A request without a response for this long (capture time) becomes a timed-out entry.
    /// Long enough for Fetch long polls and JoinGroup rebalances of default clients.
    static let requestTimeoutNs: Int64 = 60_000_000_000

    /// Requests that timed out, by correlation id, until their response comes (bounded by maxPending).
    var expired: [Int32: ExpiredRequest] = [:]

    let host: StreamHost
    var pending: [Int32: KafkaRequest] = [:]
    var order: [Int32] = []
    var orderHead = 0
    var pendingBytes = 0
    var dead = [false, false]
    var confirmed = false

    public init(flow: Flow, host: StreamHost) {
        self.host = host
    }

    public func receive(_ chunk: Chunk) -> ParseResult {
        let b = chunk.bytes
        let isRequest = chunk.direction == .clientToServer
        let d = Int(chunk.direction.rawValue)
        if dead[d] { return .ok(consumed: b.count) }
        var pos = 0
        while true {
            let avail = b.count - pos
            if avail == 0 { return .ok(consumed: pos) }
            if avail < 4 { return .needMore(consumed: pos, needed: 4 - avail) }
            let size = Int(Int32(bitPattern: UInt32(b[pos]) << 24 | UInt32(b[pos + 1]) << 16 | UInt32(b[pos + 2]) << 8
                | UInt32(b[pos + 3])))
            let ts = pos == 0 ? chunk.firstTimestampNs : chunk.lastTimestampNs
            if size < (isRequest ? 8 : 4) || size > Self.maxMessageSize {
                let why = "absurd message size \(size)"
                host.violation(why)
                host.count("kafka.malformed")
                if isRequest {
                    emit(KafkaRequest(apiKey: -1, version: -1, correlationId: -1, size: UInt64(avail), ts: ts,
                                      flags: [.malformed, .requestOnly], problem: why), nil)
                } else {
                    emit(nil, KafkaResponse(correlationId: -1, size: UInt64(avail), ts: ts,
                                            flags: [.malformed, .responseOnly], problem: why))
                }
                dead[d] = true
                return .ok(consumed: b.count)
            }
            let parseLen = min(size, Self.parseCap)
            if avail < 4 + parseLen { return .needMore(consumed: pos, needed: 4 + parseLen - avail) }
            let msg = Array(b[(pos + 4)..<(pos + 4 + parseLen)])
            let truncated = parseLen < size
            if isRequest {
                onRequest(msg, size: size, truncated: truncated, ts: ts)
            } else {
                onResponse(msg, size: size, truncated: truncated, ts: ts)
            }
            if truncated { return .skip(consumed: pos + 4 + parseLen, count: size - parseLen) }
            pos += 4 + size
        }
    }

    public func gap(direction: Direction, length: UInt64) -> Bool {
        // Message boundaries are lost with the bytes.
        false
    }

    /// Emits the requests waiting longer than `requestTimeoutNs`, oldest first, and
    /// remembers their API so that a late response is still decoded.
    public func tick(nowNs: Int64) {
        while orderHead < order.count {
            let id = order[orderHead]
            guard let waiting = pending[id] else {
                orderHead += 1  // answered already
                continue
            }
            guard nowNs - waiting.ts >= Self.requestTimeoutNs else { break }
            orderHead += 1
            guard var r = take(id) else { continue }
            if expired.count >= Self.maxPending { expired.removeAll(keepingCapacity: true) }
            expired[id] = ExpiredRequest(apiKey: r.apiKey, version: r.version)
            r.flags.formUnion([.requestOnly, .timedOut])
            host.count("kafka.timed_out")
            emit(r, nil)
        }
        compactOrder()
    }

    public func close(reason: CloseReason) {
        while orderHead < order.count {
            let id = order[orderHead]
            orderHead += 1
            if let r = take(id) {
                var r = r
                r.flags.insert(.requestOnly)
                emit(r, nil)
            }
        }
        order.removeAll()
        orderHead = 0
        expired.removeAll()
    }

    // MARK: Requests

    func onRequest(_ msg: [UInt8], size: Int, truncated: Bool, ts: Int64) {
        var r = Reader(msg, flexible: false)
        let apiKey = r.i16()
        let version = r.i16()
        let correlationId = r.i32()
        var req = KafkaRequest(apiKey: apiKey, version: version, correlationId: correlationId, size: UInt64(size + 4),
                               ts: ts)
        if truncated { req.flags.insert(.truncated) }
        // ControlledShutdown v0 has no client id.
        if !(apiKey == 7 && version == 0) {
            if let n = r.length(width: 2), let range = r.take(n) {
                req.clientId = String(decoding: msg[range], as: UTF8.self)
            }
        }
        let flexible = isFlexible(apiKey: apiKey, version: version)
        if flexible {
            r.flexible = true
            r.taggedFields()
        }
        if r.bad {
            req.flags.insert(truncated ? .truncated : .malformed)
            req.problem = "request header: " + (r.problem ?? "malformed")
            host.count("kafka.malformed")
        } else {
            if !confirmed, apiKey >= 0, Int(apiKey) < apiNames.count {
                confirmed = true
                host.confirm()
            }
            decodeBody(&req, reader: r, isRequest: true, truncated: truncated)
        }
        if apiKey == 0, case .obj(let fields)? = req.payload,
            let acks = fields.first(where: { $0.0.description == "acks" }), case .int(0) = acks.1
        {
            req.acksZero = true
            req.flags.insert(.requestOnly)
            emit(req, nil)
            return
        }
        if let old = take(correlationId) {
            var old = old
            old.flags.insert(.requestOnly)
            old.problem = old.problem ?? "correlation id reused before a response"
            emit(old, nil)
        }
        req.weight = min(msg.count, KafkaLimits.maxValues * 16) + 256
        pending[correlationId] = req
        pendingBytes += req.weight
        order.append(correlationId)
        while pending.count > Self.maxPending || pendingBytes > Self.maxPendingBytes, orderHead < order.count {
            let id = order[orderHead]
            orderHead += 1
            if var oldest = take(id) {
                oldest.flags.insert(.requestOnly)
                oldest.problem = "evicted: too many requests waiting for a response"
                emit(oldest, nil)
            }
        }
        compactOrder()
    }

    func take(_ id: Int32) -> KafkaRequest? {
        guard let r = pending.removeValue(forKey: id) else { return nil }
        pendingBytes -= r.weight
        return r
    }

    func compactOrder() {
        if orderHead > 4096 || (orderHead > 64 && orderHead * 2 > order.count) {
            order.removeFirst(orderHead)
            orderHead = 0
        }
        // Ids answered out of order stay in `order` until they reach the head;
        // bound it by dropping ids no longer pending.
        if order.count - orderHead > Self.maxPending * 4 {
            order = order[orderHead...].filter { pending[$0] != nil }
            orderHead = 0
        }
    }

    func decodeBody(_ req: inout KafkaRequest, reader: Reader, isRequest: Bool, truncated: Bool) {
        guard let schema = requestSchemas[req.apiKey], let maxV = decodedMaxVersion[req.apiKey] else {
            req.note = "body not decoded for this API"
            return
        }
        guard req.version >= 0, req.version <= maxV else {
            req.note = "body not decoded for this version"
            return
        }
        var d = BodyDecoder(reader: reader, version: req.version)
        req.payload = d.object(schema)
        req.topics = d.topics
        if d.r.bad {
            if truncated {
                req.flags.insert(.truncated)
            } else {
                req.flags.insert(.malformed)
                req.problem = "request body: " + (d.r.problem ?? "malformed")
                host.count("kafka.malformed")
            }
        }
    }

    // MARK: Responses

    func onResponse(_ msg: [UInt8], size: Int, truncated: Bool, ts: Int64) {
        var r = Reader(msg, flexible: false)
        let correlationId = r.i32()
        var resp = KafkaResponse(correlationId: correlationId, size: UInt64(size + 4), ts: ts)
        if truncated { resp.flags.insert(.truncated) }
        let req = take(correlationId)
        let late = req == nil ? expired.removeValue(forKey: correlationId) : nil
        guard let api = req.map({ ExpiredRequest(apiKey: $0.apiKey, version: $0.version) }) ?? late else {
            resp.flags.insert(.responseOnly)
            resp.note = "no request with this correlation id"
            emit(nil, resp)
            return
        }
        if late != nil {
            resp.flags.insert(.responseOnly)
            resp.lateForApiKey = api.apiKey
            resp.note = "the request timed out before this response"
        }
        // Response header v1 has tagged fields; ApiVersions keeps header v0.
        if isFlexible(apiKey: api.apiKey, version: api.version) {
            r.flexible = true
            if api.apiKey != 18 { r.taggedFields() }
        }
        var version = api.version
        // A broker refusing the ApiVersions version (UNSUPPORTED_VERSION) answers with a v0 body
        // (Apache Kafka); other servers vary (librdkafka's mock), so a failed decode is not flagged.
        let refusedApiVersions = api.apiKey == 18 && msg.count >= 6 && msg[4] == 0 && msg[5] == 35
        if refusedApiVersions {
            version = 0
            r.flexible = false
        }
        if let schema = responseSchemas[api.apiKey], let maxV = decodedMaxVersion[api.apiKey],
            version >= 0, version <= maxV
        {
            var d = BodyDecoder(reader: r, version: version)
            resp.payload = d.object(schema)
            resp.topics = d.topics
            resp.firstError = d.firstError
            if d.r.bad && refusedApiVersions {
                resp.payload = .obj([("errorCode", .str(errorName(35)))])
                resp.note = "UNSUPPORTED_VERSION reply body not decoded"
            } else if d.r.bad {
                if truncated {
                    resp.flags.insert(.truncated)
                } else {
                    resp.flags.insert(.malformed)
                    resp.problem = "response body: " + (d.r.problem ?? "malformed")
                    host.count("kafka.malformed")
                }
            }
        } else if late == nil {
            resp.note = "body not decoded for this API or version"
        }
        emit(req, resp)
    }

    // MARK: Entries

    func emit(_ req: KafkaRequest?, _ resp: KafkaResponse?) {
        var flags: EntryFlags = []
        if let req { flags.formUnion(req.flags) }
        if let resp { flags.formUnion(resp.flags) }
        if req == nil { flags.insert(.responseOnly) }
        if resp == nil { flags.insert(.requestOnly) }
        var topics = req?.topics ?? []
        for t in resp?.topics ?? [] where !topics.contains(t) && topics.count < KafkaLimits.maxTopicsInSummary {
            topics.append(t)
        }
        let err = resp?.firstError ?? 0
        var statusText: String? = resp == nil ? nil : errorName(err)
        if req?.acksZero == true { statusText = "acks=0" }
        let summary = EntrySummary(
            flags: flags, status: Int32(err), requestTimestampNs: req?.ts ?? resp?.ts ?? 0,
            responseTimestampNs: resp?.ts ?? 0, requestSize: req?.size ?? 0, responseSize: resp?.size ?? 0,
            method: req.map { apiName($0.apiKey) } ?? resp?.lateForApiKey.map(apiName) ?? "Response",
            summary: topics.isEmpty ? nil : topics.joined(separator: ", "), statusText: statusText)
        host.emit(summary) { e in
            if let req {
                e.object("request") { o in
                    o.int("apiKey", Int64(req.apiKey))
                    o.string("apiName", apiName(req.apiKey))
                    o.int("apiVersion", Int64(req.version))
                    o.int("correlationId", Int64(req.correlationId))
                    if let c = req.clientId { o.string("clientId", c) } else { o.null("clientId") }
                    o.bool("flexible", isFlexible(apiKey: req.apiKey, version: req.version))
                    o.uint("size", req.size)
                    if req.acksZero { o.int("acks", 0) }
                    if let p = req.payload { p.write("payload", &o) }
                    if let n = req.note { o.string("note", n) }
                    if let p = req.problem { o.string("problem", p) }
                }
            }
            if let resp {
                e.object("response") { o in
                    o.int("correlationId", Int64(resp.correlationId))
                    o.uint("size", resp.size)
                    if req != nil || resp.lateForApiKey != nil {
                        o.int("errorCode", Int64(resp.firstError))
                        o.string("errorName", errorName(resp.firstError))
                    }
                    if let p = resp.payload { p.write("payload", &o) }
                    if let n = resp.note { o.string("note", n) }
                    if let p = resp.problem { o.string("problem", p) }
                }
            }
        }
    }
}
