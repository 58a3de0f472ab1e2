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
