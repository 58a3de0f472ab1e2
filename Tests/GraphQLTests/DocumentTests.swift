// The lexer and parser on the October 2021 spec's examples, every value kind,
// operation selection and syntax errors with their positions.

import GraphQLSupport
import Testing

private func op(_ text: String, _ name: String? = nil) throws -> GraphQLOperationSummary {
    try GraphQLDocument.operation(in: text, operationName: name).get()
}

private func syntaxError(_ text: String, _ name: String? = nil) -> GraphQLSyntaxError? {
    if case .failure(let e) = GraphQLDocument.operation(in: text, operationName: name) { return e }
    return nil
}

private func names(_ s: GraphQLOperationSummary) -> [String] { s.fields.map(\.text) }

@Suite struct DocumentTests {
    @Test func shorthandQuery() throws {
        // Spec 2.3: "{ user(id: 4) { name } }" is a query.
        let s = try op("{\n  user(id: 4) {\n    name\n  }\n}")
        #expect(s.operationType == .query)
        #expect(s.name == nil)
        #expect(names(s) == ["user"])
    }

    @Test func mutationFromSpec() throws {
        let s = try op("mutation {\n  likeStory(storyID: 12345) {\n    story {\n      likeCount\n    }\n  }\n}")
        #expect(s.operationType == .mutation)
        #expect(names(s) == ["likeStory"])
    }

    @Test func subscription() throws {
        let s = try op("subscription OnComment($id: ID!) { commentAdded(postId: $id) { id body } }")
        #expect(s.operationType == .subscription)
        #expect(s.name == "OnComment")
        #expect(names(s) == ["commentAdded"])
    }

    @Test func fragmentsFromSpec() throws {
        // Spec 2.8: fragments are checked; the top-level field is user.
        let text = """
            query withNestedFragments {
              user(id: 4) {
                friends(first: 10) {
                  ...friendFields
                }
                mutualFriends(first: 10) {
                  ...friendFields
                }
              }
            }

            fragment friendFields on User {
              id
              name
              ...standardProfilePic
            }

            fragment standardProfilePic on User {
              profilePic(size: 50)
            }
            """
        let s = try op(text)
        #expect(s.name == "withNestedFragments")
        #expect(names(s) == ["user"])
        #expect(s.fragmentCount == 2)
    }

