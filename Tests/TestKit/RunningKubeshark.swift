import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A running `kubeshark` service (worker, hub, tap, proxy) started by a test: its
/// stderr goes to a file, and it is ready when that prints its URL.
public final class RunningKubeshark: @unchecked Sendable {  // immutable after init; Process is thread-safe enough for kill/wait
    public let process: Process
    public let base: String
    public let dataDirectory: String
    public let stderrPath: String

    /// Starts `kubeshark COMMAND` (worker by default) on a free port, with `environment`
    /// added to the test's, and waits for its ready line (which names the URL).
    public init(_ arguments: [String], command: String = "worker", portArguments: [String] = ["--port", "0"],
         ready: String = "listening on", dataDirectory given: String? = nil, usesDataDirectory: Bool = true,
         environment: [String: String] = [:]) throws {
        dataDirectory = given ?? NSTemporaryDirectory() + "ks-worker-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        stderrPath = dataDirectory + ".log"
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: TestProcess.kubeshark)
        process.arguments = [command] + portArguments + (usesDataDirectory ? ["--data-dir", dataDirectory] : []) + arguments
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        process.standardOutput = FileHandle.nullDevice
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, given in given }
        }
        try process.run()
        var found: String?
        for _ in 0..<200 where found == nil {
            Thread.sleep(forTimeInterval: 0.05)
            let log = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
            if log.contains(ready), let r = log.range(of: #"http://127\.0\.0\.1:[0-9]+"#, options: .regularExpression) {
                found = String(log[r])
            }
            if !process.isRunning { break }
        }
        guard let found else {
            let log = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
            process.terminate()
            throw StartFailure(description: "kubeshark \(command) did not start: \(log)")
        }
        base = found
    }

    /// What it has printed on stderr so far.
    public var log: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    public struct StartFailure: Error, CustomStringConvertible {
        public var description: String
    }

    public func get(_ path: String) throws -> (Int, Data) {
        try request(path, method: "GET")
    }

    public func request(_ path: String, method: String) throws -> (Int, Data) {
        var req = URLRequest(url: URL(string: base + path)!)
        req.httpMethod = method
        return try send(req)
    }

    public func send(_ req: URLRequest) throws -> (Int, Data) {
        nonisolated(unsafe) var result: (Int, Data) = (0, Data())
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: req) { data, response, _ in
            result = ((response as? HTTPURLResponse)?.statusCode ?? 0, data ?? Data())
            done.signal()
        }.resume()
        _ = done.wait(timeout: .now() + 30)
        return result
    }

    /// Stops with SIGTERM (a graceful stop) and returns the exit status and log.
    public func stop() -> (Int32, String) {
        kill(process.processIdentifier, SIGTERM)
        for _ in 0..<100 where process.isRunning { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        let log = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: dataDirectory)
        try? FileManager.default.removeItem(atPath: stderrPath)
        return (process.terminationStatus, log)
    }
}
