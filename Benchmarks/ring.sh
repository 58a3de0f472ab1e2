#!/usr/bin/env bash
# The worker's master PCAP ring and sessions, measured against peers in the
# same invocation, on the HTTP/1.1 capture of Benchmarks/http1.sh (nginx + wrk,
# 1M packets, ~485 MB; recorded first when missing):
#
#  1. ring write throughput: `kubeshark worker -r FILE` filling a ring, timed
#     from start until every packet is on disk (polling /api/stats), against
#     `tcpdump -r FILE -w OUT` (the same read + pcap write);
#  2. a session over the full ring: a WebSocket client opens a session with a
#     selective query and waits until it has caught up with the end of the ring
#     (polling /api/sessions), against `kubeshark dissect FILE --filter` offline;
#  3. KFL evaluations per second: `kubeshark filter QUERY entries.jsonl` against
#     `jq -c 'select(...)'` over the same entries;
#  4. the worker's peak RSS (VmHWM) with 3 sessions open over the full ring.
#
# Settings: PACKETS (default 1000000), LIMIT (default 500Mi), RUNS (default 2,
# best shown), KUBESHARK (default .build/release/kubeshark).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"
PACKETS=${PACKETS:-1000000}
LIMIT=${LIMIT:-500Mi}
RUNS=${RUNS:-2}
KUBESHARK=${KUBESHARK:-.build/release/kubeshark}
PCAP="$HERE/out/http1-$PACKETS.pcap"
# The KFL comparison keeps a quarter of the entries; the full-ring session
# uses a query that keeps none, so it times dissection, not the client.
QUERY='http and request.path == "/2k.txt"'
JQ='select(.protocol.name=="http" and .request.path=="/2k.txt")'
SESSION_QUERY='http and response.status >= 500'
log() { echo "ring-bench: $*" >&2; }

[[ -x $KUBESHARK ]] || { log "build first: swift build -c release"; exit 1; }
if [[ ! -f $PCAP ]]; then
  log "recording $PCAP with Benchmarks/http1.sh"
  PACKETS=$PACKETS SKIP_TSHARK=1 "$HERE/http1.sh" >/dev/null
fi
WORK=$(mktemp -d /tmp/ks-ring-bench.XXXXXX)
WORKER=
CLIENTS=()
cleanup() {
  set +e
  for p in "${CLIENTS[@]}" $WORKER; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
packets=$(tcpdump -r "$PCAP" -n 2>/dev/null | wc -l)
bytes=$(stat -c %s "$PCAP")
mb=$(echo "$bytes / 1000000" | bc -l)
stat_field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+sys.argv[1]))" "$1"; }

start_worker() {  # $1 = data dir; sets WORKER and PORTURL
  rm -rf "$1"
  "$KUBESHARK" worker -r "$PCAP" --data-dir "$1" --storage-limit "$LIMIT" --port 0 2>"$1.log" &
  WORKER=$!
  for _ in $(seq 400); do
    PORTURL=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$1.log" 2>/dev/null | head -1 || true)
    [[ -n $PORTURL ]] && break
    sleep 0.01
  done
}

# CPU seconds (user + system) a process has used so far.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"; }
# CPU seconds of a command, from /usr/bin/time.
timed_cpu() { /usr/bin/time -f '%U %S' -o "$WORK/cpu" "$@"; awk '{printf "%.3f", $1 + $2}' "$WORK/cpu"; }

stop_worker() { kill -TERM "$WORKER" 2>/dev/null; wait "$WORKER" 2>/dev/null || true; WORKER=; }

# --- 1. ring write throughput ------------------------------------------------
best_ring=999999; best_tcpdump=999999
for _ in $(seq "$RUNS"); do
  t0=$(now)
  start_worker "$WORK/w1"
  while true; do
    s=$(curl -s "$PORTURL/api/stats" || true)
    if [[ -n $s ]] && [[ $(echo "$s" | stat_field "['capture']['running']") == False ]]; then
      written=$(echo "$s" | stat_field "['ring']['packetsWritten']+d['ring']['droppedQueueFull']+d['ring']['droppedDiskError']")
      received=$(echo "$s" | stat_field "['capture']['received']")
      [[ $written == "$received" ]] && break
    fi
    sleep 0.02
  done
  t1=$(now)
  ring_cpu=$(cpu_of "$WORKER")
  ring_stats=$s
  stop_worker
  best_ring=$(echo "if ($t1 - $t0 < $best_ring) $t1 - $t0 else $best_ring" | bc -l)
  t0=$(now); tcpdump_cpu=$(timed_cpu tcpdump -r "$PCAP" -w "$WORK/tcpdump.pcap" 2>/dev/null); t1=$(now)
  rm -f "$WORK/tcpdump.pcap"
  best_tcpdump=$(echo "if ($t1 - $t0 < $best_tcpdump) $t1 - $t0 else $best_tcpdump" | bc -l)
done
written=$(echo "$ring_stats" | stat_field "['ring']['packetsWritten']")
dropped=$(echo "$ring_stats" | stat_field "['ring']['droppedQueueFull']")
usage=$(echo "$ring_stats" | stat_field "['ring']['usageBytes']")

