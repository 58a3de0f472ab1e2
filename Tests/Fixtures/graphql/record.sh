#!/usr/bin/env bash
# Record Tests/Fixtures/graphql/graphql.pcap: curl talking to a real GraphQL
# server (graphene 2 + graphql-core 2.3, graphql_server.py, on Python's
# http.server) over loopback, captured by tcpdump.
#
# Scenarios, one connection each, in this order:
#   1 POST application/json  query GetUser($id) with variables
#   2 POST application/json  mutation AddUser($name) with variables
#   3 GET  /graphql?query={ boom hello }        (boom always fails: data + errors)
#   4 POST application/graphql  query Hello { hello(name: "pcap") }
#   5 POST application/json  a batch: [query A { hello }, query B { nope }] (B fails validation)
#   6 POST application/json  a query with a syntax error
#   7 POST application/json  /api/items: plain JSON, not GraphQL
#   8 POST application/json  fragments and aliases: query Parts { ...P me: user(id: "2") { name } }
#   9 POST application/json  a persisted query sent by hash only (the server wants the text)
#
# Usage: record.sh [OUT_DIR]  (default: this directory). Writes OUT_DIR/graphql.pcap
# and OUT_DIR/port (the server's port). Needs root (tcpdump), tcpdump, curl and
# /usr/bin/python3 with python3-graphene (apt-get install tcpdump curl python3-graphene).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT_DIR=${1:-$HERE}
PY=/usr/bin/python3
for tool in tcpdump curl; do
  command -v "$tool" >/dev/null || { echo "record-graphql: missing $tool" >&2; exit 1; }
done
"$PY" -c 'import graphene' 2>/dev/null || { echo "record-graphql: $PY lacks graphene (python3-graphene)" >&2; exit 1; }

NAME=record-graphql
source "$HERE/record-common.sh"

"$PY" "$HERE/graphql_server.py" 0 >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!
wait_for "$WORK/server.out" "listening on"
PORT=$(sed -n 's/^listening on //p' "$WORK/server.out")
URL=http://127.0.0.1:$PORT

tcpdump -i lo -U -s 0 -w "$WORK/graphql.pcap" "tcp port $PORT" 2>"$WORK/tcpdump.err" &
TCPDUMP_PID=$!
wait_for "$WORK/tcpdump.err" "listening on"

post_json() { curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary "$2" "$URL$1"; }

post_json /graphql '{"query":"query GetUser($id: ID!) { user(id: $id) { id name friends { name } } }","operationName":"GetUser","variables":{"id":"1"}}'
post_json /graphql '{"query":"mutation AddUser($name: String!) { addUser(name: $name) { id name } }","operationName":"AddUser","variables":{"name":"Linus"}}'
curl -sS -o /dev/null "$URL/graphql?query=%7B%20boom%20hello%20%7D"
curl -sS -o /dev/null -X POST -H 'Content-Type: application/graphql' --data-binary 'query Hello { hello(name: "pcap") }' "$URL/graphql"
post_json /graphql '[{"query":"query A { hello }","operationName":"A"},{"query":"query B { nope }","operationName":"B"}]'
post_json /graphql '{"query":"query Broken { user(id: \"1\" { name } }","variables":{}}'
post_json /api/items '{"name":"widget","tags":["a","b"],"price":12.5}'
post_json /graphql '{"query":"query Parts { ...P me: user(id: \"2\") { name } }\nfragment P on Query { hello boom }","operationName":"Parts"}'
post_json /graphql '{"operationName":"Feed","variables":{},"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38"}}}'

stop_tcpdump "$WORK/graphql.pcap"
mkdir -p "$OUT_DIR"
mv "$WORK/graphql.pcap" "$OUT_DIR/graphql.pcap"
echo "$PORT" >"$OUT_DIR/port"
echo "record-graphql: wrote $OUT_DIR/graphql.pcap (server port $PORT)" >&2
