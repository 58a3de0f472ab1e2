#!/usr/bin/env bash
# DNS dissection throughput: tshark vs kubeshark on one capture of real DNS
# traffic (dnsmasq answering a UDP query generator), in the same invocation.
#
#   Benchmarks/dns.sh                 # record (root) then measure
#   REUSE=1 Benchmarks/dns.sh         # measure the existing capture again
#
# Settings: PACKETS (default 300000), RUNS (default 2, fastest shown),
# KUBESHARK (default .build/release/kubeshark), PORT (default 15353),
# OUT (default /tmp/kubeshark-bench), LOAD_SECONDS (default 120, upper bound),
# RECORD_ONLY=1 (record, measure nothing).
# Needs dnsmasq, tcpdump, tshark, python3, /usr/bin/time.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
NAME=dns
PACKETS=${PACKETS:-300000}
RUNS=${RUNS:-2}
PORT=${PORT:-15353}
REUSE=${REUSE:-0}
LOAD_SECONDS=${LOAD_SECONDS:-120}
KUBESHARK=${KUBESHARK:-.build/release/kubeshark}
OUT=${OUT:-/tmp/kubeshark-bench}
PCAP="$OUT/dns-$PACKETS.pcap"
mkdir -p "$OUT"
source "$HERE/lib.sh"

record() {
  local work server
  work=$(mktemp -d)
  # The records of Tests/Fixtures/dns/record-dns.sh: A, AAAA, CNAME, MX, TXT, SRV, PTR, CAA, HTTPS.
  dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --pid-file= --user=root \
    --listen-address=127.0.0.1 --bind-interfaces --port="$PORT" --local=/test/ --local-ttl=300 \
    --address=/web.test/192.0.2.10 --address=/web.test/2001:db8::10 \
    --host-record=host.test,192.0.2.20,2001:db8::20 --cname=www.test,host.test \
    --mx-host=test,mail.test,10 --host-record=mail.test,192.0.2.25 \
    --txt-record=txt.test,"v=spf1 -all","hello world" --srv-host=_http._tcp.test,host.test,8080,1,5 \
    --ptr-record=30.2.0.192.in-addr.arpa,ptr-only.test --caa-record=test,0,issue,letsencrypt.org \
    --dns-rr=svc.test,65,00010000010006026832026833 >"$work/dnsmasq.log" 2>&1 &
  server=$!
  trap 'kill -9 $server 2>/dev/null || true; rm -rf "$work"' RETURN
  for _ in $(seq 50); do dig +short +tries=1 +time=1 -p "$PORT" @127.0.0.1 web.test >/dev/null 2>&1 && break; sleep 0.1; done
  start_tcpdump "udp port $PORT"
  timeout -s KILL $((LOAD_SECONDS + 5)) python3 "$HERE/dns-load.py" "$PORT" "$LOAD_SECONDS" "$TCPDUMP_PID" || true
  stop_tcpdump "$TCPDUMP_PID"
}

if [[ $REUSE == 1 && -s $PCAP ]]; then bench_log "reusing $PCAP"; else bench_log "recording $PACKETS packets"; record; fi
[[ ${RECORD_ONLY:-0} == 1 ]] && exit 0
cat "$PCAP" > /dev/null
TSHARK=(tshark -n -r "$PCAP" -d "udp.port==$PORT,dns" -Y dns -T fields -e dns.id -e dns.qry.name -e dns.flags.rcode)
KEEP_STDOUT=1 measure tshark "${TSHARK[@]}"
run_kubeshark dns
report "$("$KUBESHARK" dissect "$PCAP" --plugins dns --output json | wc -l)" "$(wc -l < "$OUT/stdout-$NAME-tshark.txt")"
