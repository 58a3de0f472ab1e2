import Foundation
import Host

/// Follows the ring's live end for `onPacketCaptured`: per-packet metadata
/// only (no payload), in batches, on a thread of its own. Capture never waits
/// for it: it reads what the ring has written.
final class PacketTail: @unchecked Sendable {
    /// Numbers per packet in a batch: timestamp (ms), captureLength, length, truncated, fragmented.
    static let stride = 5
    static let batchPackets = 1024

    private let reader: RingReader
    private let deliver: ([Double]) -> Void
    private let linkType: Int32
    private var thread: BackgroundThread?

    init(ring: PacketRing, deliver: @escaping ([Double]) -> Void) {
        reader = RingReader(catalogue: ring, fromNs: wallClockNanoseconds(), follow: true)
        linkType = ring.configuration.linkType
        self.deliver = deliver
    }

    func start() {
        thread = BackgroundThread { [self] in run() }
    }

    private func run() {
        var batch: [Double] = []
        batch.reserveCapacity(Self.batchPackets * Self.stride)
        while true {
            let outcome: CaptureReadOutcome
            do {
                outcome = try reader.read(maxPackets: Self.batchPackets) { p in
                    batch.append(Double(p.timestampNs / 1_000_000))
                    batch.append(Double(p.data.count))
                    batch.append(Double(p.wireLength))
                    batch.append(p.data.count < p.wireLength ? 1 : 0)
                    batch.append(Self.isFragment(p.data, linkType: linkType) ? 1 : 0)
                }
            } catch {
                break
            }
            if !batch.isEmpty {
                deliver(batch)
                batch.removeAll(keepingCapacity: true)
            }
            if outcome == .end { break }
        }
    }

    func stop() {
        guard let thread else { return }
        reader.breakLoop()
        thread.join()
        self.thread = nil
    }

    /// Whether the packet is an IP fragment (IPv4 MF or offset, IPv6 fragment header).
    static func isFragment(_ data: UnsafeRawBufferPointer, linkType: Int32) -> Bool {
        var offset: Int
        var etherType: UInt16
        switch linkType {
        case 1: // Ethernet, skipping VLAN tags
            guard data.count >= 14 else { return false }
            offset = 12
            etherType = UInt16(data[offset]) << 8 | UInt16(data[offset + 1])
            offset += 2
            while (etherType == 0x8100 || etherType == 0x88a8) && data.count >= offset + 4 {
                etherType = UInt16(data[offset + 2]) << 8 | UInt16(data[offset + 3])
                offset += 4
            }
        case 101, 12, 14: // raw IP
            guard let first = data.first else { return false }
            offset = 0
            etherType = first >> 4 == 6 ? 0x86dd : 0x0800
        default:
            return false
        }
        if etherType == 0x0800, data.count >= offset + 8 {
            let flagsOffset = UInt16(data[offset + 6]) << 8 | UInt16(data[offset + 7])
            return flagsOffset & 0x3fff != 0
        }
        if etherType == 0x86dd, data.count >= offset + 40 {
            return data[offset + 6] == 44
        }
        return false
    }
}
