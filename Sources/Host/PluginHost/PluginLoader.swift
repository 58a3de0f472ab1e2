#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PluginAPI

/// A plugin file the host would not load, and why.
public struct PluginRefusal: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "\(path): refused: \(reason)" }
}

/// The outcome of scanning plugin directories.
public struct PluginCatalog: Sendable {
    public var plugins: [LoadedPlugin]
    public var refusals: [PluginRefusal]
    /// Directories that could not be read, with the error.
    public var unreadableDirectories: [(path: String, error: String)]

    /// The plugins named in `names` (all when nil), in catalog order.
    public func select(_ names: [String]?) throws(PluginError) -> [LoadedPlugin] {
        guard let names else { return plugins }
        var chosen: [LoadedPlugin] = []
        for name in names {
            guard let p = plugins.first(where: { $0.metadata.name == name }) else {
                throw .unknownPlugin(name: name, available: plugins.map(\.metadata.name))
            }
            if !chosen.contains(where: { $0 === p }) { chosen.append(p) }
        }
        return chosen
    }
}

/// Finds, opens and checks plugin libraries.
///
/// Built-in plugins are the `libksplugin-*.so` files next to the executable;
/// extra directories (from `--plugins-dir` and `KUBESHARK_PLUGINS_DIR`) may hold
/// any `*.so`. Every file is opened with `RTLD_NOW | RTLD_LOCAL`, must export
/// `ks_plugin_v1`, and its descriptor must pass `PluginValidator`. A refused
/// file is reported with the reason and the others still load.
public enum PluginLoader {
    /// The environment variable holding extra plugin directories (colon-separated).
    public static let environmentVariable = "KUBESHARK_PLUGINS_DIR"

    /// The directory holding the running executable.
    public static var executableDirectory: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return "." }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return dirname(of: path)
    }

    /// Extra directories named by the environment variable.
    public static var environmentDirectories: [String] {
        guard let value = getenv(environmentVariable) else { return [] }
        return String(cString: value).split(separator: ":").map(String.init).filter { !$0.isEmpty }
    }

    /// Scans the built-in directory and `extraDirectories`, loading every plugin found.
    /// - Parameters:
    ///   - builtInDirectory: where `libksplugin-*.so` are looked for (default: next to the executable).
    ///   - extraDirectories: directories whose every `*.so` is a plugin candidate.
    public static func discover(
        builtInDirectory: String? = PluginLoader.executableDirectory,
        extraDirectories: [String] = []
    ) -> PluginCatalog {
        var catalog = PluginCatalog(plugins: [], refusals: [], unreadableDirectories: [])
        var candidates: [String] = []
        if let builtInDirectory {
            switch listDirectory(builtInDirectory) {
            case .success(let names):
                candidates += names.filter { $0.hasPrefix("libksplugin-") && $0.hasSuffix(".so") }
                    .sorted().map { builtInDirectory + "/" + $0 }
            case .failure(let error):
                catalog.unreadableDirectories.append((builtInDirectory, error.message))
            }
        }
        for dir in extraDirectories {
            switch listDirectory(dir) {
            case .success(let names):
                candidates += names.filter { $0.hasSuffix(".so") }.sorted().map { dir + "/" + $0 }
            case .failure(let error):
                catalog.unreadableDirectories.append((dir, error.message))
            }
        }
        var seenPaths = Set<String>()
        for path in candidates {
            let canonical = realPath(path) ?? path
            guard seenPaths.insert(canonical).inserted else { continue }
            switch load(path: path) {
            case .success(let plugin):
                if let other = catalog.plugins.first(where: { $0.metadata.name == plugin.metadata.name }) {
                    catalog.refusals.append(PluginRefusal(
                        path: path,
                        reason: "duplicate plugin name '\(plugin.metadata.name)' (already loaded from \(other.path))"))
                } else {
                    catalog.plugins.append(plugin)
                }
            case .failure(let refusal):
                catalog.refusals.append(refusal)
            }
        }
        return catalog
    }

    /// Opens one file and checks it. Never throws; a bad file becomes a refusal.
    public static func load(path: String) -> Result<LoadedPlugin, PluginRefusal> {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let message = dlerror().map { String(cString: $0) } ?? "unknown error"
            return .failure(PluginRefusal(path: path, reason: "cannot be loaded: \(message)"))
        }
        guard let symbol = dlsym(handle, KS_PLUGIN_ENTRY_SYMBOL) else {
            // A plugin built for another ABI major exports another symbol name.
            for major in 0...9 where major != Int(KS_ABI_MAJOR) {
                if dlsym(handle, "ks_plugin_v\(major)") != nil {
                    dlclose(handle)
                    return .failure(PluginRefusal(
                        path: path,
                        reason: "built for plugin ABI \(major).x (exports ks_plugin_v\(major)); "
                            + "this host speaks ABI \(KS_ABI_MAJOR).\(KS_ABI_MINOR)"))
                }
            }
            dlclose(handle)
            return .failure(PluginRefusal(
                path: path, reason: "not a kubeshark plugin: no \(KS_PLUGIN_ENTRY_SYMBOL) symbol"))
        }
        let entry = unsafeBitCast(symbol, to: ks_plugin_entry_fn.self)
        guard let descriptor = entry() else {
            // The library stays mapped: it may have run code we cannot undo.
            return .failure(PluginRefusal(path: path, reason: "\(KS_PLUGIN_ENTRY_SYMBOL)() returned NULL"))
        }
        switch PluginValidator.validate(descriptor) {
        case .success(let metadata):
            return .success(LoadedPlugin(path: path, descriptor: descriptor, metadata: metadata))
        case .failure(let reason):
            return .failure(PluginRefusal(path: path, reason: reason.message))
        }
    }

    struct Message: Error { var message: String }

    private static func listDirectory(_ path: String) -> Result<[String], Message> {
        guard let dir = opendir(path) else {
            return .failure(Message(message: String(cString: strerror(errno))))
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> String in
                let bytes = raw.prefix(while: { $0 != 0 })
                return String(decoding: bytes, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return .success(names)
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func dirname(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
