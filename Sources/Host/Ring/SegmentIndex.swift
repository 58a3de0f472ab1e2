import PluginAPI

/// A stable, direction-independent 64-bit name for a flow (transport plus both
/// endpoints), the same in every process: it is stored in segment indexes and
/// used to find a stream's packets again.
public struct FlowHash: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let value: UInt64

    public init(value: UInt64) { self.value = value }

    init(_ a: IPAddress, _ aPort: UInt16, _ b: IPAddress, _ bPort: UInt16, transport: UInt8) {
        // Order the endpoints so both directions of a flow hash alike.
        let aFirst = (a, aPort) <= (b, bPort)
        let (x, xPort, y, yPort) = aFirst ? (a, aPort, b, bPort) : (b, bPort, a, aPort)
        var h: UInt64 = 0x9e37_79b9_7f4a_7c15 ^ UInt64(transport)
        for word in [x.high, x.low, x.isIPv6 ? 1 : 0, UInt64(xPort), y.high, y.low, y.isIPv6 ? 1 : 0, UInt64(yPort)] {
            h = Self.mix(h ^ word)
        }
        value = h
    }

    /// The flow between two textual endpoints (`10.0.0.1`, `80`), as entries carry them.
    public init?(transport: String, source: String, sourcePort: UInt16, destination: String, destinationPort: UInt16) {
        guard let a = IPAddress(source), let b = IPAddress(destination) else { return nil }
        let t: UInt8
        switch transport.lowercased() {
        case "tcp": t = 6
        case "udp": t = 17
        default: return nil
        }
        self.init(a, sourcePort, b, destinationPort, transport: t)
    }

    // SplitMix64's finaliser: cheap, and every input bit reaches every output bit.
    private static func mix(_ v: UInt64) -> UInt64 {
        var z = v &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    public static func < (l: FlowHash, r: FlowHash) -> Bool { l.value < r.value }
    public var description: String {
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// What one ring segment holds, for readers that start at a time or look for
/// one flow: written beside the segment (`segment-N.idx`) when it is closed,
/// rebuilt from the pcap when missing.
public struct SegmentIndex: Sendable, Equatable {
    /// The most flows an index names; past it, `flowsOverflowed` is set and the
    /// segment may hold any flow.
    public static let maxFlows = 8192

    public var sequence: UInt64
    public var linkType: Int32
    public var firstTimestampNs: Int64 = 0
    public var lastTimestampNs: Int64 = 0
    public var packets: UInt64 = 0
    /// Bytes of the pcap file, header included.
    public var fileBytes: Int64 = Int64(PcapFormat.fileHeaderSize)
    public var flows: Set<FlowHash> = []
    public var flowsOverflowed = false

    public init(sequence: UInt64, linkType: Int32) {
        self.sequence = sequence
        self.linkType = linkType
    }

    /// Whether packets of `flow` may be in the segment.
    public func mayContain(_ flow: FlowHash) -> Bool { flowsOverflowed || flows.contains(flow) }

    /// Whether the segment has packets in `[from, to]` (either bound optional).
    public func overlaps(fromNs: Int64?, toNs: Int64?) -> Bool {
        if packets == 0 { return false }
        if let fromNs, lastTimestampNs < fromNs { return false }
        if let toNs, firstTimestampNs > toNs { return false }
        return true
    }

    mutating func record(timestampNs: Int64, recordBytes: Int, flow: FlowHash?) {
        if packets == 0 || timestampNs < firstTimestampNs { firstTimestampNs = timestampNs }
        if timestampNs > lastTimestampNs { lastTimestampNs = timestampNs }
        packets &+= 1
        fileBytes &+= Int64(recordBytes)
        guard let flow, !flowsOverflowed else { return }
        if flows.count < Self.maxFlows {
            flows.insert(flow)
        } else if !flows.contains(flow) {
            flowsOverflowed = true
            flows.removeAll()
        }
    }

    // MARK: Sidecar file

    var json: [UInt8] {
        var members: [JSONMember] = [
            JSONMember(key: "sequence", value: .number(Double(sequence))),
            JSONMember(key: "linkType", value: .number(Double(linkType))),
            // Nanosecond timestamps exceed a double's exact range: keep them as text.
            JSONMember(key: "firstTimestampNs", value: .string(String(firstTimestampNs))),
            JSONMember(key: "lastTimestampNs", value: .string(String(lastTimestampNs))),
            JSONMember(key: "packets", value: .number(Double(packets))),
            JSONMember(key: "fileBytes", value: .number(Double(fileBytes))),
            JSONMember(key: "flowsOverflowed", value: .bool(flowsOverflowed)),
        ]
        members.append(JSONMember(key: "flows", value: .array(flows.sorted().map { .string($0.description) })))
        return JSONValue.object(members).jsonBytes
    }

    init?(json bytes: [UInt8]) {
        guard let v = try? JSONValue.parse(bytes, maxDepth: 4),
            case .number(let seq)? = v["sequence"], case .number(let link)? = v["linkType"],
            case .string(let first)? = v["firstTimestampNs"], case .string(let last)? = v["lastTimestampNs"],
            case .number(let packets)? = v["packets"], case .number(let size)? = v["fileBytes"],
            case .bool(let overflowed)? = v["flowsOverflowed"], case .array(let flows)? = v["flows"],
            let firstNs = Int64(first), let lastNs = Int64(last)
        else { return nil }
        self.init(sequence: UInt64(seq), linkType: Int32(link))
        firstTimestampNs = firstNs
        lastTimestampNs = lastNs
        self.packets = UInt64(packets)
        fileBytes = Int64(size)
        flowsOverflowed = overflowed
        for case .string(let s) in flows {
            guard let h = UInt64(s, radix: 16) else { return nil }
            self.flows.insert(FlowHash(value: h))
        }
    }
}

/// Names the flow of captured packets, for segment indexes and for finding a
/// stream's packets: decodes just enough of each packet (its own decoder, so
/// fragment state stays with its caller's thread).
struct FlowClassifier {
    private var decoder = PacketDecoder()

    /// The flow of a packet, or nil when it is not TCP or UDP over IP (or a
    /// fragment other than the one completing its datagram).
    mutating func flow(of data: UnsafeRawBufferPointer, linkType: Int32, wireLength: Int, timestampNs: Int64) -> FlowHash? {
        guard let link = LinkType(dlt: linkType),
            case .packet(let p) = decoder.decode(linkType: link, data: data, wireLength: wireLength, timestampNs: timestampNs)
        else { return nil }
        return FlowHash(p.src, p.srcPort, p.dst, p.dstPort, transport: p.transport == .tcp ? 6 : 17)
    }

    mutating func flow(of packet: CapturedPacket) -> FlowHash? {
        flow(of: packet.data, linkType: packet.linkType, wireLength: packet.wireLength, timestampNs: packet.timestampNs)
    }
}

extension FlowHash {
    /// The flow an entry came from.
    public init(entry: EntryView) {
        func address(_ e: ks_endpoint) -> IPAddress {
            withUnsafeBytes(of: e.addr) { raw in
                IPAddress(networkBytes: UnsafeRawBufferPointer(rebasing: raw[0..<(e.family == 6 ? 16 : 4)]))
                    ?? IPAddress(ipv4: 0)
            }
        }
        self.init(address(entry.client), entry.client.port, address(entry.server), entry.server.port,
                  transport: entry.layer4 == KS_L4_UDP ? 17 : 6)
    }
}
