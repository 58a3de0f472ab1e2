// PluginLoader refusals: small C "plugins" built on the fly, each broken in one
// way, next to one good plugin in the same directory. Every refusal must name
// the file, the reason and (where versions matter) both ABI versions, and the
// good plugin must still load.

import Foundation
import Host
import PluginAPI
import Testing

#if canImport(Glibc)
import Glibc
#endif

private let loaderRepoRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private let loaderInclude = loaderRepoRoot.appendingPathComponent("Sources/PluginAPI/include").path

private let loaderCC: String? = {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let candidate = "\(dir)/cc"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}()

private struct CompileError: Error, CustomStringConvertible {
    var description: String
}

/// A minimal plugin whose every ABI-relevant detail is a macro, so each test
/// case can break exactly one thing with -D.
private let pluginTemplate = #"""
#include "kubeshark_plugin.h"
#include <stddef.h>

#ifndef NAME
#define NAME "good"
#endif
#ifndef MAJOR
#define MAJOR KS_ABI_MAJOR
#endif
#ifndef MINOR
#define MINOR KS_ABI_MINOR
#endif
#ifndef STRUCT_SIZE
#define STRUCT_SIZE sizeof(ks_plugin_descriptor)
#endif
#ifndef ENTRY
#define ENTRY ks_plugin_v1
#endif
#ifndef PROBE
#define PROBE t_probe
#endif
#ifndef DATA
#define DATA t_data
#endif
#ifndef RESERVED0
#define RESERVED0 NULL
#endif

static void t_probe(void *ctx, const ks_flow_info *flow, const ks_chunk *chunk, ks_probe_result *r) {
    (void)ctx; (void)flow; (void)chunk;
    r->verdict = KS_PROBE_NO;
}
static ks_status t_open(void *ctx, const ks_flow_info *flow, ks_stream *stream, void **state) {
    (void)ctx; (void)flow; (void)stream;
    *state = NULL;
    return KS_OK;
}
static void t_data(void *state, const ks_chunk *chunk, ks_parse_result *r) {
    (void)state;
    r->status = KS_PARSE_OK;
    r->consumed = chunk->len;
    r->needed = 0;
}
static void t_close(void *state, ks_close_reason reason) { (void)state; (void)reason; }

#ifdef WIDE_PROTOCOLS
/* What a plugin built against a later minor looks like: ks_protocol grew at its end. */
typedef struct { ks_protocol v1; const char *added_later; } wide_protocol;
static const wide_protocol t_wide[] = {
    {{sizeof(wide_protocol), 0, NAME, "First", "ONE", "1", "one", "#000000", "#ffffff", ""}, "x"},
    {{sizeof(wide_protocol), 0, "second", "Second", "TWO", "2", "two", "#000000", "#ffffff", ""}, "y"},
};
#define T_PROTOCOLS ((const ks_protocol *)t_wide)
#define T_PROTOCOL_COUNT 2
#else
static const ks_protocol t_protocols[] = {{
    sizeof(ks_protocol), 0, NAME, "Test protocol", "TEST", "1", "test", "#000000", "#ffffff", "",
}};
#define T_PROTOCOLS t_protocols
#define T_PROTOCOL_COUNT 1
#endif

static const ks_plugin_descriptor t_descriptor = {
    .struct_size = STRUCT_SIZE,
    .abi_major = MAJOR,
    .abi_minor = MINOR,
    .name = NAME,
    .version = "0.0.1",
    .layer4 = KS_L4_TCP,
    .protocols = T_PROTOCOLS,
    .protocol_count = T_PROTOCOL_COUNT,
    .probe = PROBE,
    .stream_open = t_open,
    .stream_data = DATA,
    .stream_close = t_close,
    .reserved = {RESERVED0},
};

