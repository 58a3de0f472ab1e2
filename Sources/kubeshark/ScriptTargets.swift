import Foundation
import Host
import Kube
import Scripting
import Worker
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One change `kubeshark scripts` makes.
enum ScriptChange: CustomStringConvertible {
    /// A script to add or replace, and the file it comes from (named in the message).
    case put(ScriptSpec, file: String? = nil)
    case activate(String)
    case deactivate(String)
    case remove(String)

    var description: String {
        switch self {
        case .put(let spec, let file):
            "\(spec.title)\(file.map { " (\(($0 as NSString).lastPathComponent))" } ?? "") \(spec.active ? "loaded and activated" : "loaded")"
        case .activate(let title): "\(title) activated"
        case .deactivate(let title): "\(title) deactivated"
        case .remove(let title): "\(title) removed"
        }
    }
}

/// Where `kubeshark scripts` puts scripts: an API or a cluster's ConfigMap.
protocol ScriptTarget: Sendable {
    /// Makes the changes, in order; the first refused one throws.
    func apply(_ changes: [ScriptChange]) async throws
    /// One line per script: title, state and counters.
    func list() async throws -> [String]
    /// Lets go of connections (before the process exits).
    func close() async
}

extension ScriptTarget {
    func close() async {}
}

/// The scripts API of a worker, a tap or a hub (docs/api.md).
struct APIScripts: ScriptTarget {
    var url: String
    var token: String?

    func apply(_ changes: [ScriptChange]) async throws {
        for change in changes {
            switch change {
            case .put(let spec, _):
                _ = try request("POST", "/api/scripts", .object([JSONMember(key: "title", value: .string(spec.title)),
                                                                 JSONMember(key: "code", value: .string(spec.code)),
                                                                 JSONMember(key: "active", value: .bool(spec.active))]))
            case .activate(let title), .deactivate(let title), .remove(let title):
                let action = if case .activate = change { "activate" } else if case .deactivate = change { "deactivate" } else { "remove" }
                _ = try request("POST", "/api/scripts/\(action)", .object([JSONMember(key: "title", value: .string(title))]))
            }
        }
    }

    func list() async throws -> [String] {
        guard case .array(let items) = try request("GET", "/api/scripts", nil) else { return [] }
        return items.map { item in
            func text(_ k: String) -> String? { if case .string(let s)? = item[k] { return s } else { return nil } }
            var line = "\(text("title") ?? "?")\t\(text("state") ?? "?")"
            if case .number(let n)? = item["entries"] { line += "\tentries=\(Int(n))" }
            if case .number(let n)? = item["errors"] { line += "\terrors=\(Int(n))" }
            if case .array(let workers)? = item["workers"] { line += "\tworkers=\(workers.count)" }
            if let reason = text("reason") { line += "\t\(reason)" }
            return line
        }
    }

    /// The log lines, `[script] level: message` (a hub's lines also name their worker).
    func logLines() throws -> [String] {
        guard case .array(let lines) = try request("GET", "/api/scripts/logs", nil) else { return [] }
        return lines.map { line in
            func s(_ k: String) -> String { if case .string(let v)? = line[k] { return v } else { return "" } }
            let worker = s("worker")
            return "\(worker.isEmpty ? "" : worker + " ")[\(s("script"))] \(s("level")): \(s("message"))"
        }
    }

    /// One API request; the parsed JSON answer, or a failure with the API's message.
    private func request(_ method: String, _ path: String, _ body: JSONValue?) throws -> JSONValue {
        guard let target = URL(string: url + path) else { throw CommandFailure(message: "--url \(url): not a URL") }
        var req = URLRequest(url: target, timeoutInterval: 30)
        req.httpMethod = method
        if let token { req.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            req.httpBody = Data(body.jsonBytes)
            req.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let box = BlockingHTTP.send(req, timeoutSeconds: 30)
        if box.timedOut { throw CommandFailure(message: "\(method) \(url + path): no answer within 30 s") }
        if let error = box.error { throw CommandFailure(message: "\(method) \(url + path): \(error)") }
        let text = String(decoding: box.data ?? Data(), as: UTF8.self)
        guard (200..<300).contains(box.status) else { throw CommandFailure(message: "\(method) \(path): HTTP \(box.status): \(text)") }
        guard let value = try? JSONValue.parse(text) else { throw CommandFailure(message: "\(method) \(path): the answer is not JSON") }
        return value
    }
}

/// The scripts in a deployment's ConfigMap: each batch of changes is one read
/// and one merge patch.
struct ConfigMapScripts: ScriptTarget {
    let client: KubeClient
    let namespace: String

