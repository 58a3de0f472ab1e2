import Foundation

/// Configuration inside a pod: the API server from `KUBERNETES_SERVICE_HOST` /
/// `KUBERNETES_SERVICE_PORT`, the service account's token, CA and namespace from
/// its mounted directory. The token is read again every `tokenRereadInterval`:
/// bound service-account tokens are rotated by the kubelet while the pod runs.
public enum InCluster {
    /// Where Kubernetes mounts the service account.
    public static let defaultDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// Reads the in-cluster configuration; `directory` replaces the mount path (tests).
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment,
                            directory: String = defaultDirectory,
                            tokenRereadInterval: Duration = .seconds(60)) throws -> KubeConfig {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
              let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty else {
            throw KubeConfigError("not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set")
        }
        guard let portNumber = Int(port), (1...65535).contains(portNumber) else {
            throw KubeConfigError("KUBERNETES_SERVICE_PORT '\(port)' is not a port number")
        }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        guard let server = URL(string: "https://\(hostPart):\(portNumber)") else {
            throw KubeConfigError("KUBERNETES_SERVICE_HOST '\(host)' is not a host name or address")
        }
        let tokenPath = directory + "/token"
        guard let token = FileManager.default.contents(atPath: tokenPath),
              !String(decoding: token, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw KubeConfigError("in-cluster service-account token \(tokenPath) cannot be read or is empty")
        }
        let ca = try PEMSource.load(data: nil, file: directory + "/ca.crt",
                                    what: "in-cluster CA \(directory)/ca.crt", marker: "CERTIFICATE")
        guard let ca else { throw KubeConfigError("in-cluster CA \(directory)/ca.crt cannot be read") }
        var namespace = "default"
        if let data = FileManager.default.contents(atPath: directory + "/namespace") {
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if !text.isEmpty { namespace = text }
        }
        return KubeConfig(server: server, certificateAuthorityPEM: ca,
                          credentials: .tokenFile(path: tokenPath, rereadInterval: tokenRereadInterval),
                          namespace: namespace, source: "in-cluster service account (\(directory))",
                          userName: "service account")
    }
}
