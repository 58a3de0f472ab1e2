import Foundation
import Testing

/// `kubeshark dissect` over the public Kafka corpus, compared with tshark 4.0:
/// every request tshark decodes (correlation id, API key, version) must be one
/// of our requests, and every response tshark matches to a request must be
/// matched in our entry. tshark 4.0 cannot decode some newer versions (it shows
/// the response of Fetch v12/v13 and Produce v9 without an API key): those are
/// counted apart and reported.
@Suite(.serialized) struct CaptureTests {
    static var corpusFiles: [String] {
        guard let dir = Tools.corpus, let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path)
        else { return [] }
        return names.filter { $0.hasSuffix(".pcap") || $0.hasSuffix(".pcapng") }.sorted()
            .map { dir.appendingPathComponent($0).path }
    }

    @Test(.enabled(if: Tools.hasKubeshark && Tools.corpus != nil, "kubeshark binary or corpus missing"))
    func corpusAgreesWithTshark() throws {
        #expect(!Self.corpusFiles.isEmpty)
        for file in Self.corpusFiles {
            let name = (file as NSString).lastPathComponent
            try agreesWithTshark(file, decodeAs: Tools.decodeAs(name))
        }
    }

    /// The committed recording (Tests/Fixtures/kafka/record-kafka.sh: kcat producing gzip
    /// with a header and consuming, against librdkafka's mock cluster).
    @Test(.enabled(if: Tools.hasKubeshark, "kubeshark binary not built"))
    func committedRecording() throws {
        let file = Tools.fixtures.appendingPathComponent("kcat-mock.pcap").path
        let port = try String(contentsOfFile: Tools.fixtures.appendingPathComponent("port").path, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let entries = try agreesWithTshark(file, decodeAs: "tcp.port==\(port),kafka")
        let methods = Set(entries.compactMap(\.method))
        for m in ["ApiVersions", "Metadata", "Produce", "ListOffsets", "Fetch"] { #expect(methods.contains(m), "no \(m)") }
        #expect(entries.allSatisfy { $0.flags.isEmpty }, "\(entries.map(\.flags))")
        let produce = try #require(entries.first { $0.method == "Produce" })
        #expect(produce.str("summary") == "orders")
        let text = String(describing: produce.request ?? [:])
        #expect(text.contains("gzip") && text.contains("trace") && text.contains("world"))
    }

    /// Every request tshark decodes is one of ours, every response it matches is matched
    /// in our entry; responses tshark cannot decode are counted and reported.
    @discardableResult
    func agreesWithTshark(_ file: String, decodeAs: String?) throws -> [JSON] {
        let name = (file as NSString).lastPathComponent
        let (entries, result) = try Tools.dissect(file)
        #expect(result.status == 0, "\(name): \(result.stderr.suffix(1000))")
        #expect(!entries.isEmpty, "\(name): no entries")
        #expect(entries.allSatisfy { !$0.flags.contains("malformed") }, "\(name): malformed entries")
        guard Tools.which("tshark") != nil else {
            print("tshark-agreement \(name): skipped, tshark is not installed")
            return entries
        }
        let pdus = try Tools.tsharkKafka(file, decodeAs: decodeAs)
        var requests = 0, requestsFound = 0, responses = 0, responsesFound = 0, unmatchedByTshark = 0
        var ourMatchedOfThose = 0
        for p in pdus {
            if let key = p.requestKey {
                requests += 1
                let found = entries.contains { e in
                    e.request?.int("correlationId") == p.correlationId && e.request?.int("apiKey") == key
                        && (p.version == nil || e.request?.int("apiVersion") == p.version)
                }
                if found { requestsFound += 1 }
                #expect(found, "\(name): tshark request corr \(p.correlationId) key \(key) v\(p.version ?? -1) not ours")
            } else if let key = p.responseKey {
                responses += 1
                let found = entries.contains { e in
                    e.response?.int("correlationId") == p.correlationId && e.request?.int("apiKey") == key
                }
                if found { responsesFound += 1 }
                #expect(found, "\(name): tshark response corr \(p.correlationId) key \(key) not matched by us")
            } else {
                unmatchedByTshark += 1
                if entries.contains(where: { e in
                    e.response?.int("correlationId") == p.correlationId && e.request != nil
                }) { ourMatchedOfThose += 1 }
            }
        }
        print("tshark-agreement \(name): requests \(requestsFound)/\(requests), matched responses "
            + "\(responsesFound)/\(responses); responses tshark could not decode: \(unmatchedByTshark) "
            + "(we matched \(ourMatchedOfThose)); our entries: \(entries.count)")
        return entries
    }
}
