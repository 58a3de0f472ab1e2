#!/usr/bin/env bash
# gRPC dissection throughput: tshark vs kubeshark on one capture of real grpcio
# traffic (a Python grpcio server and client on loopback: concurrent unary calls,
# server streams and bidirectional streams over 4 channels, one of them gzip),
# in the same invocation.
#
#   Benchmarks/grpc.sh                 # record (root) then measure
#   REUSE=1 Benchmarks/grpc.sh         # measure the existing capture again
#
# Settings: PACKETS (default 200000), RUNS (default 2, fastest shown),
# KUBESHARK (default .build/release/kubeshark), PORT (default 15051),
# OUT (default /tmp/kubeshark-bench), LOAD_SECONDS (default 180, upper bound).
# Needs python3-grpcio (/usr/bin/python3), tcpdump, tshark, /usr/bin/time.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
NAME=grpc
PACKETS=${PACKETS:-200000}
RUNS=${RUNS:-2}
PORT=${PORT:-15051}
REUSE=${REUSE:-0}
LOAD_SECONDS=${LOAD_SECONDS:-180}
KUBESHARK=${KUBESHARK:-.build/release/kubeshark}
OUT=${OUT:-/tmp/kubeshark-bench}
PCAP="$OUT/grpc-$PACKETS.pcap"
PEER=Tests/Fixtures/http2/grpc_peer.py
mkdir -p "$OUT"
source "$HERE/lib.sh"

record() {
  local server
  /usr/bin/python3 "$PEER" server "$PORT" > "$OUT/grpc-server.log" 2>&1 &
  server=$!
  trap 'kill -9 $server 2>/dev/null || true' RETURN
  for _ in $(seq 100); do grep -q ready "$OUT/grpc-server.log" 2>/dev/null && break; sleep 0.1; done
  start_tcpdump "tcp port $PORT"
  timeout -s KILL $((LOAD_SECONDS + 5)) /usr/bin/python3 "$PEER" load "$PORT" "$LOAD_SECONDS" "$TCPDUMP_PID" || true
  stop_tcpdump "$TCPDUMP_PID"
}

if [[ $REUSE == 1 && -s $PCAP ]]; then bench_log "reusing $PCAP"; else bench_log "recording $PACKETS packets"; record; fi
cat "$PCAP" > /dev/null
TSHARK=(tshark -n -r "$PCAP" -d "tcp.port==$PORT,http2" -Y grpc -T fields -e http2.streamid -e http2.headers.path
        -e grpc.message_length)
KEEP_STDOUT=1 measure tshark "${TSHARK[@]}"
run_kubeshark http2
report "$("$KUBESHARK" dissect "$PCAP" --plugins http2 --output json | wc -l)" "$(wc -l < "$OUT/stdout-$NAME-tshark.txt")"