    private func current() async throws -> [ScriptSpec] {
        guard let map = try await client.get(apiVersion: "v1", kind: "ConfigMap", name: ScriptsConfigMap.name, namespace: namespace) else {
            throw CommandFailure(message: "no \(namespace)/\(ScriptsConfigMap.name): deploy first (kubeshark tap --kube -s \(namespace))")
        }
        return try ScriptsConfigMap.scripts(in: map) ?? []
    }

    func apply(_ changes: [ScriptChange]) async throws {
        var specs = try await current()
        for change in changes {
            switch change {
            case .put(let spec, _):
                if let i = specs.firstIndex(where: { $0.title == spec.title }) { specs[i] = spec } else { specs.append(spec) }
            case .activate(let title), .deactivate(let title):
                guard let i = specs.firstIndex(where: { $0.title == title }) else {
                    throw CommandFailure(message: "no script titled '\(title)' in \(namespace)/\(ScriptsConfigMap.name)")
                }
                if case .activate = change { specs[i].active = true } else { specs[i].active = false }
            case .remove(let title):
                guard specs.contains(where: { $0.title == title }) else {
                    throw CommandFailure(message: "no script titled '\(title)' in \(namespace)/\(ScriptsConfigMap.name)")
                }
                specs.removeAll { $0.title == title }
            }
        }
        try await ScriptsConfigMap.write(specs, client: client, namespace: namespace)
    }

    func close() async { await client.shutdown() }

    func list() async throws -> [String] {
        try await current().map { "\($0.title)\t\($0.active ? "active" : "inactive")\t(in \(namespace)/\(ScriptsConfigMap.name))" }
    }
}

/// The `.js` files of some folders, and what changed in them since the last look.
struct ScriptFolders {
    struct File: Equatable {
        var path: String
        var title: String
        var code: String
    }

    let folders: [String]
    /// Title of the file at each path, as last uploaded.
    private var known: [String: File] = [:]

    init(_ folders: [String]) { self.folders = folders }

    /// Every script now, sorted by folder then file name; remembered as uploaded.
    mutating func scan() throws -> [File] {
        var files: [File] = []
        for folder in folders {
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: folder) } catch {
                throw CommandFailure(message: "scripts folder \(folder): \(error.localizedDescription)")
            }
            for name in names.sorted() where name.hasSuffix(".js") {
                let path = folder + "/" + name
                guard let data = FileManager.default.contents(atPath: path) else { throw CommandFailure(message: "\(path): cannot be read") }
                let code = String(decoding: data, as: UTF8.self)
                files.append(File(path: path, title: ScriptManager.title(of: code, fallback: String(name.dropLast(3))), code: code))
            }
        }
        known = Dictionary(files.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        return files
    }

    /// The uploads and removals that bring the target in step with the folders now.
    mutating func changes() throws -> [ScriptChange] {
        let before = known
        let now = try scan()
        var out: [ScriptChange] = []
        for file in now where before[file.path] != file {
            out.append(.put(ScriptSpec(title: file.title, code: file.code, active: true), file: file.path))
        }
        let titlesNow = Set(now.map(\.title))
        for (path, old) in before where known[path] == nil || known[path]!.title != old.title {
            if !titlesNow.contains(old.title) { out.append(.remove(old.title)) }
        }
        return out
    }

    /// Forgets what was uploaded, so the next look uploads everything again.
    mutating func forget() { known = [:] }
}
