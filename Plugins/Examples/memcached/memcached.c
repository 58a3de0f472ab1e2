/*
 * memcached.c -- a kubeshark-swift dissector for the memcached text protocol,
 * written as a third party would: plain C99, libc and kubeshark_plugin.h only.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Protocol: https://github.com/memcached/memcached/blob/master/doc/protocol.txt
 *
 * Build (see Makefile and README.md):
 *   cc -std=c99 -O2 -Wall -Wextra -shared -fPIC -I<dir of kubeshark_plugin.h> \
 *      -o libmemcached.so memcached.c
 *
 * Design
 * ------
 * - Each direction is parsed independently, line by line. A line must end in
 *   "\n" (normally "\r\n") within MC_MAX_LINE bytes (MC_MAX_GET_LINE for the
 *   multi-key retrieval commands); a longer one desynchronises the direction
 *   (violation() + KS_PARSE_ERROR).
 * - Data blocks (storage commands, VALUE items) are consumed incrementally:
 *   the first MC_VALUE_CAP bytes are copied for the entry, the rest is
 *   discarded with KS_PARSE_SKIP, so a hostile "<bytes>" of 4 GiB costs
 *   nothing but the skip.
 * - Requests are queued in order when their command line is parsed. Responses
 *   are matched in FIFO order to the oldest request that expects one
 *   (noreply requests and quit expect none). Entries leave the queue in
 *   request order. The queue holds at most MC_MAX_PENDING requests; beyond
 *   that the oldest is emitted unanswered and the response that would have
 *   been its own is emitted alone, so later pairs stay aligned.
 * - At stream_close every request still queued is emitted: answered ones and
 *   noreply ones normally, the rest as request-only (KS_ENTRY_REQUEST_ONLY).
 * - Every allocation is bounded: keys (MC_KEYS_CAP bytes / MC_MAX_KEYS keys
 *   per request), values (MC_VALUE_CAP bytes), VALUE items per response
 *   (MC_MAX_VALUES), STAT lines per response (MC_STATS_CAP bytes).
 */
#include "kubeshark_plugin.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Limits
 * ------------------------------------------------------------------------- */
#define MC_MAX_LINE       8192u    /* any command or response line          */
#define MC_MAX_GET_LINE   65536u   /* get/gets/gat/gats: many keys           */
#define MC_VALUE_CAP      1024u    /* bytes of a value kept for the entry    */
#define MC_KEYS_CAP       1024u    /* bytes of keys/args kept per request    */
#define MC_MAX_KEYS       64u      /* keys/args kept per request             */
#define MC_MAX_VALUES     64u      /* VALUE items kept per response          */
#define MC_STATS_CAP      65536u   /* bytes of STAT names+values kept        */
#define MC_MAX_STATS      1024u    /* STAT lines kept per response           */
#define MC_MAX_PENDING    256u     /* requests waiting for their response    */
#define MC_CMD_MAX        32u      /* bytes of the command word kept         */
#define MC_WORD_MAX       32u      /* bytes of the response result word kept */
#define MC_MESSAGE_CAP    512u     /* bytes of an error/version message kept */
#define MC_SKIP_STEP      0x40000000u /* largest single KS_PARSE_SKIP         */

/* ---------------------------------------------------------------------------
 * Small containers
 * ------------------------------------------------------------------------- */

/* Bytes copied from the wire, capped. */
typedef struct mc_blob {
    uint8_t *data;
    size_t   len;
    size_t   cap;        /* the most this blob ever holds */
    int      truncated;  /* bytes beyond cap were seen */
} mc_blob;

/* A list of short strings, stored as [u16 length][bytes]..., capped. */
typedef struct mc_list {
    uint8_t *buf;
    size_t   len;
    size_t   alloc;
    size_t   byte_cap;
    uint32_t count_cap;
    uint32_t count;      /* stored */
    uint32_t total;      /* seen */
} mc_list;

/* One VALUE item of a retrieval response. */
typedef struct mc_value {
    mc_blob  key;
    uint64_t flags;
    uint64_t bytes;
    uint64_t cas;
    int      has_cas;
    mc_blob  data;
} mc_value;

/* What the server answered. */
typedef struct mc_response {
    int      started;
    int      done;
    int      malformed;
    int      truncated;
    char     word[MC_WORD_MAX + 1];   /* "STORED", "END", "NUMBER", ... */
    size_t   word_len;
    mc_blob  message;                 /* text after the word (errors, VERSION) */
    int      is_number;
    uint64_t number;
    int      number_overflow;
    mc_value *values;
    uint32_t nvalues;                 /* stored */
    uint32_t values_total;            /* seen */
    mc_list  stats;                   /* name, value, name, value, ... */
    int      has_stats;
    int64_t  ts_ns;
    uint64_t size;
} mc_response;

/* Kinds of request, deciding which fields the entry carries. */
enum {
    MC_K_UNKNOWN = 0,
    MC_K_STORAGE,    /* set add replace append prepend */
    MC_K_CAS,        /* cas */
    MC_K_RETRIEVAL,  /* get gets */
    MC_K_GAT,        /* gat gats */
    MC_K_DELETE,
    MC_K_ARITH,      /* incr decr */
    MC_K_TOUCH,
    MC_K_STATS,
    MC_K_VERSION,
    MC_K_FLUSH,
    MC_K_VERBOSITY,
    MC_K_QUIT
};

/* One request and (once seen) its response. */
typedef struct mc_item {
    struct mc_item *next;
    int      has_request;   /* 0 for a response whose request was not seen */
    int      kind;
    char     cmd[MC_CMD_MAX + 1];
    size_t   cmd_len;
    mc_list  keys;          /* keys, or arguments for stats/unknown commands */
    uint64_t flags;   int has_flags;
    int64_t  exptime; int has_exptime;
    uint64_t bytes;   int has_bytes;
    uint64_t cas;     int has_cas;
    uint64_t delta;   int has_delta;
    uint64_t numarg;  int has_numarg;   /* flush_all delay, verbosity level */
    int      noreply;
    int      in_progress;   /* data block still arriving */
    int      data_complete; /* data block ended (possibly without CRLF) */
    int      malformed;
    mc_blob  value;
    int64_t  req_ts_ns;
    uint64_t req_size;
    int      answered;
    mc_response resp;
} mc_item;

/* Parse state of one direction. */
enum { MC_D_LINE = 0, MC_D_DATA, MC_D_DATA_END };

