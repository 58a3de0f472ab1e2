import PluginAPI

/// Checks a descriptor against ABI 1.0 before anything else of the plugin runs.
enum PluginValidator {
    /// The size of the 1.0 descriptor: the minimum a plugin may declare.
    static let minimumDescriptorSize = 256

    static let knownLayer4: UInt32 = KS_L4_TCP | KS_L4_UDP
    static let knownFlags: UInt32 = KS_PLUGIN_ACCEPTS_GAPS | KS_PLUGIN_SINGLE_THREADED

    static func validate(_ d: UnsafePointer<ks_plugin_descriptor>) -> Result<PluginMetadata, PluginLoader.Message> {
        func fail(_ s: String) -> Result<PluginMetadata, PluginLoader.Message> { .failure(.init(message: s)) }
        let hostVersion = "host ABI \(KS_ABI_MAJOR).\(KS_ABI_MINOR)"
        // abi_major/abi_minor sit right after struct_size in every version, so the
        // version is judged first and a refusal names the real reason.
        let major = Int(d.pointee.abi_major)
        let minor = Int(d.pointee.abi_minor)
        let pluginVersion = "plugin ABI \(major).\(minor)"
        guard major == Int(KS_ABI_MAJOR) else {
            return fail("incompatible ABI major: \(pluginVersion), \(hostVersion)")
        }
        guard minor <= Int(KS_ABI_MINOR) else {
            return fail("plugin is newer than the host: \(pluginVersion), \(hostVersion); upgrade kubeshark")
        }
        let size = Int(d.pointee.struct_size)
        guard size >= minimumDescriptorSize else {
            return fail("descriptor struct_size \(size) is smaller than ABI 1.0's \(minimumDescriptorSize) bytes "
                + "(\(pluginVersion), \(hostVersion))")
        }
        guard let name = string(d.pointee.name), !name.isEmpty else {
            return fail("descriptor has no name (\(pluginVersion))")
        }
        guard name.utf8.allSatisfy({ isNameByte($0) }), name.utf8.count <= 64 else {
            return fail("plugin name '\(name)' must match [a-z0-9_-]{1,64}")
        }
        guard let version = string(d.pointee.version), !version.isEmpty else {
            return fail("plugin '\(name)' has no version string")
        }
        let layer4 = d.pointee.layer4
        guard layer4 != 0, layer4 & ~knownLayer4 == 0 else {
            return fail("plugin '\(name)' declares unknown layer4 mask 0x\(String(layer4, radix: 16))")
        }
        guard d.pointee.flags & ~knownFlags == 0 else {
            return fail("plugin '\(name)' sets unknown flags 0x\(String(d.pointee.flags, radix: 16)) "
                + "(\(pluginVersion), \(hostVersion))")
        }
        var missing: [String] = []
        if d.pointee.probe == nil { missing.append("probe") }
        if d.pointee.stream_open == nil { missing.append("stream_open") }
        if d.pointee.stream_close == nil { missing.append("stream_close") }
        if layer4 & KS_L4_TCP != 0, d.pointee.stream_data == nil { missing.append("stream_data (layer4 has tcp)") }
        if layer4 & KS_L4_UDP != 0, d.pointee.datagram == nil { missing.append("datagram (layer4 has udp)") }
        guard missing.isEmpty else {
            return fail("plugin '\(name)' lacks required callback(s): \(missing.joined(separator: ", "))")
        }
        let reservedClear = withUnsafeBytes(of: d.pointee.reserved) { $0.allSatisfy { $0 == 0 } }
        guard reservedClear else {
            return fail("plugin '\(name)' sets reserved descriptor slots (\(pluginVersion), \(hostVersion))")
        }
        guard d.pointee.protocol_count >= 1, d.pointee.protocol_count <= 64, let protos = d.pointee.protocols else {
            return fail("plugin '\(name)' must describe 1 to 64 protocols (has \(d.pointee.protocol_count))")
        }
        var protocols: [ProtocolMetadata] = []
        // Step through the array by the plugin's own element size (a later minor's
        // ks_protocol is bigger) and read only the 1.0 fields.
        let stride = Int(protos.pointee.struct_size)
        let hostSize = MemoryLayout<ks_protocol>.size
        guard stride >= hostSize, stride <= 4096 else {
            return fail("plugin '\(name)' protocol #0 has struct_size \(stride), "
                + "less than ABI 1.0's \(hostSize)")
        }
        for i in 0..<Int(d.pointee.protocol_count) {
            var p = ks_protocol()
            withUnsafeMutableBytes(of: &p) {
                $0.copyMemory(from: UnsafeRawBufferPointer(start: UnsafeRawPointer(protos) + i * stride, count: hostSize))
            }
            guard Int(p.struct_size) == stride else {
                return fail("plugin '\(name)' protocol #\(i) has struct_size \(p.struct_size), "
                    + "but the array's elements are \(stride) bytes")
            }
            guard let pname = string(p.name), !pname.isEmpty else {
                return fail("plugin '\(name)' protocol #\(i) has no name")
            }
            let macros = (string(p.macro) ?? pname).split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            protocols.append(ProtocolMetadata(
                name: pname,
                longName: string(p.long_name) ?? pname,
                abbreviation: string(p.abbreviation) ?? pname.uppercased(),
                version: string(p.version) ?? "",
                macro: macros.first ?? pname,
                extraMacros: Array(macros.dropFirst()),
                backgroundColor: string(p.background_color) ?? "#888888",
                foregroundColor: string(p.foreground_color) ?? "#ffffff",
                referenceURL: string(p.reference_url) ?? ""))
        }
        let portCount = Int(d.pointee.default_port_count)
        guard portCount <= 1024, portCount == 0 || d.pointee.default_ports != nil else {
            return fail("plugin '\(name)' has a bad port hint list (\(portCount) entries)")
        }
        var ports: [ClosedRange<UInt16>] = []
        for i in 0..<portCount {
            let r = d.pointee.default_ports[i]
            guard r.first <= r.last else {
                return fail("plugin '\(name)' port range #\(i) is reversed (\(r.first)-\(r.last))")
            }
            ports.append(r.first...r.last)
        }
        let probeMin = Int(d.pointee.probe_min_bytes)
        let probeMax = Int(d.pointee.probe_max_bytes)
        guard probeMax == 0 || probeMin <= probeMax else {
            return fail("plugin '\(name)' probe_min_bytes \(probeMin) exceeds probe_max_bytes \(probeMax)")
        }
        return .success(PluginMetadata(
            name: name,
            version: version,
            vendor: string(d.pointee.vendor) ?? "",
            license: string(d.pointee.license) ?? "",
            description: string(d.pointee.description) ?? "",
            referenceURL: string(d.pointee.reference_url) ?? "",
            abiMajor: major,
            abiMinor: minor,
            layer4: layer4,
            flags: d.pointee.flags,
            defaultPorts: ports,
            priority: d.pointee.priority,
            probeMinBytes: max(1, probeMin),
            probeMaxBytes: probeMax == 0 ? 4096 : probeMax,
            maxBufferBytes: Int(d.pointee.max_buffer_bytes),
            protocols: protocols))
    }

    private static func isNameByte(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
            || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
    }

    /// A NUL-terminated string from the plugin, bounded to 4 KiB so a missing NUL cannot run away.
    private static func string(_ p: UnsafePointer<CChar>?) -> String? {
        guard let p else { return nil }
        var n = 0
        while n < 4096 && p[n] != 0 { n += 1 }
        return p.withMemoryRebound(to: UInt8.self, capacity: n) {
            String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self)
        }
    }
}
