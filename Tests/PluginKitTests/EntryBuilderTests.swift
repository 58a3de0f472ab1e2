// EntryBuilder against a recording ks_host_api: every builder call must reach
// the C ABI with its kind, its key bytes and its value, whatever the key form.

import PluginAPI
import Testing

@testable import PluginKit

/// What the fake host saw, one line per call ("int k=5", "object_begin k", ...).
/// Tests in this suite run one at a time (.serialized): the C callbacks cannot capture.
nonisolated(unsafe) private var calls: [String] = []
/// The status the fake host answers for keys equal to this (to test sticky errors).
nonisolated(unsafe) private var refusedKey = "refused"

private func key(_ k: UnsafePointer<CChar>?, _ n: Int) -> String {
    guard let k else { return "-" }
    return String(decoding: UnsafeRawBufferPointer(start: k, count: n), as: UTF8.self)
}

private func record(_ kind: String, _ k: UnsafePointer<CChar>?, _ n: Int, _ value: String? = nil) -> ks_status {
    let name = key(k, n)
    calls.append(value.map { "\(kind) \(name)=\($0)" } ?? "\(kind) \(name)")
    return name == refusedKey ? KS_E_INVALID : KS_OK
}

private func makeAPI() -> ks_host_api {
    var api = ks_host_api()
    api.struct_size = UInt32(MemoryLayout<ks_host_api>.size)
    api.abi_major = UInt16(KS_ABI_MAJOR)
    api.abi_minor = UInt16(KS_ABI_MINOR)
    api.entry_object_begin = { _, k, n in record("object_begin", k, n) }
    api.entry_object_end = { _ in calls.append("object_end"); return KS_OK }
    api.entry_array_begin = { _, k, n in record("array_begin", k, n) }
    api.entry_array_end = { _ in calls.append("array_end"); return KS_OK }
    api.entry_string = { _, k, n, v, vn in
        record("string", k, n, String(decoding: UnsafeRawBufferPointer(start: v, count: vn), as: UTF8.self))
    }
    api.entry_bytes = { _, k, n, v, vn in record("bytes", k, n, "\(vn) bytes") }
    api.entry_int = { _, k, n, v in record("int", k, n, String(v)) }
    api.entry_uint = { _, k, n, v in record("uint", k, n, String(v)) }
    api.entry_double = { _, k, n, v in record("double", k, n, String(v)) }
    api.entry_bool = { _, k, n, v in record("bool", k, n, String(v)) }
    api.entry_null = { _, k, n in record("null", k, n) }
    return api
}

/// Runs `body` on a builder over the recording API and returns the calls it made and its status.
private func build(_ body: (inout EntryBuilder) -> Void) -> ([String], ks_status) {
    calls = []
    var api = makeAPI()
    return withUnsafePointer(to: &api) { p in
        var b = EntryBuilder(api: p, entry: OpaquePointer(bitPattern: 0x1000)!)
        body(&b)
        return (calls, b.status)
    }
}

@Suite(.serialized) struct EntryBuilderTests {
    @Test func rawKeysReachTheHostWithEveryValueKind() {
        let key = Array("x-max-length".utf8)
        let (seen, status) = build { b in
            key.withUnsafeBytes { k in
                b.int(rawKey: k, -5)
                b.uint(rawKey: k, 7)
                b.double(rawKey: k, 1.5)
                b.bool(rawKey: k, true)
                b.null(rawKey: k)
                "v".utf8CString.withUnsafeBytes { v in b.string(rawKey: k, bytes: UnsafeRawBufferPointer(rebasing: v.dropLast())) }
                [1, 2, 3].withUnsafeBytes { v in b.bytes(rawKey: k, UnsafeRawBufferPointer(rebasing: v.prefix(3))) }
                b.object(rawKey: k) { o in o.int("n", 1) }
                b.array(rawKey: k) { a in a.bool(nil, false) }
            }
        }
        #expect(status == KS_OK)
        #expect(seen == [
            "int x-max-length=-5", "uint x-max-length=7", "double x-max-length=1.5", "bool x-max-length=true",
            "null x-max-length", "string x-max-length=v", "bytes x-max-length=3 bytes",
            "object_begin x-max-length", "int n=1", "object_end",
            "array_begin x-max-length", "bool -=false", "array_end",
        ])
    }

    @Test func stringKeysReachTheHostWithEveryValueKind() {
        let name = "héader-\(42)"  // run-time, non-ASCII
        let (seen, status) = build { b in
            b.int(dynamicKey: name, 1)
            b.uint(dynamicKey: name, 2)
            b.double(dynamicKey: name, -0.25)
            b.bool(dynamicKey: name, false)
            b.null(dynamicKey: name)
            b.string(dynamicKey: name, "text")
            b.object(dynamicKey: name) { o in o.object(dynamicKey: "inner") { i in i.string("s", "deep") } }
            b.array(dynamicKey: name) { a in a.int(nil, 3) }
        }
        #expect(status == KS_OK)
        #expect(seen == [
            "int héader-42=1", "uint héader-42=2", "double héader-42=-0.25", "bool héader-42=false", "null héader-42",
            "string héader-42=text", "object_begin héader-42", "object_begin inner", "string s=deep", "object_end",
            "object_end", "array_begin héader-42", "int -=3", "array_end",
        ])
    }

    @Test func aRefusedKeyStopsEveryLaterCall() {
        let (seen, status) = build { b in
            b.int(dynamicKey: "refused", 1)
            b.int(dynamicKey: "after", 2)
            b.object(dynamicKey: "obj") { o in o.int("n", 3) }
        }
        #expect(status == KS_E_INVALID)
        #expect(seen == ["int refused=1"])
    }
}
