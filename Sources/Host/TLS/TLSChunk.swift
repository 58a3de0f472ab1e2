import CTLSProbe

/// Plaintext one process moved through one OpenSSL call (or a piece of a large
/// call), as the TLS uprobes saw it.
public struct TLSChunk: Sendable {
    /// Wall-clock time of the call's return.
    public var timestampNs: Int64
    public var pid: Int32
    public var tid: Int32
    /// The call's `SSL *`: one TLS connection of the process.
    public var ssl: UInt64
    /// The socket under the connection, -1 when not learned.
    public var fd: Int32
    /// The process name (`comm`).
    public var process: String
    /// Network namespace inode of the process.
    public var netns: UInt32
    /// True when the process wrote (sent) the bytes, false when it read them.
    public var outgoing: Bool
    /// Bytes the whole call moved, and where this chunk starts in them.
    public var callLength: Int
    public var offset: Int
    /// Whether the process's end of the socket is a listening port (it is the server);
    /// nil when unknown. Set by `TLSTracer`.
    public var localIsServer: Bool?
    /// The captured bytes (fewer than the call's when it was larger than the probe copies),
    /// in a pooled buffer (see `TLSPayloadPool`).
    var payload: TLSPayload
    /// A copy of the captured bytes.
    public var data: [UInt8] { payload.withBytes { Array($0) } }
    /// How many bytes were captured.
    public var count: Int { payload.count }
    /// The socket's ends (process side first); nil when the fd is not a TCP/IP socket.
    var local: (address: IPAddress, port: UInt16)?
    var remote: (address: IPAddress, port: UInt16)?

    /// Bytes of this chunk's span the probe could not copy (a gap in the stream).
    var missing: Int {
        let chunk = Int(KS_TLS_CHUNK)
        var expected = min(chunk, callLength - offset)
        // The last chunk of a call larger than the probe copies also stands for the rest.
        if offset == chunk * (Int(KS_TLS_MAX_CHUNKS) - 1) { expected = callLength - offset }
        return max(0, expected - payload.count)
    }

    /// The captured bytes, valid for the call.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try payload.withBytes(body)
    }

    /// A chunk from a ring buffer event, its bytes copied into a buffer of `pool`;
    /// `process` is the event's `comm` (see `TLSProcessNames`).
    init(event e: UnsafePointer<ks_tls_event>, size: Int, clockOffsetNs: Int64, process: String,
         pool: TLSPayloadPool = .shared) {
        timestampNs = Int64(bitPattern: e.pointee.timestamp_ns) &+ clockOffsetNs
        pid = Int32(bitPattern: e.pointee.pid)
        tid = Int32(bitPattern: e.pointee.tid)
        ssl = e.pointee.ssl
        fd = e.pointee.fd
        netns = e.pointee.netns
        outgoing = e.pointee.direction == UInt8(KS_TLS_DIR_WRITE)
        callLength = Int(e.pointee.length)
        offset = Int(e.pointee.offset)
        self.process = process
        let header = ks_tls_event_header_size()
        let captured = max(0, min(Int(e.pointee.captured), size - header, Int(KS_TLS_CHUNK)))
        payload = pool.take(copying: UnsafeRawBufferPointer(start: UnsafeRawPointer(e) + header, count: captured))
        let width = e.pointee.family == 2 ? 4 : e.pointee.family == 10 ? 16 : 0
        if width > 0 {
            let l = Swift.withUnsafeBytes(of: e.pointee.local_addr) { IPAddress(networkBytes: UnsafeRawBufferPointer(rebasing: $0.prefix(width))) }
            let r = Swift.withUnsafeBytes(of: e.pointee.remote_addr) { IPAddress(networkBytes: UnsafeRawBufferPointer(rebasing: $0.prefix(width))) }
            if let l, let r {
                local = (l, e.pointee.local_port)
                remote = (r, e.pointee.remote_port)
            }
        }
    }
}

/// Process names (`comm`) of the events, decoded once per process and name: an event
/// of a known process makes no String.
struct TLSProcessNames {
    private var known: [UInt32: (comm: (UInt64, UInt64), name: String)] = [:]

    mutating func name(of e: UnsafePointer<ks_tls_event>) -> String {
        let comm = Swift.withUnsafeBytes(of: e.pointee.comm) {
            ($0.loadUnaligned(as: UInt64.self), $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }
        if let k = known[e.pointee.pid], k.comm == comm { return k.name }
        let name = Swift.withUnsafeBytes(of: e.pointee.comm) { raw in
            var n = 0
            while n < raw.count && raw[n] != 0 { n += 1 }
            return String(decoding: UnsafeRawBufferPointer(rebasing: raw[0..<n]), as: UTF8.self)
        }
        // Bounded: pids are reused, names of gone processes need not stay.
        if known.count >= 4096 { known.removeAll(keepingCapacity: true) }
        known[e.pointee.pid] = (comm, name)
        return name
    }
}
