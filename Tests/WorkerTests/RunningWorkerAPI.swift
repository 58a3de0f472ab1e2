import Foundation
import TestKit
import Testing

/// Assertions over a running worker's API, for the worker and hub tests.
extension RunningKubeshark {
    /// GETs `path`, expecting 200, as JSON.
    func json(_ path: String) throws -> [String: Any] {
        let (status, data) = try get(path)
        #expect(status == 200, "\(path): \(status) \(String(decoding: data, as: UTF8.self))")
        return (try JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    }

    /// Runs the WebSocket client; returns the messages it printed.
    func ws(_ arguments: [String]) throws -> [[String: Any]] {
        let r = try TestProcess.run(WorkerAPITests.python, [WorkerAPITests.client, base] + arguments)
        #expect(r.status == 0, "ws client failed: \(r.stderr)")
        return r.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }
}
