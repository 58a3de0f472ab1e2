/// Decodes captured frames down to TCP and UDP: link layer, IPv4/IPv6 (with
/// extension headers and fragment reassembly), then the transport header.
///
/// Allocation-free per packet: headers are read in place from the caller's
/// bytes with bounds checks before every read, and a packet's payload is a view
/// into those bytes (or into the reassembly buffer for a reassembled datagram).
/// Hostile input never traps: it yields `.malformed(reason)` and a counter.
///
/// Checksums are not verified (loopback and offloaded captures carry invalid
/// ones); a packet is never dropped for its checksum.
///
/// IP length fields of zero (IPv4 total length, IPv6 payload length) are read as
/// "the rest of the frame", as Linux produces for TSO / BIG TCP super-packets.
///
/// A value type; use one decoder per capture stream (fragment state is per decoder).
struct PacketDecoder: Sendable {
    /// Tunables of a `PacketDecoder`.
    struct Limits: Sendable, Hashable {
        /// Stacked 802.1Q / 802.1ad tags accepted before a frame is malformed.
        var maxVLANTags: Int = 8
        /// IPv6 extension headers (and IPsec AH headers) walked before a packet is malformed.
        var maxExtensionHeaders: Int = 16
        /// Fragment reassembly limits.
        var fragments: FragmentLimits = FragmentLimits()

        init(maxVLANTags: Int = 8, maxExtensionHeaders: Int = 16, fragments: FragmentLimits = FragmentLimits()) {
            self.maxVLANTags = maxVLANTags
            self.maxExtensionHeaders = maxExtensionHeaders
            self.fragments = fragments
        }
    }

    /// Where the network layer starts in a frame.
    private struct NetworkLayer {
        /// 4, 6, or 0 to look at the version nibble.
        var version: UInt8
        var offset: Int
        /// End of the network layer (the frame's end, or less for PPPoE).
        var end: Int
        var vlanID: UInt16?
    }

    /// Outcome of parsing the link layer.
    private enum LinkLayerResult {
        case network(NetworkLayer)
        case skip(SkipReason)
        case malformed(MalformedReason)
    }

    /// Outcome of one decoding stage; the packet itself is filled in place
    /// (returning `DecodeOutcome` from every stage would copy it at each level).
    private enum Verdict {
        case packet
        case held
        case skip(SkipReason)
        case malformed(MalformedReason)
    }

    let limits: Limits
    private var tally = DecoderCounters()
    private var reassembler: IPv4Reassembler

    init(limits: Limits = Limits()) {
        self.limits = limits
        reassembler = IPv4Reassembler(limits: limits.fragments)
    }

    /// Everything counted so far, fragment reassembly included.
    var counters: DecoderCounters {
        var c = tally
        c.fragments = reassembler.counters
        return c
    }

    /// Decodes one captured frame.
    ///
    /// - Parameters:
    ///   - linkType: The capture's link type.
    ///   - data: The captured bytes (possibly cut by the snap length).
    ///   - wireLength: The frame's original length (values below `data.count` are read as `data.count`).
    ///   - timestampNs: Capture time, Unix nanoseconds; also the clock of fragment timeouts.
    mutating func decode(linkType: LinkType, data: UnsafeRawBufferPointer, wireLength: Int,
                         timestampNs: Int64) -> DecodeOutcome {
        tally.packets &+= 1
        tally.bytes &+= UInt64(clamping: wireLength)
        // A wire length below the captured length is nonsense; never let it go negative.
        let wireLength = max(wireLength, data.count)
        var packet = DecodedPacket(
            timestampNs: timestampNs, src: IPAddress(ipv4: 0), dst: IPAddress(ipv4: 0), transport: .other,
            srcPort: 0, dstPort: 0, tcpSeq: 0, tcpAck: 0, tcpFlags: [], tcpWindow: 0, vlanID: nil,
            payload: UnsafeRawBufferPointer(start: nil, count: 0), payloadTruncated: false,
            wireLength: wireLength, wasReassembled: false)
        let verdict: Verdict
        switch Self.locateNetworkLayer(linkType, data, maxVLANTags: limits.maxVLANTags) {
        case .network(let layer):
            packet.vlanID = layer.vlanID
            verdict = decodeNetwork(layer, data, &packet)
        case .skip(let reason):
            verdict = .skip(reason)
        case .malformed(let reason):
            verdict = .malformed(reason)
        }
        switch verdict {
        case .packet:
            if packet.transport == .tcp { tally.tcpPackets &+= 1 } else { tally.udpPackets &+= 1 }
            if packet.payloadTruncated { tally.truncatedPayloads &+= 1 }
            if packet.vlanID != nil { tally.vlanTagged &+= 1 }
            return .packet(packet)
        case .held:
            return .fragmentHeld
        case .skip(let reason):
            tally.skipped.increment(reason)
            return .skipped(reason)
        case .malformed(let reason):
            tally.malformed.increment(reason)
            return .malformed(reason)
        }
    }

