import Foundation
import Host
import Kube
import Worker

/// Scripts as a deployment's ConfigMap holds them, in Kubeshark's keys:
/// `SCRIPTING_SCRIPTS`, a JSON object `{"0": {"title", "code", "active"}, ...}`
/// (in order), and `SCRIPTING_ACTIVE_SCRIPTS`, the active titles joined by commas.
/// `kubeshark scripts --kube` writes them; `hub --kube` reads them and keeps every
/// worker running them.
enum ScriptsConfigMap {
    static let name = "kubeshark-config-map"
    static let scriptsKey = "SCRIPTING_SCRIPTS"
    static let activeKey = "SCRIPTING_ACTIVE_SCRIPTS"

    /// The scripts in `map`; nil when it has no `SCRIPTING_SCRIPTS` (the hub then leaves
    /// the workers' scripts alone). Throws when the key holds something else than scripts.
    static func scripts(in map: KubeObject) throws -> [ScriptSpec]? {
        guard let text = map.string(at: "data.\(scriptsKey)") else { return nil }
        let trimmed = text.trimmingSpaces
        if trimmed.isEmpty { return [] }
        guard case .object(let members)? = try? JSONValue.parse(trimmed) else {
            throw CommandFailure(message: "\(name) \(scriptsKey) is not a JSON object of scripts")
        }
        let activeList = map.string(at: "data.\(activeKey)").map {
            Set($0.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty })
        }
        var specs: [(Int, ScriptSpec)] = []
        for (position, member) in members.enumerated() {
            guard case .string(let title)? = member.value["title"], !title.isEmpty,
                  case .string(let code)? = member.value["code"]
            else { throw CommandFailure(message: "\(name) \(scriptsKey) \"\(member.key)\" has no title and code") }
            // The script's own switch when written by us; else Kubeshark's list (all, without a list).
            let active: Bool
            if case .bool(let own)? = member.value["active"] {
                active = own
            } else {
                active = activeList?.contains(title) ?? true
            }
            specs.append((Int(member.key) ?? position, ScriptSpec(title: title, code: code, active: active)))
        }
        return specs.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// The merge patch that sets both keys to `specs`.
    static func patch(_ specs: [ScriptSpec]) -> [UInt8] {
        let scripts = JSONValue.object(specs.enumerated().map { i, spec in
            JSONMember(key: "\(i)", value: .object([JSONMember(key: "title", value: .string(spec.title)),
                                                    JSONMember(key: "code", value: .string(spec.code)),
                                                    JSONMember(key: "active", value: .bool(spec.active))]))
        })
        let active = specs.filter(\.active).map(\.title).joined(separator: ",")
        return JSONValue.object([JSONMember(key: "data", value: .object([
            JSONMember(key: scriptsKey, value: .string(String(decoding: scripts.jsonBytes, as: UTF8.self))),
            JSONMember(key: activeKey, value: .string(active)),
        ]))]).jsonBytes
    }

    /// Writes `specs` into the release namespace's ConfigMap (which must exist: `tap --kube` made it).
    static func write(_ specs: [ScriptSpec], client: KubeClient, namespace: String) async throws {
        do {
            try await client.mergePatch(apiVersion: "v1", kind: "ConfigMap", name: name, namespace: namespace,
                                        patch: patch(specs), fieldManager: "kubeshark-scripts")
        } catch let error as KubeAPIError where error.isNotFound {
            throw CommandFailure(message: "no \(namespace)/\(name): deploy first (kubeshark tap --kube -s \(namespace))")
        }
    }
}
