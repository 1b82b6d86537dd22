#!/usr/bin/env bash
# Line coverage of src/ by the Rust tests (unit, integration; the C tests and the fuzzers are
# not counted), with source-based coverage: cargo-llvm-cov driving rustc's
# -C instrument-coverage and Debian's llvm-profdata/llvm-cov of the same LLVM major version
# as rustc (the rustup llvm-tools component is not available on this toolchain).
#
#   bash scripts/coverage.sh                  # summary per file, total
#   bash scripts/coverage.sh --html           # and target/llvm-cov/html/index.html
#   MSGRPRIV_COVERAGE_MIN=90 bash scripts/coverage.sh   # fail under 90 % of lines
#
# Installs what is missing (apt-get: llvm-<major>; cargo install: cargo-llvm-cov). Builds in
# its own target directory (target/llvm-cov-target); about 1.5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
bin=/usr/lib/llvm-$major/bin
if [ ! -x "$bin/llvm-profdata" ] || [ ! -x "$bin/llvm-cov" ]; then
    echo "coverage: installing llvm-$major (llvm-profdata, llvm-cov matching rustc's LLVM $major)"
    sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "llvm-$major" >/dev/null
fi
command -v cargo-llvm-cov >/dev/null || cargo install cargo-llvm-cov --locked
export LLVM_COV=$bin/llvm-cov LLVM_PROFDATA=$bin/llvm-profdata
args=(--locked --summary-only --show-missing-lines)
[ -z "${MSGRPRIV_COVERAGE_MIN:-}" ] || args+=(--fail-under-lines "$MSGRPRIV_COVERAGE_MIN")
if [ "${1:-}" = --html ]; then
    shift
    cargo llvm-cov --locked --no-report "$@"
    cargo llvm-cov report --html
    cargo llvm-cov report "${args[@]:1}"
else
    cargo llvm-cov "${args[@]}" "$@"
fi
