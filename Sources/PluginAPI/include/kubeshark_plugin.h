/*
 * kubeshark_plugin.h -- the stable C ABI between the kubeshark-swift host and its
 * protocol dissector plugins.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * ABI version 1.0.
 *
 * ===========================================================================
 * THE PROMISE
 * ===========================================================================
 * - A plugin is a shared library that exports exactly one symbol:
 *
 *       const ks_plugin_descriptor *ks_plugin_v1(void);
 *
 *   The ABI major is part of the symbol name. Calling it has no side effects
 *   (no allocation the plugin cannot give back, no threads, no I/O), so a host
 *   may call it just to read metadata ("kubeshark plugins list").
 * - Every struct that crosses the boundary begins with `uint32_t struct_size`
 *   and only ever grows at its end. The writer of a struct sets struct_size to
 *   sizeof() of the struct it was compiled with; the reader never touches a
 *   field that lies beyond struct_size (use KS_HAS_FIELD).
 * - Every enumeration is a plain int32_t/uint32_t with explicit values that are
 *   never renumbered nor reused.
 * - The host accepts a plugin when the majors are equal and the plugin's minor
 *   is not newer than the host's. A refusal names the file, both versions and
 *   the reason.
 *
 * ===========================================================================
 * OWNERSHIP
 * ===========================================================================
 * - Inputs handed to a callback (chunks, flow info, strings) are owned by the
 *   caller and valid for the duration of the call only. Copy what you keep.
 * - The descriptor and everything it points to is owned by the plugin and must
 *   stay valid and unchanged until the library is unloaded.
 * - Whoever allocates frees: the plugin frees its plugin context in shutdown()
 *   and its stream state in stream_close(); the host frees entries and copies
 *   every byte given to the entry builder before the builder call returns.
 * - Strings crossing at run time are (pointer, length) pairs, not
 *   NUL-terminated, and are UTF-8 text. Descriptor metadata strings are
 *   NUL-terminated UTF-8.
 *
 * ===========================================================================
 * THREADING AND FAILURE
 * ===========================================================================
 * - One stream state is used by one thread at a time; different streams of the
 *   same plugin may be driven from different threads at once. init() and
 *   shutdown() are never concurrent with anything else of the same plugin.
 *   probe() and stream_open() may run concurrently on the same plugin context
 *   unless the plugin sets KS_PLUGIN_SINGLE_THREADED.
 * - Callbacks never block (no I/O, no sleeping, no locks held for long).
 * - Nothing unwinds across the boundary: no C++ exceptions, no longjmp, no
 *   Swift errors, no Rust panics. Report trouble through return values,
 *   violation() and log().
 */
#ifndef KUBESHARK_PLUGIN_H
#define KUBESHARK_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version of this header. A plugin records the version it was built
 * against in its descriptor's abi_major and abi_minor. */
#define KS_ABI_MAJOR 1
#define KS_ABI_MINOR 0

/* Name of the one symbol a plugin exports, as a string for dlsym(). */
#define KS_PLUGIN_ENTRY_SYMBOL "ks_plugin_v1"

/* True when `ptr` (a struct with struct_size first) is large enough to hold
 * `field`. Use it before reading any field added after ABI 1.0. */
#define KS_HAS_FIELD(ptr, type, field) \
    ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* ---------------------------------------------------------------------------
 * Status codes (ks_status). 0 is success, negatives are errors. Since 1.0.
 * ------------------------------------------------------------------------- */
typedef int32_t ks_status;
#define KS_OK             0
#define KS_E_INVALID     -1  /* bad argument or malformed call sequence       */
#define KS_E_NOMEM       -2  /* allocation failed                             */
#define KS_E_LIMIT       -3  /* a host limit was reached (size, depth, count) */
#define KS_E_UNSUPPORTED -4  /* operation not supported                       */
#define KS_E_VERSION     -5  /* incompatible ABI version                      */
#define KS_E_INTERNAL    -6  /* bug or unexpected condition                   */
#define KS_E_STATE       -7  /* call not allowed in the current state         */

/* ---------------------------------------------------------------------------
 * Small value types. Since 1.0.
 * ------------------------------------------------------------------------- */

/* Layer-4 protocols, a bit mask. */
typedef uint32_t ks_layer4;
#define KS_L4_TCP 0x1u
#define KS_L4_UDP 0x2u

