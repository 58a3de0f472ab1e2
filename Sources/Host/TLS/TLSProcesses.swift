import Glibc

/// What a process's memory map says about its TLS library.
enum TLSLibraryKind: Equatable {
    /// OpenSSL's libssl, dynamically linked, at this path.
    case openSSL(String)
    /// A TLS library the probes do not cover (GnuTLS, NSS, ...), by name.
    case unsupported(String)
    /// No TLS library mapped (maybe linked statically, maybe none).
    case none
}

/// Reads /proc: processes, their network namespaces and the libraries they map.
enum TLSProcesses {
    /// Process ids now running.
    static func pids() -> [Int32] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var out: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let pid = Int32(name), pid > 0 { out.append(pid) }
        }
        return out
    }

    /// The inode of a process's network namespace.
    static func networkNamespace(of pid: Int32) -> UInt32? { inode("/proc/\(pid)/ns/net") }

    /// The inode of a named network namespace (`ip netns add NAME`).
    static func networkNamespace(named name: String) -> UInt32? { inode("/run/netns/\(name)") }

    private static func inode(_ path: String) -> UInt32? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return UInt32(truncatingIfNeeded: st.st_ino)
    }

    /// The TCP ports listening in a process's network namespace (`/proc/PID/net/tcp{,6}`).
    static func listeningPorts(of pid: Int32) -> Set<UInt16> {
        var ports: Set<UInt16> = []
        for file in ["tcp", "tcp6"] {
            guard let text = readFile("/proc/\(pid)/net/\(file)") else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                // sl local_address rem_address st ...; st 0A is LISTEN.
                guard fields.count > 3, fields[3] == "0A", let colon = fields[1].lastIndex(of: ":"),
                      let port = UInt16(fields[1][fields[1].index(after: colon)...], radix: 16) else { continue }
                ports.insert(port)
            }
        }
        return ports
    }

    /// Libraries known to carry TLS that the probes do not hook, by file name prefix.
    static let unsupportedLibraries: [(prefix: String, name: String)] = [
        ("libgnutls", "GnuTLS"), ("libssl3.so", "NSS"), ("libnss3", "NSS"), ("libwolfssl", "wolfSSL"),
        ("libmbedtls", "Mbed TLS"), ("libboringssl", "BoringSSL"),
    ]

    /// The TLS library in a process's memory map text (`/proc/PID/maps`).
    static func library(inMaps maps: String) -> TLSLibraryKind {
        var unsupported: String?
        for line in maps.split(separator: "\n") {
            guard let slash = line.firstIndex(of: "/") else { continue }
            let path = String(line[slash...])
            let file = path.split(separator: "/").last.map(String.init) ?? path
            // OpenSSL: libssl.so.3, libssl.so.1.1, libssl.so (NSS's is libssl3.so).
            if file.hasPrefix("libssl.so") { return .openSSL(path) }
            if unsupported == nil, let known = unsupportedLibraries.first(where: { file.hasPrefix($0.prefix) }) {
                unsupported = known.name
            }
        }
        return unsupported.map { .unsupported($0) } ?? .none
    }

    /// Marks of TLS code linked into an executable, looked for when it maps no TLS library.
    static let staticMarkers: [(bytes: [UInt8], name: String)] = [
        (Array("crypto/tls.(*Conn)".utf8), "Go crypto/tls"),
        (Array("BoringSSL".utf8), "BoringSSL linked statically"),
        (Array("OpenSSL 3.".utf8), "OpenSSL linked statically, without symbols"),
        (Array("OpenSSL 1.".utf8), "OpenSSL linked statically, without symbols"),
        // The version text is linked in only when the program asks for it; libssl's own
        // error-reporting names always are (BoringSSL has no ssl3_read_bytes).
        (Array("ssl3_read_bytes".utf8), "OpenSSL linked statically, without symbols"),
        (Array("rustls".utf8), "rustls"),
    ]

    /// The statically linked TLS an executable carries, by its marks (reads at most `limit` bytes).
    static func staticTLS(inExecutable path: String, limit: Int = 256 << 20) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let overlap = staticMarkers.map(\.bytes.count).max() ?? 0
        var buffer = [UInt8](repeating: 0, count: (1 << 20) + overlap)
        var carried = 0
        var total = 0
        while total < limit {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + carried, (1 << 20)) }
            if n <= 0 { break }
            total += n
            let filled = carried + n
            let found = buffer.withUnsafeBytes { raw -> String? in
                let view = UnsafeRawBufferPointer(rebasing: raw[0..<filled])
                for marker in staticMarkers where contains(view, marker.bytes) { return marker.name }
                return nil
            }
            if let found { return found }
            carried = min(overlap, filled)
            // Keep the tail so a mark split between reads is still found.
            buffer.withUnsafeMutableBytes { raw in
                raw.baseAddress!.copyMemory(from: raw.baseAddress! + filled - carried, byteCount: carried)
            }
        }
        return nil
    }

    private static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        guard let first = needle.first, haystack.count >= needle.count else { return false }
        var i = 0
        let last = haystack.count - needle.count
        while i <= last {
            guard let p = memchr(haystack.baseAddress! + i, Int32(first), last - i + 1) else { return false }
            i = haystack.baseAddress!.distance(to: UnsafeRawPointer(p))
            if memcmp(haystack.baseAddress! + i, needle, needle.count) == 0 { return true }
            i += 1
        }
        return false
    }
}
