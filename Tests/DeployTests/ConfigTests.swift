import Deploy
import Foundation
import Host
import TestKit
import Testing

/// The configuration: Kubeshark's keys, a config file, flags, `--set`, in that order.
@Suite("Deployment configuration")
struct ConfigTests {
    /// A HOME of its own with `~/.kubeshark/config.yaml` holding `text`.
    static func home(_ text: String?) throws -> String {
        let home = NSTemporaryDirectory() + "ks-home-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: home + "/.kubeshark", withIntermediateDirectories: true)
        if let text { try text.write(toFile: home + "/.kubeshark/config.yaml", atomically: true, encoding: .utf8) }
        return home
    }

    static func configMap(_ yaml: String) throws -> JSONValue? {
        try YAMLText.parseAll(yaml).first { $0["kind"].map { if case .string("ConfigMap") = $0 { true } else { false } } ?? false }?["data"]
    }

    static func text(_ v: JSONValue?) -> String? { if case .string(let s)? = v { s } else { nil } }

    @Test("the config file, then flags, then --set, each over the one before")
    func precedence() throws {
        let home = try Self.home("""
            tap:
              namespaces: [from-file]
              storageLimit: 3Gi
              packetCapture: af_xdp
            logLevel: info
            """)
        defer { try? FileManager.default.removeItem(atPath: home) }
        func run(_ args: [String]) throws -> JSONValue? {
            let r = try TestProcess.run(TestProcess.kubeshark, ["manifests"] + args, environment: ["HOME": home])
            #expect(r.status == 0, "\(r.stderr)")
            return try Self.configMap(r.stdout)
        }
        let fileOnly = try run([])
        #expect(Self.text(fileOnly?["NAMESPACES"]) == "from-file" && Self.text(fileOnly?["STORAGE_LIMIT"]) == "3Gi")
        #expect(Self.text(fileOnly?["PACKET_CAPTURE"]) == "af_xdp" && Self.text(fileOnly?["LOG_LEVEL"]) == "info")
        let flag = try run(["-n", "from-flag"])
        #expect(Self.text(flag?["NAMESPACES"]) == "from-flag" && Self.text(flag?["STORAGE_LIMIT"]) == "3Gi")
        let set = try run(["-n", "from-flag", "--set", "tap.namespaces=a,b", "--set", "tap.storageLimit=1Gi"])
        #expect(Self.text(set?["NAMESPACES"]) == "a,b" && Self.text(set?["STORAGE_LIMIT"]) == "1Gi")
        // `kubeshark config` shows the file's values over the defaults.
        let shown = try TestProcess.run(TestProcess.kubeshark, ["config"], environment: ["HOME": home])
        let tree = try YAMLText.parse(shown.stdout)
        #expect(Self.text(tree["tap"]?["storageLimit"]) == "3Gi" && Self.text(tree["tap"]?["regex"]) == ".*")
    }

    @Test("a bad file or a bad --set fails with one line naming the key (and the file)")
    func errors() throws {
        let unknown = try Self.home("tap:\n  storagelimit: 1Gi\n")
        defer { try? FileManager.default.removeItem(atPath: unknown) }
        let r1 = try TestProcess.run(TestProcess.kubeshark, ["manifests"], environment: ["HOME": unknown])
        #expect(r1.status != 0 && r1.stderr.contains("config.yaml: unknown config key 'tap.storagelimit'"), "\(r1.stderr)")
        let wrongType = try Self.home("tap:\n  tls: yes please\n")
        defer { try? FileManager.default.removeItem(atPath: wrongType) }
        let r2 = try TestProcess.run(TestProcess.kubeshark, ["manifests"], environment: ["HOME": wrongType])
        #expect(r2.status != 0 && r2.stderr.contains("tap.tls: expected true or false, got a string"), "\(r2.stderr)")
        let notYAML = try Self.home("tap: [unclosed\n")
        defer { try? FileManager.default.removeItem(atPath: notYAML) }
        let r3 = try TestProcess.run(TestProcess.kubeshark, ["config"], environment: ["HOME": notYAML])
        #expect(r3.status != 0 && r3.stderr.contains("is not valid YAML"), "\(r3.stderr)")
        let cases: [([String], String)] = [
            (["--set", "tap.nope=1"], "unknown config key 'tap.nope'"),
            (["--set", "tap.proxy.front.port=eighty"], "tap.proxy.front.port is a number, not 'eighty'"),
            (["--set", "tap.resources=big"], "tap.resources is a section"),
            (["--set", "tap.storageLimit=lots"], "tap.storageLimit: 'lots' is not a quantity"),
            (["--set", "tap.packetCapture=pf_ring"], "tap.packetCapture: 'pf_ring' is not one of af_packet, af_xdp, libpcap, auto"),
            (["-n", "Shop"], "tap.namespaces: 'Shop' is not a Kubernetes name"),
            (["web["], "pod regex 'web[' is not a regular expression"),
            (["--config-path", "/nonexistent/kubeshark.yaml"], "cannot read the config file /nonexistent/kubeshark.yaml"),
        ]
        for (args, message) in cases {
            let r = try TestProcess.run(TestProcess.kubeshark, ["manifests"] + args, environment: ["HOME": unknown + "-none"])
            #expect(r.status != 0 && r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(r.stdout.isEmpty, "nothing printed on a failure")
        }
    }

    @Test("config -r writes the defaults; they read back as the defaults")
    func regenerate() throws {
        let home = try Self.home(nil)
        defer { try? FileManager.default.removeItem(atPath: home) }
        let path = home + "/custom/ks.yaml"
        let r = try TestProcess.run(TestProcess.kubeshark, ["config", "-r", "--config-path", path])
        #expect(r.status == 0, "\(r.stderr)")
        let config = try DeployConfig.load(path: path, required: true)
        #expect(ManifestsTests.canonical(config.tree) == ManifestsTests.canonical(DeployConfig.defaults))
    }

    @Test("YAML out and back: strings that look like other types stay strings")
    func yamlRoundTrip() throws {
        let tricky = ["true", "no", "8080", "1e3", "", "null", "~", "0x1f", "a: b", "- item", "#comment", "it's", "日本", "12:30"]
        let value = JSONValue.object([
            JSONMember(key: "strings", value: .array(tricky.map { .string($0) })),
            JSONMember(key: "number", value: .number(8080)),
            JSONMember(key: "fraction", value: .number(0.25)),
            JSONMember(key: "flag", value: .bool(false)),
            JSONMember(key: "nothing", value: .null),
            JSONMember(key: "empty", value: .object([])),
        ])
        let text = try YAMLText.document(value)
        #expect(ManifestsTests.canonical(try YAMLText.parse(text)) == ManifestsTests.canonical(value), "\(text)")
    }
}
