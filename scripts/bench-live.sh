#!/usr/bin/env bash
# bench-live.sh: live capture throughput (issue 6, item 3). Replays a DNS capture over a veth pair
# between two network namespaces at increasing packet rates and reports, per rate, what the sender
# achieved (tcpreplay's own report, the reference), what the collector received, what the kernel
# dropped (capture ring full), the collector's CPU time and peak RSS, and the highest rate with
# zero kernel drops. Called by `make bench` (scripts/bench.sh) when run as root; also on its own:
#
#   sudo scripts/bench-live.sh
#
#   BENCH_LIVE_RATES    packets/s to replay at, "topspeed" for as fast as tcpreplay goes
#                       (default "50000 100000 200000 300000 400000 600000 topspeed")
#   BENCH_LIVE_SECONDS  seconds of traffic per rate (default 5)
#   BENCH_LIVE_SINK     null (default): analyzer serve with dns_messages and capture_stats
#                       swapped for ENGINE = Null tables, so the server parses and discards the
#                       rows; store: the real MergeTree tables
#   BENCH_LIVE_DRAIN    packets of the drain step (default 1500000; 0 leaves it out): the
#                       collector is stopped while they fill its ring, then timed reading them,
#                       which measures its ceiling on one core whatever the sender reaches
#   BENCH_LIVE_PROFILE  1: write a Go CPU and heap profile of the collector per rate
#                       (out/bench/live-cpu-RATE.prof, live-mem-RATE.prof; go tool pprof bin/collector FILE)
#   BENCH_LIVE_PCAP     the capture to replay (default out/bench/big.pcap, built as bench.sh does)
#   BENCH_LIVE_COLLECTOR  a collector binary to measure instead of building bin/collector (e.g.
#                       an older build, for a before/after comparison in the same conditions)
#   BENCH_LIVE_ARGS     more arguments for collector capture (e.g. "--ring-mb 32")
#
# Set-up: namespaces dnsloss-bench-tx and dnsloss-bench-rx joined by a veth pair (10.250.0.1/30,
# 10.250.0.2/30). Nothing is routed anywhere else: the frames keep the lab capture's MAC and IP
# addresses, so the receiving side's IP stack discards them (not addressed to it) after the
# collector's AF_PACKET socket has seen them. tcpreplay runs in -tx on CPU 0; `collector capture`
# runs in -rx on the veth, pinned to CPU 1 (so one Go worker and one ring), sending its rows to
# `analyzer serve` on the -rx namespace's loopback, which runs on CPU 0 beside the sender. With
# veth the kernel's receive work, including the copy into the capture ring, runs on the sending
# CPU, so the collector's CPU time is its own work (reading the ring, decoding, batching, encoding
# and sending the blocks, and its system calls). The Null sink keeps the server's share of CPU 0
# small, so that the sender gets most of it; the collector does all it does in production.
#
# Output: one line per rate, one for the drain step, the highest rate with zero kernel drops, and
# rows appended to out/bench/results.tsv (the columns of scripts/bench.sh). Everything is removed
# on exit (trap), and what a killed run left behind is cleaned up first. About 1.5 minutes.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

OUT=out/bench
BIN=bin
TSV=$OUT/results.tsv
PCAP=${BENCH_LIVE_PCAP:-$OUT/big.pcap}
RATES=${BENCH_LIVE_RATES:-50000 100000 200000 300000 400000 600000 topspeed}
SECS=${BENCH_LIVE_SECONDS:-5}
SINK=${BENCH_LIVE_SINK:-null}
PROFILE=${BENCH_LIVE_PROFILE:-0}
DRAIN=${BENCH_LIVE_DRAIN:-1500000}
DRAIN_RING_MB=512
TX_CPU=0
RX_CPU=1
NS_TX=dnsloss-bench-tx
NS_RX=dnsloss-bench-rx
IF_TX=dlbench-tx
IF_RX=dlbench-rx
SERVE_ADDR=127.0.0.1:8123   # inside $NS_RX
METRICS_ADDR=127.0.0.1:9153 # inside $NS_RX
DB=$OUT/live-db
SPOOL=$OUT/live-spool

