import Foundation
import Host

/// Kubeshark's helper API, with its names and argument orders: `console`,
/// `kfl`, `file`, `pcap`, `vendor.webhook`, `utils`, and the natives under
/// `__ks` that the prelude's `jobs` uses. Helpers run on the script's thread.
extension ScriptRunner {
    func helpers() -> [(path: String, helper: NativeHelper)] {
        var list: [(path: String, helper: NativeHelper)] = []
        func add(_ path: String, _ helper: @escaping NativeHelper) { list.append((path, helper)) }

        add("console.log") { [unowned self] args in consoleLine("log", args) }
        add("console.error") { [unowned self] args in consoleLine("error", args) }
        add("console.clear") { _ in .undefined }

        add("kfl.match") { [unowned self] args throws(HelperError) in
            let query = try compiled(try Arguments(args, "kfl.match").string(0, "query"))
            switch args.count > 1 ? args[1] : .undefined {
            case .json(let text): return .bool(Self.matches(query, Array(text.utf8)))
            case .jsonBytes(let b): return .bool(Self.matches(query, b))
            default: return .bool(false)
            }
        }
        // The prelude's kfl.match for the hook's own argument: the entry's JSON as captured.
        add("__ks.kflMatchItem") { [unowned self] args throws(HelperError) in
            let a = Arguments(args, "kfl.match")
            let query = try compiled(try a.string(0, "query"))
            guard case .number(let n) = a.at(1), let i = Int(exactly: n), batchEntries.indices.contains(i) else {
                return .bool(false)
            }
            return .bool(Self.matches(query, batchEntries[i]))
        }
        add("__ks.itemThrew") { [unowned self] args in
            // An allocation refused for the cap stops the script, as when a call
            // throws it: the prelude rethrows. The second argument names the hook.
            if engine?.allocationRefused == true { return .bool(false) }
            updateStatus { $0.errors += 1 }
            let hook = args.count > 1 ? args[1].text : "onItemCaptured"
            logError("\(hook) threw: \(args.first?.text ?? "")")
            return .bool(true)
        }
        add("kfl.validate") { [unowned self] args throws(HelperError) in
            let text = try Arguments(args, "kfl.validate").string(0, "query")
            do throws(HelperError) { _ = try compiled(text) } catch { return .bool(false) }
            return .bool(true)
        }

        add("file.write") { [unowned self] args throws(HelperError) in
            let a = Arguments(args, "file.write")
            try storing { () throws(HelperError) in try files.write(try a.string(0, "path"), a.text(1), append: false) }
            return .undefined
        }
        add("file.append") { [unowned self] args throws(HelperError) in
            let a = Arguments(args, "file.append")
            try storing { () throws(HelperError) in try files.write(try a.string(0, "path"), a.text(1), append: true) }
            return .undefined
        }
        add("file.delete") { [unowned self] args throws(HelperError) in
            try files.delete(try Arguments(args, "file.delete").string(0, "path"))
            return .undefined
        }
        add("file.mkdir") { [unowned self] args throws(HelperError) in
            .string(try files.mkdir(try Arguments(args, "file.mkdir").string(0, "path")))
        }
        add("file.move") { [unowned self] args throws(HelperError) in
            let a = Arguments(args, "file.move")
            try files.move(try a.string(0, "from"), try a.string(1, "to"), copy: false)
            return .undefined
        }
        add("file.copy") { [unowned self] args throws(HelperError) in
            let a = Arguments(args, "file.copy")
            try storing { () throws(HelperError) in try files.move(try a.string(0, "from"), try a.string(1, "to"), copy: true) }
            return .undefined
        }
        add("file.temp") { [unowned self] args throws(HelperError) in
            let a = Arguments(args, "file.temp")
            return .string(try files.temp(name: a.optionalString(0) ?? "tmp", directory: a.optionalString(1),
                                          ext: a.optionalString(2), makeDirectory: false))
        }
        add("file.mkdirTemp") { [unowned self] args throws(HelperError) in
            let a = Arguments(args, "file.mkdirTemp")
            return .string(try files.temp(name: a.optionalString(0) ?? "tmp", directory: a.optionalString(1),
                                          ext: nil, makeDirectory: true))
        }
        add("file.tar") { [unowned self] args throws(HelperError) in
            .string(try storing { () throws(HelperError) in try files.tar(try Arguments(args, "file.tar").string(0, "path")) })
        }

        add("pcap.path") { [unowned self] args throws(HelperError) in
            .string(try storing { () throws(HelperError) in try pcapPath(try Arguments(args, "pcap.path").string(0, "stream")) })
        }
        add("pcap.snapshot") { [unowned self] args throws(HelperError) in
            let a = Arguments(args, "pcap.snapshot")
            return .string(try storing { () throws(HelperError) in
                try snapshot(streams: try a.optionalStrings(0), directory: a.optionalString(1))
            })
        }

        add("vendor.webhook") { [unowned self] args throws(HelperError) in
            let a = Arguments(args, "vendor.webhook")
            return try environment.webhook.send(method: try a.string(0, "method"), url: try a.string(1, "url"),
                                                body: a.optionalText(2), headers: try a.stringMap(3))
        }
        add("utils.nodeName") { [unowned self] _ in .string(environment.nodeName) }

        add("__ks.jobSchedule") { [unowned self] args throws(HelperError) in
            let a = Arguments(args, "jobs.schedule")
            let tag = try a.string(0, "tag")
            let schedule = try CronSchedule(try a.string(1, "cron"))
            // The table lives outside the heap's memory cap: bound it.
            guard jobs[tag] != nil || jobs.count < Self.maxJobs else {
                throw HelperError("jobs.schedule: a script may schedule at most \(Self.maxJobs) jobs")
            }
            jobs[tag] = ScheduledJob(schedule: schedule, nextNs: schedule.next(afterNs: wallClockNanoseconds()))
            return .undefined
        }
        add("__ks.jobRemove") { [unowned self] args throws(HelperError) in
            jobs.removeValue(forKey: try Arguments(args, "jobs.remove").string(0, "tag"))
            return .undefined
        }
        add("__ks.jobFailed") { [unowned self] args in
            log.append(script: title, level: "error", "job \(args.first?.text ?? "?") failed: \(args.count > 1 ? args[1].text : "")")
            return .undefined
        }
        add("__ks.schedulerRunning") { [unowned self] _ in .bool(schedulerRunning) }
        add("__ks.schedulerSet") { [unowned self] args in
            schedulerRunning = args.first == .bool(true)
            return .undefined
        }
        return list
    }

