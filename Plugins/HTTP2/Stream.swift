// The state of one HTTP/2 stream: a request half and a response half, each
// with its header blocks, body and gRPC messages. Stream objects are pooled
// by the connection, so a busy connection reuses their buffers.

import PluginKit

/// One direction of one stream.
final class MessageHalf {
    let headers = HeaderList()
    let trailers = HeaderList()
    /// :status of 1xx responses before the final one.
    var interimStatuses: [Int] = []
    var body = BodyCollector()
    var grpc = GRPCReader()
    /// Capture time of the first and last frame.
    var firstTs: Int64 = 0
    var lastTs: Int64 = 0
    /// Frame bytes on the wire (headers included).
    var wireSize: UInt64 = 0
    /// END_STREAM seen.
    var ended = false
    /// HEADERS seen (the first block of this half).
    var started: Bool { headers.present }

    func reset() {
        headers.reset()
        trailers.reset()
        interimStatuses.removeAll(keepingCapacity: true)
        body.reset()
        grpc.reset()
        firstTs = 0
        lastTs = 0
        wireSize = 0
        ended = false
    }

    /// Accounts a frame of `size` bytes at `ts`.
    @inline(__always)
    func saw(frameBytes size: Int, at ts: Int64) {
        if firstTs == 0 { firstTs = ts }
        lastTs = ts
        wireSize &+= UInt64(size)
    }
}

/// How a stream ended abnormally.
struct StreamReset {
    var code: UInt32
    var byServer: Bool
}

/// One HTTP/2 stream (request/response exchange).
final class H2Stream {
    var id: UInt32 = 0
    let request = MessageHalf()
    let response = MessageHalf()
    /// The request (or, midstream, the response) says application/grpc.
    var isGRPC = false
    var rst: StreamReset?
    /// A GOAWAY named a last stream id below this one.
    var goaway: (code: UInt32, lastStreamID: UInt32, byServer: Bool)?
    /// The stream was promised by PUSH_PROMISE on this stream.
    var pushedBy: UInt32 = 0
    /// Stream 1 continuing an HTTP/1.1 `Upgrade: h2c` request; `upgradeAccepted`
    /// is false when the server answered in HTTP/1.1.
    var upgraded = false
    var upgradeAccepted = true
    var flags: EntryFlags = []
    /// Problems (HPACK, framing) for the entry.
    var errors: [String] = []

    func reset(id: UInt32) {
        self.id = id
        request.reset()
        response.reset()
        isGRPC = false
        rst = nil
        goaway = nil
        pushedBy = 0
        upgraded = false
        upgradeAccepted = true
        flags = []
        errors.removeAll(keepingCapacity: true)
    }

    func note(_ e: String) {
        if errors.count < 32 { errors.append(e) }
    }


    func half(_ d: Direction) -> MessageHalf { d == .clientToServer ? request : response }
}
