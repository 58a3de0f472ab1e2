import PluginAPI

/// Identifies a flow by the orientation of its first packet (source first).
struct FlowKey: Hashable {
    var source: IPAddress
    var destination: IPAddress
    var sourcePort: UInt16
    var destinationPort: UInt16
    var transport: UInt8

    var reversed: FlowKey {
        FlowKey(source: destination, destination: source, sourcePort: destinationPort,
                destinationPort: sourcePort, transport: transport)
    }
}

/// Where a flow is in choosing its plugin.
enum FlowStage {
    case probing
    case active
    case ignored
}

/// Bytes seen while a flow's protocol is not yet certain, kept so the chosen
/// plugin gets them (and a re-probe after REJECT can replay them).
struct RetainedBytes {
    static let limit = 64 << 10
    var bytes: ([UInt8], [UInt8]) = ([], [])
    /// Delivery order: (direction, length, capture time).
    var order: [(direction: ks_direction, length: Int, ts: Int64)] = []
    /// False once the cap was hit or a gap broke the data: no replay possible.
    var complete = true
    var total: Int { bytes.0.count + bytes.1.count }

    mutating func append(_ direction: ks_direction, _ data: UnsafeRawBufferPointer, ts: Int64) {
        guard complete else { return }
        guard total + data.count <= Self.limit else {
            release()
            return
        }
        if direction == KS_DIR_CLIENT_TO_SERVER { bytes.0.append(contentsOf: data) } else { bytes.1.append(contentsOf: data) }
        order.append((direction, data.count, ts))
    }

    func view(_ direction: ks_direction) -> [UInt8] { direction == KS_DIR_CLIENT_TO_SERVER ? bytes.0 : bytes.1 }

    mutating func swapDirections() {
        bytes = (bytes.1, bytes.0)
        for i in order.indices { order[i].direction = 1 - order[i].direction }
    }

    /// Forgets everything (confirmed protocol, or cap reached).
    mutating func release() {
        complete = false
        bytes = ([], [])
        order = []
    }

    /// Calls `body` for each retained chunk in arrival order.
    func replay(_ body: (ks_direction, UnsafeRawBufferPointer, Int64) -> Bool) {
        var offsets = (0, 0)
        for item in order {
            let data = item.direction == KS_DIR_CLIENT_TO_SERVER ? bytes.0 : bytes.1
            let start = item.direction == KS_DIR_CLIENT_TO_SERVER ? offsets.0 : offsets.1
            let ok = data.withUnsafeBytes { body(item.direction, UnsafeRawBufferPointer(rebasing: $0[start..<start + item.length]), item.ts) }
            if item.direction == KS_DIR_CLIENT_TO_SERVER { offsets.0 += item.length } else { offsets.1 += item.length }
            if !ok { return }
        }
    }
}

/// What the session's sweeps need of any flow.
protocol TrackedFlow: AnyObject {
    var info: ks_flow_info { get }
    var lastSeenNs: Int64 { get }
    var handle: StreamHandle? { get }
}

/// One TCP connection: both directions' reassembly and the dissection state.
final class TCPFlow: TrackedFlow {
    /// The key the flow is stored under (orientation of its first packet).
    let key: FlowKey
    /// Whether `key.source` is the client.
    var keySourceIsClient: Bool
    var info: ks_flow_info
    /// Reassembly per side: .0 carries the packets from `key.source`, .1 the others.
    /// Indexed by side, not by role, so a role swap never moves a reassembler
    /// (one may be in the middle of delivering when a probe reverses the roles).
    var directions: (TCPDirection, TCPDirection)
    var stage: FlowStage = .probing
    var prober: Prober
    var retained = RetainedBytes()
    var handle: StreamHandle?
    var lastSeenNs: Int64
    var finished = (false, false)
    var rejected: [LoadedPlugin] = []
    /// The process whose OpenSSL calls gave this flow's bytes (nil: captured on the wire).
    var tlsOrigin: TLSOrigin?

    init(key: FlowKey, keySourceIsClient: Bool, info: ks_flow_info, budget: ReassemblyBudget, prober: Prober, now: Int64) {
        self.key = key
        self.keySourceIsClient = keySourceIsClient
        self.info = info
        directions = (TCPDirection(budget: budget), TCPDirection(budget: budget))
        self.prober = prober
        lastSeenNs = now
    }

    /// The ks_direction of the bytes reassembled on `side`.
    func direction(ofSide side: Int) -> ks_direction {
        (side == 0) == keySourceIsClient ? KS_DIR_CLIENT_TO_SERVER : KS_DIR_SERVER_TO_CLIENT
    }

    /// Swaps client and server (a probe said the roles were guessed wrong).
    func swapRoles() {
        // Not swap(&info.client, &info.server): two inout accesses to one property conflict.
        (info.client, info.server) = (info.server, info.client)
        keySourceIsClient.toggle()
        finished = (finished.1, finished.0)
        retained.swapDirections()
        info.flags |= KS_FLOW_ROLES_GUESSED
    }
}

/// One UDP pseudo-flow (5-tuple + idle timeout).
final class UDPFlow: TrackedFlow {
    /// Whether the source of the flow's first datagram is the client.
    var keySourceIsClient: Bool
    var info: ks_flow_info
    var stage: FlowStage = .probing
    var prober: Prober
    var handle: StreamHandle?
    var lastSeenNs: Int64
    var datagramsProbed = 0

    init(keySourceIsClient: Bool, info: ks_flow_info, prober: Prober, now: Int64) {
        self.keySourceIsClient = keySourceIsClient
        self.info = info
        self.prober = prober
        lastSeenNs = now
    }
}
