// Random mutations (SplitMix, reproducible) of valid documents and bodies:
// every entry point must answer, within its caps, and never crash.

import GraphQLSupport
import TestKit
import Testing

private let seedDocuments: [String] = [
    #"query GetUser($id: ID! = "1", $f: [Int!]) @dir(a: 1) { u: user(id: $id, o: {a: [1, 2.5e3, "s\u00e9"], b: null}) { ...F ... on User @skip(if: true) { name } } viewer }"#,
    "fragment F on User { id friends(first: 10) { edges { node { id } } } }\nmutation M { like(id: 1) { id } }\nsubscription S { ev }",
    "{ a(block: \"\"\"multi\n  line \\\"\"\" block\"\"\") # comment\n , b }",
]

private let seedBodies: [String] = [
    #"{"query":"query Q($n: Int) { a(n: $n) { b } }","operationName":"Q","variables":{"n":1,"s":"x\u00e9\ud83d\ude00"},"extensions":{"persistedQuery":{"version":1,"sha256Hash":"abc"}}}"#,
    #"[{"query":"{ a }"},{"query":"mutation { b }","variables":null},{"extensions":{"persistedQuery":{"sha256Hash":"ff"}}}]"#,
    #"{"data":{"a":[1,{"b":null}]},"errors":[{"message":"m","path":["a",0,"b"],"locations":[{"line":1,"column":2}],"extensions":{"code":"X"}}]}"#,
]

private let seedQueryStrings: [String] = [
    "query=query%20Q(%24n%3AInt)%7Ba(n%3A%24n)%7D&operationName=Q&variables=%7B%22n%22%3A1%7D",
    "extensions=%7B%22persistedQuery%22%3A%7B%22sha256Hash%22%3A%22ab%22%7D%7D&query=%7Ba%7D",
]

/// One random edit: flip, insert, delete, duplicate a span, cut, or splice a token-ish byte.
private func mutate(_ input: [UInt8], _ rng: inout SplitMix) -> [UInt8] {
    var b = input
    let interesting: [UInt8] = Array("{}[]()\"\\:$@!.,#\n\r\t -0123456789eEuqy".utf8) + [0x00, 0x7F, 0x80, 0xC3, 0xFF, 0xEF]
    for _ in 0..<(1 + Int(rng.next() % 4)) {
        let n = b.count
        switch rng.next() % 7 {
        case 0 where n > 0:
            b[Int(rng.next() % UInt64(n))] ^= UInt8(truncatingIfNeeded: 1 << (rng.next() % 8))
        case 1:
            b.insert(interesting[Int(rng.next() % UInt64(interesting.count))], at: Int(rng.next() % UInt64(n + 1)))
        case 2 where n > 0:
            b.remove(at: Int(rng.next() % UInt64(n)))
        case 3 where n > 1:
            let s = Int(rng.next() % UInt64(n))
            let e = min(n, s + 1 + Int(rng.next() % 16))
            b.insert(contentsOf: b[s..<e], at: Int(rng.next() % UInt64(n)))
        case 4 where n > 0:
            b.removeLast(Int(rng.next() % UInt64(n)))
        case 5 where n > 0:
            b[Int(rng.next() % UInt64(n))] = interesting[Int(rng.next() % UInt64(interesting.count))]
        default:
            b += rng.bytes(Int(rng.next() % 8))
        }
    }
    return b
}

@Suite struct HostileInputTests {
    @Test func randomMutationsNeverCrash() {
        var rng = SplitMix(state: 0x6A09_E667_F3BC_C908)
        let limits = GraphQLLimits.standard
        var parsedDocuments = 0
        var detected = 0
        for round in 0..<30_000 {
            let doc = mutate(Array(seedDocuments[round % seedDocuments.count].utf8), &rng)
            let d = doc.withUnsafeBytes { GraphQLDocument.operation(in: $0, operationName: round % 2 == 0 ? nil : "M") }
            if case .success(let s) = d {
                parsedDocuments += 1
                #expect(s.fields.count <= limits.maxFields)
            }

            let body = mutate(Array(seedBodies[round % seedBodies.count].utf8), &rng)
            if let r = GraphQLRequest.parse(body: body, contentType: round % 5 == 0 ? "application/graphql" : "application/json") {
                detected += 1
                #expect(r.operations.count <= limits.maxBatch && !r.operations.isEmpty)
                #expect(r.summary().utf8.count <= 512)
            }
            let resp = GraphQLResponse.parse(body: body)
            #expect(resp.results.count >= 1 || resp.batchCount == 0)
            #expect(resp.results.allSatisfy { $0.errors.count <= limits.maxErrors })

            let q = mutate(Array(seedQueryStrings[round % seedQueryStrings.count].utf8), &rng)
            _ = q.withUnsafeBytes { GraphQLRequest.parse(queryString: $0) }
        }
        // The mutations keep a good share valid, so the deep paths ran too.
        #expect(parsedDocuments > 1000)
        #expect(detected > 1000)
    }

    @Test func randomBytesNeverCrash() {
        var rng = SplitMix(state: 42)
        for _ in 0..<5000 {
            let b = rng.bytes(Int(rng.next() % 256))
            _ = b.withUnsafeBytes { GraphQLDocument.operation(in: $0) }
            _ = GraphQLRequest.parse(body: [UInt8(ascii: "{")] + b, contentType: nil)
            _ = GraphQLResponse.parse(body: b)
            _ = b.withUnsafeBytes { GraphQLRequest.parse(queryString: $0) }
        }
    }

    @Test func everyPrefixOfValidInputs() {
        // Truncation at every byte: the cut documents and bodies of a short read.
        for s in seedDocuments + seedBodies {
            let b = Array(s.utf8)
            for n in 0...b.count {
                let p = Array(b[0..<n])
                _ = p.withUnsafeBytes { GraphQLDocument.operation(in: $0, operationName: "Q") }
                _ = GraphQLRequest.parse(body: p, contentType: "application/json")
                _ = GraphQLResponse.parse(body: p)
            }
        }
    }

    @Test func oversizedInputsAreRefusedByTheCap() {
        var limits = GraphQLLimits()
        limits.maxDocumentBytes = 1000
        let big = "{ " + String(repeating: "a ", count: 600) + "}"
        if case .failure(let e) = GraphQLDocument.operation(in: big, limits: limits) {
            #expect(e.message == "the document is larger than 1000 bytes")
        } else {
            Issue.record("a document over the cap parsed")
        }
        let body = #"{"query":""# + big + #""}"#
        #expect(GraphQLRequest.parse(body: Array(body.utf8), contentType: nil, limits: limits) == nil)
        #expect(GraphQLResponse.parse(body: Array(body.utf8), limits: limits).results[0].error
            == "the body is larger than 1000 bytes")
    }
}
