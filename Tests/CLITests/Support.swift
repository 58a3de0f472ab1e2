import Foundation
@_exported import TestKit
import Testing

/// Paths and process helpers shared by the CLI tests.
enum TestSupport {
    /// The repository root (this file is Tests/CLITests/Support.swift).
    static let repoRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The build directory: where the test binary, `kubeshark` and the built-in plugins live.
    static var buildDirectory: URL { TestProcess.buildDirectory }

    static var kubeshark: String { buildDirectory.appendingPathComponent("kubeshark").path }

    /// `../shared/corpus` next to the repository, when it exists.
    static let corpus: URL? = {
        let url = repoRoot.deletingLastPathComponent().appendingPathComponent("shared/corpus")
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }()

    static let fixtures = repoRoot.appendingPathComponent("Tests/Fixtures/captures")

    static func which(_ tool: String) -> String? { TestProcess.which(tool) }

    /// A process whose SIGINT and SIGTERM work (see `TestProcess.unblocked`).
    static func unblockedProcess(_ executable: String, _ arguments: [String]) -> Process {
        TestProcess.unblocked(executable, arguments)
    }

    /// Reads `pipe` until its text contains `marker` (see `TestProcess.waitFor`).
    static func waitFor(_ marker: String, in pipe: Pipe, timeout: Double = 20) -> String {
        TestProcess.waitFor(marker, in: pipe, timeout: timeout)
    }

    typealias Result = ProcessResult

    /// Runs a program to completion, capturing both outputs.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> Result { try TestProcess.run(executable, arguments, environment: environment) }

    /// Runs `kubeshark dissect ARGS --output json` and parses every line.
    static func dissect(_ arguments: [String]) throws -> (entries: [[String: Any]], result: Result) {
        let r = try run(kubeshark, ["dissect"] + arguments + ["--output", "json"])
        var entries: [[String: Any]] = []
        for line in r.stdout.split(separator: "\n") where !line.isEmpty {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
            entries.append(object as? [String: Any] ?? [:])
        }
        return (entries, r)
    }
}

/// A request/response pair reduced to what both tools report.
struct Exchange: Hashable, CustomStringConvertible {
    var method: String?
    var uri: String?
    var status: Int?

    var description: String { "\(method ?? "-") \(uri ?? "-") -> \(status.map(String.init) ?? "-")" }
}

/// What tshark sees: request/response pairs matched by http.request_in.
enum TShark {
    /// Pairs as tshark matches them: responses name their request's frame in
    /// http.request_in. Pipelined requests in one frame come as several occurrences;
    /// tshark 4.0 links only the first response of such a frame (request_in is empty
    /// for the others and response_for.uri names the last request), which is wrong:
    /// HTTP/1.1 answers in request order (RFC 9112 §9.3.2), so a response without
    /// request_in goes to the oldest unanswered request of its TCP stream.
    static func httpExchanges(file: String, decodeAs: String?) throws -> [Exchange] {
        var args = ["-n", "-r", file]
        if let decodeAs, !decodeAs.isEmpty { args += ["-d", decodeAs] }
        // Occurrences are joined with a space, which a request target cannot contain.
        args += ["-Y", "http", "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=/s",
                 "-e", "frame.number", "-e", "tcp.stream", "-e", "http.request.method", "-e", "http.request.uri",
                 "-e", "http.response.code", "-e", "http.request_in"]
        let r = try TestSupport.run(TestSupport.which("tshark") ?? "/usr/bin/tshark", args)
        var exchanges: [Exchange] = []
        var byFrame: [Int: [Int]] = [:]   // request frame -> unanswered exchange indices
        var byStream: [String: [Int]] = [:]  // tcp stream -> unanswered exchange indices, oldest first
        for line in r.stdout.split(separator: "\n", omittingEmptySubsequences: true) {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 6, let frame = Int(f[0]) else { continue }
            let stream = f[1]
            let methods = f[2].split(separator: " ").map(String.init)
            let uris = f[3].split(separator: " ").map(String.init)
            for (i, m) in methods.enumerated() {
                exchanges.append(Exchange(method: m, uri: i < uris.count ? uris[i] : nil, status: nil))
                byFrame[frame, default: []].append(exchanges.count - 1)
                byStream[stream, default: []].append(exchanges.count - 1)
            }
            let codes = f[4].split(separator: " ").compactMap { Int($0) }
            let requestFrames = f[5].split(separator: " ").compactMap { Int($0) }
            for (i, code) in codes.enumerated() {
                var target: Int?
                if i < requestFrames.count, let pending = byFrame[requestFrames[i]], let first = pending.first {
                    target = first
                } else if requestFrames.isEmpty, let first = byStream[stream]?.first {
                    target = first
                }
                if let target {
                    exchanges[target].status = code
                    for key in byFrame.keys { byFrame[key]?.removeAll { $0 == target } }
                    byStream[stream]?.removeAll { $0 == target }
                } else {
                    exchanges.append(Exchange(method: nil, uri: nil, status: code))
                }
            }
        }
        return exchanges
    }
}

/// Our entries reduced the same way, from the envelope's summary row
/// (method, summary = request target, status), which every plugin fills.
func exchanges(_ entries: [[String: Any]]) -> [Exchange] {
    entries.map { e in
        let hasRequest = e["request"] != nil
        let hasResponse = e["response"] != nil
        return Exchange(
            method: hasRequest ? e["method"] as? String : nil,
            uri: hasRequest ? e["summary"] as? String : nil,
            status: hasResponse ? e["status"] as? Int : nil)
    }
}

/// Counts how many of `expected` appear in `actual` (as multisets).
func matched(_ expected: [Exchange], _ actual: [Exchange]) -> Int {
    var pool: [Exchange: Int] = [:]
    for a in actual { pool[a, default: 0] += 1 }
    var n = 0
    for e in expected where (pool[e] ?? 0) > 0 {
        pool[e]! -= 1
        n += 1
    }
    return n
}
