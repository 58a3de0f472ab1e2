/// A value crossing between Swift and a script. Objects and arrays travel as
/// JSON text (`json`), which is how entries are made anyway.
public enum ScriptValue: Sendable, Equatable {
    case undefined
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    /// An object or array, as JSON text (parsed into a value when passed in).
    case json(String)
    /// JSON text as bytes (an entry as the dissector wrote it), passed in without a copy to String.
    case jsonBytes([UInt8])
    /// A flat array of numbers (cheap to pass: no JSON).
    case numbers([Double])

    /// The value as text for logs and helpers taking text.
    public var text: String {
        switch self {
        case .undefined: "undefined"
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .number(let n): n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
        case .string(let s): s
        case .json(let j): j
        case .jsonBytes(let b): String(decoding: b, as: UTF8.self)
        case .numbers(let n): n.map { ScriptValue.number($0).text }.joined(separator: ",")
        }
    }

    public var isNullish: Bool { self == .undefined || self == .null }
}

/// Why a call into a script did not complete.
public enum ScriptFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The script threw (or did not compile): the error's message and stack.
    case thrown(String)
    /// The call ran past its time budget.
    case timedOut(budgetMs: Int)
    /// The script needed more memory than its cap.
    case outOfMemory(limitBytes: Int)

    public var description: String {
        switch self {
        case .thrown(let text): text
        case .timedOut(let ms): "stopped: ran longer than its \(ms) ms budget (an endless loop?)"
        case .outOfMemory(let limit): "stopped: needed more than its \(limit >> 20) MiB memory cap"
        }
    }

    /// A failure after which the script's heap is not trusted again.
    public var isFatal: Bool {
        if case .thrown = self { return false }
        return true
    }
}

/// What one heap may use.
public struct ScriptLimits: Sendable {
    /// Most bytes a script's heap may hold.
    public var memoryBytes = 64 << 20
    /// Longest one call into the script (a hook, a job, the top level) may run,
    /// not counting time spent inside helpers (which have their own bounds).
    public var callBudgetMs = 1000

    public init(memoryBytes: Int = 64 << 20, callBudgetMs: Int = 1000) {
        self.memoryBytes = memoryBytes
        self.callBudgetMs = callBudgetMs
    }
}

/// A native helper: receives the call's arguments, returns a value or throws a
/// `HelperError` (which the script sees as an Error it may catch).
public typealias NativeHelper = ([ScriptValue]) throws(HelperError) -> ScriptValue

/// An error a helper reports to the script.
public struct HelperError: Error, Sendable {
    public var message: String
    /// Refused for the scripting directory's disk cap (the runner logs these too).
    public var isStorageRefusal = false
    public init(_ message: String) { self.message = message }
}

/// One script's JavaScript heap, behind an interface small enough to put
/// another engine under. Not thread-safe: one thread uses a heap at a time.
public protocol ScriptEngine: AnyObject {
    /// Installs native helpers as global functions at dotted paths ("file.write").
    func install(_ helpers: [(path: String, helper: NativeHelper)])
    /// Runs `source` as a program (its top level), within the call budget.
    func run(source: String, name: String) throws(ScriptFailure)
    /// Whether the global `name` is a function (a hook the script defines).
    func hasFunction(_ name: String) -> Bool
    /// Calls the global function `name`; `.undefined` when it does not exist.
    func call(_ name: String, _ arguments: [ScriptValue]) throws(ScriptFailure) -> ScriptValue
    /// Calls `name`, a function handling a batch of `items` (the prelude's
    /// loops): it may restart the call's deadline once per item (`__ks.restart`),
    /// so each item gets the budget of one call.
    func call(_ name: String, _ arguments: [ScriptValue], items: Int) throws(ScriptFailure) -> ScriptValue
    /// Bytes the heap holds now, and at most so far.
    var memoryUsed: Int { get }
    var memoryPeak: Int { get }
}
