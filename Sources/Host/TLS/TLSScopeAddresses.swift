import Glibc

extension TLSScope {
    /// The processes whose network namespace holds one of `addresses` (IPv4 or IPv6
    /// text): how a worker in a cluster finds the targeted pods' processes, knowing
    /// only the pods' IPs (their namespaces have no names there). Each namespace is
    /// read once, through one of its processes (`/proc/PID/net/fib_trie` for IPv4,
    /// `/proc/PID/net/if_inet6` for IPv6), so this costs a walk of /proc.
    public static func networkNamespaces(holding addresses: [String]) -> TLSScope {
        let wanted = Set(addresses.compactMap(NamespaceAddresses.canonical))
        guard !wanted.isEmpty else { return .networkNamespaces([]) }
        var seen: Set<UInt32> = []
        var holding: Set<UInt32> = []
        for pid in TLSProcesses.pids() {
            guard let ns = TLSProcesses.networkNamespace(of: pid), seen.insert(ns).inserted else { continue }
            if !NamespaceAddresses.local(of: pid).isDisjoint(with: wanted) { holding.insert(ns) }
        }
        return .networkNamespaces(holding)
    }
}

/// The addresses a network namespace holds, read through one of its processes.
enum NamespaceAddresses {
    /// `text` as inet_ntop writes it (so `fd00:0::5` and `fd00::5` compare equal); nil when not an address.
    static func canonical(_ text: String) -> String? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return format(AF_INET, &v4, 16) }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return format(AF_INET6, &v6, 46) }
        return nil
    }

    private static func format(_ family: Int32, _ address: UnsafeRawPointer, _ size: Int) -> String? {
        var buffer = [CChar](repeating: 0, count: size)
        guard inet_ntop(family, address, &buffer, socklen_t(size)) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The local addresses of the process's network namespace (loopback included).
    static func local(of pid: Int32) -> Set<String> {
        var out = ipv4(fibTrie: readFile("/proc/\(pid)/net/fib_trie") ?? "")
        out.formUnion(ipv6(ifInet6: readFile("/proc/\(pid)/net/if_inet6") ?? ""))
        return out
    }

    /// The addresses of `/32 host LOCAL` leaves of a `fib_trie` listing: each leaf's
    /// address is on a `|-- A.B.C.D` line, its routes on the lines below it.
    static func ipv4(fibTrie text: String) -> Set<String> {
        var out: Set<String> = []
        var leaf: Substring?
        for line in text.split(separator: "\n") {
            let trimmed = line.drop { $0 == " " }
            if trimmed.hasPrefix("|-- ") {
                leaf = trimmed.dropFirst(4)
            } else if trimmed.hasPrefix("+-- ") {
                leaf = nil
            } else if let address = leaf, trimmed.hasPrefix("/32 host LOCAL"), let text = canonical(String(address)) {
                out.insert(text)
            }
        }
        return out
    }

    /// The addresses of an `if_inet6` listing: 32 hex digits first on each line.
    static func ipv6(ifInet6 text: String) -> Set<String> {
        var out: Set<String> = []
        for line in text.split(separator: "\n") {
            let hex = Array(line.prefix(32).utf8)
            guard hex.count == 32 else { continue }
            var address = in6_addr()
            var ok = true
            withUnsafeMutableBytes(of: &address) { bytes in
                for i in 0..<16 {
                    guard let high = hexValue(hex[2 * i]), let low = hexValue(hex[2 * i + 1]) else { ok = false; return }
                    bytes[i] = high << 4 | low
                }
            }
            if ok, let text = format(AF_INET6, &address, 46) { out.insert(text) }
        }
        return out
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
