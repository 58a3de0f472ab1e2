import Host
import Scripting
import Testing

/// Scripts written to hurt the host: each call must end (a value or a
/// failure) within its budget, with the process and the heap's cap intact.
@Suite struct HostileScriptTests {
    static let limits = ScriptLimits(memoryBytes: 16 << 20, callBudgetMs: 300)

    /// Loads `source` and calls `f`, returning what happened; the whole thing must end in time.
    static func attempt(_ source: String, seconds: Double = 5) throws -> Result<ScriptValue, ScriptFailure> {
        let engine = try DuktapeEngine(limits: limits)
        engine.install([("host.echo", { args in args.first ?? .undefined })])
        let started = monotonicNanoseconds()
        defer {
            let elapsed = Double(monotonicNanoseconds() - started) / 1e9
            #expect(elapsed < seconds, "took \(elapsed) s: \(source)")
            #expect(engine.memoryPeak <= limits.memoryBytes)
        }
        do throws(ScriptFailure) {
            try engine.run(source: source, name: "hostile")
            _ = engine.hasFunction("f")
            return .success(try engine.call("f", [.json(#"{"a":[1,2,{"b":"c"}]}"#)]))
        } catch {
            return .failure(error)
        }
    }

    @Test(arguments: [
        // Loops that catch the timeout, in finally blocks, in getters and toJSON of the result.
        "function f() { for (;;) { try { for (;;) {} } finally { for (;;) {} } } }",
        "function f() { return { toJSON: function () { for (;;) {} } }; }",
        "function f() { var o = {}; Object.defineProperty(o, 'x', { enumerable: true, get: function () { for (;;) {} } }); return o; }",
        "Object.defineProperty(this, 'f', { get: function () { for (;;) {} } });",
        "function f() { Duktape.fin({}, function () { for (;;) {} }); for (var i = 0; i < 1e5; i++) ({}); return 1; }",
        // Memory: doubling strings, arrays, objects, a cycle returned.
        "function f() { var s = 'x'; for (;;) s += s; }",
        "function f() { var a = []; for (;;) a.push(a.length); }",
        "function f() { var o = {}; for (var i = 0; ; i++) o['k' + i] = new Array(100); }",
        "function f() { var o = {}; o.self = o; return o; }",
        // Recursion, odd throws, the helpers replaced.
        "function f() { return f(); }",
        "function f() { throw null; }",
        "function f() { throw { toString: function () { for (;;) {} } }; }",
        "function f() { host.echo = null; return host.echo(1); }",
        "function f(e) { return host.echo(e, e, e, new Array(1e6).join('y')); }",
        "function f() { return host.echo({ toJSON: function () { for (;;) {} } }); }",
        // Syntax the engine must refuse cleanly.
        "function f( { ", "\u{0}\u{1}\u{2}", "var x = /(/;", String(repeating: "(", count: 100_000),
    ])
    func hostileScriptEnds(_ source: String) throws {
        _ = try Self.attempt(source)
    }

    @Test func aCatastrophicRegexIsStoppedOrEnds() throws {
        // Duktape's regexp engine counts its own steps (a cap of 1e9, with no
        // deadline check); an exponential pattern on a short input must still end.
        let r = try Self.attempt("function f() { return /^(a+)+$/.test(new Array(24).join('a') + '!'); }", seconds: 30)
        if case .success(let v) = r { #expect(v == .bool(false)) }
    }

    @Test func aCatastrophicRegexIsStoppedAtTheDeadline() throws {
        // /(a+)+$/ on 35 a's and a 'b' backtracks about 2^35 times: far past the
        // budget, and past what the executor's own 1e9-step cap would stop in
        // time. Its backtracking steps check the call's deadline (Sources/CDuktape).
        let started = monotonicNanoseconds()
        let r = try Self.attempt("function f() { return /(a+)+$/.test(new Array(36).join('a') + 'b'); }", seconds: 3)
        #expect(r == .failure(.timedOut(budgetMs: Self.limits.callBudgetMs)))
        #expect(monotonicNanoseconds() - started < 2_000_000_000)
        // Caught inside the script, in a loop: the timeout still ends the call.
        let caught = try Self.attempt(
            "function f() { for (;;) { try { 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab'.replace(/(a+)+$/, 'x'); } catch (e) {} } }",
            seconds: 3)
        #expect(caught == .failure(.timedOut(budgetMs: Self.limits.callBudgetMs)))
    }

    @Test func randomProgramsNeverHurtTheHost() throws {
        let pieces = [
            "for(;;){}", "while(true){x.push(x)}", "x = x.concat(x);", "throw new Error('e');", "try{", "}catch(e){}",
            "host.echo(x);", "return x;", "x += 'ab';", "function g(){return g()}", "g();", "{", "}", "(", ")",
            "var x = [1];", "x = JSON.stringify(x);", "x = JSON.parse('[1,2]');", "new RegExp(x);", "if (x) {", ";",
            "Duktape.fin(x, function(){});", "x = String.fromCharCode(0xD800);", "delete this.host;",
        ]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<60 {
            var body = ""
            for _ in 0..<Int.random(in: 1...12, using: &rng) { body += pieces.randomElement(using: &rng)! + " " }
            _ = try Self.attempt("var x = [1]; function f(e) { " + body + " }")
        }
    }
}
