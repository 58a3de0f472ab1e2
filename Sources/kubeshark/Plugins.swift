import ArgumentParser
import Host

struct Plugins: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect dissector plugins.", subcommands: [List.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every plugin found, its metadata, and why any was refused.")

        @OptionGroup var pluginOptions: PluginOptions

        @Option(name: .customLong("output"), help: "json or table.")
        var output: OutputFormat = .table

        func run() throws {
            pluginOptions.bootstrapLogging()
            let catalog = pluginOptions.catalog(reportRefusals: false)
            switch output {
            case .table:
                print("kubeshark-swift \(KubesharkVersion.version), plugin ABI \(KubesharkVersion.pluginABI)")
                for p in catalog.plugins {
                    let m = p.metadata
                    let ports = m.defaultPorts.map { $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
                    print("")
                    print("\(m.name) \(m.version)  [\(m.layer4Description)]  ABI \(m.abiMajor).\(m.abiMinor)")
                    print("  \(m.description)")
                    print("  vendor: \(m.vendor)   license: \(m.license)")
                    print("  protocols: " + m.protocols.map { "\($0.abbreviation) \($0.version) (macro \(([$0.macro] + $0.extraMacros).joined(separator: " ")), \($0.backgroundColor)/\($0.foregroundColor))" }.joined(separator: ", "))
                    print("  ports: \(ports.isEmpty ? "-" : ports.joined(separator: ","))   priority: \(m.priority)   probe bytes: \(m.probeMinBytes)-\(m.probeMaxBytes)")
                    print("  reference: \(m.referenceURL)")
                    print("  file: \(p.path)")
                }
                if !catalog.refusals.isEmpty {
                    print("")
                    print("refused:")
                    for r in catalog.refusals { print("  \(r.description)") }
                }
                for d in catalog.unreadableDirectories { print("unreadable directory: \(d.path): \(d.error)") }
            case .json:
                for p in catalog.plugins { print(PluginJSON.describe(p)) }
                for r in catalog.refusals { print(PluginJSON.describe(r)) }
            }
        }
    }
}
