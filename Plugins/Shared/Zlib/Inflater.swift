// zlib inflation shared by the HTTP-carrying plugins (HTTP/1.x, HTTP/2 and
// gRPC): a reusable inflate stream bounded in memory (the display cap) and in
// work (the decode cap), so a compression bomb costs at most the cap per body.
// A static module: each plugin library links its own copy.

import CZlib

/// One zlib inflate stream, reused for every coded body (of a direction, a connection).
/// The z_stream lives at a fixed heap address (zlib keeps a pointer to it).
public final class Inflater {
    public let stream: UnsafeMutablePointer<z_stream>
    public let out: UnsafeMutablePointer<UInt8>
    public let outSize = 16 << 10
    private var initialized = false

    public init() {
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        out = UnsafeMutablePointer<UInt8>.allocate(capacity: outSize)
    }

    deinit {
        if initialized { inflateEnd(stream) }
        stream.deinitialize(count: 1)
        stream.deallocate()
        out.deallocate()
    }

    /// Prepares for a new body: `windowBits` 15+32 = gzip/zlib auto, -15 = raw deflate.
    public func start(windowBits: Int32) -> Bool {
        if initialized {
            return inflateReset2(stream, windowBits) == Z_OK
        }
        let r = inflateInit2_(stream, windowBits, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        initialized = r == Z_OK
        return initialized
    }

    public func resetKeepingWindowBits() -> Bool { inflateReset(stream) == Z_OK }

    /// Runs `body` with `input` as the stream's input, and detaches it (and the
    /// output) afterwards, so the stream never keeps a pointer into a caller's
    /// buffer. Nil for empty input.
    @inline(__always)
    public func withInput<R>(_ input: UnsafeRawBufferPointer, _ body: (UnsafeMutablePointer<z_stream>) -> R) -> R? {
        guard let base = input.baseAddress, !input.isEmpty else { return nil }
        let s = stream
        s.pointee.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        s.pointee.avail_in = UInt32(truncatingIfNeeded: input.count)
        defer {
            s.pointee.next_in = nil
            s.pointee.avail_in = 0
            s.pointee.next_out = nil
            s.pointee.avail_out = 0
        }
        return body(s)
    }

    /// Inflates all of `input` (gzip or zlib when `wrapped`, raw deflate otherwise)
    /// into `output`, keeping at most `cap` bytes and producing at most `workCap`.
    /// Returns nil on success, else what went wrong; `cut` is set when output was dropped.
    public func inflateAll(
        _ input: UnsafeRawBufferPointer, wrapped: Bool, into output: inout [UInt8], cap: Int, workCap: Int,
        cut: inout Bool
    ) -> String? {
        guard start(windowBits: wrapped ? 15 + 32 : -15) else { return "zlib could not be started" }
        return withInput(input) { s in inflateAttached(s, into: &output, cap: cap, workCap: workCap, cut: &cut) }
            ?? "empty compressed data"
    }

    private func inflateAttached(_ s: UnsafeMutablePointer<z_stream>, into output: inout [UInt8], cap: Int, workCap: Int,
                                 cut: inout Bool) -> String? {
        var produced = 0
        while true {
            s.pointee.next_out = out
            s.pointee.avail_out = UInt32(outSize)
            let ret = inflate(s, Z_NO_FLUSH)
            let n = outSize - Int(s.pointee.avail_out)
            produced += n
            let room = max(0, cap - output.count)
            output.append(contentsOf: UnsafeRawBufferPointer(start: out, count: min(n, room)))
            if n > room { cut = true }
            if ret == Z_STREAM_END { return nil }
            if ret != Z_OK && ret != Z_BUF_ERROR { return "corrupt compressed data" }
            if produced >= workCap {
                cut = true
                return nil
            }
            if s.pointee.avail_in == 0 && n < outSize { return "compressed data ends early" }
            if n == 0 { return "compressed data ends early" }
        }
    }
}

/// Whether two bytes are a zlib (RFC 1950) header.
@inlinable
public func looksLikeZlibHeader(_ b0: UInt8, _ b1: UInt8) -> Bool {
    b0 & 0x0F == 8 && b0 >> 4 <= 7 && (UInt16(b0) << 8 | UInt16(b1)) % 31 == 0
}

/// Appends `p` to `array` without growing it past `cap`; true when something was cut.
@inlinable
public func appendCapped(_ array: inout [UInt8], _ p: UnsafeRawBufferPointer, cap: Int) -> Bool {
    let room = cap - array.count
    if room <= 0 { return !p.isEmpty }
    if p.count > room {
        array.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[0..<room]))
        return true
    }
    array.append(contentsOf: p)
    return false
}