const ks_plugin_descriptor *ENTRY(void);
const ks_plugin_descriptor *ENTRY(void) { return &t_descriptor; }
"""#

/// A scratch directory of plugin files, removed at the end of the test.
private final class PluginDirectory {
    let url: URL
    var path: String { url.path }

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("ks-loader-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Compiles `source` into `<dir>/<file>` as a shared library, with `defines` (-D...).
    @discardableResult
    func compile(_ file: String, source: String = pluginTemplate, defines: [String] = []) throws -> String {
        guard let cc = loaderCC else { throw CompileError(description: "no cc") }
        let src = url.appendingPathComponent(file + ".c")
        try source.write(to: src, atomically: true, encoding: .utf8)
        let out = url.appendingPathComponent(file).path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: cc)
        process.arguments = ["-std=c99", "-shared", "-fPIC", "-I\(loaderInclude)"] + defines.map { "-D\($0)" }
            + ["-o", out, src.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let log = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        // The source stays out of the scan (only *.so are candidates) but is removed anyway.
        try? FileManager.default.removeItem(at: src)
        guard process.terminationStatus == 0 else {
            throw CompileError(description: "cc \(file) failed:\n" + String(decoding: log, as: UTF8.self))
        }
        return out
    }

    @discardableResult
    func write(_ file: String, _ text: String) throws -> String {
        let p = url.appendingPathComponent(file)
        try text.write(to: p, atomically: true, encoding: .utf8)
        return p.path
    }
}

private let host = "\(KS_ABI_MAJOR).\(KS_ABI_MINOR)"

@Suite("PluginLoader refusals", .enabled(if: loaderCC != nil, "needs a C compiler (cc) to build test plugins"))
struct PluginLoaderTests {
    /// Builds the good plugin plus one broken file and scans the directory.
    private func scan(_ build: (PluginDirectory) throws -> Void) throws -> (PluginCatalog, PluginDirectory) {
        let dir = try PluginDirectory()
        try dir.compile("good.so")
        try build(dir)
        let catalog = PluginLoader.discover(builtInDirectory: nil, extraDirectories: [dir.path])
        #expect(catalog.unreadableDirectories.isEmpty)
        #expect(catalog.plugins.map(\.metadata.name) == ["good"], "the good plugin still loads next to a bad one")
        #expect(catalog.plugins.first?.path == dir.path + "/good.so")
        return (catalog, dir)
    }

    /// The single refusal of a scan, checked to name the file and to say every part of `reason`.
    private func refusal(
        _ catalog: PluginCatalog, file: String, in dir: PluginDirectory, says parts: [String],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(catalog.refusals.count == 1, "\(catalog.refusals)", sourceLocation: sourceLocation)
        guard let r = catalog.refusals.first else { return }
        let path = dir.path + "/" + file
        #expect(r.path == path, sourceLocation: sourceLocation)
        #expect(r.description.contains(path), "refusal names the file: \(r)", sourceLocation: sourceLocation)
        for part in parts {
            #expect(r.reason.contains(part), "refusal says '\(part)': \(r)", sourceLocation: sourceLocation)
        }
    }

    @Test("a good plugin loads with its metadata")
    func goodPlugin() throws {
        let (catalog, _) = try scan { _ in }
        #expect(catalog.refusals.isEmpty)
        let p = try #require(catalog.plugins.first)
        #expect(p.metadata.version == "0.0.1")
        #expect(p.metadata.abiMajor == Int(KS_ABI_MAJOR) && p.metadata.abiMinor == Int(KS_ABI_MINOR))
        #expect(p.metadata.protocols.map(\.abbreviation) == ["TEST"])
    }

    @Test("protocols[] is stepped by its elements' struct_size, so a grown ks_protocol still loads")
    func widerProtocolArray() throws {
        let dir = try PluginDirectory()
        try dir.compile("wide.so", defines: ["WIDE_PROTOCOLS", "NAME=\"wide\""])
        let wide = try PluginLoader.load(path: dir.path + "/wide.so").get()
        #expect(wide.metadata.protocols.map(\.abbreviation) == ["ONE", "TWO"])
        #expect(wide.metadata.protocols.map(\.macro) == ["one", "two"])
    }

    @Test("wrong major: exports ks_plugin_v2 only")
    func wrongMajorSymbol() throws {
        let (catalog, dir) = try scan { dir in
            try dir.compile("v2.so", defines: ["ENTRY=ks_plugin_v2", "MAJOR=2", "NAME=\"v2\""])
        }
        refusal(catalog, file: "v2.so", in: dir, says: ["ks_plugin_v2", "ABI 2", "ABI \(host)"])
    }

    @Test("wrong major: ks_plugin_v1 with abi_major 2 in the descriptor")
    func wrongMajorField() throws {
        let (catalog, dir) = try scan { dir in
            try dir.compile("major.so", defines: ["MAJOR=2", "NAME=\"major\""])
        }
        refusal(catalog, file: "major.so", in: dir, says: ["major", "plugin ABI 2.\(KS_ABI_MINOR)", "host ABI \(host)"])
    }

    @Test("newer minor than the host")
    func newerMinor() throws {
        let (catalog, dir) = try scan { dir in
            try dir.compile("newer.so", defines: ["MINOR=(KS_ABI_MINOR+1)", "NAME=\"newer\""])
        }
        refusal(catalog, file: "newer.so", in: dir, says: [
            "newer", "plugin ABI \(KS_ABI_MAJOR).\(KS_ABI_MINOR + 1)", "host ABI \(host)",
        ])
    }

    @Test("missing required callback: probe")
    func missingProbe() throws {
        let (catalog, dir) = try scan { dir in
            try dir.compile("noprobe.so", defines: ["PROBE=NULL", "NAME=\"noprobe\""])
        }
        refusal(catalog, file: "noprobe.so", in: dir, says: ["noprobe", "lacks required callback", "probe"])
    }

    @Test("missing required callback: stream_data for a TCP plugin")
    func missingStreamData() throws {
        let (catalog, dir) = try scan { dir in
            try dir.compile("nodata.so", defines: ["DATA=NULL", "NAME=\"nodata\""])
        }
        refusal(catalog, file: "nodata.so", in: dir, says: ["nodata", "lacks required callback", "stream_data"])
    }

    @Test("duplicate: two files declaring the same plugin name")
    func duplicateName() throws {
        let (catalog, dir) = try scan { dir in
            try dir.compile("zz-copy.so")  // also named "good"; scanned after good.so
        }
        refusal(catalog, file: "zz-copy.so", in: dir, says: ["duplicate", "'good'", dir.path + "/good.so"])
    }

    @Test("the same file reached twice (directory listed twice) is loaded once, not refused")
    func sameFileTwice() throws {
        let dir = try PluginDirectory()
        try dir.compile("good.so")
        let catalog = PluginLoader.discover(builtInDirectory: nil, extraDirectories: [dir.path, dir.path])
        #expect(catalog.plugins.count == 1)
        #expect(catalog.refusals.isEmpty)
    }

    @Test("not a plugin: a shared library without the entry symbol")
    func noEntrySymbol() throws {
        let (catalog, dir) = try scan { dir in
            try dir.compile("libplain.so", source: "int plain_function(void) { return 42; }\n")
        }
        refusal(catalog, file: "libplain.so", in: dir, says: ["not a kubeshark plugin", "ks_plugin_v1"])
    }

    @Test("not loadable: a text file named .so")
    func textFile() throws {
        let (catalog, dir) = try scan { dir in
            try dir.write("readme.so", "this is not an ELF file\n")
        }
        refusal(catalog, file: "readme.so", in: dir, says: ["cannot be loaded"])
    }

    @Test("struct_size smaller than the 1.0 descriptor")
    func structTooSmall() throws {
        let (catalog, dir) = try scan { dir in
            try dir.compile("small.so", defines: ["STRUCT_SIZE=128", "NAME=\"small\""])
        }
        refusal(catalog, file: "small.so", in: dir, says: [
            "struct_size 128", "\(MemoryLayout<ks_plugin_descriptor>.size)", "plugin ABI \(host)", "host ABI \(host)",
        ])
    }

    @Test("a non-NULL reserved slot")
    func reservedSlot() throws {
        let (catalog, dir) = try scan { dir in
            try dir.compile("reserved.so", defines: ["RESERVED0=((void*)1)", "NAME=\"reserved\""])
        }
        refusal(catalog, file: "reserved.so", in: dir, says: ["reserved", "plugin ABI \(host)", "host ABI \(host)"])
    }

    @Test("a bad plugin name")
    func badName() throws {
        let (catalog, dir) = try scan { dir in
            try dir.compile("badname.so", defines: ["NAME=\"Bad Name\""])
        }
        refusal(catalog, file: "badname.so", in: dir, says: ["'Bad Name'", "[a-z0-9_-]"])
    }

    @Test("every kind of refusal at once: each named, the good plugin still loads")
    func allTogether() throws {
        let (catalog, dir) = try scan { dir in
            try dir.compile("v2.so", defines: ["ENTRY=ks_plugin_v2", "MAJOR=2", "NAME=\"v2\""])
            try dir.compile("newer.so", defines: ["MINOR=(KS_ABI_MINOR+1)", "NAME=\"newer\""])
            try dir.compile("noprobe.so", defines: ["PROBE=NULL", "NAME=\"noprobe\""])
            try dir.compile("nodata.so", defines: ["DATA=NULL", "NAME=\"nodata\""])
            try dir.compile("zz-copy.so")
            try dir.compile("libplain.so", source: "int plain_function(void) { return 42; }\n")
            try dir.write("readme.so", "text\n")
            try dir.write("notes.txt", "ignored: not a .so\n")
            try dir.compile("small.so", defines: ["STRUCT_SIZE=128", "NAME=\"small\""])
            try dir.compile("reserved.so", defines: ["RESERVED0=((void*)1)", "NAME=\"reserved\""])
            try dir.compile("badname.so", defines: ["NAME=\"Bad Name\""])
        }
        let refused = Set(catalog.refusals.map { URL(fileURLWithPath: $0.path).lastPathComponent })
        #expect(refused == [
            "v2.so", "newer.so", "noprobe.so", "nodata.so", "zz-copy.so", "libplain.so", "readme.so", "small.so",
            "reserved.so", "badname.so",
        ])
        #expect(catalog.refusals.allSatisfy { $0.description.hasPrefix(dir.path + "/") && $0.description.contains(": refused: ") })
    }

    @Test("missing and non-directory paths are reported as unreadable directories")
    func unreadableDirectories() throws {
        let dir = try PluginDirectory()
        try dir.compile("good.so")
        let file = try dir.write("plain-file", "x")
        let missing = dir.path + "/does-not-exist"
        let catalog = PluginLoader.discover(builtInDirectory: missing, extraDirectories: [file, dir.path])
        #expect(catalog.unreadableDirectories.map(\.path) == [missing, file])
        #expect(catalog.unreadableDirectories.allSatisfy { !$0.error.isEmpty })
        #expect(catalog.plugins.map(\.metadata.name) == ["good"])
    }

    @Test("built-in directory: only libksplugin-*.so files are candidates")
    func builtInNaming() throws {
        let dir = try PluginDirectory()
        try dir.compile("libksplugin-good.so")
        try dir.compile("other.so", defines: ["NAME=\"other\""])
        let catalog = PluginLoader.discover(builtInDirectory: dir.path, extraDirectories: [])
        #expect(catalog.plugins.map(\.metadata.name) == ["good"])
        #expect(catalog.refusals.isEmpty)
    }
}
