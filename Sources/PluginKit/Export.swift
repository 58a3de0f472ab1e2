import PluginAPI
import Synchronization

/// Builds the C descriptor of a Swift dissector. A plugin library exports it with:
///
/// ```swift
/// @_cdecl("ks_plugin_v1")
/// public func ks_plugin_v1() -> UnsafePointer<ks_plugin_descriptor> {
///     PluginExport.descriptor(for: MyDissector.self)
/// }
/// ```
///
/// The descriptor is built once and lives until the library is unloaded.
public enum PluginExport {
    /// The descriptor for `type`; repeated calls return the same pointer.
    public static func descriptor<D: Dissector>(for type: D.Type) -> UnsafePointer<ks_plugin_descriptor> {
        let address: UInt = cache.withLock { slot in
            if let existing = slot.descriptor { return UInt(bitPattern: existing) }
            let made = makeDescriptor(type)
            slot.descriptor = made
            slot.dissector = type
            return UInt(bitPattern: made)
        }
        return UnsafePointer(bitPattern: address)!
    }

    struct Slot: @unchecked Sendable {
        var descriptor: UnsafeMutablePointer<ks_plugin_descriptor>?
        var dissector: (any Dissector.Type)?
    }
    static let cache = Mutex(Slot())

    static var dissectorType: (any Dissector.Type)? { cache.withLock { $0.dissector } }
}

/// Copies `s` into a NUL-terminated C string that is never freed (descriptor lifetime).
private func permanentCString(_ s: String) -> UnsafePointer<CChar> {
    let utf8 = Array(s.utf8)
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count + 1)
    for (i, b) in utf8.enumerated() { p[i] = CChar(bitPattern: b) }
    p[utf8.count] = 0
    return UnsafePointer(p)
}

private func makeDescriptor<D: Dissector>(_ type: D.Type) -> UnsafeMutablePointer<ks_plugin_descriptor> {
    let m = D.metadata
    let d = UnsafeMutablePointer<ks_plugin_descriptor>.allocate(capacity: 1)
    d.initialize(to: ks_plugin_descriptor())
    d.pointee.struct_size = UInt32(MemoryLayout<ks_plugin_descriptor>.size)
    d.pointee.abi_major = UInt16(KS_ABI_MAJOR)
    d.pointee.abi_minor = UInt16(KS_ABI_MINOR)
    d.pointee.name = permanentCString(m.name)
    d.pointee.version = permanentCString(m.version)
    d.pointee.vendor = permanentCString(m.vendor)
    d.pointee.license = permanentCString(m.license)
    d.pointee.description = permanentCString(m.description)
    d.pointee.reference_url = permanentCString(m.referenceURL)
    d.pointee.layer4 = m.layer4.rawValue
    d.pointee.flags = m.flags.rawValue

    let ports = UnsafeMutablePointer<ks_port_range>.allocate(capacity: max(1, m.defaultPorts.count))
    for (i, r) in m.defaultPorts.enumerated() {
        ports[i] = ks_port_range(first: r.lowerBound, last: r.upperBound)
    }
    d.pointee.default_ports = UnsafePointer(ports)
    d.pointee.default_port_count = UInt32(m.defaultPorts.count)
    d.pointee.priority = m.priority
    d.pointee.probe_min_bytes = m.probeMinBytes
    d.pointee.probe_max_bytes = m.probeMaxBytes
    d.pointee.max_buffer_bytes = m.maxBufferBytes

    let protocols = UnsafeMutablePointer<ks_protocol>.allocate(capacity: max(1, m.protocols.count))
    for (i, p) in m.protocols.enumerated() {
        var c = ks_protocol()
        c.struct_size = UInt32(MemoryLayout<ks_protocol>.size)
        c.name = permanentCString(p.name)
        c.long_name = permanentCString(p.longName)
        c.abbreviation = permanentCString(p.abbreviation)
        c.version = permanentCString(p.version)
        c.macro = permanentCString(([p.macro] + p.extraMacros).joined(separator: " "))
        c.background_color = permanentCString(p.backgroundColor)
        c.foreground_color = permanentCString(p.foregroundColor)
        c.reference_url = permanentCString(p.referenceURL)
        protocols[i] = c
    }
    d.pointee.protocols = UnsafePointer(protocols)
    d.pointee.protocol_count = UInt32(m.protocols.count)

    d.pointee.`init` = pluginInit
    d.pointee.shutdown = pluginShutdown
    d.pointee.probe = pluginProbe
    d.pointee.stream_open = pluginStreamOpen
    if m.layer4.contains(.tcp) { d.pointee.stream_data = pluginStreamData }
    if m.layer4.contains(.udp) { d.pointee.datagram = pluginDatagram }
    d.pointee.stream_gap = pluginStreamGap
    d.pointee.stream_eof = pluginStreamEOF
    d.pointee.stream_tick = pluginStreamTick
    d.pointee.stream_close = pluginStreamClose
    return d
}

// MARK: - C trampolines

