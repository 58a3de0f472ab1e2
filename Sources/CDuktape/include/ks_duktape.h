// A thin C layer over Duktape for the Scripting module: heaps with a byte cap
// and a deadline, protected evaluation and calls, and one dispatcher for every
// native (Swift) helper, so no longjmp ever crosses a Swift frame.
#ifndef KS_DUKTAPE_H
#define KS_DUKTAPE_H

#include <duktape.h>
#include <stddef.h>
#include <stdint.h>

/// What one heap may use, and what it used. Lives as long as its heap.
typedef struct ks_duk_budget {
    /// Most bytes the heap may hold (its allocations, headers included).
    size_t limit_bytes;
    size_t used_bytes;
    size_t peak_bytes;
    /// Monotonic nanoseconds after which running code is stopped; 0: no deadline.
    int64_t deadline_ns;
    /// One call's budget, and how many times the running call may restart its
    /// deadline (a batch call: once per item, from the prelude's loop).
    int64_t budget_ns;
    int64_t restarts_left;
    /// Counts native-stack checks (calls, regexp steps), to read the clock every so many.
    uint32_t native_checks;
    /// Set when an allocation was refused for the cap / when the deadline passed.
    int refused_allocation;
    int timed_out;
    /// The Swift object owning the heap (opaque to C).
    void *owner;
} ks_duk_budget;

/// A value passed to or from a script, in C terms. `bytes` is not
/// NUL-terminated; it stays valid while its owner keeps it (Swift for
/// arguments and helper results, the value stack for results read back).
typedef struct ks_duk_value {
    int kind;
    double number;
    const char *bytes;
    /// Bytes of `bytes`, or the count of `numbers`.
    size_t length;
    const double *numbers;
} ks_duk_value;

enum {
    KS_VALUE_UNDEFINED = 0,
    KS_VALUE_NULL = 1,
    KS_VALUE_BOOL = 2,
    KS_VALUE_NUMBER = 3,
    KS_VALUE_STRING = 4,
    /// JSON text, parsed into a value when pushed; objects read back as JSON.
    KS_VALUE_JSON = 5,
    /// An array of `length` numbers.
    KS_VALUE_NUMBERS = 6,
    /// From a helper: throw an Error with `bytes` as its message.
    KS_VALUE_ERROR = 7,
    /// Read back: a function (not convertible).
    KS_VALUE_FUNCTION = 8,
};

/// A native helper: reads its arguments from the stack (with `ks_duk_read`),
/// and describes its result (or error) in `result`, which C then pushes, so no
/// Duktape error ever unwinds through the handler. `magic` names the helper.
typedef void (*ks_duk_native_handler)(duk_context *ctx, int magic, ks_duk_value *result);

/// Creates a heap whose allocations count against `budget` (which must outlive it).
duk_context *ks_duk_create(ks_duk_budget *budget);
void ks_duk_destroy(duk_context *ctx);
/// The budget a heap was created with.
ks_duk_budget *ks_duk_budget_of(duk_context *ctx);

/// Sets the one handler every native helper goes through (once per process).
void ks_duk_set_native_handler(ks_duk_native_handler handler);

/// Every call below is protected: it returns 0 on success, or 1 with an error
/// text (message and stack trace) on top of the stack.

/// Installs a native helper as the function at a dotted global path ("file.write").
int ks_duk_install(duk_context *ctx, const char *path, int magic);
/// Installs, at a dotted global path, the function that restarts the running
/// call's deadline (at most `restarts_left` times; see the prelude's item loops).
int ks_duk_install_restart(duk_context *ctx, const char *path);
/// Compiles and runs `source` as a program named `filename`; its result is left on the stack.
int ks_duk_eval(duk_context *ctx, const char *source, size_t length, const char *filename);
/// Calls the global function `name` with `args`; its result is left on the stack.
/// Returns -1 (nothing pushed) when the global is not a function.
int ks_duk_call(duk_context *ctx, const char *name, const ks_duk_value *args, int nargs);
/// 1 when the global `name` is a function; 0 when not (or looking failed).
int ks_duk_has_function(duk_context *ctx, const char *name);
/// Describes the value at `index` (objects and arrays are replaced by their JSON text first).
/// Never throws; the bytes stay valid while the value stays on the stack.
void ks_duk_read(duk_context *ctx, duk_idx_t index, ks_duk_value *out);
/// The number of values on the stack, and popping (never throws).
duk_idx_t ks_duk_top(duk_context *ctx);
void ks_duk_pop_to(duk_context *ctx, duk_idx_t top);
/// Pushes a boolean (never throws: the stack always has room for one value after a call).
void ks_duk_push_bool(duk_context *ctx, int value);
/// Runs a full garbage collection.
void ks_duk_gc(duk_context *ctx);

#endif
