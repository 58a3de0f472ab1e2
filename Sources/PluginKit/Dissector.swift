import PluginAPI

/// The host as one stream sees it: entries, confirmation, violations, logs.
public struct StreamHost: @unchecked Sendable {
    let api: UnsafePointer<ks_host_api>
    let hostContext: UnsafeMutableRawPointer?
    let stream: OpaquePointer

    /// Tells the host the protocol is certain, so it stops keeping bytes for a re-probe.
    public func confirm() {
        api.pointee.confirm(stream)
    }

    /// Reports a protocol violation (counted and logged by the host).
    public func violation(_ reason: String) {
        var reason = reason
        reason.withUTF8 { r in
            r.withMemoryRebound(to: CChar.self) { api.pointee.violation(stream, $0.baseAddress, $0.count) }
        }
    }

    /// Writes a line to the host log.
    public func log(_ level: LogLevel, _ message: String) {
        var message = message
        message.withUTF8 { m in
            m.withMemoryRebound(to: CChar.self) { api.pointee.log(hostContext, level.rawValue, $0.baseAddress, $0.count) }
        }
    }

    /// Adds `delta` to the host counter `name`.
    public func count(_ name: StaticString, _ delta: Int64 = 1) {
        name.utf8Start.withMemoryRebound(to: CChar.self, capacity: name.utf8CodeUnitCount) {
            api.pointee.counter_add(hostContext, $0, name.utf8CodeUnitCount, delta)
        }
    }

    /// The capture clock: time of the newest packet (Unix ns).
    public var nowNs: Int64 { api.pointee.now_ns(hostContext) }

    /// Emits one entry: `summary` for the list row, `build` for the request and
    /// response objects. Returns false when the host refused or the builder failed.
    @discardableResult
    public func emit(_ summary: EntrySummary, _ build: (inout EntryBuilder) -> Void) -> Bool {
        withEntryInfo(summary) { emit(info: $0, build) }
    }

    /// Begins an entry with `info`, builds it, and commits it (or aborts it when the builder failed).
    fileprivate func emit(info: UnsafePointer<ks_entry_info>, _ build: (inout EntryBuilder) -> Void) -> Bool {
        guard let entry = api.pointee.entry_begin(stream, info) else { return false }
        var builder = EntryBuilder(api: api, entry: entry)
        build(&builder)
        if builder.status != KS_OK {
            api.pointee.entry_abort(entry)
            return false
        }
        return api.pointee.entry_commit(entry) == KS_OK
    }
}

/// The list-row texts of an entry as bytes the caller owns (UTF-8), for plugins
/// that emit entries without making a String per entry. A nil field keeps the
/// text of the `EntrySummary` it is given with.
public struct EntryTexts {
    public var method: UnsafeRawBufferPointer?
    public var summary: UnsafeRawBufferPointer?
    public var statusText: UnsafeRawBufferPointer?

    public init(
        method: UnsafeRawBufferPointer? = nil, summary: UnsafeRawBufferPointer? = nil,
        statusText: UnsafeRawBufferPointer? = nil
    ) {
        self.method = method
        self.summary = summary
        self.statusText = statusText
    }
}

extension StreamHost {
    /// Emits one entry like `emit(_:_:)`, with list-row texts taken from `texts`
    /// where given (the bytes need only live during the call).
    @discardableResult
    public func emit(_ summary: EntrySummary, texts: EntryTexts, _ build: (inout EntryBuilder) -> Void) -> Bool {
        withEntryInfo(summary) { given in
            var info = given.pointee
            if let m = texts.method {
                info.method = m.baseAddress?.assumingMemoryBound(to: CChar.self)
                info.method_len = m.count
            }
            if let s = texts.summary {
                info.summary = s.baseAddress?.assumingMemoryBound(to: CChar.self)
                info.summary_len = s.count
            }
            if let t = texts.statusText {
                info.status_text = t.baseAddress?.assumingMemoryBound(to: CChar.self)
                info.status_text_len = t.count
            }
            return withUnsafePointer(to: &info) { emit(info: $0, build) }
        }
    }
}

/// Calls `body` with a `ks_entry_info` whose strings point into `summary`.
private func withEntryInfo<R>(_ summary: EntrySummary, _ body: (UnsafePointer<ks_entry_info>) -> R) -> R {
    var info = ks_entry_info()
    info.struct_size = UInt32(MemoryLayout<ks_entry_info>.size)
    info.flags = summary.flags.rawValue
    info.protocol_index = summary.protocolIndex
    info.status = summary.status
    info.request_ts_ns = summary.requestTimestampNs
    info.response_ts_ns = summary.responseTimestampNs
    info.request_size = summary.requestSize
    info.response_size = summary.responseSize
    return withOptionalUTF8(summary.method) { m, ml in
        info.method = m
        info.method_len = ml
        return withOptionalUTF8(summary.summary) { s, sl in
            info.summary = s
            info.summary_len = sl
            return withOptionalUTF8(summary.statusText) { t, tl in
                info.status_text = t
                info.status_text_len = tl
                return withUnsafePointer(to: &info) { body($0) }
            }
        }
    }
}

private func withOptionalUTF8<R>(_ s: String?, _ body: (UnsafePointer<CChar>?, Int) -> R) -> R {
    guard var s else { return body(nil, 0) }
    return s.withUTF8 { u in u.withMemoryRebound(to: CChar.self) { body($0.baseAddress, $0.count) } }
}

/// A protocol dissector written in Swift. One instance per stream (a TCP
/// connection or a UDP pseudo-flow); the host drives it from one thread at a time.
public protocol Dissector: AnyObject {
    /// The descriptor's metadata.
    static var metadata: PluginMetadata { get }

    /// Called once when the host starts the plugin, with the configuration string
    /// the deployment gave it (empty by default). Return false to refuse to start.
    static func configure(_ config: String) -> Bool

    /// Decides from the first bytes of one direction whether the flow speaks this protocol.
    /// Must be cheap and stateless.
    static func probe(flow: Flow, chunk: Chunk) -> ProbeResult

    /// A new stream.
    init(flow: Flow, host: StreamHost)

    /// Bytes of a TCP stream (unconsumed + new).
    func receive(_ chunk: Chunk) -> ParseResult

    /// One UDP datagram.
    func datagram(_ chunk: Chunk) -> ParseResult

    /// `length` bytes were lost in `direction`; return true to keep receiving it.
    func gap(direction: Direction, length: UInt64) -> Bool

    /// No more bytes will come in `direction`.
    func endOfStream(direction: Direction)

    /// The capture clock advanced; expire what waited too long.
    func tick(nowNs: Int64)

    /// The stream ends; emit what is pending. Called exactly once.
    func close(reason: CloseReason)
}

extension Dissector {
    public static func configure(_ config: String) -> Bool { true }
    public func datagram(_ chunk: Chunk) -> ParseResult { .error }
    public func gap(direction: Direction, length: UInt64) -> Bool { false }
    public func endOfStream(direction: Direction) {}
    public func tick(nowNs: Int64) {}
}
