#!/usr/bin/env bash
# HTTP/1.1 dissection throughput: bare libpcap loop vs tshark vs kubeshark.
#
# 1. Records a large capture of real HTTP/1.1 traffic on loopback: nginx (own
#    config + temp dir, 127.0.0.1:$PORT) loaded by wrk, captured by
#    tcpdump -i lo ... -c $PACKETS. Skipped when REUSE=1 and the file exists.
# 2. Builds Benchmarks/pcap_read_loop.c (cc -O2 ... -lpcap).
# 3. Runs each reader over the same file under /usr/bin/time -f '%e %M':
#      libpcap   out/pcap_read_loop FILE
#      tshark    tshark -r FILE -Y http -T fields -e http.request.method
#                       -e http.request.uri -e http.response.code > /dev/null
#      kubeshark $KUBESHARK dissect FILE --output json > /dev/null
#    (kubeshark is skipped, not failed, when the binary does not exist)
# 4. Prints a table: seconds, packets/s, MB/s, peak RSS, and ratios.
#
# Environment:
#   PACKETS=1000000   packets to capture
#   REUSE=0           1: reuse Benchmarks/out/http1-$PACKETS.pcap if present
#   KUBESHARK=.build/release/kubeshark (relative to the repo root)
#   PORT=18080        nginx port on 127.0.0.1
#   WRK_SECONDS=120   upper bound for the load (wrk -d); stops earlier once
#                     tcpdump has its packets
#   WRK_THREADS=2 WRK_CONNECTIONS=32
#   RUNS=1            runs per reader; the fastest is reported
#   SKIP_TSHARK=0     1: leave tshark out
# All traffic goes to 127.0.0.1 only; the load is bounded in count and time.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=$HERE/out
PACKETS=${PACKETS:-1000000}
REUSE=${REUSE:-0}
KUBESHARK=${KUBESHARK:-.build/release/kubeshark}
[[ $KUBESHARK == /* ]] || KUBESHARK=$ROOT/$KUBESHARK
PORT=${PORT:-18080}
WRK_SECONDS=${WRK_SECONDS:-120}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-32}
RUNS=${RUNS:-1}
SKIP_TSHARK=${SKIP_TSHARK:-0}
PCAP=$OUT/http1-$PACKETS.pcap

log() { printf 'http1-bench: %s\n' "$*" >&2; }

for tool in cc tshark /usr/bin/time; do
  command -v "$tool" >/dev/null || { log "missing $tool (run scripts/install-deps)"; exit 1; }
done
mkdir -p "$OUT"

WORK=
NGINX_PID=
WRK_PID=
TCPDUMP_PID=
cleanup() {
  local rc=$?
  set +e
  for pid in $WRK_PID $TCPDUMP_PID $NGINX_PID; do kill -TERM "$pid" 2>/dev/null; done
  for pid in $WRK_PID $TCPDUMP_PID $NGINX_PID; do wait "$pid" 2>/dev/null; done
  [[ -n $WORK ]] && rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. record -------------------------------------------------------------
record() {
  for tool in nginx wrk tcpdump; do
    command -v "$tool" >/dev/null || { log "missing $tool (run scripts/install-deps)"; exit 1; }
  done
  if [[ $(id -u) -ne 0 ]]; then log "recording needs root (tcpdump on lo)"; exit 1; fi
  WORK=$(mktemp -d /tmp/kstest-bench.XXXXXX)
  chmod 755 "$WORK"
  mkdir -p "$WORK/www" "$WORK/tmp"
  printf 'kubeshark benchmark: small static body\n' > "$WORK/www/small.txt"
  python3 - "$WORK/www/2k.txt" <<'PYEOF'
import sys
line = b"kubeshark benchmark 2k body abcdefghijklmnopqrstuvwxyz 0123456789\n"
with open(sys.argv[1], "wb") as f:
    f.write((line * 40)[:2048])
PYEOF
  cat > "$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/tmp/client_body;
    proxy_temp_path       $WORK/tmp/proxy;
    fastcgi_temp_path     $WORK/tmp/fastcgi;
    uwsgi_temp_path       $WORK/tmp/uwsgi;
    scgi_temp_path        $WORK/tmp/scgi;
    server_tokens off;
    keepalive_requests 10000000;
    keepalive_timeout 300;
    default_type application/octet-stream;
    types { text/plain txt; }
    server {
        listen 127.0.0.1:$PORT;
        root $WORK/www;
        location = /api/status {
            default_type application/json;
            return 200 '{"status":"ok","service":"kubeshark-bench"}';
        }
    }
}
EOF
  nginx -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/error.log" &
  NGINX_PID=$!
  local i
  for i in $(seq 1 100); do
    curl -fsS --noproxy '*' -o /dev/null "http://127.0.0.1:$PORT/small.txt" 2>/dev/null && break
    sleep 0.05
  done
  curl -fsS --noproxy '*' -o /dev/null "http://127.0.0.1:$PORT/2k.txt"

  : > "$WORK/tcpdump.err"
  local tmp_pcap=$PCAP.partial
  rm -f "$tmp_pcap"
  # -B: 64 MiB kernel buffer so that tcpdump keeps up with the load
  timeout $(( WRK_SECONDS + 30 )) \
    tcpdump -i lo -s 0 -B 65536 -n -Z root -w "$tmp_pcap" -c "$PACKETS" "tcp port $PORT" \
    2>"$WORK/tcpdump.err" &
  TCPDUMP_PID=$!
  for i in $(seq 1 100); do
    grep -q 'listening on' "$WORK/tcpdump.err" && break
    sleep 0.05
  done
  log "recording $PACKETS packets: wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${WRK_SECONDS}s against 127.0.0.1:$PORT"
  wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"${WRK_SECONDS}s" --latency \
    -s "$HERE/http1-paths.lua" "http://127.0.0.1:$PORT" > "$WORK/wrk.out" 2>&1 &
  WRK_PID=$!
  # tcpdump stops by itself after -c packets (or at the timeout)
  wait "$TCPDUMP_PID" || true
  TCPDUMP_PID=
  if kill -0 "$WRK_PID" 2>/dev/null; then kill -INT "$WRK_PID"; fi
  wait "$WRK_PID" || true
  WRK_PID=
  kill -TERM "$NGINX_PID"; wait "$NGINX_PID" || true
  NGINX_PID=
  sed 's/^/  wrk: /' "$WORK/wrk.out" | grep -E 'requests in|Requests/sec|Non-2xx|Socket errors' >&2 || true
  sed 's/^/  tcpdump: /' "$WORK/tcpdump.err" | grep -E 'captured|dropped' >&2 || true
  if grep -Eq '^[1-9][0-9]* packets dropped by kernel' "$WORK/tcpdump.err"; then
    log "WARNING: tcpdump dropped packets; some TCP streams in the capture have gaps"
  fi
  mv "$tmp_pcap" "$PCAP"
  rm -rf "$WORK"; WORK=
}

if [[ $REUSE == 1 && -s $PCAP ]]; then
  log "reusing $PCAP"
else
  record
fi
FILE_BYTES=$(stat -c %s "$PCAP")
log "capture: $PCAP ($FILE_BYTES bytes)"

# --- 2. build the libpcap baseline -----------------------------------------
cc -O2 -Wall -o "$OUT/pcap_read_loop" "$HERE/pcap_read_loop.c" -lpcap

# --- 3. run ------------------------------------------------------------------
# measure NAME STDOUT_FILE CMD... ; sets BEST_SECS / BEST_RSS (KiB)
measure() {
  local name=$1 stdout=$2; shift 2
  local run secs rss
  BEST_SECS= BEST_RSS=
  for run in $(seq 1 "$RUNS"); do
    /usr/bin/time -f '%e %M' -o "$OUT/time-$name.txt" "$@" > "$stdout" 2>"$OUT/stderr-$name.txt" || {
      log "$name failed (exit $?), see $OUT/stderr-$name.txt"; return 1; }
    read -r secs rss < <(tail -n 1 "$OUT/time-$name.txt")
    log "  $name run $run: ${secs}s, ${rss} KiB max RSS"
    if [[ -z $BEST_SECS ]] || awk -v a="$secs" -v b="$BEST_SECS" 'BEGIN{exit !(a<b)}'; then
      BEST_SECS=$secs; BEST_RSS=$rss
    fi
  done
}

declare -A SECS RSS STATUS
# warm the page cache so that the first tool measured is not penalised
cat "$PCAP" > /dev/null

log "libpcap loop"
measure libpcap "$OUT/pcap_read_loop.out" "$OUT/pcap_read_loop" "$PCAP"
SECS[libpcap]=$BEST_SECS; RSS[libpcap]=$BEST_RSS; STATUS[libpcap]=ok
PKTS=$(sed -n 's/.*packets=\([0-9]*\).*/\1/p' "$OUT/pcap_read_loop.out")

if [[ $SKIP_TSHARK == 1 ]]; then
  STATUS[tshark]="skipped (SKIP_TSHARK=1)"
else
  log "tshark"
  if measure tshark /dev/null tshark -n -r "$PCAP" -Y http -T fields \
      -e http.request.method -e http.request.uri -e http.response.code; then
    SECS[tshark]=$BEST_SECS; RSS[tshark]=$BEST_RSS; STATUS[tshark]=ok
  else
    STATUS[tshark]=failed
  fi
fi

if [[ -x $KUBESHARK ]]; then
  log "kubeshark ($KUBESHARK)"
  if measure kubeshark /dev/null "$KUBESHARK" dissect "$PCAP" --output json; then
    SECS[kubeshark]=$BEST_SECS; RSS[kubeshark]=$BEST_RSS; STATUS[kubeshark]=ok
  else
    STATUS[kubeshark]=failed
  fi
  # The same with flow-sharded worker threads, one per core.
  THREADS=${THREADS:-$(nproc)}
  log "kubeshark --threads $THREADS"
  if measure kubeshark-mt /dev/null "$KUBESHARK" dissect "$PCAP" --output json --threads "$THREADS"; then
    SECS[kubeshark-mt]=$BEST_SECS; RSS[kubeshark-mt]=$BEST_RSS; STATUS[kubeshark-mt]=ok
  else
    STATUS[kubeshark-mt]=failed
  fi
else
  log "kubeshark binary $KUBESHARK not found: skipping (build it with 'swift build -c release')"
  STATUS[kubeshark]="skipped (no $KUBESHARK)"
  STATUS[kubeshark-mt]="skipped (no $KUBESHARK)"
fi

# --- 4. report ---------------------------------------------------------------
report() {
  echo "capture: $PCAP"
  echo "packets: $PKTS   file: $FILE_BYTES bytes ($(awk -v b="$FILE_BYTES" 'BEGIN{printf "%.1f", b/1e6}') MB)   runs per tool: $RUNS (fastest shown)"
  printf '%-12s %9s %13s %9s %14s\n' tool seconds packets/s MB/s "peak RSS MiB"
  for tool in libpcap tshark kubeshark kubeshark-mt; do
    if [[ ${STATUS[$tool]} == ok ]]; then
      awk -v t="$tool" -v s="${SECS[$tool]}" -v r="${RSS[$tool]}" -v p="$PKTS" -v b="$FILE_BYTES" 'BEGIN{
        d = (s > 0) ? s : 0.005   # /usr/bin/time has 10 ms resolution
        printf "%-12s %9.2f %13.0f %9.1f %14.1f\n", t, s, p/d, b/1e6/d, r/1024 }'
    else
      printf '%-12s %s\n' "$tool" "${STATUS[$tool]}"
    fi
  done
  echo
  if [[ ${STATUS[kubeshark]} == ok && ${STATUS[tshark]} == ok ]]; then
    awk -v k="${SECS[kubeshark]}" -v t="${SECS[tshark]}" 'BEGIN{
      printf "kubeshark pps / tshark pps:       %.2f\n", (k > 0 ? t/k : 0) }'
  else
    echo "kubeshark pps / tshark pps:       n/a"
  fi
  if [[ ${STATUS[kubeshark]} == ok ]]; then
    awk -v k="${SECS[kubeshark]}" -v l="${SECS[libpcap]}" 'BEGIN{
      printf "kubeshark time / libpcap time:    %.1f\n", (l > 0 ? k/l : k/0.005) }'
  else
    echo "kubeshark time / libpcap time:    n/a"
  fi
  if [[ ${STATUS[kubeshark-mt]} == ok && ${STATUS[tshark]} == ok ]]; then
    awk -v k="${SECS[kubeshark-mt]}" -v t="${SECS[tshark]}" -v l="${SECS[libpcap]}" 'BEGIN{
      printf "kubeshark-mt pps / tshark pps:    %.2f\n", (k > 0 ? t/k : 0)
      printf "kubeshark-mt time / libpcap time: %.1f\n", (l > 0 ? k/l : k/0.005) }'
  fi
}
echo
report | tee "$OUT/http1-results-$PACKETS.txt"
for tool in libpcap tshark kubeshark kubeshark-mt; do
  [[ ${STATUS[$tool]} != failed ]] || exit 1
done
