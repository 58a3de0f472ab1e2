import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// The web dashboard (docs/dashboard.md): the files of `Sources/Worker/Dashboard`,
/// shipped as a SwiftPM resource, served at `/` (index.html) and `/dashboard/NAME`.
///
/// The files are read once, into a table keyed by their path inside the directory;
/// a request is answered from that table only, so no path (`..`, encoded or not,
/// symbolic links) can reach a file outside it. Every answer is revalidated
/// (`Cache-Control: no-cache` with an `ETag`): the names carry no content hash, so a
/// new build must never be hidden behind a cached old `app.js`.
enum DashboardRoutes {
    struct File: Sendable {
        let bytes: ByteBuffer
        let contentType: String
        let etag: String
    }

    /// The dashboard's files by relative path (`index.html`, `app.js`...).
    static let files: [String: File] = load()

    /// The directory: `$KUBESHARK_DASHBOARD_DIR` when set (to try changes without a
    /// rebuild), else the resource bundle next to the executable, else `Bundle.module`.
    static var directory: URL? {
        if let dir = ProcessInfo.processInfo.environment["KUBESHARK_DASHBOARD_DIR"], !dir.isEmpty {
            return URL(fileURLWithPath: dir)
        }
        let beside = Bundle.main.bundleURL.appendingPathComponent("kubeshark-swift_Worker.resources/Dashboard")
        if FileManager.default.fileExists(atPath: beside.path) { return beside }
        return Bundle.module.url(forResource: "Dashboard", withExtension: nil)
    }

    static func add(to router: Router<BasicWebSocketRequestContext>) {
        // Read now: a worker installed without its resource bundle (which, like the
        // plugins, goes next to the executable) stops at start with Bundle.module's
        // message, never on a first page view in the middle of a capture.
        _ = files
        router.get("/") { request, _ in serve("index.html", request) }
        // The router matches "/dashboard" and "/dashboard/" alike: the bare name is
        // sent to the directory, so that relative links would resolve under it.
        router.get("/dashboard") { request, _ in
            request.uri.path.hasSuffix("/")
                ? serve("index.html", request)
                : Response(status: .movedPermanently, headers: [.location: "/dashboard/"])
        }
        router.get("/dashboard/**") { request, _ in
            let prefix = "/dashboard/"
            let path = request.uri.path
            if path == prefix { return serve("index.html", request) }
            guard path.hasPrefix(prefix), let name = String(path.dropFirst(prefix.count)).removingPercentEncoding,
                  isPlain(name)
            else { return notFound() }
            return serve(name, request)
        }
    }

    /// A relative path of plain components: no empty, `.` or `..` part, no hidden
    /// file, no backslash or NUL.
    static func isPlain(_ name: String) -> Bool {
        guard !name.isEmpty, !name.contains("\\"), !name.contains("\0") else { return false }
        return name.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && !$0.hasPrefix(".") }
    }

    private static func serve(_ name: String, _ request: Request) -> Response {
        guard let file = files[name] else { return notFound() }
        var headers: HTTPFields = [
            .contentType: file.contentType,
            .cacheControl: "no-cache",
            .eTag: file.etag,
            .xContentTypeOptions: "nosniff",
        ]
        if file.contentType.hasPrefix("text/html") {
            // Everything the page runs and shows comes from here; captured traffic is
            // rendered as text, and this forbids inline script as a second line.
            headers[.contentSecurityPolicy] = "default-src 'self'; img-src 'self' data:; connect-src 'self'; "
                + "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
        }
        if request.headers[.ifNoneMatch] == file.etag {
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: file.bytes))
    }

    private static func notFound() -> Response {
        Response(status: .notFound, headers: [.contentType: "text/plain; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: "not found\n")))
    }

    static func contentType(_ name: String) -> String {
        switch (name as NSString).pathExtension.lowercased() {
        case "html": "text/html; charset=utf-8"
        case "js", "mjs": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "json": "application/json"
        case "md", "txt": "text/plain; charset=utf-8"
        default: "application/octet-stream"
        }
    }

    private static func load() -> [String: File] {
        guard let root = directory?.standardizedFileURL else { return [:] }
        var table: [String: File] = [:]
        let fm = FileManager.default
        guard let walker = fm.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey],
                                         options: [.skipsHiddenFiles]) else { return [:] }
        let base = root.path.hasSuffix("/") ? root.path : root.path + "/"
        for case let url as URL in walker {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true,
                  url.standardizedFileURL.path.hasPrefix(base),
                  let data = fm.contents(atPath: url.path)
            else { continue }
            let name = String(url.standardizedFileURL.path.dropFirst(base.count))
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
            for byte in data { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            table[name] = File(bytes: ByteBuffer(bytes: data), contentType: contentType(name),
                               etag: "\"\(String(hash, radix: 16))-\(data.count)\"")
        }
        return table
    }
}
