import Foundation
import Host

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Keeps a worker registered with a hub (`kubeshark worker --hub URL`): posts
/// its name and URL to the hub's `/api/workers` now and every `interval`, so a
/// hub that restarted, or a worker that came back at another address, is caught
/// up within one interval. Reports each change of state, not every attempt.
public struct HubRegistration: Sendable {
    public let hubURL: String
    public let token: String?
    public let name: String
    public let advertisedURL: String
    public let interval: Duration

    public init(hubURL: String, token: String?, name: String, advertisedURL: String, interval: Duration = .seconds(10)) {
        self.hubURL = hubURL.hasSuffix("/") ? String(hubURL.dropLast()) : hubURL
        self.token = token
        self.name = name
        self.advertisedURL = advertisedURL
        self.interval = interval
    }

    /// Registers until cancelled; `report` gets one line per change ("registered", or why not).
    public func run(report: @escaping @Sendable (String) -> Void) async {
        var last: String?
        while !Task.isCancelled {
            let outcome = await registerOnce()
            if outcome != last {
                report(outcome)
                last = outcome
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// One attempt: "registered with HUB as NAME (URL)", or the reason it failed.
    public func registerOnce() async -> String {
        guard let url = URL(string: hubURL + "/api/workers") else { return "hub URL \(hubURL) is not a URL" }
        var request = URLRequest(url: url, timeoutInterval: 5)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        request.httpBody = Data(JSONValue.object([
            JSONMember(key: "name", value: .string(name)), JSONMember(key: "url", value: .string(advertisedURL)),
        ]).jsonBytes)
        let (status, body, failure): (Int, Data, String?) = await withCheckedContinuation { continuation in
            URLSession.shared.dataTask(with: request) { data, response, error in
                continuation.resume(returning: ((response as? HTTPURLResponse)?.statusCode ?? 0, data ?? Data(),
                                                error.map { "\($0.localizedDescription)" }))
            }.resume()
        }
        if status == 200 { return "registered with the hub \(hubURL) as \(name) (\(advertisedURL))" }
        if status == 0 { return "cannot reach the hub \(hubURL): \(failure ?? "no answer"); retrying every \(interval)" }
        let text = String(decoding: body.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return "the hub \(hubURL) refused the registration (\(status)): \(text)"
    }
}