typedef struct mc_dir {
    int       state;
    size_t    scanned;    /* bytes of the current line already searched for '\n' */
    uint64_t  remaining;  /* data-block bytes still to come */
    mc_blob  *target;     /* where data-block bytes are copied (NULL: nowhere) */
} mc_dir;

typedef struct mc_plugin {
    const ks_host_api *api;
    void *host_ctx;
} mc_plugin;

typedef struct mc_stream {
    const ks_host_api *api;
    void      *host_ctx;
    ks_stream *stream;
    mc_dir     dir[2];        /* [KS_DIR_CLIENT_TO_SERVER], [KS_DIR_SERVER_TO_CLIENT] */
    mc_item   *head, *tail;   /* pending requests, oldest first */
    uint32_t   pending;
    mc_item   *reading;       /* request whose data block the client is sending */
    mc_item   *answering;     /* item whose response the server is sending */
    uint32_t   orphans;       /* responses owed to requests evicted unanswered */
    int        confirmed;
} mc_stream;

/* ---------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------- */
#define KEY(s) (s), (sizeof(s) - 1)

static void mc_count(const mc_stream *s, const char *name, size_t name_len, int64_t delta) {
    s->api->counter_add(s->host_ctx, name, name_len, delta);
}

static void mc_violation(const mc_stream *s, const char *reason, size_t len) {
    s->api->violation(s->stream, reason, len);
}

static void blob_init(mc_blob *b, size_t cap) {
    b->data = NULL;
    b->len = 0;
    b->cap = cap;
    b->truncated = 0;
}

static void blob_free(mc_blob *b) {
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

/* Appends up to the cap; returns 0 on allocation failure (then marks truncated). */
static int blob_append(mc_blob *b, const uint8_t *p, size_t n) {
    size_t room = b->cap - b->len;
    size_t take = n < room ? n : room;
    if (take < n) b->truncated = 1;
    if (take == 0) return 1;
    if (b->data == NULL) {
        b->data = (uint8_t *)malloc(b->cap);
        if (b->data == NULL) {
            b->truncated = 1;
            return 0;
        }
    }
    memcpy(b->data + b->len, p, take);
    b->len += take;
    return 1;
}

static int blob_full(const mc_blob *b) { return b == NULL || b->len >= b->cap; }

static void list_init(mc_list *l, size_t byte_cap, uint32_t count_cap) {
    memset(l, 0, sizeof *l);
    l->byte_cap = byte_cap;
    l->count_cap = count_cap;
}

static void list_free(mc_list *l) {
    free(l->buf);
    l->buf = NULL;
    l->len = l->alloc = 0;
}

/* Stores one string; returns 1 when stored, 0 when dropped (cap or memory). */
static int list_add(mc_list *l, const uint8_t *p, size_t n) {
    size_t need;
    l->total++;
    if (n > 0xFFFFu || l->count >= l->count_cap) return 0;
    need = l->len + 2 + n;
    if (need > l->byte_cap) return 0;
    if (need > l->alloc) {
        size_t alloc = l->alloc ? l->alloc * 2 : 128;
        uint8_t *grown;
        while (alloc < need) alloc *= 2;
        if (alloc > l->byte_cap) alloc = l->byte_cap;
        grown = (uint8_t *)realloc(l->buf, alloc);
        if (grown == NULL) return 0;
        l->buf = grown;
        l->alloc = alloc;
    }
    if (l->buf == NULL) return 0;
    l->buf[l->len] = (uint8_t)(n >> 8);
    l->buf[l->len + 1] = (uint8_t)(n & 0xFF);
    if (n) memcpy(l->buf + l->len + 2, p, n);
    l->len = need;
    l->count++;
    return 1;
}

/* Iterates a list: *pos starts at 0; returns 0 at the end. */
static int list_next(const mc_list *l, size_t *pos, const uint8_t **p, size_t *n) {
    if (*pos + 2 > l->len) return 0;
    *n = ((size_t)l->buf[*pos] << 8) | l->buf[*pos + 1];
    *p = l->buf + *pos + 2;
    *pos += 2 + *n;
    return 1;
}

/* Next space-separated token of line[0..len) from *pos; memcached skips runs of spaces. */
static int next_token(const uint8_t *line, size_t len, size_t *pos, const uint8_t **tok, size_t *tok_len) {
    size_t i = *pos, start;
    while (i < len && line[i] == ' ') i++;
    if (i >= len) {
        *pos = i;
        return 0;
    }
    start = i;
    while (i < len && line[i] != ' ') i++;
    *tok = line + start;
    *tok_len = i - start;
    *pos = i;
    return 1;
}

static int token_is(const uint8_t *tok, size_t n, const char *word) {
    size_t w = strlen(word);
    return n == w && memcmp(tok, word, w) == 0;
}

/* Strict unsigned decimal, no sign, no overflow. */
static int parse_u64(const uint8_t *p, size_t n, uint64_t *out) {
    uint64_t v = 0;
    size_t i;
    if (n == 0 || n > 20) return 0;
    for (i = 0; i < n; i++) {
        unsigned d;
        if (p[i] < '0' || p[i] > '9') return 0;
        d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

/* Signed decimal (exptime may be negative). */
static int parse_i64(const uint8_t *p, size_t n, int64_t *out) {
    uint64_t v;
    if (n > 0 && p[0] == '-') {
        if (!parse_u64(p + 1, n - 1, &v) || v > (uint64_t)INT64_MAX) return 0;
        *out = -(int64_t)v;
        return 1;
    }
    if (!parse_u64(p, n, &v) || v > (uint64_t)INT64_MAX) return 0;
    *out = (int64_t)v;
    return 1;
}

/* Length of the longest prefix of complete, valid UTF-8 sequences. Sets
 * *binary when a control byte other than TAB, CR, LF appears in that prefix. */
static size_t utf8_prefix(const uint8_t *p, size_t n, int *binary) {
    size_t i = 0;
    *binary = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t k, need;
        uint32_t cp;
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7F) *binary = 1;
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) { need = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; cp = c & 0x07; }
        else return i;
        if (i + need >= n) return i; /* incomplete */
        for (k = 1; k <= need; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF))
            || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += need + 1;
    }
    return i;
}

/* True when p[0..n) (n < 4) could begin a valid multi-byte sequence. */
static int utf8_incomplete_tail(const uint8_t *p, size_t n) {
    size_t need, k;
    if (n == 0 || n > 3) return 0;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) need = 1;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF) need = 2;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4) need = 3;
    else return 0;
    if (n > need) return 0;
    for (k = 1; k < n; k++)
        if ((p[k] & 0xC0) != 0x80) return 0;
    return 1;
}

