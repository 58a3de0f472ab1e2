import Foundation
import Host

/// The configuration of a deployment, as a tree with Kubeshark's key names
/// (`tap.regex`, `tap.namespaces`, `tap.release.namespace`, `tap.storageLimit`...):
/// built-in defaults, then a config file, then flags, then `--set key=value`.
/// Every key has a default, and its type: a file or `--set` giving an unknown key
/// or a value of another type fails with the key's name.
public struct DeployConfig: Sendable {
    public private(set) var tree: JSONValue

    public init() { tree = Self.defaults }

    /// The built-in defaults (what `kubeshark config -r` writes).
    public static var defaults: JSONValue {
        let o = obj
        func resources(cpu: String, memory: String, limit: String) -> JSONValue {
            o([("requests", o([("cpu", .string(cpu)), ("memory", .string(memory))])),
               ("limits", o([("memory", .string(limit))]))])
        }
        return o([
            ("tap", o([
                ("regex", .string(".*")),
                ("namespaces", .array([])),
                ("excludedNamespaces", .array([])),
                ("release", o([("name", .string("kubeshark")), ("namespace", .string("default"))])),
                ("docker", o([
                    ("registry", .string("docker.io/kubeshark-swift")),
                    ("tag", .string(KubesharkVersion.version)),
                    ("imagePullPolicy", .string("IfNotPresent")),
                    ("imagePullSecrets", .array([])),
                ])),
                ("proxy", o([
                    ("host", .string("127.0.0.1")),
                    ("front", o([("port", .number(8899))])),
                    ("hub", o([("srvPort", .number(8898))])),
                    ("worker", o([("srvPort", .number(8897))])),
                ])),
                ("storageLimit", .string("500Mi")),
                ("packetCapture", .string("af_packet")),
                ("tls", .bool(false)),
                ("enabledDissectors", .array([])),
                ("pluginImages", .array([])),
                ("resources", o([
                    ("hub", resources(cpu: "50m", memory: "64Mi", limit: "1Gi")),
                    ("worker", resources(cpu: "100m", memory: "128Mi", limit: "2Gi")),
                ])),
                ("mountBpf", .bool(true)),
            ])),
            ("logLevel", .string("warning")),
            // `kubeshark scripts`: the folders it loads (and watches), the titles it activates (none: all);
            // `env`: the scripts' `env` object on every worker (free-form keys, string values).
            ("scripting", o([("source", .string("")), ("sources", .array([])), ("active", .array([])), ("env", o([]))])),
            ("kube", o([("configPath", .string("")), ("context", .string(""))])),
        ])
    }

    // MARK: Reading

    /// The value at a dotted path (`tap.release.namespace`).
    public func value(_ path: String) -> JSONValue? {
        var node: JSONValue? = tree
        for key in path.split(separator: ".") { node = node?[String(key)] }
        return node
    }

    public func string(_ path: String) -> String {
        if case .string(let s)? = value(path) { return s }
        return ""
    }

    public func strings(_ path: String) -> [String] {
        guard case .array(let items)? = value(path) else { return [] }
        return items.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
    }

    public func bool(_ path: String) -> Bool {
        if case .bool(let b)? = value(path) { return b }
        return false
    }

    public func int(_ path: String) -> Int {
        if case .number(let n)? = value(path) { return Int(n) }
        return 0
    }

    // MARK: Changing

    /// Applies `key=value` (as `--set` gives it): the value is read as the key's type
    /// (a list takes a comma list, `[]` for none).
    public mutating func set(_ assignment: String) throws(ConfigError) {
        guard let eq = assignment.firstIndex(of: "="), eq != assignment.startIndex else {
            throw ConfigError("--set '\(assignment)': expected key=value")
        }
        try set(String(assignment[..<eq]), text: String(assignment[assignment.index(after: eq)...]))
    }

    /// Sets the key at `path` from text, read as the key's type.
    public mutating func set(_ path: String, text: String) throws(ConfigError) {
        guard let current = Self.defaultValue(path) else { throw ConfigError("unknown config key '\(path)' (see kubeshark config)") }
        let value: JSONValue
        switch current {
        case .string: value = .string(text)
        case .bool:
            guard let b = Bool(text.lowercased()) else { throw ConfigError("\(path) is true or false, not '\(text)'") }
            value = .bool(b)
        case .number:
            guard let n = Double(text) else { throw ConfigError("\(path) is a number, not '\(text)'") }
            value = .number(n)
        case .array:
            let items = text == "[]" ? [] : text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            value = .array(items.filter { !$0.isEmpty }.map { .string($0) })
        case .object:
            throw ConfigError("\(path) is a section; set one of its keys")
        case .null:
            value = .string(text)
        }
        try replace(path, with: value)
    }

    /// Sets the key at `path` to a value of its type.
    public mutating func replace(_ path: String, with value: JSONValue) throws(ConfigError) {
        guard let current = Self.defaultValue(path) else { throw ConfigError("unknown config key '\(path)' (see kubeshark config)") }
        guard Self.sameKind(current, value) else { throw ConfigError("\(path): expected \(Self.kindName(current)), got \(Self.kindName(value))") }
        tree = Self.replacing(tree, at: path.split(separator: ".").map(String.init)[...], with: value)
    }

    /// Merges a config file's tree (`source` names it in errors): every leaf replaces the default's.
    public mutating func merge(_ file: JSONValue, source: String) throws(ConfigError) {
        guard case .object = file else {
            if case .null = file { return }
            throw ConfigError("\(source): the config is a mapping of keys (see kubeshark config)")
        }
        var leaves: [(String, JSONValue)] = []
        Self.collectLeaves(file, prefix: "", into: &leaves)
        for (path, value) in leaves {
            do { try replace(path, with: value) } catch { throw ConfigError("\(source): \(error.description)") }
        }
    }