/* Direction of bytes within a flow. */
typedef int32_t ks_direction;
#define KS_DIR_CLIENT_TO_SERVER 0
#define KS_DIR_SERVER_TO_CLIENT 1

/* Log levels for ks_host_api.log. */
typedef int32_t ks_log_level;
#define KS_LOG_TRACE 0
#define KS_LOG_DEBUG 1
#define KS_LOG_INFO  2
#define KS_LOG_WARN  3
#define KS_LOG_ERROR 4

/* An inclusive range of ports, for port hints. Frozen: it has no struct_size
 * and will never change; a successor would be a new type. */
typedef struct ks_port_range {
    uint16_t first;
    uint16_t last;
} ks_port_range;

/* One endpoint of a flow. `addr` holds 4 bytes (family 4) or 16 bytes
 * (family 6) in network order; unused bytes are zero. */
typedef struct ks_endpoint {
    uint32_t struct_size;
    uint8_t  family;      /* 4 or 6 */
    uint8_t  reserved0;
    uint16_t port;        /* host byte order */
    uint8_t  addr[16];
} ks_endpoint;

/* Flags of ks_flow_info. */
#define KS_FLOW_MIDSTREAM     0x1u  /* the connection's start was not seen        */
#define KS_FLOW_ROLES_GUESSED 0x2u  /* client/server were guessed, not from SYN */

/* What the host knows about a flow. Passed to probe() and stream_open(). */
typedef struct ks_flow_info {
    uint32_t    struct_size;
    ks_layer4   layer4;       /* KS_L4_TCP or KS_L4_UDP */
    uint32_t    flags;        /* KS_FLOW_* */
    uint32_t    reserved0;
    uint64_t    flow_id;      /* unique within a host run */
    ks_endpoint client;
    ks_endpoint server;
} ks_flow_info;

/* Flags of ks_chunk. */
#define KS_CHUNK_AFTER_GAP 0x1u  /* bytes were lost just before data[0] */
#define KS_CHUNK_FIRST     0x2u  /* data[0] is the first byte seen in this direction */

/* A run of contiguous bytes in one direction: the bytes the plugin left
 * unconsumed last time followed by new ones. Host-owned, valid for the call. */
typedef struct ks_chunk {
    uint32_t       struct_size;
    ks_direction   direction;
    const uint8_t *data;
    uint32_t       len;
    uint32_t       flags;          /* KS_CHUNK_* */
    uint64_t       stream_offset;  /* offset of data[0] in this direction */
    int64_t        ts_first_ns;    /* capture time of the packet holding data[0] (Unix ns) */
    int64_t        ts_last_ns;     /* capture time of the newest packet in data */
} ks_chunk;

/* ---------------------------------------------------------------------------
 * Parse results: the {status, consumed, needed} contract. Since 1.0.
 *
 * stream_data() and datagram() fill a ks_parse_result the host provides
 * (struct_size set, status pre-set to KS_PARSE_ERROR):
 *   status   what happened (KS_PARSE_*);
 *   consumed how many bytes from data[0] the plugin is done with; the host
 *            drops them and keeps the rest (len - consumed) for the next call;
 *   needed   with KS_PARSE_NEED_MORE: how many MORE bytes, beyond the
 *            len - consumed unconsumed ones, must arrive before the next call
 *            is useful (or a KS_NEED_* sentinel); with KS_PARSE_SKIP: how many
 *            bytes right after the consumed ones to discard unseen.
 * The host checks every result: consumed <= len, a known status, needed
 * within the buffer cap. A result that breaks the contract is treated as
 * KS_PARSE_ERROR, counted and logged. The per-direction buffer (unconsumed
 * bytes) never exceeds the smaller of the host's limit and max_buffer_bytes;
 * an overflow is turned into a gap (stream_gap) or stops the direction.
 * KS_PARSE_OK means "I took what I could": while it consumed something and
 * bytes remain, the host calls again at once (so a plugin may parse one
 * message per call); when it consumed nothing, the host waits for new data,
 * as with KS_PARSE_NEED_MORE and KS_NEED_ANY.
 * ------------------------------------------------------------------------- */
typedef int32_t ks_parse_status;
#define KS_PARSE_OK        0  /* consumed what it could; call again with new data     */
#define KS_PARSE_NEED_MORE 1  /* a message is incomplete; see `needed`                */
#define KS_PARSE_SKIP      2  /* discard `needed` bytes after `consumed` unseen        */
#define KS_PARSE_ERROR     3  /* desynchronised: host stops this direction            */
#define KS_PARSE_REJECT    4  /* not my protocol after all: host may re-probe others  */

