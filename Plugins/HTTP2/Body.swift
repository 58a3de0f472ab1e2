// Message bodies: a capped copy of the bytes as sent, and gzip / deflate
// decoding through zlib bounded both in memory (the display cap) and in work
// (the decode cap), as the HTTP/1 plugin does. The code lives here because
// plugins are separate libraries.

import CZlib

/// One zlib inflate stream, reused for every body of a connection.
/// The z_stream lives at a fixed heap address (zlib keeps a pointer to it).
final class Inflater {
    let stream: UnsafeMutablePointer<z_stream>
    let out: UnsafeMutablePointer<UInt8>
    let outSize = 16 << 10
    private var initialized = false

    init() {
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

    /// Inflates all of `input` (gzip or zlib when `wrapped`, raw deflate otherwise)
    /// into `output`, keeping at most `cap` bytes and producing at most `workCap`.
    /// Returns nil on success, else what went wrong; `cut` is set when output was dropped.
    func inflateAll(
        _ input: UnsafeRawBufferPointer, wrapped: Bool, into output: inout [UInt8], cap: Int, workCap: Int,
        cut: inout Bool
    ) -> String? {
        let bits: Int32 = wrapped ? 15 + 32 : -15
        if initialized {
            guard inflateReset2(stream, bits) == Z_OK else { return "zlib could not be reset" }
        } else {
            guard inflateInit2_(stream, bits, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                return "zlib could not be initialised"
            }
            initialized = true
        }
        guard let base = input.baseAddress, !input.isEmpty else { return "empty compressed data" }
        let s = stream
        s.pointee.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        s.pointee.avail_in = UInt32(truncatingIfNeeded: input.count)
        defer {
            s.pointee.next_in = nil
            s.pointee.avail_in = 0
            s.pointee.next_out = nil
            s.pointee.avail_out = 0
        }
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
@inline(__always)
func looksLikeZlibHeader(_ b0: UInt8, _ b1: UInt8) -> Bool {
    b0 & 0x0F == 8 && b0 >> 4 <= 7 && (UInt16(b0) << 8 | UInt16(b1)) % 31 == 0
}

/// Appends `p` to `array` without growing it past `cap`; true when something was cut.
@inline(__always)
func appendCapped(_ array: inout [UInt8], _ p: UnsafeRawBufferPointer, cap: Int) -> Bool {
    let room = cap - array.count
    if room <= 0 { return !p.isEmpty }
    if p.count > room {
        array.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[0..<room]))
        return true
    }
    array.append(contentsOf: p)
    return false
}

/// The body of one message as received in DATA frames: its wire size and a
/// capped copy (decoded when the entry is written).
struct BodyCollector {
    var raw: [UInt8] = []
    /// DATA payload bytes (without padding).
    var size: UInt64 = 0
    /// `raw` holds less than `size` bytes.
    var cut = false

    mutating func reset() {
        raw.removeAll(keepingCapacity: true)
        size = 0
        cut = false
    }

    mutating func feed(_ p: UnsafeRawBufferPointer, cap: Int) {
        size &+= UInt64(p.count)
        if appendCapped(&raw, p, cap: cap) { cut = true }
    }
}

/// Whether `p` is text: valid UTF-8 (a sequence cut at the end is allowed when
/// `allowCutTail`) without NULs. Returns the length to show.
func textLength(_ p: UnsafeRawBufferPointer, allowCutTail: Bool) -> Int? {
    var i = 0
    let n = p.count
    while i < n {
        let c = p[i]
        if c < 0x80 {
            if c == 0 { return nil }
            i += 1
            continue
        }
        let len: Int
        if c & 0xE0 == 0xC0, c >= 0xC2 { len = 2 } else if c & 0xF0 == 0xE0 { len = 3 } else if c & 0xF8 == 0xF0, c <= 0xF4 { len = 4 } else { return nil }
        if i + len > n { return allowCutTail ? i : nil }
        for k in 1..<len where p[i + k] & 0xC0 != 0x80 { return nil }
        i += len
    }
    return n
}
