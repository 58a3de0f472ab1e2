/// A byte count written the way Kubernetes writes resource quantities:
/// `500Mi`, `10Gi`, `1G`, `750k`, `1048576`.
///
/// Binary suffixes (`Ki`, `Mi`, `Gi`, `Ti`, `Pi`) are powers of 1024, decimal
/// ones (`k`, `M`, `G`, `T`, `P`) powers of 1000, as in Kubernetes' `resource.Quantity`.
/// Fractions (`1.5Gi`) are accepted and rounded down to whole bytes.
public struct StorageQuantity: Sendable, Equatable, CustomStringConvertible {
    public let bytes: Int64

    public init(bytes: Int64) { self.bytes = bytes }

    /// Parses `text`; `nil` when it is not a quantity or does not fit in 63 bits.
    public init?(_ text: String) {
        let suffixes: [(String, Double)] = [
            ("Ki", 0x1p10), ("Mi", 0x1p20), ("Gi", 0x1p30), ("Ti", 0x1p40), ("Pi", 0x1p50),
            ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("P", 1e15),
        ]
        var number = Substring(text.trimmedWhitespace)
        var scale = 1.0
        for (suffix, value) in suffixes where number.hasSuffix(suffix) {
            number = number.dropLast(suffix.count)
            scale = value
            break
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
            number.filter({ $0 == "." }).count <= 1, let value = Double(number)
        else { return nil }
        let total = (value * scale).rounded(.down)
        guard total.isFinite, total >= 0, total < 9.2e18 else { return nil }
        bytes = Int64(total)
    }

    /// The quantity in the largest binary unit that divides it exactly (`500Mi`).
    public var description: String {
        for (suffix, shift) in [("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)]
        where bytes != 0 && bytes % (Int64(1) << shift) == 0 {
            return "\(bytes >> shift)\(suffix)"
        }
        return "\(bytes)"
    }
}

