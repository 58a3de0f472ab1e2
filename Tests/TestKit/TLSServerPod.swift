import Foundation

/// A pod serving HTTPS: a `TestPod` network namespace (veth to the host) running
/// nginx with a self-signed certificate made by openssl, HTTP/1.1 and HTTP/2
/// (ALPN h2) on port 8443; `/kstest.Greeter/` goes to a gRPC server on the pod's
/// 127.0.0.1:50051 in plaintext (`startGRPCServer`). `remove()` stops everything.
public final class TLSServerPod {
    public let pod: TestPod
    public let port = 8443
    public let directory: URL
    private var server: Process?
    public var namespace: String { pod.namespace }
    public var address: String { pod.podAddress }
    public var hostInterface: String { pod.hostInterface }

    /// `netns`: the namespace's name (see `TestPod`); `NS.POD` makes it pod POD in NS for `kubeshark tap`.
    public init(tag: String, subnet: Int, netns: String? = nil) throws {
        pod = try TestPod(tag: tag, subnet: subnet, netns: netns)
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ks-tls-\(tag)-\(getpid())")
        do {
            try? FileManager.default.removeItem(at: directory)
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("www"), withIntermediateDirectories: true)
            try Data("hello over tls\n".utf8).write(to: directory.appendingPathComponent("www/hello.txt"))
            let d = directory.path
            try sh("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=kubeshark-test "
                + "-keyout \(d)/key.pem -out \(d)/cert.pem")
            let conf = """
                daemon off;
                user root;
                worker_processes 1;
                pid \(d)/nginx.pid;
                error_log \(d)/error.log;
                events { worker_connections 256; }
                http {
                  access_log off;
                  client_body_temp_path \(d)/body; proxy_temp_path \(d)/proxy; fastcgi_temp_path \(d)/fcgi;
                  uwsgi_temp_path \(d)/uwsgi; scgi_temp_path \(d)/scgi;
                  server {
                    listen \(address):\(port) ssl http2;
                    ssl_certificate \(d)/cert.pem;
                    ssl_certificate_key \(d)/key.pem;
                    root \(d)/www;
                    location /api/ { return 201 "created\\n"; }
                    location /teapot/ { return 418 "teapot\\n"; }
                    location /kstest.Greeter/ { grpc_pass grpc://127.0.0.1:50051; }
                  }
                }
                """
            try Data(conf.utf8).write(to: directory.appendingPathComponent("nginx.conf"))
            // nginx stays in the namespace; the pod's removal kills every process there. Started
            // directly (not through a shell's &) so no pipe of ours stays open in it.
            let nginx = Process()
            nginx.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            nginx.arguments = ["netns", "exec", namespace, TestProcess.which("nginx") ?? "/usr/sbin/nginx", "-c", "\(d)/nginx.conf"]
            nginx.standardOutput = FileHandle.nullDevice
            nginx.standardError = FileHandle.nullDevice
            try nginx.run()
            server = nginx
            for _ in 0..<100 {
                if curl(["--http1.1", "/hello.txt"]) == 200 { return }
                usleep(100_000)
            }
            throw TestPod.PodFailure(message: "nginx did not serve TLS: \((try? String(contentsOfFile: "\(d)/error.log", encoding: .utf8)) ?? "")")
        } catch {
            remove()
            throw error
        }
    }

    public func remove() {
        // Not waited for: Foundation does not always reap it; the pod's removal kills what is left in the namespace.
        if let server { kill(server.processIdentifier, SIGKILL) }
        server = nil
        pod.remove()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs curl (in `netns` when given) against the pod; returns the HTTP status, or nil.
    @discardableResult
    public func curl(_ options: [String], netns: String? = nil) -> Int? {
        var arguments = options
        let path = arguments.removeLast()
        arguments = ["-sk", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}"] + arguments
            + ["https://\(address):\(port)\(path)"]
        let r = netns.map { try? TestProcess.run("/usr/sbin/ip", ["netns", "exec", $0, "curl"] + arguments) }
            ?? (try? TestProcess.run(TestProcess.which("curl") ?? "/usr/bin/curl", arguments))
        guard let r, r.status == 0 else { return nil }
        return Int(r.stdout)
    }

    /// Starts a Python grpcio server in the pod on 127.0.0.1:50051 (behind nginx):
    /// `kstest.Greeter/Hello` answers, `kstest.Greeter/Fail` ends NOT_FOUND "no such greeting".
    /// It stays until the pod is removed.
    public func startGRPCServer() throws {
        let script = """
            import grpc, time
            from concurrent import futures
            def hello(request, context): return b'\\x0a\\x0bhello world'
            def fail(request, context): context.abort(grpc.StatusCode.NOT_FOUND, 'no such greeting')
            handlers = grpc.method_handlers_generic_handler('kstest.Greeter', {
                'Hello': grpc.unary_unary_rpc_method_handler(hello),
                'Fail': grpc.unary_unary_rpc_method_handler(fail)})
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
            server.add_generic_rpc_handlers((handlers,))
            server.add_insecure_port('127.0.0.1:50051')
            server.start()
            print('ready', flush=True)
            time.sleep(300)
            """
        let grpc = Process()
        grpc.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        grpc.arguments = ["netns", "exec", namespace, "/usr/bin/python3", "-c", script]
        let out = Pipe()
        grpc.standardOutput = out
        grpc.standardError = FileHandle.nullDevice
        try grpc.run()
        guard TestProcess.waitFor("ready", in: out).contains("ready") else {
            throw TestPod.PodFailure(message: "the grpcio server did not start (python3-grpcio installed?)")
        }
    }

    /// One unary gRPC call through nginx with curl (HTTP/2 over TLS, a hand-built
    /// length-prefixed message); returns the HTTP status, or nil.
    public func grpc(_ path: String) -> Int? {
        let message: [UInt8] = [0, 0, 0, 0, 7, 0x0a, 5] + Array("world".utf8)
        let file = directory.appendingPathComponent("grpc-request.bin")
        guard (try? Data(message).write(to: file)) != nil else { return nil }
        return curl(["--http2", "-H", "content-type: application/grpc", "-H", "te: trailers",
                     "--data-binary", "@\(file.path)", path])
    }

    /// One HTTP/1.1 request through `openssl s_client`; returns the status line.
    public func sClient(_ path: String) -> String {
        let request = "GET \(path) HTTP/1.1\\r\\nHost: pod\\r\\nConnection: close\\r\\n\\r\\n"
        let r = try? TestProcess.run("/bin/sh", ["-c", "printf '\(request)' | timeout 5 openssl s_client -quiet "
            + "-connect \(address):\(port) 2>/dev/null | head -1"])
        return r?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    /// One request with Python's ssl module (http.client, which calls SSL_write_ex/SSL_read_ex); returns the status.
    public func python(_ method: String, _ path: String) -> Int? {
        let script = """
            import http.client, ssl, sys
            c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE
            h = http.client.HTTPSConnection(sys.argv[1], int(sys.argv[2]), context=c, timeout=5)
            h.request(sys.argv[3], sys.argv[4], body=b'{"from":"python"}' if sys.argv[3] == 'POST' else None)
            print(h.getresponse().status)
            """
        let r = try? TestProcess.run("/usr/bin/python3", ["-c", script, address, "\(port)", method, path])
        return r.flatMap { Int($0.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    private func sh(_ command: String) throws {
        let r = try TestProcess.run("/bin/sh", ["-c", command])
        if r.status != 0 { throw TestPod.PodFailure(message: "\(command): \(r.stderr)") }
    }
}

/// The TLS probe's BPF programs loaded in the kernel (`bpftool prog show`), by id and name.
private func tlsProgramsLoaded() -> [(id: Int, name: String)] {
    guard let bpftool = TestProcess.which("bpftool"),
          let r = try? TestProcess.run(bpftool, ["-j", "prog", "show"]), r.status == 0,
          let list = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]]
    else { return [(-1, "<bpftool failed>")] }
    // Names are cut to 15 characters by the kernel.
    let ours = ["ssl_write_enter", "ssl_read_enter", "ssl_write_ex_en", "ssl_read_ex_ent", "ssl_write_leave",
                "ssl_read_leave", "ssl_write_ex_le", "ssl_read_ex_lea"]
    return list.compactMap { p in
        guard let id = p["id"] as? Int, let name = p["name"] as? String, ours.contains(where: { name.hasPrefix($0) }) else { return nil }
        return (id, name)
    }
}

/// Ids of the BPF programs a process holds descriptors of (`prog_id` in /proc/PID/fdinfo).
private func programIDs(heldBy pid: Int32) -> Set<Int> {
    let dir = "/proc/\(pid)/fdinfo"
    guard let fds = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
    var ids: Set<Int> = []
    for fd in fds {
        guard let text = try? String(contentsOfFile: "\(dir)/\(fd)", encoding: .utf8) else { continue }
        for line in text.split(separator: "\n") where line.hasPrefix("prog_id:") {
            if let id = Int(line.dropFirst("prog_id:".count).trimmingCharacters(in: .whitespaces)) { ids.insert(id) }
        }
    }
    return ids
}

/// Names of the TLS probe's programs that process `pid` holds.
public func tlsPrograms(heldBy pid: Int32) -> [String] {
    let held = programIDs(heldBy: pid)
    return tlsProgramsLoaded().filter { held.contains($0.id) }.map(\.name)
}

/// Names of the TLS probe's programs no process holds: left behind in the kernel.
public func orphanedTLSPrograms() -> [String] {
    let loaded = tlsProgramsLoaded()
    guard !loaded.isEmpty else { return [] }
    var held: Set<Int> = []
    for pid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        if let p = Int32(pid) { held.formUnion(programIDs(heldBy: p)) }
    }
    return loaded.filter { !held.contains($0.id) }.map(\.name)
}
