#!/usr/bin/env bash
# HTTP/2 dissection throughput: tshark vs kubeshark on one capture of real
# h2load traffic against nghttpd (h2c with prior knowledge, several clients,
# many concurrent streams each), in the same invocation.
#
#   Benchmarks/http2.sh                 # record (root) then measure
#   REUSE=1 Benchmarks/http2.sh         # measure the existing capture again
#
# Settings: PACKETS (default 100000), RUNS (default 3, fastest shown),
# KUBESHARK (default .build/release/kubeshark), PORT (default 18080), OUT (default /tmp/ks-bench-http2).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"
PACKETS=${PACKETS:-100000}
RUNS=${RUNS:-3}
PORT=${PORT:-18080}
REUSE=${REUSE:-0}
KUBESHARK=${KUBESHARK:-.build/release/kubeshark}
OUT=${OUT:-/tmp/ks-bench-http2}
PCAP="$OUT/http2-$PACKETS.pcap"
mkdir -p "$OUT"
log() { echo "http2-bench: $*" >&2; }

record() {
  local work server tcpdump
  work=$(mktemp -d)
  mkdir -p "$work/www"
  head -c 2048 /dev/urandom | base64 > "$work/www/index.html"
  printf '{"ok":true}\n' > "$work/www/small.json"
  nghttpd --no-tls -d "$work/www" "$PORT" > "$work/nghttpd.log" 2>&1 &
  server=$!
  trap 'kill -9 $server 2>/dev/null || true; rm -rf "$work"' RETURN
  for _ in $(seq 50); do nghttp -n "http://127.0.0.1:$PORT/small.json" >/dev/null 2>&1 && break; sleep 0.1; done
  tcpdump -i lo --immediate-mode -s 0 -B 65536 -U -w "$PCAP" -c "$PACKETS" "tcp port $PORT" 2>"$work/tcpdump.log" &
  tcpdump=$!
  sleep 1
  # 8 clients, 16 concurrent streams each, until tcpdump has its packets (bounded).
  timeout 180 bash -c "while kill -0 $tcpdump 2>/dev/null; do
      h2load -n 100000 -c 8 -m 16 http://127.0.0.1:$PORT/index.html http://127.0.0.1:$PORT/small.json >/dev/null 2>&1 || true
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
measure tshark tshark -n -r "$PCAP" -d "tcp.port==$PORT,http2" -Y http2 -T fields -e http2.streamid -e http2.headers.path -e http2.headers.status
measure kubeshark "$KUBESHARK" dissect "$PCAP" --plugins http2 --output json
measure kubeshark-mt "$KUBESHARK" dissect "$PCAP" --plugins http2 --output json --threads "$(nproc)"
ENTRIES=$("$KUBESHARK" dissect "$PCAP" --plugins http2 --output json | wc -l)
FRAMES=$(tshark -n -r "$PCAP" -d "tcp.port==$PORT,http2" -Y http2 -T fields -e http2.type -E occurrence=a -E aggregator=' ' 2>/dev/null | wc -w)

{
  echo "capture: $PCAP ($PKTS packets, $FRAMES HTTP/2 frames, $FILE_BYTES bytes); kubeshark entries: $ENTRIES"
  printf '%-12s %9s %13s %9s %14s\n' tool seconds packets/s MB/s "peak RSS MiB"
  for t in tshark kubeshark kubeshark-mt; do
    awk -v t="$t" -v s="${SECS[$t]}" -v r="${RSS[$t]}" -v p="$PKTS" -v b="$FILE_BYTES" 'BEGIN{
      d = (s > 0) ? s : 0.005; printf "%-12s %9.2f %13.0f %9.1f %14.1f\n", t, s, p/d, b/1e6/d, r/1024 }'
  done
  awk -v k="${SECS[kubeshark]}" -v m="${SECS[kubeshark-mt]}" -v t="${SECS[tshark]}" 'BEGIN{
    printf "kubeshark pps / tshark pps: %.1f (one thread), %.1f (--threads)\n", t/k, t/m }'
} | tee "$OUT/http2-results-$PACKETS.txt"
