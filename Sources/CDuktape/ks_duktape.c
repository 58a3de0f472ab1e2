// Duktape built from Debian's own amalgamated source (package duktape-dev,
// /usr/share/duktape) with the two options Debian's libduktape leaves out: the
// bytecode interrupt counter and the execution timeout check. Without them a
// script looping with no allocation could never be stopped short of killing
// its thread. See docs/scripting.md, "Stopping scripts".
#define DUK_COMPILING_DUKTAPE
#include "/usr/share/duktape/duk_config.h"
#define DUK_USE_INTERRUPT_COUNTER
#define DUK_USE_EXEC_TIMEOUT_CHECK(udata) ks_duk_check_timeout(udata)
int ks_duk_check_timeout(void *udata);
// Duktape's regexp executor never reaches the interrupt check (it caps itself
// at 1e9 steps, DUK_RE_EXECUTE_STEPS_LIMIT, a constant duktape.c defines for
// itself), but every step that recurses (each backtracking point) and every
// call checks the native stack through this macro first. It is expanded inside
// duk_native_stack_check(thr), so `thr` is in scope: the same deadline check,
// reading the clock every 1024 checks; past the deadline it throws a RangeError.
#define DUK_USE_NATIVE_STACK_CHECK() ks_duk_check_native(thr->heap->heap_udata)
int ks_duk_check_native(void *udata);
#include "/usr/share/duktape/duktape.c"

#include "include/ks_duktape.h"
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t ks_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int ks_duk_check_timeout(void *udata) {
    ks_duk_budget *budget = (ks_duk_budget *) udata;
    if (budget == NULL || budget->deadline_ns == 0) return 0;
    if (budget->timed_out) return 1;
    if (ks_now_ns() > budget->deadline_ns) {
        budget->timed_out = 1;
        return 1;
    }
    return 0;
}

int ks_duk_check_native(void *udata) {
    ks_duk_budget *budget = (ks_duk_budget *) udata;
    if (budget == NULL || budget->deadline_ns == 0) return 0;
    if (budget->timed_out) return 1;
    if ((++budget->native_checks & 1023) != 0) return 0;
    return ks_duk_check_timeout(udata);
}

// Every block carries its size in a header, so frees and reallocs keep the count exact.
typedef union { size_t size; max_align_t align; } ks_header;

static void *ks_alloc(void *udata, duk_size_t size) {
    ks_duk_budget *budget = (ks_duk_budget *) udata;
    if (size == 0) return NULL;
    size_t total = size + sizeof(ks_header);
    if (total < size || budget->used_bytes + total > budget->limit_bytes) {
        budget->refused_allocation = 1;
        return NULL;
    }
    ks_header *h = (ks_header *) malloc(total);
    if (h == NULL) return NULL;
    h->size = size;
    budget->used_bytes += total;
    if (budget->used_bytes > budget->peak_bytes) budget->peak_bytes = budget->used_bytes;
    return h + 1;
}

static void ks_free(void *udata, void *ptr) {
    ks_duk_budget *budget = (ks_duk_budget *) udata;
    if (ptr == NULL) return;
    ks_header *h = ((ks_header *) ptr) - 1;
    budget->used_bytes -= h->size + sizeof(ks_header);
    free(h);
}

static void *ks_realloc(void *udata, void *ptr, duk_size_t size) {
    ks_duk_budget *budget = (ks_duk_budget *) udata;
    if (ptr == NULL) return ks_alloc(udata, size);
    if (size == 0) {
        ks_free(udata, ptr);
        return NULL;
    }
    ks_header *h = ((ks_header *) ptr) - 1;
    size_t old = h->size;
    size_t total = size + sizeof(ks_header);
    if (total < size || (size > old && budget->used_bytes + (size - old) > budget->limit_bytes)) {
        budget->refused_allocation = 1;
        return NULL;
    }
    ks_header *n = (ks_header *) realloc(h, total);
    if (n == NULL) return NULL;
    n->size = size;
    budget->used_bytes = budget->used_bytes - old + size;
    if (budget->used_bytes > budget->peak_bytes) budget->peak_bytes = budget->used_bytes;
    return n + 1;
}

// An error Duktape cannot throw (outside any protected call): every entry point
// below is protected, so reaching this is a bug; abort loudly rather than run on.
static void ks_fatal(void *udata, const char *msg) {
    (void) udata;
    fprintf(stderr, "kubeshark scripting: fatal Duktape error: %s\n", msg ? msg : "(no message)");
    abort();
}

