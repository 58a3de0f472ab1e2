import Host
import Hummingbird
import HummingbirdWebSocket

/// What a `/ws` request asks for, shared by the worker and the hub.
struct SessionRequest {
    var query: String
    var fromNs: Int64?

    /// `q` and `from` of the request, or why `from` is not a time.
    static func parse(_ request: Request) -> Result<SessionRequest, SessionRequestError> {
        let params = request.uri.queryParameters
        var parsed = SessionRequest(query: params["q"].map(String.init) ?? "", fromNs: nil)
        if let from = params["from"] {
            guard let t = TimeBound.parse(String(from)) else {
                return .failure(SessionRequestError(message: "from: not a time (Unix seconds, RFC 3339, or -5m)"))
            }
            parsed.fromNs = t
        }
        return .success(parsed)
    }
}

struct SessionRequestError: Error {
    var message: String
}

extension OutboundQueue {
    /// Why sending stopped.
    enum DrainEnd: Equatable {
        case overflowed, finished, failed(String)
    }

    /// Sends the queued messages as text frames until the queue overflows or
    /// finishes, or a write fails.
    func drain(to writer: WebSocketOutboundWriter) async -> DrainEnd {
        while true {
            switch await next() {
            case .messages(let batch):
                do {
                    for message in batch { try await writer.write(.text(String(decoding: message, as: UTF8.self))) }
                } catch {
                    return .failed("\(error)")
                }
            case .overflowed:
                return .overflowed
            case .finished:
                return .finished
            }
        }
    }
}
