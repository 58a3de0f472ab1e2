// Turning a finished stream into an entry. The request and response objects
// use the HTTP/1 plugin's HAR field names (method, url, path, httpVersion,
// headers, queryString, postData / status, statusText, headers, content,
// redirectURL, headersSize, bodySize, trailers) so one KFL query works across
// HTTP/1 and HTTP/2; gRPC entries add the service, method, messages and
// status. The field list is in docs/protocols/http2.md and grpc.md.
//
// GraphQL (GraphQL.swift): a stream whose request carries GraphQL is an entry
// of protocol index 2 (`graphql`), summary = the GraphQL summary
// (`query GetUser { user }`), with request.graphql and response.graphql
// written by GraphQLEntries next to the HTTP/2 fields, as HTTP/1 does.

import PluginZlib
import GraphQLEntries
import PluginKit

extension HTTP2Dissector {
    /// Emits one stream.
    func emit(_ s: H2Stream) {
        let req = s.request
        let resp = s.response
        var flags = s.flags
        let hasReq = req.headers.present
        let hasResp = resp.headers.present
        if !hasReq { flags.insert(.responseOnly) }
        if !hasResp { flags.insert(.requestOnly) }
        if req.body.cut || resp.body.cut { flags.insert(.truncated) }
        if (hasReq && !req.ended) || (hasResp && !resp.ended) || req.grpc.incomplete || resp.grpc.incomplete {
            if s.rst == nil && s.goaway == nil { flags.insert(.truncated) }
        }
        var summary = EntrySummary(flags: flags)
        summary.protocolIndex = s.isGRPC ? 1 : 0
        summary.method = req.headers.value(":method")
        summary.summary = req.headers.value(":path")
        let graphQL = graphQLRequest(s, method: summary.method, path: summary.summary)
        if let graphQL {
            summary.protocolIndex = Self.graphQLProtocolIndex
            summary.summary = graphQL.summary()
        }
        let status = statusCode(resp.headers)
        let grpcStatus = s.isGRPC ? grpcStatusValue(s) : nil
        if let status {
            summary.status = Int32(status)
            summary.statusText = grpcStatus.map { grpcStatusName($0) } ?? reasonPhrase(status)
        }
        summary.requestTimestampNs = req.firstTs
        summary.responseTimestampNs = resp.firstTs
        summary.requestSize = req.wireSize
        summary.responseSize = resp.wireSize
        let http1Answer = s.upgraded && !s.upgradeAccepted
        host.emit(summary) { b in
            b.uint("streamId", UInt64(s.id))
            if hasReq || req.body.size > 0 {
                b.object("request") { b in
                    self.writeRequest(s, http1: s.upgraded, &b)
                    if let graphQL { GraphQLEntryWriter.write(graphQL, to: &b) }
                }
            }
            if hasResp || resp.body.size > 0 {
                b.object("response") { b in
                    if graphQL != nil {
                        let body = self.shownBody(resp)
                        self.writeResponse(s, http1: http1Answer, grpcStatus: grpcStatus, body: body, &b)
                        GraphQLEntryWriter.write(self.graphQLResponse(body), to: &b)
                    } else {
                        self.writeResponse(s, http1: http1Answer, grpcStatus: grpcStatus, &b)
                    }
                }
            }
            if s.isGRPC { self.writeStreaming(s, &b) }
            if self.midstream { b.bool("midstream", true) }
            if s.upgraded {
                b.object("upgrade") { b in
                    b.string("protocol", "h2c")
                    b.bool("accepted", s.upgradeAccepted)
                }
            }
            if s.pushedBy != 0 { b.uint("pushPromisedOn", UInt64(s.pushedBy)) }
            if let r = s.rst {
                b.object("rstStream") { b in
                    b.uint("errorCode", UInt64(r.code))
                    b.string("error", errorCodeName(r.code))
                    b.string("sentBy", r.byServer ? "server" : "client")
                }
            }
            if let g = s.goaway {
                b.object("goaway") { b in
                    b.uint("lastStreamId", UInt64(g.lastStreamID))
                    b.uint("errorCode", UInt64(g.code))
                    b.string("error", errorCodeName(g.code))
                    b.string("sentBy", g.byServer ? "server" : "client")
                }
            }
            let hpackErrors = s.errors.filter { $0.hasPrefix("hpack") || $0.hasPrefix("header block") }
            let otherErrors = s.errors.filter { !($0.hasPrefix("hpack") || $0.hasPrefix("header block")) }
            if !hpackErrors.isEmpty { b.array("hpackErrors") { b in for e in hpackErrors { b.string(nil, e) } } }
            if !otherErrors.isEmpty || !self.connectionErrors.isEmpty {
                b.array("errors") { b in
                    for e in otherErrors { b.string(nil, e) }
                    for e in self.connectionErrors { b.string(nil, e) }
                }
            }
        }
        connectionErrors.removeAll(keepingCapacity: true)
    }

