#!/usr/bin/env bash
# Runs the fuzz targets (fuzz/fuzz_targets) with cargo fuzz for a bounded time each.
#
#   bash scripts/fuzz.sh            # 30 s per target
#   bash scripts/fuzz.sh 3600       # an hour per target
#   bash scripts/fuzz.sh --reseed   # choose the committed seeds again (docs/HARDENING.md)
#
# The targets are built once, together (`cargo fuzz build -O --codegen-units N`: libFuzzer,
# AddressSanitizer, release without debug assertions; fuzz/Cargo.toml sets the optimisation
# levels), then run side by side, as many at a time as there are cores (MSGRPRIV_FUZZ_JOBS
# overrides), each with a core of its own for its whole time. The fuzz crate takes the
# library with the feature xmpp-protocol (the stanza mapping without the XMPP service), not
# xmpp: no target runs the service, and its stack (tokio, rustls, ring, tokio-xmpp) would
# be a fifth of the build. Runs shorter than 120 s per target (CI's 20 s) build with 16
# codegen units instead of cargo fuzz's 1: the cores share the compile of xmpp-parsers, the
# longest crate (a cold build about 3.5 minutes instead of 5.5 on two cores), for fuzzing
# slower by up to a fifth (less inlining across units); longer runs and --reseed build with
# 1. The build is in fuzz/target, a directory of its own: no other build has the fuzzers'
# instrumentation flags.
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
targets=(api_sequence registry_file xmpp_stanza)
jobs=${MSGRPRIV_FUZZ_JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# The targets' temporary files (the registry_file target's directory per process, which
# libFuzzer's exit leaves behind) and the runs' logs go to a directory of this run, removed
# at the end.
fuzz_tmp=$(mktemp -d)
trap 'rm -rf "$fuzz_tmp"' EXIT

# The same flags for the build and the runs: other flags would build again.
codegen_units=1
[ "$mode" = reseed ] || [ "$seconds" -ge 120 ] || codegen_units=16
build_flags=(-O --codegen-units "$codegen_units")
printf '\n==== build %s ====\n\n' "${targets[*]}"
build_start=$SECONDS
cargo fuzz build "${build_flags[@]}"
echo "built in $((SECONDS - build_start)) s"

# fuzz_one <target>: one target's run (or merge), its output in $fuzz_tmp/<target>.log;
# fails with the run's status. Called where errexit does not apply: each step checks.
fuzz_one() {
    local target=$1 seeds="fuzz/seeds/$1" corpus="fuzz/corpus/$1" log="$fuzz_tmp/$1.log" f
    mkdir -p "$corpus" || return
    for f in "$seeds"/*; do
        [ -e "$corpus/${f##*/}" ] || cp "$f" "$corpus/" || return
    done
    if [ "$mode" = reseed ]; then
        mkdir -p "$fuzz_tmp/$target.chosen" || return
        # -use_counters=0: cover edges, not hit-count buckets (which would keep hundreds).
        TMPDIR="$fuzz_tmp" cargo fuzz run "${build_flags[@]}" "$target" \
            "$fuzz_tmp/$target.chosen" "$seeds" "$corpus" -- \
            -set_cover_merge=1 -use_counters=0 -max_len=4096 >"$log" 2>&1
    else
        TMPDIR="$fuzz_tmp" cargo fuzz run "${build_flags[@]}" "$target" "$corpus" -- \
            -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 >"$log" 2>&1
    fi
}

run_start=$SECONDS
for target in "${targets[@]}"; do
    # At most $jobs runs at a time: wait for one to end before starting another.
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n || true
    done
    (
        status=0
        fuzz_one "$target" || status=$?
        echo "$status" >"$fuzz_tmp/$target.status"
    ) &
done
wait
failed=0
for target in "${targets[@]}"; do
    status=$(cat "$fuzz_tmp/$target.status")
    log="$fuzz_tmp/$target.log"
    if [ "$mode" = reseed ]; then
        printf '\n==== reseed %s ====\n\n' "$target"
    else
        printf '\n==== fuzz %s for %ss ====\n\n' "$target" "$seconds"
        grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
    fi
    if [ "$status" != 0 ]; then
        tail -n 60 "$log"
        echo "fuzz $target failed (exit $status)"
        failed=1
        continue
    fi
    if [ "$mode" = reseed ]; then
        # The merge names inputs by the SHA-1 of their content: drop the copies of the
        # regression inputs, which keep their names.
        seeds="fuzz/seeds/$target"
        chosen="$fuzz_tmp/$target.chosen"
        for r in "$seeds"/regression-*; do
            [ -e "$r" ] || continue
            rm -f "$chosen/$(sha1sum "$r" | cut -d' ' -f1)"
            cp "$r" "$chosen/"
        done
        rm -rf "$seeds"
        mv "$chosen" "$seeds"
        chmod 755 "$seeds"
        echo "$seeds: $(find "$seeds" -type f | wc -l) inputs"
    fi
done
echo "ran in $((SECONDS - run_start)) s ($jobs at a time)"
exit "$failed"