    /// Drops fragment sets whose first fragment is older than the timeout.
    /// Call it periodically with the capture clock.
    mutating func expire(nowNs: Int64) {
        reassembler.expire(nowNs: nowNs)
    }

    // MARK: - Link layer

    // The stateless stages are static: a non-mutating method called from a
    // mutating one may copy the whole decoder to borrow `self`.

    private static func locateNetworkLayer(_ linkType: LinkType, _ data: UnsafeRawBufferPointer,
                                           maxVLANTags: Int) -> LinkLayerResult {
        switch linkType {
        case .ethernet:
            guard data.count >= 14 else { return .malformed(.linkHeaderTruncated) }
            return dispatch(etherType: data.wireU16(at: 12), data, offset: 14, maxVLANTags: maxVLANTags)
        case .null, .loop:
            guard data.count >= 4 else { return .malformed(.linkHeaderTruncated) }
            // The family is in the capturing host's byte order (NULL) or in
            // network order (LOOP); files move between hosts, so accept both.
            let raw = data.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
            let little = UInt32(littleEndian: raw), big = UInt32(bigEndian: raw)
            let family = little <= 0xFF ? little : (big <= 0xFF ? big : UInt32.max)
            switch family {
            case 2:  // AF_INET everywhere
                return .network(NetworkLayer(version: 4, offset: 4, end: data.count, vlanID: nil))
            case 10, 24, 28, 30:  // AF_INET6: Linux, Net/OpenBSD, FreeBSD, Darwin
                return .network(NetworkLayer(version: 6, offset: 4, end: data.count, vlanID: nil))
            default:
                return .skip(.nonIP)
            }
        case .raw:
            return .network(NetworkLayer(version: 0, offset: 0, end: data.count, vlanID: nil))
        case .ipv4:
            return .network(NetworkLayer(version: 4, offset: 0, end: data.count, vlanID: nil))
        case .ipv6:
            return .network(NetworkLayer(version: 6, offset: 0, end: data.count, vlanID: nil))
        case .linuxSLL:
            guard data.count >= 16 else { return .malformed(.linkHeaderTruncated) }
            return dispatch(etherType: data.wireU16(at: 14), data, offset: 16, maxVLANTags: maxVLANTags)
        case .linuxSLL2:
            guard data.count >= 20 else { return .malformed(.linkHeaderTruncated) }
            return dispatch(etherType: data.wireU16(at: 0), data, offset: 20, maxVLANTags: maxVLANTags)
        }
    }

