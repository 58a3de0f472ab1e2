import Foundation
import Testing

/// `kubeshark dissect` against tshark on the public HTTP/1.x corpus
/// (../shared/corpus/http1): method, URI and status of every request/response pair.
@Suite("HTTP/1 corpus conformance with tshark",
       .enabled(if: TestSupport.corpus != nil, "../shared/corpus is absent"),
       .enabled(if: TestSupport.which("tshark") != nil, "tshark is not installed"))
struct CorpusConformanceTests {
    /// Corpus files with the decode-as tshark needs, from manifest.tsv.
    static func files(_ directory: String) -> [(path: String, decodeAs: String)] {
        guard let corpus = TestSupport.corpus,
            let manifest = try? String(contentsOf: corpus.appendingPathComponent("manifest.tsv"), encoding: .utf8)
        else { return [] }
        var out: [(String, String)] = []
        for line in manifest.split(separator: "\n").dropFirst() {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 8, f[0].hasPrefix(directory + "/") else { continue }
            out.append((corpus.appendingPathComponent(f[0]).path, f[7]))
        }
        return out
    }

    @Test("every tshark request/response pair is found", arguments: files("http1").map(\.path))
    func http1(path: String) throws {
        let decodeAs = Self.files("http1").first { $0.path == path }?.decodeAs
        let expected = try TShark.httpExchanges(file: path, decodeAs: decodeAs)
        let (entries, result) = try TestSupport.dissect([path])
        #expect(result.status == 0, "dissect failed: \(result.stderr)")
        let ours = exchanges(entries)
        let n = matched(expected, ours)
        let name = (path as NSString).lastPathComponent
        print("tshark-agreement \(name): \(n)/\(expected.count) pairs matched (we emitted \(ours.count))")
        #expect(!expected.isEmpty, "tshark found no HTTP in \(name)")
        #expect(n == expected.count, "\(name): tshark \(expected) vs ours \(ours)")
    }
}