/* Capture time of the byte at `pos` of a chunk: exact for data[0], else the newest packet's. */
static int64_t chunk_ts(const ks_chunk *c, size_t pos) { return pos == 0 ? c->ts_first_ns : c->ts_last_ns; }

/* ---------------------------------------------------------------------------
 * Items
 * ------------------------------------------------------------------------- */
static mc_item *item_new(void) {
    mc_item *it = (mc_item *)calloc(1, sizeof *it);
    if (it == NULL) return NULL;
    list_init(&it->keys, MC_KEYS_CAP, MC_MAX_KEYS);
    blob_init(&it->value, MC_VALUE_CAP);
    blob_init(&it->resp.message, MC_MESSAGE_CAP);
    list_init(&it->resp.stats, MC_STATS_CAP, MC_MAX_STATS * 2);
    return it;
}

static void item_free(mc_item *it) {
    uint32_t i;
    if (it == NULL) return;
    list_free(&it->keys);
    blob_free(&it->value);
    blob_free(&it->resp.message);
    for (i = 0; i < it->resp.nvalues; i++) {
        blob_free(&it->resp.values[i].key);
        blob_free(&it->resp.values[i].data);
    }
    free(it->resp.values);
    list_free(&it->resp.stats);
    free(it);
}

static int expects_reply(const mc_item *it) { return it->has_request && !it->noreply && it->kind != MC_K_QUIT; }

/* ---------------------------------------------------------------------------
 * Entry building (through the host's builder only)
 * ------------------------------------------------------------------------- */
typedef struct mc_builder {
    const ks_host_api *api;
    ks_entry *e;
    ks_status st;   /* first error; every later call is skipped */
} mc_builder;

static void b_obj(mc_builder *b, const char *k, size_t kl) {
    if (b->st == KS_OK) b->st = b->api->entry_object_begin(b->e, k, kl);
}
static void b_obj_end(mc_builder *b) {
    if (b->st == KS_OK) b->st = b->api->entry_object_end(b->e);
}
static void b_arr(mc_builder *b, const char *k, size_t kl) {
    if (b->st == KS_OK) b->st = b->api->entry_array_begin(b->e, k, kl);
}
static void b_arr_end(mc_builder *b) {
    if (b->st == KS_OK) b->st = b->api->entry_array_end(b->e);
}
static void b_str(mc_builder *b, const char *k, size_t kl, const void *v, size_t vl) {
    if (b->st == KS_OK) b->st = b->api->entry_string(b->e, k, kl, (const char *)v, vl);
}
static void b_uint(mc_builder *b, const char *k, size_t kl, uint64_t v) {
    if (b->st == KS_OK) b->st = b->api->entry_uint(b->e, k, kl, v);
}
static void b_int(mc_builder *b, const char *k, size_t kl, int64_t v) {
    if (b->st == KS_OK) b->st = b->api->entry_int(b->e, k, kl, v);
}
static void b_bool(mc_builder *b, const char *k, size_t kl, int v) {
    if (b->st == KS_OK) b->st = b->api->entry_bool(b->e, k, kl, v ? true : false);
}

/* A value: UTF-8 text as a string, anything else base64, plus its encoding and truncation. */
static void b_value(mc_builder *b, const mc_blob *v) {
    int binary = 0;
    size_t valid = utf8_prefix(v->data, v->len, &binary);
    int text = !binary && (valid == v->len
                           || (v->truncated && utf8_incomplete_tail(v->data + valid, v->len - valid)));
    if (text) {
        b_str(b, KEY("value"), v->data, valid);
        b_str(b, KEY("valueEncoding"), KEY("utf8"));
    } else {
        if (b->st == KS_OK) b->st = b->api->entry_bytes(b->e, KEY("value"), v->data, v->len);
        b_str(b, KEY("valueEncoding"), KEY("base64"));
    }
    b_bool(b, KEY("truncated"), v->truncated);
}

static void b_list(mc_builder *b, const char *k, size_t kl, const mc_list *l) {
    size_t pos = 0, n;
    const uint8_t *p;
    b_arr(b, k, kl);
    while (list_next(l, &pos, &p, &n)) b_str(b, NULL, 0, p, n);
    b_arr_end(b);
}

static void build_request(mc_builder *b, const mc_item *it) {
    int keyed = it->kind == MC_K_STORAGE || it->kind == MC_K_CAS || it->kind == MC_K_RETRIEVAL
                || it->kind == MC_K_GAT || it->kind == MC_K_DELETE || it->kind == MC_K_ARITH
                || it->kind == MC_K_TOUCH;
    b_obj(b, KEY("request"));
    b_str(b, KEY("command"), it->cmd, it->cmd_len);
    if (keyed) b_list(b, KEY("keys"), &it->keys);
    else if (it->keys.total > 0) b_list(b, KEY("args"), &it->keys);
    if (it->keys.total > it->keys.count) {
        b_uint(b, KEY("keyCount"), it->keys.total);
        b_bool(b, KEY("keysTruncated"), 1);
    }
    if (it->has_flags) b_uint(b, KEY("flags"), it->flags);
    if (it->has_exptime) b_int(b, KEY("exptime"), it->exptime);
    if (it->has_bytes) b_uint(b, KEY("bytes"), it->bytes);
    if (it->has_cas) b_uint(b, KEY("cas"), it->cas);
    if (it->has_delta) b_uint(b, KEY("delta"), it->delta);
    if (it->has_numarg) {
        if (it->kind == MC_K_FLUSH) b_uint(b, KEY("delay"), it->numarg);
        else b_uint(b, KEY("level"), it->numarg);
    }
    b_bool(b, KEY("noreply"), it->noreply);
    if (it->kind == MC_K_STORAGE || it->kind == MC_K_CAS) {
        if (it->has_bytes) b_value(b, &it->value);
        if (it->has_bytes && !it->data_complete) b_bool(b, KEY("incomplete"), 1);
    }
    if (it->malformed) b_bool(b, KEY("malformed"), 1);
    b_obj_end(b);
}