    /// Follows an EtherType through VLAN tags and PPPoE to IPv4 or IPv6.
    private static func dispatch(etherType: UInt16, _ data: UnsafeRawBufferPointer, offset start: Int,
                                 maxVLANTags: Int) -> LinkLayerResult {
        var type = etherType
        var offset = start
        var end = data.count
        var vlanID: UInt16?
        var tags = 0
        while true {
            switch type {
            case 0x0800:
                return .network(NetworkLayer(version: 4, offset: offset, end: end, vlanID: vlanID))
            case 0x86DD:
                return .network(NetworkLayer(version: 6, offset: offset, end: end, vlanID: vlanID))
            case 0x8100, 0x88A8, 0x9100, 0x9200:
                tags += 1
                guard tags <= maxVLANTags else { return .malformed(.tooManyVLANTags) }
                guard offset + 4 <= end else { return .malformed(.linkHeaderTruncated) }
                if vlanID == nil { vlanID = data.wireU16(at: offset) & 0x0FFF }
                type = data.wireU16(at: offset + 2)
                offset += 4
            case 0x8864:
                // PPPoE session (RFC 2516): ver/type 0x11, code 0, session id, length; then PPP.
                guard offset + 6 <= end else { return .malformed(.linkHeaderTruncated) }
                guard data.wireU8(at: offset) == 0x11, data.wireU8(at: offset + 1) == 0 else {
                    return .malformed(.badPPPoEHeader)
                }
                let length = Int(data.wireU16(at: offset + 4))
                guard length >= 1 else { return .malformed(.badPPPoEHeader) }
                offset += 6
                end = min(end, offset + length)
                guard offset < end else { return .malformed(.linkHeaderTruncated) }
                let protocolID: UInt16
                let first = data.wireU8(at: offset)
                if first & 1 == 1 {
                    // Protocol-field compression: a one-byte protocol.
                    protocolID = UInt16(first)
                    offset += 1
                } else {
                    guard offset + 2 <= end else { return .malformed(.linkHeaderTruncated) }
                    protocolID = data.wireU16(at: offset)
                    offset += 2
                }
                switch protocolID {
                case 0x0021: return .network(NetworkLayer(version: 4, offset: offset, end: end, vlanID: vlanID))
                case 0x0057: return .network(NetworkLayer(version: 6, offset: offset, end: end, vlanID: vlanID))
                default: return .skip(.nonIP)
                }
            default:
                return .skip(.nonIP)
            }
        }
    }

    // MARK: - Network layer

    private mutating func decodeNetwork(_ layer: NetworkLayer, _ data: UnsafeRawBufferPointer,
                                        _ packet: inout DecodedPacket) -> Verdict {
        let ip = data.wireSlice(layer.offset..<layer.end)
        // What the wire carried from the IP header on, for zero length fields.
        let wireIPLength = max(packet.wireLength - layer.offset, ip.count)
        var version = layer.version
        if version == 0 {
            guard ip.count >= 1 else { return .malformed(.ipHeaderTruncated) }
            version = ip.wireU8(at: 0) >> 4
        }
        switch version {
        case 4: return decodeIPv4(ip, wireIPLength: wireIPLength, &packet)
        case 6: return decodeIPv6(ip, wireIPLength: wireIPLength, &packet)
        default: return .malformed(.badIPVersion)
        }
    }

    private mutating func decodeIPv4(_ ip: UnsafeRawBufferPointer, wireIPLength: Int,
                                     _ packet: inout DecodedPacket) -> Verdict {
        guard ip.count >= 20 else { return .malformed(.ipHeaderTruncated) }
        let versionIHL = ip.wireU8(at: 0)
        guard versionIHL >> 4 == 4 else { return .malformed(.badIPVersion) }
        let headerLength = Int(versionIHL & 0x0F) << 2
        guard headerLength >= 20 else { return .malformed(.ipv4BadHeaderLength) }
        guard headerLength <= ip.count else { return .malformed(.ipHeaderTruncated) }
        let totalField = Int(ip.wireU16(at: 2))
        let declared: Int
        if totalField == 0 {
            declared = wireIPLength  // TSO / BIG TCP: the frame says how long it is
        } else {
            guard totalField >= headerLength else { return .malformed(.ipv4BadTotalLength) }
            declared = totalField
        }
        let captured = min(declared, ip.count)
        let fragmentField = ip.wireU16(at: 6)
        let proto = ip.wireU8(at: 9)
        packet.src = IPAddress(ipv4: ip.wireU32(at: 12))
        packet.dst = IPAddress(ipv4: ip.wireU32(at: 16))
        let body = ip.wireSlice(headerLength..<captured)
        let moreFragments = fragmentField & 0x2000 != 0
        let fragmentOffset = Int(fragmentField & 0x1FFF) << 3
        if moreFragments || fragmentOffset != 0 {
            guard totalField != 0 else { return .malformed(.ipv4BadTotalLength) }
            let key = FragmentKey(src: packet.src, dst: packet.dst, id: UInt32(ip.wireU16(at: 4)), proto: proto)
            return reassemble(key, offset: fragmentOffset, moreFragments: moreFragments,
                              length: declared - headerLength, captured: body,
                              maxDatagramLength: 65535 - headerLength, &packet)
        }
        return decodeUpperLayers(firstHeader: proto, body, declaredLength: declared - headerLength,
                                 ipv6: false, fragmentsAllowed: false, &packet)
    }

