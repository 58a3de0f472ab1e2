#!/usr/bin/env bash
# Record the HTTP/1.x fixture captures in Tests/Fixtures/captures/ from real
# traffic between two network namespaces joined by a veth pair.
#
#   server netns kstest-srv-<id>: 10.231.0.1/24, fd00:231::1/64
#       nginx (own config + temp dirs, port 80) and
#       http1_fixture_server.py (port 8080) for cases nginx cannot produce
#   client netns kstest-cli-<id>: 10.231.0.2/24, fd00:231::2/64
#       curl, and http1_fixture_client.py where curl cannot make the case
#
# Each scenario is captured with tcpdump on the client-side veth (filter
# "tcp"), stopped with SIGINT once the traffic is over. Those addresses exist
# only inside the namespaces this script creates; nothing leaves the machine.
# Everything (namespaces, processes, temp dir) is removed on exit, also on
# failure. The pcaps are written to a temp dir first and moved into
# captures/ only when every scenario succeeded.
#
# Usage (root): Tests/Fixtures/record-http1.sh [OUT_DIR]
#   OUT_DIR defaults to Tests/Fixtures/captures next to this script.
# Needs: ip, ethtool, tcpdump, nginx, curl, python3, tshark (scripts/install-deps).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT_DIR=${1:-$HERE/captures}
PY=$(python3 -c 'import sys; print(sys.executable)')

if [[ $(id -u) -ne 0 ]]; then
  echo "record-http1: must run as root (network namespaces, tcpdump)" >&2
  exit 1
fi
for tool in ip ethtool tcpdump nginx curl tshark; do
  command -v "$tool" >/dev/null || { echo "record-http1: missing $tool (run scripts/install-deps)" >&2; exit 1; }
done

ID=$(( $$ % 100000 ))
NS_SRV=kstest-srv-$ID
NS_CLI=kstest-cli-$ID
VETH_SRV=kstest-s$ID
VETH_CLI=kstest-c$ID
SRV4=10.231.0.1
CLI4=10.231.0.2
SRV6=fd00:231::1
CLI6=fd00:231::2
PYPORT=8080

WORK=$(mktemp -d /tmp/kstest-record.XXXXXX)
chmod 755 "$WORK" # nginx workers run as nobody
NGINX_PID=
PYSRV_PID=
TCPDUMP_PID=

log() { printf 'record-http1: %s\n' "$*" >&2; }

