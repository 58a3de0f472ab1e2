# Shared by the protocol benchmarks (dns.sh, kafka.sh, amqp.sh, redis.sh): timing
# tshark and kubeshark on one capture in the same invocation, and the table.
#
# The caller sets NAME (protocol, used in file names), PCAP, OUT, RUNS and
# KUBESHARK, then calls `measure` for each tool and `report` once.

declare -A SECS RSS

bench_log() { echo "$NAME-bench: $*" >&2; }

# measure TOOL CMD...: runs CMD RUNS times under /usr/bin/time, keeps the fastest
# elapsed seconds and that run's peak RSS (KiB). Fails when CMD fails. Stdout is
# discarded, or kept in $OUT/stdout-$NAME-TOOL.txt when KEEP_STDOUT=1 (to count it).
measure() {
  local tool=$1; shift
  local best="" rss="" s r sink=/dev/null
  [[ ${KEEP_STDOUT:-0} == 1 ]] && sink="$OUT/stdout-$NAME-$tool.txt"
  for _ in $(seq "$RUNS"); do
    if ! /usr/bin/time -f '%e %M' -o "$OUT/time-$NAME-$tool.txt" "$@" > "$sink" 2>"$OUT/stderr-$NAME-$tool.txt"; then
      bench_log "$tool failed: $(tail -n 3 "$OUT/stderr-$NAME-$tool.txt")"
      return 1
    fi
    read -r s r < <(tail -n 1 "$OUT/time-$NAME-$tool.txt")
    bench_log "  $tool: ${s}s, ${r} KiB"
    if [[ -z $best ]] || awk -v a="$s" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$s; rss=$r; fi
  done
  SECS[$tool]=$best; RSS[$tool]=$rss
}

# report ENTRIES TSHARK_ITEMS: the table (also saved as $OUT/$NAME-results-*.txt).
report() {
  local entries=$1 tshark_items=$2 pkts bytes
  pkts=$(tcpdump -r "$PCAP" -qn 2>/dev/null | wc -l)
  bytes=$(stat -c %s "$PCAP")
  {
    echo "capture: $PCAP ($pkts packets, $bytes bytes)"
    echo "tshark output lines: $tshark_items; kubeshark entries: $entries"
    printf '%-13s %9s %13s %9s %14s\n' tool seconds packets/s MB/s "peak RSS MiB"
    for t in tshark kubeshark kubeshark-mt; do
      [[ -n ${SECS[$t]:-} ]] || continue
      awk -v t="$t" -v s="${SECS[$t]}" -v r="${RSS[$t]}" -v p="$pkts" -v b="$bytes" 'BEGIN{
        d = (s > 0) ? s : 0.005; printf "%-13s %9.2f %13.0f %9.1f %14.1f\n", t, s, p/d, b/1e6/d, r/1024 }'
    done
    awk -v k="${SECS[kubeshark]}" -v m="${SECS[kubeshark-mt]}" -v t="${SECS[tshark]}" 'BEGIN{
      printf "kubeshark pps / tshark pps: %.1f (one thread), %.1f (--threads 2)\n", t/k, t/m }'
  } | tee "$OUT/$NAME-results-$(basename "$PCAP" .pcap).txt"
}

# run_kubeshark PLUGIN: both kubeshark rows (one thread, two threads).
run_kubeshark() {
  local plugin=$1
  measure kubeshark "$KUBESHARK" dissect "$PCAP" --plugins "$plugin" --output json
  measure kubeshark-mt "$KUBESHARK" dissect "$PCAP" --plugins "$plugin" --output json --threads 2
}

# stop_tcpdump PID: stops a tcpdump (SIGINT so it flushes, SIGKILL if it lingers).
stop_tcpdump() {
  kill -INT "$1" 2>/dev/null || true
  for _ in $(seq 20); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# start_tcpdump FILTER: records PACKETS packets on lo into $PCAP; sets TCPDUMP_PID.
start_tcpdump() {
  tcpdump -i lo -s 0 -B 65536 -U -n -w "$PCAP" -c "$PACKETS" "$1" 2>"$OUT/tcpdump-$NAME.log" &
  TCPDUMP_PID=$!
  for _ in $(seq 50); do grep -q "listening on" "$OUT/tcpdump-$NAME.log" 2>/dev/null && break; sleep 0.1; done
  sleep 0.3
}
