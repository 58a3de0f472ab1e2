/// A TLS connection's plaintext as a pcap: TCP segments between its two ends
/// (Ethernet, then IPv4 or IPv6, then TCP with correct checksums), after a
/// three-way handshake and ending with FINs, so Wireshark or tshark follow and
/// dissect the decrypted stream as if it had crossed the wire in the clear.
/// Bytes the probes could not copy advance the sequence numbers without data,
/// which Wireshark shows as "previous segment not captured". This is the pcap
/// of a decrypted entry (Kubeshark's pcaps include decrypted TLS the same way).
public struct TLSStreamPcap {
    /// One end of the connection.
    public struct End: Sendable, Equatable {
        var address: IPAddress
        public var port: UInt16

        /// Nil when `address` is not an IP address.
        public init?(address: String, port: UInt16) {
            guard let ip = IPAddress(address) else { return nil }
            self.address = ip
            self.port = port
        }

        init(_ address: IPAddress, _ port: UInt16) {
            self.address = address
            self.port = port
        }
    }

    /// Largest payload of one synthesized segment.
    static let segmentLimit = 16_384

    let client: End
    let server: End
    private var clientSequence: UInt32 = 1_000
    private var serverSequence: UInt32 = 5_000
    /// The pcap so far (its file header first).
    public private(set) var bytes: [UInt8]

    public init(client: End, server: End) {
        self.client = client
        self.server = server
        bytes = PcapFormat.fileHeader(linkType: 1)
    }

    /// SYN, SYN-ACK, ACK at `timestampNs`.
    public mutating func open(timestampNs: Int64) {
        segment(fromClient: true, flags: Self.syn, payload: nil, timestampNs: timestampNs)
        clientSequence &+= 1
        segment(fromClient: false, flags: Self.syn | Self.ack, payload: nil, timestampNs: timestampNs)
        serverSequence &+= 1
        segment(fromClient: true, flags: Self.ack, payload: nil, timestampNs: timestampNs)
    }

    /// Plaintext one end sent, then `missing` bytes of it the probes could not copy.
    public mutating func append(_ data: UnsafeRawBufferPointer, fromClient: Bool, missing: Int = 0, timestampNs: Int64) {
        var offset = 0
        while offset < data.count {
            let n = min(Self.segmentLimit, data.count - offset)
            segment(fromClient: fromClient, flags: Self.ack | Self.psh,
                    payload: UnsafeRawBufferPointer(rebasing: data[offset..<offset + n]), timestampNs: timestampNs)
            advance(fromClient, by: n)
            offset += n
        }
        if missing > 0 { advance(fromClient, by: missing) }
    }

    /// FIN from each end.
    public mutating func close(timestampNs: Int64) {
        segment(fromClient: true, flags: Self.fin | Self.ack, payload: nil, timestampNs: timestampNs)
        clientSequence &+= 1
        segment(fromClient: false, flags: Self.fin | Self.ack, payload: nil, timestampNs: timestampNs)
        serverSequence &+= 1
        segment(fromClient: true, flags: Self.ack, payload: nil, timestampNs: timestampNs)
    }

    static let fin: UInt8 = 0x01, syn: UInt8 = 0x02, psh: UInt8 = 0x08, ack: UInt8 = 0x10

    private mutating func advance(_ fromClient: Bool, by n: Int) {
        if fromClient { clientSequence &+= UInt32(truncatingIfNeeded: n) } else { serverSequence &+= UInt32(truncatingIfNeeded: n) }
    }

