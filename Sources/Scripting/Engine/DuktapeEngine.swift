import CDuktape
import Host

#if canImport(Glibc)
import Glibc
#endif

/// `ScriptEngine` on Duktape (ES5.1): one heap per script, its allocations
/// counted against a cap by its own allocator, and every call given a
/// deadline that Duktape's interrupt check enforces (see Sources/CDuktape).
public final class DuktapeEngine: ScriptEngine {
    private let budget: UnsafeMutablePointer<ks_duk_budget>
    private let context: OpaquePointer
    private let limits: ScriptLimits
    private var helpers: [NativeHelper] = []
    /// A helper's result, kept alive until C has pushed it.
    private var resultBytes: [UInt8] = []

    public init(limits: ScriptLimits) throws(ScriptFailure) {
        self.limits = limits
        budget = .allocate(capacity: 1)
        budget.initialize(to: ks_duk_budget())
        budget.pointee.limit_bytes = limits.memoryBytes
        budget.pointee.budget_ns = Int64(limits.callBudgetMs) * 1_000_000
        guard let ctx = ks_duk_create(budget) else {
            budget.deallocate()
            throw .outOfMemory(limitBytes: limits.memoryBytes)
        }
        context = ctx
        DuktapeEngine.registerHandler
        budget.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
        let top = ks_duk_top(context)
        _ = ks_duk_install_restart(context, "__ks.restart")
        ks_duk_pop_to(context, top)
    }

    deinit {
        ks_duk_destroy(context)
        budget.deallocate()
    }

    public var memoryUsed: Int { budget.pointee.used_bytes }
    public var memoryPeak: Int { budget.pointee.peak_bytes }
    /// Whether the running call (or the item it is on) was refused an allocation for the cap.
    public var allocationRefused: Bool { budget.pointee.refused_allocation != 0 }

    public func install(_ list: [(path: String, helper: NativeHelper)]) {
        for (path, helper) in list {
            let top = ks_duk_top(context)
            defer { ks_duk_pop_to(context, top) }
            helpers.append(helper)
            _ = ks_duk_install(context, path, Int32(helpers.count - 1))
        }
    }

    public func run(source: String, name: String) throws(ScriptFailure) {
        _ = try guarded { ctx in
            var text = source
            return text.withUTF8 { ks_duk_eval(ctx, UnsafeRawPointer($0.baseAddress)?.assumingMemoryBound(to: CChar.self), $0.count, name) }
        }
    }

    public func hasFunction(_ name: String) -> Bool {
        // A getter on the global runs script code: under the budget like any call.
        (try? guarded { ctx in
            let found = ks_duk_has_function(ctx, name)
            ks_duk_push_bool(ctx, found)
            return 0
        }) == .bool(true)
    }

    public func call(_ name: String, _ arguments: [ScriptValue]) throws(ScriptFailure) -> ScriptValue {
        try call(name, arguments, items: 0)
    }

    public func call(_ name: String, _ arguments: [ScriptValue], items: Int) throws(ScriptFailure) -> ScriptValue {
        try guarded(restarts: items) { ctx in
            ScriptValueBridge.withCValues(arguments) { args in
                ks_duk_call(ctx, name, args.baseAddress, Int32(args.count))
            }
        }
    }

    /// Runs `body` (one protected call) under the call budget, and turns its
    /// outcome into the value it left or the failure. Reading the value (a
    /// `toJSON`, a getter) and popping it (a finalizer) run script code too, so
    /// the deadline stays set until both are done.
    private func guarded(restarts: Int = 0, _ body: (OpaquePointer) -> Int32) throws(ScriptFailure) -> ScriptValue {
        let top = ks_duk_top(context)
        budget.pointee.timed_out = 0
        budget.pointee.refused_allocation = 0
        budget.pointee.restarts_left = Int64(restarts)
        budget.pointee.deadline_ns = monotonicNanoseconds() + budget.pointee.budget_ns
        defer { budget.pointee.restarts_left = 0 }
        let rc = body(context)
        var value = ScriptValue.undefined
        if rc >= 0 {
            var out = ks_duk_value()
            ks_duk_read(context, -1, &out)
            value = ScriptValueBridge.value(out)
        }
        ks_duk_pop_to(context, top)
        let timedOut = budget.pointee.timed_out != 0
        let refused = budget.pointee.refused_allocation != 0
        budget.pointee.deadline_ns = 0
        if timedOut { throw .timedOut(budgetMs: limits.callBudgetMs) }
        if rc <= 0 { return value }
        if refused { throw .outOfMemory(limitBytes: limits.memoryBytes) }
        throw .thrown(value.text)
    }

    // MARK: Native helpers

    private static let registerHandler: Void = ks_duk_set_native_handler { ctx, magic, result in
        guard let ctx, let result, let budget = ks_duk_budget_of(ctx), let owner = budget.pointee.owner else { return }
        let engine = Unmanaged<DuktapeEngine>.fromOpaque(owner).takeUnretainedValue()
        engine.dispatch(ctx, Int(magic), budget, result)
    }

