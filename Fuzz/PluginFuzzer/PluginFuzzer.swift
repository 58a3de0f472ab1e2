// A fuzz target for any dissector plugin, through the real ABI and the host's
// own stream driver (PluginHarness).
//
// Fuzz build (libFuzzer, coverage in the host and the Swift plugins):
//     swift build -c release --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DKS_FUZZ --product ks-plugin-fuzzer
//     KS_FUZZ_PLUGIN=http .build-fuzz/release/ks-plugin-fuzzer -max_total_time=60 CORPUS_DIR
// Normal build: the same binary replays files (a regression runner):
//     .build/debug/ks-plugin-fuzzer [--plugin NAME|PATH] FILE...
//
// An input is split into a client->server and a server->client stream: the
// first two bytes give where the split falls, the third how the streams are cut
// into segments, and segments alternate between the directions.

import Host

#if canImport(Glibc)
import Glibc
#endif

private func complain(_ message: String) {
    var line = "ks-plugin-fuzzer: \(message)\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// The harness, loaded once per process.
nonisolated(unsafe) private var harness: PluginHarness?

private func loadHarness() -> PluginHarness {
    if let harness { return harness }
    let choice = getenv("KS_FUZZ_PLUGIN").map { String(cString: $0) } ?? "http"
    do {
        let h = choice.contains("/") ? try PluginHarness(pluginPath: choice) : try PluginHarness(pluginNamed: choice)
        harness = h
        return h
    } catch {
        complain("cannot load plugin \(choice): \(error)")
        exit(2)
    }
}

/// Turns one fuzz input into segments and runs them through the plugin.
func runOne(_ data: UnsafeRawBufferPointer) {
    let h = loadHarness()
    guard data.count >= 3 else {
        _ = h.runTCP(segments: [(.clientToServer, Array(data))])
        return
    }
    let body = Array(data[3...])
    let split = min(body.count, Int(UInt16(data[0]) << 8 | UInt16(data[1])) % (body.count + 1))
    let step = max(1, Int(data[2]) % 64 + 1)
    let client = body[0..<split]
    let server = body[split...]
    var segments: [(HarnessDirection, [UInt8])] = []
    var ci = client.startIndex
    var si = server.startIndex
    while ci < client.endIndex || si < server.endIndex {
        if ci < client.endIndex {
            let end = min(client.endIndex, ci + step)
            segments.append((.clientToServer, Array(client[ci..<end])))
            ci = end
        }
        if si < server.endIndex {
            let end = min(server.endIndex, si + step * 3)
            segments.append((.serverToClient, Array(server[si..<end])))
            si = end
        }
    }
    _ = h.runTCP(segments: segments)
    _ = h.runUDP(datagrams: segments.prefix(8).map { $0 })
}

#if KS_FUZZ
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    runOne(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32

/// libFuzzer's driver, for programs that keep their own main.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: FuzzCallback
) -> Int32

/// SwiftPM links an executable's entry point as `<Target>_main`; hand it to libFuzzer.
@_cdecl("PluginFuzzer_main")
public func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var vector = argv
    return LLVMFuzzerRunDriver(&count, &vector) { data, size in fuzzOne(data, size) }
}
#else
@main
struct PluginFuzzerReplay {
    static func main() {
        var args = Array(CommandLine.arguments.dropFirst())
        if args.first == "--plugin", args.count >= 2 {
            setenv("KS_FUZZ_PLUGIN", args[1], 1)
            args.removeFirst(2)
        }
        var count = 0
        for path in args {
            guard let f = fopen(path, "rb") else {
                complain("cannot open \(path)")
                exit(1)
            }
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = fread(&buffer, 1, buffer.count, f)
                if n <= 0 { break }
                bytes += buffer[0..<n]
            }
            fclose(f)
            bytes.withUnsafeBytes { runOne($0) }
            count += 1
        }
        print("replayed \(count) inputs without a crash")
    }
}
#endif
