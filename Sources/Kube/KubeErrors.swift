import Foundation

/// A missing or invalid piece of configuration (kubeconfig, in-cluster files,
/// credentials), described in one line that names the file and the entry.
public struct KubeConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// An answer from the API server that was not 2xx, decoded from its `Status`
/// object when it carried one (Kubernetes sends `kind: Status` for errors).
public struct KubeAPIError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The HTTP status code (`Status.code` when the body had one).
    public var code: Int
    /// `Status.reason`: `Forbidden`, `NotFound`, `Expired`, `Gone`, `Unauthorized`, ...
    public var reason: String
    /// `Status.message` as the server wrote it (RBAC denials name the user and the verb).
    public var message: String
    /// The decoded `Status`, when the body was one.
    public var status: Status?

    public init(code: Int, reason: String, message: String, status: Status? = nil) {
        self.code = code
        self.reason = reason
        self.message = message
        self.status = status
    }

    /// The error an HTTP answer stands for: its `Status` body when it has one, the
    /// start of the body as text otherwise.
    static func from(httpStatus: Int, body: [UInt8]) -> KubeAPIError {
        if let status = try? JSONDecoder().decode(Status.self, from: Data(body)), status.kind == "Status" {
            return KubeAPIError(status: status, fallbackCode: httpStatus)
        }
        let text = String(decoding: body.prefix(300), as: UTF8.self)
            .replacingOccurrences(of: "\n", with: " ").trimmingCharacters(in: .whitespaces)
        return KubeAPIError(code: httpStatus, reason: HTTPReason.phrase(httpStatus), message: text.isEmpty ? HTTPReason.phrase(httpStatus) : text)
    }

    init(status: Status, fallbackCode: Int) {
        let code = status.code ?? fallbackCode
        self.init(code: code, reason: status.reason ?? HTTPReason.phrase(code),
                  message: status.message ?? HTTPReason.phrase(code), status: status)
    }

    /// True for 410 Gone: the resourceVersion asked for is too old; list again.
    public var isGone: Bool { code == 410 }
    /// True for 404 Not Found.
    public var isNotFound: Bool { code == 404 }

    public var description: String { "\(code) \(reason): \(message)" }
}

/// The API server could not be reached or talked to (DNS, TCP, TLS, a body too
/// large, a stream that broke), with the server's address in the message.
public struct KubeTransportError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// True when the connection failed or broke (worth retrying); false for answers
    /// that cannot be read (too large, not the JSON expected), where retrying would not help.
    public var connectionFailed: Bool

    public init(_ description: String, connectionFailed: Bool = false) {
        self.description = description
        self.connectionFailed = connectionFailed
    }
}

enum HTTPReason {
    static func phrase(_ code: Int) -> String {
        switch code {
        case 400: "BadRequest"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "NotFound"
        case 405: "MethodNotAllowed"
        case 409: "Conflict"
        case 410: "Gone"
        case 422: "Invalid"
        case 429: "TooManyRequests"
        case 500: "InternalError"
        case 503: "ServiceUnavailable"
        case 504: "Timeout"
        default: "HTTP \(code)"
        }
    }
}
