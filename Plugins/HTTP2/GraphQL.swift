// GraphQL over HTTP/2: which streams carry GraphQL (GraphQLSupport reads the
// body or the query string, with the same rules as the HTTP/1 plugin) and what
// their responses say. A stream whose request is GraphQL becomes an entry of the
// plugin's `graphql` protocol with every HTTP/2 field kept, plus
// request.graphql / response.graphql. gRPC streams are never GraphQL.

import GraphQLSupport
import PluginKit

extension HTTP2Dissector {
    /// Index of the `graphql` protocol in `metadata.protocols`.
    static let graphQLProtocolIndex: UInt32 = 2

    /// The GraphQL request stream `s` carries: its body (JSON or
    /// `application/graphql`, whatever the method) or, for a GET without a
    /// body, the query string of `:path`. Nil when it is not GraphQL, for gRPC,
    /// and when the body was cut at the display cap or could not be decoded.
    /// `method` and `path` are the pseudo-header values the caller already has.
    ///
    /// Cost on other streams: an identity body that does not start with `{`
    /// or `[` costs one byte test plus a look for `content-type`; a JSON body
    /// without `uery"` one scan; a GET one scan of its query string.
    func graphQLRequest(_ s: H2Stream, method: String?, path: String?) -> GraphQLRequest? {
        guard !s.isGRPC else { return nil }
        let m = s.request
        guard m.headers.present else { return nil }
        if m.body.size > 0 {
            guard !m.body.cut else { return nil }
            let ct = m.headers.index(of: "content-type")
            if m.headers.index(of: "content-encoding") == nil {
                return m.body.raw.withUnsafeBytes { body -> GraphQLRequest? in
                    if let ct {
                        return m.headers.withField(ct) { _, v in GraphQLRequest.parse(body: body, contentType: v) }
                    }
                    return GraphQLRequest.parse(body: body, contentType: nil)
                }
            }
            // A content-coded request body (rare): decoded first.
            let d = shownBody(m)
            guard d.readable, !d.truncated else { return nil }
            return d.bytes.withUnsafeBytes { body -> GraphQLRequest? in
                if let ct {
                    return m.headers.withField(ct) { _, v in GraphQLRequest.parse(body: body, contentType: v) }
                }
                return GraphQLRequest.parse(body: body, contentType: nil)
            }
        }
        guard method == "GET", var path else { return nil }
        return path.withUTF8 { p -> GraphQLRequest? in
            guard let q = p.firstIndex(of: UInt8(ascii: "?")) else { return nil }
            let end = p[(q + 1)...].firstIndex(of: UInt8(ascii: "#")) ?? p.count
            return GraphQLRequest.parse(queryString: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: p[(q + 1)..<end])))
        }
    }

    /// What the response to a GraphQL request says, from its shown body.
    func graphQLResponse(_ body: ShownBody) -> GraphQLResponse {
        guard body.readable else { return .unreadable("the body's content coding could not be decoded") }
        guard !body.truncated else {
            return .unreadable("the body is larger than the \(limits.maxBodyBytes) bytes kept")
        }
        return body.bytes.withUnsafeBytes { GraphQLResponse.parse(body: $0) }
    }
}
