#!/usr/bin/env bash
# Records kcat producing (gzip, with a header) and consuming against librdkafka's
# mock cluster (mockcluster.c), with tcpdump on the loopback interface. Needs root,
# cc, librdkafka-dev, kcat and tcpdump.
#
#   Tests/Fixtures/kafka/record-kafka.sh            # rewrite the committed capture
#   Tests/Fixtures/kafka/record-kafka.sh /tmp/out   # elsewhere
#
# Writes OUTDIR/kcat-mock.pcap and OUTDIR/port (the broker's port: tshark needs
# `-d tcp.port==PORT,kafka`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() {
  # SIGKILL: a parent (a test runner) may leave SIGTERM/SIGINT blocked.
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cc -O1 -o "$work/mockcluster" "$here/mockcluster.c" -lrdkafka
"$work/mockcluster" 60 > "$work/bootstrap" 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do [[ -s $work/bootstrap ]] && break; sleep 0.1; done
bootstrap=$(head -n 1 "$work/bootstrap")
port=${bootstrap##*:}
tcpdump -i lo -U -n -w "$out/kcat-mock.pcap" "tcp port $port" > "$work/tcpdump.log" 2>&1 &
tp=$!
pids+=($tp)
for _ in $(seq 50); do grep -q "listening on" "$work/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
# Long enough that librdkafka finds gzip worth it (it sends small batches plain).
long=$(printf 'hello %.0s' $(seq 100))
printf 'k1:%s\nk2:world\n' "$long" | timeout -s KILL 20 kcat -b "$bootstrap" -P -t orders -K: -H trace=abc -z gzip
timeout -s KILL 20 kcat -b "$bootstrap" -C -t orders -o beginning -e -f '%k=%s\n' > /dev/null
sleep 1
kill -TERM "$tp" 2>/dev/null || true
for _ in $(seq 10); do kill -0 "$tp" 2>/dev/null || break; sleep 0.1; done
echo "$port" > "$out/port"
