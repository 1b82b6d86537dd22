#!/usr/bin/env bash
# Runs every test of the project, the way CI does (.ci/run calls this). Installs the missing
# tools first (scripts/install-tools.sh), then:
#
#   1. header staleness: include/msgrpriv.h must equal what the sources generate; the HTML
#      reference builds without a doxygen warning (scripts/docs.sh); style:
#      `cargo fmt --check` and `cargo clippy --all-targets -- -D warnings`
#   2. cargo test: the Rust unit, integration and doc tests; the XMPP service's tests against
#      a real Prosody they start themselves (--features xmpp), with the fault scenarios
#      (tests/xmpp_faults.rs) and a 25-second soak (scripts/soak-xmpp.sh); the same under AddressSanitizer
#      (scripts/rust-asan.sh, its own target directory target/asan)
#      and the loom model checks of the event queue and the sink lists (scripts/loom.sh, its
#      own target directory target/loom)
#   3. the C tests through CMake, three ways: plain, under valgrind, with ASan + UBSan; then
#      the library built with cargo alone, release, with and without the xmpp feature: a C
#      and a C++ program linked against target/release run, and the stripped library is
#      within its size budget (scripts/cargo-only.sh, scripts/check-size.sh)
#   4. the Python package's pytest suite (python/run-tests.sh); then the wheel built from
#      target/release, checked with auditwheel, installed in a fresh venv whose PATH has no
#      cargo, and the same suite run against it (scripts/python-wheel.sh)
#   5. a bounded fuzzing run of each cargo-fuzz target (scripts/fuzz.sh: built together, as
#      many run at a time as there are cores)
#
# Every step runs even when an earlier one failed; a summary lists each with its time.
#
# Run from anywhere; needs cargo, cmake, make (or ninja), a C and C++ compiler, nm/readelf,
# valgrind and doxygen. cargo's target directory (target/) is shared by every step, so the library is
# compiled once per profile. Environment:
#   MSGRPRIV_TEST_BUILD_TYPE   CMake build type for the C tests (default Debug: cargo's dev
#                              profile, which `cargo test` has already built the dependencies of)
#   MSGRPRIV_SKIP_VALGRIND=1   skip the valgrind pass (not allowed when CI is set)
#   MSGRPRIV_SKIP_RUST_ASAN=1  skip the Rust tests under AddressSanitizer (not allowed in CI)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
build_type=${MSGRPRIV_TEST_BUILD_TYPE:-Debug}
jobs=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
start=$SECONDS
step_start=$SECONDS

section() {
    printf '\n==== %s ====\n\n' "$*"
    step_start=$SECONDS
}
die() {
    printf 'test-all: %s\n' "$*" >&2
    exit 1
}

bash scripts/install-tools.sh </dev/null

section "Tools"
for tool in cargo cmake nm readelf doxygen; do
    command -v "$tool" >/dev/null || die "$tool not found (.ci/run installs the missing tools)"
done
generator=()
if ! command -v make >/dev/null; then
    command -v ninja >/dev/null || die "neither make nor ninja found"
    generator=(-G Ninja)
fi
skip_valgrind=${MSGRPRIV_SKIP_VALGRIND:-0}
if ! command -v valgrind >/dev/null; then
    [ -z "${CI:-}" ] || die "valgrind not found"
    echo "WARNING: valgrind not found: the valgrind pass is skipped"
    skip_valgrind=1
fi
[ "$skip_valgrind" = 0 ] || [ -z "${CI:-}" ] || die "the valgrind pass cannot be skipped in CI"
cargo --version
cmake --version | head -n 1
"${CC:-cc}" --version | head -n 1
command -v valgrind >/dev/null && valgrind --version
echo "C tests build type: $build_type; jobs: $jobs"

# The builds of a run from a clean clone (target/, build/, fuzz/target) take a little under
# need_gib; a full disk fails every later step with unrelated-looking errors, so the space is
# reported before the first build and again, when short, beside the failures.
need_gib=8
free_gib() {
    df -Pk "$root" 2>/dev/null | awk 'NR == 2 { printf "%d", $4 / 1048576 }'
}
# below <GiB>: true when the free space is known and less than <GiB>.
below() {
    local free
    free=$(free_gib)
    [ -n "$free" ] && [ "$free" -lt "$1" ]
}
echo "free disk space under $root: $(free_gib) GiB (a run from a clean clone needs about $need_gib)"
if below "$need_gib"; then
    echo "WARNING: less than $need_gib GiB free: builds may fail with 'No space left on device'"
fi

# Fails the C build early, with a clear message, when the sanitizer runtimes are missing.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'int main(void) { return 0; }' >"$probe/p.c"
"${CC:-cc}" -fsanitize=address,undefined "$probe/p.c" -o "$probe/p" 2>"$probe/err" ||
    die "the C compiler cannot link -fsanitize=address,undefined (install libasan/libubsan): $(cat "$probe/err")"

# Each step runs to its end even when an earlier one failed, so that one run reports every
# failure; the script fails at the end if any step did.
failures=()
summary=()
step() {
    local name=$1 rc
    shift
    section "$name"
    set +e
    (set -e; "$@")
    rc=$?
    set -e
    if [ "$rc" = 0 ]; then
        summary+=("$(printf 'ok      %4ds  %s' "$((SECONDS - step_start))" "$name")")
    else
        failures+=("$name")
        summary+=("$(printf 'FAILED  %4ds  %s' "$((SECONDS - step_start))" "$name")")
    fi
    printf -- '---- %s\n' "${summary[-1]}"
}

