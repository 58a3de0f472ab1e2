/* One plaintext chunk seen by the TLS uprobes, as the BPF program writes it
 * into its ring buffer and the loader reads it. Shared by tls_probe.bpf.c
 * (compiled with clang -target bpf) and the Swift side (through ks_tls.h). */
#ifndef KS_TLS_EVENT_H
#define KS_TLS_EVENT_H

#include <linux/types.h>

/* Largest chunk copied per event (a TLS record's plaintext maximum). */
#define KS_TLS_CHUNK 16384
/* One SSL call is split into at most this many chunks; bytes beyond are
 * counted in `length` but not copied (the reader sees a gap). */
#define KS_TLS_MAX_CHUNKS 4

#define KS_TLS_DIR_WRITE 0 /* the process sent these bytes */
#define KS_TLS_DIR_READ 1  /* the process received these bytes */

struct ks_tls_event {
    __u64 timestamp_ns; /* bpf_ktime_get_ns() at the call's return (CLOCK_MONOTONIC) */
    __u64 ssl;          /* the SSL * of the call: one TLS connection of the process */
    __u32 pid;          /* thread group id */
    __u32 tid;
    __u32 length;       /* bytes the call really moved */
    __u32 offset;       /* where this chunk starts in them */
    __u32 captured;     /* bytes of data[] that follow */
    __s32 fd;           /* the socket under the SSL, -1 when not learned yet */
    __u32 netns;        /* network namespace inode of the process */
    __u8 direction;     /* KS_TLS_DIR_* */
    __u8 family;        /* 2 (AF_INET), 10 (AF_INET6), 0 when the fd is not a TCP socket */
    __u16 local_port;   /* host order */
    __u16 remote_port;
    __u16 reserved;
    __u8 local_addr[16];  /* IPv4 in the first 4 bytes */
    __u8 remote_addr[16];
    char comm[16];
    __u8 data[KS_TLS_CHUNK];
};

/* Per-CPU counters (index into the `counters` map). */
enum ks_tls_counter {
    KS_TLS_COUNT_EVENTS = 0, /* chunks written into the ring */
    KS_TLS_COUNT_LOST,       /* chunks the full ring refused */
    KS_TLS_COUNT_TRUNCATED,  /* calls larger than KS_TLS_CHUNK * KS_TLS_MAX_CHUNKS */
    KS_TLS_COUNT_NO_FD,      /* calls whose socket was never learned */
    KS_TLS_COUNT_MAX
};

/* The `settings` map's single value. */
struct ks_tls_settings {
    __u32 filter_netns; /* 1: only processes whose netns inode is in `netns_targets` */
    __u32 ignored_pid;  /* a tgid never traced (the loader itself) */
};

#endif