/// Per-plugin state behind `plugin_ctx`.
final class PluginContext {
    let type: any Dissector.Type
    let api: UnsafePointer<ks_host_api>
    let hostContext: UnsafeMutableRawPointer?

    init(type: any Dissector.Type, api: UnsafePointer<ks_host_api>, hostContext: UnsafeMutableRawPointer?) {
        self.type = type
        self.api = api
        self.hostContext = hostContext
    }
}

/// Per-stream state behind `stream_state`.
final class StreamBox {
    let dissector: any Dissector
    init(_ dissector: any Dissector) { self.dissector = dissector }
}

@inline(__always)
private func box(_ state: UnsafeMutableRawPointer?) -> StreamBox {
    Unmanaged<StreamBox>.fromOpaque(state!).takeUnretainedValue()
}

private let pluginInit:
    @convention(c) (
        UnsafePointer<ks_host_api>?, UnsafeMutableRawPointer?, UnsafePointer<CChar>?, Int,
        UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    ) -> ks_status = { api, hostCtx, config, configLength, out in
        guard let api, let out, let type = PluginExport.dissectorType else { return KS_E_INVALID }
        guard api.pointee.abi_major == UInt16(KS_ABI_MAJOR) else { return KS_E_VERSION }
        let text = config.map {
            String(decoding: UnsafeRawBufferPointer(start: $0, count: configLength), as: UTF8.self)
        } ?? ""
        guard type.configure(text) else { return KS_E_INVALID }
        let ctx = PluginContext(type: type, api: api, hostContext: hostCtx)
        out.pointee = Unmanaged.passRetained(ctx).toOpaque()
        return KS_OK
    }

private let pluginShutdown: @convention(c) (UnsafeMutableRawPointer?) -> Void = { ctx in
    guard let ctx else { return }
    Unmanaged<PluginContext>.fromOpaque(ctx).release()
}

private let pluginProbe:
    @convention(c) (
        UnsafeMutableRawPointer?, UnsafePointer<ks_flow_info>?, UnsafePointer<ks_chunk>?,
        UnsafeMutablePointer<ks_probe_result>?
    ) -> Void = { ctx, flow, chunk, result in
        guard let ctx, let flow, let chunk, let result else { return }
        let context = Unmanaged<PluginContext>.fromOpaque(ctx).takeUnretainedValue()
        let r = context.type.probe(flow: Flow(flow.pointee), chunk: Chunk(chunk.pointee))
        result.pointee.verdict = r.verdict
        result.pointee.confidence = r.confidence
        result.pointee.flags = r.reversed ? KS_PROBE_REVERSED : 0
        result.pointee.need_bytes = r.needBytes
    }

private let pluginStreamOpen:
    @convention(c) (
        UnsafeMutableRawPointer?, UnsafePointer<ks_flow_info>?, OpaquePointer?,
        UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    ) -> ks_status = { ctx, flow, stream, out in
        guard let ctx, let flow, let stream, let out else { return KS_E_INVALID }
        let context = Unmanaged<PluginContext>.fromOpaque(ctx).takeUnretainedValue()
        let host = StreamHost(api: context.api, hostContext: context.hostContext, stream: stream)
        let dissector = context.type.init(flow: Flow(flow.pointee), host: host)
        out.pointee = Unmanaged.passRetained(StreamBox(dissector)).toOpaque()
        return KS_OK
    }

private let pluginStreamData:
    @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<ks_chunk>?, UnsafeMutablePointer<ks_parse_result>?) -> Void =
    { state, chunk, result in
        guard let chunk, let result else { return }
        let c = Chunk(chunk.pointee)
        box(state).dissector.receive(c).write(to: result, length: c.bytes.count)
    }

private let pluginDatagram:
    @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<ks_chunk>?, UnsafeMutablePointer<ks_parse_result>?) -> Void =
    { state, chunk, result in
        guard let chunk, let result else { return }
        let c = Chunk(chunk.pointee)
        box(state).dissector.datagram(c).write(to: result, length: c.bytes.count)
    }

private let pluginStreamGap: @convention(c) (UnsafeMutableRawPointer?, ks_direction, UInt64) -> ks_status = {
    state, direction, length in
    box(state).dissector.gap(direction: Direction(rawValue: direction) ?? .clientToServer, length: length)
        ? KS_OK : KS_E_UNSUPPORTED
}

private let pluginStreamEOF: @convention(c) (UnsafeMutableRawPointer?, ks_direction) -> Void = { state, direction in
    box(state).dissector.endOfStream(direction: Direction(rawValue: direction) ?? .clientToServer)
}

private let pluginStreamTick: @convention(c) (UnsafeMutableRawPointer?, Int64) -> Void = { state, now in
    box(state).dissector.tick(nowNs: now)
}

private let pluginStreamClose: @convention(c) (UnsafeMutableRawPointer?, ks_close_reason) -> Void = { state, reason in
    guard let state else { return }
    let b = Unmanaged<StreamBox>.fromOpaque(state)
    b.takeUnretainedValue().dissector.close(reason: CloseReason(rawValue: reason) ?? .error)
    b.release()
}
