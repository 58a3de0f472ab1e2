import ArgumentParser
import Host
import Logging

#if canImport(Glibc)
import Glibc
#endif

@main
struct Kubeshark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kubeshark",
        abstract: "Kubernetes traffic analyzer: capture, dissect and query API traffic.",
        version: KubesharkVersion.version,
        subcommands: [Dissect.self, Filter.self, Capture.self, WorkerCommand.self, HubCommand.self, Tap.self, ManifestsCommand.self, ConfigCommand.self, CleanCommand.self, ProxyCommand.self, ScriptsCommand.self, PcapDump.self, Plugins.self, Version.self]
    )
}

/// Options shared by every command that loads plugins.
struct PluginOptions: ParsableArguments {
    @Option(name: .customLong("plugins"), help: "Comma-separated plugin names to load (default: all found).")
    var plugins: String?

    @Option(name: .customLong("plugins-dir"), help: "Extra directory of plugin libraries (repeatable). Also $KUBESHARK_PLUGINS_DIR.")
    var pluginDirectories: [String] = []

    @Option(name: .customLong("plugin-config"), help: "NAME=TEXT: a configuration string handed to plugin NAME's init (repeatable).")
    var pluginConfig: [String] = []

    @Option(name: .customLong("log-level"), help: "trace, debug, info, warning, error.")
    var logLevel: String = "warning"

    /// The configuration string for each plugin named in --plugin-config.
    func configuration(for plugin: String) throws -> String {
        var result = ""
        for item in pluginConfig {
            guard let eq = item.firstIndex(of: "=") else {
                throw ValidationError("--plugin-config takes NAME=TEXT, got '\(item)'")
            }
            if item[..<eq] == plugin { result = String(item[item.index(after: eq)...]) }
        }
        return result
    }

    var selection: [String]? {
        plugins.map { $0.split(separator: ",").map { $0.trimmingCharacters() }.filter { !$0.isEmpty } }
    }

    func bootstrapLogging() {
        let level = Logger.Level(rawValue: logLevel) ?? .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    /// Loads the selected plugins and starts each with its --plugin-config; any
    /// plugin that fails to start fails the command.
    func startPlugins() throws -> [LoadedPlugin] {
        try startPlugins(tolerant: false).plugins
    }

    /// For long-running services (worker, tap): a plugin file the host refuses,
    /// or a plugin whose init fails, is left out with its reason in `refused`, and
    /// the others run. Fails only when no plugin is left.
    func startPlugins(tolerant: Bool) throws -> (plugins: [LoadedPlugin], refused: [String]) {
        let catalog = catalog()
        var refused = catalog.refusals.map(\.description)
        for dir in catalog.unreadableDirectories where pluginDirectories.contains(dir.path) {
            throw fail("cannot read plugin directory \(dir.path): \(dir.error)")
        }
        let plugins: [LoadedPlugin]
        do {
            plugins = try catalog.select(selection)
        } catch {
            throw fail(error.description)
        }
        if plugins.isEmpty { throw fail("no plugins to dissect with (see `kubeshark plugins list`)") }
        var started: [LoadedPlugin] = []
        for p in plugins {
            let config = try configuration(for: p.metadata.name)
            do {
                try p.start(config: config)
                started.append(p)
            } catch {
                guard tolerant else { throw fail(error.description) }
                warn("\(error.description); going on without it")
                refused.append(error.description)
            }
        }
        if started.isEmpty { throw fail("no plugin started (see the lines above)") }
        return (started, refused)
    }

    /// Scans the plugin directories; prints refusals as warnings.
    func catalog(reportRefusals: Bool = true) -> PluginCatalog {
        let catalog = PluginLoader.discover(extraDirectories: pluginDirectories + PluginLoader.environmentDirectories)
        if reportRefusals {
            for refusal in catalog.refusals { warn(refusal.description) }
        }
        return catalog
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}

/// Prints one line to stderr.
func warn(_ message: String) {
    var line = "kubeshark: " + message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// Fails the command with one clear line on stderr.
struct CommandFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

func fail(_ message: String) -> ExitCode {
    warn(message)
    return ExitCode(1)
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version.")

    func run() {
        print("kubeshark-swift \(KubesharkVersion.version) (plugin ABI \(KubesharkVersion.pluginABI))")
    }
}
