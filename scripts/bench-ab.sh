#!/usr/bin/env bash
# A/B of two builds of the library with the same benchmark binary: runs are interleaved, so
# both see the same phases of a noisy host. Prints, per figure and library, the lowest rep of
# all runs ("min": for a time, the fastest and the steadiest figure on a shared machine; for a
# rate, the slowest) and the median of the runs' medians. Numbers, never pass/fail.
#
#   bash scripts/bench-ab.sh DIR_A DIR_B [GROUPS] [RUNS]
#
# DIR_A, DIR_B: directories holding a libmsgrpriv.so.0.1 each (copy build/bench/lib before and
# after a change); GROUPS: bench_msgrpriv groups (default "delivery-lock delivery-ctx");
# RUNS: interleaved runs of each (default 5). Needs the benchmark built (bash scripts/bench.sh,
# or cmake --build build/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,12p' "$0"; exit 2; }
a=$1 b=$2 groups=${3:-delivery-lock delivery-ctx} runs=${4:-5}
bench=${MSGRPRIV_BENCH_BUILD:-build/bench}/bench_msgrpriv
[ -x "$bench" ] || { echo "no $bench: build it first (bash scripts/bench.sh)" >&2; exit 1; }
nice=(); if [ "$(id -u)" = 0 ]; then nice=(nice -n -19); fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq "$runs"); do
  for lib in "$a" "$b"; do
    # shellcheck disable=SC2086
    LD_LIBRARY_PATH=$lib "${nice[@]}" "$bench" --reps 9 $groups 2>/dev/null |
      awk -v lib="$lib" -F'\t' '$1 == "R" { print lib "\t" $2 "\t" $3 "\t" $4 "\t" $5 }' >>"$out"
  done
done
python3 - "$out" "$a" "$b" <<'EOF'
import sys, statistics, collections
rows = collections.defaultdict(lambda: {"med": [], "min": []})
units = {}
for line in open(sys.argv[1]):
    lib, key, unit, med, lo = line.rstrip("\n").split("\t")
    rows[(key, lib)]["med"].append(float(med))
    rows[(key, lib)]["min"].append(float(lo))
    units[key] = unit
libs = sys.argv[2:4]
print(f"{'figure':44} {'unit':10} " + " ".join(f"{'A min':>10} {'A med':>10}" if i == 0 else f"{'B min':>10} {'B med':>10}" for i in range(2)))
for key in sorted(units):
    cells = []
    for lib in libs:
        r = rows.get((key, lib))
        cells.append(f"{min(r['min']):10.4g} {statistics.median(r['med']):10.4g}" if r else f"{'-':>10} {'-':>10}")
    print(f"{key:44} {units[key]:10} " + " ".join(cells))
print(f"A = {libs[0]}\nB = {libs[1]}")
EOF
