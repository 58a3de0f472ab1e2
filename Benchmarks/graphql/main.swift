// Cost of GraphQL detection per request body, release build (-O), with
// GraphQLSupport's sources compiled in. Run by Benchmarks/graphql/run.sh.

func body(_ s: String) -> [UInt8] { Array(s.utf8) }

/// A JSON object of about `n` bytes with no GraphQL in it.
func plainJSON(_ n: Int) -> [UInt8] {
    var s = "{\"items\":["
    var i = 0
    while s.utf8.count < n - 64 {
        s += "{\"id\":\(i),\"name\":\"widget \(i)\",\"tags\":[\"a\",\"b\"],\"price\":12.5},"
        i += 1
    }
    s += "{\"id\":-1}],\"total\":\(i)}"
    return body(s)
}

let cases: [(String, [UInt8], String?)] = [
    ("JSON, no GraphQL, 1 KiB", plainJSON(1024), "application/json"),
    ("JSON, no GraphQL, 64 KiB", plainJSON(64 << 10), "application/json"),
    ("form body, 1 KiB", body(String(repeating: "field=value&", count: 85)), "application/x-www-form-urlencoded"),
    ("JSON with a \"query\" object (pre-test passes), 1 KiB",
     body("{\"query\":{\"match\":{\"title\":\"kubeshark\"}},\"size\":10,\"pad\":\"" + String(repeating: "x", count: 950) + "\"}"),
     "application/json"),
    ("GraphQL JSON request, 260 B",
     body(#"{"query":"query GetUser($id: ID!) { user(id: $id) { id name friends(first: 10) { edges { node { id name } } } } viewer { id } }","operationName":"GetUser","variables":{"id":"42"}}"#),
     "application/json"),
]

let clock = ContinuousClock()
var sink = 0
print("case | ns per body | MB/s")
for (name, bytes, contentType) in cases {
    // Enough iterations for ~0.3 s.
    var iterations = 1
    while true {
        let t = clock.measure {
            for _ in 0..<iterations {
                if let r = GraphQLRequest.parse(body: bytes, contentType: contentType) { sink &+= r.operations.count }
            }
        }
        if t > .milliseconds(300) || iterations > 50_000_000 {
            let ns = Double(t.components.seconds) * 1e9 + Double(t.components.attoseconds) / 1e9
            let per = ns / Double(iterations)
            let mbs = Double(bytes.count) / per * 1e3
            print("\(name) | \(Int(per.rounded())) | \(Int(mbs.rounded()))")
            break
        }
        iterations *= 4
    }
}
if sink == 42 { print("") }