cleanup() {
  local rc=$?
  set +e
  for pid in $TCPDUMP_PID $PYSRV_PID $NGINX_PID; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in $TCPDUMP_PID $PYSRV_PID $NGINX_PID; do
    wait "$pid" 2>/dev/null
  done
  # anything still running inside our own namespaces (by PID)
  for ns in "$NS_CLI" "$NS_SRV"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  done
  ip netns del "$NS_CLI" 2>/dev/null
  ip netns del "$NS_SRV" 2>/dev/null
  rm -rf "$WORK"
  if [[ $rc -ne 0 ]]; then
    log "FAILED (exit $rc); nothing was written to $OUT_DIR"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

srv() { ip netns exec "$NS_SRV" "$@"; }
cli() { ip netns exec "$NS_CLI" "$@"; }

# --- network ---------------------------------------------------------------
log "creating namespaces $NS_SRV / $NS_CLI"
ip netns add "$NS_SRV"
ip netns add "$NS_CLI"
ip link add "$VETH_SRV" netns "$NS_SRV" address 02:00:0a:e7:00:01 \
  type veth peer name "$VETH_CLI" netns "$NS_CLI" address 02:00:0a:e7:00:02
for ns in "$NS_SRV" "$NS_CLI"; do
  ip -n "$ns" link set lo up
done
srv ip addr add "$SRV4/24" dev "$VETH_SRV"
cli ip addr add "$CLI4/24" dev "$VETH_CLI"
srv ip addr add "$SRV6/64" dev "$VETH_SRV" nodad
cli ip addr add "$CLI6/64" dev "$VETH_CLI" nodad
# No segmentation/checksum offload: the capture then holds MTU-sized segments
# with valid checksums, as on a real wire.
for pair in "$NS_SRV:$VETH_SRV" "$NS_CLI:$VETH_CLI"; do
  ns=${pair%%:*}; dev=${pair#*:}
  for feature in tx rx tso gso gro; do
    ip netns exec "$ns" ethtool -K "$dev" "$feature" off >/dev/null 2>&1 || true
  done
done
srv ip link set "$VETH_SRV" up
cli ip link set "$VETH_CLI" up
# static neighbours: no ARP/ND exchange needed (the capture filter is "tcp" anyway)
srv ip neigh replace "$CLI4" lladdr 02:00:0a:e7:00:02 dev "$VETH_SRV" nud permanent
cli ip neigh replace "$SRV4" lladdr 02:00:0a:e7:00:01 dev "$VETH_CLI" nud permanent
srv ip neigh replace "$CLI6" lladdr 02:00:0a:e7:00:02 dev "$VETH_SRV" nud permanent
cli ip neigh replace "$SRV6" lladdr 02:00:0a:e7:00:01 dev "$VETH_CLI" nud permanent

# --- content ---------------------------------------------------------------
WWW=$WORK/www
mkdir -p "$WWW/static" "$WWW/gz" "$WWW/pipe" "$WORK/tmp" "$WORK/raw"
"$PY" - "$WWW" "$WORK/upload-2k.json" <<'PYEOF'
import sys, os
www, upload = sys.argv[1], sys.argv[2]
def write(path, data):
    with open(os.path.join(www, path), "wb") as f:
        f.write(data)
write("static/page.txt", b"kubeshark fixture page\n" * 8)
# 5 KB of text for gzip + chunked; seeded pseudo-random words so that the
# compressed body (~2.5 KB) still spans several TCP segments
import random
rng = random.Random(231)
words = [b"kube", b"shark", b"pcap", b"http", b"chunk", b"gzip", b"pod", b"node",
         b"trace", b"flow", b"envoy", b"mesh", b"dns", b"tcp", b"tls", b"grpc"]
text = b""
while len(text) < 5120:
    text += b" ".join(rng.choice(words) + b"%d" % rng.randrange(1000) for _ in range(8)) + b"\n"
write("gz/text5k.txt", text[:5119] + b"\n")
# exactly 64 KiB of numbered lines
lines = b"".join(b"large body line %05d abcdefghijklmnopqrstuvwxyz0123456789\n" % i
                 for i in range(1, 2000))
write("static/large64k.txt", lines[:65536])
for n in (1, 2, 3):
    write("pipe/%d.txt" % n, b"pipelined response %d\n" % n)
# ~2 KB (<= 2048 bytes) JSON request body for the Expect: 100-continue upload
items = ",".join('{"id":%d,"name":"item-%04d"}' % (i, i) for i in range(1, 200))
doc = '{"items":[' + items + ']}'
while len(doc) > 2048:
    items = items[:items.rindex(",{")]
    doc = '{"items":[' + items + ']}'
with open(upload, "w") as f:
    f.write(doc)
PYEOF
# fixed mtimes: stable ETag / Last-Modified
find "$WWW" -type f -exec touch -d '2024-01-02 03:04:05 UTC' {} +

# --- servers ---------------------------------------------------------------
cat > "$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $WORK/tmp/client_body;
    proxy_temp_path       $WORK/tmp/proxy;
    fastcgi_temp_path     $WORK/tmp/fastcgi;
    uwsgi_temp_path       $WORK/tmp/uwsgi;
    scgi_temp_path        $WORK/tmp/scgi;
    server_tokens off;
    keepalive_timeout 10;
    keepalive_requests 1000;
    default_type application/octet-stream;
    types {
        text/plain txt;
        application/json json;
    }
    server {
        listen $SRV4:80;
        listen [$SRV6]:80;
        server_name fixture.kstest;
        root $WWW;

        location = /search {
            default_type text/plain;
            return 200 "results for q=\$arg_q page=\$arg_page\n";
        }
        location = /api/items {
            default_type application/json;
            return 201 '{"ok":true}';
        }
        location = /no-content {
            return 204;
        }
        # nginx sends "100 Continue" once it starts reading a request body
        # sent with "Expect: 100-continue"; proxying makes it read the body.
        location = /upload {
            proxy_pass http://127.0.0.1:8081/upload-done;
        }
        location /gz/ {
            gzip on;
            gzip_types *;
            gzip_min_length 0;
            gzip_comp_level 6;
        }
    }
    server {
        listen 127.0.0.1:8081;
        location = /upload-done {
            default_type application/json;
            return 200 '{"received":true}';
        }
    }
}
EOF

wait_listen() { # NS PORT
  local i
  for i in $(seq 1 100); do
    if ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q LISTEN; then return 0; fi
    sleep 0.05
  done
  log "nothing listening on port $2 in $1"; return 1
}

log "starting nginx and python server"
# Background processes are started with a plain "ip netns exec ... &" (not via
# the srv/cli functions) so that $! is the process itself and can be signalled.
ip netns exec "$NS_SRV" nginx -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/nginx-error.log" &
NGINX_PID=$!
ip netns exec "$NS_SRV" "$PY" "$HERE/http1_fixture_server.py" "$SRV4" "$PYPORT" "$WORK/pysrv.ready" &
PYSRV_PID=$!
wait_listen "$NS_SRV" 80
wait_listen "$NS_SRV" 8081
for i in $(seq 1 100); do [[ -f $WORK/pysrv.ready ]] && break; sleep 0.05; done
[[ -f $WORK/pysrv.ready ]] || { log "python server did not start"; exit 1; }

# --- capture helpers -------------------------------------------------------
start_capture() { # NAME
  CUR=$1
  : > "$WORK/tcpdump.err"
  ip netns exec "$NS_CLI" tcpdump -i "$VETH_CLI" -U --immediate-mode -s 0 -Z root -n \
    -w "$WORK/raw/$CUR.pcap" tcp 2>"$WORK/tcpdump.err" &
  TCPDUMP_PID=$!
  local i
  for i in $(seq 1 100); do
    grep -q 'listening on' "$WORK/tcpdump.err" && return 0
    sleep 0.05
  done
  log "tcpdump did not start:"; cat "$WORK/tcpdump.err" >&2; return 1
}

stop_capture() {
  sleep 0.3 # let the last ACK/FIN pass
  kill -INT "$TCPDUMP_PID"
  wait "$TCPDUMP_PID" || true
  TCPDUMP_PID=
  local packets
  packets=$(grep -Eo '^[0-9]+ packets captured' "$WORK/tcpdump.err" | cut -d' ' -f1)
  log "  $CUR.pcap: ${packets:-?} packets, $(stat -c %s "$WORK/raw/$CUR.pcap") bytes"
}

CURL=(curl -sS --fail --noproxy '*' -A 'curl/kstest')
URL=http://$SRV4

# --- scenarios -------------------------------------------------------------
log "recording http1-get-query"
start_capture http1-get-query
cli "${CURL[@]}" -o /dev/null "$URL/search?q=kube+shark&page=2&empty="
stop_capture

log "recording http1-post-json"
start_capture http1-post-json
cli "${CURL[@]}" -o /dev/null -H 'Content-Type: application/json' \
  --data-binary '{"name":"kubeshark","tags":["http","pcap"],"count":3}' "$URL/api/items"
stop_capture

log "recording http1-chunked-gzip"
start_capture http1-chunked-gzip
cli "${CURL[@]}" -o /dev/null --compressed "$URL/gz/text5k.txt"
stop_capture

log "recording http1-deflate"
start_capture http1-deflate
cli "${CURL[@]}" -o /dev/null --compressed "$URL:$PYPORT/deflate"
stop_capture

log "recording http1-chunked-trailers"
start_capture http1-chunked-trailers
cli "$PY" "$HERE/http1_fixture_client.py" trailers "$SRV4" "$PYPORT" >&2
stop_capture

log "recording http1-head-204-304"
ETAG=$(cli "${CURL[@]}" -I "$URL/static/page.txt" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')
[[ -n $ETAG ]] || { log "no ETag from nginx"; exit 1; }
start_capture http1-head-204-304
cli "${CURL[@]}" -o /dev/null -I "$URL/static/page.txt" \
  --next -sS --fail --noproxy '*' -A 'curl/kstest' -o /dev/null "$URL/no-content" \
  --next -sS --fail --noproxy '*' -A 'curl/kstest' -o /dev/null -H "If-None-Match: $ETAG" "$URL/static/page.txt"
stop_capture

log "recording http1-expect-100"
start_capture http1-expect-100
cli "${CURL[@]}" -o /dev/null -H 'Expect: 100-continue' -H 'Content-Type: application/json' \
  --data-binary "@$WORK/upload-2k.json" "$URL/upload"
stop_capture

log "recording http1-pipelined"
start_capture http1-pipelined
cli "$PY" "$HERE/http1_fixture_client.py" pipelined "$SRV4" 80 >&2
stop_capture

log "recording http1-close-delimited"
start_capture http1-close-delimited
cli "${CURL[@]}" -o /dev/null "$URL:$PYPORT/close10"
cli "${CURL[@]}" -o /dev/null "$URL:$PYPORT/close11"
stop_capture

log "recording http1-unanswered"
start_capture http1-unanswered
rc=0; cli "${CURL[@]}" -o /dev/null "$URL:$PYPORT/unanswered-close" 2>/dev/null || rc=$?
[[ $rc -eq 52 ]] || { log "expected curl exit 52 (empty reply), got $rc"; exit 1; }
rc=0; cli "${CURL[@]}" -o /dev/null --max-time 1 "$URL:$PYPORT/unanswered-hang" 2>/dev/null || rc=$?
[[ $rc -eq 28 ]] || { log "expected curl exit 28 (timeout), got $rc"; exit 1; }
stop_capture

log "recording http1-upgrades"
start_capture http1-upgrades
cli "${CURL[@]}" -o /dev/null --http2 "$URL/static/page.txt"
cli "$PY" "$HERE/http1_fixture_client.py" websocket "$SRV4" "$PYPORT" >&2
stop_capture

log "recording http1-ipv6"
start_capture http1-ipv6
cli "${CURL[@]}" -o /dev/null -g "http://[$SRV6]/static/page.txt"
stop_capture

log "recording http1-large-body"
start_capture http1-large-body
cli "${CURL[@]}" -o /dev/null "$URL/static/large64k.txt"
stop_capture

# --- check, then publish ---------------------------------------------------
mkdir -p "$OUT_DIR"
for f in "$WORK"/raw/*.pcap; do
  size=$(stat -c %s "$f")
  if (( size > 200 * 1024 )); then log "$(basename "$f") is too large ($size bytes)"; exit 1; fi
  if ! tshark -n -r "$f" -Y http -T fields -e frame.number >/dev/null 2>"$WORK/tshark.err"; then
    log "tshark cannot read $(basename "$f")"; exit 1
  fi
done
for f in "$WORK"/raw/*.pcap; do
  name=$(basename "$f" .pcap)
  cp "$f" "$OUT_DIR/$name.pcap"
  tshark -n -r "$f" -Y http -T fields -e frame.number -e tcp.stream \
    -e http.request.method -e http.request.uri -e http.response.code \
    > "$OUT_DIR/$name.tshark.tsv" 2>"$WORK/tshark.err"
done
log "wrote $(ls "$WORK"/raw/*.pcap | wc -l) captures to $OUT_DIR"
