import Foundation
import Host
import Synchronization

/// The worker's scripts: each known by its title (its first comment, as in
/// Kubeshark), active or not; an active one runs in its own `ScriptRunner`.
public final class ScriptManager: Sendable {
    public let log: ScriptLog
    let environment: ScriptEnvironment
    /// The scripting directory's disk cap, shared by every script.
    let storage: ScriptStorage

    private struct Script {
        var source: String
        var active: Bool
        var runner: ScriptRunner?
    }

    private let scripts = Mutex<[String: Script]>([:])
    /// Serialises activations, so a script never has two runners.
    private let changes = Mutex(())

    /// What `GET /api/scripts` shows of one script.
    public struct Info: Sendable {
        public var title: String
        public var active: Bool
        public var code: String
        public var status: ScriptRunner.Status?
    }

    /// Why a script change was refused.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }

    public init(environment: ScriptEnvironment, log: ScriptLog = ScriptLog()) {
        self.environment = environment
        self.log = log
        storage = ScriptStorage(limitBytes: environment.storageLimitBytes)
    }

    /// A script's title: the text of its first comment, else `fallback`.
    public static func title(of code: String, fallback: String) -> String {
        let text = code.drop { $0.isWhitespace }
        var candidate = ""
        if text.hasPrefix("//") {
            candidate = String(text.dropFirst(2).prefix { $0 != "\n" })
        } else if text.hasPrefix("/*"), let end = text.range(of: "*/") {
            let body = text[text.index(text.startIndex, offsetBy: 2)..<end.lowerBound]
            candidate = body.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .map { $0.hasPrefix("*") ? String($0.dropFirst()) : $0 }
                .first { !$0.trimmingCharacters(in: .whitespaces).isEmpty } ?? ""
        }
        let trimmed = candidate.trimmingCharacters(in: .whitespaces)
        return trimmed.isEmpty ? fallback : String(trimmed.prefix(200))
    }

    /// Adds or replaces a script; an active one is (re)started with the new code.
    @discardableResult
    public func put(code: String, title: String? = nil, active: Bool) -> String {
        let name = title.flatMap { $0.isEmpty ? nil : $0 } ?? Self.title(of: code, fallback: "script")
        changes.withLock { _ in
            let old = scripts.withLock { s -> ScriptRunner? in
                let old = s[name]?.runner
                s[name] = Script(source: code, active: active, runner: nil)
                return old
            }
            old?.stop(reason: "replaced")
            if active { startLocked(name) }
        }
        return name
    }

    /// Loads every `.js` file of a folder (sorted by name); returns their titles.
    @discardableResult
    public func loadFolder(_ path: String, active: Bool = true) throws(Failure) -> [String] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
            throw Failure("scripts folder \(path): \(error.localizedDescription)")
        }
        var titles: [String] = []
        for file in names.sorted() where file.hasSuffix(".js") {
            guard let data = FileManager.default.contents(atPath: path + "/" + file) else {
                throw Failure("\(path)/\(file): cannot be read")
            }
            let code = String(decoding: data, as: UTF8.self)
            titles.append(put(code: code, title: Self.title(of: code, fallback: String(file.dropLast(3))), active: active))
        }
        return titles
    }

    public func activate(_ title: String) throws(Failure) {
        try changes.withLock { _ throws(Failure) in
            let state = scripts.withLock { s -> Bool? in
                guard s[title] != nil else { return nil }
                let was = s[title]!.active && s[title]!.runner?.status.state != "failed"
                s[title]!.active = true
                return was
            }
            guard let was = state else { throw Failure("no script titled '\(title)'") }
            if was { return }
            let old = scripts.withLock { s -> ScriptRunner? in
                let r = s[title]?.runner
                s[title]?.runner = nil
                return r
            }
            old?.stop(reason: "restarted")
            startLocked(title)
        }
    }

    public func deactivate(_ title: String) throws(Failure) {
        try changes.withLock { _ throws(Failure) in
            let runner = scripts.withLock { s -> ScriptRunner?? in
                guard s[title] != nil else { return .none }
                let r = s[title]!.runner
                s[title]!.active = false
                s[title]!.runner = nil
                return .some(r)
            }
            guard let runner else { throw Failure("no script titled '\(title)'") }
            if let runner {
                runner.stop(reason: "deactivated")
                log.append(script: title, level: "system", "deactivated")
            }
        }
    }

    public func remove(_ title: String) throws(Failure) {
        try deactivate(title)
        scripts.withLock { _ = $0.removeValue(forKey: title) }
    }

    /// Runs with `changes` held.
    private func startLocked(_ title: String) {
        guard let source = scripts.withLock({ $0[title]?.source }) else { return }
        do throws(HelperError) {
            let runner = try ScriptRunner(title: title, source: source, environment: environment, storage: storage, log: log)
            scripts.withLock { $0[title]?.runner = runner }
            runner.start()
        } catch {
            log.append(script: title, level: "system", "not started: \(error.message)")
        }
    }

    public var all: [Info] {
        scripts.withLock { s in
            s.map { Info(title: $0.key, active: $0.value.active, code: $0.value.source, status: $0.value.runner?.status) }
        }.sorted { $0.title < $1.title }
    }

    /// Passes an entry the dashboard fetched through every active script's
    /// `onItemQueried`, in title order; each may return a changed entry.
    public func itemQueried(_ json: [UInt8], flow: FlowHash?) async -> [UInt8] {
        let runners = scripts.withLock { s in
            s.sorted { $0.key < $1.key }.compactMap { $0.value.runner }
        }.filter { $0.status.hooks.contains("onItemQueried") && $0.status.state == "running" }
        guard !runners.isEmpty else { return json }
        var current = json
        for runner in runners {
            let stream: String?
            if case .string(let s)? = try? JSONValue.parse(current, maxDepth: 128)["stream"] { stream = s } else { stream = nil }
            let input = current
            let budgetNs = UInt64(environment.limits.callBudgetMs + 2000) * 1_000_000
            let changed: [UInt8]? = await withCheckedContinuation { continuation in
                let once = Mutex(false)
                let reply: @Sendable ([UInt8]?) -> Void = { value in
                    let first = once.withLock { done -> Bool in
                        defer { done = true }
                        return !done
                    }
                    if first { continuation.resume(returning: value) }
                }
                runner.offerQuery(input, flow: flow, stream: stream, reply: reply)
                DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(budgetNs))) { reply(nil) }
            }
            if let changed { current = changed }
        }
        return current
    }

    /// Stops every script.
    public func shutdown() {
        changes.withLock { _ in
            let runners = scripts.withLock { s -> [ScriptRunner] in
                let r = s.values.compactMap(\.runner)
                for k in s.keys { s[k]?.runner = nil }
                return r
            }
            for r in runners { r.stop(reason: "worker stopping") }
        }
    }
}
