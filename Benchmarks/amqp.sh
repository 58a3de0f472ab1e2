#!/usr/bin/env bash
# AMQP 0-9-1 dissection throughput: tshark vs kubeshark on one capture of real
# AMQP traffic (a private rabbitmq-server, a pika publisher and a pika consumer),
# in the same invocation.
#
#   Benchmarks/amqp.sh                # record (root) then measure
#   REUSE=1 Benchmarks/amqp.sh        # measure the existing capture again
#
# Settings: PACKETS (default 300000), RUNS (default 2, fastest shown),
# KUBESHARK (default .build/release/kubeshark), OUT (default /tmp/kubeshark-bench),
# LOAD_SECONDS (default 180, upper bound), RECORD_ONLY=1 (record, measure nothing).
# Needs rabbitmq-server, python3-pika, tcpdump, tshark, /usr/bin/time.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
NAME=amqp
PACKETS=${PACKETS:-300000}
RUNS=${RUNS:-2}
REUSE=${REUSE:-0}
LOAD_SECONDS=${LOAD_SECONDS:-180}
KUBESHARK=${KUBESHARK:-.build/release/kubeshark}
OUT=${OUT:-/tmp/kubeshark-bench}
PCAP="$OUT/amqp-$PACKETS.pcap"
mkdir -p "$OUT"
source "$HERE/lib.sh"

record() {
  # Debian's python3 has python3-pika; another python3 first on PATH may not.
  local python=/usr/bin/python3
  [[ -x $python ]] || python=python3
  rm -f "$PCAP"
  timeout -s KILL $((LOAD_SECONDS + 120)) "$python" "$HERE/amqp-load.py" "$PCAP" "$PACKETS" "$LOAD_SECONDS" \
    > "$OUT/amqp-port" 2>"$OUT/amqp-load.log"
}

if [[ $REUSE == 1 && -s $PCAP ]]; then bench_log "reusing $PCAP"; else bench_log "recording $PACKETS packets"; record; fi
[[ ${RECORD_ONLY:-0} == 1 ]] && exit 0
PORT=$(head -n 1 "$OUT/amqp-port")
cat "$PCAP" > /dev/null
TSHARK=(tshark -n -r "$PCAP" -d "tcp.port==$PORT,amqp" -Y amqp -T fields -e amqp.method.class -e amqp.method.method)
KEEP_STDOUT=1 measure tshark "${TSHARK[@]}"
run_kubeshark amqp
report "$("$KUBESHARK" dissect "$PCAP" --plugins amqp --output json | wc -l)" "$(wc -l < "$OUT/stdout-$NAME-tshark.txt")"
