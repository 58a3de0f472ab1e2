import ArgumentParser
import Deploy
import Foundation
import Host
import Worker

/// `--set key=value` and `--config-path`, as in Kubeshark.
struct ConfigOptions: ParsableArguments {
    @Option(name: .customLong("set"), help: "Set a config key, e.g. --set tap.storageLimit=1Gi (repeatable; see kubeshark config).")
    var assignments: [String] = []

    @Option(name: .customLong("config-path"),
            help: "Config file (default: ./kubeshark.yaml when present, else ~/.kubeshark/config.yaml).")
    var configPath: String?

    var path: String { DeployConfig.filePath(explicit: configPath) }

    /// Defaults, then the config file.
    func load() throws -> DeployConfig {
        do { return try DeployConfig.load(path: path, required: configPath != nil) } catch { throw fail(error.description) }
    }

    /// The `--set` assignments, last.
    func applySets(to config: inout DeployConfig) throws {
        for assignment in assignments {
            do { try config.set(assignment) } catch { throw fail(error.description) }
        }
    }
}

/// What a deployment into a cluster is made of: Kubeshark's `tap` flags that shape it.
struct DeploymentOptions: ParsableArguments {
    @OptionGroup var scopeOptions: ScopeOptions

    @Option(name: [.customShort("s"), .customLong("release-namespace")], help: "Namespace Kubeshark is installed in (default: default).")
    var releaseNamespace: String?

    @Option(name: .customLong("storage-limit"), help: "Each worker's ring storage, a quantity (default: 500Mi).")
    var storageLimit: String?

    @Option(name: .customLong("capture"), help: "Capture backend of the workers: af_packet, af_xdp, libpcap or auto.")
    var capture: String?

    @Option(name: .customLong("plugins"), help: "Built-in plugins the workers load, comma list (default: all).")
    var plugins: String?

    @Option(name: .customLong("plugin-image"), help: "A third party's plugin image, its .so files under /plugins (repeatable).")
    var pluginImages: [String] = []

    @Option(name: [.short, .customLong("docker-registry")], help: "Image registry (default: docker.io/kubeshark-swift).")
    var registry: String?

    @Option(name: [.short, .customLong("docker-tag")], help: "Image tag (default: this version).")
    var tag: String?

    @Flag(inversion: .prefixedNo, help: "Capture TLS plaintext with eBPF uprobes (adds BPF, PERFMON, SYS_PTRACE, SYS_RESOURCE).")
    var tls: Bool?

    @OptionGroup var configOptions: ConfigOptions

    /// Defaults, the config file, these flags, then `--set`; checked.
    func resolve() throws -> DeployConfig {
        let scope = scopeOptions.scope
        let choices = DeploymentChoices(
            regex: scopeOptions.podRegex, namespaces: scope.namespaces, excludedNamespaces: scope.excludedNamespaces,
            releaseNamespace: releaseNamespace, storageLimit: storageLimit, capture: capture, plugins: plugins,
            pluginImages: pluginImages, registry: registry, tag: tag, tls: tls)
        return try choices.resolve(configOptions)
    }
}

/// The flags of `tap`/`manifests` that shape a deployment (nil or empty: not given).
struct DeploymentChoices {
    var regex: String?
    var namespaces: [String] = []
    var excludedNamespaces: [String] = []
    var releaseNamespace: String?
    var storageLimit: String?
    var capture: String?
    var plugins: String?
    var pluginImages: [String] = []
    var registry: String?
    var tag: String?
    var tls: Bool?

    /// Defaults, the config file, these choices, then `--set`; checked.
    func resolve(_ configOptions: ConfigOptions) throws -> DeployConfig {
        var config = try configOptions.load()
        do {
            if let regex { try config.set("tap.regex", text: regex) }
            if !namespaces.isEmpty { try config.replace("tap.namespaces", with: .array(namespaces.map { .string($0) })) }
            if !excludedNamespaces.isEmpty {
                try config.replace("tap.excludedNamespaces", with: .array(excludedNamespaces.map { .string($0) }))
            }
            if let releaseNamespace { try config.set("tap.release.namespace", text: releaseNamespace) }
            if let storageLimit { try config.set("tap.storageLimit", text: storageLimit) }
            if let capture { try config.set("tap.packetCapture", text: capture) }
            if let plugins { try config.set("tap.enabledDissectors", text: plugins) }
            if !pluginImages.isEmpty { try config.replace("tap.pluginImages", with: .array(pluginImages.map { .string($0) })) }
            if let registry { try config.set("tap.docker.registry", text: registry) }
            if let tag { try config.set("tap.docker.tag", text: tag) }
            if let tls { try config.replace("tap.tls", with: .bool(tls)) }
        } catch {
            throw fail(error.description)
        }
        try configOptions.applySets(to: &config)
        do { try config.check() } catch { throw fail(error.description) }
        return config
    }
}

struct ManifestsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "manifests",
        abstract: "Print every Kubernetes object `kubeshark tap` would create, as YAML (for GitOps).",
        discussion: """
            Takes the scope and options of tap. The Secret holds fresh random tokens for the hub and the \
            workers; replace them with your own if you keep the output. See docs/kubernetes.md.
            """)

    @OptionGroup var deployment: DeploymentOptions

    func run() throws {
        let config = try deployment.resolve()
        // A token is generated for any address off loopback.
        let manifests = Manifests(config: config, hubToken: WorkerAPI.accessToken(given: nil, host: "0.0.0.0") ?? "",
                                  workerToken: WorkerAPI.accessToken(given: nil, host: "0.0.0.0") ?? "")
        do { print(try YAMLText.documents(manifests.objects), terminator: "") } catch { throw fail("\(error)") }
    }
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print the configuration (defaults, the config file and --set) as YAML; -r writes the defaults to the config file.")

    @Flag(name: [.short, .customLong("regenerate")], help: "Write the default configuration to the config file.")
    var regenerate = false

    @OptionGroup var configOptions: ConfigOptions

    func run() throws {
        if regenerate {
            let path = configOptions.path
            do {
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                        withIntermediateDirectories: true)
                try YAMLText.document(DeployConfig.defaults).write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                throw fail("cannot write \(path): \(error)")
            }
            warn("wrote the default configuration to \(path)")
            return
        }
        var config = try configOptions.load()
        try configOptions.applySets(to: &config)
        do { print(try YAMLText.document(config.tree), terminator: "") } catch { throw fail("\(error)") }
    }
}