    private func dispatch(_ ctx: OpaquePointer, _ index: Int, _ budget: UnsafeMutablePointer<ks_duk_budget>,
                          _ result: UnsafeMutablePointer<ks_duk_value>) {
        var arguments: [ScriptValue] = []
        let count = Int(ks_duk_top(ctx))
        arguments.reserveCapacity(count)
        for i in 0..<count {
            var v = ks_duk_value()
            ks_duk_read(ctx, Int32(i), &v)
            arguments.append(ScriptValueBridge.value(v))
        }
        // Time inside a helper (a webhook, a snapshot) is bounded by the helper,
        // not charged to the script's budget.
        let started = monotonicNanoseconds()
        let outcome: Result<ScriptValue, HelperError>
        do throws(HelperError) {
            outcome = .success(try helpers[index](arguments))
        } catch {
            outcome = .failure(error)
        }
        if budget.pointee.deadline_ns != 0 && budget.pointee.timed_out == 0 {
            budget.pointee.deadline_ns += monotonicNanoseconds() - started
        }
        result.pointee = ks_duk_value()
        switch outcome {
        case .failure(let error):
            resultBytes = Array(error.message.utf8)
            result.pointee.kind = Int32(KS_VALUE_ERROR)
        case .success(let value):
            switch value {
            case .undefined: result.pointee.kind = Int32(KS_VALUE_UNDEFINED)
            case .null: result.pointee.kind = Int32(KS_VALUE_NULL)
            case .bool(let b):
                result.pointee.kind = Int32(KS_VALUE_BOOL)
                result.pointee.number = b ? 1 : 0
            case .number(let n):
                result.pointee.kind = Int32(KS_VALUE_NUMBER)
                result.pointee.number = n
            case .string(let s):
                resultBytes = Array(s.utf8)
                result.pointee.kind = Int32(KS_VALUE_STRING)
            case .json(let s):
                resultBytes = Array(s.utf8)
                result.pointee.kind = Int32(KS_VALUE_JSON)
            case .numbers(let n):
                resultBytes = Array(("[" + n.map { ScriptValue.number($0).text }.joined(separator: ",") + "]").utf8)
                result.pointee.kind = Int32(KS_VALUE_JSON)
            case .jsonBytes(let b):
                resultBytes = b
                result.pointee.kind = Int32(KS_VALUE_JSON)
            }
        }
        if result.pointee.kind == Int32(KS_VALUE_STRING) || result.pointee.kind == Int32(KS_VALUE_JSON)
            || result.pointee.kind == Int32(KS_VALUE_ERROR) {
            resultBytes.withUnsafeBufferPointer { b in
                result.pointee.bytes = UnsafeRawPointer(b.baseAddress)?.assumingMemoryBound(to: CChar.self)
                result.pointee.length = b.count
            }
        }
    }
}

/// Conversions between `ScriptValue` and the C layer's `ks_duk_value`.
enum ScriptValueBridge {
    static func value(_ v: ks_duk_value) -> ScriptValue {
        func text() -> String {
            guard let bytes = v.bytes else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: bytes, count: v.length), as: UTF8.self)
        }
        switch Int(v.kind) {
        case KS_VALUE_NULL: return .null
        case KS_VALUE_BOOL: return .bool(v.number != 0)
        case KS_VALUE_NUMBER: return .number(v.number)
        case KS_VALUE_STRING: return .string(text())
        case KS_VALUE_JSON: return .json(text())
        default: return .undefined
        }
    }

    /// Calls `body` with the arguments as C values (valid only during the call).
    static func withCValues<R>(_ values: [ScriptValue], _ body: (UnsafeBufferPointer<ks_duk_value>) -> R) -> R {
        var pinned: [UnsafeMutableRawPointer] = []
        defer { pinned.forEach { $0.deallocate() } }
        func pin(_ bytes: some Collection<UInt8>, into c: inout ks_duk_value) {
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 1)
            // One copy (an entry batch is up to a MiB): not element by element.
            let copied: Void? = bytes.withContiguousStorageIfAvailable { b in
                if let base = b.baseAddress { p.copyMemory(from: base, byteCount: b.count) }
            }
            if copied == nil {
                _ = UnsafeMutableRawBufferPointer(start: p, count: bytes.count).initializeMemory(as: UInt8.self, from: bytes)
            }
            pinned.append(p)
            c.bytes = UnsafePointer(p.assumingMemoryBound(to: CChar.self))
            c.length = bytes.count
        }
        var cValues: [ks_duk_value] = []
        cValues.reserveCapacity(values.count)
        for v in values {
            var c = ks_duk_value()
            switch v {
            case .undefined: c.kind = Int32(KS_VALUE_UNDEFINED)
            case .null: c.kind = Int32(KS_VALUE_NULL)
            case .bool(let b): c.kind = Int32(KS_VALUE_BOOL); c.number = b ? 1 : 0
            case .number(let n): c.kind = Int32(KS_VALUE_NUMBER); c.number = n
            case .string(let s): c.kind = Int32(KS_VALUE_STRING); pin(s.utf8, into: &c)
            case .json(let s): c.kind = Int32(KS_VALUE_JSON); pin(s.utf8, into: &c)
            case .jsonBytes(let b): c.kind = Int32(KS_VALUE_JSON); pin(b, into: &c)
            case .numbers(let n):
                c.kind = Int32(KS_VALUE_NUMBERS)
                let p = UnsafeMutablePointer<Double>.allocate(capacity: max(1, n.count))
                p.initialize(from: n, count: n.count)
                pinned.append(UnsafeMutableRawPointer(p))
                c.numbers = UnsafePointer(p)
                c.length = n.count
            }
            cValues.append(c)
        }
        return cValues.withUnsafeBufferPointer(body)
    }
}