static void build_response(mc_builder *b, const mc_item *it) {
    const mc_response *r = &it->resp;
    uint32_t i;
    b_obj(b, KEY("response"));
    if (r->done) b_str(b, KEY("result"), r->word, r->word_len);
    else b_str(b, KEY("result"), KEY("INCOMPLETE"));
    if (r->message.len > 0 || r->message.truncated) b_str(b, KEY("message"), r->message.data, r->message.len);
    if (r->is_number) {
        if (r->number_overflow) b_str(b, KEY("number"), r->message.data, r->message.len);
        else b_uint(b, KEY("number"), r->number);
    }
    if (r->values_total > 0 || it->kind == MC_K_RETRIEVAL || it->kind == MC_K_GAT) {
        b_arr(b, KEY("values"));
        for (i = 0; i < r->nvalues; i++) {
            const mc_value *v = &r->values[i];
            b_obj(b, NULL, 0);
            b_str(b, KEY("key"), v->key.data, v->key.len);
            b_uint(b, KEY("flags"), v->flags);
            b_uint(b, KEY("bytes"), v->bytes);
            if (v->has_cas) b_uint(b, KEY("cas"), v->cas);
            b_value(b, &v->data);
            b_obj_end(b);
        }
        b_arr_end(b);
        if (r->values_total > r->nvalues) b_uint(b, KEY("valueCount"), r->values_total);
    }
    if (r->has_stats || it->kind == MC_K_STATS) {
        size_t pos = 0, kn, vn;
        const uint8_t *kp, *vp;
        b_obj(b, KEY("stats"));
        while (list_next(&r->stats, &pos, &kp, &kn) && list_next(&r->stats, &pos, &vp, &vn)) {
            /* The host refuses empty and very long keys, which would abort the
             * whole entry; memcached's stat names are short and never repeat. */
            if (kn == 0 || kn > 256) continue;
            b_str(b, (const char *)kp, kn, vp, vn);
        }
        b_obj_end(b);
        if (r->stats.total / 2 > r->stats.count / 2) b_uint(b, KEY("statCount"), r->stats.total / 2);
    }
    if (r->malformed) b_bool(b, KEY("malformed"), 1);
    b_obj_end(b);
}

/* Emits one entry. `flags` adds KS_ENTRY_* bits to what the item implies. */
static void emit_item(mc_stream *s, const mc_item *it, uint32_t flags) {
    ks_entry_info info;
    mc_builder b;
    ks_entry *e;
    const uint8_t *first_key = NULL;
    size_t first_key_len = 0, pos = 0;
    int has_response = it->resp.started;

    memset(&info, 0, sizeof info);
    info.struct_size = (uint32_t)sizeof info;
    if (!it->has_request) flags |= KS_ENTRY_RESPONSE_ONLY;
    if (it->has_request && it->value.truncated) flags |= KS_ENTRY_TRUNCATED;
    if (it->keys.total > it->keys.count) flags |= KS_ENTRY_TRUNCATED;
    if (it->resp.truncated || it->resp.message.truncated || it->resp.values_total > it->resp.nvalues
        || it->resp.stats.total > it->resp.stats.count)
        flags |= KS_ENTRY_TRUNCATED;
    if (it->malformed || it->resp.malformed) flags |= KS_ENTRY_MALFORMED;
    if ((it->has_request && it->has_bytes && !it->data_complete) || (has_response && !it->resp.done))
        flags |= KS_ENTRY_TRUNCATED;
    info.flags = flags;
    info.protocol_index = 0;
    info.status = 0;
    info.request_ts_ns = it->has_request ? it->req_ts_ns : 0;
    info.response_ts_ns = has_response ? it->resp.ts_ns : 0;
    info.request_size = it->has_request ? it->req_size : 0;
    info.response_size = has_response ? it->resp.size : 0;
    if (it->has_request && it->cmd_len > 0) {
        info.method = it->cmd;
        info.method_len = it->cmd_len;
    }
    if (it->has_request) {
        if (list_next(&it->keys, &pos, &first_key, &first_key_len)) {
            info.summary = (const char *)first_key;
            info.summary_len = first_key_len;
        }
    } else if (it->resp.nvalues > 0) {
        info.summary = (const char *)it->resp.values[0].key.data;
        info.summary_len = it->resp.values[0].key.len;
    }
    if (has_response && it->resp.done && it->resp.word_len > 0) {
        info.status_text = it->resp.word;
        info.status_text_len = it->resp.word_len;
    }

    e = s->api->entry_begin(s->stream, &info);
    if (e == NULL) {
        mc_count(s, KEY("memcached.entries_refused"), 1);
        return;
    }
    b.api = s->api;
    b.e = e;
    b.st = KS_OK;
    if (it->has_request) build_request(&b, it);
    if (has_response) build_response(&b, it);
    if (b.st != KS_OK) {
        s->api->entry_abort(e);
        mc_count(s, KEY("memcached.entries_failed"), 1);
        return;
    }
    if (s->api->entry_commit(e) != KS_OK) {
        mc_count(s, KEY("memcached.entries_failed"), 1);
        return;
    }
    mc_count(s, KEY("memcached.entries"), 1);
}

/* ---------------------------------------------------------------------------
 * The pending queue
 * ------------------------------------------------------------------------- */
static int item_done(const mc_item *it) {
    if (it->in_progress) return 0;
    return it->answered || !expects_reply(it);
}

static mc_item *queue_pop(mc_stream *s) {
    mc_item *it = s->head;
    if (it == NULL) return NULL;
    s->head = it->next;
    if (s->head == NULL) s->tail = NULL;
    s->pending--;
    it->next = NULL;
    if (s->answering == it) s->answering = NULL;
    if (s->reading == it) s->reading = NULL;
    return it;
}

/* Emits finished items from the head, keeping request order. */
static void queue_drain(mc_stream *s) {
    while (s->head != NULL && item_done(s->head)) {
        mc_item *it = queue_pop(s);
        if (it == NULL) break;
        if (!s->confirmed && it->answered) {
            s->confirmed = 1;
            s->api->confirm(s->stream);
        }
        emit_item(s, it, 0);
        item_free(it);
    }
}

/* Adds a request; when the queue is full the oldest leaves unanswered first. */
static void queue_push(mc_stream *s, mc_item *it) {
    while (s->pending >= MC_MAX_PENDING && s->head != NULL) {
        mc_item *old = s->head;
        if (old == s->answering || old == s->reading) break;  /* cannot happen with a cap > 2 */
        old = queue_pop(s);
        if (old == NULL) break;
        if (expects_reply(old) && !old->answered) {
            s->orphans++;
            emit_item(s, old, KS_ENTRY_REQUEST_ONLY);
        } else {
            emit_item(s, old, 0);
        }
        mc_count(s, KEY("memcached.pending_overflow"), 1);
        item_free(old);
    }
    if (s->tail) s->tail->next = it;
    else s->head = it;
    s->tail = it;
    s->pending++;
}

/* ---------------------------------------------------------------------------
 * Requests (client to server)
 * ------------------------------------------------------------------------- */
