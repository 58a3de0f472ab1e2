/// The TCP control bits of header byte 13 (the NS bit is not kept).
struct TCPFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    let rawValue: UInt8

    @inline(__always)
    init(rawValue: UInt8) { self.rawValue = rawValue }

    static let fin = TCPFlags(rawValue: 0x01)
    static let syn = TCPFlags(rawValue: 0x02)
    static let rst = TCPFlags(rawValue: 0x04)
    static let psh = TCPFlags(rawValue: 0x08)
    static let ack = TCPFlags(rawValue: 0x10)
    static let urg = TCPFlags(rawValue: 0x20)
    static let ece = TCPFlags(rawValue: 0x40)
    static let cwr = TCPFlags(rawValue: 0x80)

    /// tcpdump-style letters, e.g. `S.` for SYN+ACK, `FP.` for FIN+PSH+ACK; `none` if empty.
    var description: String {
        var s = ""
        if contains(.fin) { s += "F" }
        if contains(.syn) { s += "S" }
        if contains(.rst) { s += "R" }
        if contains(.psh) { s += "P" }
        if contains(.urg) { s += "U" }
        if contains(.ece) { s += "E" }
        if contains(.cwr) { s += "W" }
        if contains(.ack) { s += "." }
        return s.isEmpty ? "none" : s
    }
}

/// The transport protocol of a decoded packet (IANA protocol numbers).
///
/// `PacketDecoder` only returns `.tcp` and `.udp` packets (anything else is
/// reported as skipped); `.other` exists for callers that classify flows.
enum TransportProtocol: UInt8, Sendable, Hashable {
    case tcp = 6
    case udp = 17
    case other = 255
}
