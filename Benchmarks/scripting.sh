#!/usr/bin/env bash
# Scripts (docs/scripting.md), measured against peers in the same invocation:
#
#  1. entries per second through onItemCaptured: a worker serves the HTTP/1.1
#     capture of Benchmarks/http1.sh (nginx + wrk; recorded first when missing);
#     once the ring holds it all, a script is loaded (`kubeshark scripts`) and
#     timed until its hook has seen every entry (polling /api/scripts), with
#       - a trivial hook (counts),
#       - a hook calling kfl.match (a query that matches a quarter of entries),
#     against the peer: a dashboard session (WebSocket client) over the same ring
#     with a query matching nothing, timed until it caught up (polling
#     /api/sessions): the same dissection with no script.
#  2. capture loss with onPacketCaptured active: Benchmarks/capture.sh's
#     worker on AF_XDP (the fastest backend) receiving its synthetic capture
#     replayed at top speed, with a script counting packets (WORKER_ARGS) and,
#     as the peer, without; the script's own count of packets seen and its
#     dropped batches.
#
# Settings: PACKETS (default 1000000: the HTTP capture), CAPTURE_PACKETS
# (default 1000000: the replayed one), RUNS (default 2, best shown),
# KUBESHARK (default .build/release/kubeshark), SKIP_CAPTURE (1: only part 1).
set -euo pipefail
# Debian's python3 and tools first (a pyenv shim earlier in PATH can stall).
export PATH="/usr/bin:/bin:/usr/sbin:/sbin:$PATH"
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"
PACKETS=${PACKETS:-1000000}
CAPTURE_PACKETS=${CAPTURE_PACKETS:-1000000}
RUNS=${RUNS:-2}
SKIP_CAPTURE=${SKIP_CAPTURE:-0}
KUBESHARK=${KUBESHARK:-.build/release/kubeshark}
[[ $KUBESHARK == /* ]] || KUBESHARK=$ROOT/$KUBESHARK
PCAP="$HERE/out/http1-$PACKETS.pcap"
KFL='http and request.path == "/2k.txt"'
log() { echo "scripting-bench: $*" >&2; }

[[ -x $KUBESHARK ]] || { log "build first: swift build -c release"; exit 1; }
if [[ ! -f $PCAP ]]; then
  log "recording $PCAP with Benchmarks/http1.sh"
  PACKETS=$PACKETS SKIP_TSHARK=1 "$HERE/http1.sh" >/dev/null
fi
WORK=$(mktemp -d /tmp/ks-script-bench.XXXXXX)
WORKER=
CLIENT=
cleanup() {
  set +e
  for p in $CLIENT $WORKER; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
json() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

start_worker() {  # $1 = data dir; sets WORKER and URL once the ring holds the whole file
  rm -rf "$1"
  "$KUBESHARK" worker -r "$PCAP" --data-dir "$1" --storage-limit 4Gi --port 0 2>"$1.log" &
  WORKER=$!
  URL=
  for _ in $(seq 400); do
    URL=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$1.log" 2>/dev/null | head -1 || true)
    [[ -n $URL ]] && break
    sleep 0.01
  done
  until [[ $(curl -s "$URL/api/stats" | json "d['capture']['running']" 2>/dev/null) == False ]]; do sleep 0.05; done
  sleep 0.3
}
stop_worker() { kill -TERM "$WORKER" 2>/dev/null; wait "$WORKER" 2>/dev/null || true; WORKER=; }

entries=$("$KUBESHARK" dissect "$PCAP" | wc -l)
matching=$("$KUBESHARK" dissect "$PCAP" --filter "$KFL" | wc -l)
log "$PCAP: $entries entries, $matching match $KFL"

# --- 1. entries per second ------------------------------------------------------
mkdir -p "$WORK/trivial" "$WORK/kfl"
cat > "$WORK/trivial/trivial.js" <<'JS'
// Bench trivial
var n = 0;
function onItemCaptured(data) { n++; }
JS
cat > "$WORK/kfl/kfl.js" <<JS
// Bench kfl
var n = 0, matched = 0;
function onItemCaptured(data) { n++; if (kfl.match('$KFL', data)) matched++; }
JS

declare -A BEST
best() { BEST[$1]=$(echo "if (${BEST[$1]:-999999} < $2) ${BEST[$1]:-999999} else $2" | bc -l); }
for run in $(seq "$RUNS"); do
  # The peer: a session with no script.
  start_worker "$WORK/peer"
  t0=$(now)
  /usr/bin/python3 "$ROOT/Tests/WorkerTests/ws_client.py" "$URL" --query 'http and response.status == 599' --idle 600 >/dev/null 2>&1 &
  CLIENT=$!
  until [[ $(curl -s "$URL/api/sessions" | json "bool(d) and all(x['caughtUp'] for x in d)") == True ]]; do sleep 0.02; done
  t1=$(now)
  kill -9 "$CLIENT"; CLIENT=
  stop_worker
  secs=$(echo "$t1 - $t0" | bc -l); best peer "$secs"
  log "run $run: session, no script: ${secs}s"
  for kind in trivial kfl; do
    start_worker "$WORK/w-$kind"
    t0=$(now)
    "$KUBESHARK" scripts --url "$URL" --dir "$WORK/$kind" 2>/dev/null
    # A live session holds back the entries of flows still open at the end of
    # the ring (offline dissection emits them at end of file): done when the
    # count has not moved for a second; timed to its last change.
    seen=0; t1=$(now)
    while true; do
      n=$(curl -s "$URL/api/scripts" | json "d[0].get('entries', 0) if d else 0")
      if (( n != seen )); then seen=$n; t1=$(now); fi
      (( n > 0 )) && [[ $(echo "$(now) - $t1 > 1" | bc -l) == 1 ]] && break
      sleep 0.02
    done
    state=$(curl -s "$URL/api/scripts" | json "d[0]['state'] + ', ' + str(d[0]['entries']) + ' entries, errors=' + str(d[0]['errors']) + ', peak heap ' + str(d[0]['memoryPeakBytes'])")
    stop_worker
    secs=$(echo "$t1 - $t0" | bc -l); best "$kind" "$secs"
    log "run $run: onItemCaptured $kind: ${secs}s ($state)"
  done
done

# --- 2. capture loss with onPacketCaptured --------------------------------------
mkdir -p "$WORK/packets"
cat > "$WORK/packets/packets.js" <<'JS'
// Bench packets
var packets = 0, bytes = 0;
function onPacketCaptured(info) { packets++; bytes += info.length; }
jobs.schedule("save", "@every 1s", function () { file.write("packets.json", JSON.stringify({packets: packets, bytes: bytes})); });
JS
loss() {  # $1 = label, rest = env for capture.sh; prints "sent received dropped"
  local label=$1; shift
  env "$@" PACKETS="$CAPTURE_PACKETS" BACKENDS=ring-af_xdp RUNS="$RUNS" SETTLE=2 KUBESHARK="$KUBESHARK" \
    "$HERE/capture.sh" > "$WORK/capture-$label.txt" 2>"$WORK/capture-$label.log" || { cat "$WORK/capture-$label.log" >&2; exit 1; }
  grep 'into the ring' "$WORK/capture-$label.txt" | head -1
}
if [[ $SKIP_CAPTURE == 1 ]]; then
  peer_line="(skipped: SKIP_CAPTURE=1)"; script_line=$peer_line; seen="?"
else
  peer_line=$(loss plain)
  script_line=$(loss script WORKER_ARGS="--scripts $WORK/packets")
  seen=$(json "d['packets']" < "$HERE/out/ring-data/scripting/packets.json" 2>/dev/null || echo "?")
fi

# --- report ------------------------------------------------------------------------
rate() { echo "$entries / $1" | bc -l | xargs printf '%.0f'; }  # the whole capture's entries over the time
{
  echo "scripting benchmark: $PCAP ($entries entries), best of $RUNS"
  printf '%-44s %10s %12s %8s\n' "entries through" "seconds" "entries/s" "ratio"
  printf '%-44s %10.2f %12s %8s\n' "session, no script (peer)" "${BEST[peer]}" "$(rate "${BEST[peer]}")" "1.00"
  for kind in trivial kfl; do
    label="onItemCaptured, $kind hook"; [[ $kind == kfl ]] && label="onItemCaptured, kfl.match hook"
    printf '%-44s %10.2f %12s %8.2f\n' "$label" "${BEST[$kind]}" "$(rate "${BEST[$kind]}")" \
      "$(echo "${BEST[peer]} / ${BEST[$kind]}" | bc -l)"
  done
  echo
  echo "capture loss, AF_XDP worker, $CAPTURE_PACKETS-packet capture replayed at top speed (capture.sh table row):"
  echo "  no script:                 $peer_line"
  echo "  onPacketCaptured counting: $script_line"
  echo "  packets the script saw (its last 1 s save): $seen"
} | tee "$HERE/out/scripting-results.txt"