static const struct { const char *word; int kind; } mc_commands[] = {
    {"set", MC_K_STORAGE},     {"add", MC_K_STORAGE},    {"replace", MC_K_STORAGE},
    {"append", MC_K_STORAGE},  {"prepend", MC_K_STORAGE}, {"cas", MC_K_CAS},
    {"get", MC_K_RETRIEVAL},   {"gets", MC_K_RETRIEVAL}, {"gat", MC_K_GAT},
    {"gats", MC_K_GAT},        {"delete", MC_K_DELETE},  {"incr", MC_K_ARITH},
    {"decr", MC_K_ARITH},      {"touch", MC_K_TOUCH},    {"stats", MC_K_STATS},
    {"version", MC_K_VERSION}, {"flush_all", MC_K_FLUSH}, {"verbosity", MC_K_VERBOSITY},
    {"quit", MC_K_QUIT},
};
#define MC_NCOMMANDS (sizeof mc_commands / sizeof mc_commands[0])

static int command_kind(const uint8_t *w, size_t n) {
    size_t i;
    for (i = 0; i < MC_NCOMMANDS; i++)
        if (token_is(w, n, mc_commands[i].word)) return mc_commands[i].kind;
    return MC_K_UNKNOWN;
}

/* Parses one request line (without its line ending) and queues the request.
 * Sets *data_bytes and returns 1 when a data block follows, 0 when not, -2
 * when out of memory. */
static int handle_request_line(mc_stream *s, const uint8_t *line, size_t len, size_t wire_len, int64_t ts,
                               uint64_t *data_bytes) {
    const uint8_t *tok[8], *t, *w = NULL;
    size_t tlen[8], tl, wl = 0, pos = 0;
    size_t ntok = 0, total_tok = 0;
    mc_item *it = item_new();
    int data = 0;
    if (it == NULL) return -2;
    it->has_request = 1;
    it->req_ts_ns = ts;
    it->req_size = wire_len;

    if (next_token(line, len, &pos, &w, &wl)) {
        size_t keep = wl < MC_CMD_MAX ? wl : MC_CMD_MAX;
        memcpy(it->cmd, w, keep);
        it->cmd_len = keep;
        it->kind = command_kind(w, wl);
    } else {
        it->kind = MC_K_UNKNOWN;  /* an empty line: memcached answers ERROR */
        it->malformed = 1;
    }

    switch (it->kind) {
    case MC_K_RETRIEVAL:
    case MC_K_GAT: {
        int first = 1;
        while (next_token(line, len, &pos, &t, &tl)) {
            if (it->kind == MC_K_GAT && first) {
                if (parse_i64(t, tl, &it->exptime)) it->has_exptime = 1;
                else it->malformed = 1;
            } else {
                (void)list_add(&it->keys, t, tl);
            }
            first = 0;
        }
        if (it->keys.total == 0) it->malformed = 1;
        break;
    }
    case MC_K_UNKNOWN:
    case MC_K_STATS:
        while (next_token(line, len, &pos, &t, &tl)) (void)list_add(&it->keys, t, tl);
        break;
    default:
        /* Positional commands: collect up to 8 tokens after the command word. */
        while (next_token(line, len, &pos, &t, &tl)) {
            if (ntok < 8) {
                tok[ntok] = t;
                tlen[ntok] = tl;
                ntok++;
            }
            total_tok++;
        }
        if (total_tok > ntok) it->malformed = 1;
        if (ntok > 0 && token_is(tok[ntok - 1], tlen[ntok - 1], "noreply")) {
            it->noreply = 1;
            ntok--;
        }
        switch (it->kind) {
        case MC_K_STORAGE:
        case MC_K_CAS: {
            size_t want = it->kind == MC_K_CAS ? 5 : 4;
            if (ntok >= 1) (void)list_add(&it->keys, tok[0], tlen[0]);
            if (ntok != want) {
                it->malformed = 1;
                break;
            }
            it->has_flags = parse_u64(tok[1], tlen[1], &it->flags);
            it->has_exptime = parse_i64(tok[2], tlen[2], &it->exptime);
            it->has_bytes = parse_u64(tok[3], tlen[3], &it->bytes);
            if (it->kind == MC_K_CAS) it->has_cas = parse_u64(tok[4], tlen[4], &it->cas);
            if (!it->has_flags || !it->has_exptime || !it->has_bytes || (it->kind == MC_K_CAS && !it->has_cas)) {
                /* memcached answers CLIENT_ERROR and reads no data block. */
                it->malformed = 1;
                it->has_bytes = 0;
                break;
            }
            data = 1;
            break;
        }
        case MC_K_DELETE:
            if (ntok >= 1) (void)list_add(&it->keys, tok[0], tlen[0]);
            if (ntok < 1 || ntok > 2) it->malformed = 1;
            break;
        case MC_K_ARITH:
            if (ntok >= 1) (void)list_add(&it->keys, tok[0], tlen[0]);
            if (ntok != 2) it->malformed = 1;
            else if (parse_u64(tok[1], tlen[1], &it->delta)) it->has_delta = 1;
            else it->malformed = 1;
            break;
        case MC_K_TOUCH:
            if (ntok >= 1) (void)list_add(&it->keys, tok[0], tlen[0]);
            if (ntok != 2) it->malformed = 1;
            else if (parse_i64(tok[1], tlen[1], &it->exptime)) it->has_exptime = 1;
            else it->malformed = 1;
            break;
        case MC_K_FLUSH:
            if (ntok > 1) it->malformed = 1;
            else if (ntok == 1) {
                if (parse_u64(tok[0], tlen[0], &it->numarg)) it->has_numarg = 1;
                else it->malformed = 1;
            }
            break;
        case MC_K_VERBOSITY:
            if (ntok != 1) it->malformed = 1;
            else if (parse_u64(tok[0], tlen[0], &it->numarg)) it->has_numarg = 1;
            else it->malformed = 1;
            break;
        case MC_K_VERSION:
        case MC_K_QUIT:
            if (ntok != 0) it->malformed = 1;
            break;
        default:
            break;
        }
        break;
    }

    queue_push(s, it);
    if (data) {
        it->in_progress = 1;
        s->reading = it;
        *data_bytes = it->bytes;
        return 1;
    }
    queue_drain(s);
    return 0;
}

/* ---------------------------------------------------------------------------
 * Responses (server to client)
 * ------------------------------------------------------------------------- */

