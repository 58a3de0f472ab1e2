import Logging
import PluginAPI
import Synchronization

/// Metadata of one protocol a plugin reports (`ks_protocol`), copied out of the plugin.
public struct ProtocolMetadata: Sendable, Equatable {
    public var name: String
    public var longName: String
    public var abbreviation: String
    public var version: String
    /// The protocol's KFL macro: the first word of the descriptor's macro string.
    public var macro: String
    /// The further words of the macro string: macros that select this
    /// protocol's entries too (GraphQL over HTTP: `http`).
    public var extraMacros: [String] = []
    public var backgroundColor: String
    public var foregroundColor: String
    public var referenceURL: String
}

/// Everything a descriptor says, copied into Swift values once at load time.
public struct PluginMetadata: Sendable {
    public var name: String
    public var version: String
    public var vendor: String
    public var license: String
    public var description: String
    public var referenceURL: String
    public var abiMajor: Int
    public var abiMinor: Int
    public var layer4: UInt32
    public var flags: UInt32
    public var defaultPorts: [ClosedRange<UInt16>]
    public var priority: Int32
    public var probeMinBytes: Int
    public var probeMaxBytes: Int
    public var maxBufferBytes: Int
    public var protocols: [ProtocolMetadata]

    public var handlesTCP: Bool { layer4 & KS_L4_TCP != 0 }
    public var handlesUDP: Bool { layer4 & KS_L4_UDP != 0 }
    public var acceptsGaps: Bool { flags & KS_PLUGIN_ACCEPTS_GAPS != 0 }

    /// Whether `port` is one of the plugin's port hints.
    public func hints(port: UInt16) -> Bool {
        defaultPorts.contains { $0.contains(port) }
    }

    /// "tcp", "udp" or "tcp,udp".
    public var layer4Description: String {
        var parts: [String] = []
        if handlesTCP { parts.append("tcp") }
        if handlesUDP { parts.append("udp") }
        return parts.joined(separator: ",")
    }
}

/// A plugin library that passed every check: its descriptor, its callbacks and
/// (once started) its context. Lives as long as the process; never unloaded,
/// because Swift and Go runtimes inside plugins cannot be safely unloaded.
public final class LoadedPlugin: @unchecked Sendable {
    /// File the plugin came from.
    public let path: String
    public let metadata: PluginMetadata
    let descriptor: UnsafePointer<ks_plugin_descriptor>

    /// `plugin_ctx` returned by init, or nil before `start` / when init is NULL.
    private(set) var context: UnsafeMutableRawPointer?
    private(set) var started = false

    /// Counters the plugin reported through `counter_add`, plus the host's own per-plugin counters.
    let counters = Mutex<[String: Int64]>([:])
    /// The capture clock as the plugin sees it (time of the newest packet, Unix ns).
    let clock = Atomic<Int64>(0)
    let logger: Logger
    /// The `"protocol"` object of each of the plugin's protocols, encoded once.
    let protocolJSON: [[UInt8]]

    init(path: String, descriptor: UnsafePointer<ks_plugin_descriptor>, metadata: PluginMetadata) {
        self.path = path
        self.descriptor = descriptor
        self.metadata = metadata
        protocolJSON = metadata.protocols.map { p in
            var w = JSONWriter(capacity: 256)
            w.raw("{\"name\":")
            w.string(p.name)
            w.raw(",\"longName\":")
            w.string(p.longName)
            w.raw(",\"abbr\":")
            w.string(p.abbreviation)
            w.raw(",\"version\":")
            w.string(p.version)
            w.raw(",\"macro\":")
            w.string(p.macro)
            if !p.extraMacros.isEmpty {
                w.raw(",\"macros\":[")
                for (i, m) in ([p.macro] + p.extraMacros).enumerated() {
                    if i > 0 { w.raw(UInt8(ascii: ",")) }
                    w.string(m)
                }
                w.raw(UInt8(ascii: "]"))
            }
            w.raw(",\"backgroundColor\":")
            w.string(p.backgroundColor)
            w.raw(",\"foregroundColor\":")
            w.string(p.foregroundColor)
            w.raw(",\"referenceLink\":")
            w.string(p.referenceURL)
            w.raw(",\"plugin\":")
            w.string(metadata.name)
            w.raw(UInt8(ascii: "}"))
            return w.bytes
        }
        var logger = Logger(label: "plugin.\(metadata.name)")
        logger[metadataKey: "plugin"] = "\(metadata.name)"
        self.logger = logger
    }

    /// Calls the plugin's init with the host services. Throws when init fails.
    public func start(config: String = "") throws(PluginError) {
        guard !started else { return }
        if let initialize = descriptor.pointee.`init` {
            var ctx: UnsafeMutableRawPointer?
            let hostContext = Unmanaged.passUnretained(self).toOpaque()
            var config = config
            let status = config.withUTF8 { c in
                c.withMemoryRebound(to: CChar.self) {
                    initialize(HostServices.table, hostContext, $0.baseAddress, $0.count, &ctx)
                }
            }
            guard status == KS_OK else {
                throw .initFailed(path: path, name: metadata.name, status: status)
            }
            context = ctx
        }
        started = true
    }

    /// Calls shutdown once.
    public func stop() {
        guard started else { return }
        started = false
        if let shutdown = descriptor.pointee.shutdown { shutdown(context) }
        context = nil
    }

    /// Adds `delta` to a counter of this plugin.
    func count(_ name: String, _ delta: Int64 = 1) {
        counters.withLock { $0[name, default: 0] += delta }
    }

    /// A snapshot of this plugin's counters.
    public var counterSnapshot: [String: Int64] { counters.withLock { $0 } }
}

/// Why a plugin could not be used.
public enum PluginError: Error, CustomStringConvertible, Equatable {
    case initFailed(path: String, name: String, status: Int32)
    case unknownPlugin(name: String, available: [String])

    public var description: String {
        switch self {
        case .initFailed(let path, let name, let status):
            return "\(path): plugin '\(name)' failed to initialise: \(HostServices.statusString(status))"
        case .unknownPlugin(let name, let available):
            let list = available.isEmpty ? "none" : available.joined(separator: ", ")
            return "no plugin named '\(name)' was found (available: \(list))"
        }
    }
}
