import PluginAPI

/// The summary row of an entry (`ks_entry_info`), given when an entry begins.
public struct EntrySummary {
    public var flags: EntryFlags
    /// Index into the plugin's `protocols`.
    public var protocolIndex: UInt32
    /// Protocol status code for the list row, 0 = none.
    public var status: Int32
    public var requestTimestampNs: Int64
    public var responseTimestampNs: Int64
    public var requestSize: UInt64
    public var responseSize: UInt64
    public var method: String?
    public var summary: String?
    public var statusText: String?

    public init(
        flags: EntryFlags = [], protocolIndex: UInt32 = 0, status: Int32 = 0,
        requestTimestampNs: Int64 = 0, responseTimestampNs: Int64 = 0,
        requestSize: UInt64 = 0, responseSize: UInt64 = 0,
        method: String? = nil, summary: String? = nil, statusText: String? = nil
    ) {
        self.flags = flags
        self.protocolIndex = protocolIndex
        self.status = status
        self.requestTimestampNs = requestTimestampNs
        self.responseTimestampNs = responseTimestampNs
        self.requestSize = requestSize
        self.responseSize = responseSize
        self.method = method
        self.summary = summary
        self.statusText = statusText
    }
}

/// `KS_ENTRY_*` flags.
public struct EntryFlags: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let requestOnly = EntryFlags(rawValue: KS_ENTRY_REQUEST_ONLY)
    public static let responseOnly = EntryFlags(rawValue: KS_ENTRY_RESPONSE_ONLY)
    public static let timedOut = EntryFlags(rawValue: KS_ENTRY_TIMED_OUT)
    public static let malformed = EntryFlags(rawValue: KS_ENTRY_MALFORMED)
    public static let truncated = EntryFlags(rawValue: KS_ENTRY_TRUNCATED)
    public static let afterGap = EntryFlags(rawValue: KS_ENTRY_AFTER_GAP)
}

/// Writes the request/response tree of one entry through the host's builder.
///
/// Keys are ignored inside arrays: pass `nil`. Errors are sticky: after the
/// first failed call every later call is skipped and `emit` aborts the entry.
public struct EntryBuilder: ~Copyable {
    let api: UnsafePointer<ks_host_api>
    let entry: OpaquePointer
    /// The first error the host reported, if any.
    public private(set) var status: ks_status = KS_OK

    init(api: UnsafePointer<ks_host_api>, entry: OpaquePointer) {
        self.api = api
        self.entry = entry
    }

    @inline(__always)
    private mutating func call(_ key: StaticString?, _ body: (UnsafePointer<CChar>?, Int) -> ks_status) {
        guard status == KS_OK else { return }
        if let key {
            status = key.utf8Start.withMemoryRebound(to: CChar.self, capacity: key.utf8CodeUnitCount) {
                body($0, key.utf8CodeUnitCount)
            }
        } else {
            status = body(nil, 0)
        }
    }

    @inline(__always)
    private mutating func call(dynamicKey key: String, _ body: (UnsafePointer<CChar>?, Int) -> ks_status) {
        guard status == KS_OK else { return }
        var key = key
        status = key.withUTF8 { k in
            k.withMemoryRebound(to: CChar.self) { body($0.baseAddress, $0.count) }
        }
    }

    @inline(__always)
    private mutating func call(rawKey key: UnsafeRawBufferPointer, _ body: (UnsafePointer<CChar>?, Int) -> ks_status) {
        guard status == KS_OK else { return }
        status = body(key.baseAddress?.assumingMemoryBound(to: CChar.self), key.count)
    }

    /// Opens an object under `key`, fills it with `body`, closes it.
    public mutating func object(_ key: StaticString?, _ body: (inout EntryBuilder) -> Void) {
        let e = entry
        let api = api
        call(key) { api.pointee.entry_object_begin(e, $0, $1) }
        body(&self)
        guard status == KS_OK else { return }
        status = api.pointee.entry_object_end(e)
    }