# configure <dir> <cmake args...>: (re)configures a build of the C tests.
configure() {
    local dir=$1
    shift
    cmake -S "$root" -B "$dir" "${generator[@]}" --log-level=WARNING \
        -DCMAKE_BUILD_TYPE="$build_type" -DBUILD_TESTING=ON "$@"
}
c_tests() {
    local dir=$1
    shift
    configure "$dir" "$@"
    cmake --build "$dir" -j "$jobs"
    ctest --test-dir "$dir" --output-on-failure --no-tests=error -j "$jobs"
}
header_unchanged() {
    git rev-parse --is-inside-work-tree >/dev/null 2>&1 || return 0
    git ls-files --error-unmatch include/msgrpriv.h >/dev/null 2>&1 || return 0
    if ! git diff --exit-code --stat -- include/msgrpriv.h; then
        [ -z "${CI:-}" ] || { echo "include/msgrpriv.h differs from the committed one"; return 1; }
        echo "NOTE: include/msgrpriv.h was regenerated and differs from the committed one: commit it."
    fi
}

# First, before any other build regenerates the header.
step "Header is up to date (MSGRPRIV_CHECK_HEADER=1 cargo build)" \
    env MSGRPRIV_CHECK_HEADER=1 cargo build --locked --lib
# About a second: every function, parameter, type and field of the headers documented, no
# broken link in the pages (docs/BUILDING.md, "The reference").
step "Reference (doxygen, no warnings)" bash scripts/docs.sh
step "Style (cargo fmt --check, cargo clippy --all-targets -D warnings)" \
    bash -c 'cargo fmt --check && cargo clippy --locked --all-targets --features xmpp -- -D warnings'
step "cargo test" cargo test --locked
# The XMPP service against a Prosody each test starts on a free loopback port and stops
# (tests/common/prosody.rs); the protocol's unit tests.
step "XMPP service over Prosody (cargo test --features xmpp)" \
    bash -c 'cargo test --locked --features xmpp --lib xmpp:: && cargo test --locked --features xmpp --test xmpp --test xmpp_peer --test xmpp_tls --test both_services --test xmpp_faults'
# 100 clients in two processes through fault proxies for 25 s (the full run: 10 minutes,
# bash scripts/soak-xmpp.sh); fails when a session side did not end exactly once.
step "XMPP soak, 25 s (scripts/soak-xmpp.sh)" env MSGRPRIV_SOAK_SECONDS=25 bash scripts/soak-xmpp.sh
if [ "${MSGRPRIV_SKIP_RUST_ASAN:-0}" = 0 ] || [ -n "${CI:-}" ]; then
    # About 3 minutes from nothing on two cores (2 of them building), 1.5 when target/asan
    # is warm. docs/HARDENING.md says what it covers.
    step "Rust tests with AddressSanitizer (scripts/rust-asan.sh)" bash scripts/rust-asan.sh
fi
# About 70 s from nothing (the compile in target/loom), 3 s warm. docs/HARDENING.md says what
# the models prove.
step "Loom model checks of the event queue and the sink lists (scripts/loom.sh)" bash scripts/loom.sh
step "C tests" c_tests build/test-all/plain -DMSGRPRIV_SANITIZE= -DMSGRPRIV_VALGRIND=OFF
if [ "$skip_valgrind" = 0 ]; then
    # Same build as the plain one; only the test commands change.
    step "C tests under valgrind" \
        c_tests build/test-all/plain -DMSGRPRIV_SANITIZE= -DMSGRPRIV_VALGRIND=ON
fi
step "C tests with AddressSanitizer and UndefinedBehaviorSanitizer" \
    c_tests build/test-all/sanitize -DMSGRPRIV_SANITIZE=address,undefined -DMSGRPRIV_VALGRIND=OFF
# The release build (the C tests use the dev profile): the cargo-only path and the size budget.
step "Cargo-only build and the size budget (scripts/cargo-only.sh)" bash scripts/cargo-only.sh
# The Python package against the library cargo test built (python/run-tests.sh makes a venv).
step "Python tests (pytest)" env MSGRPRIV_LIBRARY="$root/target/debug/libmsgrpriv.so" \
    bash python/run-tests.sh -q
# The wheel, from the release library cargo-only.sh left (xmpp), installed where there is no
# cargo; the suite against the installed package (scripts/python-wheel.sh says what it checks).
step "Python wheel in a fresh venv without cargo (scripts/python-wheel.sh)" \
    bash scripts/python-wheel.sh -q
# A bounded run of each fuzz target, as many at a time as there are cores; longer:
# bash scripts/fuzz.sh 3600.
step "Fuzzing, ${MSGRPRIV_FUZZ_SECONDS:-20}s per target" bash scripts/fuzz.sh "${MSGRPRIV_FUZZ_SECONDS:-20}"
step "Header unchanged by the builds" header_unchanged

printf '\n==== Summary (%ds) ====\n\n' "$((SECONDS - start))"
printf '%s\n' "${summary[@]}"
if [ "${#failures[@]}" -gt 0 ]; then
    printf '\n%d step(s) FAILED\n' "${#failures[@]}"
    if below 1; then
        printf 'The disk is full (%s GiB free under %s): a run needs about %d GiB.\n' \
            "$(free_gib)" "$root" "$need_gib"
    fi
    exit 1
fi
printf '\nAll tests passed.\n'
