#!/usr/bin/env bash
# The hub, measured: entries per second from two workers through the hub to a
# WebSocket client (against the same client reading one worker directly), and
# the time from a request on the wire to its entry at the client, with a
# background load of real HTTP traffic, for `kubeshark tap` alone and through
# the hub (target: under one second at 1,000 entries/s).
#
# Settings: PACKETS (default 200000, a slice of Benchmarks/http1.sh's capture),
# PROBES (default 50), LOAD_SECONDS (default 30), KUBESHARK (default .build/release/kubeshark).
# Needs root (a network namespace pod), wrk, python3-websockets, tcpdump.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"
PACKETS=${PACKETS:-200000}
PROBES=${PROBES:-50}
LOAD_SECONDS=${LOAD_SECONDS:-30}
KUBESHARK=${KUBESHARK:-.build/release/kubeshark}
BIG="$HERE/out/http1-1000000.pcap"
WORK=$(mktemp -d /tmp/ks-hub-bench.XXXXXX)
PIDS=()
NS="hubbench.web-1"
log() { echo "hub-bench: $*" >&2; }
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  ip netns pids "$NS" 2>/dev/null | xargs -r kill -9
  ip netns del "$NS" 2>/dev/null
  ip link del kshb0 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

[[ -x $KUBESHARK ]] || { log "build first: swift build -c release"; exit 1; }
[[ -f $BIG ]] || { log "recording the HTTP capture with Benchmarks/http1.sh"; SKIP_TSHARK=1 "$HERE/http1.sh" >/dev/null; }
tcpdump -r "$BIG" -c "$PACKETS" -w "$WORK/slice.pcap" 2>/dev/null
ENTRIES=$("$KUBESHARK" dissect "$WORK/slice.pcap" --filter http | wc -l)

start() {  # NAME ARGS... -> sets URL to the printed address
  local name=$1; shift
  "$KUBESHARK" "$@" 2>"$WORK/$name.log" &
  PIDS+=($!)
  URL=
  for _ in $(seq 300); do
    URL=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$WORK/$name.log" | head -1 || true)
    [[ -n $URL ]] && break
    sleep 0.05
  done
  [[ -n $URL ]] || { log "$name did not start: $(cat "$WORK/$name.log")"; exit 1; }
}

# --- 1. entries per second -------------------------------------------------------
start wa worker -r "$WORK/slice.pcap" --port 0 --data-dir "$WORK/wa"; A=$URL
start wb worker -r "$WORK/slice.pcap" --port 0 --data-dir "$WORK/wb"; B=$URL
sleep 2
direct=$(/usr/bin/python3 "$HERE/hub-load.py" count "$A" http "$ENTRIES")
start hub hub --worker "a=$A" --worker "b=$B" --port 0; H=$URL
sleep 1
hubbed=$(/usr/bin/python3 "$HERE/hub-load.py" count "$H" http $((2 * ENTRIES)))

# --- 2. wire to entry, under load ---------------------------------------------------
ip netns add "$NS"
ip link add kshb0 type veth peer name eth0 netns "$NS"
ip addr add 10.241.0.1/24 dev kshb0; ip link set kshb0 up
ip -n "$NS" addr add 10.241.0.2/24 dev eth0; ip -n "$NS" link set eth0 up; ip -n "$NS" link set lo up
mkdir -p "$WORK/www"; echo hello > "$WORK/www/index.html"
ip netns exec "$NS" python3 -m http.server 8080 --bind 10.241.0.2 --directory "$WORK/www" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do curl -s -o /dev/null http://10.241.0.2:8080/ && break; sleep 0.1; done
start tap tap -n hubbench --proxy-front-port 0 --data-dir "$WORK/tap"; T=$URL
start hub2 hub --worker "tap=$T" --port 0; H2=$URL
sleep 2
wrk -t1 -c4 -d"${LOAD_SECONDS}s" http://10.241.0.2:8080/index.html > "$WORK/wrk.txt" 2>&1 &
PIDS+=($!)
sleep 2
lat_tap=$(/usr/bin/python3 "$HERE/hub-load.py" latency "$T" http://10.241.0.2:8080 "$PROBES" tap)
lat_hub=$(/usr/bin/python3 "$HERE/hub-load.py" latency "$H2" http://10.241.0.2:8080 "$PROBES" hub)
wait "${PIDS[-1]}" 2>/dev/null || true
rate=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")

field() { python3 -c "import json,sys; print('%.${2:-0}f' % json.loads(sys.argv[1])[sys.argv[3]])" "$1" "$2" "$3"; }
printf '\nentries from a %d-packet HTTP slice (%d entries per worker)\n' "$PACKETS" "$ENTRIES"
printf '  one worker, read directly:   %8s entries/s (%s received)\n' "$(field "$direct" 0 per_second)" "$(field "$direct" 0 entries)"
printf '  two workers through the hub: %8s entries/s (%s received)\n' "$(field "$hubbed" 0 per_second)" "$(field "$hubbed" 0 entries)"
printf 'wire to entry at the client, %d probes, background load %s requests/s (wrk -> http.server in a pod)\n' "$PROBES" "$rate"
printf '  kubeshark tap:             median %s s, p95 %s s, max %s s\n' "$(field "$lat_tap" 3 median)" "$(field "$lat_tap" 3 p95)" "$(field "$lat_tap" 3 max)"
printf '  tap through the hub:       median %s s, p95 %s s, max %s s\n' "$(field "$lat_hub" 3 median)" "$(field "$lat_hub" 3 p95)" "$(field "$lat_hub" 3 max)"
