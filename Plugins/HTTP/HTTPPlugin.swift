// The built-in HTTP/1.x dissector plugin: metadata, probe and the exported
// entry symbol. The stream state machine is in HTTP1Dissector.swift.

import PluginAPI
import PluginKit

@_cdecl("ks_plugin_v1")
public func ks_plugin_v1() -> UnsafePointer<ks_plugin_descriptor> {
    PluginExport.descriptor(for: HTTP1Dissector.self)
}

/// Caps that keep one stream's memory and work bounded on hostile input.
public struct HTTP1Limits: Sendable {
    /// Largest header block (start line + fields + empty line).
    public var maxHeaderBytes = 64 << 10
    /// Most header fields per message (and trailer fields).
    public var maxHeaders = 100
    /// Most body bytes shown per message (decoded text, or raw bytes when not decoded).
    public var maxBodyBytes = 64 << 10
    /// Most bytes inflated per body (the decoded size is a lower bound beyond it).
    public var maxDecodedBytes = 8 << 20
    /// Most requests waiting for a response per stream.
    public var maxPendingRequests = 1024
    /// Most bytes kept for requests waiting for a response per stream.
    public var maxPendingBytes = 1 << 20
    /// A request unanswered this long (capture time) is emitted as timed out.
    public var requestTimeoutNs: Int64 = 60_000_000_000
    /// Most 1xx responses recorded per exchange.
    public var maxInterimResponses = 8
    /// Longest chunk-size line (with extensions).
    public var maxChunkLineBytes = 4096
    /// Largest trailer section.
    public var maxTrailerBytes = 16 << 10
    /// Longest start line the resync scanner waits for.
    public var maxResyncLineBytes = 8192

    public init() {}
    public static let standard = HTTP1Limits()
}

extension HTTP1Dissector {
    public static let metadata = PluginMetadata(
        name: "http",
        version: "1.0.0",
        vendor: "kubeshark-swift",
        license: "Apache-2.0",
        description: "HTTP/1.0 and HTTP/1.1: pipelining, chunked and gzip/deflate bodies, 1xx, upgrades, GraphQL",
        referenceURL: "https://datatracker.ietf.org/doc/html/rfc9112",
        layer4: .tcp,
        flags: [.acceptsGaps],
        defaultPorts: [80...80, 81...81, 591...591, 3000...3000, 5000...5000, 8000...8099, 8888...8888, 9080...9080],
        priority: 10,
        probeMinBytes: 1,
        probeMaxBytes: 4096,
        maxBufferBytes: 128 << 10,
        protocols: [
            ProtocolInfo(
                name: "http", longName: "Hypertext Transfer Protocol -- HTTP/1.1", abbreviation: "HTTP",
                version: "1.1", macro: "http", backgroundColor: "#205cf5", foregroundColor: "#ffffff",
                referenceURL: "https://datatracker.ietf.org/doc/html/rfc9112"),
            ProtocolInfo(
                name: "http", longName: "Hypertext Transfer Protocol -- HTTP/1.0", abbreviation: "HTTP",
                version: "1.0", macro: "http", backgroundColor: "#205cf5", foregroundColor: "#ffffff",
                referenceURL: "https://datatracker.ietf.org/doc/html/rfc1945"),
            // GraphQL carried by HTTP/1.x: matched by `gql` and, being HTTP too, by `http`.
            ProtocolInfo(
                name: "graphql", longName: "GraphQL over HTTP/1.1", abbreviation: "GQL",
                version: "1.1", macro: "gql", extraMacros: ["http"], backgroundColor: "#e10098",
                foregroundColor: "#ffffff", referenceURL: "https://spec.graphql.org/October2021/"),
        ]
    )

    /// Request line from the client (or status line from the server): 75 when a
    /// whole line is there, 50 on a consistent prefix with a complete method,
    /// MAYBE while the bytes are still inside a known method name.
    public static func probe(flow: Flow, chunk: Chunk) -> ProbeResult {
        let b = chunk.bytes
        let fromClient = chunk.direction == .clientToServer
        guard !b.isEmpty else { return .maybe(needBytes: 4) }
        let limit = Int(metadata.probeMaxBytes)
        var need: Int?

        let status = checkStatusLine(b, limit: limit)
        switch status {
        case .complete:
            return .yes(confidence: ProbeResult.syntax, reversed: fromClient)
        case .incomplete:
            if b.count >= 12 { return .yes(confidence: ProbeResult.syntax, reversed: fromClient) }
            need = 12
        case .invalid:
            break
        }

        switch checkRequestLine(b, limit: limit, knownOnly: true) {
        case .complete:
            return .yes(confidence: ProbeResult.syntax, reversed: !fromClient)
        case .incomplete:
            if find(SP, in: b, from: 0, to: min(b.count, maxMethodLength + 1)) != nil {
                // Method and SP seen. A version word at the end is a whole line minus its CR LF.
                var e = min(b.count, limit)
                if e > 0, b[e - 1] == CR { e -= 1 }
                if e == b.count || e == b.count - 1, parseRequestLine(slice(b, 0, e)) != nil {
                    return .yes(confidence: ProbeResult.syntax, reversed: !fromClient)
                }
                return .yes(confidence: ProbeResult.plausible, reversed: !fromClient)
            }
            if let n = knownMethodNeed(b) { need = min(need ?? n, n) }
        case .invalid:
            break
        }
        if let need { return .maybe(needBytes: UInt32(need)) }
        return .no
    }
}
