#!/usr/bin/env bash
# Records small Redis captures against a real redis-server on 127.0.0.1.
#
#   Tests/Fixtures/redis/record-redis.sh [OUTDIR]     (default: this directory)
#
# Needs root (tcpdump on lo) and the Debian packages redis-server, redis-tools,
# tcpdump. The server runs on a free port with persistence off and is stopped
# at the end. Writes OUTDIR/{commands,resp3,pubsub,pipelined}.pcap and
# OUTDIR/port (the server port, which the tests need to tell directions apart).
set -euo pipefail
out=${1:-$(cd "$(dirname "$0")" && pwd)}
mkdir -p "$out"
work=$(mktemp -d)
pids=()
# stop PID: TERM, then KILL. A parent may have blocked TERM and INT for its children
# (test runners do); tcpdump -U has written every packet by then anyway.
stop() {
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 20); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
  for p in "${pids[@]}"; do stop "$p"; done
  if [ -n "${server:-}" ]; then
    redis-cli -h 127.0.0.1 -p "$port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    stop "$server"
  fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$work" --daemonize no \
  --logfile "$work/redis.log" &
server=$!
for _ in $(seq 50); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.1; done
cli=(redis-cli -h 127.0.0.1 -p "$port")

# record NAME COMMAND...: capture while COMMAND runs.
record() {
  local name=$1; shift
  tcpdump -i lo -U -s 0 -w "$out/$name.pcap" "tcp port $port" >/dev/null 2>"$work/tcpdump.log" &
  local dump=$!
  # Start only once tcpdump listens (it can take seconds on a busy machine).
  for _ in $(seq 100); do grep -q listening "$work/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
  sleep 0.2
  "$@"
  sleep 1
  stop "$dump"
  wait "$dump" 2>/dev/null || true
}

commands() {
  "${cli[@]}" SET greeting hello >/dev/null
  "${cli[@]}" GET greeting >/dev/null
  "${cli[@]}" HSET user:1 name alice age 42 >/dev/null
  "${cli[@]}" HGETALL user:1 >/dev/null
  "${cli[@]}" LPUSH queue a b c >/dev/null
  "${cli[@]}" LRANGE queue 0 -1 >/dev/null
  "${cli[@]}" SADD tags red green >/dev/null
  "${cli[@]}" SMEMBERS tags >/dev/null
  "${cli[@]}" INCR counter >/dev/null
  "${cli[@]}" GET missing >/dev/null
  "${cli[@]}" INCR greeting >/dev/null || true
  # One connection, an AUTH (password redacted in entries) then the command.
  "${cli[@]}" -a sekrit-password --no-auth-warning SET k v >/dev/null 2>&1 || true
  # One connection, the same command three times.
  "${cli[@]}" -r 3 INCR counter >/dev/null
}

# redis-cli -3 opens each connection with HELLO 3; replies are RESP3 (maps, sets, doubles).
# (Commands are given as arguments: redis-cli reading stdin would fetch COMMAND DOCS first.)
resp3() {
  "${cli[@]}" -3 HSET h f1 v1 f2 v2 >/dev/null
  "${cli[@]}" -3 HGETALL h >/dev/null
  "${cli[@]}" -3 SADD s x y >/dev/null
  "${cli[@]}" -3 SMEMBERS s >/dev/null
  "${cli[@]}" -3 INCRBYFLOAT f 1.5 >/dev/null
  "${cli[@]}" -3 CONFIG GET maxmemory >/dev/null
  "${cli[@]}" -3 GET nothing >/dev/null
}

pubsub() {
  "${cli[@]}" SUBSCRIBE news >/dev/null &
  pids+=($!)
  "${cli[@]}" -3 PSUBSCRIBE 'n*' >/dev/null &
  pids+=($!)
  sleep 0.5
  "${cli[@]}" PUBLISH news hello >/dev/null
  "${cli[@]}" PUBLISH news world >/dev/null
  sleep 0.3
  for p in "${pids[@]}"; do stop "$p"; done
  pids=()
}

pipelined() {
  redis-benchmark -h 127.0.0.1 -p "$port" -n 200 -P 16 -c 4 -q -t set,get >/dev/null
}

record commands commands
record resp3 resp3
record pubsub pubsub
record pipelined pipelined
echo "$port" > "$out/port"
echo "recorded into $out (server port $port)"
