import Host
import Yams

/// YAML in and out of `JSONValue` trees (key order kept), through Yams (libyaml).
public enum YAMLText {
    /// One YAML document for `value`; strings that YAML would read as something
    /// else (`true`, `8080`, `null`, ``) are quoted, so the text reads back the same.
    public static func document(_ value: JSONValue) throws -> String {
        try Yams.serialize(node: node(value), indent: 2, width: -1)
    }

    /// Several documents separated by `---`, as `kubectl apply -f` takes them.
    public static func documents(_ values: [JSONValue]) throws -> String {
        try values.map { try document($0) }.joined(separator: "---\n")
    }

    /// Every document of `text` (comments and empty documents skipped).
    public static func parseAll(_ text: String) throws -> [JSONValue] {
        // Parser, not compose_all: its sequence ends quietly at a syntax error.
        let parser = try Parser(yaml: text)
        var out: [JSONValue] = []
        while let node = try parser.nextRoot() { out.append(try value(node)) }
        return out
    }

    /// The one document of `text`; `.null` when it is empty.
    public static func parse(_ text: String) throws -> JSONValue {
        try parseAll(text).first ?? .null
    }

    static func node(_ value: JSONValue) -> Node {
        switch value {
        case .null: return Node("null", .implicit, .plain)
        case .bool(let b): return Node(b ? "true" : "false", .implicit, .plain)
        case .number(let d):
            let text = d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
            return Node(text, .implicit, .plain)
        case .string(let s):
            return Node(s, .implicit, readsAsString(s) ? .any : .doubleQuoted)
        case .array(let items):
            return Node(items.map(node), .implicit, .block)
        case .object(let members):
            return Node(members.map { (Node($0.key), node($0.value)) }, .implicit, .block)
        }
    }

    /// Whether a plain scalar `s` resolves to a string under YAML 1.1/1.2 core rules.
    static func readsAsString(_ s: String) -> Bool {
        if s.isEmpty { return false }
        let lower = s.lowercased()
        let special: Set<String> = ["true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ".nan", ".inf", "-.inf", "+.inf"]
        if special.contains(lower) { return false }
        if Double(s) != nil || Int(s, radix: 10) != nil { return false }
        if s.hasPrefix("0x") || s.hasPrefix("0o") || s.contains(where: { $0 == ":" }) && s.allSatisfy({ $0.isNumber || $0 == ":" }) {
            return false
        }
        return true
    }

    static func value(_ node: Node) throws -> JSONValue {
        switch node {
        case .scalar(let scalar):
            if scalar.style != .plain && scalar.style != .any { return .string(scalar.string) }
            if node.null != nil { return .null }
            if let b = node.bool { return .bool(b) }
            if let i = node.int { return .number(Double(i)) }
            if let f = node.float, !scalar.string.isEmpty { return .number(f) }
            return .string(scalar.string)
        case .sequence(let sequence):
            return .array(try sequence.map(value))
        case .mapping(let mapping):
            return .object(try mapping.map { pair in
                guard case .scalar(let key) = pair.key else { throw YAMLError("a mapping key is not a scalar") }
                return JSONMember(key: key.string, value: try value(pair.value))
            })
        case .alias:
            throw YAMLError("YAML aliases are not supported here")
        }
    }
}

/// A YAML document that is not what was expected.
public struct YAMLError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
