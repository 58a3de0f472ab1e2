// Helpers shared by every test target: deterministic random bytes, running a
// program to completion, finding tools and the build directory.

import Foundation

/// Deterministic pseudo-random numbers (SplitMix64), so randomized tests reproduce.
public struct SplitMix: RandomNumberGenerator {
    public var state: UInt64

    public init(state: UInt64) { self.state = state }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
}

/// What a finished program said.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

public enum TestProcess {
    /// The build directory: where the test binary, `kubeshark` and the built-in plugins live.
    public static let buildDirectory: URL = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent()
    }()

    /// The repository root (this file is Tests/TestKit/TestKit.swift).
    public static let repoRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The built `kubeshark` executable.
    public static var kubeshark: String { buildDirectory.appendingPathComponent("kubeshark").path }

    /// `tool` on PATH (then the usual system directories), or nil.
    public static func which(_ tool: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        for dir in path + ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
            let candidate = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs a program to completion, capturing both outputs (read concurrently, so a
    /// chatty child never blocks), optionally feeding `stdin`.
    public static func run(
        _ executable: String, _ arguments: [String], stdin: String? = nil, environment: [String: String]? = nil
    ) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe()
        let err = Pipe()
        let inp = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin == nil ? (FileHandle.nullDevice as Any) : (inp as Any)
        try process.run()
        if let stdin {
            inp.fileHandleForWriting.write(Data(stdin.utf8))
            try? inp.fileHandleForWriting.close()
        }
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return ProcessResult(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }
}

// MARK: Shared by the plugin and CLI test targets

extension TestProcess {
    /// `../shared/corpus/NAME` beside the repository, when it exists.
    public static func corpus(_ name: String) -> URL? {
        let url = repoRoot.deletingLastPathComponent().appendingPathComponent("shared/corpus/\(name)")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }

    /// `Tests/Fixtures/NAME` in the repository.
    public static func fixtures(_ name: String) -> URL {
        repoRoot.appendingPathComponent("Tests/Fixtures/\(name)")
    }

    /// Whether the `kubeshark` binary has been built.
    public static var hasKubeshark: Bool { FileManager.default.isExecutableFile(atPath: kubeshark) }

    /// `kubeshark ARGUMENTS`, its standard output read as JSON lines (lines that are
    /// not JSON objects are left out).
    public static func kubesharkJSONLines(_ arguments: [String]) throws -> (entries: [[String: Any]], result: ProcessResult) {
        let r = try run(kubeshark, arguments)
        return (jsonLines(r.stdout), r)
    }

    /// Each line of `text` that is a JSON object.
    public static func jsonLines(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }
}

// MARK: Processes that run beside a test

extension TestProcess {
    /// A process whose SIGINT and SIGTERM work: children of a Swift Testing
    /// worker thread inherit those signals blocked, so a plain Process could
    /// never be interrupted. A one-line exec wrapper unblocks them.
    public static func unblocked(_ executable: String, _ arguments: [String]) -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: which("python3") ?? "/usr/bin/python3")
        p.arguments = ["-c", "import os, signal, sys; signal.pthread_sigmask(signal.SIG_UNBLOCK, "
            + "{signal.SIGINT, signal.SIGTERM}); os.execv(sys.argv[1], sys.argv[1:])", executable] + arguments
        return p
    }

    /// What a `kubeshark dissect --live … --output json` run printed.
    public struct LiveRun {
        public var entries: [[String: Any]]
        public var stderr: String
        public var status: Int32
        /// Whether it said "capturing on" before the traffic was made.
        public var started: Bool
    }

    /// Starts `process` (a `kubeshark dissect --live … --output json`, maybe behind a
    /// launcher such as `unblocked` or `unshare`), waits for "capturing on", makes the
    /// traffic (given the process id), waits `settle` seconds for it to be read, then
    /// interrupts the capture and returns what it printed.
    public static func liveRun(_ process: Process, settle: Double = 1, traffic: (Int32) throws -> Void) throws -> LiveRun {
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        var stderr = waitFor("capturing on", in: err)
        let started = stderr.contains("capturing on")
        let pid = process.processIdentifier
        do {
            try traffic(pid)
        } catch {
            kill(pid, SIGKILL)
            process.waitUntilExit()
            throw error
        }
        usleep(useconds_t(settle * 1_000_000))
        process.interrupt()
        DispatchQueue.global().asyncAfter(deadline: .now() + 20) { kill(pid, SIGKILL) }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        stderr += String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return LiveRun(entries: jsonLines(String(decoding: data, as: UTF8.self)), stderr: stderr,
                       status: process.terminationStatus, started: started)
    }

    /// Polls `condition` until it holds or `seconds` pass; returns whether it held.
    public static func eventually(within seconds: Double, every interval: Double = 0.1,
                                  _ condition: () throws -> Bool) rethrows -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: interval)
        }
        return try condition()
    }

    /// Reads `pipe` until its text contains `marker` (or `timeout` seconds pass);
    /// returns everything read so far.
    public static func waitFor(_ marker: String, in pipe: Pipe, timeout: Double = 20) -> String {
        var text = ""
        let deadline = Date().addingTimeInterval(timeout)
        let fd = pipe.fileHandleForReading.fileDescriptor
        while !text.contains(marker) && Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            text += String(decoding: buffer[0..<n], as: UTF8.self)
        }
        return text
    }

}

/// Runs blocking work (processes, polling with sleeps) on a thread of its own, so an
/// async test does not hold one of the few threads of Swift's cooperative pool, which
/// other tests' tasks (watches with deadlines) need.
public func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

