import Foundation

/// A "pod" for live tests: a network namespace joined to the host by a veth
/// pair (host side `hostInterface`, with `hostAddress`; pod side `podAddress`),
/// running a real HTTP server (Python's http.server on port 8080) that serves
/// `files`. Everything is removed by `remove()`. Needs root and iproute2.
public final class TestPod {
    public let namespace: String
    public let hostInterface: String
    public let hostAddress: String
    public let podAddress: String
    public let port = 8080
    private let podInterface: String
    private let root: URL
    private var server: Process?

    /// - Parameters:
    ///   - tag: a short name, unique among the tests of one run (kept in interface names).
    ///   - subnet: third octet of 10.234.X.0/24, unique among concurrent pods.
    ///   - netns: the namespace's name (default `kstest-TAG-PID`); `NS.POD` names a pod POD in NS for `kubeshark tap`.
    public init(tag: String, subnet: Int, netns: String? = nil,
                files: [String: String] = ["hello.txt": "hello from the pod\n"]) throws {
        let id = getpid() % 10000
        namespace = netns ?? "kstest-\(tag)-\(getpid())"
        hostInterface = "ks\(tag.prefix(4))\(id)a"
        podInterface = "ks\(tag.prefix(4))\(id)b"
        hostAddress = "10.234.\(subnet).1"
        podAddress = "10.234.\(subnet).2"
        root = FileManager.default.temporaryDirectory.appendingPathComponent("ks-pod-\(tag)-\(getpid())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        for (name, text) in files { try Data(text.utf8).write(to: root.appendingPathComponent(name)) }
        remove()  // leftovers of a crashed run
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        for (name, text) in files { try Data(text.utf8).write(to: root.appendingPathComponent(name)) }
        try sh("ip netns add \(namespace)")
        try sh("ip link add \(hostInterface) type veth peer name \(podInterface)")
        try sh("ip link set \(podInterface) netns \(namespace)")
        try sh("ip addr add \(hostAddress)/24 dev \(hostInterface) && ip link set \(hostInterface) up")
        try sh("ip netns exec \(namespace) ip addr add \(podAddress)/24 dev \(podInterface)")
        try sh("ip netns exec \(namespace) ip link set \(podInterface) up && ip netns exec \(namespace) ip link set lo up")
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        server.arguments = ["netns", "exec", namespace, "/usr/bin/python3", "-m", "http.server", "\(port)",
                            "--bind", podAddress, "--directory", root.path]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        self.server = server
        // Wait until it answers.
        for _ in 0..<100 {
            if (try? sh("curl -s -o /dev/null --max-time 1 http://\(podAddress):\(port)/")) != nil { return }
            usleep(100_000)
        }
        remove()
        throw PodFailure(message: "the pod's HTTP server did not start")
    }

    /// Fetches `path` from the pod's server with curl; returns the body.
    @discardableResult
    public func fetch(_ path: String) throws -> String {
        let r = try TestProcess.run("/usr/bin/curl", ["-s", "--max-time", "5", "http://\(podAddress):\(port)\(path)"])
        guard r.status == 0 else { throw PodFailure(message: "curl \(path): \(r.stderr)") }
        return r.stdout
    }

    /// Removes the server, the namespace and the veth pair.
    public func remove() {
        if let server {
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
        }
        server = nil
        _ = try? sh("ip netns pids \(namespace) 2>/dev/null | xargs -r kill -9; ip netns del \(namespace) 2>/dev/null; ip link del \(hostInterface) 2>/dev/null; true")
        try? FileManager.default.removeItem(at: root)
    }

    private func sh(_ command: String) throws {
        let r = try TestProcess.run("/bin/sh", ["-c", command])
        if r.status != 0 { throw PodFailure(message: "\(command): \(r.stderr)") }
    }

    public struct PodFailure: Error, CustomStringConvertible {
        public var message: String
        public init(message: String) { self.message = message }
        public var description: String { message }
    }
}
