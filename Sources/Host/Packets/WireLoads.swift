// Big-endian loads from captured packet bytes.
//
// These helpers do not check bounds themselves (beyond the standard library's
// debug-build preconditions): every caller validates the length of the region
// it reads before calling them. Keeping the checks at the call sites lets one
// comparison cover a whole fixed-size header.

extension UnsafeRawBufferPointer {
    /// The byte at `offset`. The caller guarantees `offset < count`.
    @inline(__always)
    func wireU8(at offset: Int) -> UInt8 {
        load(fromByteOffset: offset, as: UInt8.self)
    }

    /// The big-endian 16-bit value at `offset`. The caller guarantees `offset + 2 <= count`.
    @inline(__always)
    func wireU16(at offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// The big-endian 32-bit value at `offset`. The caller guarantees `offset + 4 <= count`.
    @inline(__always)
    func wireU32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// The big-endian 64-bit value at `offset`. The caller guarantees `offset + 8 <= count`.
    @inline(__always)
    func wireU64(at offset: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// The bytes `range` as a buffer of their own (no copy). The caller guarantees
    /// `0 <= range.lowerBound <= range.upperBound <= count`.
    @inline(__always)
    func wireSlice(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[range])
    }
}
