#!/usr/bin/env bash
# Live capture cost: libpcap, af_packet, af_xdp (kubeshark capture -w /dev/null)
# and tcpdump -w /dev/null, one after another in the same run, each receiving the
# same capture replayed at top speed into a veth pair.
#
# 1. Synthesises Benchmarks/out/capture-$PACKETS.pcap (skipped when present):
#    TCP conversations between 64 client/server pairs, HTTP-like: handshake,
#    a 200-400 byte request, responses of 1-6 full-size segments, ACKs, FIN.
#    Every frame fits a 1500-byte MTU (so tcpreplay can send it on a veth).
# 2. Creates the veth pair ksbench0 (sender) / ksbench1 (receiver), no
#    addresses, IPv6 off, and for each receiver in turn:
#      starts it on ksbench1 and waits until it says it captures,
#      reads its utime+stime from /proc/PID/stat,
#      runs SENDERS x `tcpreplay -t -i ksbench0 FILE` at once,
#      waits SETTLE seconds, reads utime+stime again, stops it with SIGINT,
#      and parses its own statistics line for received and dropped.
#    Receiver CPU is the capture process's own user+system time while the
#    replay ran; the kernel's softirq work (copies into rings, the tc mirror,
#    XDP) is charged to the sender's CPU and is not in it, for any backend.
# 3. Prints a table: sent, received, dropped, CPU s per million packets, ratio
#    to tcpdump. RUNS (default 2) repeats the whole sequence; each backend's
#    best run (fewest drops, then least CPU per packet) is reported, and every
#    run is logged on stderr.
#
# Environment:
#   PACKETS=1000000  packets in the synthetic capture
#   SENDERS=1        concurrent tcpreplay processes (each sends the whole file)
#   LOOPS=3          times each sender replays the file (tcpreplay -l)
#   RUNS=2           repetitions of the sequence
#   SETTLE=1         seconds between the end of the replay and the stop
#   KUBESHARK=.build/release/kubeshark
#   WORKER_ARGS=     extra arguments for the ring-* workers (Benchmarks/scripting.sh: --scripts DIR)
#   BACKENDS="tcpdump libpcap af_packet af_xdp"   (ring-af_xdp, ring-af_packet: the worker
#                    capturing into its master PCAP ring on disk, 4Gi limit)
# Needs root, tcpreplay, tcpdump, iproute2, python3.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=$HERE/out
PACKETS=${PACKETS:-1000000}
SENDERS=${SENDERS:-1}
LOOPS=${LOOPS:-3}
RUNS=${RUNS:-2}
SETTLE=${SETTLE:-1}
KUBESHARK=${KUBESHARK:-.build/release/kubeshark}
[[ $KUBESHARK == /* ]] || KUBESHARK=$ROOT/$KUBESHARK
BACKENDS=${BACKENDS:-"tcpdump libpcap af_packet af_xdp"}
PCAP=$OUT/capture-$PACKETS.pcap
TX=ksbench0
RX=ksbench1

log() { printf 'capture-bench: %s\n' "$*" >&2; }

[[ $(id -u) -eq 0 ]] || { log "needs root (veth pair, capture)"; exit 1; }
for tool in tcpreplay tcpdump ip python3; do
  command -v "$tool" >/dev/null || { log "missing $tool (run scripts/install-deps)"; exit 1; }
done
[[ -x $KUBESHARK ]] || { log "no $KUBESHARK (swift build -c release)"; exit 1; }
mkdir -p "$OUT"

RECEIVER_PID=
cleanup() {
  local rc=$?
  set +e
  [[ -n $RECEIVER_PID ]] && kill -INT "$RECEIVER_PID" 2>/dev/null && wait "$RECEIVER_PID" 2>/dev/null
  ip link del "$TX" 2>/dev/null
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. synthesise ------------------------------------------------------------
if [[ ! -s $PCAP ]]; then
  log "writing $PCAP ($PACKETS packets)"
  python3 - "$PCAP" "$PACKETS" <<'PYEOF'
import random, struct, sys
path, total = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
body = bytes(rnd.getrandbits(8) for _ in range(1448))
def frame(src, dst, sport, dport, seq, ack, flags, payload):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), rnd.getrandbits(16), 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + tcp
out = open(path, "wb")
out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
n, t = 0, 1_700_000_000.0
def emit(f):
    global n, t
    t += 0.00001
    sec = int(t); usec = int((t - sec) * 1e6)
    out.write(struct.pack("<IIII", sec, usec, len(f), len(f)) + f)
    n += 1
conn = 0
while n < total:
    pair = conn % 64
    c = bytes([10, 1, pair, 2]); s = bytes([10, 2, pair, 1])
    cp = 20000 + conn % 40000; sp = 8080
    cs, ss = rnd.getrandbits(32), rnd.getrandbits(32)
    req = b"GET /item/%d HTTP/1.1\r\nHost: svc\r\nUser-Agent: bench\r\n" % conn + b"X-Pad: " + b"a" * rnd.randint(100, 300) + b"\r\n\r\n"
    segs = rnd.randint(1, 6)
    seq = [frame(c, s, cp, sp, cs, 0, 0x02, b""), frame(s, c, sp, cp, ss, cs + 1, 0x12, b""),
           frame(c, s, cp, sp, cs + 1, ss + 1, 0x10, b""), frame(c, s, cp, sp, cs + 1, ss + 1, 0x18, req)]
    off = 0
    for i in range(segs):
        seq.append(frame(s, c, sp, cp, ss + 1 + off, cs + 1 + len(req), 0x18 if i == segs - 1 else 0x10, body))
        off += len(body)
        if i % 2 == 1 or i == segs - 1:
            seq.append(frame(c, s, cp, sp, cs + 1 + len(req), ss + 1 + off, 0x10, b""))
    seq += [frame(c, s, cp, sp, cs + 1 + len(req), ss + 1 + off, 0x11, b""),
            frame(s, c, sp, cp, ss + 1 + off, cs + 2 + len(req), 0x11, b""),
            frame(c, s, cp, sp, cs + 2 + len(req), ss + 2 + off, 0x10, b"")]
    for f in seq:
        if n < total: emit(f)
    conn += 1
out.close()
PYEOF
fi
BYTES=$(stat -c %s "$PCAP")
log "capture: $PACKETS packets, $BYTES bytes"

# --- 2. network ---------------------------------------------------------------
ip link del "$TX" 2>/dev/null || true
ip link add "$TX" type veth peer name "$RX"
for d in $TX $RX; do
  echo 1 > /proc/sys/net/ipv6/conf/$d/disable_ipv6
  ip link set "$d" up
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICKS=$(getconf CLK_TCK)

declare -A BEST_CPU BEST_LINE BEST_DROP
run_one() {
  local backend=$1 run=$2 err=$OUT/capture-stderr-$backend.txt
  : > "$err"
  case $backend in
    tcpdump) tcpdump -n -i "$RX" -B 32768 -w /dev/null 2>"$err" & ;;
    # The worker: the backend feeding the master PCAP ring on disk.
    ring-*) rm -rf "$OUT/ring-data"
            # shellcheck disable=SC2086
            "$KUBESHARK" worker -i "$RX" --capture "${backend#ring-}" --storage-limit 4Gi --port 0 \
              --data-dir "$OUT/ring-data" ${WORKER_ARGS:-} 2>"$err" & ;;
    *) "$KUBESHARK" capture -i "$RX" --capture "$backend" -w /dev/null 2>"$err" & ;;
  esac
  RECEIVER_PID=$!
  local marker="capturing on"; [[ $backend == tcpdump || $backend == ring-* ]] && marker="listening on"
  for _ in $(seq 100); do grep -q "$marker" "$err" && break; sleep 0.1; done
  sleep 0.5
  local rx0 c0 c1 rx1
  rx0=$(cat /sys/class/net/$RX/statistics/rx_packets)
  c0=$(cpu_ticks "$RECEIVER_PID")
  local pids=()
  for _ in $(seq "$SENDERS"); do tcpreplay -q -t -l "$LOOPS" -i "$TX" "$PCAP" > "$OUT/tcpreplay.txt" 2>&1 & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
  sleep "$SETTLE"
  c1=$(cpu_ticks "$RECEIVER_PID")
  rx1=$(cat /sys/class/net/$RX/statistics/rx_packets)
  local ring_stats=
  if [[ $backend == ring-* ]]; then
    ring_stats=$(curl -s "$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$err" | head -1)/api/stats")
  fi
  kill -INT "$RECEIVER_PID"
  wait "$RECEIVER_PID" || true
  RECEIVER_PID=
  local sent=$((rx1 - rx0)) received dropped
  if [[ $backend == ring-* ]]; then
    # Received by the backend; dropped anywhere (kernel, backend, or the ring's
    # queue and disk): what reached the ring is received - dropped by the ring.
    read -r received dropped < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); c=d["capture"]; r=d["ring"]
print(c["received"], c["droppedByKernel"] + c["droppedByUs"] + r["droppedQueueFull"] + r["droppedDiskError"])' "$ring_stats")
  elif [[ $backend == tcpdump ]]; then
    received=$(awk '/packets captured/ {print $1}' "$err")
    dropped=$(awk '/dropped by kernel/ {print $1}' "$err")
  else
    received=$(sed -n 's/.*: \([0-9]*\) packets received, \([0-9]*\) dropped by kernel, \([0-9]*\) dropped by us.*/\1/p' "$err")
    dropped=$(sed -n 's/.*: \([0-9]*\) packets received, \([0-9]*\) dropped by kernel, \([0-9]*\) dropped by us.*/\2+\3/p' "$err")
    dropped=$((dropped))
  fi
  local cpu_s per_m
  cpu_s=$(awk -v a="$c0" -v b="$c1" -v t="$TICKS" 'BEGIN {printf "%.2f", (b - a) / t}')
  per_m=$(awk -v a="$c0" -v b="$c1" -v t="$TICKS" -v n="$sent" 'BEGIN {printf "%.3f", (b - a) / t / (n / 1e6)}')
  log "run $run $backend: sent $sent, received $received, dropped $dropped, cpu ${cpu_s}s, ${per_m} s/Mpkt"
  # Best run: fewest drops, then least CPU per packet.
  if [[ -z ${BEST_CPU[$backend]:-} ]] || (( dropped < BEST_DROP[$backend] )) ||
     { (( dropped == BEST_DROP[$backend] )) && awk -v a="$per_m" -v b="${BEST_CPU[$backend]}" 'BEGIN {exit !(a < b)}'; }; then
    BEST_CPU[$backend]=$per_m
    BEST_DROP[$backend]=$dropped
    BEST_LINE[$backend]="$sent|$received|$dropped|$cpu_s|$per_m"
  fi
}

for run in $(seq "$RUNS"); do
  for backend in $BACKENDS; do run_one "$backend" "$run"; done
done

# --- 3. table ---------------------------------------------------------------
base=${BEST_CPU[tcpdump]:-}
printf '\n| receiver | sent | received | dropped | CPU s | CPU s / Mpkt | vs tcpdump |\n|---|---:|---:|---:|---:|---:|---:|\n'
for backend in $BACKENDS; do
  IFS='|' read -r sent received dropped cpu per_m <<< "${BEST_LINE[$backend]}"
  ratio=-
  [[ -n $base ]] && ratio=$(awk -v a="$per_m" -v b="$base" 'BEGIN {if (b > 0) printf "%.2fx", a / b; else print "-"}')
  case $backend in
    tcpdump) name="tcpdump -w /dev/null" ;;
    ring-*) name="kubeshark worker --capture ${backend#ring-} (into the ring)" ;;
    *) name="kubeshark capture --capture $backend" ;;
  esac
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$sent" "$received" "$dropped" "$cpu" "$per_m" "$ratio"
done