# --- 2. a session over the full ring ------------------------------------------
start_worker "$WORK/w2"
until [[ $(curl -s "$PORTURL/api/stats" | stat_field "['capture']['running']" 2>/dev/null) == False ]]; do sleep 0.05; done
sleep 0.3
cpu0=$(cpu_of "$WORKER")
t0=$(now)
/usr/bin/python3 "$ROOT/Tests/WorkerTests/ws_client.py" "$PORTURL" --query "$SESSION_QUERY" --idle 600 >"$WORK/ws1.out" 2>&1 &
CLIENTS+=($!)
until [[ $(curl -s "$PORTURL/api/sessions" | python3 -c "import json,sys; s=json.load(sys.stdin); print(bool(s) and all(x['caughtUp'] for x in s))") == True ]]; do sleep 0.02; done
t1=$(now)
session_cpu=$(echo "$(cpu_of "$WORKER") - $cpu0" | bc -l)
session_secs=$(echo "$t1 - $t0" | bc -l)
session_entries=$(curl -s "$PORTURL/api/sessions" | stat_field "[0]['entriesMatched']")
# Two more sessions over the same ring, then the worker's peak RSS.
for q in "$QUERY" 'dns or redis'; do
  /usr/bin/python3 "$ROOT/Tests/WorkerTests/ws_client.py" "$PORTURL" --query "$q" --idle 600 >/dev/null 2>&1 &
  CLIENTS+=($!)
done
sleep 1
until [[ $(curl -s "$PORTURL/api/sessions" | python3 -c "import json,sys; s=json.load(sys.stdin); print(len(s)==3 and all(x['caughtUp'] for x in s))") == True ]]; do sleep 0.1; done
rss_kib=$(awk '/VmHWM/ {print $2}' /proc/$WORKER/status)
for p in "${CLIENTS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
CLIENTS=()
stop_worker
best_offline=999999
for _ in $(seq "$RUNS"); do
  t0=$(now); /usr/bin/time -f '%U %S' -o "$WORK/cpu" "$KUBESHARK" dissect "$PCAP" --filter "$SESSION_QUERY" > "$WORK/offline.out"; t1=$(now)
  offline_entries=$(wc -l < "$WORK/offline.out"); offline_cpu=$(awk '{printf "%.3f", $1 + $2}' "$WORK/cpu")
  best_offline=$(echo "if ($t1 - $t0 < $best_offline) $t1 - $t0 else $best_offline" | bc -l)
done

# --- 3. KFL evaluations per second --------------------------------------------
"$KUBESHARK" dissect "$PCAP" > "$WORK/entries.jsonl"
entries=$(wc -l < "$WORK/entries.jsonl")
best_kfl=999999; best_jq=999999
for _ in $(seq "$RUNS"); do
  t0=$(now); kfl_n=$("$KUBESHARK" filter "$QUERY" "$WORK/entries.jsonl" | wc -l); t1=$(now)
  best_kfl=$(echo "if ($t1 - $t0 < $best_kfl) $t1 - $t0 else $best_kfl" | bc -l)
  t0=$(now); jq_n=$(jq -c "$JQ" "$WORK/entries.jsonl" | wc -l); t1=$(now)
  best_jq=$(echo "if ($t1 - $t0 < $best_jq) $t1 - $t0 else $best_jq" | bc -l)
done

# --- report --------------------------------------------------------------------
printf '\ncapture: %s (%d packets, %.1f MB), ring limit %s\n\n' "$PCAP" "$packets" "$mb" "$LIMIT"
printf '%-44s %10s %12s %10s %8s\n' "measure" "seconds" "packets/s" "MB/s" "ratio"
printf '%-44s %10.2f %12.0f %10.1f %8s\n' "ring write (worker -r, to disk)" "$best_ring" \
  "$(echo "$packets / $best_ring" | bc -l)" "$(echo "$mb / $best_ring" | bc -l)" "$(printf '%.2fx' "$(echo "$best_tcpdump / $best_ring" | bc -l)")"
printf '%-44s %10.2f %12.0f %10.1f %8s\n' "  peer: tcpdump -r FILE -w OUT" "$best_tcpdump" \
  "$(echo "$packets / $best_tcpdump" | bc -l)" "$(echo "$mb / $best_tcpdump" | bc -l)" "1.00x"
printf '%-44s %10.2f %12.0f %10.1f %8s\n' "session over the full ring (to caught up)" "$session_secs" \
  "$(echo "$packets / $session_secs" | bc -l)" "$(echo "$mb / $session_secs" | bc -l)" "$(printf '%.2fx' "$(echo "$best_offline / $session_secs" | bc -l)")"
printf '%-44s %10.2f %12.0f %10.1f %8s\n' "  peer: kubeshark dissect FILE --filter" "$best_offline" \
  "$(echo "$packets / $best_offline" | bc -l)" "$(echo "$mb / $best_offline" | bc -l)" "1.00x"
printf '%-44s %10.2f %12.0f %10s %8s\n' "KFL: kubeshark filter (entries/s)" "$best_kfl" \
  "$(echo "$entries / $best_kfl" | bc -l)" "-" "$(printf '%.2fx' "$(echo "$best_jq / $best_kfl" | bc -l)")"
printf '%-44s %10.2f %12.0f %10s %8s\n' "  peer: jq -c 'select(...)' (entries/s)" "$best_jq" \
  "$(echo "$entries / $best_jq" | bc -l)" "-" "1.00x"
printf '\nCPU seconds (robust to a busy machine): ring write %.2f vs tcpdump %.2f (%.2fx); session %.2f vs offline dissect %.2f (%.2fx)\n' \
  "$ring_cpu" "$tcpdump_cpu" "$(echo "$tcpdump_cpu / $ring_cpu" | bc -l)" "$session_cpu" "$offline_cpu" "$(echo "$offline_cpu / $session_cpu" | bc -l)"
printf 'ring: %d packets written, %d dropped (queue full), %.1f MiB on disk\n' "$written" "$dropped" "$(echo "$usage / 1048576" | bc -l)"
printf 'session: %s entries matched (offline: %s); KFL matched %s, jq %s, of %s entries\n' \
  "$session_entries" "$offline_entries" "$kfl_n" "$jq_n" "$entries"
printf 'worker peak RSS with 3 sessions over the full ring: %.1f MiB\n' "$(echo "$rss_kib / 1024" | bc -l)"