    /// Opens an array under `key`, fills it with `body`, closes it.
    public mutating func array(_ key: StaticString?, _ body: (inout EntryBuilder) -> Void) {
        let e = entry
        let api = api
        call(key) { api.pointee.entry_array_begin(e, $0, $1) }
        body(&self)
        guard status == KS_OK else { return }
        status = api.pointee.entry_array_end(e)
    }

    /// A UTF-8 string value (invalid sequences are replaced by the host).
    public mutating func string(_ key: StaticString?, _ value: String) {
        var value = value
        let e = entry
        let api = api
        call(key) { k, kl in
            value.withUTF8 { v in
                v.withMemoryRebound(to: CChar.self) { api.pointee.entry_string(e, k, kl, $0.baseAddress, $0.count) }
            }
        }
    }

    /// A string value taken straight from bytes (no Swift String is made).
    public mutating func string(_ key: StaticString?, bytes: UnsafeRawBufferPointer) {
        let e = entry
        let api = api
        call(key) { k, kl in
            api.pointee.entry_string(e, k, kl, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
    }

    /// A string value under a key computed at run time.
    public mutating func string(dynamicKey key: String, bytes: UnsafeRawBufferPointer) {
        let e = entry
        let api = api
        call(dynamicKey: key) { k, kl in
            api.pointee.entry_string(e, k, kl, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
    }

    /// Binary bytes, encoded by the host as base64.
    public mutating func bytes(_ key: StaticString?, _ value: UnsafeRawBufferPointer) {
        let e = entry
        let api = api
        call(key) { k, kl in
            api.pointee.entry_bytes(e, k, kl, value.baseAddress?.assumingMemoryBound(to: UInt8.self), value.count)
        }
    }

    public mutating func int(_ key: StaticString?, _ value: Int64) {
        let e = entry
        let api = api
        call(key) { api.pointee.entry_int(e, $0, $1, value) }
    }

    public mutating func uint(_ key: StaticString?, _ value: UInt64) {
        let e = entry
        let api = api
        call(key) { api.pointee.entry_uint(e, $0, $1, value) }
    }

    public mutating func double(_ key: StaticString?, _ value: Double) {
        let e = entry
        let api = api
        call(key) { api.pointee.entry_double(e, $0, $1, value) }
    }

    public mutating func bool(_ key: StaticString?, _ value: Bool) {
        let e = entry
        let api = api
        call(key) { api.pointee.entry_bool(e, $0, $1, value) }
    }

    public mutating func null(_ key: StaticString?) {
        let e = entry
        let api = api
        call(key) { api.pointee.entry_null(e, $0, $1) }
    }

    // MARK: Keys known only at run time

    // Field-table names, map keys, header names: the key is UTF-8 bytes (the host
    // takes 1 to 1024 of them and refuses the entry otherwise; invalid sequences are
    // replaced). The `rawKey:` forms make no String; the `dynamicKey:` forms take one.
    // Inside an array the key is ignored, as with the static forms.

    /// Opens an object under a run-time key, fills it with `body`, closes it.
    public mutating func object(rawKey key: UnsafeRawBufferPointer, _ body: (inout EntryBuilder) -> Void) {
        let e = entry
        let api = api
        call(rawKey: key) { api.pointee.entry_object_begin(e, $0, $1) }
        body(&self)
        guard status == KS_OK else { return }
        status = api.pointee.entry_object_end(e)
    }

    /// Opens an array under a run-time key, fills it with `body`, closes it.
    public mutating func array(rawKey key: UnsafeRawBufferPointer, _ body: (inout EntryBuilder) -> Void) {
        let e = entry
        let api = api
        call(rawKey: key) { api.pointee.entry_array_begin(e, $0, $1) }
        body(&self)
        guard status == KS_OK else { return }
        status = api.pointee.entry_array_end(e)
    }

    /// A string value from bytes under a run-time key.
    public mutating func string(rawKey key: UnsafeRawBufferPointer, bytes: UnsafeRawBufferPointer) {
        let e = entry
        let api = api
        call(rawKey: key) { k, kl in
            api.pointee.entry_string(e, k, kl, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
    }

    /// Binary bytes (base64 in the JSON) under a run-time key.
    public mutating func bytes(rawKey key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        let e = entry
        let api = api
        call(rawKey: key) { k, kl in
            api.pointee.entry_bytes(e, k, kl, value.baseAddress?.assumingMemoryBound(to: UInt8.self), value.count)
        }
    }

    /// A signed integer (a JSON number) under a run-time key.
    public mutating func int(rawKey key: UnsafeRawBufferPointer, _ value: Int64) {
        let e = entry
        let api = api
        call(rawKey: key) { api.pointee.entry_int(e, $0, $1, value) }
    }

    /// An unsigned integer (a JSON number) under a run-time key.
    public mutating func uint(rawKey key: UnsafeRawBufferPointer, _ value: UInt64) {
        let e = entry
        let api = api
        call(rawKey: key) { api.pointee.entry_uint(e, $0, $1, value) }
    }

    /// A double (a JSON number; the host writes non-finite values as null) under a run-time key.
    public mutating func double(rawKey key: UnsafeRawBufferPointer, _ value: Double) {
        let e = entry
        let api = api
        call(rawKey: key) { api.pointee.entry_double(e, $0, $1, value) }
    }

    /// A JSON boolean under a run-time key.
    public mutating func bool(rawKey key: UnsafeRawBufferPointer, _ value: Bool) {
        let e = entry
        let api = api
        call(rawKey: key) { api.pointee.entry_bool(e, $0, $1, value) }
    }

    /// A JSON null under a run-time key.
    public mutating func null(rawKey key: UnsafeRawBufferPointer) {
        let e = entry
        let api = api
        call(rawKey: key) { api.pointee.entry_null(e, $0, $1) }
    }

    /// Opens an object under a run-time String key.
    public mutating func object(dynamicKey key: String, _ body: (inout EntryBuilder) -> Void) {
        var key = key
        key.withUTF8 { object(rawKey: UnsafeRawBufferPointer($0), body) }
    }

    /// Opens an array under a run-time String key.
    public mutating func array(dynamicKey key: String, _ body: (inout EntryBuilder) -> Void) {
        var key = key
        key.withUTF8 { array(rawKey: UnsafeRawBufferPointer($0), body) }
    }

    /// A String value under a run-time String key.
    public mutating func string(dynamicKey key: String, _ value: String) {
        var value = value
        value.withUTF8 { v in string(dynamicKey: key, bytes: UnsafeRawBufferPointer(v)) }
    }

    /// A signed integer under a run-time String key.
    public mutating func int(dynamicKey key: String, _ value: Int64) {
        var key = key
        key.withUTF8 { int(rawKey: UnsafeRawBufferPointer($0), value) }
    }

    /// An unsigned integer under a run-time String key.
    public mutating func uint(dynamicKey key: String, _ value: UInt64) {
        var key = key
        key.withUTF8 { uint(rawKey: UnsafeRawBufferPointer($0), value) }
    }

    /// A double under a run-time String key.
    public mutating func double(dynamicKey key: String, _ value: Double) {
        var key = key
        key.withUTF8 { double(rawKey: UnsafeRawBufferPointer($0), value) }
    }

    /// A boolean under a run-time String key.
    public mutating func bool(dynamicKey key: String, _ value: Bool) {
        var key = key
        key.withUTF8 { bool(rawKey: UnsafeRawBufferPointer($0), value) }
    }

    /// A null under a run-time String key.
    public mutating func null(dynamicKey key: String) {
        var key = key
        key.withUTF8 { null(rawKey: UnsafeRawBufferPointer($0)) }
    }
}