    /// Appends one Ethernet frame (as a pcap record) carrying a TCP segment.
    private mutating func segment(fromClient: Bool, flags: UInt8, payload: UnsafeRawBufferPointer?, timestampNs: Int64) {
        let (source, destination) = fromClient ? (client, server) : (server, client)
        let sequence = fromClient ? clientSequence : serverSequence
        let acknowledged = flags & Self.ack != 0 ? (fromClient ? serverSequence : clientSequence) : 0
        let v6 = source.address.isIPv6
        let payloadCount = payload?.count ?? 0
        let ipHeader = v6 ? 40 : 20
        let frameLength = 14 + ipHeader + 20 + payloadCount
        var frame = [UInt8](repeating: 0, count: frameLength)
        // Ethernet: made-up local MACs, one per end.
        frame[0] = 0x02; frame[5] = fromClient ? 2 : 1
        frame[6] = 0x02; frame[11] = fromClient ? 1 : 2
        put16(&frame, 12, v6 ? 0x86dd : 0x0800)
        let tcp = 14 + ipHeader
        if v6 {
            frame[14] = 0x60
            put16(&frame, 18, UInt16(20 + payloadCount))
            frame[20] = 6
            frame[21] = 64
            copy(source.address, into: &frame, at: 22)
            copy(destination.address, into: &frame, at: 38)
        } else {
            frame[14] = 0x45
            put16(&frame, 16, UInt16(20 + 20 + payloadCount))
            put16(&frame, 20, 0x4000)  // don't fragment
            frame[22] = 64
            frame[23] = 6
            copy(source.address, into: &frame, at: 26)
            copy(destination.address, into: &frame, at: 30)
            put16(&frame, 24, Self.checksum(frame[14..<34], initial: 0))
        }
        put16(&frame, tcp, source.port)
        put16(&frame, tcp + 2, destination.port)
        put32(&frame, tcp + 4, sequence)
        put32(&frame, tcp + 8, acknowledged)
        frame[tcp + 12] = 5 << 4
        frame[tcp + 13] = flags
        put16(&frame, tcp + 14, 65_535)
        if let payload, payloadCount > 0 {
            frame.withUnsafeMutableBytes { ($0.baseAddress! + tcp + 20).copyMemory(from: payload.baseAddress!, byteCount: payloadCount) }
        }
        // The TCP checksum covers a pseudo-header of both addresses, the protocol and the length.
        var pseudo: UInt32 = UInt32(6) + UInt32(20 + payloadCount)
        let addresses = v6 ? frame[22..<54] : frame[26..<34]
        pseudo = Self.sum(addresses, initial: pseudo)
        put16(&frame, tcp + 16, Self.checksum(frame[tcp...], initial: pseudo))
        var header = [UInt8](repeating: 0, count: PcapFormat.recordHeaderSize)
        header.withUnsafeMutableBytes {
            PcapFormat.storeRecordHeader(into: $0.baseAddress!, timestampNs: timestampNs, capturedLength: frameLength,
                                         wireLength: frameLength)
        }
        bytes += header
        bytes += frame
    }

    private func put16(_ b: inout [UInt8], _ at: Int, _ v: UInt16) {
        b[at] = UInt8(v >> 8)
        b[at + 1] = UInt8(v & 0xff)
    }

    private func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
        put16(&b, at, UInt16(v >> 16))
        put16(&b, at + 2, UInt16(v & 0xffff))
    }

    private func copy(_ address: IPAddress, into b: inout [UInt8], at: Int) {
        address.withUnsafeBytes { for (i, byte) in $0.enumerated() { b[at + i] = byte } }
    }

    /// The one's-complement sum of 16-bit words (RFC 1071), not yet folded.
    static func sum(_ bytes: ArraySlice<UInt8>, initial: UInt32) -> UInt32 {
        var total = initial
        var i = bytes.startIndex
        while i + 1 < bytes.endIndex {
            total &+= UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
            i += 2
        }
        if i < bytes.endIndex { total &+= UInt32(bytes[i]) << 8 }
        return total
    }

    /// The Internet checksum of `bytes` (its checksum field zero) over `initial`.
    static func checksum(_ bytes: ArraySlice<UInt8>, initial: UInt32) -> UInt16 {
        var total = sum(bytes, initial: initial)
        while total >> 16 != 0 { total = (total & 0xffff) + (total >> 16) }
        return ~UInt16(total)
    }
}

extension TLSChunkLog {
    /// The plaintext this log still holds of process `pid`'s connection between
    /// `client` and `server`, as a pcap (`TLSStreamPcap`); nil when it holds none.
    public func pcap(pid: Int32, client: TLSStreamPcap.End, server: TLSStreamPcap.End) -> [UInt8]? {
        var cursor = cursor(fromNs: nil)
        var stream: TLSStreamPcap?
        var lastNs: Int64 = 0
        while true {
            let chunks = read(from: &cursor, max: 1024)
            if chunks.isEmpty { break }
            for chunk in chunks where chunk.pid == pid {
                guard let local = chunk.local, let remote = chunk.remote else { continue }
                let ends = (TLSStreamPcap.End(local.address, local.port), TLSStreamPcap.End(remote.address, remote.port))
                let fromClient: Bool
                if ends == (client, server) {
                    fromClient = chunk.outgoing
                } else if ends == (server, client) {
                    fromClient = !chunk.outgoing
                } else {
                    continue
                }
                if stream == nil {
                    stream = TLSStreamPcap(client: client, server: server)
                    stream!.open(timestampNs: chunk.timestampNs)
                }
                chunk.withUnsafeBytes {
                    stream!.append($0, fromClient: fromClient, missing: chunk.missing, timestampNs: chunk.timestampNs)
                }
                lastNs = chunk.timestampNs
            }
        }
        stream?.close(timestampNs: lastNs)
        return stream?.bytes
    }
}
