/*
 * Baseline for Benchmarks/http1.sh: the cheapest possible pass over a capture
 * file with libpcap -- pcap_next_ex() in a loop, counting packets and bytes.
 * No dissection at all; any tool that parses the same file can at best match
 * this.
 *
 *   cc -O2 -Wall -o pcap_read_loop pcap_read_loop.c -lpcap
 *   ./pcap_read_loop FILE.pcap
 *
 * Prints one line: packets=N caplen_bytes=N wire_bytes=N file=FILE
 */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE.pcap\n", argv[0]);
        return 2;
    }
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(argv[1], errbuf);
    if (p == NULL) {
        fprintf(stderr, "pcap_open_offline: %s\n", errbuf);
        return 1;
    }

    struct pcap_pkthdr *hdr;
    const u_char *data;
    uint64_t packets = 0, caplen = 0, wirelen = 0;
    unsigned sink = 0;
    int rc;
    while ((rc = pcap_next_ex(p, &hdr, &data)) == 1) {
        packets++;
        caplen += hdr->caplen;
        wirelen += hdr->len;
        if (hdr->caplen > 0)
            sink += data[hdr->caplen - 1]; /* touch the packet bytes */
    }
    if (rc == PCAP_ERROR) {
        fprintf(stderr, "pcap_next_ex: %s\n", pcap_geterr(p));
        pcap_close(p);
        return 1;
    }
    pcap_close(p);
    printf("packets=%llu caplen_bytes=%llu wire_bytes=%llu sink=%u file=%s\n",
           (unsigned long long)packets, (unsigned long long)caplen,
           (unsigned long long)wirelen, sink, argv[1]);
    return 0;
}
