#!/usr/bin/env bash
# Kafka dissection throughput: tshark vs kubeshark on one capture of real Kafka
# traffic (librdkafka's mock cluster, kcat producers and a consumer), in the same
# invocation.
#
#   Benchmarks/kafka.sh               # record (root) then measure
#   REUSE=1 Benchmarks/kafka.sh       # measure the existing capture again
#
# Settings: PACKETS (default 300000), RUNS (default 2, fastest shown),
# KUBESHARK (default .build/release/kubeshark), OUT (default /tmp/kubeshark-bench),
# LOAD_SECONDS (default 120, upper bound), RECORD_ONLY=1 (record, measure nothing).
# Needs cc, librdkafka-dev, kcat, tcpdump, tshark, /usr/bin/time.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
NAME=kafka
PACKETS=${PACKETS:-300000}
RUNS=${RUNS:-2}
REUSE=${REUSE:-0}
LOAD_SECONDS=${LOAD_SECONDS:-120}
KUBESHARK=${KUBESHARK:-.build/release/kubeshark}
OUT=${OUT:-/tmp/kubeshark-bench}
PCAP="$OUT/kafka-$PACKETS.pcap"
mkdir -p "$OUT"
source "$HERE/lib.sh"

record() {
  local work cluster bootstrap port pids=()
  work=$(mktemp -d)
  cc -O2 -o "$work/mockcluster" Tests/Fixtures/kafka/mockcluster.c -lrdkafka
  "$work/mockcluster" $((LOAD_SECONDS + 30)) > "$work/bootstrap" 2>"$work/cluster.log" &
  cluster=$!
  trap 'kill -9 $cluster 2>/dev/null || true; rm -rf "$work"' RETURN
  for _ in $(seq 50); do [[ -s $work/bootstrap ]] && break; sleep 0.1; done
  bootstrap=$(head -n 1 "$work/bootstrap")
  port=${bootstrap##*:}
  port=${port%%,*}
  echo "$port" > "$OUT/kafka-port"
  # 20,000 keyed messages of about 100 bytes, produced again and again.
  awk 'BEGIN{ for (i = 0; i < 20000; i++) printf "key-%d:{\"order\":%d,\"item\":\"widget-%d\",\"qty\":%d,\"note\":\"%s\"}\n", i % 97, i, i % 13, i % 7, "abcdefghijklmnopqrstuvwxyz0123456789" }' > "$work/messages"
  start_tcpdump "tcp port $port"
  local end=$((SECONDS + LOAD_SECONDS))
  # Producers: small batches (many Produce requests), one of them gzip; one consumer
  # fetching. Each loop is its own process group, killed whole at the end.
  local loop='while kill -0 "$1" 2>/dev/null && ((SECONDS < $2)); do timeout -s KILL 60 "${@:3}" || true; done'
  setsid bash -c "$loop" _ "$TCPDUMP_PID" "$end" kcat -b "$bootstrap" -P -t orders -K: -l -X linger.ms=0 \
    -X batch.num.messages=8 "$work/messages" >/dev/null 2>&1 & pids+=($!)
  setsid bash -c "$loop" _ "$TCPDUMP_PID" "$end" kcat -b "$bootstrap" -P -t orders -K: -z gzip -l -X linger.ms=0 \
    -X batch.num.messages=16 "$work/messages" >/dev/null 2>&1 & pids+=($!)
  setsid bash -c "$loop" _ "$TCPDUMP_PID" "$end" kcat -b "$bootstrap" -C -t orders -o beginning -e -q \
    -X fetch.max.bytes=65536 -X max.partition.fetch.bytes=16384 >/dev/null 2>&1 & pids+=($!)
  while kill -0 "$TCPDUMP_PID" 2>/dev/null && ((SECONDS < end)); do sleep 0.5; done
  stop_tcpdump "$TCPDUMP_PID"
  for p in "${pids[@]}"; do kill -9 -- "-$p" 2>/dev/null || true; done
  kill -9 "$cluster" 2>/dev/null || true
  wait 2>/dev/null || true
}

if [[ $REUSE == 1 && -s $PCAP ]]; then bench_log "reusing $PCAP"; else bench_log "recording $PACKETS packets"; record; fi
[[ ${RECORD_ONLY:-0} == 1 ]] && exit 0
PORT=$(cat "$OUT/kafka-port")
cat "$PCAP" > /dev/null
TSHARK=(tshark -n -r "$PCAP" -d "tcp.port==$PORT,kafka" -Y kafka -T fields -e kafka.api_key -e kafka.correlation_id -e kafka.topic_name)
KEEP_STDOUT=1 measure tshark "${TSHARK[@]}"
run_kubeshark kafka
report "$("$KUBESHARK" dissect "$PCAP" --plugins kafka --output json | wc -l)" "$(wc -l < "$OUT/stdout-$NAME-tshark.txt")"
