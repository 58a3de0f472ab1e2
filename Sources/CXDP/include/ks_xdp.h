/* Thin C helpers over libxdp's AF_XDP socket API (xdp/xsk.h), for the Swift
 * AFXDPBackend: one XSK socket with its own UMEM, fill, completion and RX rings,
 * bound to one queue of one interface, receive only, copy mode unless zero-copy
 * is asked for. The ring macros of xsk.h are static inline and use unions; this
 * file hides them behind plain functions. Linux only. */
#ifndef KS_XDP_H
#define KS_XDP_H

#include <stdint.h>
#include <stddef.h>

typedef struct ks_xsk ks_xsk;

enum {
    KS_XDP_MODE_NATIVE = 1,   /* XDP_FLAGS_DRV_MODE */
    KS_XDP_MODE_GENERIC = 2,  /* XDP_FLAGS_SKB_MODE */
};

typedef struct ks_xsk_config {
    uint32_t frames;      /* UMEM frames (power of two) */
    uint32_t frame_size;  /* bytes per frame: 2048 or 4096 */
    uint32_t ring_size;   /* RX and fill ring descriptors (power of two) */
    int mode;             /* KS_XDP_MODE_* */
    int zerocopy;         /* 1: XDP_ZEROCOPY, else XDP_COPY */
} ks_xsk_config;

/* Opens an XSK socket on ifname/queue with libxdp's default program (which
 * redirects queue N to the socket registered for N, and passes the rest).
 * Returns 0, or -errno with a one-line reason in err (libxdp's own last
 * message when it gave one). */
int ks_xsk_open(const char *ifname, uint32_t queue, const ks_xsk_config *config, ks_xsk **out,
                char *err, size_t errlen);

int ks_xsk_fd(const ks_xsk *xsk);

/* Received descriptors ready to read: at most max; *first is the first index. */
uint32_t ks_xsk_rx_peek(ks_xsk *xsk, uint32_t max, uint32_t *first);
/* Descriptors waiting in the RX ring, without taking them. */
uint32_t ks_xsk_rx_available(ks_xsk *xsk);
/* Bytes of descriptor idx (valid until released). */
const uint8_t *ks_xsk_rx_data(ks_xsk *xsk, uint32_t idx, uint32_t *len);
/* Gives n descriptors from first back: their frames go to the fill ring. */
void ks_xsk_rx_release(ks_xsk *xsk, uint32_t first, uint32_t n);

typedef struct ks_xsk_stats {
    uint64_t rx_dropped;
    uint64_t rx_invalid_descs;
    uint64_t rx_ring_full;
    uint64_t rx_fill_ring_empty_descs;
} ks_xsk_stats;

int ks_xsk_stats_get(const ks_xsk *xsk, ks_xsk_stats *out);

/* Whether zero-copy is in use (XDP_OPTIONS), 0/1, or -errno. */
int ks_xsk_zerocopy(const ks_xsk *xsk);

/* Closes the socket and frees the UMEM; the last socket on an interface
 * detaches libxdp's program. */
void ks_xsk_close(ks_xsk *xsk);

/* Routes libxdp and libbpf messages into a buffer (the last one is kept for
 * error reports) instead of stderr. */
void ks_xdp_quiet_logs(void);
const char *ks_xdp_last_log(void);

/* 1 when the kernel has AF_XDP sockets, else -errno of socket(AF_XDP). */
int ks_xdp_socket_probe(void);

#endif
