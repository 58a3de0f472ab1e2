import PluginAPI

/// One finished entry, handed to an `EntrySink`. Every view is valid only
/// during the `emit` call; copy what you keep.
public struct EntryView {
    /// The complete entry as one JSON object (no trailing newline).
    public var json: UnsafeRawBufferPointer
    public var plugin: LoadedPlugin
    public var protocolInfo: ProtocolMetadata
    public var flags: UInt32
    public var status: Int32
    public var method: UnsafeRawBufferPointer
    public var summary: UnsafeRawBufferPointer
    public var statusText: UnsafeRawBufferPointer
    public var requestTimestampNs: Int64
    public var responseTimestampNs: Int64
    public var requestSize: UInt64
    public var responseSize: UInt64
    public var client: ks_endpoint
    public var server: ks_endpoint
    /// `KS_L4_TCP` or `KS_L4_UDP`.
    public var layer4: ks_layer4
    public var streamID: UInt64
    public var index: Int

    /// Start of the exchange: the request time, else the response time.
    public var timestampNs: Int64 { requestTimestampNs != 0 ? requestTimestampNs : responseTimestampNs }
}

/// Receives finished entries.
public protocol EntrySink: AnyObject {
    func emit(_ entry: EntryView)
}

/// Builds entries for plugins through the host API's builder calls, then writes
/// them, with the host's envelope, to a sink. One emitter serves one dissection
/// session (one thread); its buffers are reused for every entry.
final class EntryEmitter {
    /// Largest entry accepted, in bytes of JSON.
    let maxEntryBytes: Int
    /// Deepest nesting accepted inside an entry.
    let maxDepth = 64
    let sink: EntrySink

    private var writer = JSONWriter(capacity: 16 << 10)
    /// Per open container: bit 0 = is array, bit 1 = has a first element.
    private var stack: ContainerStack
    private var building = false
    private var failed = false
    private var info = ks_entry_info()
    private var stream: StreamHandle?
    private var summaryStart = 0
    private var textFields: [UInt8] = []
    private var methodRange = 0..<0
    private var summaryRange = 0..<0
    private var statusTextRange = 0..<0
    private(set) var entriesEmitted = 0
    private(set) var entriesRefused = 0

    /// Pod names for `src` and `dst`, when known.
    let names: EndpointNames?

    init(sink: EntrySink, maxEntryBytes: Int = 8 << 20, names: EndpointNames? = nil) {
        self.sink = sink
        self.names = names
        self.maxEntryBytes = maxEntryBytes
        stack = ContainerStack(capacity: maxDepth)
        textFields.reserveCapacity(512)
    }

    /// Top-level keys the host writes itself; plugins may not use them.
    static let reservedKeys: [[UInt8]] = [
        "id", "stream", "index", "worker", "node", "protocol", "tls", "src", "dst", "outgoing", "timestamp",
        "startTime", "elapsedTime", "requestSize", "responseSize", "method", "summary", "status", "statusText",
        "flags", "unanswered", "passed", "failed", "process", "pid",
    ].map { Array($0.utf8) }

    static func isReserved(_ key: UnsafeRawBufferPointer) -> Bool {
        reservedKeys.contains { $0.count == key.count && $0.withUnsafeBytes { $0.elementsEqual(key) } }
    }

    // MARK: Builder calls

