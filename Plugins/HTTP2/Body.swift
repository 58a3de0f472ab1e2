// Message bodies: a capped copy of the bytes as sent; gzip / deflate decoding
// goes through PluginZlib's Inflater, as in the HTTP/1 plugin.

import CZlib
import PluginZlib

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
