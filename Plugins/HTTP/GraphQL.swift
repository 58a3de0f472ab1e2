// GraphQL over HTTP/1.x: which exchanges carry GraphQL (GraphQLSupport reads
// the body or the query string) and what their responses say. An exchange
// whose request is GraphQL becomes an entry of the plugin's `graphql`
// protocol with every HTTP field kept, plus request.graphql / response.graphql.

import GraphQLSupport
import PluginKit

extension HTTP1Dissector {
    /// Index of the `graphql` protocol in `metadata.protocols`.
    static let graphQLProtocolIndex: UInt32 = 2

    /// The GraphQL request `m` carries: its body (JSON or `application/graphql`,
    /// whatever the method) or, for a GET, its query string. Nil when it is not
    /// GraphQL, when the body was cut at the display cap or could not be decoded.
    func graphQLRequest(_ m: Message) -> GraphQLRequest? {
        m.head.withUnsafeBytes { h -> GraphQLRequest? in
            if m.payloadSize > 0 {
                guard m.coding == .identity || m.decodedOK, !m.shownTruncated else { return nil }
                let contentType = m.contentType.map { h[span: $0] }
                return m.display.withUnsafeBytes { GraphQLRequest.parse(body: $0, contentType: contentType) }
            }
            guard h[span: m.method].elementsEqual(staticBytes("GET")) else { return nil }
            let target = h[span: m.target]
            guard let q = TargetParts(target).query else { return nil }
            return GraphQLRequest.parse(queryString: slice(target, q.0, q.1))
        }
    }

    /// What the response to a GraphQL request says.
    func graphQLResponse(_ m: Message) -> GraphQLResponse {
        guard m.coding == .identity || m.decodedOK else {
            return .unreadable("the body's content coding could not be decoded")
        }
        guard !m.shownTruncated else {
            return .unreadable("the body is larger than the \(limits.maxBodyBytes) bytes kept")
        }
        return m.display.withUnsafeBytes { GraphQLResponse.parse(body: $0) }
    }
}