#define KS_NEED_ANY       0u           /* any amount of new data will do */
#define KS_NEED_UNTIL_EOF 0xFFFFFFFFu  /* deliver everything at end of stream */

typedef struct ks_parse_result {
    uint32_t        struct_size;
    ks_parse_status status;
    uint32_t        consumed;
    uint32_t        needed;
} ks_parse_result;

/* ---------------------------------------------------------------------------
 * Probing. Since 1.0.
 *
 * Confidence has fixed meanings; the host picks the highest confidence and
 * breaks ties in favour of a plugin whose port hints match either port, then
 * lower priority:
 *   100 = magic bytes or a connection preface that nothing else produces
 *    75 = a full syntactic match of a first message
 *    50 = plausible: the bytes parse so far, but prove little
 *    25 = port match only
 *     0 = no opinion
 * ------------------------------------------------------------------------- */
typedef int32_t ks_probe_verdict;
#define KS_PROBE_NO        0  /* definitely not this protocol                  */
#define KS_PROBE_MAYBE     1  /* could be; more bytes would tell (need_bytes) */
#define KS_PROBE_YES       2  /* this protocol, with `confidence`              */

#define KS_CONFIDENCE_MAGIC     100u
#define KS_CONFIDENCE_SYNTAX     75u
#define KS_CONFIDENCE_PLAUSIBLE  50u
#define KS_CONFIDENCE_PORT       25u

/* Flags of ks_probe_result. */
#define KS_PROBE_REVERSED 0x1u  /* the roles implied by chunk->direction are wrong
                                   (these bytes came from the server): swap them */

typedef struct ks_probe_result {
    uint32_t         struct_size;
    ks_probe_verdict verdict;
    uint32_t         confidence;   /* 0..100, see above */
    uint32_t         flags;        /* KS_PROBE_* */
    uint32_t         need_bytes;   /* with MAYBE: total bytes wanted, 0 = unknown */
} ks_probe_result;

/* Reasons given to stream_close(). */
typedef int32_t ks_close_reason;
#define KS_CLOSE_FIN         0  /* both directions ended normally        */
#define KS_CLOSE_RESET       1  /* TCP RST                               */
#define KS_CLOSE_TIMEOUT     2  /* idle timeout                          */
#define KS_CLOSE_CAPTURE_END 3  /* end of the capture file / capture stop */
#define KS_CLOSE_ERROR       4  /* both directions stopped after errors  */
#define KS_CLOSE_EVICTED     5  /* memory pressure: the host dropped it  */
#define KS_CLOSE_REPROBE     6  /* the plugin rejected the stream        */

/* ---------------------------------------------------------------------------
 * Entries: one per matched request/response pair or lone message.
 * ------------------------------------------------------------------------- */

/* Flags of ks_entry_info. */
#define KS_ENTRY_REQUEST_ONLY  0x1u  /* no response (yet): unanswered          */
#define KS_ENTRY_RESPONSE_ONLY 0x2u  /* a response whose request was not seen  */
#define KS_ENTRY_TIMED_OUT     0x4u  /* emitted because matching timed out     */
#define KS_ENTRY_MALFORMED     0x8u  /* something could not be parsed          */
#define KS_ENTRY_TRUNCATED     0x10u /* a body or field was cut at a cap       */
#define KS_ENTRY_AFTER_GAP     0x20u /* bytes were lost inside this exchange    */

/* The summary of an entry, given to entry_begin(). Strings are (ptr, len),
 * copied by the host; a NULL ptr means "absent". */
typedef struct ks_entry_info {
    uint32_t    struct_size;
    uint32_t    flags;           /* KS_ENTRY_* */
    uint32_t    protocol_index;  /* index into the descriptor's protocols[] */
    int32_t     status;          /* protocol status code for the list row, 0 = none */
    int64_t     request_ts_ns;   /* 0 = no request  */
    int64_t     response_ts_ns;  /* 0 = no response */
    uint64_t    request_size;    /* bytes on the wire */
    uint64_t    response_size;
    const char *method;  size_t method_len;   /* "GET", "SET", "A"          */
    const char *summary; size_t summary_len;  /* path or one-line summary   */
    const char *status_text; size_t status_text_len; /* "OK", "NOERROR"    */
} ks_entry_info;

