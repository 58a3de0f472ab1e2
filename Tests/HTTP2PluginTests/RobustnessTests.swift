// Hostile input: garbage, truncation, oversized frames and header blocks,
// too many streams, HPACK errors: entries marked with what went wrong, never
// a crash, a hang or unbounded memory.

import Foundation
import PluginAPI
import Testing

@testable import Host

@Suite struct RobustnessTests {
    @Test func randomGarbageAfterThePreface() throws {
        var rng = SplitMix(state: 0x4854_5450_32)
        let h = try makeHarness()
        for _ in 0..<200 {
            let junk = rng.bytes(Int(rng.next() % 600))
            _ = h.runTCP(segments: [(c2s, preface + junk), (s2c, rng.bytes(Int(rng.next() % 300)))])
            _ = h.runTCP(segments: [(c2s, junk), (s2c, junk)])
        }
    }

    @Test func truncatedEverywhere() throws {
        let conv = simpleConversation()
        let client = conv.filter { $0.0 == c2s }.flatMap { $0.1 }
        let server = conv.filter { $0.0 == s2c }.flatMap { $0.1 }
        let h = try makeHarness()
        for cut in 0..<client.count {
            let entries = h.runTCP(segments: [(c2s, Array(client[..<cut])), (s2c, server)]).map(parseJSON)
            #expect(entries.count <= 2)
        }
    }

    @Test func mutatedFramesNeverCrash() throws {
        var rng = SplitMix(state: 99)
        let base = simpleConversation()
        let h = try makeHarness()
        for _ in 0..<300 {
            var segs = base
            let i = Int(rng.next() % UInt64(segs.count))
            let j = Int(rng.next() % UInt64(segs[i].1.count))
            segs[i].1[j] = UInt8(truncatingIfNeeded: rng.next())
            _ = h.runTCP(segments: segs)
        }
    }

    @Test func oversizedFrameIsSkippedAndNoted() throws {
        // A HEADERS frame announcing 1 MiB: skipped; the stream and later ones still come out.
        let huge = frame(1, flags: 5, stream: 1, [UInt8](repeating: 0x82, count: 1 << 20))
        let conv: [Segment] = [
            (c2s, preface + settings() + huge + get(3, "/after")),
            (s2c, ok(3, endStream: true)),
        ]
        let entries = try run(conv)
        let after = try #require(entries.first { $0.int("streamId") == 3 })
        #expect(after.int("status") == 200)
        let notes = (entries.flatMap { ($0["errors"] as? [String]) ?? [] }).joined()
        #expect(notes.contains("over the"))
    }

    @Test func oversizedHeaderListIsCut() throws {
        let many = (0..<400).map { ("x-h\($0)", String(repeating: "v", count: 300)) }
        var conv: [Segment] = [(c2s, preface + settings())]
        // Split the block over CONTINUATION frames of 16 KiB.
        let blk = block([(":method", "GET"), (":scheme", "http"), (":path", "/big")] + many)
        var frames: [UInt8] = []
        var i = 0
        while i < blk.count {
            let e = min(blk.count, i + 16384)
            let last = e == blk.count
            frames += frame(i == 0 ? 1 : 9, flags: (last ? 4 : 0) | (i == 0 ? 1 : 0), stream: 1, Array(blk[i..<e]))
            i = e
        }
        conv[0].1 += frames
        conv.append((s2c, ok(1, endStream: true)))
        let e = try #require(try run(conv).first)
        #expect(e.flags.contains("truncated"))
        #expect(e.request?.bool("headersTruncated") == true)
        #expect((e.request?.arr("headers")?.count ?? 0) <= HTTP2Limits.standardMaxFields)
        #expect(e.int("status") == 200)
    }

    @Test func tooManyOpenStreamsAreBounded() throws {
        var c: [UInt8] = preface + settings()
        for i in 0..<600 { c += get(UInt32(2 * i + 1), "/s\(i)") }
        let entries = try run([(c2s, c)])
        #expect(entries.count == 600)
        #expect(entries.filter { ($0["errors"] as? [String])?.contains { $0.contains("open streams") } == true }.count > 0)
    }

    @Test func hpackErrorMarksTheEntry() throws {
        let conv: [Segment] = [
            (c2s, preface + settings() + frame(1, flags: 5, stream: 1, [0x82, 0xFF, 0x00])),  // index 127: beyond both tables
            (s2c, ok(1, endStream: true)),
        ]
        let e = try #require(try run(conv).first)
        #expect(e.flags.contains("malformed"))
        #expect((e["hpackErrors"] as? [String])?.first?.contains("beyond") == true)
    }

    @Test func continuationWithoutHeaders() throws {
        let conv: [Segment] = [(c2s, preface + settings() + frame(9, flags: 4, stream: 1, [0x82]) + get(3, "/x")), (s2c, ok(3, endStream: true))]
        let entries = try run(conv)
        #expect(entries.count == 1)
        #expect(((entries[0]["errors"] as? [String]) ?? []).joined().contains("CONTINUATION"))
    }

    @Test func badPaddingIsNoted() throws {
        let conv: [Segment] = [
            (c2s, preface + settings() + frame(1, flags: 0x0D, stream: 1, [200, 0x82])),
            (s2c, ok(1, endStream: true)),
        ]
        let e = try #require(try run(conv).first)
        #expect(e.flags.contains("malformed"))
    }

    @Test func paddedDataWithoutPadLength() throws {
        let conv: [Segment] = [
            (c2s, preface + settings() + get(1, "/p")),
            (s2c, ok(1) + frame(0, flags: 0x08, stream: 1, []) + data(1, bytes("after"), endStream: true)),
        ]
        let e = try #require(try run(conv).first)
        #expect(e.response?.obj("content")?.str("text") == "after")
        #expect(((e["errors"] as? [String]) ?? []).joined().contains("PADDED"))
    }

    @Test func grpcHugeDeclaredMessageIsBounded() throws {
        let conv: [Segment] = [
            (c2s, preface + settings() + get(1, "/a.B/C", method: "POST", extra: [("content-type", "application/grpc")], endStream: false)
                + data(1, [0, 0x7F, 0xFF, 0xFF, 0xFF] + [UInt8](repeating: 1, count: 100_000)) + data(1, [], endStream: true)),
            (s2c, ok(1, extra: [("content-type", "application/grpc")]) + headers(1, [("grpc-status", "0")], endStream: true)),
        ]
        let e = try #require(try run(conv).first)
        let m = try #require(e.request?.arr("messages")?.first)
        #expect(m.bool("incomplete") == true)
        #expect(m.bool("truncated") == true)
        #expect(m.int("length") == 0x7FFF_FFFF)
    }

    @Test func gzipBombIsBounded() throws {
        let bomb = gzip([UInt8](repeating: 0, count: 20 << 20))
        let conv: [Segment] = [
            (c2s, preface + settings() + get(1, "/bomb")),
            (s2c, ok(1, extra: [("content-encoding", "gzip")]) + data(1, bomb, endStream: true)),
        ]
        let c = try #require(try run(conv).first?.response?.obj("content"))
        #expect(c.bool("truncated") == true)
    }
}

extension HTTP2Limits {
    static var standardMaxFields: Int { HTTP2Limits.standard.maxHeaderFields }
}

@testable import HTTP2Plugin
