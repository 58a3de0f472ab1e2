// swift-tools-version: 6.0
//
// kubeshark-swift: a Kubernetes traffic analyzer with dissectors loaded as
// plugins through a stable C ABI (Sources/PluginAPI/include/kubeshark_plugin.h).

import PackageDescription

// The hot path (decode, reassembly, plugin calls, entry building) runs through
// class properties on every packet; dynamic exclusivity checks cost ~40% of a
// release run there. Debug builds (and so the tests) keep them on.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "kubeshark-swift",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kubeshark", targets: ["kubeshark"]),
        .library(name: "PluginKit", targets: ["PluginKit"]),
        // Built-in dissectors: dynamic libraries named libksplugin-<name>.so, found
        // next to the executable at run time.
        .library(name: "ksplugin-http", type: .dynamic, targets: ["HTTPPlugin"]),
        .library(name: "ksplugin-dns", type: .dynamic, targets: ["DNSPlugin"]),
        .library(name: "ksplugin-redis", type: .dynamic, targets: ["RedisPlugin"]),
        .library(name: "ksplugin-amqp", type: .dynamic, targets: ["AMQPPlugin"]),
        .library(name: "ksplugin-kafka", type: .dynamic, targets: ["KafkaPlugin"]),
        .library(name: "ksplugin-http2", type: .dynamic, targets: ["HTTP2PluginExport"]),
        .executable(name: "ks-plugin-fuzzer", targets: ["PluginFuzzer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // The worker's HTTP/WebSocket API and its Prometheus metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket", from: "1.6.2"),
        // The Kubernetes client: kubeconfig (YAML), HTTPS to the API server with the cluster's CA.
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // The stable ABI: one C header and nothing else.
        .target(name: "PluginAPI", path: "Sources/PluginAPI"),
        // System libraries.
        .systemLibrary(name: "CPcap", path: "Sources/CPcap", pkgConfig: "libpcap",
                       providers: [.apt(["libpcap-dev"])]),
        .target(name: "CAFPacket", path: "Sources/CAFPacket"),
        // AF_XDP: libxdp's XSK API (links libxdp and libbpf) and a thin C shim over its inline rings.
        .systemLibrary(name: "CLibXDP", path: "Sources/CLibXDP", pkgConfig: "libxdp",
                       providers: [.apt(["libxdp-dev", "libbpf-dev"])]),
        .target(name: "CXDP", dependencies: ["CLibXDP"], path: "Sources/CXDP",
                linkerSettings: [.linkedLibrary("xdp"), .linkedLibrary("bpf")]),
        // TLS plaintext: the libbpf loader of the OpenSSL uprobes (Sources/CTLSProbe), and their BPF
        // object, compiled at build time by the EmbedBPF plugin (clang -target bpf) into TLSProbeObject.
        .target(name: "CTLSProbe", path: "Sources/CTLSProbe", exclude: ["bpf"],
                linkerSettings: [.linkedLibrary("bpf")]),
        .plugin(name: "EmbedBPF", capability: .buildTool(), path: "BuildPlugins/EmbedBPF"),
        .target(name: "TLSProbeObject", path: "Sources/TLSProbeObject", plugins: ["EmbedBPF"]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // Duktape (ES5.1) for scripts, built from Debian's duktape-dev sources with
        // the interrupt counter on (Sources/CDuktape/ks_duktape.c says why).
        .target(name: "CDuktape", path: "Sources/CDuktape", cSettings: [.unsafeFlags(["-O2", "-w"])]),
        // Swift SDK for plugin authors (not part of the ABI).
        .target(name: "PluginKit", dependencies: ["PluginAPI"], path: "Sources/PluginKit", swiftSettings: hotPath),
        // The engine.
        .target(
            name: "Host",
            dependencies: [
                "PluginAPI", "CPcap", "CAFPacket", "CXDP", "CTLSProbe", "TLSProbeObject",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Host",
            swiftSettings: hotPath
        ),
        // Scripts: hooks, helpers and jobs over the ring and its sessions (docs/scripting.md).
        .target(
            name: "Scripting",
            dependencies: ["Host", "CDuktape", .product(name: "Logging", package: "swift-log")],
            path: "Sources/Scripting"
        ),
        // The worker process: capture into the ring, sessions, and the API.
        .target(
            name: "Worker",
            dependencies: [
                "Host",
                "Scripting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Worker",
            // The web dashboard (plain HTML/CSS/JavaScript, no build step), served at / and /dashboard/.
            resources: [.copy("Dashboard")]
        ),
        // Deployment into Kubernetes: configuration (Kubeshark's keys), manifests, YAML.
        .target(
            name: "Deploy",
            dependencies: ["Host", .product(name: "Yams", package: "Yams")],
            path: "Sources/Deploy"
        ),
        // The Kubernetes client: kubeconfig and in-cluster config, the API over HTTPS,
        // pod lists and watches, server-side apply, and scoping on the cluster's pods.
        .target(
            name: "Kube",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            path: "Sources/Kube"
        ),
        .executableTarget(
            name: "kubeshark",
            dependencies: [
                "Host",
                "Worker",
                "Deploy",
                "Kube",
                "Scripting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/kubeshark"
        ),
        // Built-in plugins.
        // GraphQL over HTTP, shared by every HTTP-carrying plugin: GraphQLSupport reads
        // requests and responses (stdlib only), GraphQLEntries writes them into entries.
        .target(name: "GraphQLSupport", path: "Plugins/GraphQL/Support", swiftSettings: hotPath),
        .target(name: "GraphQLEntries", dependencies: ["GraphQLSupport", "PluginKit"], path: "Plugins/GraphQL/Entries",
                swiftSettings: hotPath),
        // zlib inflation shared by the HTTP-carrying plugins (a static module each links).
        .target(name: "PluginZlib", dependencies: ["CZlib"], path: "Plugins/Shared/Zlib", swiftSettings: hotPath),
        .target(name: "HTTPPlugin", dependencies: ["PluginKit", "CZlib", "PluginZlib", "GraphQLSupport", "GraphQLEntries"],
                path: "Plugins/HTTP", swiftSettings: hotPath),
        .target(name: "DNSPlugin", dependencies: ["PluginKit"], path: "Plugins/DNS", swiftSettings: hotPath),
        .target(name: "RedisPlugin", dependencies: ["PluginKit"], path: "Plugins/Redis", swiftSettings: hotPath),
        .target(name: "AMQPPlugin", dependencies: ["PluginKit"], path: "Plugins/AMQP", swiftSettings: hotPath),
        .target(name: "KafkaPlugin", dependencies: ["PluginKit", "CZlib"], path: "Plugins/Kafka", swiftSettings: hotPath),
        .target(name: "HTTP2Plugin", dependencies: ["PluginKit", "CZlib", "PluginZlib", "GraphQLSupport", "GraphQLEntries"],
                path: "Plugins/HTTP2", swiftSettings: hotPath),
        // The plugin's ks_plugin_v1, apart so tests can link HTTP2Plugin beside HTTPPlugin.
        .target(name: "HTTP2PluginExport", dependencies: ["HTTP2Plugin"], path: "Plugins/HTTP2Export", swiftSettings: hotPath),

        // Fuzzing: libFuzzer target (with -DKS_FUZZ) or input replayer.
        .executableTarget(name: "PluginFuzzer", dependencies: ["Host"], path: "Fuzz/PluginFuzzer"),

        // Tests, and the helpers they share.
        .target(name: "TestKit", path: "Tests/TestKit"),
        .testTarget(name: "PluginAPITests", dependencies: ["PluginAPI"], path: "Tests/PluginAPITests"),
        .testTarget(name: "PluginKitTests", dependencies: ["PluginKit", "PluginAPI"], path: "Tests/PluginKitTests"),
        .testTarget(name: "HostTests", dependencies: ["TestKit", "Host", "PluginAPI"], path: "Tests/HostTests"),
        .testTarget(name: "HTTPPluginTests", dependencies: ["TestKit", "Host", "HTTPPlugin", "PluginZlib"], path: "Tests/HTTPPluginTests"),
        .testTarget(name: "GraphQLTests", dependencies: ["TestKit", "GraphQLSupport"], path: "Tests/GraphQLTests"),
        .testTarget(name: "DNSPluginTests", dependencies: ["TestKit", "Host"], path: "Tests/DNSPluginTests"),
        .testTarget(name: "RedisPluginTests", dependencies: ["TestKit", "Host"], path: "Tests/RedisPluginTests"),
        .testTarget(name: "AMQPPluginTests", dependencies: ["TestKit", "Host"], path: "Tests/AMQPPluginTests"),
        .testTarget(name: "KafkaPluginTests", dependencies: ["TestKit", "Host"], path: "Tests/KafkaPluginTests"),
        .testTarget(name: "HTTP2PluginTests", dependencies: ["TestKit", "Host", "HTTP2Plugin"], path: "Tests/HTTP2PluginTests"),
        .testTarget(name: "TLSTests", dependencies: ["TestKit", "Host"], path: "Tests/TLSTests"),
        .testTarget(name: "CLITests", dependencies: ["TestKit", "Host"], path: "Tests/CLITests"),
        .testTarget(name: "DeployTests", dependencies: ["TestKit", "Host", "Deploy"], path: "Tests/DeployTests"),
        .testTarget(name: "ScriptingTests", dependencies: ["TestKit", "Host", "Scripting", "Worker"], path: "Tests/ScriptingTests"),
        .testTarget(
            name: "WorkerTests",
            dependencies: ["TestKit", "Host", "Worker"],
            path: "Tests/WorkerTests",
            exclude: ["ws_client.py", "dashboard_driver.py"]
        ),
        .testTarget(
            name: "KubeTests",
            dependencies: ["TestKit", "Kube"],
            path: "Tests/KubeTests",
            exclude: ["kube_api_server.py"]
        ),
    ]
)
