#!/usr/bin/env bash
# dnssim-eval.sh: scores the lookup views (dns_lookups) against the ground truth of the dnssim
# traffic simulator, for its glibc, go and k8s profiles at several loss rates and seeds.
#
# For each run: dnssim writes one pcap holding every simulated client and a truth file; the pcap
# is ingested into a fresh store as one capture host (--host sim; clients are told apart by
# client_ip), and bench/dnssimeval matches the view's lookups with the truth's by (client
# address, start time in ns). Figures: precision and recall of failed lookups (truth: outcome
# != answer; view: outcome != 'answered') and of masked timeouts (truth: masked_timeout_wire;
# view: masked_timeout). A run passes when all four are >= MIN.
#
#   DNSSIM     the dnssim source folder, holding its go.mod (default ../shared/bench/dnssim;
#              a relative path is taken from the repository's root); when the default is
#              absent the script says so and exits 0 (dnssim is not part of the repository),
#              when a DNSSIM given is not such a folder it exits 2
#   PROFILES   default "glibc go k8s"          LOSSES  default "0.05 0.2 0.4" (--qloss and --rloss)
#   SEEDS      default "1 2"                   MIN     default 0.99
#   HOSTS      default 20                      DURATION default 10m (at dnssim's 1 lookup/s/host)
#   OUT        work folder (default out/dnssim-eval); stores are removed after each run
#   ANALYZER   an analyzer binary to use instead of building bin/analyzer from this tree
#   EXPLAIN    N > 0: for a failing run, write OUT/RUN.explain.txt with up to N disagreeing
#              lookups of each kind, the truth's queries beside dns_lookup_attempts
#
# Output: one line per run (profile, loss, seed, truth lookups, view lookups, failed precision and
# recall, masked precision and recall, PASS/FAIL, counts); exit status 1 when a run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

DNSSIM_SET=${DNSSIM:+1}
DNSSIM=${DNSSIM:-../shared/bench/dnssim}
PROFILES=${PROFILES:-glibc go k8s}
LOSSES=${LOSSES:-0.05 0.2 0.4}
SEEDS=${SEEDS:-1 2}
MIN=${MIN:-0.99}
HOSTS=${HOSTS:-20}
DURATION=${DURATION:-10m}
OUT=${OUT:-out/dnssim-eval}
EXPLAIN=${EXPLAIN:-0}

say() { echo "dnssim-eval: $*" >&2; }

if [ ! -f "$DNSSIM/go.mod" ]; then
  if [ -n "$DNSSIM_SET" ]; then
    echo "dnssim-eval: DNSSIM=$DNSSIM is not dnssim's source folder (the one holding its go.mod; a relative path is taken from the repository's root)" >&2
    exit 2
  fi
  echo "dnssim-eval: no dnssim source at $DNSSIM (set DNSSIM to its source folder); nothing to do"
  exit 0
fi

mkdir -p "$OUT" bin
OUT=$(cd "$OUT" && pwd)
say "building dnssim from $DNSSIM, bin/dnssimeval and (unless ANALYZER is set) bin/analyzer"
(cd "$DNSSIM" && go build -o "$OUT/dnssim" .)
go build -o bin/dnssimeval ./bench/dnssimeval
if [ -n "${ANALYZER:-}" ]; then
  AN=$ANALYZER
else
  go build -o bin/analyzer ./analyzer
  AN="$REPO/bin/analyzer"
fi

VIEW_SQL="SELECT client_ip, toUnixTimestamp64Nano(start_ts), toUInt8(outcome != 'answered'), masked_timeout FROM dns_lookups"
ATTEMPTS_SQL="SELECT replaceRegexpOne(toString(client_ip), '^::ffff:([0-9.]+)\$', '\\\\1'),
  toUnixTimestamp64Nano(lookup_ts), toUnixTimestamp64Nano(ts), qname,
  multiIf(qtype = 1, 'A', qtype = 28, 'AAAA', toString(qtype)), id, client_port,
  replaceRegexpOne(toString(server_ip), '^::ffff:([0-9.]+)\$', '\\\\1'), result,
  ifNull(toUnixTimestamp64Nano(response_ts), 0), link
  FROM dns_lookup_attempts"

printf '%-6s %-5s %-4s %6s %6s  %-6s %-6s  %-6s %-6s  %s\n' \
  profile loss seed truth view fail_P fail_R mask_P mask_R result
failures=0
for profile in $PROFILES; do
  for loss in $LOSSES; do
    for seed in $SEEDS; do
      run="$profile-$loss-$seed"
      pcap="$OUT/$run.pcap" truth="$OUT/$run.jsonl" db="$OUT/$run.db"
      "$OUT/dnssim" --hosts "$HOSTS" --duration "$DURATION" --profile-mix "$profile=1" \
        --qloss "$loss" --rloss "$loss" --seed "$seed" --out "$pcap" --truth "$truth" 2>"$OUT/$run.dnssim.log"
      rm -rf "$db"
      "$AN" --db "$db" ingest --host sim "$pcap" >"$OUT/$run.ingest.log" 2>&1
      "$AN" --db "$db" sql --format TSV "$VIEW_SQL" >"$OUT/$run.view.tsv"
      line=$(bin/dnssimeval score -truth "$truth" -view "$OUT/$run.view.tsv" -min "$MIN")
      printf '%-6s %-5s %-4s %s\n' "$profile" "$loss" "$seed" "$line"
      if [[ $line == *FAIL* ]]; then
        failures=$((failures + 1))
        if [ "$EXPLAIN" -gt 0 ]; then
          "$AN" --db "$db" sql --format TSV "$ATTEMPTS_SQL" >"$OUT/$run.attempts.tsv"
          bin/dnssimeval explain -truth "$truth" -view "$OUT/$run.view.tsv" \
            -attempts "$OUT/$run.attempts.tsv" -max "$EXPLAIN" >"$OUT/$run.explain.txt"
          say "disagreements of $run in $OUT/$run.explain.txt"
        fi
      fi
      rm -rf "$db" "$pcap"
    done
  done
done
if [ "$failures" -gt 0 ]; then
  say "$failures run(s) below $MIN"
  exit 1
fi
