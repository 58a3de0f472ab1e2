import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Host
import Scripting
import Worker

/// Script options shared by `worker` and `tap` (docs/scripting.md).
struct ScriptOptions: ParsableArguments {
    @Option(name: .customLong("scripts"), help: "Folder of .js scripts to load and activate at start (title: each file's first comment).")
    var folder: String?

    @Option(name: .customLong("script-env"), help: "KEY=VALUE put in the scripts' global env object (repeatable).")
    var env: [String] = []

    @Option(name: .customLong("script-webhook-allow"),
            help: "URL prefix vendor.webhook may call (repeatable; none given: any http(s) URL).")
    var webhookAllow: [String] = []

    @Option(name: .customLong("script-memory-limit"), help: "Most memory one script's heap may hold: 64Mi, 256Mi...")
    var memoryLimit = "64Mi"

    @Option(name: .customLong("script-call-budget"), help: "Longest one hook or job call may run, in milliseconds.")
    var callBudgetMs = 1000

    @Option(name: .customLong("script-storage-limit"),
            help: "Most bytes the scripting directory may hold; file.* and pcap.* helpers refuse beyond: 1Gi, 500Mi...")
    var storageLimit = "1Gi"

    func validate() throws {
        guard let q = StorageQuantity(memoryLimit), q.bytes >= 1 << 20 else {
            throw ValidationError("--script-memory-limit: '\(memoryLimit)' is not a quantity of at least 1Mi")
        }
        guard StorageQuantity(storageLimit) != nil else {
            throw ValidationError("--script-storage-limit: '\(storageLimit)' is not a quantity (1Gi, 500Mi...)")
        }
        guard callBudgetMs > 0 else { throw ValidationError("--script-call-budget must be positive") }
        for pair in env where !pair.contains("=") {
            throw ValidationError("--script-env: '\(pair)' is not KEY=VALUE")
        }
        _ = try Self.environmentSettings()
    }

    /// The scripts' env from `$SCRIPTING_ENV` (a JSON object; a deployment's workers get
    /// `scripting.env` this way), under `--script-env`.
    static func environmentSettings() throws -> [String: String] {
        guard let text = ProcessInfo.processInfo.environment["SCRIPTING_ENV"], !text.trimmingSpaces.isEmpty else { return [:] }
        guard case .object(let members)? = try? JSONValue.parse(text) else {
            throw ValidationError("$SCRIPTING_ENV is not a JSON object of settings: \(text.prefix(80))")
        }
        var out: [String: String] = [:]
        for m in members {
            if case .string(let s) = m.value { out[m.key] = s } else { out[m.key] = String(decoding: m.value.jsonBytes, as: UTF8.self) }
        }
        return out
    }

    func apply(to config: inout WorkerConfiguration) {
        for (key, value) in (try? Self.environmentSettings()) ?? [:] { config.scriptEnv[key] = value }
        for pair in env {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            config.scriptEnv[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        config.scriptWebhookAllow = webhookAllow
        config.scriptLimits = ScriptLimits(memoryBytes: Int(StorageQuantity(memoryLimit)!.bytes), callBudgetMs: callBudgetMs)
        config.scriptStorageLimitBytes = Int64(StorageQuantity(storageLimit)!.bytes)
    }

    /// Loads and activates the scripts of `--scripts`.
    func load(into service: WorkerService) throws {
        guard let folder else { return }
        do {
            let titles = try service.scripts.loadFolder(folder)
            warn("scripts: loaded \(titles.count) from \(folder)\(titles.isEmpty ? "" : ": " + titles.joined(separator: ", "))")
        } catch {
            throw fail(error.description)
        }
    }
}

struct ScriptsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scripts",
        abstract: "Load folders of .js scripts into a running worker, tap or hub, or a cluster's ConfigMap; activate, deactivate, remove them; show their logs.",
        discussion: """
            Each script's title is its first comment. Every .js file of each --dir (default: the config's \
            scripting.source and scripting.sources) is uploaded, replacing a script of the same title, and \
            activated unless --inactive (or, when the config's scripting.active lists titles, only those). \
            --watch keeps uploading the files that change and removes the scripts whose files go. With --kube \
            the scripts go into the deployment's kubeshark-config-map (SCRIPTING_SCRIPTS, \
            SCRIPTING_ACTIVE_SCRIPTS), from which the hub keeps every worker running them. See docs/scripting.md.
            """)

    @Option(name: .customLong("url"), help: "The API of a worker, a tap or a hub.")
    var url = "http://127.0.0.1:8897"

    @Option(name: .customLong("token"), help: "The API's access token, if it needs one.")
    var token: String?

