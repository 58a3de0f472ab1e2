#define _GNU_SOURCE
#include "ks_afpacket.h"

#ifdef __linux__
#include <errno.h>
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <net/if.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

int ks_afp_socket(void) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
}

int ks_afp_setup_ring(int fd, uint32_t block_size, uint32_t block_nr, uint32_t frame_size,
                      uint32_t retire_ms, void **ring) {
    int version = TPACKET_V3;
    if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) < 0) return -errno;
    struct tpacket_req3 req;
    memset(&req, 0, sizeof req);
    req.tp_block_size = block_size;
    req.tp_block_nr = block_nr;
    req.tp_frame_size = frame_size;
    req.tp_frame_nr = (block_size / frame_size) * block_nr;
    req.tp_retire_blk_tov = retire_ms;
    if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) return -errno;
    void *map = mmap(NULL, (size_t)block_size * block_nr, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return -errno;
    *ring = map;
    return 0;
}

int ks_afp_attach_filter(int fd, const void *instructions, uint32_t count) {
    struct sock_fprog prog;
    prog.len = (unsigned short)count;
    prog.filter = (struct sock_filter *)instructions;
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0 ? -errno : 0;
}

int ks_afp_bind(int fd, int ifindex) {
    struct sockaddr_ll addr;
    memset(&addr, 0, sizeof addr);
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(ETH_P_ALL);
    addr.sll_ifindex = ifindex;
    return bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 ? -errno : 0;
}

int ks_afp_fanout(int fd, uint16_t group_id) {
    int arg = (int)group_id | (PACKET_FANOUT_HASH << 16);
    return setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) < 0 ? -errno : 0;
}

int ks_afp_promiscuous(int fd, int ifindex) {
    struct packet_mreq mreq;
    memset(&mreq, 0, sizeof mreq);
    mreq.mr_ifindex = ifindex;
    mreq.mr_type = PACKET_MR_PROMISC;
    return setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0 ? -errno : 0;
}

int ks_afp_stats(int fd, uint32_t *packets, uint32_t *drops) {
    struct tpacket_stats_v3 st;
    socklen_t len = sizeof st;
    memset(&st, 0, sizeof st);
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0) return -errno;
    *packets = st.tp_packets;
    *drops = st.tp_drops;
    return 0;
}

int ks_afp_hardware_type(const char *ifname) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    int rc = ioctl(s, SIOCGIFHWADDR, &ifr);
    int saved = errno;
    close(s);
    return rc < 0 ? -saved : ifr.ifr_hwaddr.sa_family;
}

int ks_afp_poll(int fd, int timeout_ms) {
    struct pollfd p = { fd, POLLIN | POLLERR, 0 };
    int rc = poll(&p, 1, timeout_ms);
    return rc < 0 ? -errno : rc;
}

int ks_afp_set_reserve(int fd, uint32_t bytes) {
    unsigned int v = bytes;
    return setsockopt(fd, SOL_PACKET, PACKET_RESERVE, &v, sizeof v) < 0 ? -errno : 0;
}

int ks_afp_unmap(void *ring, size_t length) {
    return munmap(ring, length) < 0 ? -errno : 0;
}
#endif
