// PluginKit: the Swift SDK for kubeshark-swift dissector plugins.
//
// PluginKit is a convenience over the C ABI in kubeshark_plugin.h; it is not
// part of the ABI. A Swift plugin built with it must use the same Swift
// toolchain as the host and link the Swift runtime dynamically (never
// --static-swift-stdlib): host and plugins share one Swift runtime.

import PluginAPI

/// Layer-4 protocols a plugin dissects.
public struct Layer4: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let tcp = Layer4(rawValue: KS_L4_TCP)
    public static let udp = Layer4(rawValue: KS_L4_UDP)
}

/// Behaviour flags of a plugin (`KS_PLUGIN_*`).
public struct PluginFlags: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// The plugin's `gap(direction:length:)` can resynchronise after lost bytes.
    public static let acceptsGaps = PluginFlags(rawValue: KS_PLUGIN_ACCEPTS_GAPS)
    /// The host must serialise every call into the plugin.
    public static let singleThreaded = PluginFlags(rawValue: KS_PLUGIN_SINGLE_THREADED)
}

/// One protocol a plugin reports entries for (`ks_protocol`).
public struct ProtocolInfo: Sendable {
    public var name: String
    public var longName: String
    public var abbreviation: String
    public var version: String
    /// The KFL macro that selects this protocol's entries (`http`).
    public var macro: String
    /// Further macros that select them too (GraphQL over HTTP: `http`). Sent
    /// after `macro` in the descriptor's macro string, separated by spaces.
    public var extraMacros: [String]
    public var backgroundColor: String
    public var foregroundColor: String
    public var referenceURL: String

    public init(
        name: String, longName: String, abbreviation: String, version: String, macro: String,
        extraMacros: [String] = [], backgroundColor: String, foregroundColor: String, referenceURL: String
    ) {
        self.name = name
        self.longName = longName
        self.abbreviation = abbreviation
        self.version = version
        self.macro = macro
        self.extraMacros = extraMacros
        self.backgroundColor = backgroundColor
        self.foregroundColor = foregroundColor
        self.referenceURL = referenceURL
    }
}

/// Everything the descriptor says about a plugin besides its callbacks.
public struct PluginMetadata: Sendable {
    public var name: String
    public var version: String
    public var vendor: String
    public var license: String
    public var description: String
    public var referenceURL: String
    public var layer4: Layer4
    public var flags: PluginFlags
    public var defaultPorts: [ClosedRange<UInt16>]
    public var priority: Int32
    public var probeMinBytes: UInt32
    public var probeMaxBytes: UInt32
    public var maxBufferBytes: UInt32
    public var protocols: [ProtocolInfo]

    public init(
        name: String, version: String, vendor: String, license: String, description: String,
        referenceURL: String, layer4: Layer4, flags: PluginFlags = [], defaultPorts: [ClosedRange<UInt16>] = [],
        priority: Int32 = 100, probeMinBytes: UInt32 = 1, probeMaxBytes: UInt32 = 4096,
        maxBufferBytes: UInt32 = 0, protocols: [ProtocolInfo]
    ) {
        self.name = name
        self.version = version
        self.vendor = vendor
        self.license = license
        self.description = description
        self.referenceURL = referenceURL
        self.layer4 = layer4
        self.flags = flags
        self.defaultPorts = defaultPorts
        self.priority = priority
        self.probeMinBytes = probeMinBytes
        self.probeMaxBytes = probeMaxBytes
        self.maxBufferBytes = maxBufferBytes
        self.protocols = protocols
    }
}
