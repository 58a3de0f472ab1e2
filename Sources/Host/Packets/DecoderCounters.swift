/// Per-reason counters stored inline (no heap), indexed by a reason's raw
/// value, which must be below `ReasonCounts.capacity`.
struct ReasonCounts<Reason: RawRepresentable & CaseIterable & Sendable>: Sendable
where Reason.RawValue == UInt8 {
    /// Number of slots; every reason's raw value must be below it.
    static var capacity: Int { 32 }

    private var slots: (
        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64
    ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
         0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    init() {}

    /// The count for `reason`.
    subscript(reason: Reason) -> UInt64 {
        let index = Int(reason.rawValue)
        precondition(index < Self.capacity, "reason raw value out of range")
        return Swift.withUnsafeBytes(of: slots) { $0.load(fromByteOffset: index &* 8, as: UInt64.self) }
    }

    /// Adds one to the count for `reason`.
    @inline(__always)
    mutating func increment(_ reason: Reason) {
        let index = Int(reason.rawValue)
        precondition(index < Self.capacity, "reason raw value out of range")
        Swift.withUnsafeMutableBytes(of: &slots) { raw in
            let old = raw.load(fromByteOffset: index &* 8, as: UInt64.self)
            raw.storeBytes(of: old &+ 1, toByteOffset: index &* 8, as: UInt64.self)
        }
    }

    /// Sum over all reasons.
    var total: UInt64 {
        var sum: UInt64 = 0
        for reason in Reason.allCases { sum &+= self[reason] }
        return sum
    }
}

/// Counters of a `PacketDecoder`. Checksums are never verified, so there is no
/// checksum counter here.
struct DecoderCounters: Sendable {
    /// Frames passed to `decode`.
    var packets: UInt64 = 0
    /// Sum of the frames' wire lengths.
    var bytes: UInt64 = 0
    /// TCP packets returned (including reassembled ones).
    var tcpPackets: UInt64 = 0
    /// UDP packets returned (including reassembled ones).
    var udpPackets: UInt64 = 0
    /// Returned packets whose payload was cut by the snap length.
    var truncatedPayloads: UInt64 = 0
    /// Returned packets that carried at least one VLAN tag.
    var vlanTagged: UInt64 = 0
    /// Frames that produced no packet although well-formed, by reason.
    var skipped = ReasonCounts<SkipReason>()
    /// Frames that could not be decoded, by reason.
    var malformed = ReasonCounts<MalformedReason>()
    /// IPv4 and IPv6 fragment reassembly.
    var fragments = FragmentCounters()

    /// Frames that were not IP.
    var nonIP: UInt64 { skipped[.nonIP] }
    /// IP packets that were neither TCP nor UDP.
    var nonTCPUDP: UInt64 { skipped[.notTCPOrUDP] }
    /// All malformed frames.
    var malformedTotal: UInt64 { malformed.total }
}
