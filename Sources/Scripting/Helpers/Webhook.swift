import Foundation
import Host
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `vendor.webhook(method, url, body, headers)`: one HTTP request, blocking
/// the script's own thread, bounded in time and in the response it reads.
public struct Webhook: Sendable {
    /// URL prefixes a webhook may call ("https://hooks.example.com/"); empty: any http(s) URL.
    public var allowedPrefixes: [String] = []
    public var timeoutSeconds: Double = 10
    /// Most response bytes handed back to the script.
    public var maxResponseBytes = 1 << 20

    public init(allowedPrefixes: [String] = [], timeoutSeconds: Double = 10) {
        self.allowedPrefixes = allowedPrefixes
        self.timeoutSeconds = timeoutSeconds
    }

    /// Sends the request; returns `{"status":N,"body":"..."}` as JSON.
    func send(method: String, url: String, body: String?, headers: [String: String]) throws(HelperError) -> ScriptValue {
        guard let target = URL(string: url), let scheme = target.scheme?.lowercased(), scheme == "http" || scheme == "https",
              target.host != nil
        else { throw HelperError("vendor.webhook: '\(url)' is not an http(s) URL") }
        if !allowedPrefixes.isEmpty && !allowedPrefixes.contains(where: { url.hasPrefix($0) }) {
            throw HelperError("vendor.webhook: \(url) is not in the allowed list (--script-webhook-allow)")
        }
        let verb = method.uppercased()
        guard ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(verb) else {
            throw HelperError("vendor.webhook: unsupported method '\(method)'")
        }
        var request = URLRequest(url: target, timeoutInterval: timeoutSeconds)
        request.httpMethod = verb
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        if let body, verb != "GET", verb != "HEAD" { request.httpBody = Data(body.utf8) }

        let outcome = BlockingHTTP.send(request, timeoutSeconds: timeoutSeconds)
        if outcome.timedOut { throw HelperError("vendor.webhook \(verb) \(url): no answer within \(timeoutSeconds) s") }
        if let error = outcome.error { throw HelperError("vendor.webhook \(verb) \(url): \(error)") }
        let bytes = (outcome.data ?? Data()).prefix(maxResponseBytes)
        let json = JSONValue.object([JSONMember(key: "status", value: .number(Double(outcome.status))),
                                     JSONMember(key: "body", value: .string(String(decoding: bytes, as: UTF8.self)))])
        return .jsonBytes(json.jsonBytes)
    }
}

/// One HTTP request, waited for on the calling thread (a script's own thread,
/// or a command-line tool), with a timeout.
public enum BlockingHTTP {
    public struct Outcome: Sendable {
        public var status = 0
        public var data: Data?
        public var error: String?
        public var timedOut = false
    }

    public static func send(_ request: URLRequest, timeoutSeconds: Double) -> Outcome {
        final class Box: @unchecked Sendable { var outcome = Outcome() }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeoutSeconds
        configuration.timeoutIntervalForResource = timeoutSeconds
        let session = URLSession(configuration: configuration)
        let task = session.dataTask(with: request) { data, response, error in
            box.outcome.data = data
            box.outcome.status = (response as? HTTPURLResponse)?.statusCode ?? 0
            box.outcome.error = error?.localizedDescription
            done.signal()
        }
        task.resume()
        if done.wait(timeout: .now() + timeoutSeconds + 1) == .timedOut {
            task.cancel()
            session.invalidateAndCancel()
            return Outcome(timedOut: true)
        }
        session.finishTasksAndInvalidate()
        return box.outcome
    }
}