typedef struct ks_entry ks_entry;    /* opaque, host-owned entry under construction */
typedef struct ks_stream ks_stream;  /* opaque, host-owned handle of one flow */

/* ---------------------------------------------------------------------------
 * Host services: a table handed to init(). Appended to, never reordered.
 * Since 1.0.
 *
 * The entry builder writes a tree of values into an entry. Inside an object
 * every value has a key; inside an array keys are ignored (pass NULL, 0).
 * The top level of an entry is an object whose keys are merged into the
 * entry JSON; use "request" and "response" objects with the protocol's
 * fields. Keys the host owns ("id", "protocol", "src", "dst", "timestamp",
 * ...) are refused with KS_E_INVALID. Every call returns KS_OK or an error;
 * after an error the entry can only be aborted. entry_commit() closes open
 * containers, hands the entry to the host and invalidates the pointer;
 * entry_abort() discards it.
 *
 * Host limits in 1.0 (KS_E_LIMIT or KS_E_INVALID beyond them): one entry under
 * construction per stream at a time; keys of 1 to 1024 bytes; nesting depth
 * 64; 8 MiB of encoded JSON per entry. Reserved top-level keys: id, stream,
 * index, worker, node, protocol, tls, src, dst, outgoing, timestamp,
 * startTime, elapsedTime, requestSize, responseSize, method, summary, status,
 * statusText, flags, unanswered, passed, failed, process, pid.
 * ------------------------------------------------------------------------- */
typedef struct ks_host_api {
    uint32_t struct_size;
    uint16_t abi_major;
    uint16_t abi_minor;

    /* Plugin-level services; host_ctx is the pointer given to init(). */
    void    (*log)(void *host_ctx, ks_log_level level, const char *msg, size_t msg_len);
    void    (*counter_add)(void *host_ctx, const char *name, size_t name_len, int64_t delta);
    int64_t (*now_ns)(void *host_ctx);  /* capture clock: time of the newest packet */

    /* Stream-level services. */
    void (*confirm)(ks_stream *stream);  /* the protocol is certain: stop keeping re-probe data */
    void (*violation)(ks_stream *stream, const char *reason, size_t reason_len);

    /* Entry builder. */
    ks_entry *(*entry_begin)(ks_stream *stream, const ks_entry_info *info);
    ks_status (*entry_object_begin)(ks_entry *e, const char *key, size_t key_len);
    ks_status (*entry_object_end)(ks_entry *e);
    ks_status (*entry_array_begin)(ks_entry *e, const char *key, size_t key_len);
    ks_status (*entry_array_end)(ks_entry *e);
    ks_status (*entry_string)(ks_entry *e, const char *key, size_t key_len, const char *value, size_t value_len);
    ks_status (*entry_bytes)(ks_entry *e, const char *key, size_t key_len, const uint8_t *value, size_t value_len); /* base64 */
    ks_status (*entry_int)(ks_entry *e, const char *key, size_t key_len, int64_t value);
    ks_status (*entry_uint)(ks_entry *e, const char *key, size_t key_len, uint64_t value);
    ks_status (*entry_double)(ks_entry *e, const char *key, size_t key_len, double value);
    ks_status (*entry_bool)(ks_entry *e, const char *key, size_t key_len, bool value);
    ks_status (*entry_null)(ks_entry *e, const char *key, size_t key_len);
    ks_status (*entry_commit)(ks_entry *e);
    void      (*entry_abort)(ks_entry *e);

    const char *(*status_str)(ks_status status);  /* static string */
} ks_host_api;

/* ---------------------------------------------------------------------------
 * Protocol metadata, one or more per plugin (HTTP/1.0 and 1.1, HTTP/2 and
 * gRPC...). Entries name theirs with ks_entry_info.protocol_index. Since 1.0.
 * ------------------------------------------------------------------------- */
typedef struct ks_protocol {
    uint32_t    struct_size;
    uint32_t    reserved0;
    const char *name;              /* "http"                                  */
    const char *long_name;         /* "Hypertext Transfer Protocol -- HTTP/1.1" */
    const char *abbreviation;      /* "HTTP"                                  */
    const char *version;           /* "1.1"                                   */
    const char *macro;             /* KFL macro, "http"; more macros selecting
                                      the same entries may follow after
                                      spaces: "gql http"                      */
    const char *background_color;  /* "#205cf5"                               */
    const char *foreground_color;  /* "#ffffff"                               */
    const char *reference_url;     /* "https://datatracker.ietf.org/doc/html/rfc9112" */
} ks_protocol;