duk_context *ks_duk_create(ks_duk_budget *budget) {
    return duk_create_heap(ks_alloc, ks_realloc, ks_free, budget, ks_fatal);
}

void ks_duk_destroy(duk_context *ctx) {
    if (ctx == NULL) return;
    ks_duk_budget *budget = ks_duk_budget_of(ctx);
    // Finalizers may run while the heap is torn down; never let them loop.
    if (budget) {
        budget->timed_out = 0;
        budget->deadline_ns = ks_now_ns() + 100000000LL;
    }
    duk_destroy_heap(ctx);
}

ks_duk_budget *ks_duk_budget_of(duk_context *ctx) {
    duk_memory_functions funcs;
    duk_get_memory_functions(ctx, &funcs);
    return (ks_duk_budget *) funcs.udata;
}

static ks_duk_native_handler ks_handler = NULL;

void ks_duk_set_native_handler(ks_duk_native_handler handler) { ks_handler = handler; }

// JSON the host made (entries, helper results) decoded straight into values:
// the same values JSON.parse makes for valid JSON (raw control characters in a
// string, which it refuses, pass here), without its two slow paths for entries
// (every number goes through Duktape's bignum parser, duk__dragon4_*, and every
// string through a temporary buffer). Anything unexpected (bad syntax, deep
// nesting, a long number) leaves the stack as it was and returns 0: the caller
// then lets JSON.parse decode it, or report its error.
typedef struct { const unsigned char *p, *end; int depth; } ks_json;

static locale_t ks_c_locale;
static pthread_once_t ks_c_locale_once = PTHREAD_ONCE_INIT;
static void ks_make_c_locale(void) { ks_c_locale = newlocale(LC_ALL_MASK, "C", (locale_t) 0); }

static void ks_json_space(ks_json *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++;
}

static int ks_json_hex(const unsigned char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return 0;
        v = (v << 4) | d;
    }
    *out = v;
    return 1;
}

// Pushes the string whose opening quote is at j->p.
static int ks_json_string(duk_context *ctx, ks_json *j) {
    const unsigned char *start = ++j->p, *q = start;
    // The closing quote: the first not escaped (memchr, not a loop over every
    // byte of a body); most strings have no backslash at all.
    int escaped = 0;
    for (;;) {
        const unsigned char *quote = (const unsigned char *) memchr(q, '"', (size_t) (j->end - q));
        if (quote == NULL) return 0;
        const unsigned char *slash = (const unsigned char *) memchr(q, '\\', (size_t) (quote - q));
        if (slash == NULL) { q = quote; break; }
        escaped = 1;
        q = slash + 2;
        if (q > j->end) return 0;
    }
    j->p = q + 1;
    if (!escaped) {
        duk_push_lstring(ctx, (const char *) start, (duk_size_t) (q - start));
        return 1;
    }
    // Every escape is at least as long as what it stands for (\uXXXX: 6 bytes
    // for at most 3), so the text fits in its own length.
    unsigned char *out = (unsigned char *) duk_push_buffer_raw(ctx, (duk_size_t) (q - start), DUK_BUF_FLAG_NOZERO);
    unsigned char *o = out;
    const unsigned char *s = start;
    while (s < q) {
        const unsigned char *slash = (const unsigned char *) memchr(s, '\\', (size_t) (q - s));
        size_t run = (size_t) ((slash ? slash : q) - s);
        memcpy(o, s, run);
        o += run;
        if (slash == NULL) break;
        s = slash + 1;
        switch (*s) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp;
            if (q - s < 5 || !ks_json_hex(s + 1, &cp)) { duk_pop(ctx); return 0; }
            s += 4;
            // As Duktape's decoder: each escape on its own (a surrogate is 3 bytes).
            if (cp < 0x80) {
                *o++ = (unsigned char) cp;
            } else if (cp < 0x800) {
                *o++ = (unsigned char) (0xC0 | (cp >> 6));
                *o++ = (unsigned char) (0x80 | (cp & 0x3F));
            } else {
                *o++ = (unsigned char) (0xE0 | (cp >> 12));
                *o++ = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
                *o++ = (unsigned char) (0x80 | (cp & 0x3F));
            }
            break;
        }
        default: duk_pop(ctx); return 0;
        }
        s++;
    }
    duk_push_lstring(ctx, (const char *) out, (duk_size_t) (o - out));
    duk_remove(ctx, -2);
    return 1;
}