/* The item the next response belongs to, or a new response-only item. */
static mc_item *response_owner(mc_stream *s) {
    mc_item *it;
    if (s->orphans == 0) {
        for (it = s->head; it != NULL; it = it->next)
            if (expects_reply(it) && !it->answered && !it->resp.started) return it;
    } else {
        s->orphans--;
    }
    it = item_new();
    if (it == NULL) return NULL;
    it->has_request = 0;
    return it;
}

/* The current response ended: hand it to its request, or emit it alone. */
static void finish_response(mc_stream *s) {
    mc_item *it = s->answering;
    if (it == NULL) return;
    s->answering = NULL;
    it->resp.done = 1;
    if (!it->has_request) {
        mc_count(s, KEY("memcached.responses_without_request"), 1);
        emit_item(s, it, 0);
        item_free(it);
        return;
    }
    it->answered = 1;
    queue_drain(s);
}

/* Parses one response line. Returns 1 with *data_bytes and *target set when a
 * data block follows, 0 otherwise, -1 when the line cannot be followed (the
 * direction is lost), -2 when out of memory. */
static int handle_response_line(mc_stream *s, const uint8_t *line, size_t len, size_t wire_len, int64_t ts,
                                uint64_t *data_bytes, mc_blob **target) {
    const uint8_t *w = NULL;
    size_t wl = 0, pos = 0;
    mc_response *r;
    mc_item *it = s->answering;

    if (it == NULL) {
        it = response_owner(s);
        if (it == NULL) return -2;
        s->answering = it;
        it->resp.started = 1;
        it->resp.ts_ns = ts;
    }
    r = &it->resp;
    r->size += wire_len;
    (void)next_token(line, len, &pos, &w, &wl);

    if (token_is(w, wl, "VALUE")) {
        const uint8_t *tk[5];
        size_t tkl[5], n = 0;
        mc_value *v = NULL;
        uint64_t flags = 0, bytes = 0, cas = 0;
        int ok;
        while (n < 5 && next_token(line, len, &pos, &tk[n], &tkl[n])) n++;
        if (n < 3 || n > 4 || !parse_u64(tk[2], tkl[2], &bytes)) {
            /* Without <bytes> the data block cannot be found again. */
            r->malformed = 1;
            return -1;
        }
        ok = parse_u64(tk[1], tkl[1], &flags);
        if (n == 4) ok = parse_u64(tk[3], tkl[3], &cas) && ok;
        if (!ok) r->malformed = 1;
        r->values_total++;
        if (r->nvalues < MC_MAX_VALUES) {
            mc_value *grown = (mc_value *)realloc(r->values, (r->nvalues + 1) * sizeof *grown);
            if (grown != NULL) {
                r->values = grown;
                v = &r->values[r->nvalues++];
                memset(v, 0, sizeof *v);
                blob_init(&v->key, 250);
                blob_init(&v->data, MC_VALUE_CAP);
                if (!blob_append(&v->key, tk[0], tkl[0])) r->truncated = 1;
                v->flags = flags;
                v->bytes = bytes;
                v->cas = cas;
                v->has_cas = n == 4;
            }
        }
        *data_bytes = bytes;
        *target = v ? &v->data : NULL;
        return 1;
    }
    if (token_is(w, wl, "STAT") || token_is(w, wl, "ITEM") || token_is(w, wl, "PREFIX")) {
        const uint8_t *name = NULL, *value;
        size_t name_len = 0, vstart;
        r->has_stats = 1;
        (void)next_token(line, len, &pos, &name, &name_len);
        vstart = pos;
        while (vstart < len && line[vstart] == ' ') vstart++;
        value = line + vstart;
        if (list_add(&r->stats, name ? name : (const uint8_t *)"", name_len)) {
            if (!list_add(&r->stats, value, len - vstart)) {
                /* Keep the list in pairs: drop the dangling name. */
                r->stats.len -= 2 + name_len;
                r->stats.count--;
                r->stats.total++;
            }
        } else {
            r->stats.total++;
        }
        return 0;
    }

    /* Any other line ends the response: END, STORED, NOT_FOUND, a number,
     * ERROR, CLIENT_ERROR <msg>, SERVER_ERROR <msg>, VERSION <v>, OK, ... */
    {
        size_t keep = wl < MC_WORD_MAX ? wl : MC_WORD_MAX;
        uint64_t number;
        size_t rest = pos;
        if (wl > 0 && parse_u64(w, wl, &number) && wl == len) {
            r->is_number = 1;
            r->number = number;
            memcpy(r->word, "NUMBER", 6);
            r->word_len = 6;
        } else if (wl > 0 && w[0] >= '0' && w[0] <= '9' && wl == len) {
            /* digits beyond 64 bits: keep the text */
            size_t i;
            int digits = 1;
            for (i = 0; i < wl; i++)
                if (w[i] < '0' || w[i] > '9') digits = 0;
            if (digits) {
                r->is_number = 1;
                r->number_overflow = 1;
                r->malformed = 1;
                memcpy(r->word, "NUMBER", 6);
                r->word_len = 6;
                (void)blob_append(&r->message, w, wl);
            } else {
                memcpy(r->word, w, keep);
                r->word_len = keep;
            }
        } else {
            if (wl > 0) memcpy(r->word, w, keep);
            else r->malformed = 1;  /* an empty line */
            r->word_len = wl > 0 ? keep : 0;
            while (rest < len && line[rest] == ' ') rest++;
            if (rest < len && !blob_append(&r->message, line + rest, len - rest)) r->truncated = 1;
        }
    }
    finish_response(s);
    return 0;
}

/* ---------------------------------------------------------------------------
 * The parser loop shared by both directions
 * ------------------------------------------------------------------------- */
static void set_result(ks_parse_result *r, ks_parse_status st, size_t consumed, uint32_t needed) {
    r->status = st;
    r->consumed = (uint32_t)consumed;
    r->needed = needed;
}

/* Wire bytes of a data block count toward the request or response they belong to. */
static void add_size(mc_stream *s, int client, uint64_t n) {
    if (client) {
        if (s->reading != NULL) s->reading->req_size += n;
    } else if (s->answering != NULL) {
        s->answering->resp.size += n;
    }
}

static size_t line_cap_for(const uint8_t *p, size_t n, int client) {
    if (client && n >= 4 && (memcmp(p, "get", 3) == 0 || memcmp(p, "gat", 3) == 0)
        && (p[3] == ' ' || (p[3] == 's' && n >= 5 && p[4] == ' ')))
        return MC_MAX_GET_LINE;
    return MC_MAX_LINE;
}

