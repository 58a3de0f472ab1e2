#include "ks_tls.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINKS 512

struct ks_tls_probe {
    struct bpf_object *object;
    struct ring_buffer *ring;
    struct bpf_link *links[MAX_LINKS];
    int link_count;
    int settings_fd, netns_fd, counters_fd;
    ks_tls_event_fn callback;
    void *context;
};

/* libbpf's own messages (verifier logs) only when KS_TLS_DEBUG is set. */
static int print_libbpf(enum libbpf_print_level level, const char *format, va_list args) {
    if (!getenv("KS_TLS_DEBUG")) return 0;
    return vfprintf(stderr, format, args);
}

static void set_error(char *error, size_t size, const char *what, int err) {
    if (error && size) snprintf(error, size, "%s: %s", what, strerror(err < 0 ? -err : err));
}

static int on_event(void *ctx, void *data, size_t size) {
    struct ks_tls_probe *p = ctx;
    if (size >= offsetof(struct ks_tls_event, data)) p->callback(p->context, data, size);
    return 0;
}

static int add_link(struct ks_tls_probe *p, struct bpf_link *link) {
    if (!link) return -errno;
    if (p->link_count >= MAX_LINKS) {
        bpf_link__destroy(link);
        return -ENOSPC;
    }
    p->links[p->link_count++] = link;
    return 0;
}

static const char *const tracepoints[] = {"sys_enter_read", "sys_enter_write", "sys_enter_recvfrom", "sys_enter_sendto"};

struct ks_tls_probe *ks_tls_open(const void *object, size_t object_size, uint32_t ignored_pid,
                                 ks_tls_event_fn callback, void *context, char *error, size_t error_size) {
    libbpf_set_print(print_libbpf);
    struct ks_tls_probe *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->callback = callback;
    p->context = context;
    LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "ks_tls_probe");
    p->object = bpf_object__open_mem(object, object_size, &opts);
    if (!p->object) {
        set_error(error, error_size, "cannot open the TLS probe object", errno);
        free(p);
        return NULL;
    }
    int err = bpf_object__load(p->object);
    if (err) {
        set_error(error, error_size,
                  "cannot load the TLS probes (needs BTF at /sys/kernel/btf/vmlinux and CAP_BPF+CAP_PERFMON)", err);
        goto fail;
    }
    p->settings_fd = bpf_object__find_map_fd_by_name(p->object, "settings");
    p->netns_fd = bpf_object__find_map_fd_by_name(p->object, "netns_targets");
    p->counters_fd = bpf_object__find_map_fd_by_name(p->object, "counters");
    struct ks_tls_settings settings = {.filter_netns = 0, .ignored_pid = ignored_pid};
    uint32_t zero = 0;
    if (bpf_map_update_elem(p->settings_fd, &zero, &settings, BPF_ANY)) {
        set_error(error, error_size, "cannot write the TLS probe settings", errno);
        goto fail;
    }
    for (size_t i = 0; i < sizeof(tracepoints) / sizeof(tracepoints[0]); i++) {
        struct bpf_program *prog = bpf_object__find_program_by_name(p->object, tracepoints[i]);
        err = prog ? add_link(p, bpf_program__attach_tracepoint(prog, "syscalls", tracepoints[i])) : -ENOENT;
        if (err) {
            char what[128];
            snprintf(what, sizeof(what), "cannot attach tracepoint syscalls/%s (is tracefs mounted?)", tracepoints[i]);
            set_error(error, error_size, what, err);
            goto fail;
        }
    }
    p->ring = ring_buffer__new(bpf_object__find_map_fd_by_name(p->object, "events"), on_event, p, NULL);
    if (!p->ring) {
        set_error(error, error_size, "cannot open the TLS ring buffer", errno);
        goto fail;
    }
    return p;
fail:
    ks_tls_close(p);
    return NULL;
}

static const char *const functions[4] = {"SSL_write", "SSL_read", "SSL_write_ex", "SSL_read_ex"};
static const char *const entries[4] = {"ssl_write_enter", "ssl_read_enter", "ssl_write_ex_enter", "ssl_read_ex_enter"};
static const char *const returns[4] = {"ssl_write_leave", "ssl_read_leave", "ssl_write_ex_leave", "ssl_read_ex_leave"};

int ks_tls_attach_library(struct ks_tls_probe *p, const char *path, char *error, size_t error_size) {
    int attached = 0;
    for (int i = 0; i < 4; i++) {
        for (int ret = 0; ret <= 1; ret++) {
            struct bpf_program *prog = bpf_object__find_program_by_name(p->object, ret ? returns[i] : entries[i]);
            if (!prog) {
                set_error(error, error_size, "TLS probe program missing", ENOENT);
                return -1;
            }
            LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = functions[i], .retprobe = ret);
            struct bpf_link *link = bpf_program__attach_uprobe_opts(prog, -1, path, 0, &opts);
            if (!link) {
                int e = errno;
                /* A function this libssl does not export (SSL_*_ex before 1.1.1). */
                if (e == ENOENT || e == ESRCH) break;
                char what[512];
                snprintf(what, sizeof(what), "cannot attach uprobe %s in %s", functions[i], path);
                set_error(error, error_size, what, e);
                return -1;
            }
            int err = add_link(p, link);
            if (err) {
                set_error(error, error_size, "too many TLS probe links", err);
                return -1;
            }
            if (ret) attached++;
        }
    }
    return attached;
}

int ks_tls_link_count(const struct ks_tls_probe *p) { return p->link_count; }

int ks_tls_set_filter(struct ks_tls_probe *p, int filter_by_netns) {
    uint32_t zero = 0;
    struct ks_tls_settings s;
    if (bpf_map_lookup_elem(p->settings_fd, &zero, &s)) return -errno;
    s.filter_netns = filter_by_netns ? 1 : 0;
    return bpf_map_update_elem(p->settings_fd, &zero, &s, BPF_ANY) ? -errno : 0;
}

int ks_tls_add_netns(struct ks_tls_probe *p, uint32_t inode) {
    uint8_t one = 1;
    return bpf_map_update_elem(p->netns_fd, &inode, &one, BPF_ANY) ? -errno : 0;
}

int ks_tls_remove_netns(struct ks_tls_probe *p, uint32_t inode) {
    return bpf_map_delete_elem(p->netns_fd, &inode) ? -errno : 0;
}

int ks_tls_poll(struct ks_tls_probe *p, int timeout_ms) { return ring_buffer__poll(p->ring, timeout_ms); }

uint64_t ks_tls_counter(struct ks_tls_probe *p, uint32_t which) {
    int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0 || cpus > 4096) return 0;
    uint64_t values[cpus];
    if (bpf_map_lookup_elem(p->counters_fd, &which, values)) return 0;
    uint64_t sum = 0;
    for (int i = 0; i < cpus; i++) sum += values[i];
    return sum;
}

void ks_tls_close(struct ks_tls_probe *p) {
    if (!p) return;
    for (int i = p->link_count - 1; i >= 0; i--) bpf_link__destroy(p->links[i]);
    p->link_count = 0;
    if (p->ring) ring_buffer__free(p->ring);
    if (p->object) bpf_object__close(p->object);
    free(p);
}
