#!/usr/bin/env bash
# Redis dissection throughput: tshark vs kubeshark on one capture of real,
# pipelined redis-benchmark traffic, in the same invocation.
#
#   Benchmarks/redis.sh                 # record (root) then measure
#   REUSE=1 Benchmarks/redis.sh         # measure the existing capture again
#
# Settings: PACKETS (default 300000), RUNS (default 3, fastest shown),
# KUBESHARK (default .build/release/kubeshark), PORT (default 16379).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"
PACKETS=${PACKETS:-300000}
RUNS=${RUNS:-3}
PORT=${PORT:-16379}
REUSE=${REUSE:-0}
KUBESHARK=${KUBESHARK:-.build/release/kubeshark}
OUT="$HERE/out"
PCAP="$OUT/redis-$PACKETS.pcap"
mkdir -p "$OUT"
log() { echo "redis-bench: $*" >&2; }

record() {
  local work server tcpdump
  work=$(mktemp -d)
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" --daemonize no \
    > "$work/redis.log" 2>&1 &
  server=$!
  trap 'kill -9 $server 2>/dev/null || true; rm -rf "$work"' RETURN
  for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  tcpdump -i lo -s 0 -B 65536 -U -w "$PCAP" -c "$PACKETS" "tcp port $PORT" 2>"$work/tcpdump.log" &
  tcpdump=$!
  sleep 1
  # Pipelined SET/GET/LPUSH/LRANGE from 8 clients, until tcpdump has its packets (bounded).
  timeout 120 bash -c "while kill -0 $tcpdump 2>/dev/null; do
      redis-benchmark -p $PORT -c 8 -n 200000 -P 16 -q -t set,get,lpush,lrange_100 -d 64 >/dev/null 2>&1 || true
    done" || true
  kill -INT "$tcpdump" 2>/dev/null || true
  wait "$tcpdump" 2>/dev/null || true
}

if [[ $REUSE == 1 && -s $PCAP ]]; then log "reusing $PCAP"; else log "recording $PACKETS packets"; record; fi
FILE_BYTES=$(stat -c %s "$PCAP")
PKTS=$(tcpdump -r "$PCAP" -qn 2>/dev/null | wc -l)

declare -A SECS RSS
measure() {  # NAME CMD...  -> fastest elapsed seconds and its peak RSS (KiB)
  local name=$1; shift
  local best="" rss="" s r
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f '%e %M' -o "$OUT/time-$name.txt" "$@" > /dev/null 2>"$OUT/stderr-$name.txt"
    read -r s r < <(tail -n 1 "$OUT/time-$name.txt")
    log "  $name: ${s}s, ${r} KiB"
    if [[ -z $best ]] || awk -v a="$s" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$s; rss=$r; fi
  done
  SECS[$name]=$best; RSS[$name]=$rss
}
cat "$PCAP" > /dev/null
measure tshark tshark -n -r "$PCAP" -Y resp -T fields -e resp.bulk_string.value
measure kubeshark "$KUBESHARK" dissect "$PCAP" --plugins redis --output json
measure kubeshark-mt "$KUBESHARK" dissect "$PCAP" --plugins redis --output json --threads "$(nproc)"
ENTRIES=$("$KUBESHARK" dissect "$PCAP" --plugins redis --output json | wc -l)

{
  echo "capture: $PCAP ($PKTS packets, $FILE_BYTES bytes); kubeshark entries: $ENTRIES"
  printf '%-12s %9s %13s %9s %14s\n' tool seconds packets/s MB/s "peak RSS MiB"
  for t in tshark kubeshark kubeshark-mt; do
    awk -v t="$t" -v s="${SECS[$t]}" -v r="${RSS[$t]}" -v p="$PKTS" -v b="$FILE_BYTES" 'BEGIN{
      d = (s > 0) ? s : 0.005; printf "%-12s %9.2f %13.0f %9.1f %14.1f\n", t, s, p/d, b/1e6/d, r/1024 }'
  done
  awk -v k="${SECS[kubeshark]}" -v m="${SECS[kubeshark-mt]}" -v t="${SECS[tshark]}" 'BEGIN{
    printf "kubeshark pps / tshark pps: %.1f (one thread), %.1f (--threads)\n", t/k, t/m }'
} | tee "$OUT/redis-results-$PACKETS.txt"
