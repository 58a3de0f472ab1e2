#define _GNU_SOURCE
#include "ks_xdp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#ifndef AF_XDP
#define AF_XDP 44
#endif
#ifndef SOL_XDP
#define SOL_XDP 283
#endif

struct ks_xsk {
    struct xsk_ring_prod fill;
    struct xsk_ring_cons comp;
    struct xsk_ring_cons rx;
    struct xsk_umem *umem;
    struct xsk_socket *socket;
    void *area;
    size_t area_size;
};

static __thread char last_log[512];

static int log_to_buffer(const char *format, va_list args) {
    char line[512];
    vsnprintf(line, sizeof line, format, args);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' ')) line[--n] = 0;
    if (n > 0) memcpy(last_log, line, n + 1);
    return 0;
}

static int libxdp_print(enum libxdp_print_level level, const char *format, va_list args) {
    if (level == LIBXDP_DEBUG) return 0;
    return log_to_buffer(format, args);
}

static int libbpf_print(enum libbpf_print_level level, const char *format, va_list args) {
    if (level == LIBBPF_DEBUG) return 0;
    return log_to_buffer(format, args);
}

void ks_xdp_quiet_logs(void) {
    libxdp_set_print(libxdp_print);
    libbpf_set_print(libbpf_print);
}

const char *ks_xdp_last_log(void) { return last_log; }

int ks_xdp_socket_probe(void) {
    int fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    close(fd);
    return 1;
}

int ks_xsk_open(const char *ifname, uint32_t queue, const ks_xsk_config *config, ks_xsk **out,
                char *err, size_t errlen) {
    last_log[0] = 0;
    ks_xsk *x = calloc(1, sizeof *x);
    if (!x) return -ENOMEM;
    x->area_size = (size_t)config->frames * config->frame_size;
    x->area = mmap(NULL, x->area_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (x->area == MAP_FAILED) {
        int e = errno;
        free(x);
        snprintf(err, errlen, "cannot map %zu bytes of UMEM: %s", (size_t)config->frames * config->frame_size, strerror(e));
        return -e;
    }
    struct xsk_umem_config ucfg = {
        .fill_size = config->ring_size,
        .comp_size = 64,
        .frame_size = config->frame_size,
        .frame_headroom = 0,
        .flags = 0,
    };
    int rc = xsk_umem__create(&x->umem, x->area, x->area_size, &x->fill, &x->comp, &ucfg);
    if (rc) {
        snprintf(err, errlen, "cannot register the UMEM: %s%s%s", strerror(-rc), last_log[0] ? ": " : "", last_log);
        munmap(x->area, x->area_size);
        free(x);
        return rc;
    }
    struct xsk_socket_config scfg;
    memset(&scfg, 0, sizeof scfg);
    scfg.rx_size = config->ring_size;
    scfg.tx_size = 0;
    scfg.libxdp_flags = 0;
    scfg.xdp_flags = (config->mode == KS_XDP_MODE_NATIVE ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE);
    scfg.bind_flags = (config->zerocopy ? XDP_ZEROCOPY : XDP_COPY);
    rc = xsk_socket__create(&x->socket, ifname, queue, x->umem, &x->rx, NULL, &scfg);
    if (rc) {
        snprintf(err, errlen, "%s%s%s", strerror(-rc), last_log[0] ? ": " : "", last_log);
        xsk_umem__delete(x->umem);
        munmap(x->area, x->area_size);
        free(x);
        return rc;
    }
    /* Every frame goes to the fill ring (at most the ring's size). */
    uint32_t fill = config->frames < config->ring_size ? config->frames : config->ring_size;
    uint32_t idx = 0;
    if (xsk_ring_prod__reserve(&x->fill, fill, &idx) != fill) {
        snprintf(err, errlen, "cannot fill the fill ring");
        ks_xsk_close(x);
        return -ENOSPC;
    }
    for (uint32_t i = 0; i < fill; i++)
        *xsk_ring_prod__fill_addr(&x->fill, idx + i) = (uint64_t)i * config->frame_size;
    xsk_ring_prod__submit(&x->fill, fill);
    *out = x;
    return 0;
}

int ks_xsk_fd(const ks_xsk *x) { return xsk_socket__fd(x->socket); }

uint32_t ks_xsk_rx_peek(ks_xsk *x, uint32_t max, uint32_t *first) {
    return xsk_ring_cons__peek(&x->rx, max, first);
}

uint32_t ks_xsk_rx_available(ks_xsk *x) {
    return xsk_cons_nb_avail(&x->rx, UINT32_MAX);
}

const uint8_t *ks_xsk_rx_data(ks_xsk *x, uint32_t idx, uint32_t *len) {
    const struct xdp_desc *d = xsk_ring_cons__rx_desc(&x->rx, idx);
    *len = d->len;
    return xsk_umem__get_data(x->area, d->addr);
}

void ks_xsk_rx_release(ks_xsk *x, uint32_t first, uint32_t n) {
    if (n == 0) return;
    uint32_t fidx = 0;
    /* The fill ring has room for every frame we own, so this cannot fail;
     * spin defensively rather than leak frames. */
    while (xsk_ring_prod__reserve(&x->fill, n, &fidx) != n) {}
    for (uint32_t i = 0; i < n; i++)
        *xsk_ring_prod__fill_addr(&x->fill, fidx + i) = xsk_ring_cons__rx_desc(&x->rx, first + i)->addr;
    xsk_ring_prod__submit(&x->fill, n);
    xsk_ring_cons__release(&x->rx, n);
}

int ks_xsk_stats_get(const ks_xsk *x, ks_xsk_stats *out) {
    struct xdp_statistics st;
    socklen_t len = sizeof st;
    memset(&st, 0, sizeof st);
    if (getsockopt(xsk_socket__fd(x->socket), SOL_XDP, XDP_STATISTICS, &st, &len) < 0) return -errno;
    out->rx_dropped = st.rx_dropped;
    out->rx_invalid_descs = st.rx_invalid_descs;
    out->rx_ring_full = st.rx_ring_full;
    out->rx_fill_ring_empty_descs = st.rx_fill_ring_empty_descs;
    return 0;
}

int ks_xsk_zerocopy(const ks_xsk *x) {
    struct xdp_options opts;
    socklen_t len = sizeof opts;
    if (getsockopt(xsk_socket__fd(x->socket), SOL_XDP, XDP_OPTIONS, &opts, &len) < 0) return -errno;
    return (opts.flags & XDP_OPTIONS_ZEROCOPY) ? 1 : 0;
}

void ks_xsk_close(ks_xsk *x) {
    if (!x) return;
    if (x->socket) xsk_socket__delete(x->socket);
    if (x->umem) xsk_umem__delete(x->umem);
    if (x->area && x->area != MAP_FAILED) munmap(x->area, x->area_size);
    free(x);
}