    static let maxJobs = 1000

    static func matches(_ query: KFLQuery, _ json: [UInt8]) -> Bool {
        json.withUnsafeBytes { query.matches(json: $0, nowMs: wallClockNanoseconds() / 1_000_000) }
    }

    /// Runs a helper that adds to the scripting directory. A refusal for its disk
    /// cap is thrown to the script and logged too (at most once a second), so a
    /// script that catches it still leaves a trace.
    private func storing<T>(_ body: () throws(HelperError) -> T) throws(HelperError) -> T {
        do throws(HelperError) { return try body() } catch {
            if error.isStorageRefusal {
                let now = monotonicNanoseconds()
                if now - lastStorageLogNs >= 1_000_000_000 {
                    let more = storageRefusalsSuppressed > 0 ? " (\(storageRefusalsSuppressed) more refused)" : ""
                    log.append(script: title, level: "system", error.message + more)
                    lastStorageLogNs = now
                    storageRefusalsSuppressed = 0
                } else {
                    storageRefusalsSuppressed += 1
                }
            }
            throw error
        }
    }

    private func consoleLine(_ level: String, _ args: [ScriptValue]) -> ScriptValue {
        log.append(script: title, level: level, args.map(\.text).joined(separator: " "))
        return .undefined
    }

    /// A compiled query, cached (a hook usually matches the same few queries).
    private func compiled(_ text: String) throws(HelperError) -> KFLQuery {
        if let q = kflCache[text] { return q }
        let q: KFLQuery
        do { q = try KFLQuery.compile(text, macros: environment.macros) } catch {
            throw HelperError("KFL '\(text)': \(error)")
        }
        if kflCache.count >= 256 { kflCache.removeAll() }
        kflCache[text] = q
        return q
    }

    private func flow(of stream: String) throws(HelperError) -> FlowHash {
        guard let flow = streams.flow(stream) else {
            throw HelperError("stream '\(stream)' is not one this script has seen an entry of")
        }
        return flow
    }

