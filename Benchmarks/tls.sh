#!/usr/bin/env bash
# TLS capture overhead and throughput: h2load against nginx over TLS (HTTP/1.1
# and HTTP/2 with ALPN h2), both in one network namespace, run without the
# probes and with `kubeshark dissect --live --tls-netns NS` tracing both ends
# (the client's and the server's OpenSSL calls), in the same invocation. Prints
# requests/s of each run, the ratio, and the entries kubeshark made of the
# traced run against the requests made (events sustained, and any loss).
#
#   Benchmarks/tls.sh            # as root
#
# Settings: REQUESTS (default 20000), CLIENTS (default 4), STREAMS (h2 streams
# per client, default 10), RUNS (default 3, best shown), KUBESHARK (default
# .build/release/kubeshark), OUT (default /tmp/ks-bench-tls), SETTLE (seconds
# between the probes being attached and the load, default 0).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
REQUESTS=${REQUESTS:-20000}
CLIENTS=${CLIENTS:-4}
STREAMS=${STREAMS:-10}
RUNS=${RUNS:-3}
KUBESHARK=${KUBESHARK:-.build/release/kubeshark}
OUT=${OUT:-/tmp/ks-bench-tls}
NS=ksbench-tls-$$
HOSTIF=kstlsb$$a
PODIF=kstlsb$$b
ADDR=10.236.0.2
PORT=8443
log() { echo "tls-bench: $*" >&2; }

[[ $(id -u) -eq 0 ]] || { log "needs root (network namespace, uprobes)"; exit 1; }
command -v h2load >/dev/null || { log "needs h2load (nghttp2-client)"; exit 1; }
[[ -x $KUBESHARK ]] || { log "no $KUBESHARK (swift build -c release)"; exit 1; }
rm -rf "$OUT"; mkdir -p "$OUT/www"

cleanup() {
  ip netns pids "$NS" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  ip link del "$HOSTIF" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$NS"
ip link add "$HOSTIF" type veth peer name "$PODIF"
ip link set "$PODIF" netns "$NS"
ip addr add 10.236.0.1/24 dev "$HOSTIF"; ip link set "$HOSTIF" up
ip netns exec "$NS" ip addr add "$ADDR/24" dev "$PODIF"
ip netns exec "$NS" ip link set "$PODIF" up
ip netns exec "$NS" ip link set lo up
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=bench -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null
head -c 1024 /dev/urandom | base64 > "$OUT/www/small.txt"
cat > "$OUT/nginx.conf" <<CONF
daemon off;
user root;
worker_processes 1;
pid $OUT/nginx.pid;
error_log $OUT/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $OUT/body; proxy_temp_path $OUT/proxy; fastcgi_temp_path $OUT/fcgi;
  uwsgi_temp_path $OUT/uwsgi; scgi_temp_path $OUT/scgi;
  keepalive_requests 1000000;
  http2_max_requests 1000000;
  server {
    listen $ADDR:$PORT ssl http2;
    ssl_certificate $OUT/cert.pem;
    ssl_certificate_key $OUT/key.pem;
    root $OUT/www;
  }
}
CONF
ip netns exec "$NS" nginx -c "$OUT/nginx.conf" > "$OUT/nginx.out" 2>&1 &
for _ in $(seq 50); do curl -sk -o /dev/null "https://$ADDR:$PORT/small.txt" && break; sleep 0.1; done

# load PROTO: one h2load run inside the namespace; prints requests/s and succeeded requests.
load() {
  local args=(-n "$REQUESTS" -c "$CLIENTS")
  if [[ $1 == h1 ]]; then args+=(--h1); else args+=(-m "$STREAMS"); fi
  ip netns exec "$NS" h2load "${args[@]}" "https://$ADDR:$PORT/small.txt" > "$OUT/h2load.txt" 2>&1
  awk '/^finished in/ { gsub(",", "", $4); rps = $4 } /^requests:/ { ok = $8 } END { print rps, ok }' "$OUT/h2load.txt"
}

declare -A RPS ENTRIES SECS LOST
for proto in h1 h2; do
  for mode in plain probes; do
    best=0
    for run in $(seq "$RUNS"); do
      if [[ $mode == probes ]]; then
        # The previous run's log must go first: its "capturing on" line would start the load too early.
        rm -f "$OUT/kubeshark.err"
        "$KUBESHARK" dissect --live -i "$HOSTIF" --tls-netns "$NS" --output json > "$OUT/entries.json" 2> "$OUT/kubeshark.err" &
        ks=$!
        for _ in $(seq 100); do grep -q "capturing on" "$OUT/kubeshark.err" && break; sleep 0.1; done
        sleep "${SETTLE:-0}"
      fi
      start=$(date +%s.%N)
      read -r rps ok < <(load "$proto")
      if [[ $mode == probes ]]; then
        # Entries keep arriving after the load ends while the worker catches up.
        for _ in $(seq 600); do
          n=$(grep -c '"status":200' "$OUT/entries.json" || true)
          [[ $n -ge $ok ]] && break; sleep 0.1
        done
        kill -INT "$ks"; wait "$ks" || true
        done_at=$(date +%s.%N)
        n=$(grep -c '"status":200' "$OUT/entries.json" || true)
        lost=$(grep -o '[0-9]* lost in the kernel ring' "$OUT/kubeshark.err" | cut -d' ' -f1)
        log "$proto probes run $run: $rps req/s, $ok requests, $n entries, ${lost:-?} chunks lost in the kernel ring"
        ENTRIES[$proto]=$n; LOST[$proto]=${lost:-?}
        SECS[$proto]=$(echo "$done_at - $start" | bc)
      else
        log "$proto plain run $run: $rps req/s, $ok requests"
      fi
      if awk -v a="$rps" -v b="$best" 'BEGIN{exit !(a>b)}'; then best=$rps; fi
    done
    RPS[$proto-$mode]=$best
  done
done

{
  echo "h2load -n $REQUESTS -c $CLIENTS (h2: -m $STREAMS) against nginx over TLS, both in one namespace; best of $RUNS"
  printf '%-6s %14s %14s %8s %10s %12s %10s\n' proto "req/s plain" "req/s probes" ratio entries "entries/s" lost
  for proto in h1 h2; do
    awk -v p="$proto" -v a="${RPS[$proto-plain]}" -v b="${RPS[$proto-probes]}" -v e="${ENTRIES[$proto]}" \
        -v s="${SECS[$proto]}" -v l="${LOST[$proto]}" -v n="$REQUESTS" 'BEGIN{
      printf "%-6s %14.0f %14.0f %8.2f %10s %12.0f %10s\n", p, a, b, b/a, e "/" n, e/s, l }'
  done
} | tee "$OUT/results.txt"
