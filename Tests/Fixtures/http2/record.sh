#!/usr/bin/env bash
# Records the HTTP/2 and gRPC fixtures of Tests/HTTP2PluginTests on loopback
# with tcpdump, against real peers (run as root; loopback checksums are bad,
# which the dissector ignores):
#
#   grpc-calls.pcap            grpcio server + client: unary, server-streaming,
#                              client-streaming, bidi, an error status (NOT_FOUND)
#   grpc-gzip.pcap             the same calls with grpc-encoding: gzip
#   nghttp-prior-knowledge.pcap nghttp -> nghttpd, h2c with prior knowledge:
#                              GET of a page, a 404, a POST body (two connections)
#   nghttp-upgrade.pcap        nghttp -u -> python3-h2 server: HTTP/1.1 Upgrade: h2c, 101,
#                              stream 1 answered in HTTP/2 (a gzip body)
#   h2-features.pcap           nghttp -> python3-h2 server: gzip body, trailers
#                              and padding, RST_STREAM, a 40 KB body, a POST echo
#   upgrade-refused.pcap       curl --http2 -> python http.server: the server
#                              ignores Upgrade: h2c and answers in HTTP/1.0
#
#   Tests/Fixtures/http2/record.sh [OUTDIR]     (default: this directory)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
py=/usr/bin/python3
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
  for _ in $(seq 1 100); do
    if $py -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$1)))"; then return 0; fi
    sleep 0.1
  done
  echo "port $1 never opened" >&2
  return 1
}

# capture NAME PORT: starts tcpdump; stop_capture ends it.
capture() {
  tcpdump -i lo --immediate-mode -U -s 0 -w "$out/$1" "tcp port $2" 2>"$work/tcpdump.log" &
  cap=$!
  for _ in $(seq 1 50); do grep -q listening "$work/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
}
stop_capture() {
  sleep 1.5
  kill -INT "$cap"
  wait "$cap" || true
  echo "recorded $1: $(stat -c %s "$out/$1") bytes"
}
server() { "$@" >"$work/server.log" 2>&1 & pids+=($!); srv=$!; }
stop_server() { kill -9 "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; }

# gRPC, plain and gzip
for kind in calls gzip; do
  port=$(free_port)
  server $py "$here/grpc_peer.py" server "$port"
  wait_port "$port"
  capture "grpc-$kind.pcap" "$port"
  if [ "$kind" = gzip ]; then $py "$here/grpc_peer.py" client "$port" gzip; else $py "$here/grpc_peer.py" client "$port"; fi
  stop_capture "grpc-$kind.pcap"
  stop_server
done

# nghttpd with a small document root
mkdir -p "$work/www"
printf '<html><body><h1>hello from nghttpd</h1></body></html>\n' > "$work/www/index.html"
printf 'posted=1&name=kubeshark' > "$work/post.txt"
port=$(free_port)
server nghttpd --no-tls -d "$work/www" "$port"
wait_port "$port"
capture nghttp-prior-knowledge.pcap "$port"
nghttp -n "http://127.0.0.1:$port/index.html" "http://127.0.0.1:$port/missing?x=1&y=two" >/dev/null
nghttp -n -d "$work/post.txt" "http://127.0.0.1:$port/index.html" >/dev/null || true
stop_capture nghttp-prior-knowledge.pcap
stop_server

# python3-h2 server: gzip, trailers + padding, RST_STREAM, big body, echo
port=$(free_port)
server $py "$here/h2_server.py" "$port"
wait_port "$port"
capture h2-features.pcap "$port"
nghttp -n "http://127.0.0.1:$port/gzip" "http://127.0.0.1:$port/trailers" "http://127.0.0.1:$port/big" >/dev/null
nghttp -n "http://127.0.0.1:$port/reset" >/dev/null 2>&1 || true
nghttp -n -d "$work/post.txt" "http://127.0.0.1:$port/echo" >/dev/null
stop_capture h2-features.pcap
# nghttpd does not take Upgrade: h2c; the h2 server does
capture nghttp-upgrade.pcap "$port"
nghttp -n -u "http://127.0.0.1:$port/gzip" >/dev/null
stop_capture nghttp-upgrade.pcap
stop_server

# A server that ignores the upgrade
port=$(free_port)
server $py -m http.server --bind 127.0.0.1 --directory "$work/www" "$port"
wait_port "$port"
capture upgrade-refused.pcap "$port"
curl -s --http2 -o /dev/null "http://127.0.0.1:$port/index.html"
stop_capture upgrade-refused.pcap
stop_server
