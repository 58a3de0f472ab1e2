/// Machine-readable descriptions of plugins, for `kubeshark plugins list --output json`.
public enum PluginJSON {
    /// One line of JSON describing a loaded plugin.
    public static func describe(_ p: LoadedPlugin) -> String {
        let m = p.metadata
        var w = JSONWriter(capacity: 1024)
        w.raw("{\"name\":"); w.string(m.name)
        w.raw(",\"version\":"); w.string(m.version)
        w.raw(",\"vendor\":"); w.string(m.vendor)
        w.raw(",\"license\":"); w.string(m.license)
        w.raw(",\"description\":"); w.string(m.description)
        w.raw(",\"referenceLink\":"); w.string(m.referenceURL)
        w.raw(",\"abi\":"); w.string("\(m.abiMajor).\(m.abiMinor)")
        w.raw(",\"layer4\":"); w.string(m.layer4Description)
        w.raw(",\"ports\":[")
        for (i, r) in m.defaultPorts.enumerated() {
            if i > 0 { w.raw(UInt8(ascii: ",")) }
            w.string(r.lowerBound == r.upperBound ? "\(r.lowerBound)" : "\(r.lowerBound)-\(r.upperBound)")
        }
        w.raw("],\"priority\":"); w.int(Int64(m.priority))
        w.raw(",\"probeBytes\":["); w.uint(UInt64(m.probeMinBytes)); w.raw(UInt8(ascii: ",")); w.uint(UInt64(m.probeMaxBytes))
        w.raw("],\"acceptsGaps\":"); w.bool(m.acceptsGaps)
        w.raw(",\"protocols\":[")
        for (i, _) in m.protocols.enumerated() {
            if i > 0 { w.raw(UInt8(ascii: ",")) }
            w.raw(p.protocolJSON[i])
        }
        w.raw("],\"path\":"); w.string(p.path)
        w.raw(",\"loaded\":true}")
        return String(decoding: w.bytes, as: UTF8.self)
    }

    /// One line of JSON describing a refused plugin file.
    public static func describe(_ r: PluginRefusal) -> String {
        var w = JSONWriter(capacity: 256)
        w.raw("{\"path\":"); w.string(r.path)
        w.raw(",\"loaded\":false,\"reason\":"); w.string(r.reason)
        w.raw(UInt8(ascii: "}"))
        return String(decoding: w.bytes, as: UTF8.self)
    }
}
