// The golden ABI test: pins the size and every field offset of every struct in
// kubeshark_plugin.h, and every #define that is part of the ABI, against values
// written down once (x86-64 / LP64, computed with offsetof by a C compiler).
//
// IF THIS FAILS YOU CHANGED THE ABI. Structs only grow at the end (append new
// fields after the last one, bump KS_ABI_MINOR, and add them to the table);
// existing fields never move, change type or disappear; enum values are never
// renumbered nor reused. Anything else needs a new major (ks_plugin_v2).

import Foundation
import PluginAPI
import Testing

private let abiRule =
    "if this fails you changed the ABI: structs only grow at the end; enums never renumber "
    + "(append fields, bump KS_ABI_MINOR, extend this golden table; anything else is a new major)"

private let headerURL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Sources/PluginAPI/include/kubeshark_plugin.h")

/// One struct of the golden table: its size and its fields in declaration order.
private struct GoldenStruct {
    var name: String
    var size: Int
    var alignment: Int
    /// (field, golden offset, actual offset)
    var fields: [(String, Int, Int?)]
}

private func golden<T>(
    _ type: T.Type, _ name: String, size: Int, alignment: Int, _ fields: [(String, Int, PartialKeyPath<T>)]
) -> GoldenStruct {
    GoldenStruct(
        name: name, size: size, alignment: alignment,
        fields: fields.map { ($0.0, $0.1, MemoryLayout<T>.offset(of: $0.2)) })
}

