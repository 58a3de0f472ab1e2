import Host

/// What scripts run against: the worker's ring and plugins, where they may
/// write, their configuration, and their limits.
public struct ScriptEnvironment: Sendable {
    public var ring: PacketRing
    /// Started plugins, for the dissection sessions of scripts with `onItemCaptured`.
    public var plugins: [LoadedPlugin]
    /// KFL macros (the plugins'), for `kfl.match`.
    public var macros: [String: String] = [:]
    public var endpointNames: EndpointNames?
    /// The scripting directory: `file.*`, `pcap.*` and job output live here.
    public var directory: String
    /// Where scripts' sessions keep packets they retain from ring flushes.
    public var sessionDirectory: String
    /// The global `env` object every script sees.
    public var env: [String: String] = [:]
    public var webhook = Webhook()
    public var limits = ScriptLimits()
    /// `utils.nodeName()`.
    public var nodeName = "node"
    /// Most bytes of entries waiting for one script; the script's session waits beyond it.
    public var entryQueueBytes = 8 << 20
    /// Most bytes the scripting directory may hold (`--script-storage-limit`): the
    /// `file.*` and `pcap.*` helpers refuse to take it beyond.
    public var storageLimitBytes: Int64 = 1 << 30

    public init(ring: PacketRing, plugins: [LoadedPlugin], directory: String, sessionDirectory: String) {
        self.ring = ring
        self.plugins = plugins
        self.directory = directory
        self.sessionDirectory = sessionDirectory
    }
}