    private mutating func decodeIPv6(_ ip: UnsafeRawBufferPointer, wireIPLength: Int,
                                     _ packet: inout DecodedPacket) -> Verdict {
        guard ip.count >= 40 else { return .malformed(.ipHeaderTruncated) }
        guard ip.wireU8(at: 0) >> 4 == 6 else { return .malformed(.badIPVersion) }
        let payloadField = Int(ip.wireU16(at: 4))
        // Payload length 0: a jumbogram or a BIG TCP / GSO super-packet; the frame says how long.
        let declaredPayload = payloadField != 0 ? payloadField : wireIPLength - 40
        let captured = min(40 + declaredPayload, ip.count)
        packet.src = IPAddress(ipv6High: ip.wireU64(at: 8), low: ip.wireU64(at: 16))
        packet.dst = IPAddress(ipv6High: ip.wireU64(at: 24), low: ip.wireU64(at: 32))
        return decodeUpperLayers(firstHeader: ip.wireU8(at: 6), ip.wireSlice(40..<captured),
                                 declaredLength: declaredPayload, ipv6: true, fragmentsAllowed: true, &packet)
    }

    /// Sends a fragment to the reassembler and decodes the datagram once complete.
    private mutating func reassemble(_ key: FragmentKey, offset: Int, moreFragments: Bool, length: Int,
                                     captured: UnsafeRawBufferPointer, maxDatagramLength: Int,
                                     _ packet: inout DecodedPacket) -> Verdict {
        // Only datagrams that can lead to TCP or UDP are worth holding.
        switch key.proto {
        case 6, 17, 51: break
        case 0, 43, 44, 60, 135, 139, 140: if !key.isIPv6 { return .skip(.notTCPOrUDP) }
        default: return .skip(.notTCPOrUDP)
        }
        switch reassembler.add(key: key, offset: offset, moreFragments: moreFragments, length: length,
                               captured: captured, maxDatagramLength: maxDatagramLength,
                               timestampNs: packet.timestampNs) {
        case .held:
            return .held
        case .discarded:
            return .skip(.fragmentDiscarded)
        case .invalid(let reason):
            return .malformed(reason)
        case .complete(let datagram, let declaredLength):
            packet.wasReassembled = true
            return decodeUpperLayers(firstHeader: key.proto, datagram, declaredLength: declaredLength,
                                     ipv6: key.isIPv6, fragmentsAllowed: false, &packet)
        }
    }

