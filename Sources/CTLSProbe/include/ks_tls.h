/* A thin libbpf loader for the TLS uprobe program (tls_probe.bpf.c). */
#ifndef KS_TLS_H
#define KS_TLS_H

#include <stddef.h>
#include <stdint.h>
#include "ks_tls_event.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ks_tls_probe;

/* Bytes of an event before its data. */
static inline size_t ks_tls_event_header_size(void) { return offsetof(struct ks_tls_event, data); }

/* Called for each event read from the ring buffer; `size` is the bytes present. */
typedef void (*ks_tls_event_fn)(void *context, const struct ks_tls_event *event, size_t size);

/* Opens and loads the BPF object (bytes of an ELF file), attaches the syscall
 * tracepoints and sets up the ring buffer reader. NULL on failure, with a one-line
 * reason in `error`. */
struct ks_tls_probe *ks_tls_open(const void *object, size_t object_size, uint32_t ignored_pid,
                                 ks_tls_event_fn callback, void *context, char *error, size_t error_size);

/* Attaches the entry and return probes of SSL_read, SSL_write, SSL_read_ex and
 * SSL_write_ex in the library at `path` (for every process mapping it). Returns
 * how many of the four functions were attached (0: not an OpenSSL libssl), or -1
 * with a reason in `error`. */
int ks_tls_attach_library(struct ks_tls_probe *probe, const char *path, char *error, size_t error_size);

/* Probe links attached so far (uprobes and tracepoints). */
int ks_tls_link_count(const struct ks_tls_probe *probe);

/* Netns filter: when on, only processes whose network namespace inode was added are traced. */
int ks_tls_set_filter(struct ks_tls_probe *probe, int filter_by_netns);
int ks_tls_add_netns(struct ks_tls_probe *probe, uint32_t inode);
int ks_tls_remove_netns(struct ks_tls_probe *probe, uint32_t inode);

/* Reads ready events, waiting at most `timeout_ms`. Returns events read or -errno. */
int ks_tls_poll(struct ks_tls_probe *probe, int timeout_ms);

/* Sums a per-CPU counter (enum ks_tls_counter). */
uint64_t ks_tls_counter(struct ks_tls_probe *probe, uint32_t which);

/* Detaches every probe and frees everything. */
void ks_tls_close(struct ks_tls_probe *probe);

#ifdef __cplusplus
}
#endif
#endif
