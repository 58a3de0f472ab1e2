// Body payload handling: capped copies for display and streaming gzip /
// deflate decoding through zlib. Decoding is bounded both in memory (the
// display cap) and in work (the decode cap), so a compression bomb costs at
// most `maxDecodedBytes` of inflate output per body.

import CZlib
import PluginKit
import PluginZlib

extension Message {
    /// Whether more payload bytes change anything shown (else they may be skipped unseen).
    var wantsPayload: Bool {
        switch coding {
        case .identity: return !displayTruncated
        case .unsupported: return !rawTruncated
        case .gzip, .deflate:
            if decodeFatal { return !rawTruncated }
            return !decodeDone
        }
    }

    /// Payload bytes that were not seen (skipped or lost): counted only.
    func countUnseenPayload(_ n: UInt64, lost: Bool) {
        payloadSize &+= n
        switch coding {
        case .identity:
            decodedSize &+= n
            if n > 0 { displayTruncated = true }
        case .unsupported:
            if n > 0 { rawTruncated = true }
        case .gzip, .deflate:
            if n > 0 { rawTruncated = true }
            if lost, !decodeDone {
                decodeDone = true
                if decodeError == nil { decodeError = "bytes lost in the compressed data" }
                displayTruncated = true
            }
        }
    }

    /// The body ends before its framing said: what is shown is incomplete.
    func markBodyCut() {
        flags.insert(.truncated)
        displayTruncated = true
        rawTruncated = true
    }

    /// Payload bytes (after de-chunking).
    func feedPayload(_ p: UnsafeRawBufferPointer, limits: HTTP1Limits, inflater: () -> Inflater) {
        guard !p.isEmpty else { return }
        payloadSize &+= UInt64(p.count)
        switch coding {
        case .identity:
            decodedSize &+= UInt64(p.count)
            if appendCapped(&display, p, cap: limits.maxBodyBytes) { displayTruncated = true }
        case .unsupported:
            if appendCapped(&raw, p, cap: limits.maxBodyBytes) { rawTruncated = true }
        case .gzip, .deflate:
            if appendCapped(&raw, p, cap: limits.maxBodyBytes) { rawTruncated = true }
            guard !decodeDone else { return }
            if !inflateStarted {
                if coding == .deflate {
                    // Sniff the first two bytes: zlib wrapper or raw deflate.
                    if sniffCount == 0 {
                        if p.count == 1 {
                            sniffByte = p[0]
                            sniffCount = 1
                            return
                        }
                        guard startInflate(inflater(), zlib: looksLikeZlibHeader(p[0], p[1])) else { return }
                    } else {
                        let first = sniffByte
                        guard startInflate(inflater(), zlib: looksLikeZlibHeader(first, p[0])) else { return }
                        withUnsafeBytes(of: first) { runInflate($0, inflater(), limits: limits) }
                    }
                } else {
                    guard startInflate(inflater(), zlib: true) else { return }
                }
            }
            runInflate(p, inflater(), limits: limits)
        }
    }

    private func startInflate(_ inf: Inflater, zlib: Bool) -> Bool {
        inflateStarted = true
        sniffCount = 0
        if !inf.start(windowBits: zlib ? 15 + 32 : -15) {
            decodeError = "zlib could not be initialised"
            decodeFatal = true
            decodeDone = true
            return false
        }
        return true
    }

    private func runInflate(_ p: UnsafeRawBufferPointer, _ inf: Inflater, limits: HTTP1Limits) {
        _ = inf.withInput(p) { s in inflateAttached(s, inf, limits: limits) }
    }

    private func inflateAttached(_ s: UnsafeMutablePointer<z_stream>, _ inf: Inflater, limits: HTTP1Limits) {
        let cap = UInt64(limits.maxDecodedBytes)
        while !decodeDone {
            if streamEnded {
                // Input after the end of a member: another gzip member, or trailing junk.
                guard s.pointee.avail_in > 0, let next = s.pointee.next_in else { return }
                if coding == .gzip, next[0] == 0x1F, inf.resetKeepingWindowBits() {
                    streamEnded = false
                } else {
                    decodeDone = true
                    return
                }
            }
            let room = decodedSize < cap ? Int(min(UInt64(inf.outSize), cap - decodedSize)) : 1
            s.pointee.next_out = inf.out
            s.pointee.avail_out = UInt32(room)
            let inBefore = s.pointee.avail_in
            let ret = inflate(s, Z_NO_FLUSH)
            let produced = room - Int(s.pointee.avail_out)
            if produced > 0 {
                if decodedSize >= cap {
                    sizeCapped = true
                    displayTruncated = true
                    decodeDone = true
                    return
                }
                decodedSize &+= UInt64(produced)
                if appendCapped(&display, UnsafeRawBufferPointer(start: inf.out, count: produced),
                    cap: limits.maxBodyBytes)
                {
                    displayTruncated = true
                }
            }
            if ret == Z_STREAM_END {
                streamEnded = true
                continue
            }
            if ret != Z_OK && ret != Z_BUF_ERROR {
                decodeError = "corrupt compressed data"
                decodeFatal = true
                decodeDone = true
                return
            }
            if s.pointee.avail_in == 0 && s.pointee.avail_out > 0 { return }
            if produced == 0 && s.pointee.avail_in == inBefore { return }
        }
    }

    /// The body ended: finish decoding.
    func finishPayload(limits: HTTP1Limits, inflater: () -> Inflater) {
        guard coding == .gzip || coding == .deflate, !decodeDone else { return }
        if !inflateStarted {
            guard sniffCount == 1 else { return }  // empty body: nothing to decode
            let first = sniffByte
            guard startInflate(inflater(), zlib: false) else { return }
            withUnsafeBytes(of: first) { runInflate($0, inflater(), limits: limits) }
        }
        if !streamEnded, decodeError == nil {
            decodeError = "compressed data ends early"
            displayTruncated = true
        }
        decodeDone = true
    }

    /// Coded body decoded without corruption (possibly cut short).
    var decodedOK: Bool { (coding == .gzip || coding == .deflate) && !decodeFatal }
}
