#!/usr/bin/env bash
# Runs the Rust tests (unit, integration and doc tests) with AddressSanitizer and its
# LeakSanitizer: the library, its dependencies and the tests are instrumented; Rust's std is
# not (it is precompiled; this toolchain has no rust-src to rebuild it with -Zbuild-std).
#
#   bash scripts/rust-asan.sh                 # every test
#   bash scripts/rust-asan.sh --test soak     # arguments go to cargo test
#
# Stable toolchain with RUSTC_BOOTSTRAP=1 for -Zsanitizer. Its own target directory
# (target/asan, or MSGRPRIV_ASAN_TARGET_DIR), so the normal builds stay as they are. From
# nothing it takes about 70 s on 2 cores, compiling included (40 s warm); ASan slows the
# library 2 to 3 times. Leaks fail the run, except those listed in scripts/lsan.supp (each
# with its reason).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTC_BOOTSTRAP=1
# --target: build scripts and proc macros are then built without the sanitizer (they run
# in the compiler, which is not instrumented).
export RUSTFLAGS="-Zsanitizer=address ${MSGRPRIV_ASAN_RUSTFLAGS:-}"
export RUSTDOCFLAGS="-Zsanitizer=address"
export CARGO_TARGET_DIR=${MSGRPRIV_ASAN_TARGET_DIR:-$root/target/asan}
export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:${ASAN_OPTIONS:-}"
# Tests that compare instruction traces (tests/security.rs) only print them under ASan.
export MSGRPRIV_TEST_UNDER=asan
export LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
cargo test --locked --target "$host" --no-fail-fast "$@"