/// The golden table (LP64). Values from offsetof()/sizeof()/_Alignof() of ABI 1.0.
private let goldenTable: [(GoldenStruct, actualSize: Int, actualAlignment: Int)] = [
    (golden(ks_port_range.self, "ks_port_range", size: 4, alignment: 2, [
        ("first", 0, \.first), ("last", 2, \.last),
    ]), MemoryLayout<ks_port_range>.size, MemoryLayout<ks_port_range>.alignment),
    (golden(ks_endpoint.self, "ks_endpoint", size: 24, alignment: 4, [
        ("struct_size", 0, \.struct_size), ("family", 4, \.family), ("reserved0", 5, \.reserved0),
        ("port", 6, \.port), ("addr", 8, \.addr),
    ]), MemoryLayout<ks_endpoint>.size, MemoryLayout<ks_endpoint>.alignment),
    (golden(ks_flow_info.self, "ks_flow_info", size: 72, alignment: 8, [
        ("struct_size", 0, \.struct_size), ("layer4", 4, \.layer4), ("flags", 8, \.flags),
        ("reserved0", 12, \.reserved0), ("flow_id", 16, \.flow_id), ("client", 24, \.client),
        ("server", 48, \.server),
    ]), MemoryLayout<ks_flow_info>.size, MemoryLayout<ks_flow_info>.alignment),
    (golden(ks_chunk.self, "ks_chunk", size: 48, alignment: 8, [
        ("struct_size", 0, \.struct_size), ("direction", 4, \.direction), ("data", 8, \.data),
        ("len", 16, \.len), ("flags", 20, \.flags), ("stream_offset", 24, \.stream_offset),
        ("ts_first_ns", 32, \.ts_first_ns), ("ts_last_ns", 40, \.ts_last_ns),
    ]), MemoryLayout<ks_chunk>.size, MemoryLayout<ks_chunk>.alignment),
    (golden(ks_parse_result.self, "ks_parse_result", size: 16, alignment: 4, [
        ("struct_size", 0, \.struct_size), ("status", 4, \.status), ("consumed", 8, \.consumed),
        ("needed", 12, \.needed),
    ]), MemoryLayout<ks_parse_result>.size, MemoryLayout<ks_parse_result>.alignment),
    (golden(ks_probe_result.self, "ks_probe_result", size: 20, alignment: 4, [
        ("struct_size", 0, \.struct_size), ("verdict", 4, \.verdict), ("confidence", 8, \.confidence),
        ("flags", 12, \.flags), ("need_bytes", 16, \.need_bytes),
    ]), MemoryLayout<ks_probe_result>.size, MemoryLayout<ks_probe_result>.alignment),
    (golden(ks_entry_info.self, "ks_entry_info", size: 96, alignment: 8, [
        ("struct_size", 0, \.struct_size), ("flags", 4, \.flags), ("protocol_index", 8, \.protocol_index),
        ("status", 12, \.status), ("request_ts_ns", 16, \.request_ts_ns), ("response_ts_ns", 24, \.response_ts_ns),
        ("request_size", 32, \.request_size), ("response_size", 40, \.response_size), ("method", 48, \.method),
        ("method_len", 56, \.method_len), ("summary", 64, \.summary), ("summary_len", 72, \.summary_len),
        ("status_text", 80, \.status_text), ("status_text_len", 88, \.status_text_len),
    ]), MemoryLayout<ks_entry_info>.size, MemoryLayout<ks_entry_info>.alignment),
    (golden(ks_host_api.self, "ks_host_api", size: 168, alignment: 8, [
        ("struct_size", 0, \.struct_size), ("abi_major", 4, \.abi_major), ("abi_minor", 6, \.abi_minor),
        ("log", 8, \.log), ("counter_add", 16, \.counter_add), ("now_ns", 24, \.now_ns),
        ("confirm", 32, \.confirm), ("violation", 40, \.violation), ("entry_begin", 48, \.entry_begin),
        ("entry_object_begin", 56, \.entry_object_begin), ("entry_object_end", 64, \.entry_object_end),
        ("entry_array_begin", 72, \.entry_array_begin), ("entry_array_end", 80, \.entry_array_end),
        ("entry_string", 88, \.entry_string), ("entry_bytes", 96, \.entry_bytes), ("entry_int", 104, \.entry_int),
        ("entry_uint", 112, \.entry_uint), ("entry_double", 120, \.entry_double), ("entry_bool", 128, \.entry_bool),
        ("entry_null", 136, \.entry_null), ("entry_commit", 144, \.entry_commit), ("entry_abort", 152, \.entry_abort),
        ("status_str", 160, \.status_str),
    ]), MemoryLayout<ks_host_api>.size, MemoryLayout<ks_host_api>.alignment),
    (golden(ks_protocol.self, "ks_protocol", size: 72, alignment: 8, [
        ("struct_size", 0, \.struct_size), ("reserved0", 4, \.reserved0), ("name", 8, \.name),
        ("long_name", 16, \.long_name), ("abbreviation", 24, \.abbreviation), ("version", 32, \.version),
        ("macro", 40, \.macro), ("background_color", 48, \.background_color),
        ("foreground_color", 56, \.foreground_color), ("reference_url", 64, \.reference_url),
    ]), MemoryLayout<ks_protocol>.size, MemoryLayout<ks_protocol>.alignment),
    (golden(ks_plugin_descriptor.self, "ks_plugin_descriptor", size: 256, alignment: 8, [
        ("struct_size", 0, \.struct_size), ("abi_major", 4, \.abi_major), ("abi_minor", 6, \.abi_minor),
        ("name", 8, \.name), ("version", 16, \.version), ("vendor", 24, \.vendor), ("license", 32, \.license),
        ("description", 40, \.description), ("reference_url", 48, \.reference_url), ("layer4", 56, \.layer4),
        ("flags", 60, \.flags), ("default_ports", 64, \.default_ports),
        ("default_port_count", 72, \.default_port_count), ("priority", 76, \.priority),
        ("probe_min_bytes", 80, \.probe_min_bytes), ("probe_max_bytes", 84, \.probe_max_bytes),
        ("max_buffer_bytes", 88, \.max_buffer_bytes), ("protocols", 96, \.protocols),
        ("protocol_count", 104, \.protocol_count), ("init", 112, \.`init`), ("shutdown", 120, \.shutdown),
        ("probe", 128, \.probe), ("stream_open", 136, \.stream_open), ("stream_data", 144, \.stream_data),
        ("stream_gap", 152, \.stream_gap), ("stream_eof", 160, \.stream_eof), ("stream_tick", 168, \.stream_tick),
        ("stream_close", 176, \.stream_close), ("datagram", 184, \.datagram), ("reserved", 192, \.reserved),
    ]), MemoryLayout<ks_plugin_descriptor>.size, MemoryLayout<ks_plugin_descriptor>.alignment),
]

