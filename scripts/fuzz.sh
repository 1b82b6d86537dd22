#!/usr/bin/env bash
# Runs the fuzz targets (fuzz/fuzz_targets) with cargo fuzz for a bounded time each.
#
#   bash scripts/fuzz.sh            # 30 s per target
#   bash scripts/fuzz.sh 3600       # an hour per target
#   MSGRPRIV_FUZZ_GROW_CORPUS=1 bash scripts/fuzz.sh 600   # keep new inputs in fuzz/corpus
#
# By default new inputs go to a temporary directory, so the committed corpus (the seeds)
# stays as it is; minimise before committing a grown one (cargo fuzz cmin).
# Installs cargo-fuzz when missing. The stable toolchain is used with RUSTC_BOOTSTRAP=1 for
# the sanitizer flags cargo fuzz needs. New inputs go to fuzz/corpus/<target>; a crash leaves
# its input in fuzz/artifacts/<target> and fails the script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-30}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# The targets' temporary files (the registry_file target's directory per process, which
# libFuzzer's exit leaves behind) go to a directory of this run, removed at the end.
fuzz_tmp=$(mktemp -d)
trap 'rm -rf "$fuzz_tmp"' EXIT
for target in api_sequence registry_file; do
    printf '\n==== fuzz %s for %ss ====\n\n' "$target" "$seconds"
    mkdir -p "fuzz/corpus/$target"
    log=$(mktemp)
    status=0
    corpora=("fuzz/corpus/$target")
    if [ "${MSGRPRIV_FUZZ_GROW_CORPUS:-0}" != 1 ]; then
        scratch=$(mktemp -d)
        corpora=("$scratch" "fuzz/corpus/$target")
    fi
    TMPDIR="$fuzz_tmp" cargo fuzz run -O "$target" "${corpora[@]}" -- \
        -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
    if [ "$status" != 0 ]; then
        tail -n 60 "$log"
        rm -f "$log"
        echo "fuzz $target failed (exit $status)"
        exit 1
    fi
    rm -f "$log"
    [ -z "${scratch:-}" ] || rm -rf "$scratch"
done