    // MARK: Request / response

    private func writeRequest(_ s: H2Stream, http1: Bool, _ b: inout EntryBuilder) {
        let m = s.request
        let h = m.headers
        let path = h.value(":path") ?? ""
        let method = h.value(":method") ?? ""
        b.string("method", method)
        let scheme = h.value(":scheme") ?? "http"
        let authority = h.value(":authority") ?? h.value("host") ?? serverAddress()
        b.string("url", path.hasPrefix("/") ? "\(scheme)://\(authority)\(path)" : path)
        let q = path.firstIndex(of: "?")
        b.string("path", q.map { String(path[..<$0]) } ?? path)
        b.string("httpVersion", http1 ? "HTTP/1.1" : "HTTP/2")
        writeFields("headers", h, &b)
        b.array("queryString") { b in
            if let q { writeQuery(String(path[path.index(after: q)...]), &b) }
        }
        if s.isGRPC {
            writeGRPCCall(path, &b)
            writeMessages(m, encoding: h.value("grpc-encoding"), &b)
        } else if m.body.size > 0 || method == "POST" || method == "PUT" || method == "PATCH" {
            b.object("postData") { b in self.writeBody(m, form: true, &b) }
        }
        b.int("headersSize", Int64(h.wireSize))
        b.uint("bodySize", m.body.size)
        if m.trailers.present { writeFields("trailers", m.trailers, &b) }
        if h.truncated { b.bool("headersTruncated", true) }
    }

    private func writeResponse(_ s: H2Stream, http1: Bool, grpcStatus: Int?, body: ShownBody? = nil, _ b: inout EntryBuilder) {
        let m = s.response
        let h = m.headers
        let status = statusCode(h)
        b.int("status", Int64(status ?? 0))
        b.string("statusText", status.map(reasonPhrase) ?? "")
        b.string("httpVersion", http1 ? "HTTP/1.1" : "HTTP/2")
        writeFields("headers", h, &b)
        if s.isGRPC {
            writeMessages(m, encoding: h.value("grpc-encoding"), &b)
            if let grpcStatus {
                b.int("grpcStatus", Int64(grpcStatus))
                b.string("grpcStatusName", grpcStatusName(grpcStatus))
                let message = m.trailers.value("grpc-message") ?? (m.trailers.present ? nil : h.value("grpc-message"))
                if let message { b.string("grpcMessage", percentDecoded(message)) }
                b.bool("trailersOnly", !m.trailers.present)
            }
        } else {
            b.object("content") { b in self.writeBody(m, body: body, &b) }
        }
        b.string("redirectURL", h.value("location") ?? "")
        b.int("headersSize", Int64(h.wireSize))
        b.uint("bodySize", m.body.size)
        if m.trailers.present { writeFields("trailers", m.trailers, &b) }
        if !m.interimStatuses.isEmpty {
            b.array("interimResponses") { b in
                for st in m.interimStatuses { b.object(nil) { b in b.int("status", Int64(st)) } }
            }
        }
        if h.truncated { b.bool("headersTruncated", true) }
    }

    /// grpc-status from the trailers, or from the headers of a trailers-only response.
    func grpcStatusValue(_ s: H2Stream) -> Int? {
        let r = s.response
        let v = r.trailers.value("grpc-status") ?? r.headers.value("grpc-status")
        return v.flatMap { Int($0.trimmingSpaces) }
    }

    private func serverAddress() -> String {
        var out: [UInt8] = []
        flow.server.withAddressBytes { a in
            if a.count == 4 {
                out.append(contentsOf: a.map { String($0) }.joined(separator: ".").utf8)
            } else {
                out.append(contentsOf: "[".utf8)
                out.append(contentsOf: stride(from: 0, to: 16, by: 2).map { String(Int(a[$0]) << 8 | Int(a[$0 + 1]), radix: 16) }.joined(separator: ":").utf8)
                out.append(contentsOf: "]".utf8)
            }
        }
        return String(decoding: out, as: UTF8.self) + ":\(flow.server.port)"
    }

