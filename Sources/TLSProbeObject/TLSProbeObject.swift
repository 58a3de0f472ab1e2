/// The TLS uprobe BPF object, compiled from Sources/CTLSProbe/bpf/tls_probe.bpf.c
/// at build time by the EmbedBPF build-tool plugin (see docs/tls.md).
public enum TLSProbeObject {
    /// The ELF object's bytes.
    public static func bytes() -> [UInt8] { decodeBase64(tlsProbeObjectBase64) }

    /// Decodes the plugin's base64 (standard alphabet, '=' padding, no line breaks).
    static func decodeBase64(_ text: String) -> [UInt8] {
        var table = [UInt8](repeating: 0xff, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(c)] = UInt8(i)
        }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count / 4 * 3)
        var accumulator: UInt32 = 0
        var bits = 0
        for c in text.utf8 {
            let v = table[Int(c)]
            if v == 0xff { continue }  // '=' padding
            accumulator = accumulator << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return out
    }
}
