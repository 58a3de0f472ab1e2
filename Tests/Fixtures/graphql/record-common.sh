# Shared by record.sh and record-h2.sh (sourced, not run): a work directory,
# cleanup on exit (server and tcpdump killed), waiting for a line in a file, and
# stopping tcpdump. The sourcing script sets NAME (for messages) first.

WORK=$(mktemp -d "/tmp/kstest-$NAME.XXXXXX")
SERVER_PID=
TCPDUMP_PID=
cleanup() {
  local rc=$?
  set +e
  [[ -n $TCPDUMP_PID ]] && kill -KILL "$TCPDUMP_PID" 2>/dev/null
  [[ -n $SERVER_PID ]] && kill -KILL "$SERVER_PID" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$WORK"
  [[ $rc -ne 0 ]] && echo "$NAME: FAILED (exit $rc)" >&2
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # wait_for FILE TEXT: up to 30 s (graphene is slow to import on a busy machine)
  for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "$NAME: timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

stop_tcpdump() { # stop_tcpdump PCAP
  # Wait until the file stops growing (a busy machine delays tcpdump's reads;
  # SIGINT drops what it has not read yet), at most 5 s.
  local last=-1 size
  for _ in $(seq 25); do
    sleep 0.2
    size=$(stat -c %s "$1" 2>/dev/null || echo 0)
    [[ $size -eq $last ]] && break
    last=$size
  done
  # SIGINT lets tcpdump finish the file; under a test runner that blocks SIGINT
  # (Swift Testing does, and children inherit it) fall back to SIGKILL: with -U
  # every packet is already written.
  kill -INT "$TCPDUMP_PID"
  for _ in $(seq 20); do kill -0 "$TCPDUMP_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$TCPDUMP_PID" 2>/dev/null || true
  wait "$TCPDUMP_PID" 2>/dev/null || true
  TCPDUMP_PID=
}