    @Option(name: .customLong("dir"), help: "Folder of .js scripts to upload (repeatable).")
    var directories: [String] = []

    @Flag(name: .customLong("inactive"), help: "Upload without activating.")
    var inactive = false

    @Flag(name: .customLong("watch"), help: "After uploading, keep watching the folders (until interrupted).")
    var watch = false

    @Option(name: .customLong("activate"), help: "Activate the script with this title (repeatable).")
    var activate: [String] = []

    @Option(name: .customLong("deactivate"), help: "Deactivate the script with this title (repeatable).")
    var deactivate: [String] = []

    @Option(name: .customLong("remove"), help: "Remove the script with this title (repeatable).")
    var remove: [String] = []

    @Flag(name: .customLong("list"), help: "List the scripts and their state.")
    var list = false

    @Flag(name: .customLong("logs"), help: "Print the scripts' log lines.")
    var logs = false

    @Flag(name: .customLong("kube"), help: "Write the scripts into the cluster's kubeshark-config-map instead of an API.")
    var kube = false

    @OptionGroup var cluster: ClusterOptions

    @Option(name: [.customShort("s"), .customLong("release-namespace")],
            help: "With --kube: the namespace Kubeshark is installed in (default: the config's tap.release.namespace).")
    var releaseNamespace: String?

    @OptionGroup var configOptions: ConfigOptions

    func validate() throws {
        if !kube && (cluster.kubeconfig != nil || cluster.context != nil || releaseNamespace != nil) {
            throw ValidationError("--kubeconfig, --context and --release-namespace go with --kube")
        }
        if kube && logs { throw ValidationError("--logs reads a hub's API: kubeshark proxy, then kubeshark scripts --url ... --logs") }
    }

    func run() async throws {
        var config = try configOptions.load()
        try configOptions.applySets(to: &config)
        var folders = directories
        if folders.isEmpty {
            folders = ([config.string("scripting.source")] + config.strings("scripting.sources")).filter { !$0.isEmpty }
        }
        let onlyActive = Set(config.strings("scripting.active"))
        let target: any ScriptTarget
        if kube {
            let (client, _) = try cluster.client()
            target = ConfigMapScripts(client: client, namespace: releaseNamespace ?? config.string("tap.release.namespace"))
        } else {
            target = APIScripts(url: url, token: token)
        }

        var watched = ScriptFolders(folders)
        do {
            try await once(target, folders: &watched, onlyActive: onlyActive)
        } catch {
            await target.close()
            throw error
        }
        guard watch else {
            await target.close()
            return
        }
        guard !folders.isEmpty else { throw fail("--watch needs a folder: --dir, or scripting.source in the config") }
        warn("scripts: watching \(folders.joined(separator: ", ")) (interrupt to stop)")
        while true {
            try? await Task.sleep(nanoseconds: 1_000_000_000)
            let update: [ScriptChange]
            do {
                update = try watched.changes().map { change in
                    if case .put(var spec, let file) = change { spec.active = active(spec.title, onlyActive); return .put(spec, file: file) }
                    return change
                }
            } catch {
                warn("scripts: \(error)")
                continue
            }
            guard !update.isEmpty else { continue }
            do {
                try await target.apply(update)
                for change in update { warn("scripts: \(change)") }
            } catch {
                warn("scripts: \(error) (trying again at the next change)")
                watched.forget()
            }
        }
    }

    /// Uploads the folders and makes the changes the flags name, lists and prints logs.
    private func once(_ target: any ScriptTarget, folders watched: inout ScriptFolders, onlyActive: Set<String>) async throws {
        var changes: [ScriptChange] = []
        if !watched.folders.isEmpty {
            let found: [ScriptFolders.File]
            do { found = try watched.scan() } catch { throw fail("\(error)") }
            changes += found.map { .put(ScriptSpec(title: $0.title, code: $0.code, active: active($0.title, onlyActive)), file: $0.path) }
        }
        changes += activate.map { .activate($0) } + deactivate.map { .deactivate($0) } + remove.map { .remove($0) }
        if !changes.isEmpty {
            do { try await target.apply(changes) } catch { throw fail("\(error)") }
            for change in changes { warn("scripts: \(change)") }
        }
        if list || (changes.isEmpty && !logs && !watch) {
            do { for line in try await target.list() { print(line) } } catch { throw fail("\(error)") }
        }
        if logs, let api = target as? APIScripts {
            do { for line in try api.logLines() { print(line) } } catch { throw fail("\(error)") }
        }
    }

    /// Whether an uploaded script starts active.
    private func active(_ title: String, _ only: Set<String>) -> Bool {
        !inactive && (only.isEmpty || only.contains(title))
    }
}
