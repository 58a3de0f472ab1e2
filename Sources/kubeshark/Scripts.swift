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
    }

    func apply(to config: inout WorkerConfiguration) {
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

struct ScriptsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scripts",
        abstract: "Load a folder of .js scripts into a running worker or tap, activate or deactivate them, show their logs.",
        discussion: """
            Each script's title is its first comment. With --dir, every .js file is uploaded (replacing a \
            script of the same title) and activated unless --inactive. See docs/scripting.md.
            """)

    @Option(name: .customLong("url"), help: "The worker's or tap's API.")
    var url = "http://127.0.0.1:8897"

    @Option(name: .customLong("token"), help: "The API's access token, if it needs one.")
    var token: String?

    @Option(name: .customLong("dir"), help: "Folder of .js scripts to upload.")
    var directory: String?

    @Flag(name: .customLong("inactive"), help: "Upload without activating.")
    var inactive = false

    @Option(name: .customLong("activate"), help: "Activate the script with this title (repeatable).")
    var activate: [String] = []

    @Option(name: .customLong("deactivate"), help: "Deactivate the script with this title (repeatable).")
    var deactivate: [String] = []

    @Flag(name: .customLong("list"), help: "List the scripts and their state.")
    var list = false

    @Flag(name: .customLong("logs"), help: "Print the scripts' log lines.")
    var logs = false

    func run() throws {
        var did = false
        if let directory {
            let files: [String]
            do { files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".js") }.sorted() } catch {
                throw fail("--dir \(directory): \(error.localizedDescription)")
            }
            for file in files {
                guard let data = FileManager.default.contents(atPath: directory + "/" + file) else {
                    throw fail("\(directory)/\(file): cannot be read")
                }
                let code = String(decoding: data, as: UTF8.self)
                let title = ScriptManager.title(of: code, fallback: String(file.dropLast(3)))
                let body = JSONValue.object([JSONMember(key: "title", value: .string(title)),
                                             JSONMember(key: "code", value: .string(code)),
                                             JSONMember(key: "active", value: .bool(!inactive))])
                _ = try request("POST", "/api/scripts", body)
                warn("scripts: \(title) (\(file)) \(inactive ? "loaded" : "loaded and activated")")
            }
            did = true
        }
        for (titles, action) in [(activate, "activate"), (deactivate, "deactivate")] {
            for title in titles {
                _ = try request("POST", "/api/scripts/\(action)", .object([JSONMember(key: "title", value: .string(title))]))
                warn("scripts: \(title) \(action)d")
                did = true
            }
        }
        if list || !did {
            guard case .array(let items) = try request("GET", "/api/scripts", nil) else { return }
            for item in items {
                let title = item["title"].flatMap { if case .string(let s) = $0 { s } else { nil } } ?? "?"
                let state = item["state"].flatMap { if case .string(let s) = $0 { s } else { nil } } ?? "?"
                var line = "\(title)\t\(state)"
                if case .number(let n)? = item["entries"] { line += "\tentries=\(Int(n))" }
                if case .number(let n)? = item["errors"] { line += "\terrors=\(Int(n))" }
                if case .string(let r)? = item["reason"] { line += "\t\(r)" }
                print(line)
            }
        }
        if logs {
            guard case .array(let lines) = try request("GET", "/api/scripts/logs", nil) else { return }
            for line in lines {
                func s(_ k: String) -> String { if case .string(let v)? = line[k] { return v } else { return "" } }
                print("[\(s("script"))] \(s("level")): \(s("message"))")
            }
        }
    }

    /// One API request; the parsed JSON answer, or a failure with the API's message.
    private func request(_ method: String, _ path: String, _ body: JSONValue?) throws -> JSONValue {
        guard let target = URL(string: url + path) else { throw fail("--url \(url): not a URL") }
        var req = URLRequest(url: target, timeoutInterval: 30)
        req.httpMethod = method
        if let token { req.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            req.httpBody = Data(body.jsonBytes)
            req.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let box = BlockingHTTP.send(req, timeoutSeconds: 30)
        if box.timedOut { throw fail("\(method) \(url + path): no answer within 30 s") }
        if let error = box.error { throw fail("\(method) \(url + path): \(error)") }
        let text = String(decoding: box.data ?? Data(), as: UTF8.self)
        guard (200..<300).contains(box.status) else { throw fail("\(method) \(path): HTTP \(box.status): \(text)") }
        guard let value = try? JSONValue.parse(text) else { throw fail("\(method) \(path): the answer is not JSON") }
        return value
    }
}
