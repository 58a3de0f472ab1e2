#!/usr/bin/env bash
# Records DNS conversations between dig and a local dnsmasq, over UDP and TCP,
# with tcpdump on the loopback interface. Needs root, dnsmasq, dig
# (bind9-dnsutils), tcpdump and python3 (to pick a free port).
#
#   Tests/Fixtures/dns/record-dns.sh                 # rewrite the committed captures (port 53535)
#   DNS_PORT=40053 Tests/Fixtures/dns/record-dns.sh /tmp/out   # elsewhere, another port
#
# Writes OUTDIR/dns-udp.pcap (many record types over UDP) and OUTDIR/dns-tcp.pcap
# (dig +tcp, several queries on one connection with +keepopen). The port is
# not 53, so tshark needs `-d udp.port==PORT,dns -d tcp.port==PORT,dns`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
port=${DNS_PORT:-53535}
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() {
  # SIGKILL: a parent (a test runner) may leave SIGTERM/SIGINT blocked or ignored.
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] && cat "$work"/*.log >&2; rm -rf "$work"
}
trap cleanup EXIT

dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --pid-file= --user=root \
  --listen-address=127.0.0.1 --bind-interfaces --port="$port" --local=/test/ --local-ttl=300 \
  --address=/web.test/192.0.2.10 --address=/web.test/2001:db8::10 \
  --host-record=host.test,192.0.2.20,2001:db8::20 \
  --cname=www.test,host.test \
  --mx-host=test,mail.test,10 --host-record=mail.test,192.0.2.25 \
  --txt-record=txt.test,"v=spf1 -all","hello world" \
  --srv-host=_http._tcp.test,host.test,8080,1,5 \
  --ptr-record=30.2.0.192.in-addr.arpa,ptr-only.test \
  --caa-record=test,0,issue,letsencrypt.org \
  --dns-rr=svc.test,65,00010000010006026832026833 \
  >"$work/dnsmasq.log" 2>&1 &
pids+=($!)

capture() {  # capture FILE COMMAND...
  local file=$1; shift
  rm -f "$work/tcpdump.log"
  tcpdump -i lo -U -n -w "$file" "port $port" >"$work/tcpdump.log" 2>&1 &
  local tp=$!
  pids+=($tp)
  for _ in $(seq 1 50); do grep -q "listening on" "$work/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
  "$@"
  sleep 0.5
  # tcpdump -U has written every packet already; SIGTERM lets it close cleanly,
  # SIGKILL covers a parent that left signals blocked.
  kill -TERM "$tp" 2>/dev/null || true
  for _ in $(seq 1 10); do kill -0 "$tp" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$tp" 2>/dev/null || true
  wait "$tp" 2>/dev/null || true
}

# Wait for dnsmasq to answer.
for _ in $(seq 1 50); do
  [ -n "$(dig @127.0.0.1 -p "$port" +short +tries=1 +time=1 web.test A 2>/dev/null)" ] && break
  sleep 0.1
done

d() { dig @127.0.0.1 -p "$port" +tries=1 +time=2 "$@" >/dev/null || true; }

udp_queries() {
  d web.test A
  d web.test AAAA
  d host.test AAAA
  d www.test A
  d test MX
  d txt.test TXT
  d _http._tcp.test SRV
  d -x 192.0.2.30
  d test CAA
  d svc.test TYPE65
  d nope.test A
  d +nocookie +noedns host.test A
}

tcp_queries() {
  d +tcp +keepopen web.test A host.test AAAA test MX txt.test TXT
  d +tcp nope.test A
}

capture "$out/dns-udp.pcap" udp_queries
capture "$out/dns-tcp.pcap" tcp_queries
echo "recorded $out/dns-udp.pcap $out/dns-tcp.pcap (port $port)"
