/// Link-layer header types, as returned by `pcap_datalink()` (`DLT_*` values),
/// plus the `LINKTYPE_*` aliases that pcap and pcapng files may carry.
enum LinkType: Sendable, Hashable {
    /// `DLT_NULL` (0): BSD loopback, a 4-byte address family in the capturing
    /// host's byte order. Both byte orders are accepted.
    case null
    /// `DLT_LOOP` (108): like `null`, with the family in network byte order.
    /// Both byte orders are accepted.
    case loop
    /// `DLT_EN10MB` (1): Ethernet II, with 802.1Q / QinQ tags and PPPoE sessions.
    case ethernet
    /// `DLT_RAW` (12, or 14 on OpenBSD) and `LINKTYPE_RAW` (101): a bare IPv4 or
    /// IPv6 packet; the version nibble tells which.
    case raw
    /// `LINKTYPE_IPV4` (228): a bare IPv4 packet.
    case ipv4
    /// `LINKTYPE_IPV6` (229): a bare IPv6 packet.
    case ipv6
    /// `DLT_LINUX_SLL` (113): Linux cooked capture v1, 16-byte header, protocol at offset 14.
    case linuxSLL
    /// `DLT_LINUX_SLL2` (276): Linux cooked capture v2, 20-byte header, protocol at offset 0.
    case linuxSLL2

    /// Maps a `DLT_*` / `LINKTYPE_*` value; `nil` for link types this decoder does not handle.
    init?(dlt: Int32) {
        switch dlt {
        case 0: self = .null
        case 1: self = .ethernet
        case 12, 14, 101: self = .raw
        case 108: self = .loop
        case 113: self = .linuxSLL
        case 228: self = .ipv4
        case 229: self = .ipv6
        case 276: self = .linuxSLL2
        default: return nil
        }
    }

    /// The canonical `LINKTYPE_*` value (what a pcap file writer would record).
    var linkTypeValue: Int32 {
        switch self {
        case .null: return 0
        case .ethernet: return 1
        case .raw: return 101
        case .loop: return 108
        case .linuxSLL: return 113
        case .ipv4: return 228
        case .ipv6: return 229
        case .linuxSLL2: return 276
        }
    }
}