/// Every #define that is ABI, with its golden value.
private let goldenConstants: [(String, Int64, Int64)] = [
    ("KS_ABI_MAJOR", Int64(KS_ABI_MAJOR), 1),
    ("KS_ABI_MINOR", Int64(KS_ABI_MINOR), 0),
    // Status codes.
    ("KS_OK", Int64(KS_OK), 0),
    ("KS_E_INVALID", Int64(KS_E_INVALID), -1),
    ("KS_E_NOMEM", Int64(KS_E_NOMEM), -2),
    ("KS_E_LIMIT", Int64(KS_E_LIMIT), -3),
    ("KS_E_UNSUPPORTED", Int64(KS_E_UNSUPPORTED), -4),
    ("KS_E_VERSION", Int64(KS_E_VERSION), -5),
    ("KS_E_INTERNAL", Int64(KS_E_INTERNAL), -6),
    ("KS_E_STATE", Int64(KS_E_STATE), -7),
    // Layer 4.
    ("KS_L4_TCP", Int64(KS_L4_TCP), 0x1),
    ("KS_L4_UDP", Int64(KS_L4_UDP), 0x2),
    // Directions.
    ("KS_DIR_CLIENT_TO_SERVER", Int64(KS_DIR_CLIENT_TO_SERVER), 0),
    ("KS_DIR_SERVER_TO_CLIENT", Int64(KS_DIR_SERVER_TO_CLIENT), 1),
    // Log levels.
    ("KS_LOG_TRACE", Int64(KS_LOG_TRACE), 0),
    ("KS_LOG_DEBUG", Int64(KS_LOG_DEBUG), 1),
    ("KS_LOG_INFO", Int64(KS_LOG_INFO), 2),
    ("KS_LOG_WARN", Int64(KS_LOG_WARN), 3),
    ("KS_LOG_ERROR", Int64(KS_LOG_ERROR), 4),
    // Flow flags.
    ("KS_FLOW_MIDSTREAM", Int64(KS_FLOW_MIDSTREAM), 0x1),
    ("KS_FLOW_ROLES_GUESSED", Int64(KS_FLOW_ROLES_GUESSED), 0x2),
    // Chunk flags.
    ("KS_CHUNK_AFTER_GAP", Int64(KS_CHUNK_AFTER_GAP), 0x1),
    ("KS_CHUNK_FIRST", Int64(KS_CHUNK_FIRST), 0x2),
    // Parse statuses and sentinels.
    ("KS_PARSE_OK", Int64(KS_PARSE_OK), 0),
    ("KS_PARSE_NEED_MORE", Int64(KS_PARSE_NEED_MORE), 1),
    ("KS_PARSE_SKIP", Int64(KS_PARSE_SKIP), 2),
    ("KS_PARSE_ERROR", Int64(KS_PARSE_ERROR), 3),
    ("KS_PARSE_REJECT", Int64(KS_PARSE_REJECT), 4),
    ("KS_NEED_ANY", Int64(KS_NEED_ANY), 0),
    ("KS_NEED_UNTIL_EOF", Int64(KS_NEED_UNTIL_EOF), 0xFFFF_FFFF),
    // Probe verdicts, confidences, flags.
    ("KS_PROBE_NO", Int64(KS_PROBE_NO), 0),
    ("KS_PROBE_MAYBE", Int64(KS_PROBE_MAYBE), 1),
    ("KS_PROBE_YES", Int64(KS_PROBE_YES), 2),
    ("KS_CONFIDENCE_MAGIC", Int64(KS_CONFIDENCE_MAGIC), 100),
    ("KS_CONFIDENCE_SYNTAX", Int64(KS_CONFIDENCE_SYNTAX), 75),
    ("KS_CONFIDENCE_PLAUSIBLE", Int64(KS_CONFIDENCE_PLAUSIBLE), 50),
    ("KS_CONFIDENCE_PORT", Int64(KS_CONFIDENCE_PORT), 25),
    ("KS_PROBE_REVERSED", Int64(KS_PROBE_REVERSED), 0x1),
    // Close reasons.
    ("KS_CLOSE_FIN", Int64(KS_CLOSE_FIN), 0),
    ("KS_CLOSE_RESET", Int64(KS_CLOSE_RESET), 1),
    ("KS_CLOSE_TIMEOUT", Int64(KS_CLOSE_TIMEOUT), 2),
    ("KS_CLOSE_CAPTURE_END", Int64(KS_CLOSE_CAPTURE_END), 3),
    ("KS_CLOSE_ERROR", Int64(KS_CLOSE_ERROR), 4),
    ("KS_CLOSE_EVICTED", Int64(KS_CLOSE_EVICTED), 5),
    ("KS_CLOSE_REPROBE", Int64(KS_CLOSE_REPROBE), 6),
    // Entry flags.
    ("KS_ENTRY_REQUEST_ONLY", Int64(KS_ENTRY_REQUEST_ONLY), 0x1),
    ("KS_ENTRY_RESPONSE_ONLY", Int64(KS_ENTRY_RESPONSE_ONLY), 0x2),
    ("KS_ENTRY_TIMED_OUT", Int64(KS_ENTRY_TIMED_OUT), 0x4),
    ("KS_ENTRY_MALFORMED", Int64(KS_ENTRY_MALFORMED), 0x8),
    ("KS_ENTRY_TRUNCATED", Int64(KS_ENTRY_TRUNCATED), 0x10),
    ("KS_ENTRY_AFTER_GAP", Int64(KS_ENTRY_AFTER_GAP), 0x20),
    // Plugin flags.
    ("KS_PLUGIN_ACCEPTS_GAPS", Int64(KS_PLUGIN_ACCEPTS_GAPS), 0x1),
    ("KS_PLUGIN_SINGLE_THREADED", Int64(KS_PLUGIN_SINGLE_THREADED), 0x2),
]