say() { echo "bench-live: $*" >&2; }
die() { say "$*"; exit 1; }

# Checks, with what to do about each.
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, AF_PACKET sockets): run sudo scripts/bench-live.sh, or make bench as root"
for c in ip tcpreplay taskset; do
  command -v "$c" >/dev/null || die "'$c' is not installed: apt-get install iproute2 tcpreplay util-linux (make bench installs them)"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (sender on CPU $TX_CPU, collector on CPU $RX_CPU); nproc says $(nproc)"
case $SINK in null | store) ;; *) die "BENCH_LIVE_SINK=$SINK: want null or store" ;; esac
for r in $RATES; do
  [[ $r == topspeed || $r =~ ^[1-9][0-9]*$ ]] || die "BENCH_LIVE_RATES: '$r' is not a packet rate (a number, or topspeed)"
done
[[ $SECS =~ ^[1-9][0-9]*$ ]] || die "BENCH_LIVE_SECONDS=$SECS: want a whole number of seconds"
if ! [[ $DRAIN =~ ^[0-9]+$ ]] || [ "$DRAIN" -gt 2000000 ]; then
  die "BENCH_LIVE_DRAIN=$DRAIN: want a packet count up to 2000000 (the burst must fit a $DRAIN_RING_MB MiB ring), or 0"
fi
mkdir -p "$OUT" "$BIN"

COLLECTOR=${BENCH_LIVE_COLLECTOR:-$BIN/collector}
read -r -a extra_args <<<"${BENCH_LIVE_ARGS:-}"
if [ -n "${BENCH_LIVE_COLLECTOR:-}" ]; then
  [ -x "$COLLECTOR" ] || die "BENCH_LIVE_COLLECTOR=$COLLECTOR is not an executable file"
  say "building bin/analyzer (measuring $COLLECTOR)"
else
  say "building bin/collector bin/analyzer"
  go build -o $BIN/collector ./collector
fi
go build -o $BIN/analyzer ./analyzer
if [ ! -s "$PCAP" ]; then
  [ "$PCAP" = "$OUT/big.pcap" ] || die "BENCH_LIVE_PCAP=$PCAP does not exist or is empty"
  say "building $PCAP (659 time-shifted copies of testdata/lab/loss20.pcap)"
  go run ./bench/cmd/bigcap -src testdata/lab/loss20.pcap -copies 659 -out "$PCAP" >&2
fi
pcap_packets=$(go run ./bench/cmd/decode "$PCAP" | awk -F'\t' '{ sub("packets ", "", $2); print $2 }')
[ "${pcap_packets:-0}" -gt 0 ] || die "$PCAP holds no packets"
# From here on this script and what it starts (the sampler, metric reads) share the sender's CPU;
# only the collector runs on CPU $RX_CPU.
taskset -pc $TX_CPU $$ >/dev/null

