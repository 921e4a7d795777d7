#!/usr/bin/env bash
# bench.sh: the performance figures of issue 6, each beside a reference measured in the same run.
# Called by `make bench`. Prints one line per figure and writes out/bench/results.tsv.
#
#   BENCH_REPEAT  runs of each timed step; the median is reported (default 3)
#   BENCH_TSHARK  0 to leave tshark out (it takes ~20 s a run on the big capture)
#   BENCH_SIM     messages in the fleet capture for the linking figures (default 10000000)
#   BENCH_LIVE    1 to run the live capture benchmark (scripts/bench-live.sh), 0 to skip it;
#                 default: 1 when running as root (it needs network namespaces), else skipped
#
# CPU time is user+sys of the child process (getrusage), peak RSS its maxrss: see bench/cmd/rusage.
# Timings inside the embedded engine come from bench/cmd/storebench, which times its step after
# the engine has started and the schema is applied.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=out/bench
BIN=bin
REPEAT=${BENCH_REPEAT:-3}
SIM_MESSAGES=${BENCH_SIM:-10000000}
BIG=$OUT/big.pcap
SIM=$OUT/sim
TSV=$OUT/results.tsv
RAW=$OUT/raw.tsv
mkdir -p "$OUT" "$BIN"

say() { echo "bench: $*" >&2; }

say "building bin/decode bin/storebench bin/rusage bin/analyzer"
go build -o $BIN/decode ./bench/cmd/decode
go build -o $BIN/storebench ./bench/cmd/storebench
go build -o $BIN/rusage ./bench/cmd/rusage
go build -o $BIN/analyzer ./analyzer

# Inputs.
if [ ! -s "$BIG" ]; then
  say "building $BIG (659 time-shifted copies of testdata/lab/loss20.pcap)"
  go run ./bench/cmd/bigcap -src testdata/lab/loss20.pcap -copies 659 -out "$BIG" >&2
fi
sim_stamp="$SIM/.messages-$SIM_MESSAGES"
if [ ! -f "$sim_stamp" ]; then
  say "generating $SIM ($SIM_MESSAGES DNS messages, 50 hosts)"
  rm -rf "$SIM"
  go run ./bench/cmd/dnsgen -hosts 50 -messages "$SIM_MESSAGES" -out "$SIM" >&2
  touch "$sim_stamp"
fi

# run NAME CMD...: runs CMD under rusage; appends "NAME wall user sys cpu maxrss exit" to $RAW and
# leaves the command's stdout in $OUT/NAME.out.
run() {
  local name=$1; shift
  local fig
  fig=$(mktemp)
  if ! $BIN/rusage -o "$fig" -stdout "$OUT/$name.out" -- "$@" 2>"$OUT/$name.err"; then
    say "$name failed: $*"; cat "$OUT/$name.err" >&2; rm -f "$fig"; exit 1
  fi
  printf '%s\t%s' "$name" "$(cat "$fig")" >>"$RAW"
  echo >>"$RAW"
  rm -f "$fig"
}

