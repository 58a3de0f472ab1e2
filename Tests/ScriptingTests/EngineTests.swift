import Host
import Scripting
import Testing

/// The Duktape heap alone: values both ways, helpers, and the limits that stop a script.
@Suite struct EngineTests {
    @Test func callsFunctionsWithEntriesAndReturnsObjects() throws {
        let engine = try DuktapeEngine(limits: ScriptLimits())
        try engine.run(source: "function f(e, n) { return {path: e.request.path, twice: n * 2}; }", name: "t")
        let out = try engine.call("f", [.json(#"{"request":{"path":"/a"}}"#), .number(21)])
        #expect(out == .json(#"{"path":"/a","twice":42}"#))
        #expect(engine.hasFunction("f"))
        #expect(!engine.hasFunction("g"))
        #expect(try engine.call("g", []) == .undefined)
    }

    @Test(arguments: [
        #"{"s":"plain","e":"a\"b\\c\/d\b\f\n\r\t","u":"\u00e9\u20ac\ud83d\ude00 é €","k":{"__proto__":1,"0":[]},"z":"x\\"}"#,
        #"["\"","\\\\","a\\","\n\n","\u0041"]"#,
        #"[0,-0,1,-1,0.1,0.320,1e21,1.5e-7,-2.5E+3,123456789012345,1234567890123456789,9007199254740992,1795933111382]"#,
        #" { "a" : [ true , false , null , [ ] , { } ] , "b" : "" } "#, #""text""#, "42", "null", "[]",
    ])
    func jsonPassedInIsTheValueJSONParseMakes(_ text: String) throws {
        // Arguments as JSON are decoded by the C layer's own decoder (Sources/CDuktape).
        let engine = try DuktapeEngine(limits: ScriptLimits())
        try engine.run(source: """
            function same(a, b) {
              if (typeof a !== typeof b || (a === null) !== (b === null)) return false;
              if (typeof a === 'number') return a === b ? (a !== 0 || 1 / a === 1 / b) : false;
              if (typeof a !== 'object' || a === null) return a === b;
              if (Array.isArray(a) !== Array.isArray(b)) return false;
              if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
              var ka = Object.getOwnPropertyNames(a), kb = Object.getOwnPropertyNames(b);
              if (ka.join('\\u0000') !== kb.join('\\u0000')) return false;
              for (var i = 0; i < ka.length; i++) if (!same(a[ka[i]], b[ka[i]])) return false;
              return true;
            }
            function f(value, text) { return same(value, JSON.parse(text)); }
            """, name: "t")
        #expect(try engine.call("f", [.json(text), .string(text)]) == .bool(true), "\(text)")
    }

    @Test func numbersPassedInAreCorrectlyRounded() throws {
        // 2^53 + 1 lies halfway between two doubles: round to even, 2^53 (Duktape's
        // own JSON.parse gives 2^53 + 2 here).
        let engine = try DuktapeEngine(limits: ScriptLimits())
        try engine.run(source: "function f(v) { return v[0] === 9007199254740992 && v[1] === 0.1 + 0.2 - 0.2; }", name: "t")
        #expect(try engine.call("f", [.json("[9007199254740993,0.10000000000000003]")]) == .bool(true))
    }

    @Test func badJSONPassedInStillThrowsJSONParsesError() throws {
        let engine = try DuktapeEngine(limits: ScriptLimits())
        try engine.run(source: "function f(v) { return v; }", name: "t")
        for bad in [#"{"a":}"#, "[1,]", #""unterminated"#, "01x", "{} {}"] {
            #expect(throws: ScriptFailure.self, "\(bad)") { try engine.call("f", [.json(bad)]) }
        }
    }

    @Test func helpersSeeArgumentsAndTheirErrorsAreCatchable() throws {
        let engine = try DuktapeEngine(limits: ScriptLimits())
        engine.install([
            ("x.join", { args in .string(args.map(\.text).joined(separator: "|")) }),
            ("x.fail", { _ throws(HelperError) in throw HelperError("no such thing") }),
        ])
        try engine.run(source: """
            function f() {
              var caught = '';
              try { x.fail(); } catch (e) { caught = e.message; }
              return x.join('a', 1, true, null, {k: [1]}) + ' / ' + caught;
            }
            """, name: "t")
        #expect(try engine.call("f", []) == .string(#"a|1|true|null|{"k":[1]} / no such thing"#))
    }

    @Test func anEndlessLoopIsStoppedEvenWhenItCatches() throws {
        let engine = try DuktapeEngine(limits: ScriptLimits(callBudgetMs: 200))
        try engine.run(source: "function spin() { for (;;) { try { for (;;) {} } catch (e) {} } }", name: "t")
        let started = monotonicNanoseconds()
        #expect(throws: ScriptFailure.timedOut(budgetMs: 200)) { try engine.call("spin", []) }
        #expect(monotonicNanoseconds() - started < 3_000_000_000)
    }

    @Test func allocationBeyondTheCapIsStopped() throws {
        let engine = try DuktapeEngine(limits: ScriptLimits(memoryBytes: 8 << 20, callBudgetMs: 5000))
        try engine.run(source: "var keep = []; function grow() { for (;;) keep.push(new Array(1000).join('x') + keep.length); }",
                       name: "t")
        #expect(throws: ScriptFailure.outOfMemory(limitBytes: 8 << 20)) { try engine.call("grow", []) }
        #expect(engine.memoryPeak <= 8 << 20)
    }

    @Test func aThrowReportsItsMessageAndLine() throws {
        let engine = try DuktapeEngine(limits: ScriptLimits())
        try engine.run(source: "function f() {\n  throw new Error('boom');\n}", name: "thrower.js")
        do {
            _ = try engine.call("f", [])
            Issue.record("no throw")
        } catch {
            guard case .thrown(let text) = error else { Issue.record("\(error)"); return }
            #expect(text.contains("boom"))
            #expect(text.contains("thrower.js:2"))
        }
        // A syntax error is reported, not fatal.
        #expect(throws: ScriptFailure.self) { try engine.run(source: "function (", name: "bad.js") }
    }
}
