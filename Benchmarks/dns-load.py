#!/usr/bin/env python3
"""DNS load for Benchmarks/dns.sh: query a local server over UDP from several
sockets (each its own flow) with a mix of names and types, until SECONDS pass or
STOPFILE's process is gone. Bounded in time; traffic only to 127.0.0.1.

usage: dns-load.py PORT SECONDS TCPDUMP_PID [SOCKETS]
"""
import os, random, select, socket, struct, sys, time

port, seconds, watch = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
nsock = int(sys.argv[4]) if len(sys.argv) > 4 else 8
names = [("web.test", 1), ("web.test", 28), ("host.test", 1), ("www.test", 1), ("test", 15),
         ("txt.test", 16), ("_http._tcp.test", 33), ("30.2.0.192.in-addr.arpa", 12), ("test", 257),
         ("svc.test", 65), ("nx.test", 1), ("mail.test", 1)]

def query(qid, name, qtype):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 1)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    # EDNS OPT like dig's
    return q + b"\0" + struct.pack(">HH", qtype, 1) + b"\0" + struct.pack(">HHIH", 41, 1232, 0, 0)

socks = []
for _ in range(nsock):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    s.connect(("127.0.0.1", port))
    socks.append(s)
deadline = time.time() + seconds
rng = random.Random(7)
sent = got = 0
inflight = {s: 0 for s in socks}
window = 16
while time.time() < deadline:
    if sent % 2048 == 0:
        try:
            os.kill(watch, 0)
        except ProcessLookupError:
            break
    for s in socks:
        while inflight[s] < window:
            name, qtype = names[rng.randrange(len(names))]
            try:
                s.send(query(rng.randrange(65536), name, qtype))
            except BlockingIOError:
                break
            inflight[s] += 1
            sent += 1
    r, _, _ = select.select(socks, [], [], 0.05)
    if not r:
        for s in socks: inflight[s] = 0   # lost answers: start the window again
    for s in r:
        while True:
            try:
                s.recv(4096)
            except BlockingIOError:
                break
            got += 1
            inflight[s] = max(0, inflight[s] - 1)
print(f"sent {sent} answers {got}", file=sys.stderr)