/// Struct names and their fields in declaration order, read from the header text.
private func headerStructs() throws -> [(name: String, fields: [String])] {
    var text = try String(contentsOf: headerURL, encoding: .utf8)
    text = text.replacing(#/\/\*[\s\S]*?\*\//#, with: " ")
    var result: [(String, [String])] = []
    for match in text.matches(of: #/typedef struct (\w+) \{([\s\S]*?)\} (\w+);/#) {
        let name = String(match.output.1)
        var fields: [String] = []
        for statement in match.output.2.split(separator: ";") {
            let s = statement.trimmingCharacters(in: .whitespacesAndNewlines)
            if s.isEmpty { continue }
            if let fp = s.firstMatch(of: #/\(\s*\*\s*(\w+)\s*\)/#) {
                fields.append(String(fp.output.1))
            } else if let plain = s.replacing(#/\[[^\]]*\]/#, with: "").firstMatch(of: #/(\w+)\s*$/#) {
                fields.append(String(plain.output.1))
            }
        }
        result.append((name, fields))
    }
    return result
}

private let ccAvailable = FileManager.default.isExecutableFile(atPath: "/usr/bin/cc")
    || FileManager.default.isExecutableFile(atPath: "/usr/local/bin/cc")
private let cxxAvailable = FileManager.default.isExecutableFile(atPath: "/usr/bin/c++")
    || FileManager.default.isExecutableFile(atPath: "/usr/local/bin/c++")

private func compiler(_ name: String) -> String {
    FileManager.default.isExecutableFile(atPath: "/usr/bin/\(name)") ? "/usr/bin/\(name)" : "/usr/local/bin/\(name)"
}

/// Runs a compiler on `source` (written to a temp file with `suffix`); returns (status, output).
private func compile(_ compiler: String, _ arguments: [String], source: String, suffix: String) throws -> (Int32, String) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ks-abi-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let file = dir.appendingPathComponent("check" + suffix)
    try source.write(to: file, atomically: true, encoding: .utf8)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: compiler)
    process.arguments = arguments + ["-I", headerURL.deletingLastPathComponent().path, file.path]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

