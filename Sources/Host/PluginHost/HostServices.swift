import Logging
import PluginAPI

/// The `ks_host_api` table handed to every plugin's init, and the functions behind it.
///
/// `host_ctx` is the plugin's `LoadedPlugin`; `ks_stream *` is a `StreamHandle`;
/// `ks_entry *` is the session's `EntryEmitter`. All are unretained pointers to
/// objects that outlive every call made with them.
enum HostServices {
    /// One table for every plugin, alive for the whole process.
    nonisolated(unsafe) static let table: UnsafePointer<ks_host_api> = {
        let t = UnsafeMutablePointer<ks_host_api>.allocate(capacity: 1)
        t.initialize(to: ks_host_api(
            struct_size: UInt32(MemoryLayout<ks_host_api>.size),
            abi_major: UInt16(KS_ABI_MAJOR),
            abi_minor: UInt16(KS_ABI_MINOR),
            log: log,
            counter_add: counterAdd,
            now_ns: nowNs,
            confirm: confirm,
            violation: violation,
            entry_begin: entryBegin,
            entry_object_begin: { e, k, n in withEmitter(e) { $0.open(array: false, key: k, n) } },
            entry_object_end: { e in withEmitter(e) { $0.close(array: false) } },
            entry_array_begin: { e, k, n in withEmitter(e) { $0.open(array: true, key: k, n) } },
            entry_array_end: { e in withEmitter(e) { $0.close(array: true) } },
            entry_string: { e, k, n, v, vn in
                guard vn == 0 || v != nil else { return KS_E_INVALID }
                return withEmitter(e) { $0.string(key: k, n, value: UnsafeRawBufferPointer(start: v, count: vn)) }
            },
            entry_bytes: { e, k, n, v, vn in
                guard vn == 0 || v != nil else { return KS_E_INVALID }
                return withEmitter(e) { $0.bytes(key: k, n, value: UnsafeRawBufferPointer(start: v, count: vn)) }
            },
            entry_int: { e, k, n, v in withEmitter(e) { $0.scalar(key: k, n) { $0.int(v) } } },
            entry_uint: { e, k, n, v in withEmitter(e) { $0.scalar(key: k, n) { $0.uint(v) } } },
            entry_double: { e, k, n, v in withEmitter(e) { $0.scalar(key: k, n) { $0.double(v) } } },
            entry_bool: { e, k, n, v in withEmitter(e) { $0.scalar(key: k, n) { $0.bool(v) } } },
            entry_null: { e, k, n in withEmitter(e) { $0.scalar(key: k, n) { $0.null() } } },
            entry_commit: { e in withEmitter(e) { $0.commit() } },
            entry_abort: { e in _ = withEmitter(e) { $0.abort(); return KS_OK } },
            status_str: { s in statusCString(s) }
        ))
        return UnsafePointer(t)
    }()

    static func statusString(_ s: ks_status) -> String { String(cString: statusCString(s)) }

    private static func statusCString(_ s: ks_status) -> UnsafePointer<CChar> {
        let text: StaticString
        switch s {
        case KS_OK: text = "ok"
        case KS_E_INVALID: text = "invalid argument"
        case KS_E_NOMEM: text = "out of memory"
        case KS_E_LIMIT: text = "limit reached"
        case KS_E_UNSUPPORTED: text = "unsupported"
        case KS_E_VERSION: text = "incompatible version"
        case KS_E_INTERNAL: text = "internal error"
        case KS_E_STATE: text = "not allowed in this state"
        default: text = "unknown status"
        }
        return UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)
    }

    @inline(__always)
    private static func plugin(_ ctx: UnsafeMutableRawPointer?) -> LoadedPlugin? {
        guard let ctx else { return nil }
        return Unmanaged<LoadedPlugin>.fromOpaque(ctx).takeUnretainedValue()
    }

    @inline(__always)
    static func stream(_ s: OpaquePointer?) -> StreamHandle? {
        guard let s else { return nil }
        return Unmanaged<StreamHandle>.fromOpaque(UnsafeRawPointer(s)).takeUnretainedValue()
    }

    /// Calls `body` with the emitter behind `e` without retaining it (the session keeps it alive).
    @inline(__always)
    private static func withEmitter(_ e: OpaquePointer?, _ body: (EntryEmitter) -> ks_status) -> ks_status {
        guard let e else { return KS_E_INVALID }
        return Unmanaged<EntryEmitter>.fromOpaque(UnsafeRawPointer(e))._withUnsafeGuaranteedRef(body)
    }

    private static func text(_ p: UnsafePointer<CChar>?, _ n: Int, cap: Int = 4096) -> String {
        guard let p, n > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: min(n, cap)), as: UTF8.self)
    }

    private static let log: @convention(c) (UnsafeMutableRawPointer?, ks_log_level, UnsafePointer<CChar>?, Int) -> Void = {
        ctx, level, msg, n in
        guard let plugin = plugin(ctx) else { return }
        let message = Logger.Message(stringLiteral: text(msg, n))
        switch level {
        case KS_LOG_TRACE: plugin.logger.trace(message)
        case KS_LOG_DEBUG: plugin.logger.debug(message)
        case KS_LOG_INFO: plugin.logger.info(message)
        case KS_LOG_WARN: plugin.logger.warning(message)
        default: plugin.logger.error(message)
        }
    }

    private static let counterAdd: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, Int, Int64) -> Void = {
        ctx, name, n, delta in
        guard let plugin = plugin(ctx), n > 0 else { return }
        plugin.count(text(name, n, cap: 128), delta)
    }

    private static let nowNs: @convention(c) (UnsafeMutableRawPointer?) -> Int64 = { ctx in
        plugin(ctx)?.clock.load(ordering: .relaxed) ?? 0
    }

    private static let confirm: @convention(c) (OpaquePointer?) -> Void = { s in
        stream(s)?.confirm()
    }

    private static let violation: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, Int) -> Void = { s, reason, n in
        guard let handle = stream(s) else { return }
        handle.violation(text(reason, n, cap: 512))
    }

    private static let entryBegin: @convention(c) (OpaquePointer?, UnsafePointer<ks_entry_info>?) -> OpaquePointer? = {
        s, info in
        guard let handle = stream(s), let info, let emitter = handle.emitter else { return nil }
        guard emitter.begin(stream: handle, info: info) else { return nil }
        return OpaquePointer(Unmanaged.passUnretained(emitter).toOpaque())
    }
}
