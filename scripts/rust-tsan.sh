#!/usr/bin/env bash
# Runs the Rust tests under ThreadSanitizer, with Rust's std rebuilt instrumented
# (-Zbuild-std, which needs the rust-src component: installed here when missing). Without an
# instrumented std, rustc refuses to mix it with sanitized crates (an ABI mismatch), and
# forcing it (-Cunsafe-allow-abi-mismatch) gives TSan a std whose synchronisation it cannot
# see. Not a step of scripts/test-all.sh: it takes about 8 minutes on 2 cores (std, the
# dependencies and the tests rebuilt; tests 5 to 15 times slower).
#
#   bash scripts/rust-tsan.sh                   # every test
#   bash scripts/rust-tsan.sh --test stress     # arguments go to cargo test
#
# Its own target directory (target/tsan, or MSGRPRIV_TSAN_TARGET_DIR). Any data race report
# makes the test binary exit non-zero (TSan's exitcode 66). The instruction-trace checks of
# tests/security.rs are skipped (MSGRPRIV_TEST_UNDER=asan: they mean nothing in
# instrumented code).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
host=$(rustc -vV | sed -n 's/^host: //p')
if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
    rustup component add rust-src
fi
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Zsanitizer=thread ${MSGRPRIV_TSAN_RUSTFLAGS:-}"
export RUSTDOCFLAGS="-Zsanitizer=thread"
export CARGO_TARGET_DIR=${MSGRPRIV_TSAN_TARGET_DIR:-$root/target/tsan}
export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:${TSAN_OPTIONS:-}"
export MSGRPRIV_TEST_UNDER=asan
cargo test -Zbuild-std --locked --target "$host" --no-fail-fast "$@"