static void mc_stream_data(void *state, const ks_chunk *chunk, ks_parse_result *result) {
    mc_stream *s = (mc_stream *)state;
    int client;
    mc_dir *d;
    const uint8_t *data;
    size_t len, pos = 0;

    if (s == NULL || chunk == NULL || result == NULL) return;
    if (chunk->direction != KS_DIR_CLIENT_TO_SERVER && chunk->direction != KS_DIR_SERVER_TO_CLIENT) {
        set_result(result, KS_PARSE_ERROR, 0, 0);
        return;
    }
    client = chunk->direction == KS_DIR_CLIENT_TO_SERVER;
    d = &s->dir[chunk->direction];
    data = chunk->data;
    len = chunk->len;
    if (data == NULL) len = 0;

    for (;;) {
        if (d->state == MC_D_LINE) {
            const uint8_t *nl;
            size_t avail = len - pos, cap, line_len, wire, from;
            uint64_t bytes = 0;
            mc_blob *target = NULL;
            int rc;
            if (avail == 0) {
                set_result(result, KS_PARSE_OK, pos, 0);
                return;
            }
            cap = line_cap_for(data + pos, avail, client);
            from = d->scanned < avail ? d->scanned : 0;
            nl = (const uint8_t *)memchr(data + pos + from, '\n', avail - from);
            if (nl == NULL) {
                if (avail > cap) {
                    mc_violation(s, KEY("memcached: line longer than the limit without a line end"));
                    mc_count(s, KEY("memcached.line_too_long"), 1);
                    set_result(result, KS_PARSE_ERROR, pos, 0);
                    return;
                }
                d->scanned = avail;
                set_result(result, KS_PARSE_NEED_MORE, pos, KS_NEED_ANY);
                return;
            }
            wire = (size_t)(nl - (data + pos)) + 1;
            if (wire > cap + 1) {
                mc_violation(s, KEY("memcached: line longer than the limit"));
                mc_count(s, KEY("memcached.line_too_long"), 1);
                set_result(result, KS_PARSE_ERROR, pos, 0);
                return;
            }
            d->scanned = 0;
            line_len = wire - 1;
            if (line_len > 0 && data[pos + line_len - 1] == '\r') line_len--;
            if (client) {
                rc = handle_request_line(s, data + pos, line_len, wire, chunk_ts(chunk, pos), &bytes);
                if (rc == 1) target = &s->reading->value;
            } else {
                rc = handle_response_line(s, data + pos, line_len, wire, chunk_ts(chunk, pos), &bytes, &target);
            }
            if (rc == -2 || rc == -1) {
                if (rc == -2) mc_count(s, KEY("memcached.out_of_memory"), 1);
                else mc_violation(s, KEY("memcached: malformed VALUE line"));
                set_result(result, KS_PARSE_ERROR, pos, 0);
                return;
            }
            pos += wire;
            if (rc == 1) {
                d->state = bytes > 0 ? MC_D_DATA : MC_D_DATA_END;
                d->remaining = bytes;
                d->target = target;
            }
            continue;
        }

        if (d->state == MC_D_DATA) {
            size_t avail = len - pos;
            size_t n = d->remaining < (uint64_t)avail ? (size_t)d->remaining : avail;
            if (n > 0) {
                if (d->target != NULL && !blob_append(d->target, data + pos, n))
                    mc_count(s, KEY("memcached.out_of_memory"), 1);
                add_size(s, client, n);
                d->remaining -= n;
                pos += n;
            }
            if (d->remaining == 0) {
                d->state = MC_D_DATA_END;
                continue;
            }
            /* pos == len: the block goes on beyond this chunk. */
            if (blob_full(d->target)) {
                uint32_t skip = d->remaining > MC_SKIP_STEP ? MC_SKIP_STEP : (uint32_t)d->remaining;
                if (d->target != NULL) d->target->truncated = 1;
                add_size(s, client, skip);
                d->remaining -= skip;
                if (d->remaining == 0) d->state = MC_D_DATA_END;
                set_result(result, KS_PARSE_SKIP, pos, skip);
                return;
            }
            set_result(result, KS_PARSE_OK, pos, 0);
            return;
        }

        /* MC_D_DATA_END: the "\r\n" after a data block. memcached reads
         * <bytes>+2 and then checks the last two ("CLIENT_ERROR bad data
         * chunk"); do the same so the next line starts where the server's does. */
        {
            size_t avail = len - pos;
            int good;
            if (avail < 2) {
                set_result(result, KS_PARSE_NEED_MORE, pos, (uint32_t)(2 - avail));
                return;
            }
            good = data[pos] == '\r' && data[pos + 1] == '\n';
            pos += 2;
            add_size(s, client, 2);
            if (!good) {
                mc_violation(s, KEY("memcached: data block not followed by CRLF"));
                mc_count(s, KEY("memcached.bad_data_chunk"), 1);
            }
            d->state = MC_D_LINE;
            d->target = NULL;
            if (client) {
                mc_item *it = s->reading;
                if (it != NULL) {
                    if (!good) it->malformed = 1;
                    it->in_progress = 0;
                    it->data_complete = 1;
                    s->reading = NULL;
                }
                queue_drain(s);
            } else if (s->answering != NULL && !good) {
                s->answering->resp.malformed = 1;
            }
        }
    }
}

/* ---------------------------------------------------------------------------
 * Probe
 * ------------------------------------------------------------------------- */
static const char *const mc_response_starts[] = {
    "VALUE ", "STAT ", "STORED\r\n", "NOT_STORED\r\n", "EXISTS\r\n", "NOT_FOUND\r\n",
    "DELETED\r\n", "TOUCHED\r\n", "END\r\n", "VERSION ",
};