    // MARK: Checking

    /// Fails with the first value a deployment cannot use, naming its key.
    public func check() throws(ConfigError) {
        func label(_ key: String, _ value: String) throws(ConfigError) {
            let ok = !value.isEmpty && value.count <= 63 && value.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
                && value.first != "-" && value.last != "-"
            if !ok { throw ConfigError("\(key): '\(value)' is not a Kubernetes name (lowercase letters, digits and '-', at most 63)") }
        }
        func oneOf(_ key: String, _ allowed: [String]) throws(ConfigError) {
            let v = string(key)
            if !allowed.contains(v) { throw ConfigError("\(key): '\(v)' is not one of \(allowed.joined(separator: ", "))") }
        }
        guard (try? Regex(string("tap.regex"))) != nil else {
            throw ConfigError("tap.regex: '\(string("tap.regex"))' is not a regular expression")
        }
        try label("tap.release.namespace", string("tap.release.namespace"))
        try label("tap.release.name", string("tap.release.name"))
        for key in ["tap.namespaces", "tap.excludedNamespaces"] { for ns in strings(key) { try label(key, ns) } }
        guard let limit = StorageQuantity(string("tap.storageLimit")), limit.bytes >= 16 << 20 else {
            throw ConfigError("tap.storageLimit: '\(string("tap.storageLimit"))' is not a quantity of at least 16Mi (500Mi, 10Gi)")
        }
        try oneOf("tap.packetCapture", ["af_packet", "af_xdp", "libpcap", "auto"])
        try oneOf("tap.docker.imagePullPolicy", ["Always", "IfNotPresent", "Never"])
        try oneOf("logLevel", ["trace", "debug", "info", "notice", "warning", "error", "critical"])
        for key in ["tap.proxy.front.port", "tap.proxy.hub.srvPort", "tap.proxy.worker.srvPort"] where !(1...65535).contains(int(key)) {
            throw ConfigError("\(key): \(int(key)) is not a port")
        }
        for name in strings("tap.enabledDissectors") where name.isEmpty || !name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == "_") }) {
            throw ConfigError("tap.enabledDissectors: '\(name)' is not a plugin name")
        }
        if string("tap.docker.registry").isEmpty || string("tap.docker.tag").isEmpty {
            throw ConfigError("tap.docker.registry and tap.docker.tag must not be empty")
        }
    }

    // MARK: Tree helpers

    /// Sections whose keys are the user's own (each a string).
    static let freeFormSections = ["scripting.env"]

    static func defaultValue(_ path: String) -> JSONValue? {
        for section in freeFormSections where path.hasPrefix(section + ".") {
            let key = path.dropFirst(section.count + 1)
            return key.isEmpty || key.contains(".") ? nil : .string("")
        }
        var node: JSONValue? = defaults
        for key in path.split(separator: ".") { node = node?[String(key)] }
        return path.isEmpty ? nil : node
    }

    static func sameKind(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.string, .string), (.bool, .bool), (.number, .number), (.array, .array), (.object, .object): return true
        default: return false
        }
    }

    static func kindName(_ v: JSONValue) -> String {
        switch v {
        case .string: "a string"
        case .bool: "true or false"
        case .number: "a number"
        case .array: "a list"
        case .object: "a section"
        case .null: "nothing"
        }
    }

    /// Leaves of a file's tree (lists are leaves).
    static func collectLeaves(_ node: JSONValue, prefix: String, into out: inout [(String, JSONValue)]) {
        guard case .object(let members) = node else {
            out.append((prefix, node))
            return
        }
        for m in members { collectLeaves(m.value, prefix: prefix.isEmpty ? m.key : "\(prefix).\(m.key)", into: &out) }
    }

    static func replacing(_ node: JSONValue, at path: ArraySlice<String>, with value: JSONValue) -> JSONValue {
        guard let key = path.first else { return value }
        guard case .object(var members) = node else { return node }
        if let i = members.firstIndex(where: { $0.key == key }) {
            members[i].value = replacing(members[i].value, at: path.dropFirst(), with: value)
        } else if path.count == 1 {
            members.append(JSONMember(key: key, value: value))  // a key of a free-form section
        }
        return .object(members)
    }

    // MARK: Files

    /// The config file to read: `explicit`, else `./kubeshark.yaml` when present,
    /// else `~/.kubeshark/config.yaml` (Kubeshark's order).
    public static func filePath(explicit: String?, workingDirectory: String = FileManager.default.currentDirectoryPath,
                                home: String = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        let local = workingDirectory + "/kubeshark.yaml"
        if FileManager.default.fileExists(atPath: local) { return local }
        return home + "/.kubeshark/config.yaml"
    }

    /// Defaults, then the file at `path` if it exists (a missing file is not an error
    /// unless it was named explicitly).
    public static func load(path: String, required: Bool) throws(ConfigError) -> DeployConfig {
        var config = DeployConfig()
        guard let data = FileManager.default.contents(atPath: path) else {
            if required { throw ConfigError("cannot read the config file \(path)") }
            return config
        }
        let tree: JSONValue
        do { tree = try YAMLText.parse(String(decoding: data, as: UTF8.self)) } catch {
            throw ConfigError("\(path) is not valid YAML: \(error)")
        }
        try config.merge(tree, source: path)
        return config
    }
}

/// A configuration problem, in one line naming the key or the file.
public struct ConfigError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