    /// Walks IPv6 extension headers (and IPsec AH, for both versions) to the
    /// transport header. `body` is what was captured of the IP payload,
    /// `declaredLength` what the IP header announces (`body.count <= declaredLength`).
    private mutating func decodeUpperLayers(firstHeader: UInt8, _ body: UnsafeRawBufferPointer, declaredLength: Int,
                                            ipv6: Bool, fragmentsAllowed: Bool,
                                            _ packet: inout DecodedPacket) -> Verdict {
        var next = firstHeader
        var offset = 0
        var headers = 0
        while true {
            let headerLength: Int
            switch next {
            case 6:
                return Self.decodeTCP(body.wireSlice(offset..<body.count), declaredLength: declaredLength - offset, &packet)
            case 17:
                return Self.decodeUDP(body.wireSlice(offset..<body.count), declaredLength: declaredLength - offset, &packet)
            case 51:  // IPsec AH: length in 4-byte units, minus 2
                guard offset + 2 <= body.count else { return .malformed(.extensionHeaderTruncated) }
                headerLength = (Int(body.wireU8(at: offset + 1)) + 2) << 2
            case 0, 43, 60, 135, 139, 140:  // IPv6 only; length in 8-byte units, minus 1
                guard ipv6 else { return .skip(.notTCPOrUDP) }
                guard offset + 2 <= body.count else { return .malformed(.extensionHeaderTruncated) }
                headerLength = (Int(body.wireU8(at: offset + 1)) + 1) << 3
            case 44 where ipv6:
                headers += 1
                guard headers <= limits.maxExtensionHeaders else { return .malformed(.tooManyExtensionHeaders) }
                guard offset + 8 <= body.count else { return .malformed(.extensionHeaderTruncated) }
                let fragmentNext = body.wireU8(at: offset)
                let field = body.wireU16(at: offset + 2)
                let fragmentOffset = Int(field & 0xFFF8)
                let moreFragments = field & 1 != 0
                let id = body.wireU32(at: offset + 4)
                offset += 8
                if fragmentOffset == 0 && !moreFragments {
                    next = fragmentNext  // atomic fragment (RFC 6946): not fragmented at all
                    continue
                }
                guard fragmentsAllowed else { return .malformed(.nestedFragment) }
                let key = FragmentKey(src: packet.src, dst: packet.dst, id: id, proto: fragmentNext)
                return reassemble(key, offset: fragmentOffset, moreFragments: moreFragments,
                                  length: declaredLength - offset, captured: body.wireSlice(offset..<body.count),
                                  maxDatagramLength: 65535, &packet)
            case 59 where ipv6:
                return .skip(.noNextHeader)
            default:
                return .skip(.notTCPOrUDP)
            }
            headers += 1
            guard headers <= limits.maxExtensionHeaders else { return .malformed(.tooManyExtensionHeaders) }
            guard offset + headerLength <= body.count else { return .malformed(.extensionHeaderTruncated) }
            next = body.wireU8(at: offset)
            offset += headerLength
        }
    }

    // MARK: - Transport layer

    private static func decodeTCP(_ segment: UnsafeRawBufferPointer, declaredLength: Int,
                           _ packet: inout DecodedPacket) -> Verdict {
        guard declaredLength >= 20, segment.count >= 20 else { return .malformed(.tcpHeaderTruncated) }
        let dataOffset = Int(segment.wireU8(at: 12) >> 4) << 2
        guard dataOffset >= 20, dataOffset <= declaredLength else { return .malformed(.tcpBadDataOffset) }
        let payloadStart = min(dataOffset, segment.count)
        packet.transport = .tcp
        packet.srcPort = segment.wireU16(at: 0)
        packet.dstPort = segment.wireU16(at: 2)
        packet.tcpSeq = segment.wireU32(at: 4)
        packet.tcpAck = segment.wireU32(at: 8)
        packet.tcpFlags = TCPFlags(rawValue: segment.wireU8(at: 13))
        packet.tcpWindow = segment.wireU16(at: 14)
        packet.payload = segment.wireSlice(payloadStart..<segment.count)
        packet.payloadTruncated = declaredLength > segment.count
        return .packet
    }

    private static func decodeUDP(_ datagram: UnsafeRawBufferPointer, declaredLength: Int,
                           _ packet: inout DecodedPacket) -> Verdict {
        guard declaredLength >= 8, datagram.count >= 8 else { return .malformed(.udpHeaderTruncated) }
        let lengthField = Int(datagram.wireU16(at: 4))
        let length: Int
        if lengthField == 0 {
            length = declaredLength  // jumbogram / GSO: the IP layer says how long
        } else {
            guard lengthField >= 8 else { return .malformed(.udpBadLength) }
            length = min(lengthField, declaredLength)
        }
        packet.transport = .udp
        packet.srcPort = datagram.wireU16(at: 0)
        packet.dstPort = datagram.wireU16(at: 2)
        packet.payload = datagram.wireSlice(8..<min(length, datagram.count))
        packet.payloadTruncated = length > datagram.count
        return .packet
    }
}