    private func writeFields(_ key: StaticString, _ l: HeaderList, _ b: inout EntryBuilder) {
        b.array(key) { b in
            for i in l.fields.indices {
                l.withField(i) { n, v in
                    b.object(nil) { b in
                        b.string("name", bytes: n)
                        b.string("value", bytes: v)
                    }
                }
            }
        }
    }

    // MARK: Bodies

    /// A body as shown: the bytes kept, inflated when the content-coding is
    /// gzip / x-gzip / deflate (bounded by the display and decode caps).
    struct ShownBody {
        var bytes: [UInt8]
        var truncated: Bool
        var decoded = false
        var decodeError: String?
        /// `content-encoding`, trimmed and lowercased.
        var coding: String?
        /// The bytes are the body itself (no coding, or one decoded).
        var readable: Bool { coding == nil || decoded }
    }

    func shownBody(_ m: MessageHalf) -> ShownBody {
        let coding = m.headers.value("content-encoding")?.trimmingSpaces.lowercased()
        var d = ShownBody(bytes: m.body.raw, truncated: m.body.cut, coding: coding)
        if let coding, coding == "gzip" || coding == "x-gzip" || coding == "deflate", !m.body.raw.isEmpty {
            scratch.removeAll(keepingCapacity: true)
            var cut = false
            let wrapped = coding != "deflate" || looksLikeZlibHeader(m.body.raw[0], m.body.raw.count > 1 ? m.body.raw[1] : 0)
            var decodeError = m.body.raw.withUnsafeBytes {
                inflater.inflateAll($0, wrapped: wrapped, into: &scratch, cap: limits.maxBodyBytes,
                                    workCap: limits.maxDecodedBytes, cut: &cut)
            }
            if m.body.cut, decodeError == "compressed data ends early" { decodeError = nil }
            d.decodeError = decodeError
            if decodeError == nil || !scratch.isEmpty {
                // Output up to a missing end (a flushed but unfinished stream) is still the body.
                d.decoded = true
                d.bytes = scratch
                d.truncated = d.truncated || cut
            }
        }
        return d
    }

    /// `postData` / `content`: mimeType, size, text (or base64 with "encoding"),
    /// and for gzip/deflate bodies the decoding facts. `body` when already decoded.
    private func writeBody(_ m: MessageHalf, form: Bool = false, body: ShownBody? = nil, _ b: inout EntryBuilder) {
        let mime = m.headers.value("content-type") ?? ""
        b.string("mimeType", mime)
        let d = body ?? shownBody(m)
        let coding = d.coding
        let shown = d.bytes
        let truncated = d.truncated
        let decoded = d.decoded
        let decodeError = d.decodeError
        b.uint("size", decoded ? UInt64(shown.count) : m.body.size)
        shown.withUnsafeBytes { p in
            guard !p.isEmpty else { return }
            if coding != nil && !decoded && decodeError != nil {
                b.bytes("text", p)
                b.string("encoding", "base64")
            } else if let n = textLength(p, allowCutTail: truncated) {
                let text = UnsafeRawBufferPointer(rebasing: p[0..<n])
                b.string("text", bytes: text)
                if form, mime.lowercased().hasPrefix("application/x-www-form-urlencoded") {
                    b.array("params") { b in writeQuery(String(decoding: text, as: UTF8.self), &b) }
                }
            } else {
                b.bytes("text", p)
                b.string("encoding", "base64")
            }
        }
        if truncated { b.bool("truncated", true) }
        if let coding {
            b.string("contentEncoding", coding)
            b.bool("decoded", decoded)
            if decoded { b.uint("encodedSize", m.body.size) }
            if let decodeError { b.string("decodeError", decodeError) }
        }
    }

    // MARK: gRPC

    private func writeGRPCCall(_ path: String, _ b: inout EntryBuilder) {
        // :path is /package.Service/Method
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        if parts.count == 2 {
            b.string("service", String(parts[0]))
            b.string("rpcMethod", String(parts[1].split(separator: "?").first ?? parts[1]))
        }
    }

