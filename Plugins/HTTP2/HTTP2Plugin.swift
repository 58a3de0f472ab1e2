// The built-in HTTP/2 and gRPC dissector plugin: metadata, limits, probe and
// the exported entry symbol. One library reports three protocols (http2, grpc
// and graphql) because gRPC and GraphQL ride on HTTP/2: a stream is known to be
// gRPC only from its content-type, GraphQL only from its request body or query,
// after the connection has been given to a plugin, and all streams share the
// connection's HPACK state. The connection state machine is in
// HTTP2Dissector.swift; the exported symbol in Plugins/HTTP2Export.

import PluginAPI
import PluginKit

/// Caps that keep one connection's memory and work bounded on hostile input.
public struct HTTP2Limits: Sendable {
    /// Largest non-DATA frame kept whole (larger ones are skipped and noted).
    public var maxFrameBytes = 128 << 10
    /// Largest header block assembled from HEADERS + CONTINUATION.
    public var maxHeaderBlockBytes = 256 << 10
    /// Largest decoded header list kept per block (name + value bytes).
    public var maxHeaderListBytes = 64 << 10
    /// Most header fields kept per block.
    public var maxHeaderFields = 256
    /// Largest HPACK dynamic table we keep per direction.
    public var maxHeaderTableSize = 64 << 10
    /// Most streams open at once (beyond, the oldest is emitted as it is).
    public var maxOpenStreams = 256
    /// Most body bytes kept per message (raw, and decoded for display).
    public var maxBodyBytes = 64 << 10
    /// Most bytes inflated per body or message.
    public var maxDecodedBytes = 8 << 20
    /// Most bytes kept per gRPC message.
    public var maxMessageBytes = 64 << 10
    /// Most gRPC message bytes kept per stream direction.
    public var maxGRPCStoreBytes = 256 << 10
    /// Most gRPC messages listed per stream direction (the rest are counted).
    public var maxMessages = 128
    /// A stream idle this long (capture time) is emitted, flagged timed out.
    public var streamTimeoutNs: Int64 = 60_000_000_000
    /// Longest HTTP/1.1 head of an upgrade exchange.
    public var maxHTTP1HeadBytes = 16 << 10

    public init() {}
    public static let standard = HTTP2Limits()
}

extension HTTP2Dissector {
    public static let metadata = PluginMetadata(
        name: "http2",
        version: "1.0.0",
        vendor: "kubeshark-swift",
        license: "Apache-2.0",
        description: "HTTP/2 cleartext (prior knowledge, Upgrade: h2c, mid-connection) with HPACK, "
            + "gRPC: unary and streaming calls, messages decoded as raw protobuf; GraphQL",
        referenceURL: "https://datatracker.ietf.org/doc/html/rfc9113",
        layer4: .tcp,
        flags: [.acceptsGaps],
        defaultPorts: [50051...50051],
        priority: 20,
        probeMinBytes: 1,
        probeMaxBytes: 16 << 10,
        maxBufferBytes: UInt32(HTTP2Limits.standard.maxFrameBytes + (64 << 10)),
        protocols: [
            ProtocolInfo(
                name: "http2", longName: "Hypertext Transfer Protocol Version 2", abbreviation: "HTTP/2",
                version: "2", macro: "http2", backgroundColor: "#244c5a", foregroundColor: "#ffffff",
                referenceURL: "https://datatracker.ietf.org/doc/html/rfc9113"),
            ProtocolInfo(
                name: "grpc", longName: "gRPC Remote Procedure Calls", abbreviation: "gRPC",
                version: "1", macro: "grpc", backgroundColor: "#1f7a8c", foregroundColor: "#ffffff",
                referenceURL: "https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md"),
            // GraphQL carried by HTTP/2 (as the HTTP/1 plugin's index 2 for HTTP/1.x):
            // matched by `gql` and, being HTTP/2 too, by `http2`.
            ProtocolInfo(
                name: "graphql", longName: "GraphQL over HTTP/2", abbreviation: "GQL",
                version: "HTTP/2", macro: "gql", extraMacros: ["http2"], backgroundColor: "#e10098",
                foregroundColor: "#ffffff", referenceURL: "https://spec.graphql.org/October2021/"),
        ]
    )

    /// Confidence above the HTTP/1 plugin's 75 for an `Upgrade: h2c` request, so
    /// this plugin (which parses that request itself) wins it.
    public static let upgradeConfidence: UInt32 = 90

    /// The client preface → 100; an HTTP/1.1 request with `Upgrade: h2c` and
    /// `HTTP2-Settings` → 90 (MAYBE while its head is incomplete); a run of
    /// well-formed frames (a capture that began mid-connection) → 50.
    public static func probe(flow: Flow, chunk: Chunk) -> ProbeResult {
        let b = chunk.bytes
        guard !b.isEmpty else { return .maybe(needBytes: UInt32(connectionPreface.count)) }
        let fromClient = chunk.direction == .clientToServer
        let n = min(b.count, connectionPreface.count)
        if connectionPreface.withUnsafeBytes({ $0.prefix(n).elementsEqual(b.prefix(n)) }) {
            if n < connectionPreface.count { return .maybe(needBytes: UInt32(connectionPreface.count)) }
            return .yes(confidence: ProbeResult.magic, reversed: !fromClient)
        }
        if looksLikeHTTP1Request(b) {
            guard fromClient else { return .no }
            switch isH2CUpgradeRequest(b, max: Int(metadata.probeMaxBytes)) {
            case true?: return .yes(confidence: upgradeConfidence)
            case false?: return .no
            case nil: return .maybe()
            }
        }
        var need = 0
        guard let frames = plausibleFrames(b, need: &need) else { return .no }
        if frames == 0 { return need <= Int(metadata.probeMaxBytes) ? .maybe(needBytes: UInt32(need)) : .no }
        return .yes(confidence: ProbeResult.plausible)
    }
}
