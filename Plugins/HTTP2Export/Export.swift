// The exported entry symbol of libksplugin-http2.so. It lives in its own
// target so that the test bundle can link the HTTP2Plugin code (for HPACK and
// frame unit tests) next to the HTTP/1 plugin without two `ks_plugin_v1`.

import HTTP2Plugin
import PluginAPI
import PluginKit

@_cdecl("ks_plugin_v1")
public func ks_plugin_v1() -> UnsafePointer<ks_plugin_descriptor> {
    PluginExport.descriptor(for: HTTP2Dissector.self)
}
