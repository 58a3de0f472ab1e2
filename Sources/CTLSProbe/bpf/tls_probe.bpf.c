// SPDX-License-Identifier: GPL-2.0 OR MIT
/* TLS plaintext through uprobes on OpenSSL's SSL_read/SSL_write(_ex).
 *
 * Entry probes remember the call (SSL *, buffer, size pointer) per thread; the
 * same thread's read/write/sendto/recvfrom syscalls during the call tell which
 * socket the SSL * sits on (remembered per SSL * for calls served from
 * OpenSSL's buffer without a syscall); return probes copy the plaintext into
 * the ring buffer, with the socket's addresses read from the kernel's struct
 * sock. Kernel structures are reached through CO-RE (the minimal definitions
 * below are relocated against the running kernel's BTF by libbpf).
 *
 * Built by the EmbedBPF build-tool plugin with clang -target bpf. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "ks_tls_event.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* --- the kernel structures used, as CO-RE relocatable stubs --- */
struct ns_common { unsigned int inum; } __attribute__((preserve_access_index));
struct net { struct ns_common ns; } __attribute__((preserve_access_index));
struct nsproxy { struct net *net_ns; } __attribute__((preserve_access_index));
struct inode { unsigned short i_mode; } __attribute__((preserve_access_index));
struct file { void *private_data; struct inode *f_inode; } __attribute__((preserve_access_index));
struct fdtable { unsigned int max_fds; struct file **fd; } __attribute__((preserve_access_index));
struct files_struct { struct fdtable *fdt; } __attribute__((preserve_access_index));
struct task_struct {
    struct nsproxy *nsproxy;
    struct files_struct *files;
} __attribute__((preserve_access_index));
struct in6_addr { __u8 s6_addr[16]; } __attribute__((preserve_access_index));
struct sock_common {
    __be32 skc_daddr;
    __be32 skc_rcv_saddr;
    __be16 skc_dport;
    __u16 skc_num;
    unsigned short skc_family;
    struct in6_addr skc_v6_daddr;
    struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));
struct sock { struct sock_common __sk_common; } __attribute__((preserve_access_index));
struct socket { short type; struct sock *sk; } __attribute__((preserve_access_index));

#define S_IFMT 0170000
#define S_IFSOCK 0140000

/* --- maps --- */
struct call {
    __u64 ssl;
    __u64 buf;
    __u64 size_ptr; /* SSL_*_ex: where the byte count is written */
    __s32 fd;
    __u8 direction;
    __u8 ex;
};

struct ssl_key {
    __u32 pid;
    __u32 pad;
    __u64 ssl;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u64); /* pid_tgid */
    __type(value, struct call);
} calls SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct ssl_key);
    __type(value, __s32);
} ssl_fds SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32); /* netns inode */
    __type(value, __u8);
} netns_targets SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct ks_tls_settings);
} settings SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, KS_TLS_COUNT_MAX);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

/* Events are reserved in the ring at their full size and filled in place: a per-CPU
 * scratch buffer is not safe, as a preempted program's buffer can be reused by the
 * next program run on that CPU. 64 MiB hold about 4000 events in flight. */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 << 20);
} events SEC(".maps");

static __always_inline void count(__u32 which) {
    __u64 *c = bpf_map_lookup_elem(&counters, &which);
    if (c) *c += 1;
}

static __always_inline __u32 current_netns(void) {
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    return BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
}

static __always_inline int in_scope(__u32 pid) {
    __u32 zero = 0;
    struct ks_tls_settings *s = bpf_map_lookup_elem(&settings, &zero);
    if (!s) return 0;
    if (pid == s->ignored_pid) return 0;
    if (!s->filter_netns) return 1;
    __u32 ns = current_netns();
    return bpf_map_lookup_elem(&netns_targets, &ns) != 0;
}

/* Fills the event's addresses from the socket behind `fd`; family 0 when it is not a TCP/IP socket. */
static __always_inline void resolve_socket(struct ks_tls_event *e, __s32 fd) {
    e->family = 0;
    if (fd < 0) return;
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
    if (!fdt) return;
    unsigned int max = BPF_CORE_READ(fdt, max_fds);
    if ((unsigned int)fd >= max) return;
    struct file **fds = BPF_CORE_READ(fdt, fd);
    struct file *f = 0;
    if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) != 0 || !f) return;
    unsigned short mode = BPF_CORE_READ(f, f_inode, i_mode);
    if ((mode & S_IFMT) != S_IFSOCK) return;
    struct socket *sock = BPF_CORE_READ(f, private_data);
    if (!sock) return;
    struct sock *sk = BPF_CORE_READ(sock, sk);
    if (!sk) return;
    unsigned short family = BPF_CORE_READ(sk, __sk_common.skc_family);
    e->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
    e->remote_port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
    if (family == 2) {
        __be32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
        __be32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
        __builtin_memcpy(e->local_addr, &l, 4);
        __builtin_memcpy(e->remote_addr, &r, 4);
        e->family = 2;
    } else if (family == 10) {
        BPF_CORE_READ_INTO(&e->local_addr, sk, __sk_common.skc_v6_rcv_saddr);
        BPF_CORE_READ_INTO(&e->remote_addr, sk, __sk_common.skc_v6_daddr);
        e->family = 10;
    }
}

