import Foundation

/// Runs a helper program (an exec credential plugin) off the cooperative pool,
/// with its output bounded and a time limit after which it is killed.
enum BoundedProcess {
    struct Result: Sendable {
        var status: Int32
        var stdout: [UInt8]
        var stderr: String
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String],
                    maxOutput: Int, timeout: Duration) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Swift.Result { try runBlocking(executable, arguments, environment: environment,
                                                                         maxOutput: maxOutput, timeout: timeout) })
            }
        }
    }

    private static func runBlocking(_ executable: String, _ arguments: [String], environment: [String: String],
                                    maxOutput: Int, timeout: Duration) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw KubeConfigError("cannot run \(executable): \(error.localizedDescription)")
        }
        let killed = KilledFlag()
        let killer = DispatchWorkItem {
            if process.isRunning {
                killed.set()
                process.terminate()
            }
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(timeout.components.seconds * 1000)), execute: killer)
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readData(ofLength: 64 << 10)
            group.leave()
        }
        var stdout: [UInt8] = []
        var tooLong = false
        while true {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            stdout.append(contentsOf: chunk)
            if stdout.count > maxOutput {
                tooLong = true
                process.terminate()
                break
            }
        }
        group.wait()
        process.waitUntilExit()
        killer.cancel()
        let timedOut = killed.isSet
        if tooLong { throw KubeConfigError("\(executable) printed more than \(maxOutput) bytes") }
        if timedOut { throw KubeConfigError("\(executable) did not finish within \(timeout)") }
        return Result(status: process.terminationStatus, stdout: stdout, stderr: String(decoding: errData, as: UTF8.self))
    }
}

private final class KilledFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
