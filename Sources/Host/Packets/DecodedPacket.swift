/// One decoded TCP or UDP packet.
///
/// `payload` is a view into the caller's packet bytes or into the decoder's
/// fragment-reassembly buffer: it is valid until the next call to
/// `PacketDecoder.decode` (and only while the caller's bytes are alive).
/// Copy the bytes out if they must outlive that.
struct DecodedPacket {
    /// Capture time, Unix nanoseconds (as passed to `decode`).
    var timestampNs: Int64
    var src: IPAddress
    var dst: IPAddress
    /// `.tcp` or `.udp`.
    var transport: TransportProtocol
    var srcPort: UInt16
    var dstPort: UInt16
    /// TCP only (zero for UDP).
    var tcpSeq: UInt32
    /// TCP only (zero for UDP); meaningful when `tcpFlags` contains `.ack`.
    var tcpAck: UInt32
    /// TCP only (empty for UDP).
    var tcpFlags: TCPFlags
    /// TCP only, unscaled (zero for UDP).
    var tcpWindow: UInt16
    /// The outermost 802.1Q / 802.1ad VLAN id, if the frame was tagged.
    var vlanID: UInt16?
    /// The L4 payload, trimmed to the IP (and UDP) length, so Ethernet padding
    /// is removed, and to what was captured.
    var payload: UnsafeRawBufferPointer
    /// The capture holds fewer bytes than the headers announce (snap length):
    /// `payload` is a prefix of the real payload.
    var payloadTruncated: Bool
    /// Original length of the frame on the wire.
    var wireLength: Int
    /// The packet was rebuilt from IP fragments; `payload` points into the
    /// decoder's reassembly buffer.
    var wasReassembled: Bool
}

/// What `PacketDecoder.decode` made of one frame.
enum DecodeOutcome {
    /// A TCP or UDP packet.
    case packet(DecodedPacket)
    /// An IP fragment was stored; the datagram is not complete yet.
    case fragmentHeld
    /// Well-formed, but nothing this pipeline dissects.
    case skipped(SkipReason)
    /// Invalid or cut short before the transport header could be read.
    case malformed(MalformedReason)
}

/// Why a well-formed frame produced no packet. Raw values index `ReasonCounts`.
enum SkipReason: UInt8, CaseIterable, Sendable, Hashable {
    /// Not IP: ARP, LLDP, 802.3/LLC, PPPoE discovery, PPP control protocols,
    /// unknown EtherTypes or loopback address families.
    case nonIP = 0
    /// IP, but not TCP or UDP: ICMP, ICMPv6, SCTP, GRE, ESP, ...
    case notTCPOrUDP = 1
    /// IPv6 "No Next Header" (59).
    case noNextHeader = 2
    /// A fragment was not kept: duplicate, overlapping (per the overlap
    /// policy), inconsistent, or over a reassembly limit. See `FragmentCounters`.
    case fragmentDiscarded = 3
}

/// Why a frame could not be decoded. Raw values index `ReasonCounts`.
enum MalformedReason: UInt8, CaseIterable, Sendable, Hashable {
    /// Shorter than its link-layer header (Ethernet, VLAN tag, PPPoE, SLL, loopback).
    case linkHeaderTruncated = 0
    /// More stacked VLAN tags than `PacketDecoder.Limits.maxVLANTags`.
    case tooManyVLANTags = 1
    /// PPPoE session header with a bad version/type, code or length.
    case badPPPoEHeader = 2
    /// The IP version nibble does not match (or is neither 4 nor 6 for raw IP).
    case badIPVersion = 3
    /// Shorter than the fixed IPv4/IPv6 header or the IPv4 options.
    case ipHeaderTruncated = 4
    /// IPv4 IHL below 5.
    case ipv4BadHeaderLength = 5
    /// IPv4 total length smaller than its header.
    case ipv4BadTotalLength = 6
    /// An IPv6 extension header or IPsec AH header runs past the packet.
    case extensionHeaderTruncated = 7
    /// More extension headers than `PacketDecoder.Limits.maxExtensionHeaders`.
    case tooManyExtensionHeaders = 8
    /// A fragment that is empty, or not a multiple of 8 bytes while more follow.
    case fragmentBadLength = 9
    /// A fragment that reaches beyond the 65535-byte datagram limit.
    case fragmentTooLarge = 10
    /// A fragment header inside a reassembled datagram.
    case nestedFragment = 11
    /// Shorter than the 20-byte TCP header.
    case tcpHeaderTruncated = 12
    /// TCP data offset below 5 or beyond the IP payload.
    case tcpBadDataOffset = 13
    /// Shorter than the 8-byte UDP header.
    case udpHeaderTruncated = 14
    /// UDP length field between 1 and 7.
    case udpBadLength = 15
}
