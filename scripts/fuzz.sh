#!/usr/bin/env bash
# Runs the fuzz targets (fuzz/fuzz_targets) with cargo fuzz for a bounded time each.
#
#   bash scripts/fuzz.sh            # 30 s per target
#   bash scripts/fuzz.sh 3600       # an hour per target
#   bash scripts/fuzz.sh --reseed   # choose the committed seeds again (docs/HARDENING.md)
#
# The seeds in git (fuzz/seeds/<target>) are copied into the working corpus
# fuzz/corpus/<target> (ignored by git; an input already there is kept), and the target is
# fuzzed on it: new inputs stay there, so local runs build on each other and a fresh clone
# starts from the seeds. A crash leaves its input in fuzz/artifacts/<target> and fails the
# script.
#
# --reseed rewrites fuzz/seeds/<target> as libFuzzer's set-cover merge of the seeds and the
# working corpus (a small subset covering every edge any of them covers), keeping the
# regression inputs (regression-*) by name. Review and commit the result.
#
# Installs cargo-fuzz when missing. The stable toolchain is used with RUSTC_BOOTSTRAP=1 for
# the sanitizer flags cargo fuzz needs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mode=run
seconds=30
case "${1:-}" in
    --reseed) mode=reseed ;;
    '') ;;
    *) seconds=$1 ;;
esac
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# The targets' temporary files (the registry_file target's directory per process, which
# libFuzzer's exit leaves behind) go to a directory of this run, removed at the end.
fuzz_tmp=$(mktemp -d)
trap 'rm -rf "$fuzz_tmp"' EXIT
for target in api_sequence registry_file xmpp_stanza; do
    seeds="fuzz/seeds/$target"
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    for f in "$seeds"/*; do
        [ -e "$corpus/${f##*/}" ] || cp "$f" "$corpus/"
    done
    log=$(mktemp)
    status=0
    if [ "$mode" = reseed ]; then
        printf '\n==== reseed %s ====\n\n' "$target"
        chosen=$(mktemp -d)
        # -use_counters=0: cover edges, not hit-count buckets (which would keep hundreds).
        TMPDIR="$fuzz_tmp" cargo fuzz run -O "$target" "$chosen" "$seeds" "$corpus" -- \
            -set_cover_merge=1 -use_counters=0 -max_len=4096 >"$log" 2>&1 || status=$?
    else
        printf '\n==== fuzz %s for %ss ====\n\n' "$target" "$seconds"
        TMPDIR="$fuzz_tmp" cargo fuzz run -O "$target" "$corpus" -- \
            -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1 || status=$?
        grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
    fi
    if [ "$status" != 0 ]; then
        tail -n 60 "$log"
        rm -f "$log"
        echo "fuzz $target failed (exit $status)"
        exit 1
    fi
    rm -f "$log"
    if [ "$mode" = reseed ]; then
        # The merge names inputs by the SHA-1 of their content: drop the copies of the
        # regression inputs, which keep their names.
        for r in "$seeds"/regression-*; do
            [ -e "$r" ] || continue
            rm -f "$chosen/$(sha1sum "$r" | cut -d' ' -f1)"
            cp "$r" "$chosen/"
        done
        rm -rf "$seeds"
        mv "$chosen" "$seeds"
        chmod 755 "$seeds"
        echo "$seeds: $(ls "$seeds" | wc -l) inputs"
    fi
done
