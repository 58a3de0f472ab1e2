#if canImport(Glibc)
import Glibc
#endif

/// Runs system tools: iproute2 and ethtool for the AF_XDP mirror, tar for scripts. They are the reference
/// implementations of the tc and link netlink messages, their error text is what
/// an operator would see by hand, and setup happens once per capture, so the
/// cost of a process per step does not matter.
public enum SystemCommand {
    public struct Result {
        public var status: Int32
        public var output: String
        public var ok: Bool { status == 0 }
    }

    /// The path of `tool` in the usual system directories, or nil.
    public static func find(_ tool: String) -> String? {
        for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin"] {
            let path = "\(dir)/\(tool)"
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }

    /// Runs `tool args...` to completion; stdout and stderr together in `output`.
    /// The child starts with default signal handling and nothing blocked.
    public static func run(_ tool: String, _ args: [String]) -> Result {
        guard let path = find(tool) else { return Result(status: 127, output: "\(tool) not found (install iproute2/ethtool)") }
        var pipeFds: [Int32] = [0, 0]
        guard pipe(&pipeFds) == 0 else { return Result(status: 126, output: "pipe: \(String(cString: strerror(errno)))") }
        _ = fcntl(pipeFds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(pipeFds[1], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeFds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipeFds[1], 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        let env: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/sbin:/sbin:/usr/bin:/bin"), strdup("LC_ALL=C"), nil]
        defer { for p in env { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attr, argv, env)
        Glibc.close(pipeFds[1])
        guard rc == 0 else {
            Glibc.close(pipeFds[0])
            return Result(status: 126, output: "cannot run \(path): \(String(cString: strerror(rc)))")
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = Glibc.read(pipeFds[0], &buffer, buffer.count)
            if n > 0 { bytes += buffer[0..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        Glibc.close(pipeFds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = (status & 0x7f) == 0
        let code = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        var text = String(decoding: bytes, as: UTF8.self)
        while text.last == "\n" { text.removeLast() }
        return Result(status: code, output: text)
    }
}