/* Flags of ks_plugin_descriptor. */
#define KS_PLUGIN_ACCEPTS_GAPS     0x1u  /* stream_gap() may resynchronise */
#define KS_PLUGIN_SINGLE_THREADED  0x2u  /* serialise every call into this plugin */

/* ---------------------------------------------------------------------------
 * The descriptor. Since 1.0.
 *
 * Required: struct_size, abi_major, abi_minor, name, version, at least one
 * protocol, layer4, probe, stream_open, stream_close, and stream_data when
 * layer4 has KS_L4_TCP, datagram when it has KS_L4_UDP. Every other callback
 * may be NULL ("not implemented"). reserved[] must be NULL.
 * ------------------------------------------------------------------------- */
typedef struct ks_plugin_descriptor {
    uint32_t struct_size;
    uint16_t abi_major;        /* KS_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor;        /* KS_ABI_MINOR the plugin was built with */

    /* Metadata (NUL-terminated UTF-8, plugin-owned, static). */
    const char *name;          /* unique short name, [a-z0-9_-]+, e.g. "http" */
    const char *version;       /* plugin version, semver, e.g. "1.0.0" */
    const char *vendor;
    const char *license;       /* SPDX identifier */
    const char *description;
    const char *reference_url;

    ks_layer4 layer4;          /* KS_L4_* mask */
    uint32_t  flags;           /* KS_PLUGIN_* */

    const ks_port_range *default_ports;  /* port hints, may be NULL */
    uint32_t  default_port_count;
    int32_t   priority;                  /* lower tries first; ties in probe confidence */
    uint32_t  probe_min_bytes;           /* probe() is not called with fewer bytes */
    uint32_t  probe_max_bytes;           /* probe gives up beyond this many bytes */
    uint32_t  max_buffer_bytes;          /* per-direction unconsumed cap wanted, 0 = host default */

    /* [0] is the default. The array's stride is protocols[0].struct_size, so a
     * plugin built against a later minor (a bigger ks_protocol) still loads. */
    const ks_protocol *protocols;
    uint32_t  protocol_count;

    /* Lifecycle. init may be NULL: then plugin_ctx is NULL for every call, and
     * the plugin never receives the host table (so it cannot emit entries). On
     * init failure the host never calls shutdown. */
    ks_status (*init)(const ks_host_api *host, void *host_ctx,
                      const char *config, size_t config_len, void **plugin_ctx);
    void      (*shutdown)(void *plugin_ctx);

    /* Stateless detection on the first bytes of a flow (one direction). */
    void      (*probe)(void *plugin_ctx, const ks_flow_info *flow,
                       const ks_chunk *chunk, ks_probe_result *result);

    /* Streams (TCP connections and UDP pseudo-flows). */
    ks_status (*stream_open)(void *plugin_ctx, const ks_flow_info *flow,
                             ks_stream *stream, void **stream_state);
    void      (*stream_data)(void *stream_state, const ks_chunk *chunk,
                             ks_parse_result *result);
    /* `gap_len` bytes were lost in `direction`. Return KS_OK to keep receiving
     * that direction (the next chunk has KS_CHUNK_AFTER_GAP), anything else to
     * stop it. Only called with KS_PLUGIN_ACCEPTS_GAPS; without it a gap
     * stops the direction. */
    ks_status (*stream_gap)(void *stream_state, ks_direction direction, uint64_t gap_len);
    void      (*stream_eof)(void *stream_state, ks_direction direction);
    void      (*stream_tick)(void *stream_state, int64_t now_ns);
    void      (*stream_close)(void *stream_state, ks_close_reason reason);

    /* UDP: one call per datagram on a pseudo-flow opened with stream_open().
     * KS_PARSE_NEED_MORE is not allowed here. */
    void      (*datagram)(void *stream_state, const ks_chunk *chunk,
                          ks_parse_result *result);

    void *reserved[8];
} ks_plugin_descriptor;

/* The type of the one symbol a plugin exports, named KS_PLUGIN_ENTRY_SYMBOL:
 *     const ks_plugin_descriptor *ks_plugin_v1(void);
 * (Not declared here so that SDKs in other languages can define it freely.) */
typedef const ks_plugin_descriptor *(*ks_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* KUBESHARK_PLUGIN_H */