static int ks_json_number(duk_context *ctx, ks_json *j) {
    const unsigned char *s = j->p;
    int integer = 1;
    while (j->p < j->end) {
        unsigned char c = *j->p;
        if (c >= '0' && c <= '9') { j->p++; continue; }
        if (c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') { if (c != '-' || j->p != s) integer = 0; j->p++; continue; }
        break;
    }
    size_t n = (size_t) (j->p - s);
    if (n == 0 || n > 63) return 0;
    // Integers of up to 15 digits are exact in a double: no strtod needed.
    if (integer && n <= 16 && !(n == 1 && *s == '-')) {
        const unsigned char *d = s + (*s == '-');
        if ((size_t) (s + n - d) <= 15 && !(*d == '0' && s + n - d > 1)) {
            int64_t v = 0;
            for (; d < s + n; d++) v = v * 10 + (*d - '0');
            duk_push_number(ctx, (duk_double_t) (*s == '-' ? -v : v));
            if (*s == '-' && v == 0) { duk_pop(ctx); duk_push_number(ctx, -0.0); }
            return 1;
        }
    }
    char text[64];
    memcpy(text, s, n);
    text[n] = 0;
    pthread_once(&ks_c_locale_once, ks_make_c_locale);
    if (ks_c_locale == (locale_t) 0) return 0;
    char *endp = NULL;
    locale_t previous = uselocale(ks_c_locale);
    double v = strtod(text, &endp);
    uselocale(previous);
    if (endp != text + n) return 0;
    duk_push_number(ctx, v);
    return 1;
}

static int ks_json_value(duk_context *ctx, ks_json *j);

static int ks_json_container(duk_context *ctx, ks_json *j, int object) {
    if (++j->depth > 500) return 0;
    duk_require_stack(ctx, 4);
    duk_idx_t container = object ? duk_push_object(ctx) : duk_push_array(ctx);
    duk_uarridx_t index = 0;
    j->p++;
    ks_json_space(j);
    if (j->p < j->end && *j->p == (object ? '}' : ']')) {
        j->p++;
        j->depth--;
        return 1;
    }
    for (;;) {
        if (object) {
            ks_json_space(j);
            if (j->p >= j->end || *j->p != '"' || !ks_json_string(ctx, j)) return 0;
            ks_json_space(j);
            if (j->p >= j->end || *j->p != ':') return 0;
            j->p++;
        }
        if (!ks_json_value(ctx, j)) return 0;
        if (object) {
            duk_xdef_prop_wec((duk_hthread *) ctx, container);
        } else {
            duk_xdef_prop_index_wec((duk_hthread *) ctx, container, index++);
        }
        ks_json_space(j);
        if (j->p >= j->end) return 0;
        if (*j->p == ',') { j->p++; continue; }
        if (*j->p == (object ? '}' : ']')) { j->p++; break; }
        return 0;
    }
    // Values defined by index leave an array's length alone (as in Duktape's decoder).
    if (!object) duk_set_length(ctx, container, index);
    j->depth--;
    return 1;
}

static int ks_json_literal(ks_json *j, const char *word, size_t n) {
    if ((size_t) (j->end - j->p) < n || memcmp(j->p, word, n) != 0) return 0;
    j->p += n;
    return 1;
}

static int ks_json_value(duk_context *ctx, ks_json *j) {
    ks_json_space(j);
    if (j->p >= j->end) return 0;
    switch (*j->p) {
    case '{': return ks_json_container(ctx, j, 1);
    case '[': return ks_json_container(ctx, j, 0);
    case '"': return ks_json_string(ctx, j);
    case 't': if (!ks_json_literal(j, "true", 4)) return 0; duk_push_true(ctx); return 1;
    case 'f': if (!ks_json_literal(j, "false", 5)) return 0; duk_push_false(ctx); return 1;
    case 'n': if (!ks_json_literal(j, "null", 4)) return 0; duk_push_null(ctx); return 1;
    default: return ks_json_number(ctx, j);
    }
}

/// Pushes the value of the JSON text; may throw (out of memory; callers are protected).
static void ks_push_json(duk_context *ctx, const char *bytes, size_t length) {
    duk_idx_t top = duk_get_top(ctx);
    ks_json j = { (const unsigned char *) bytes, (const unsigned char *) bytes + length, 0 };
    if (ks_json_value(ctx, &j)) {
        ks_json_space(&j);
        if (j.p == j.end) return;
    }
    duk_set_top(ctx, top);
    duk_push_lstring(ctx, bytes, length);
    duk_json_decode(ctx, -1);
}

/// Pushes one value; may throw (callers are inside a protected call).
static void ks_push_value(duk_context *ctx, const ks_duk_value *v) {
    switch (v->kind) {
    case KS_VALUE_NULL: duk_push_null(ctx); break;
    case KS_VALUE_BOOL: duk_push_boolean(ctx, v->number != 0); break;
    case KS_VALUE_NUMBER: duk_push_number(ctx, v->number); break;
    case KS_VALUE_STRING: duk_push_lstring(ctx, v->bytes, v->length); break;
    case KS_VALUE_JSON: ks_push_json(ctx, v->bytes, v->length); break;
    case KS_VALUE_NUMBERS: {
        duk_idx_t arr = duk_push_array(ctx);
        for (size_t i = 0; i < v->length; i++) {
            duk_push_number(ctx, v->numbers[i]);
            duk_put_prop_index(ctx, arr, (duk_uarridx_t) i);
        }
        break;
    }
    default: duk_push_undefined(ctx); break;
    }
}

static duk_ret_t ks_native(duk_context *ctx) {
    ks_duk_value result = {0};
    if (ks_handler == NULL) return DUK_RET_ERROR;
    ks_handler(ctx, duk_get_current_magic(ctx), &result);
    // The handler has returned: throwing or pushing (which may throw) is safe now.
    if (result.kind == KS_VALUE_ERROR) {
        duk_push_error_object(ctx, DUK_ERR_ERROR, "%.*s", (int) result.length, result.bytes);
        duk_throw(ctx);
    }
    ks_push_value(ctx, &result);
    return 1;
}

static void ks_error_text(duk_context *ctx) {
    // Error objects: their stack (message and trace); anything else: its string.
    if (duk_is_error(ctx, -1)) {
        duk_safe_to_stacktrace(ctx, -1);
    } else {
        duk_safe_to_string(ctx, -1);
    }
}

static int ks_protect(duk_context *ctx, duk_safe_call_function fn, void *udata, duk_idx_t nargs, duk_idx_t nrets) {
    if (duk_safe_call(ctx, fn, udata, nargs, nrets) != DUK_EXEC_SUCCESS) {
        ks_error_text(ctx);
        return 1;
    }
    return 0;
}

struct ks_install_args { const char *path; int magic; duk_c_function fn; duk_idx_t nargs; };

static duk_ret_t ks_install_unsafe(duk_context *ctx, void *udata) {
    struct ks_install_args *a = (struct ks_install_args *) udata;
    duk_push_global_object(ctx);
    const char *p = a->path;
    for (;;) {
        const char *dot = strchr(p, '.');
        if (dot == NULL) break;
        duk_push_lstring(ctx, p, (duk_size_t) (dot - p));
        duk_dup_top(ctx);
        duk_get_prop(ctx, -3);
        if (!duk_is_object(ctx, -1)) {
            duk_pop(ctx);
            duk_push_object(ctx);
            duk_dup_top(ctx);
            duk_put_prop_lstring(ctx, -4, p, (duk_size_t) (dot - p));
        }
        duk_remove(ctx, -2);
        duk_remove(ctx, -2);
        p = dot + 1;
    }
    duk_push_c_function(ctx, a->fn, a->nargs);
    duk_set_magic(ctx, -1, a->magic);
    duk_put_prop_string(ctx, -2, p);
    duk_pop(ctx);
    return 0;
}

int ks_duk_install(duk_context *ctx, const char *path, int magic) {
    struct ks_install_args a = { path, magic, ks_native, DUK_VARARGS };
    return ks_protect(ctx, ks_install_unsafe, &a, 0, 1);
}

// Restarts the running call's deadline, while the call has restarts left and
// has not already run out of time (then it keeps failing until unwound).
static duk_ret_t ks_restart(duk_context *ctx) {
    ks_duk_budget *budget = ks_duk_budget_of(ctx);
    if (budget != NULL && budget->deadline_ns != 0 && !budget->timed_out && budget->restarts_left > 0) {
        budget->restarts_left--;
        budget->refused_allocation = 0;
        budget->deadline_ns = ks_now_ns() + budget->budget_ns;
    }
    return 0;
}

int ks_duk_install_restart(duk_context *ctx, const char *path) {
    struct ks_install_args a = { path, 0, ks_restart, 0 };
    return ks_protect(ctx, ks_install_unsafe, &a, 0, 1);
}

struct ks_eval_args { const char *source; size_t length; const char *filename; };

static duk_ret_t ks_eval_unsafe(duk_context *ctx, void *udata) {
    struct ks_eval_args *a = (struct ks_eval_args *) udata;
    duk_push_string(ctx, a->filename);
    duk_compile_lstring_filename(ctx, 0, a->source, a->length);
    duk_call(ctx, 0);
    return 1;
}

int ks_duk_eval(duk_context *ctx, const char *source, size_t length, const char *filename) {
    struct ks_eval_args a = { source, length, filename };
    return ks_protect(ctx, ks_eval_unsafe, &a, 0, 1);
}

struct ks_call_args { const char *name; const ks_duk_value *args; int nargs; int missing; };

static duk_ret_t ks_call_unsafe(duk_context *ctx, void *udata) {
    struct ks_call_args *a = (struct ks_call_args *) udata;
    duk_get_global_string(ctx, a->name);
    if (!duk_is_function(ctx, -1)) {
        a->missing = 1;
        return 1;
    }
    duk_require_stack(ctx, a->nargs);
    for (int i = 0; i < a->nargs; i++) ks_push_value(ctx, &a->args[i]);
    duk_call(ctx, a->nargs);
    return 1;
}

int ks_duk_call(duk_context *ctx, const char *name, const ks_duk_value *args, int nargs) {
    struct ks_call_args a = { name, args, nargs, 0 };
    int rc = ks_protect(ctx, ks_call_unsafe, &a, 0, 1);
    if (rc == 0 && a.missing) {
        duk_pop(ctx);
        return -1;
    }
    return rc;
}

static duk_ret_t ks_has_function_unsafe(duk_context *ctx, void *udata) {
    const char *name = (const char *) udata;
    duk_get_global_string(ctx, name);
    duk_push_boolean(ctx, duk_is_function(ctx, -1));
    return 1;
}

int ks_duk_has_function(duk_context *ctx, const char *name) {
    int is = 0;
    if (ks_protect(ctx, ks_has_function_unsafe, (void *) name, 0, 1) == 0) is = duk_get_boolean(ctx, -1);
    duk_pop(ctx);
    return is;
}

static duk_ret_t ks_json_encode(duk_context *ctx, void *udata) {
    (void) udata;
    duk_json_encode(ctx, -1);
    return 1;
}

void ks_duk_read(duk_context *ctx, duk_idx_t index, ks_duk_value *out) {
    memset(out, 0, sizeof(*out));
    index = duk_normalize_index(ctx, index);
    switch (duk_get_type(ctx, index)) {
    case DUK_TYPE_NULL: out->kind = KS_VALUE_NULL; return;
    case DUK_TYPE_BOOLEAN: out->kind = KS_VALUE_BOOL; out->number = duk_get_boolean(ctx, index); return;
    case DUK_TYPE_NUMBER: out->kind = KS_VALUE_NUMBER; out->number = duk_get_number(ctx, index); return;
    case DUK_TYPE_STRING:
        out->kind = KS_VALUE_STRING;
        out->bytes = duk_get_lstring(ctx, index, &out->length);
        return;
    case DUK_TYPE_OBJECT:
    case DUK_TYPE_BUFFER:
    case DUK_TYPE_LIGHTFUNC: {
        if (duk_is_function(ctx, index)) { out->kind = KS_VALUE_FUNCTION; return; }
        if (!duk_check_stack(ctx, 2)) { out->kind = KS_VALUE_UNDEFINED; return; }
        duk_dup(ctx, index);
        if (duk_safe_call(ctx, ks_json_encode, NULL, 1, 1) != DUK_EXEC_SUCCESS) {
            // A cycle, or the memory cap: describe it rather than fail.
            ks_error_text(ctx);
            duk_replace(ctx, index);
            out->kind = KS_VALUE_STRING;
            out->bytes = duk_get_lstring(ctx, index, &out->length);
            return;
        }
        duk_replace(ctx, index);
        if (!duk_is_string(ctx, index)) { out->kind = KS_VALUE_UNDEFINED; return; }
        out->kind = KS_VALUE_JSON;
        out->bytes = duk_get_lstring(ctx, index, &out->length);
        return;
    }
    default: out->kind = KS_VALUE_UNDEFINED; return;
    }
}

duk_idx_t ks_duk_top(duk_context *ctx) { return duk_get_top(ctx); }

void ks_duk_pop_to(duk_context *ctx, duk_idx_t top) {
    if (duk_get_top(ctx) > top) duk_set_top(ctx, top);
}

void ks_duk_push_bool(duk_context *ctx, int value) { duk_push_boolean(ctx, value); }

void ks_duk_gc(duk_context *ctx) {
    duk_gc(ctx, 0);
    duk_gc(ctx, 0);
}
