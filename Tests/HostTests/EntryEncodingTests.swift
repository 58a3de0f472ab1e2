import Foundation
import PluginAPI
import Testing

@testable import Host

/// The host writes every byte of entry JSON: escaping, UTF-8 repair, numbers,
/// base64, and the builder's state machine must always give valid JSON or a
/// clear error.
@Suite("Entry encoding")
struct EntryEncodingTests {
    func text(_ body: (inout JSONWriter) -> Void) -> String {
        var w = JSONWriter(capacity: 8)
        body(&w)
        return String(decoding: w.bytes, as: UTF8.self)
    }

    func escaped(_ bytes: [UInt8]) -> String {
        text { w in bytes.withUnsafeBytes { w.string($0) } }
    }

    @Test func escapesQuotesBackslashesAndControls() {
        #expect(escaped(Array("a\"b\\c".utf8)) == #""a\"b\\c""#)
        #expect(escaped([0x0A, 0x0D, 0x09, 0x08, 0x0C, 0x00, 0x1F]) == #""\n\r\t\b\f\u0000\u001f""#)
        // Long clean runs take the 8-byte path; a quote in the middle of one must still be seen.
        let long = String(repeating: "abcdefgh", count: 10) + "\"" + String(repeating: "x", count: 13)
        #expect(escaped(Array(long.utf8)) == "\"" + long.replacingOccurrences(of: "\"", with: "\\\"") + "\"")
    }

    @Test func repairsInvalidUTF8() throws {
        // Valid multi-byte sequences pass through; each bad byte becomes U+FFFD.
        #expect(escaped(Array("é€😀".utf8)) == "\"é€😀\"")
        #expect(escaped([0x61, 0xFF, 0x62]) == "\"a\u{FFFD}b\"")
        #expect(escaped([0xC0, 0x80]) == "\"\u{FFFD}\u{FFFD}\"")  // overlong
        #expect(escaped([0xED, 0xA0, 0x80]) == "\"\u{FFFD}\u{FFFD}\u{FFFD}\"")  // surrogate
        #expect(escaped([0xE2, 0x82]) == "\"\u{FFFD}\u{FFFD}\"")  // truncated
        // Any byte string gives valid JSON.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let bytes = (0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let json = "[" + escaped(bytes) + "]"
            #expect(throws: Never.self) { try JSONSerialization.jsonObject(with: Data(json.utf8)) }
        }
    }

    @Test func numbers() {
        #expect(text { $0.int(-42) } == "-42")
        #expect(text { $0.int(Int64.min) } == "-9223372036854775808")
        #expect(text { $0.uint(UInt64.max) } == "18446744073709551615")
        #expect(text { $0.double(.nan) } == "null")
        #expect(text { $0.double(2.5) } == "2.5")
        #expect(text { $0.milliseconds(fromNanoseconds: 1_234_567) } == "1.234")
        #expect(text { $0.milliseconds(fromNanoseconds: 5_000_000) } == "5")
    }

    @Test func base64() {
        for (input, output) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            #expect(text { w in Array(input.utf8).withUnsafeBytes { w.base64($0) } } == "\"\(output)\"")
        }
    }

    /// Drives an EntryEmitter directly through the calls the host API table makes.
    final class Probe: EntrySink {
        var json: [String] = []
        func emit(_ entry: EntryView) { json.append(String(decoding: entry.json, as: UTF8.self)) }
    }

    func withStream(_ body: (EntryEmitter, StreamHandle) throws -> Void) throws {
        let plugin = try PluginLoader.load(path: PluginLoader.executableDirectory + "/libksplugin-http.so").get()
        let sink = Probe()
        let emitter = EntryEmitter(sink: sink, maxEntryBytes: 4096)
        var flow = ks_flow_info()
        flow.struct_size = UInt32(MemoryLayout<ks_flow_info>.size)
        flow.flow_id = 7
        flow.client.family = 4
        flow.server.family = 4
        let stream = StreamHandle(plugin: plugin, flow: flow, emitter: emitter, limits: StreamLimits())
        try body(emitter, stream)
    }

    func begin(_ emitter: EntryEmitter, _ stream: StreamHandle) -> Bool {
        var info = ks_entry_info()
        info.struct_size = UInt32(MemoryLayout<ks_entry_info>.size)
        return withUnsafePointer(to: &info) { emitter.begin(stream: stream, info: $0) }
    }

    func key(_ s: StaticString, _ body: (UnsafePointer<CChar>, Int) -> ks_status) -> ks_status {
        s.utf8Start.withMemoryRebound(to: CChar.self, capacity: s.utf8CodeUnitCount) { body($0, s.utf8CodeUnitCount) }
    }

    @Test("builder calls out of order are refused, and the entry is never half-written")
    func builderStateMachine() throws {
        try withStream { emitter, stream in
            #expect(emitter.close(array: false) == KS_E_STATE)  // nothing begun
            #expect(begin(emitter, stream))
            #expect(!begin(emitter, stream))  // one entry at a time
            #expect(key("request") { emitter.open(array: false, key: $0, $1) } == KS_OK)
            #expect(emitter.close(array: true) == KS_E_STATE)  // wrong container
            #expect(emitter.commit() == KS_E_STATE)  // sticky failure
            #expect(begin(emitter, stream))
            #expect(key("protocol") { emitter.string(key: $0, $1, value: UnsafeRawBufferPointer(start: nil, count: 0)) }
                == KS_E_INVALID)  // reserved key
            emitter.abort()
            #expect(begin(emitter, stream))
            #expect(key("request") { emitter.open(array: false, key: $0, $1) } == KS_OK)
            #expect(key("list") { emitter.open(array: true, key: $0, $1) } == KS_OK)
            #expect(emitter.scalar(key: nil, 0) { $0.int(1) } == KS_OK)
            #expect(emitter.scalar(key: nil, 0) { $0.bool(true) } == KS_OK)
            // commit closes what is open
            #expect(emitter.commit() == KS_OK)
            let sink = emitter.sink as! Probe
            #expect(sink.json.count == 1)
            let object = try JSONSerialization.jsonObject(with: Data(sink.json[0].utf8)) as? [String: Any]
            #expect(((object?["request"] as? [String: Any])?["list"] as? [Any])?.count == 2)
            #expect(object?["id"] as? String == "0000000000000007-0")
        }
    }

    @Test("an entry larger than the cap is refused with KS_E_LIMIT")
    func entrySizeLimit() throws {
        try withStream { emitter, stream in
            #expect(begin(emitter, stream))
            let big = [UInt8](repeating: 0x61, count: 3000)
            var status = KS_OK
            for _ in 0..<4 where status == KS_OK {
                status = key("k") { k, n in big.withUnsafeBytes { emitter.string(key: k, n, value: $0) } }
            }
            #expect(status == KS_E_LIMIT)
            #expect(emitter.commit() != KS_OK)
            #expect((emitter.sink as! Probe).json.isEmpty)
        }
    }
}