    private func writeMessages(_ m: MessageHalf, encoding: String?, _ b: inout EntryBuilder) {
        let g = m.grpc
        let enc = encoding?.trimmingSpaces.lowercased()
        if let enc { b.string("grpcEncoding", enc) }
        b.array("messages") { b in
            g.store.withUnsafeBytes { store in
                for msg in g.messages {
                    let kept = UnsafeRawBufferPointer(rebasing: store[msg.offset..<(msg.offset + msg.kept)])
                    b.object(nil) { b in self.writeMessage(msg, kept, encoding: enc, &b) }
                }
            }
        }
        if g.dropped > 0 { b.int("messagesNotShown", Int64(g.dropped)) }
    }

    private func writeMessage(_ msg: GRPCMessage, _ kept: UnsafeRawBufferPointer, encoding: String?, _ b: inout EntryBuilder) {
        b.bool("compressed", msg.compressed)
        b.int("length", Int64(msg.declared))
        let complete = msg.received == msg.declared
        if !complete { b.bool("incomplete", true) }
        if msg.kept < msg.received { b.bool("truncated", true) }
        if msg.compressed {
            guard let encoding, encoding == "gzip" || encoding == "deflate", complete, msg.kept == msg.declared else {
                b.bool("decoded", false)
                b.bytes("data", kept)
                return
            }
            scratch.removeAll(keepingCapacity: true)
            var cut = false
            let err = inflater.inflateAll(kept, wrapped: true, into: &scratch, cap: limits.maxMessageBytes,
                                          workCap: limits.maxDecodedBytes, cut: &cut)
            if let err {
                b.bool("decoded", false)
                b.string("decodeError", err)
                b.bytes("data", kept)
                return
            }
            b.bool("decoded", true)
            b.int("decodedLength", Int64(scratch.count))
            if cut { b.bool("truncated", true) }
            scratch.withUnsafeBytes { p in self.writePayload(p, &b) }
            return
        }
        writePayload(kept, &b)
    }

    private func writePayload(_ p: UnsafeRawBufferPointer, _ b: inout EntryBuilder) {
        b.bytes("data", p)
        let pb = ProtobufWriter()
        if p.isEmpty || pb.isMessage(p) {
            b.array("protobuf") { b in pb.write(p, depth: 0, &b) }
        }
    }

    /// The RPC kind guessed from the message counts (no schema is known).
    private func writeStreaming(_ s: H2Stream, _ b: inout EntryBuilder) {
        let up = s.request.grpc.messages.count + s.request.grpc.dropped
        let down = s.response.grpc.messages.count + s.response.grpc.dropped
        let kind: StaticString =
            up > 1 && down > 1 ? "bidiStreaming" : up > 1 ? "clientStreaming" : down > 1 ? "serverStreaming" : "unary"
        b.string("streaming", kind.description)
    }
}

/// `name=value&...` pairs as `{name, value}`, percent-decoded, `+` as space.
private func writeQuery(_ q: String, _ b: inout EntryBuilder) {
    for pair in q.split(separator: "&", omittingEmptySubsequences: true) {
        let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        b.object(nil) { b in
            b.string("name", percentDecoded(String(kv[0]).replacingPlus))
            b.string("value", kv.count > 1 ? percentDecoded(String(kv[1]).replacingPlus) : "")
        }
    }
}

extension String {
    fileprivate var replacingPlus: String { String(map { $0 == "+" ? " " : $0 }) }
}

/// The standard reason phrase of a status code (HTTP/2 sends none).
func reasonPhrase(_ code: Int) -> String {
    switch code {
    case 100: return "Continue"
    case 101: return "Switching Protocols"
    case 103: return "Early Hints"
    case 200: return "OK"
    case 201: return "Created"
    case 202: return "Accepted"
    case 204: return "No Content"
    case 206: return "Partial Content"
    case 301: return "Moved Permanently"
    case 302: return "Found"
    case 303: return "See Other"
    case 304: return "Not Modified"
    case 307: return "Temporary Redirect"
    case 308: return "Permanent Redirect"
    case 400: return "Bad Request"
    case 401: return "Unauthorized"
    case 403: return "Forbidden"
    case 404: return "Not Found"
    case 405: return "Method Not Allowed"
    case 409: return "Conflict"
    case 413: return "Content Too Large"
    case 415: return "Unsupported Media Type"
    case 416: return "Range Not Satisfiable"
    case 429: return "Too Many Requests"
    case 500: return "Internal Server Error"
    case 501: return "Not Implemented"
    case 502: return "Bad Gateway"
    case 503: return "Service Unavailable"
    case 504: return "Gateway Timeout"
    default: return ""
    }
}
