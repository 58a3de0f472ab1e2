/* Thin C helpers over Linux AF_PACKET with a TPACKET_V3 ring, for the Swift
 * AFPacketBackend. The ring logic lives in Swift; this file only hides the
 * kernel structs' unions and the socket options. Linux only. */
#ifndef KS_AFPACKET_H
#define KS_AFPACKET_H

#include <stdint.h>
#include <stddef.h>

#ifdef __linux__
#include <linux/if_packet.h>
#include <sys/socket.h>

/* Opens an AF_PACKET raw socket that receives nothing until ks_afp_bind. -errno on failure. */
int ks_afp_socket(void);

/* Selects TPACKET_V3 and maps an RX ring of block_nr blocks of block_size bytes;
 * blocks retire after retire_ms. Returns 0 and the mapping, or -errno. */
int ks_afp_setup_ring(int fd, uint32_t block_size, uint32_t block_nr, uint32_t frame_size,
                      uint32_t retire_ms, void **ring);

/* Attaches a classic BPF program (struct bpf_insn-compatible array). 0 or -errno. */
int ks_afp_attach_filter(int fd, const void *instructions, uint32_t count);

/* Starts receiving every protocol on ifindex (0 = all interfaces). 0 or -errno. */
int ks_afp_bind(int fd, int ifindex);

/* Joins a PACKET_FANOUT group (hash mode) so several sockets share the load. 0 or -errno. */
int ks_afp_fanout(int fd, uint16_t group_id);

/* Puts ifindex in promiscuous mode for as long as the socket is open (the kernel
 * counts such requests and undoes this one when the socket closes). 0 or -errno. */
int ks_afp_promiscuous(int fd, int ifindex);

/* Kernel counters since the last call (the kernel resets them on read). 0 or -errno. */
int ks_afp_stats(int fd, uint32_t *packets, uint32_t *drops);

/* ARPHRD_* type of an interface, or -errno. */
int ks_afp_hardware_type(const char *ifname);

/* Waits up to timeout_ms for the socket to become readable. >0 ready, 0 timeout, -errno. */
int ks_afp_poll(int fd, int timeout_ms);

int ks_afp_unmap(void *ring, size_t length);

/* Headroom the kernel leaves before each packet (PACKET_RESERVE), set before the ring. 0 or -errno. */
int ks_afp_set_reserve(int fd, uint32_t bytes);

/* Rewrites the packet at header as Linux cooked capture v2 (DLT_LINUX_SLL2): a
 * 20-byte header (protocol, ifindex, ARPHRD type, packet type, address) written
 * in place just before the network header, from the sockaddr_ll the kernel put
 * after tpacket3_hdr. Returns the offset of the SLL2 header from header and sets
 * caplen and len accordingly. Needs PACKET_RESERVE >= 20. */
static inline uint32_t ks_afp_to_sll2(void *header, uint32_t *caplen, uint32_t *len) {
    struct tpacket3_hdr *h = (struct tpacket3_hdr *)header;
    const struct sockaddr_ll *sll = (const struct sockaddr_ll *)((uint8_t *)header + TPACKET_ALIGN(sizeof(struct tpacket3_hdr)));
    uint32_t l2 = h->tp_net > h->tp_mac ? (uint32_t)(h->tp_net - h->tp_mac) : 0;
    if (l2 > h->tp_snaplen) l2 = h->tp_snaplen;
    uint8_t *out = (uint8_t *)header + h->tp_net - 20;
    uint16_t protocol = sll->sll_protocol;           /* network order already */
    uint32_t ifindex = (uint32_t)sll->sll_ifindex;
    uint16_t hatype = sll->sll_hatype;
    uint8_t pkttype = sll->sll_pkttype;
    uint8_t halen = sll->sll_halen > 8 ? 8 : sll->sll_halen;
    uint8_t addr[8] = {0};
    for (int i = 0; i < halen; i++) addr[i] = sll->sll_addr[i];
    out[0] = (uint8_t)(protocol & 0xff); out[1] = (uint8_t)(protocol >> 8);
    out[2] = 0; out[3] = 0;
    out[4] = (uint8_t)(ifindex >> 24); out[5] = (uint8_t)(ifindex >> 16); out[6] = (uint8_t)(ifindex >> 8); out[7] = (uint8_t)ifindex;
    out[8] = (uint8_t)(hatype >> 8); out[9] = (uint8_t)hatype;
    out[10] = pkttype;
    out[11] = halen;
    for (int i = 0; i < 8; i++) out[12 + i] = addr[i];
    *caplen = h->tp_snaplen - l2 + 20;
    *len = h->tp_len - l2 + 20;
    return (uint32_t)h->tp_net - 20;
}

static inline uint32_t ks_afp_block_status(const void *block) {
    return __atomic_load_n(&((const struct tpacket_block_desc *)block)->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
}
static inline void ks_afp_block_release(void *block) {
    __atomic_store_n(&((struct tpacket_block_desc *)block)->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
}
static inline uint32_t ks_afp_block_packets(const void *block) {
    return ((const struct tpacket_block_desc *)block)->hdr.bh1.num_pkts;
}
static inline uint32_t ks_afp_block_first(const void *block) {
    return ((const struct tpacket_block_desc *)block)->hdr.bh1.offset_to_first_pkt;
}
static inline int ks_afp_status_user(uint32_t status) { return (status & TP_STATUS_USER) != 0; }

/* One packet header in a block: fields the backend needs. */
typedef struct ks_afp_packet {
    uint32_t next_offset;
    uint32_t sec;
    uint32_t nsec;
    uint32_t snaplen;
    uint32_t len;
    uint16_t mac;
} ks_afp_packet;

/* Asks for the cache lines of [from, from + length) ahead of use: the ring's
 * headers were just written by the kernel on another core, and a load of one
 * waits for the line to come over; prefetched lines arrive while earlier
 * packets are handled. */
static inline void ks_afp_prefetch(const void *from, size_t length) {
    const char *p = (const char *)from;
    for (size_t i = 0; i < length; i += 64) __builtin_prefetch(p + i, 0, 3);
}

static inline ks_afp_packet ks_afp_packet_at(const void *header) {
    const struct tpacket3_hdr *h = (const struct tpacket3_hdr *)header;
    ks_afp_packet p = { h->tp_next_offset, h->tp_sec, h->tp_nsec, h->tp_snaplen, h->tp_len, h->tp_mac };
    return p;
}
#endif

#endif
