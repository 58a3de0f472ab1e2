import PluginAPI

/// Version information of this build.
public enum KubesharkVersion {
    /// The release of kubeshark-swift.
    public static let version = "0.1.0"
    /// The plugin ABI this host speaks, as "major.minor".
    public static let pluginABI = "\(KS_ABI_MAJOR).\(KS_ABI_MINOR)"
}