@Suite("ABI 1.0 golden layout")
struct ABILayoutTests {
    @Test("every struct's size, alignment and every field's offset match the golden table",
          .enabled(if: MemoryLayout<Int>.size == 8, "the golden table is for LP64 targets"))
    func layout() {
        for (g, size, alignment) in goldenTable {
            #expect(size == g.size, "\(g.name): size \(size), golden \(g.size) — \(abiRule)")
            #expect(alignment == g.alignment, "\(g.name): alignment \(alignment), golden \(g.alignment) — \(abiRule)")
            for (field, goldenOffset, actual) in g.fields {
                #expect(actual == goldenOffset,
                        "\(g.name).\(field): offset \(actual.map(String.init) ?? "nil"), golden \(goldenOffset) — \(abiRule)")
            }
        }
    }

    @Test("the golden table covers every struct and every field of the header, in order")
    func tableCoversHeader() throws {
        let header = try headerStructs()
        #expect(header.map(\.name) == goldenTable.map(\.0.name),
                "structs in the header vs the golden table — \(abiRule)")
        for (name, fields) in header {
            guard let g = goldenTable.first(where: { $0.0.name == name })?.0 else { continue }
            #expect(fields == g.fields.map(\.0), "\(name): fields in the header vs the golden table — \(abiRule)")
        }
    }

    @Test("every ABI #define keeps its value")
    func constants() {
        for (name, actual, expected) in goldenConstants {
            #expect(actual == expected, "\(name) is \(actual), golden \(expected) — \(abiRule)")
        }
        #expect(KS_PLUGIN_ENTRY_SYMBOL == "ks_plugin_v\(KS_ABI_MAJOR)", "the entry symbol carries the major — \(abiRule)")
        #expect(KS_PLUGIN_ENTRY_SYMBOL == "ks_plugin_v1", "\(abiRule)")
    }

    @Test("every #define of the header is pinned here")
    func everyDefinePinned() throws {
        let text = try String(contentsOf: headerURL, encoding: .utf8)
        let defined = text.matches(of: #/#define (KS_\w+)[ \t]/#).map { String($0.output.1) }
        let pinned = Set(goldenConstants.map(\.0) + ["KS_PLUGIN_ENTRY_SYMBOL"])
        // Function-like macros are helpers, not values.
        let values = defined.filter { !text.contains("#define \($0)(") }
        for name in values {
            #expect(pinned.contains(name), "\(name) is not in the golden constants: add it — \(abiRule)")
        }
        #expect(Set(values) == pinned, "value #defines in the header vs the golden constants — \(abiRule)")
    }

    @Test("the C compiler agrees with the golden table (offsetof, as plugins see it)",
          .enabled(if: ccAvailable, "cc not found: skipping the C-side layout check"),
          .enabled(if: MemoryLayout<Int>.size == 8, "the golden table is for LP64 targets"))
    func cLayoutAgrees() throws {
        var source = "#include <stddef.h>\n#include \"kubeshark_plugin.h\"\n"
        for (g, _, _) in goldenTable {
            source += "_Static_assert(sizeof(\(g.name)) == \(g.size), \"\(g.name) size\");\n"
            source += "_Static_assert(_Alignof(\(g.name)) == \(g.alignment), \"\(g.name) alignment\");\n"
            for (field, offset, _) in g.fields {
                source += "_Static_assert(offsetof(\(g.name), \(field)) == \(offset), \"\(g.name).\(field)\");\n"
            }
        }
        for (name, _, value) in goldenConstants {
            source += "_Static_assert((long long)(\(name)) == \(value)LL, \"\(name)\");\n"
        }
        let (status, output) = try compile(compiler("cc"), ["-std=c11", "-fsyntax-only"], source: source, suffix: ".c")
        #expect(status == 0, "\(output)\n\(abiRule)")
    }

    @Test("the header compiles alone as strict C99",
          .enabled(if: ccAvailable, "cc not found: skipping the C99 header check"))
    func headerIsStrictC99() throws {
        let (status, output) = try compile(
            compiler("cc"), ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-fsyntax-only"],
            source: "#include \"kubeshark_plugin.h\"\n", suffix: ".c")
        #expect(status == 0, "kubeshark_plugin.h must compile alone under -std=c99 -Wall -Wextra -pedantic -Werror:\n\(output)")
    }

    @Test("the header compiles as C++ with C linkage",
          .enabled(if: cxxAvailable, "c++ not found: skipping the C++ header check"))
    func headerIsCxxClean() throws {
        // The extern "C" guard: a function declared through the header's types and
        // defined with C linkage must match the plain C name.
        let source = """
            #include "kubeshark_plugin.h"
            extern "C" const ks_plugin_descriptor *ks_plugin_v1(void);
            static ks_plugin_descriptor d;
            const ks_plugin_descriptor *ks_plugin_v1(void) { return &d; }
            static_assert(sizeof(ks_plugin_descriptor) == 256 || sizeof(void *) != 8, "layout");
            """
        let (status, output) = try compile(
            compiler("c++"), ["-std=c++11", "-Wall", "-Wextra", "-pedantic", "-Werror", "-fsyntax-only"],
            source: source, suffix: ".cpp")
        #expect(status == 0, "kubeshark_plugin.h must compile as C++:\n\(output)")
        let (plain, plainOutput) = try compile(
            compiler("c++"), ["-fsyntax-only"], source: "#include \"kubeshark_plugin.h\"\n", suffix: ".cpp")
        #expect(plain == 0, "\(plainOutput)")
    }
}