    /// The stream's packets (those the ring still holds and those this script's
    /// session retained) in `pcaps/<stream>.pcap`.
    private func pcapPath(_ stream: String) throws(HelperError) -> String {
        let flow = try flow(of: stream)
        let safe = String(stream.map { $0.isLetter || $0.isNumber ? $0 : "_" })
        let path = try files.resolve("pcaps/\(safe).pcap")
        try files.makeParent(of: path)
        try files.produce(path, what: "pcap.path") { () throws(HelperError) in try writePcap(path, flows: [flow]) }
        return path
    }

    /// The packets of `streams` (nil or empty: the whole ring) in a new pcap
    /// under `directory` (default `snapshots`); a copy the ring's flushes never touch.
    private func snapshot(streams names: [String]?, directory: String?) throws(HelperError) -> String {
        var flows: [FlowHash] = []
        for name in names ?? [] {
            let f = try flow(of: name)
            if !flows.contains(f) { flows.append(f) }
        }
        let dir = try files.mkdir(directory ?? "snapshots")
        snapshotCounter += 1
        let stamp = Self.fileStamp(wallClockNanoseconds())
        let path = "\(dir)/snapshot-\(stamp)-\(snapshotCounter).pcap"
        try files.produce(path, what: "pcap.snapshot") { () throws(HelperError) in
            if flows.isEmpty {
                do throws(RingError) { _ = try RingExport.write(to: path, catalogue: environment.ring) } catch {
                    throw HelperError("pcap.snapshot: \(error.description)")
                }
            } else {
                try writePcap(path, flows: flows)
            }
        }
        return path
    }

    private func writePcap(_ path: String, flows: [FlowHash]) throws(HelperError) {
        let writer: PcapWriter
        do { writer = try PcapWriter(path: path, linkType: environment.ring.configuration.linkType) } catch {
            throw HelperError("\(path): \(error.message)")
        }
        for flow in flows {
            let source = RingPacketSource(catalogue: environment.ring, flow: flow, retained: sessionRetention)
            while source.read(maxPackets: 512, { writer.write($0) }) {}
        }
        if let failure = writer.close() { throw HelperError("\(path): \(failure)") }
    }

    static func fileStamp(_ ns: Int64) -> String {
        var seconds = time_t(ns / 1_000_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec)
    }
}

/// A helper's arguments, with errors that name the helper and the argument.
struct Arguments {
    let values: [ScriptValue]
    let helper: String

    init(_ values: [ScriptValue], _ helper: String) {
        self.values = values
        self.helper = helper
    }

    func at(_ i: Int) -> ScriptValue { i < values.count ? values[i] : .undefined }

    func string(_ i: Int, _ name: String) throws(HelperError) -> String {
        guard case .string(let s) = at(i) else { throw HelperError("\(helper): \(name) must be a string") }
        return s
    }

    func optionalString(_ i: Int) -> String? {
        if case .string(let s) = at(i), !s.isEmpty { return s }
        return nil
    }

    /// Any value as text (objects as JSON), "" when missing.
    func text(_ i: Int) -> String { at(i).isNullish ? "" : at(i).text }

    func optionalText(_ i: Int) -> String? { at(i).isNullish ? nil : at(i).text }

    func optionalStrings(_ i: Int) throws(HelperError) -> [String]? {
        switch at(i) {
        case .undefined, .null: return nil
        case .string(let s): return [s]
        case .json(let text):
            guard case .array(let items)? = try? JSONValue.parse(text) else {
                throw HelperError("\(helper): expected an array of strings")
            }
            var out: [String] = []
            for item in items {
                guard case .string(let s) = item else { throw HelperError("\(helper): expected an array of strings") }
                out.append(s)
            }
            return out
        default: throw HelperError("\(helper): expected an array of strings")
        }
    }

    func stringMap(_ i: Int) throws(HelperError) -> [String: String] {
        switch at(i) {
        case .undefined, .null: return [:]
        case .json(let text):
            guard case .object(let members)? = try? JSONValue.parse(text) else {
                throw HelperError("\(helper): headers must be an object")
            }
            var out: [String: String] = [:]
            for m in members {
                switch m.value {
                case .string(let s): out[m.key] = s
                case .number(let n): out[m.key] = ScriptValue.number(n).text
                case .bool(let b): out[m.key] = b ? "true" : "false"
                default: throw HelperError("\(helper): header \(m.key) must be a string")
                }
            }
            return out
        default: throw HelperError("\(helper): headers must be an object")
        }
    }
}
