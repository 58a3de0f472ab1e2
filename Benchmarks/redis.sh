#!/usr/bin/env bash
# Redis dissection throughput: tshark vs kubeshark on one capture of real,
# pipelined redis-benchmark traffic, in the same invocation.
#
#   Benchmarks/redis.sh                 # record (root) then measure
#   REUSE=1 Benchmarks/redis.sh         # measure the existing capture again
#
# Settings: PACKETS (default 300000), RUNS (default 2, fastest shown),
# KUBESHARK (default .build/release/kubeshark), PORT (default 16379),
# OUT (default /tmp/kubeshark-bench), RECORD_ONLY=1 (record, measure nothing).
# Needs redis-server, redis-benchmark (redis-tools), tcpdump, tshark, /usr/bin/time.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
NAME=redis
PACKETS=${PACKETS:-300000}
RUNS=${RUNS:-2}
PORT=${PORT:-16379}
REUSE=${REUSE:-0}
KUBESHARK=${KUBESHARK:-.build/release/kubeshark}
OUT=${OUT:-/tmp/kubeshark-bench}
PCAP="$OUT/redis-$PACKETS.pcap"
mkdir -p "$OUT"
source "$HERE/lib.sh"

record() {
  local work server
  work=$(mktemp -d)
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" --daemonize no \
    > "$work/redis.log" 2>&1 &
  server=$!
  trap 'kill -9 $server 2>/dev/null || true; rm -rf "$work"' RETURN
  for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  start_tcpdump "tcp port $PORT"
  # Pipelined SET/GET/LPUSH/LRANGE from 8 clients, until tcpdump has its packets (bounded).
  timeout -s KILL 120 bash -c "while kill -0 $TCPDUMP_PID 2>/dev/null; do
      redis-benchmark -p $PORT -c 8 -n 200000 -P 16 -q -t set,get,lpush,lrange_100 -d 64 >/dev/null 2>&1 || true
    done" || true
  stop_tcpdump "$TCPDUMP_PID"
}

if [[ $REUSE == 1 && -s $PCAP ]]; then bench_log "reusing $PCAP"; else bench_log "recording $PACKETS packets"; record; fi
[[ ${RECORD_ONLY:-0} == 1 ]] && exit 0
cat "$PCAP" > /dev/null
TSHARK=(tshark -n -r "$PCAP" -d "tcp.port==$PORT,resp" -Y resp -T fields -e resp.bulk_string.value)
KEEP_STDOUT=1 measure tshark "${TSHARK[@]}"
run_kubeshark redis
report "$("$KUBESHARK" dissect "$PCAP" --plugins redis --output json | wc -l)" "$(wc -l < "$OUT/stdout-$NAME-tshark.txt")"
