// One DNS flow: a TCP connection (2-byte length-prefixed messages) or a UDP
// pseudo-flow (one message per datagram). Queries wait in a bounded list until
// the response with the same id (and question) arrives, the capture clock
// passes their timeout, or the flow closes.

import PluginAPI
import PluginKit

/// A parsed message with where and when it was seen.
struct Seen {
    var message: DNSMessage
    var timestampNs: Int64
    /// Bytes on the wire (with the TCP length prefix).
    var wireSize: Int
    var direction: Direction
}

public final class DNSDissector: Dissector {
    let host: StreamHost
    let isTCP: Bool
    var pending: [Seen] = []
    var confirmed = false
    /// TCP: the header of a message still incomplete in each direction, for
    /// reporting it when the stream ends first.
    var partial: [Direction: (header: [UInt8], have: Int, want: Int, ts: Int64)] = [:]

    public init(flow: Flow, host: StreamHost) {
        self.host = host
        isTCP = flow.layer4 == .tcp
    }

    // MARK: Input

    public func receive(_ chunk: Chunk) -> ParseResult {
        let b = chunk.bytes
        var off = 0
        while true {
            let remaining = b.count - off
            if remaining < 2 {
                if remaining == 0 {
                    partial[chunk.direction] = nil
                    return .ok(consumed: off)
                }
                partial[chunk.direction] = ([], remaining, 2, chunk.lastTimestampNs)
                return .needMore(consumed: off, needed: 2 - remaining)
            }
            let length = Int(be16(b, off))
            if length == 0 {
                host.violation("zero-length DNS message over TCP")
                host.count("dns.empty_tcp_messages")
                off += 2
                continue
            }
            if remaining < 2 + length {
                let headerEnd = min(b.count, off + 2 + 12)
                partial[chunk.direction] = (
                    Array(UnsafeRawBufferPointer(rebasing: b[(off + 2)..<headerEnd])), remaining - 2, length,
                    off == 0 ? chunk.firstTimestampNs : chunk.lastTimestampNs
                )
                return .needMore(consumed: off, needed: 2 + length - remaining)
            }
            let ts = off == 0 ? chunk.firstTimestampNs : chunk.lastTimestampNs
            let message = DNSMessage.parse(UnsafeRawBufferPointer(rebasing: b[(off + 2)..<(off + 2 + length)]))
            handle(Seen(message: message, timestampNs: ts, wireSize: length + 2, direction: chunk.direction))
            off += 2 + length
        }
    }

    public func datagram(_ chunk: Chunk) -> ParseResult {
        let message = DNSMessage.parse(chunk.bytes)
        handle(Seen(message: message, timestampNs: chunk.firstTimestampNs, wireSize: chunk.bytes.count,
                    direction: chunk.direction))
        return .ok(consumed: chunk.bytes.count)
    }

    public func endOfStream(direction: Direction) {
        guard let p = partial.removeValue(forKey: direction) else { return }
        var message = p.header.withUnsafeBytes { DNSMessage.parse($0) }
        message.size = p.have
        message.error = p.want == 2 && p.header.isEmpty
            ? "TCP length prefix cut by the end of the stream"
            : "TCP message cut by the end of the stream: \(p.have) of \(p.want) bytes"
        message.truncated = true
        message.questions = []
        handle(Seen(message: message, timestampNs: p.ts, wireSize: p.have + 2, direction: direction))
    }

    public func tick(nowNs: Int64) {
        guard !pending.isEmpty else { return }
        var kept: [Seen] = []
        for q in pending {
            if nowNs - q.timestampNs >= DNSLimits.queryTimeoutNs {
                emit(query: q, response: nil, extra: [.requestOnly, .timedOut])
            } else {
                kept.append(q)
            }
        }
        pending = kept
    }

    public func close(reason: CloseReason) {
        for q in pending { emit(query: q, response: nil, extra: [.requestOnly]) }
        pending.removeAll()
    }

    // MARK: Matching

    func handle(_ seen: Seen) {
        let m = seen.message
        if let error = m.error {
            host.violation(error)
            host.count("dns.malformed_messages")
        } else if !confirmed {
            confirmed = true
            host.confirm()
        }
        guard m.headerComplete else {
            // Nothing to match on: a lone entry on the side it came from.
            if seen.direction == .clientToServer {
                emit(query: seen, response: nil, extra: [.requestOnly])
            } else {
                emit(query: nil, response: seen, extra: [.responseOnly])
            }
            return
        }
        if !m.isResponse {
            pending.append(seen)
            if pending.count > DNSLimits.maxPending {
                host.count("dns.pending_overflow")
                emit(query: pending.removeFirst(), response: nil, extra: [.requestOnly])
            }
            return
        }
        let q = m.questions.first
        let index = pending.firstIndex { p in
            guard p.message.id == m.id else { return false }
            guard let q, let pq = p.message.questions.first else { return true }
            return pq.type == q.type && asciiLowercased(pq.name) == asciiLowercased(q.name)
        } ?? pending.firstIndex { $0.message.id == m.id }
        if let index {
            let query = pending.remove(at: index)
            emit(query: query, response: seen, extra: [])
        } else {
            emit(query: nil, response: seen, extra: [.responseOnly])
        }
    }

    // MARK: Entries

    func emit(query: Seen?, response: Seen?, extra: EntryFlags) {
        var flags = extra
        for s in [query, response] {
            guard let s else { continue }
            if s.message.error != nil { flags.insert(.malformed) }
            if s.message.truncated { flags.insert(.truncated) }
        }
        var summary = EntrySummary(flags: flags)
        summary.requestTimestampNs = query?.timestampNs ?? 0
        summary.responseTimestampNs = response?.timestampNs ?? 0
        summary.requestSize = UInt64(query?.wireSize ?? 0)
        summary.responseSize = UInt64(response?.wireSize ?? 0)
        let lead = query?.message ?? response!.message
        let question = lead.questions.first ?? response?.message.questions.first
        if let question {
            summary.method = typeName(question.type)
        } else if lead.headerComplete {
            summary.method = opcodeName(lead.opcode)
        }
        if let r = response?.message, r.headerComplete {
            summary.statusText = rcodeName(r.rcode)
            let n = r.ancount
            let head = question.map { "\(typeName($0.type)) \($0.name)" } ?? opcodeName(r.opcode)
            summary.summary = "\(head) -> \(rcodeName(r.rcode)) \(n) answer\(n == 1 ? "" : "s")"
        } else if let question {
            summary.summary = question.name
        } else if let error = lead.error {
            summary.summary = error
        }
        if !host.emit(summary, { b in
            if let query { b.object("request") { b in writeMessage(&b, query.message) } }
            if let response { b.object("response") { b in writeMessage(&b, response.message) } }
        }) {
            host.count("dns.entries_refused")
        }
    }
}

func asciiLowercased(_ s: String) -> String {
    var bytes = Array(s.utf8)
    for i in bytes.indices where bytes[i] >= 0x41 && bytes[i] <= 0x5A { bytes[i] |= 0x20 }
    return String(decoding: bytes, as: UTF8.self)
}