static void mc_probe(void *plugin_ctx, const ks_flow_info *flow, const ks_chunk *chunk, ks_probe_result *result) {
    const uint8_t *p;
    size_t n, i;
    int from_server;
    (void)plugin_ctx;
    (void)flow;
    if (result == NULL) return;
    result->verdict = KS_PROBE_NO;
    result->confidence = 0;
    result->flags = 0;
    result->need_bytes = 0;
    if (chunk == NULL || chunk->data == NULL || chunk->len == 0) {
        result->verdict = KS_PROBE_MAYBE;
        return;
    }
    p = chunk->data;
    n = chunk->len;
    from_server = chunk->direction == KS_DIR_SERVER_TO_CLIENT;

    /* A command word followed by a space or a line end: a request. */
    for (i = 0; i < MC_NCOMMANDS; i++) {
        const char *w = mc_commands[i].word;
        size_t wl = strlen(w);
        if (n <= wl) {
            if (memcmp(p, w, n) == 0) {
                result->verdict = KS_PROBE_MAYBE;
                if (result->need_bytes < wl + 2) result->need_bytes = (uint32_t)(wl + 2);
            }
            continue;
        }
        if (memcmp(p, w, wl) != 0) continue;
        if (p[wl] == ' ' || p[wl] == '\n' || (p[wl] == '\r' && n > wl + 1 && p[wl + 1] == '\n')) {
            result->verdict = KS_PROBE_YES;
            result->confidence = KS_CONFIDENCE_SYNTAX;
            result->flags = from_server ? KS_PROBE_REVERSED : 0;
            result->need_bytes = 0;
            return;
        }
        if (p[wl] == '\r' && n == wl + 1) {
            result->verdict = KS_PROBE_MAYBE;
            if (result->need_bytes < wl + 2) result->need_bytes = (uint32_t)(wl + 2);
        }
    }
    if (result->verdict == KS_PROBE_MAYBE) return;

    /* A distinctive response line: plausible, from the server. */
    for (i = 0; i < sizeof mc_response_starts / sizeof mc_response_starts[0]; i++) {
        const char *w = mc_response_starts[i];
        size_t wl = strlen(w);
        if (n >= wl && memcmp(p, w, wl) == 0) {
            result->verdict = KS_PROBE_YES;
            result->confidence = KS_CONFIDENCE_PLAUSIBLE;
            result->flags = from_server ? 0 : KS_PROBE_REVERSED;
            return;
        }
    }
}

/* ---------------------------------------------------------------------------
 * Lifecycle
 * ------------------------------------------------------------------------- */
static ks_status mc_init(const ks_host_api *host, void *host_ctx, const char *config, size_t config_len,
                         void **plugin_ctx) {
    mc_plugin *p;
    (void)config;
    (void)config_len;
    if (host == NULL || plugin_ctx == NULL) return KS_E_INVALID;
    if (host->abi_major != KS_ABI_MAJOR) return KS_E_VERSION;
    /* Every service used here exists since 1.0; check anyway, as a reader must. */
    if (!KS_HAS_FIELD(host, ks_host_api, entry_abort)) return KS_E_VERSION;
    if (!host->counter_add || !host->confirm || !host->violation || !host->entry_begin || !host->entry_object_begin
        || !host->entry_object_end || !host->entry_array_begin || !host->entry_array_end || !host->entry_string
        || !host->entry_bytes || !host->entry_int || !host->entry_uint || !host->entry_bool || !host->entry_commit
        || !host->entry_abort)
        return KS_E_UNSUPPORTED;
    p = (mc_plugin *)calloc(1, sizeof *p);
    if (p == NULL) return KS_E_NOMEM;
    p->api = host;
    p->host_ctx = host_ctx;
    *plugin_ctx = p;
    return KS_OK;
}

static void mc_shutdown(void *plugin_ctx) { free(plugin_ctx); }

static ks_status mc_stream_open(void *plugin_ctx, const ks_flow_info *flow, ks_stream *stream, void **stream_state) {
    mc_plugin *p = (mc_plugin *)plugin_ctx;
    mc_stream *s;
    (void)flow;
    if (p == NULL || stream == NULL || stream_state == NULL) return KS_E_INVALID;
    s = (mc_stream *)calloc(1, sizeof *s);
    if (s == NULL) return KS_E_NOMEM;
    s->api = p->api;
    s->host_ctx = p->host_ctx;
    s->stream = stream;
    *stream_state = s;
    return KS_OK;
}

static void mc_stream_close(void *state, ks_close_reason reason) {
    mc_stream *s = (mc_stream *)state;
    (void)reason;
    if (s == NULL) return;
    /* A data block cut short: the request ends here, flagged truncated. */
    if (s->reading != NULL) {
        s->reading->in_progress = 0;
        s->reading = NULL;
    }
    /* A response cut short (no END): its request keeps what arrived. */
    if (s->answering != NULL) {
        mc_item *it = s->answering;
        s->answering = NULL;
        if (!it->has_request) {
            emit_item(s, it, 0);
            item_free(it);
        } else {
            it->answered = 1;  /* partial: resp.done stays 0 */
        }
    }
    while (s->head != NULL) {
        mc_item *it = queue_pop(s);
        if (it == NULL) break;
        if (item_done(it)) {
            emit_item(s, it, 0);
        } else {
            mc_count(s, KEY("memcached.unanswered"), 1);
            emit_item(s, it, KS_ENTRY_REQUEST_ONLY);
        }
        item_free(it);
    }
    free(s);
}

/* ---------------------------------------------------------------------------
 * Descriptor
 * ------------------------------------------------------------------------- */
static const ks_port_range mc_ports[] = {{11211, 11211}};

static const ks_protocol mc_protocols[] = {{
    sizeof(ks_protocol),
    0,
    "memcached",
    "Memcached text protocol",
    "MEMCACHED",
    "1.6",
    "memcached",
    "#1c7c54",
    "#ffffff",
    "https://github.com/memcached/memcached/blob/master/doc/protocol.txt",
}};

static const ks_plugin_descriptor mc_descriptor = {
    .struct_size = sizeof(ks_plugin_descriptor),
    .abi_major = KS_ABI_MAJOR,
    .abi_minor = KS_ABI_MINOR,
    .name = "memcached",
    .version = "1.0.0",
    .vendor = "kubeshark-swift examples",
    .license = "Apache-2.0",
    .description = "memcached text protocol: storage, retrieval, delete, incr/decr, touch, stats, ...",
    .reference_url = "https://github.com/memcached/memcached/blob/master/doc/protocol.txt",
    .layer4 = KS_L4_TCP,
    .flags = 0,
    .default_ports = mc_ports,
    .default_port_count = 1,
    .priority = 100,
    .probe_min_bytes = 1,
    .probe_max_bytes = 64,
    .max_buffer_bytes = 128 * 1024,
    .protocols = mc_protocols,
    .protocol_count = 1,
    .init = mc_init,
    .shutdown = mc_shutdown,
    .probe = mc_probe,
    .stream_open = mc_stream_open,
    .stream_data = mc_stream_data,
    .stream_gap = NULL,
    .stream_eof = NULL,
    .stream_tick = NULL,
    .stream_close = mc_stream_close,
    .datagram = NULL,
    .reserved = {0},
};

const ks_plugin_descriptor *ks_plugin_v1(void);

const ks_plugin_descriptor *ks_plugin_v1(void) { return &mc_descriptor; }