    func begin(stream: StreamHandle, info given: UnsafePointer<ks_entry_info>) -> Bool {
        guard !building else {
            entriesRefused += 1
            stream.plugin.count("host.entry_begin_while_building")
            return false
        }
        // Read only the fields the plugin's struct has; a zeroed struct covers the rest.
        info = ks_entry_info()
        let size = min(Int(given.pointee.struct_size), MemoryLayout<ks_entry_info>.size)
        guard size >= MemoryLayout<UInt32>.size else { return false }
        withUnsafeMutableBytes(of: &info) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: given, count: size))
        }
        info.struct_size = UInt32(MemoryLayout<ks_entry_info>.size)
        if Int(info.protocol_index) >= stream.plugin.metadata.protocols.count { info.protocol_index = 0 }
        self.stream = stream
        building = true
        failed = false
        stack.removeAll()
        writer.reset()
        textFields.removeAll(keepingCapacity: true)
        methodRange = appendText(info.method, info.method_len)
        summaryRange = appendText(info.summary, info.summary_len)
        statusTextRange = appendText(info.status_text, info.status_text_len)
        writeEnvelope(stream: stream)
        return true
    }

    private func appendText(_ p: UnsafePointer<CChar>?, _ n: Int) -> Range<Int> {
        guard let p, n > 0 else { return 0..<0 }
        let start = textFields.count
        let capped = min(n, 4096)
        textFields.append(contentsOf: UnsafeRawBufferPointer(start: p, count: capped))
        return start..<textFields.count
    }

    /// Writes `key:` (with the separating comma) for the current container.
    private func key(_ key: UnsafePointer<CChar>?, _ length: Int) -> ks_status {
        guard building else { return KS_E_STATE }
        guard !failed else { return KS_E_STATE }
        guard writer.count < maxEntryBytes else {
            failed = true
            return KS_E_LIMIT
        }
        if let top = stack.last {
            if top & 2 != 0 { writer.raw(UInt8(ascii: ",")) }
            stack.setLast(top | 2)
            if top & 1 != 0 { return KS_OK }  // array element: no key
        } else {
            // Top level of the entry: the envelope already wrote fields before.
            writer.raw(UInt8(ascii: ","))
        }
        guard let key, length > 0, length <= 1024 else {
            failed = true
            return KS_E_INVALID
        }
        let k = UnsafeRawBufferPointer(start: key, count: length)
        if stack.isEmpty, Self.isReserved(k) {
            failed = true
            return KS_E_INVALID
        }
        writer.string(k)
        writer.raw(UInt8(ascii: ":"))
        return KS_OK
    }

    func open(array: Bool, key k: UnsafePointer<CChar>?, _ length: Int) -> ks_status {
        let s = key(k, length)
        guard s == KS_OK else { return s }
        guard stack.count < maxDepth else {
            failed = true
            return KS_E_LIMIT
        }
        writer.raw(array ? UInt8(ascii: "[") : UInt8(ascii: "{"))
        stack.append(array ? 1 : 0)
        return KS_OK
    }

    func close(array: Bool) -> ks_status {
        guard building, !failed else { return KS_E_STATE }
        guard let top = stack.last, (top & 1 != 0) == array else {
            failed = true
            return KS_E_STATE
        }
        stack.removeLast()
        writer.raw(array ? UInt8(ascii: "]") : UInt8(ascii: "}"))
        return KS_OK
    }

    func string(key k: UnsafePointer<CChar>?, _ length: Int, value: UnsafeRawBufferPointer) -> ks_status {
        let s = key(k, length)
        guard s == KS_OK else { return s }
        writer.string(value)
        return KS_OK
    }

    func bytes(key k: UnsafePointer<CChar>?, _ length: Int, value: UnsafeRawBufferPointer) -> ks_status {
        let s = key(k, length)
        guard s == KS_OK else { return s }
        writer.base64(value)
        return KS_OK
    }

    func scalar(key k: UnsafePointer<CChar>?, _ length: Int, _ write: (inout JSONWriter) -> Void) -> ks_status {
        let s = key(k, length)
        guard s == KS_OK else { return s }
        write(&writer)
        return KS_OK
    }

    func commit() -> ks_status {
        guard building, let stream else { return KS_E_STATE }
        defer {
            building = false
            self.stream = nil
        }
        guard !failed else {
            entriesRefused += 1
            return KS_E_STATE
        }
        while let top = stack.popLast() {
            writer.raw(top & 1 != 0 ? UInt8(ascii: "]") : UInt8(ascii: "}"))
        }
        writer.raw(UInt8(ascii: "}"))
        guard writer.count <= maxEntryBytes else {
            entriesRefused += 1
            stream.plugin.count("host.entries_too_large")
            return KS_E_LIMIT
        }
        let index = stream.nextEntryIndex
        stream.nextEntryIndex += 1
        entriesEmitted += 1
        let plugin = stream.plugin
        writer.withUnsafeBytes { json in
            textFields.withUnsafeBytes { text in
                let view = EntryView(
                    json: json,
                    plugin: plugin,
                    protocolInfo: plugin.metadata.protocols[Int(info.protocol_index)],
                    flags: info.flags,
                    status: info.status,
                    method: UnsafeRawBufferPointer(rebasing: text[methodRange]),
                    summary: UnsafeRawBufferPointer(rebasing: text[summaryRange]),
                    statusText: UnsafeRawBufferPointer(rebasing: text[statusTextRange]),
                    requestTimestampNs: info.request_ts_ns,
                    responseTimestampNs: info.response_ts_ns,
                    requestSize: info.request_size,
                    responseSize: info.response_size,
                    client: stream.flow.client,
                    server: stream.flow.server,
                    layer4: stream.flow.layer4,
                    streamID: stream.flow.flow_id,
                    index: index)
                sink.emit(view)
            }
        }
        plugin.count("host.entries")
        return KS_OK
    }

    func abort() {
        if building { stream?.plugin.count("host.entries_aborted") }
        building = false
        stream = nil
    }

    // MARK: Envelope

    /// Writes `{"id":…,…` up to (not including) the plugin's first key.
    private func writeEnvelope(stream: StreamHandle) {
        let proto = stream.plugin.metadata.protocols[Int(info.protocol_index)]
        let index = stream.nextEntryIndex
        writer.raw("{\"id\":\"")
        EndpointFormatter.hex(stream.flow.flow_id, into: &writer)
        writer.raw(UInt8(ascii: "-"))
        writer.uint(UInt64(index))
        writer.raw("\",\"stream\":\"")
        EndpointFormatter.hex(stream.flow.flow_id, into: &writer)
        writer.raw("\",\"index\":")
        writer.uint(UInt64(index))
        writer.raw(",\"protocol\":")
        writer.raw(stream.plugin.protocolJSON[Int(info.protocol_index)])
        if let origin = stream.tlsOrigin {
            writer.raw(",\"tls\":true,\"process\":")
            writer.string(origin.name)
            writer.raw(",\"pid\":")
            writer.int(Int64(origin.pid))
            writer.raw(",\"src\":")
        } else {
            writer.raw(",\"tls\":false,\"src\":")
        }
        EndpointFormatter.json(stream.flow.client, names: names, into: &writer)
        writer.raw(",\"dst\":")
        EndpointFormatter.json(stream.flow.server, names: names, into: &writer)
        let start = info.request_ts_ns != 0 ? info.request_ts_ns : info.response_ts_ns
        writer.raw(",\"timestamp\":")
        writer.int(start / 1_000_000)
        writer.raw(",\"elapsedTime\":")
        if info.request_ts_ns != 0 && info.response_ts_ns != 0 {
            writer.milliseconds(fromNanoseconds: max(0, info.response_ts_ns - info.request_ts_ns))
        } else {
            writer.raw(UInt8(ascii: "0"))
        }
        writer.raw(",\"requestSize\":")
        writer.uint(info.request_size)
        writer.raw(",\"responseSize\":")
        writer.uint(info.response_size)
        textFields.withUnsafeBytes { text in
            if !methodRange.isEmpty {
                writer.raw(",\"method\":")
                writer.string(UnsafeRawBufferPointer(rebasing: text[methodRange]))
            }
            if !summaryRange.isEmpty {
                writer.raw(",\"summary\":")
                writer.string(UnsafeRawBufferPointer(rebasing: text[summaryRange]))
            }
            if info.status != 0 {
                writer.raw(",\"status\":")
                writer.int(Int64(info.status))
            }
            if !statusTextRange.isEmpty {
                writer.raw(",\"statusText\":")
                writer.string(UnsafeRawBufferPointer(rebasing: text[statusTextRange]))
            }
        }
        if info.flags & KS_ENTRY_REQUEST_ONLY != 0 { writer.raw(",\"unanswered\":true") }
        if info.flags != 0 {
            writer.raw(",\"flags\":[")
            var first = true
            for (bit, name) in Self.flagNames where info.flags & bit != 0 {
                if !first { writer.raw(UInt8(ascii: ",")) }
                first = false
                writer.string(name)
            }
            writer.raw(UInt8(ascii: "]"))
        }
        _ = proto
    }

    static let flagNames: [(UInt32, StaticString)] = [
        (KS_ENTRY_REQUEST_ONLY, "requestOnly"), (KS_ENTRY_RESPONSE_ONLY, "responseOnly"),
        (KS_ENTRY_TIMED_OUT, "timedOut"), (KS_ENTRY_MALFORMED, "malformed"), (KS_ENTRY_TRUNCATED, "truncated"),
        (KS_ENTRY_AFTER_GAP, "afterGap"),
    ]
}

/// A fixed-capacity stack of container states in raw memory (no array
/// uniqueness checks on the per-value path).
struct ContainerStack: ~Copyable {
    private let base: UnsafeMutablePointer<UInt8>
    let capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    deinit { base.deallocate() }

    var isEmpty: Bool { count == 0 }
    var last: UInt8? { count > 0 ? base[count - 1] : nil }

    mutating func append(_ v: UInt8) {
        precondition(count < capacity)
        base[count] = v
        count += 1
    }

    mutating func setLast(_ v: UInt8) { base[count - 1] = v }
    mutating func removeLast() { count -= 1 }
    mutating func popLast() -> UInt8? {
        guard count > 0 else { return nil }
        count -= 1
        return base[count]
    }
    mutating func removeAll() { count = 0 }
}
