import Foundation
import PackagePlugin

/// Compiles the TLS uprobe program (Sources/CTLSProbe/bpf/tls_probe.bpf.c) with
/// the toolchain's clang `-target bpf` at build time and embeds the object into
/// the target it is applied to, as a base64 string constant
/// (`tlsProbeObjectBase64`). Nothing binary is committed: a fresh clone builds it.
@main
struct EmbedBPF: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let source = root.appending(path: "Sources/CTLSProbe/bpf/tls_probe.bpf.c")
        let include = root.appending(path: "Sources/CTLSProbe/include")
        let header = include.appending(path: "ks_tls_event.h")
        let output = context.pluginWorkDirectoryURL.appending(path: "TLSProbeObjectData.swift")
        // The Swift toolchain's clang has the BPF backend; a system clang is the fallback.
        let clang = (try? context.tool(named: "clang").url) ?? URL(fileURLWithPath: "/usr/bin/clang")
        let script = #"""
            set -eu
            clang="$1"; src="$2"; inc="$3"; out="$4"
            machine=$(uname -m)
            case "$machine" in
              x86_64) arch=x86 ;;
              aarch64) arch=arm64 ;;
              *) arch="$machine" ;;
            esac
            obj="$out.o"
            # -g: libbpf needs the object's BTF for CO-RE relocations and map definitions.
            "$clang" -g -O2 -target bpf "-D__TARGET_ARCH_$arch" -I"$inc" -I"/usr/include/$machine-linux-gnu" \
              -c "$src" -o "$obj"
            {
              printf '// Generated at build time by the EmbedBPF plugin from tls_probe.bpf.c; do not edit.\n'
              printf 'let tlsProbeObjectBase64 = "'
              base64 -w0 "$obj"
              printf '"\n'
            } > "$out.tmp"
            mv "$out.tmp" "$out"
            """#
        return [
            .buildCommand(
                displayName: "Compiling the TLS BPF probes (clang -target bpf)",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: ["-c", script, "embed-bpf", clang.path, source.path, include.path, output.path],
                inputFiles: [source, header],
                outputFiles: [output])
        ]
    }
}