# Processes this script started, stopped on exit (by pid, never by name).
serve_pid=""
coll_pid=""
sampler_pid=""
stop_pid() { # PID SECONDS: SIGTERM, then SIGKILL after SECONDS
  local pid=$1 i
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  say "pid $pid did not stop within $2 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}
# teardown removes the namespaces (and so the veth pair), first stopping what runs in them. It is
# also what cleans up after an earlier run that was killed before its trap ran.
teardown() {
  local ns pid
  for ns in $NS_RX $NS_TX; do
    ip netns list | grep -qw "^$ns" || continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      stop_pid "$pid" 5
    done
    ip netns del "$ns" 2>/dev/null || true
  done
}
cleanup() {
  stop_pid "$sampler_pid" 1
  stop_pid "$coll_pid" 10
  stop_pid "$serve_pid" 30
  teardown
  rm -rf "$DB" "$SPOOL"
}
trap cleanup EXIT
trap 'say "failed at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT TERM

if ip netns list | grep -qwE "^($NS_TX|$NS_RX)"; then
  say "removing namespaces left by an earlier run"
  teardown
fi
rm -rf "$DB" "$SPOOL"

say "creating namespaces $NS_TX and $NS_RX joined by veth $IF_TX <-> $IF_RX (10.250.0.0/30)"
ip netns add $NS_TX
ip netns add $NS_RX
ip link add $IF_TX netns $NS_TX type veth peer name $IF_RX netns $NS_RX
ip -n $NS_TX addr add 10.250.0.1/30 dev $IF_TX
ip -n $NS_RX addr add 10.250.0.2/30 dev $IF_RX
for ns in $NS_TX $NS_RX; do
  # No IPv6 router solicitations or other chatter on the link.
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set lo up
done
ip -n $NS_TX link set $IF_TX up
ip -n $NS_RX link set $IF_RX up

# metrics prints the collector's Prometheus metrics as "name value" lines (labels dropped: one
# interface; the sink's per-table counters for dns_messages only). Plain bash: no HTTP client
# needed inside the namespace.
metrics() {
  # shellcheck disable=SC2016
  ip netns exec $NS_RX bash -c 'exec 3<>/dev/tcp/${1%:*}/${1#*:} && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3' _ "$METRICS_ADDR" 2>/dev/null |
    awk '/^dnsloss_/ && !/table="capture_stats"/ { n = $1; sub(/\{.*/, "", n); printf "%s %.0f\n", n, $NF }'
}
metric() { awk -v n="$1" '$1 == n { print $2; f = 1 } END { if (!f) print 0 }' <<<"$2"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # utime + stime
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)
mb() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
# div A B [FORMAT]: A / B, where A may be an awk expression such as "$cpu * 100".
div() { awk -v b="$2" -v f="${3:-%.0f}" "BEGIN { if (b > 0) printf f, ($1) / b; else print \"nan\" }"; }

# The sink: analyzer serve on the receiving namespace's loopback.
say "starting analyzer serve on $SERVE_ADDR in $NS_RX (CPU $TX_CPU), sink: $SINK"
ip netns exec $NS_RX taskset -c $TX_CPU $BIN/analyzer --db "$DB" serve --listen $SERVE_ADDR >"$OUT/live-serve.log" 2>&1 &
serve_pid=$!
for ((i = 0; i < 600; i++)); do
  grep -q "listening on" "$OUT/live-serve.log" && break
  kill -0 $serve_pid 2>/dev/null || die "analyzer serve exited: $(tail -5 "$OUT/live-serve.log")"
  sleep 0.1
done
grep -q "listening on" "$OUT/live-serve.log" || die "analyzer serve did not start within 60 s: see $OUT/live-serve.log"
sql() { ip netns exec $NS_RX $BIN/analyzer --clickhouse "http://$SERVE_ADDR" sql "$@"; }
if [ "$SINK" = null ]; then
  for t in dns_messages capture_stats; do
    sql "CREATE TABLE ${t}_null AS $t ENGINE = Null" >/dev/null
    sql "EXCHANGE TABLES $t AND ${t}_null" >/dev/null
  done
fi

[ -f "$TSV" ] || printf 'figure\tsubject\tvalue\tunit\treference\treference_value\tratio\twall_s\tcpu_s\tpeak_rss_mb\n' >"$TSV"
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$TSV"; }

# start_collector NAME [ARGS...]: starts collector capture on the veth, pinned to CPU $RX_CPU, and
# waits for its metrics; sets coll_pid. Its log is $OUT/live-collector-NAME.log.
start_collector() {
  local name=$1 i
  shift
  local prof=()
  [ "$PROFILE" = 1 ] && prof=(--cpuprofile "$OUT/live-cpu-$name.prof" --memprofile "$OUT/live-mem-$name.prof")
  ip netns exec $NS_RX taskset -c $RX_CPU "$COLLECTOR" capture -i $IF_RX --host bench-live \
    --clickhouse "http://$SERVE_ADDR" --metrics-listen $METRICS_ADDR --spool-dir "$SPOOL/$name" \
    --stats-interval 1h "${prof[@]}" "${extra_args[@]}" "$@" >"$OUT/live-collector-$name.log" 2>&1 &
  coll_pid=$!
  for ((i = 0; i < 100; i++)); do
    [ -n "$(metrics)" ] && return 0
    kill -0 $coll_pid 2>/dev/null || die "collector capture exited: $(tail -5 "$OUT/live-collector-$name.log")"
    sleep 0.1
  done
  die "collector capture does not serve metrics on $METRICS_ADDR: see $OUT/live-collector-$name.log"
}

# replay NAME PACKETS PACE...: tcpreplay of PACKETS packets of $PCAP (looping over it as needed)
# on CPU $TX_CPU; sets sent, send_s, sent_pps and failed from tcpreplay's report.
replay() {
  local name=$1 limit=$2
  shift 2
  local loops=$(((limit + pcap_packets - 1) / pcap_packets))
  if ! ip netns exec $NS_TX taskset -c $TX_CPU tcpreplay -i $IF_TX "$@" --limit="$limit" --loop=$loops \
    --preload-pcap --no-flow-stats "$PCAP" >"$OUT/live-tcpreplay-$name.log" 2>&1; then
    die "tcpreplay failed ($name): $(tail -5 "$OUT/live-tcpreplay-$name.log")"
  fi
  # "Actual: N packets (B bytes) sent in S seconds", "Rated: ... P pps", "Failed packets: F".
  read -r sent send_s < <(awk '/^Actual:/ { print $2, $(NF-1) }' "$OUT/live-tcpreplay-$name.log")
  sent_pps=$(awk '/^Rated:/ { print $(NF-1) }' "$OUT/live-tcpreplay-$name.log" | cut -d. -f1)
  failed=$(awk '/Failed packets:/ { print $NF }' "$OUT/live-tcpreplay-$name.log")
  if [ -z "$sent" ] || [ -z "$sent_pps" ]; then
    die "cannot read tcpreplay's report in $OUT/live-tcpreplay-$name.log"
  fi
}

# wait_drained POLL_S: waits (at most 15 s) until every packet sent is accounted for (received or
# dropped by the kernel) and the sink has acknowledged every row (the last block leaves after
# --batch-age, 5 s); sets m (the metrics), got, kd, rows, acked, and t_packets and t_rows (the
# times, date +%s.%N, at which the packets and then the rows were first seen complete).
wait_drained() {
  local i
  t_packets=""
  for ((i = 0; i < 1500; i++)); do
    m=$(metrics)
    got=$(metric dnsloss_collector_packets_total "$m")
    kd=$(metric dnsloss_collector_kernel_drops_total "$m")
    rows=$(metric dnsloss_collector_dns_messages_total "$m")
    acked=$(metric dnsloss_sink_rows_total "$m")
    if [ $((got + kd)) -ge "$sent" ]; then
      [ -n "$t_packets" ] || t_packets=$(date +%s.%N)
      if [ "$acked" -ge "$rows" ]; then
        t_rows=$(date +%s.%N)
        return 0
      fi
    fi
    sleep "$1"
    [ "$(awk -v i=$i -v p="$1" 'BEGIN { print (i * p > 15) }')" = 0 ] || break
  done
  t_rows=$(date +%s.%N)
  say "the collector did not account for every packet and row within 15 s (got $got, kernel drops $kd of $sent; rows $rows, acknowledged $acked)"
}

# stop_collector NAME: stops the collector and counts the blocks it left in its spool (none
# unless the sink fell behind); sets spooled.
stop_collector() {
  stop_pid "$coll_pid" 30
  coll_pid=""
  spooled=$(find "$SPOOL/$1" -name '*.block' 2>/dev/null | wc -l)
  rm -rf "${SPOOL:?}/$1"
}

say "replaying $PCAP ($pcap_packets packets) for ${SECS} s per rate: $RATES"
best=0
best_label=none
first_drops=""
total_acked=0
drain_pps=0
for rate in $RATES; do
  if [ "$rate" = topspeed ]; then
    limit=$((SECS * 500000)) # about SECS seconds at what this VM's sender reaches
    pace=(--topspeed)
  else
    limit=$((SECS * rate))
    pace=(--pps="$rate")
  fi

  start_collector "$rate" # fresh for each rate: peak RSS is per process
  rm -f "$OUT/live-peak.tmp"
  # Peak of the collector's anonymous memory (Go heap and stacks; the capture ring is counted in
  # RssFile) and of its sink queue, sampled every 100 ms.
  (
    trap - ERR
    set +e
    anon=0 queued=0
    while kill -0 "$coll_pid" 2>/dev/null; do
      a=$(status_kb "$coll_pid" RssAnon 2>/dev/null || echo 0)
      q=$(metric dnsloss_sink_queued_blocks "$(metrics)")
      [ "${a:-0}" -gt "$anon" ] && anon=$a
      [ "${q:-0}" -gt "$queued" ] && queued=$q
      echo "$anon $queued" >"$OUT/live-peak.tmp.new" && mv -f "$OUT/live-peak.tmp.new" "$OUT/live-peak.tmp"
      sleep 0.1
    done
  ) &
  sampler_pid=$!

  c0=$(cpu_ticks "$coll_pid")
  replay "$rate" "$limit" "${pace[@]}"
  wait_drained 0.1
  c1=$(cpu_ticks "$coll_pid")
  hwm=$(status_kb "$coll_pid" VmHWM)
  sink_err=$(metric dnsloss_sink_errors_total "$m")
  tool_drops=$(metric dnsloss_collector_tool_drops_total "$m")
  stop_pid "$sampler_pid" 1
  sampler_pid=""
  read -r anon queued <"$OUT/live-peak.tmp" || anon=0 queued=0
  stop_collector "$rate"
  total_acked=$((total_acked + acked))

  cpu=$(awk -v t=$((c1 - c0)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')
  got_pps=$(div "$got" "$send_s")
  lost=$((sent - got - kd)) # neither received nor counted as dropped: lost before the capture socket
  label=$rate
  [ "$rate" = topspeed ] || label="$((rate / 1000))k"
  us_per_packet=$(div "$cpu * 1000000" "$got" "%.2f")
  core_pct=$(div "$cpu * 100" "$send_s")
  printf 'live capture %-6s sent %8s packets at %6s pps (tcpreplay; %s failed); collector got %8s (%6s/s), kernel drops %s, unaccounted %s; rows %s, sink acked %s (errors %s, tool drops %s); collector %s CPU-s = %s us/packet, %s%% of a core over the send; peak RSS %s MB (anon %s MB; sink queue <= %s blocks, %s spooled at exit)\n' \
    "$label:" "$sent" "$sent_pps" "${failed:-0}" "$got" "$got_pps" "$kd" "$lost" "$rows" "$acked" "$sink_err" "$tool_drops" \
    "$cpu" "$us_per_packet" "$core_pct" "$(mb "$hwm")" "$(mb "$anon")" "$queued" "$spooled"
  row "live_capture_$label" dnsloss "$got_pps" "packets per s received by collector capture on one core ($kd kernel drops, $lost unaccounted, sink $SINK)" \
    "tcpreplay sent (pps)" "$sent_pps" "$(div "$got" "$sent" "%.4f")" "$send_s" "$cpu" "$(mb "$hwm")"
  if [ "$kd" -eq 0 ] && [ "$lost" -eq 0 ]; then
    if [ "$sent_pps" -gt "$best" ]; then
      best=$sent_pps
      best_label=$label
    fi
  elif [ -z "$first_drops" ]; then
    first_drops="$label (sent at $sent_pps pps: $kd kernel drops, $lost unaccounted)"
  fi
done

# The collector's own ceiling on one core, beyond what the sender reaches: the collector is
# stopped (SIGSTOP) while tcpreplay fills a ring big enough for the whole burst, then continued
# and timed until it has read every packet, and until the sink has acknowledged every row. The
# times come from polling the metrics (published every 50 ms), so they are a little long.
if [ "$DRAIN" -gt 0 ]; then
  start_collector drain --ring-mb "$DRAIN_RING_MB"
  kill -STOP "$coll_pid"
  replay drain "$DRAIN" --topspeed
  c0=$(cpu_ticks "$coll_pid")
  t0=$(date +%s.%N)
  kill -CONT "$coll_pid"
  wait_drained 0.02
  c1=$(cpu_ticks "$coll_pid")
  stop_collector drain
  total_acked=$((total_acked + acked))
  cpu=$(awk -v t=$((c1 - c0)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')
  read_s=$(awk -v a="$t0" -v b="$t_packets" 'BEGIN { printf "%.3f", b - a }')
  rows_s=$(awk -v a="$t0" -v b="$t_rows" 'BEGIN { printf "%.3f", b - a }')
  drain_pps=$(div "$got" "$read_s")
  echo "live capture drain: $sent packets queued in a ${DRAIN_RING_MB} MiB ring while the collector was stopped (kernel drops $kd); read and decoded in $read_s s = $drain_pps packets/s, all $acked rows acknowledged by the sink after $rows_s s = $(div "$acked" "$rows_s") rows/s; $cpu CPU-s = $(div "$cpu * 1000000" "$got" "%.2f") us/packet (the collector's ceiling on one core)"
  row live_capture_drain dnsloss "$drain_pps" "packets per s read from a full ring on one core ($kd kernel drops; rows acked at $(div "$acked" "$rows_s")/s; sink $SINK)" \
    "" "" "" "$read_s" "$cpu" ""
fi

if [ "$SINK" = store ]; then
  stored=$(sql -f TSV "SELECT count() FROM dns_messages WHERE host = 'bench-live'")
  echo "live capture: $stored rows stored in dns_messages over all rates (sink store; rows acknowledged: $total_acked)"
  [ "$stored" = "$total_acked" ] || say "warning: the store holds $stored rows, the collectors had $total_acked acknowledged"
fi
if [ -z "$first_drops" ]; then
  echo "live capture: no kernel drops at any rate; highest rate sent: $best pps (run $best_label; with topspeed, the sender's limit)"
else
  echo "live capture: highest rate with zero kernel drops: $best pps (run $best_label); first drops at $first_drops"
fi
if [ "$best" -ge 300000 ]; then
  echo "live capture: target >= 300000 pps on one core with zero kernel drops: met ($best pps replayed)"
elif [ -z "$first_drops" ]; then
  drained=""
  [ "$DRAIN" -gt 0 ] && drained="; the drain step read $drain_pps packets/s on one core"
  echo "live capture: target >= 300000 pps on one core with zero kernel drops: not shown by replay (the sender reached $best pps without a drop)$drained"
else
  echo "live capture: target >= 300000 pps on one core with zero kernel drops: not met ($best pps)"
fi
row live_capture_max_zero_drops dnsloss "$best" "packets per s, highest sent rate with zero kernel drops (sink $SINK)" target 300000 "$(div "$best" 300000 "%.2f")" "" "" ""
rm -f "$OUT/live-peak.tmp" "$OUT/live-peak.tmp.new"
say "results appended to $TSV; logs in $OUT/live-*.log"