static __always_inline int enter(struct pt_regs *ctx, __u8 direction, __u8 ex) {
    __u64 id = bpf_get_current_pid_tgid();
    if (!in_scope(id >> 32)) return 0;
    struct call c = {};
    c.ssl = PT_REGS_PARM1(ctx);
    c.buf = PT_REGS_PARM2(ctx);
    c.size_ptr = ex ? PT_REGS_PARM4(ctx) : 0;
    c.fd = -1;
    c.direction = direction;
    c.ex = ex;
    bpf_map_update_elem(&calls, &id, &c, BPF_ANY);
    return 0;
}

static __always_inline int leave(struct pt_regs *ctx) {
    __u64 id = bpf_get_current_pid_tgid();
    struct call *c = bpf_map_lookup_elem(&calls, &id);
    if (!c) return 0;
    /* SSL_read/SSL_write(_ex) return int: the upper half of the register is not part of it. */
    int ret = (int)PT_REGS_RC(ctx);
    __u64 len = 0;
    if (c->ex) {
        if (ret == 1 && c->size_ptr) bpf_probe_read_user(&len, sizeof(len), (void *)c->size_ptr);
    } else if (ret > 0) {
        len = ret;
    }
    struct ssl_key key = {.pid = id >> 32, .ssl = c->ssl};
    __s32 fd = c->fd;
    if (fd >= 0) {
        bpf_map_update_elem(&ssl_fds, &key, &fd, BPF_ANY);
    } else {
        __s32 *known = bpf_map_lookup_elem(&ssl_fds, &key);
        if (known) fd = *known;
    }
    if (len == 0 || len > 0xffffffffULL) goto done;
    if (fd < 0) count(KS_TLS_COUNT_NO_FD);
    if (len > (__u64)KS_TLS_CHUNK * KS_TLS_MAX_CHUNKS) count(KS_TLS_COUNT_TRUNCATED);

    __u64 buf = c->buf;
    __u64 ssl = c->ssl;
    __u8 direction = c->direction;
    __u64 now = bpf_ktime_get_ns();
    for (__u32 i = 0; i < KS_TLS_MAX_CHUNKS; i++) {
        __u32 off = i * KS_TLS_CHUNK;
        if (off >= len) break;
        __u32 n = len - off;
        if (n > KS_TLS_CHUNK) n = KS_TLS_CHUNK;
        struct ks_tls_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
        if (!e) {
            count(KS_TLS_COUNT_LOST);
            continue;
        }
        e->timestamp_ns = now;
        e->ssl = ssl;
        e->pid = id >> 32;
        e->tid = (__u32)id;
        e->length = (__u32)len;
        e->fd = fd;
        e->netns = current_netns();
        e->direction = direction;
        e->reserved = 0;
        bpf_get_current_comm(&e->comm, sizeof(e->comm));
        resolve_socket(e, fd);
        e->offset = off;
        e->captured = n;
        if (bpf_probe_read_user(e->data, n, (void *)(buf + off)) != 0) e->captured = 0;
        bpf_ringbuf_submit(e, 0);
        count(KS_TLS_COUNT_EVENTS);
    }
done:
    bpf_map_delete_elem(&calls, &id);
    return 0;
}

SEC("uprobe") int BPF_KPROBE(ssl_write_enter) { return enter(ctx, KS_TLS_DIR_WRITE, 0); }
SEC("uprobe") int BPF_KPROBE(ssl_read_enter) { return enter(ctx, KS_TLS_DIR_READ, 0); }
SEC("uprobe") int BPF_KPROBE(ssl_write_ex_enter) { return enter(ctx, KS_TLS_DIR_WRITE, 1); }
SEC("uprobe") int BPF_KPROBE(ssl_read_ex_enter) { return enter(ctx, KS_TLS_DIR_READ, 1); }
SEC("uretprobe") int BPF_KRETPROBE(ssl_write_leave) { return leave(ctx); }
SEC("uretprobe") int BPF_KRETPROBE(ssl_read_leave) { return leave(ctx); }
SEC("uretprobe") int BPF_KRETPROBE(ssl_write_ex_leave) { return leave(ctx); }
SEC("uretprobe") int BPF_KRETPROBE(ssl_read_ex_leave) { return leave(ctx); }

/* The fd of the SSL call in progress on this thread, from its socket syscall. */
struct sys_enter_fd {
    __u64 common;
    __s32 nr;
    __u32 pad;
    __u64 fd;
};

static __always_inline int note_fd(struct sys_enter_fd *ctx) {
    __u64 id = bpf_get_current_pid_tgid();
    struct call *c = bpf_map_lookup_elem(&calls, &id);
    if (c) c->fd = (__s32)ctx->fd;
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_read") int sys_enter_read(struct sys_enter_fd *ctx) { return note_fd(ctx); }
SEC("tracepoint/syscalls/sys_enter_write") int sys_enter_write(struct sys_enter_fd *ctx) { return note_fd(ctx); }
SEC("tracepoint/syscalls/sys_enter_recvfrom") int sys_enter_recvfrom(struct sys_enter_fd *ctx) { return note_fd(ctx); }
SEC("tracepoint/syscalls/sys_enter_sendto") int sys_enter_sendto(struct sys_enter_fd *ctx) { return note_fd(ctx); }