    @Test func aliasesVariablesDirectives() throws {
        let s = try op("""
            query getZuckProfile($devicePicSize: Int = 60, $skip: Boolean! @deprecated) {
              zuck: user(id: 4) { id name profilePic(size: $devicePicSize) }
              experimentalField @skip(if: $skip)
              me @include(if: true) { id }
            }
            """)
        #expect(s.fields == [GraphQLField(name: "user", alias: "zuck"), GraphQLField(name: "experimentalField"),
                             GraphQLField(name: "me")])
        #expect(names(s) == ["zuck: user", "experimentalField", "me"])
    }

    @Test func topLevelFragmentsResolvedOneLevel() throws {
        // Inline fragment and spread at the top: their own fields come up; deeper ones do not.
        let s = try op("""
            query Q { ... on Query { a b: c ... on Query { deep } } ...F d a }
            fragment F on Query { e f { g } ...G }
            fragment G on Query { notFollowed }
            """)
        #expect(names(s) == ["a", "b: c", "e", "f", "d"])
    }

    @Test func inlineFragmentTypingFromSpec() throws {
        let s = try op("""
            query inlineFragmentTyping {
              profiles(handles: ["zuck", "coca-cola"]) {
                handle
                ... on User { friends { count } }
                ... on Page { likers { count } }
              }
            }
            """)
        #expect(names(s) == ["profiles"])
    }

    @Test func everyValueKind() throws {
        let s = try op(#"""
            query ($v: [Int!]! = [1, 2]) {
              f(int: -0, neg: -12, float: 1.5e-3, exp: 2E+10, str: "a\"b\\c\u00e9\n\t/",
                block: """ block "" \""" with
                  lines """, yes: true, no: false, nothing: null, enumValue: RED,
                list: [1, [2, [3]], "x"], obj: {a: {b: [$v]}, c: null}, variable: $v)
            }
            """#)
        #expect(names(s) == ["f"])
    }

    @Test func commentsCommasAndBOM() throws {
        let s = try op("\u{FEFF}# leading comment\r\nquery Q, { a, , b # trailing\r c }")
        #expect(s.name == "Q")
        #expect(names(s) == ["a", "b", "c"])
    }

    @Test func operationNameChoosesTheOperation() throws {
        let doc = "query A { a } mutation B { b } fragment F on T { x }"
        #expect(try op(doc, "B").operationType == .mutation)
        #expect(try op(doc, "A").operationType == .query)
        #expect(try op(doc, "A").operationCount == 2)
        #expect(syntaxError(doc)?.message == "the document defines 2 operations and no operationName was given")
        #expect(syntaxError(doc, "C")?.message == "no operation named 'C' in the document")
        #expect(syntaxError("fragment F on T { x }")?.message == "the document defines no operation")
    }

    @Test func keywordsAreNamesToo() throws {
        let s = try op("{ query mutation fragment on: type true(false: null) }")
        #expect(names(s) == ["query", "mutation", "fragment", "on: type", "true"])
    }

    @Test func syntaxErrorsHavePositions() {
        let e = syntaxError("query Q {\n  user(id: \n}")
        #expect(e?.line == 3)
        #expect(e?.column == 1)
        #expect(e?.message == "expected a value, found '}'")
        #expect(e?.description == "line 3, column 1: expected a value, found '}'")
        #expect(syntaxError("")?.message == "the document is empty")
        #expect(syntaxError("{ }")?.message == "expected a name, found '}'")
        #expect(syntaxError("{ a(): b }")?.message == "expected a name, found ')'")
        #expect(syntaxError("query { a } extra")?.message
            == "expected 'query', 'mutation', 'subscription', 'fragment' or '{', found 'extra'")
        #expect(syntaxError("type Query { a: Int }")?.message == "a type system definition ('type') is not executable")
        #expect(syntaxError("fragment on on T { a }")?.message == "expected a fragment name, found 'on'")
        #expect(syntaxError("query ($a: Int = $b) { a }")?.message == "a variable is not allowed in a constant value")
        #expect(syntaxError("{ a(x: 00) }")?.message == "unexpected digit after 0 in a number")
        #expect(syntaxError("{ a(x: 1.) }")?.message == "expected a digit after '.'")
        #expect(syntaxError("{ a(x: 1e) }")?.message == "expected a digit in the exponent")
        #expect(syntaxError("{ a(x: 12abc) }")?.message == "invalid number: unexpected character after it")
        #expect(syntaxError("{ a(x: 1.5.3) }")?.message == "invalid number: unexpected character after it")
        #expect(syntaxError("{ a(x: \"\\q\") }")?.message == "invalid escape sequence in a string")
        #expect(syntaxError("{ a(x: \"\\u12G4\") }")?.message == "invalid unicode escape in a string")
        #expect(syntaxError("{ a .. b }")?.message == "unexpected '.' (a spread is '...')")
        #expect(syntaxError("{ a ? }")?.message == "unexpected character 0x3F")
    }

    @Test func unterminatedStrings() {
        let e = syntaxError("{ a(x: \"abc) }")
        #expect(e?.message == "unterminated string")
        #expect(e?.column == 8)
        #expect(syntaxError("{ a(x: \"abc\n\") }")?.message == "unterminated string")
        #expect(syntaxError("{ a(x: \"\"\"abc\\\"\"\" }")?.message == "unterminated block string")
        #expect(syntaxError("{ a(x: \"abc\\")?.message == "unterminated string")
    }

    @Test func invalidUTF8() {
        // Outside strings and comments a non-ASCII byte is an error; inside them bytes pass.
        var bad = Array("{ a }".utf8)
        bad.insert(0xFF, at: 2)
        let r = bad.withUnsafeBytes { GraphQLDocument.operation(in: $0) }
        guard case .failure(let e) = r else {
            Issue.record("accepted a 0xFF byte")
            return
        }
        #expect(e.message == "unexpected non-ASCII byte 0xFF")
        #expect(e.column == 3)
        let inString: [UInt8] = Array("{ a(x: \"".utf8) + [0xC3, 0x28, 0xFF] + Array("\") # \u{1F600}\u{FF} \n b }".utf8)
        let ok = inString.withUnsafeBytes { GraphQLDocument.operation(in: $0) }
        #expect((try? ok.get())?.fields.map(\.name) == ["a", "b"])
    }

    @Test func nestingIsCapped() {
        let deep = String(repeating: "{a", count: 10_000) + String(repeating: "}", count: 10_000)
        #expect(syntaxError(deep)?.message == "nesting deeper than 64")
        let deepList = "{ a(x: " + String(repeating: "[", count: 5000) + " }"
        #expect(syntaxError(deepList)?.message == "nesting deeper than 64")
        let deepObject = "{ a(x: " + String(repeating: "{b: ", count: 5000) + " }"
        #expect(syntaxError(deepObject)?.message == "nesting deeper than 64")
        let deepType = "query ($v: " + String(repeating: "[", count: 5000) + "Int) { a }"
        #expect(syntaxError(deepType)?.message == "nesting deeper than 64")
        // 63 levels are fine.
        let ok = String(repeating: "{a", count: 63) + String(repeating: "}", count: 63)
        #expect((try? op(ok))?.fields.map(\.name) == ["a"])
    }

    @Test func hugeNumbersAndManyTokens() throws {
        let big = "{ a(x: 1" + String(repeating: "9", count: 100_000) + ", y: -9e999999999) }"
        #expect(names(try op(big)) == ["a"])
        let many = "{ " + String(repeating: "a ", count: 150_000) + "}"
        #expect(syntaxError(many)?.message == "more than 100000 tokens")
        let wide = "{ " + (0..<500).map { "f\($0)" }.joined(separator: " ") + " }"
        let s = try op(wide)
        #expect(s.fields.count == 64)
        #expect(s.fieldsTruncated)
    }
}
