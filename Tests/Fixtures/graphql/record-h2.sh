#!/usr/bin/env bash
# Record Tests/Fixtures/graphql/graphql-h2.pcap: GraphQL over HTTP/2 cleartext
# (prior knowledge) between real clients and a real GraphQL server: the schema
# and execution of graphql_server.py (graphene 2 + graphql-core 2.3) as an
# ASGI app on Hypercorn (graphql_h2_server.py), captured by tcpdump on loopback.
#
# curl --http2-prior-knowledge, one connection per request (curl 7.88 fails
# with "Error in the HTTP2 framing layer" when --next reuses a connection for
# a POST), each on stream 1:
#   POST application/json  query GetUser($id) with variables
#   GET  /graphql?query={ boom hello }        (boom always fails: data + errors)
#   POST application/graphql  query Hello { hello(name: "h2") }
#   POST application/json  a batch: [query A { hello }, query B { nope }] (B fails validation)
#   POST application/json  a query with a syntax error
#   POST application/json  /api/items: plain JSON with an object `query`, not GraphQL
# nghttp (nghttp2's client):
#   POST application/json  mutation AddUser($name) with variables (stream 13:
#        nghttp opens streams 3-11 as priority anchors)
#   one connection, two concurrent GETs (the second reuses the HPACK table):
#        /graphql?query=query Q($id: ID!) {...}&operationName=Q&variables={"id":"2"}
#        /graphql?query=red+shoes             (a /graphql path, but not GraphQL)
#
# Usage: record-h2.sh [OUT_DIR]  (default: this directory). Writes
# OUT_DIR/graphql-h2.pcap and OUT_DIR/port-h2 (the server's port). Needs root
# (tcpdump), tcpdump, curl built with nghttp2, nghttp (nghttp2-client) and
# /usr/bin/python3 with python3-graphene and python3-hypercorn
# (apt-get install tcpdump curl nghttp2-client python3-graphene python3-hypercorn).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT_DIR=${1:-$HERE}
PY=/usr/bin/python3
for tool in tcpdump curl nghttp; do
  command -v "$tool" >/dev/null || { echo "record-graphql-h2: missing $tool" >&2; exit 1; }
done
curl --version | grep -qi 'nghttp2' || { echo "record-graphql-h2: curl lacks HTTP/2 (nghttp2)" >&2; exit 1; }
"$PY" -c 'import graphene, hypercorn' 2>/dev/null || {
  echo "record-graphql-h2: $PY lacks graphene or hypercorn (python3-graphene, python3-hypercorn)" >&2; exit 1; }

NAME=record-graphql-h2
source "$HERE/record-common.sh"

"$PY" "$HERE/graphql_h2_server.py" 0 >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
wait_for "$WORK/server.out" "listening on"
PORT=$(sed -n 's/^listening on //p' "$WORK/server.out")
URL=http://127.0.0.1:$PORT

tcpdump -i lo -U -s 0 -w "$WORK/graphql-h2.pcap" "tcp port $PORT" 2>"$WORK/tcpdump.err" &
TCPDUMP_PID=$!
wait_for "$WORK/tcpdump.err" "listening on"

J='Content-Type: application/json'
h2post() { # h2post CONTENT_TYPE BODY PATH
  curl -sS -o /dev/null --http2-prior-knowledge -H "Content-Type: $1" --data-binary "$2" "$URL$3"
}
h2post application/json '{"query":"query GetUser($id: ID!) { user(id: $id) { id name friends { name } } }","operationName":"GetUser","variables":{"id":"1"}}' /graphql
curl -sS -o /dev/null --http2-prior-knowledge "$URL/graphql?query=%7B%20boom%20hello%20%7D"
h2post application/graphql 'query Hello { hello(name: "h2") }' /graphql
h2post application/json '[{"query":"query A { hello }","operationName":"A"},{"query":"query B { nope }","operationName":"B"}]' /graphql
h2post application/json '{"query":"query Broken { user(id: \"1\" { name } }","variables":{}}' /graphql
h2post application/json '{"name":"widget","tags":["a","b"],"query":{"match":"red"}}' /api/items
printf '%s' '{"query":"mutation AddUser($name: String!) { addUser(name: $name) { id name } }","operationName":"AddUser","variables":{"name":"Linus"}}' >"$WORK/add.json"
nghttp -n -H "content-type: application/json" -d "$WORK/add.json" "$URL/graphql"
nghttp -n "$URL/graphql?query=query%20Q(%24id%3A%20ID!)%20%7B%20user(id%3A%20%24id)%20%7B%20name%20%7D%20%7D&operationName=Q&variables=%7B%22id%22%3A%222%22%7D" \
  "$URL/graphql?query=red+shoes"
stop_tcpdump "$WORK/graphql-h2.pcap"
mkdir -p "$OUT_DIR"
mv "$WORK/graphql-h2.pcap" "$OUT_DIR/graphql-h2.pcap"
echo "$PORT" >"$OUT_DIR/port-h2"
echo "record-graphql-h2: wrote $OUT_DIR/graphql-h2.pcap (server port $PORT)" >&2