# median NAME COLUMN: the median of a column of $RAW over the runs of NAME
# (columns: 2 wall, 3 user, 4 sys, 5 cpu, 6 maxrss).
median() {
  awk -F'\t' -v n="$1" -v c="$2" '$1 == n { print $c }' "$RAW" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# inner NAME: the median of storebench's own timing (seconds, 2nd field of its output) over the runs.
inner() {
  awk -F'\t' -v n="$1" '$1 == n { print $2 }' "$OUT/inner.tsv" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# store NAME DB STEP...: runs storebench on DB and records its inner timing.
store() {
  local name=$1 db=$2; shift 2
  run "$name" $BIN/storebench -db "$db" "$@"
  printf '%s\t%s\n' "$name" "$(cut -f2- "$OUT/$name.out")" >>"$OUT/inner.tsv"
}

rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "nan" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

: >"$RAW"
: >"$OUT/inner.tsv"
printf 'figure\tsubject\tvalue\tunit\treference\treference_value\tratio\twall_s\tcpu_s\tpeak_rss_mb\n' >"$TSV"
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$TSV"; }

have_tshark=0
if [ "${BENCH_TSHARK:-1}" != 0 ] && command -v tshark >/dev/null; then have_tshark=1; fi
have_tcpdump=0
command -v tcpdump >/dev/null && have_tcpdump=1

# 1. Decode only, interleaved with the references.
packets=$($BIN/decode "$BIG" | awk -F'\t' '{ sub("packets ", "", $2); print $2 }')
dns=$($BIN/decode "$BIG" | awk -F'\t' '{ sub("dns ", "", $3); print $3 }')
say "decode: $BIG has $packets packets, $dns DNS messages; $REPEAT runs each"
for i in $(seq "$REPEAT"); do
  run decode $BIN/decode "$BIG"
  run decode_native $BIN/decode -native "$BIG"
  [ $have_tcpdump = 1 ] && run tcpdump tcpdump -nr "$BIG"
  [ $have_tshark = 1 ] && run tshark tshark -r "$BIG" -T fields -e frame.time_epoch -e ip.src -e ip.dst -e udp.srcport -e udp.dstport \
    -e dns.id -e dns.flags.response -e dns.flags.rcode -e dns.qry.name -e dns.qry.type
done

decode_line() { # NAME LABEL
  local w c r
  w=$(median "$1" 2); c=$(median "$1" 5); r=$(median "$1" 6)
  echo "$(rate "$dns" "$w") $(rate "$dns" "$c") $w $c $(mb "$r")"
}
read -r dw dc dww dcc drss <<<"$(decode_line decode)"
read -r nw nc nww ncc nrss <<<"$(decode_line decode_native)"
ref_desc="" ; ref_c=0
if [ $have_tcpdump = 1 ]; then
  read -r tw tc tww tcc trss <<<"$(decode_line tcpdump)"
  ref_desc="tcpdump -nr: $tc/CPU-s"
  ref_c=$tc
fi
if [ $have_tshark = 1 ]; then
  read -r sw sc sww scc srss <<<"$(decode_line tshark)"
  ref_desc="$ref_desc; tshark -T fields: $sc/CPU-s"
fi
echo "decode only:        $dw DNS packets/s, $dc per CPU-second (${dcc} s CPU, ${drss} MB peak)   vs $ref_desc   ratio to tcpdump $(ratio "$dc" "$ref_c")x"
row decode dnsloss "$dc" "DNS packets per CPU-s" "tcpdump -nr" "$ref_c" "$(ratio "$dc" "$ref_c")" "$dww" "$dcc" "$drss"
row decode_wall dnsloss "$dw" "DNS packets per s" "" "" "" "$dww" "$dcc" "$drss"
echo "decode + Native:    $nw rows/s, $nc per CPU-second (${ncc} s CPU, ${nrss} MB peak)   (rows encoded as Native blocks, discarded)"
row decode_native dnsloss "$nc" "rows per CPU-s" "tcpdump -nr" "$ref_c" "$(ratio "$nc" "$ref_c")" "$nww" "$ncc" "$nrss"
if [ $have_tcpdump = 1 ]; then
  echo "  tcpdump -nr:      $tw packets/s, $tc per CPU-second (${tcc} s CPU, ${trss} MB peak)"
  row decode tcpdump "$tc" "packets per CPU-s" "" "" "" "$tww" "$tcc" "$trss"
fi
if [ $have_tshark = 1 ]; then
  echo "  tshark -T fields: $sw packets/s, $sc per CPU-second (${scc} s CPU, ${srss} MB peak); dnsloss is $(ratio "$dc" "$sc")x"
  row decode tshark "$sc" "packets per CPU-s" "" "" "" "$sww" "$scc" "$srss"
fi

# 2. Capture file -> embedded store, beside the engine's own insert of as many rows.
say "store: ingest of $BIG beside INSERT ... SELECT FROM numbers($dns); $REPEAT runs each"
for i in $(seq "$REPEAT"); do
  rm -rf "$OUT/db-ref" "$OUT/db-big" "$OUT/db-idle"
  store ref "$OUT/db-ref" ref -rows "$dns"
  store ingest "$OUT/db-big" ingest "$BIG"
  store idle "$OUT/db-idle" query "SELECT 1"
  rm -rf "$OUT/db-big"
  store ingest_small_blocks "$OUT/db-big" -set "SET min_insert_block_size_rows = 65536" ingest "$BIG"
done
rm -rf "$OUT/db-idle"
rm -rf "$OUT/db-ref" "$OUT/db-e2e"
run analyzer_ingest $BIN/analyzer --db "$OUT/db-e2e" ingest -q "$BIG"
rs=$(inner ref); is=$(inner ingest)
rr=$(rate "$dns" "$rs"); ir=$(rate "$dns" "$is")
echo "file -> store:      $ir rows/s ($is s for $dns rows, $(mb "$(median ingest 6)") MB peak)   vs engine INSERT SELECT numbers(): $rr rows/s ($rs s, $(mb "$(median ref 6)") MB peak)   ratio $(ratio "$ir" "$rr")x"
row store_ingest dnsloss "$ir" "rows per s" "INSERT SELECT FROM numbers()" "$rr" "$(ratio "$ir" "$rr")" "$is" "$(median ingest 5)" "$(mb "$(median ingest 6)")"
row store_ref engine "$rr" "rows per s" "" "" "" "$rs" "$(median ref 5)" "$(mb "$(median ref 6)")"
# The same in CPU time, less sensitive to other load on the machine: the process's CPU less that
# of a process that only starts the engine, applies the schema and runs SELECT 1.
idle=$(median idle 5)
ic=$(awk -v a="$(median ingest 5)" -v b="$idle" 'BEGIN { printf "%.3f", a - b }')
rc=$(awk -v a="$(median ref 5)" -v b="$idle" 'BEGIN { printf "%.3f", a - b }')
echo "  in CPU time:      ingest $ic CPU-s, engine insert $rc CPU-s (start-up, $idle CPU-s, taken off both): $(rate "$dns" "$ic") vs $(rate "$dns" "$rc") rows per CPU-s, ratio $(ratio "$rc" "$ic")x"
row store_ingest_cpu dnsloss "$(rate "$dns" "$ic")" "rows per CPU-s" "INSERT SELECT FROM numbers()" "$(rate "$dns" "$rc")" "$(ratio "$rc" "$ic")" "$is" "$ic" "$(mb "$(median ingest 6)")"
xs=$(inner ingest_small_blocks)
echo "  what if:          the same with SET min_insert_block_size_rows = 65536 for the session (chembed's inserts have set it since 2026-12-03, so this repeats the figure above: their difference is the noise): $(rate "$dns" "$xs") rows/s ($xs s), ratio $(ratio "$(rate "$dns" "$xs")" "$rr")x"
row store_ingest_small_blocks dnsloss "$(rate "$dns" "$xs")" "rows per s (min_insert_block_size_rows 65536)" "INSERT SELECT FROM numbers()" "$rr" "$(ratio "$(rate "$dns" "$xs")" "$rr")" "$xs" "$(median ingest_small_blocks 5)" "$(mb "$(median ingest_small_blocks 6)")"
aw=$(median analyzer_ingest 2)
echo "  analyzer ingest:  $aw s for the whole process (engine start, schema, ingest), $(rate "$dns" "$aw") rows/s, $(mb "$(median analyzer_ingest 6)") MB peak"
row analyzer_ingest dnsloss "$(rate "$dns" "$aw")" "rows per s (whole process)" "" "" "" "$aw" "$(median analyzer_ingest 5)" "$(mb "$(median analyzer_ingest 6)")"
rm -rf "$OUT/db-e2e" "$OUT/db-big"

# 3. Linking and the per-host loss report over the fleet capture.
say "link: ingesting $SIM into $OUT/db-sim"
rm -rf "$OUT/db-sim"
store sim_ingest "$OUT/db-sim" ingest "$SIM"/*.pcap
sim_rows=$(cut -f3 "$OUT/sim_ingest.out")
ss=$(inner sim_ingest)
echo "fleet ingest:       $(rate "$sim_rows" "$ss") rows/s ($ss s for $sim_rows rows in $(ls "$SIM"/*.pcap | wc -l) files, $(mb "$(median sim_ingest 6)") MB peak)"
row sim_ingest dnsloss "$(rate "$sim_rows" "$ss")" "rows per s" "" "" "" "$ss" "$(median sim_ingest 5)" "$(mb "$(median sim_ingest 6)")"
# Let background merges finish so that every query run sees the same parts.
$BIN/storebench -db "$OUT/db-sim" query "OPTIMIZE TABLE dns_messages FINAL" >/dev/null

queries=(
  "loss_by_host|SELECT * FROM loss_by_host"
  "transactions|SELECT outcome, count() FROM dns_transactions GROUP BY outcome"
)
if $BIN/analyzer --db "$OUT/db-sim" sql -f TSV "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = 'dns_lookups'" | grep -qx 1; then
  queries+=("lookups|SELECT outcome, count() FROM dns_lookups GROUP BY outcome")
else
  echo "  (no dns_lookups view in this tree: lookup linking not measured)"
fi
for i in $(seq "$REPEAT"); do
  for q in "${queries[@]}"; do
    store "q_${q%%|*}" "$OUT/db-sim" query "${q#*|}"
  done
done
for q in "${queries[@]}"; do
  n="q_${q%%|*}"
  echo "link ${q%%|*}: $(inner "$n") s over $sim_rows messages, $(median "$n" 5) CPU-s for the process (${q#*|}; $(mb "$(median "$n" 6)") MB peak; target < 5 s)"
  row "link_${q%%|*}" dnsloss "$(inner "$n")" "seconds over $sim_rows messages" "target" 5 "$(ratio "$(inner "$n")" 5)" "$(inner "$n")" "$(median "$n" 5)" "$(mb "$(median "$n" 6)")"
done

# The report as a user runs it (analyzer report, whole process): of everything, and of ten
# minutes in the middle of the traffic compared with the ten before (it links only that period).
period=$($BIN/analyzer --db "$OUT/db-sim" sql -f TSV "SELECT formatDateTime(m, '%Y-%m-%d %H:%i:00', 'UTC'),
  formatDateTime(m + INTERVAL 10 MINUTE, '%Y-%m-%d %H:%i:00', 'UTC')
  FROM (SELECT fromUnixTimestamp64Nano(intDiv(toUnixTimestamp64Nano(min(ts)) + toUnixTimestamp64Nano(max(ts)), 2), 'UTC') AS m FROM dns_messages)")
since=$(cut -f1 <<<"$period") until=$(cut -f2 <<<"$period")
for i in $(seq "$REPEAT"); do
  run report_all $BIN/analyzer --db "$OUT/db-sim" report -f json
  run report_10m $BIN/analyzer --db "$OUT/db-sim" report -f json --since "$since" --until "$until"
done
for n in report_all report_10m; do
  what="everything"
  [ $n = report_10m ] && what="$since to $until, compared with the 10 minutes before"
  echo "link $n: $(median $n 2) s for analyzer report ($what) over $sim_rows messages, $(median $n 5) CPU-s ($(mb "$(median $n 6)") MB peak; target < 5 s)"
  row "link_$n" dnsloss "$(median $n 2)" "seconds over $sim_rows messages (analyzer report, $what)" "target" 5 "$(ratio "$(median $n 2)" 5)" "$(median $n 2)" "$(median $n 5)" "$(mb "$(median $n 6)")"
done

# 4. Live capture throughput over a veth pair (scripts/bench-live.sh): needs root.
live=${BENCH_LIVE:-auto}
if [ "$live" = auto ]; then
  live=0
  [ "$(id -u)" -eq 0 ] && live=1
fi
if [ "$live" = 1 ]; then
  scripts/bench-live.sh
elif [ "$(id -u)" -ne 0 ]; then
  echo "live capture:       skipped: it needs root (network namespaces, AF_PACKET); run sudo scripts/bench-live.sh, or make bench as root"
else
  echo "live capture:       skipped (BENCH_LIVE=$BENCH_LIVE)"
fi
say "results in $TSV (raw runs in $RAW)"
