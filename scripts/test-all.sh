#!/usr/bin/env bash
# Runs every test of the project, the way CI does (.ci/run calls this). Installs the missing
# tools first (scripts/install-tools.sh), then:
#
#   1. header staleness: include/msgrpriv.h must equal what the sources generate
#   2. cargo test: the Rust unit, integration and doc tests
#   3. the C tests through CMake, three ways: plain, under valgrind, with ASan + UBSan
#
# Run from anywhere; needs cargo, cmake, make (or ninja), a C and C++ compiler, nm/readelf and
# valgrind. cargo's target directory (target/) is shared by every step, so the library is
# compiled once per profile. Environment:
#   MSGRPRIV_TEST_BUILD_TYPE   CMake build type for the C tests (default Debug: cargo's dev
#                              profile, which `cargo test` has already built the dependencies of)
#   MSGRPRIV_SKIP_VALGRIND=1   skip the valgrind pass (not allowed when CI is set)
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
done_step() {
    printf -- '---- %s: %ds\n' "$1" "$((SECONDS - step_start))"
}
die() {
    printf 'test-all: %s\n' "$*" >&2
    exit 1
}

bash scripts/install-tools.sh </dev/null

section "Tools"
for tool in cargo cmake nm readelf; do
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

# Fails the C build early, with a clear message, when the sanitizer runtimes are missing.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'int main(void) { return 0; }' >"$probe/p.c"
"${CC:-cc}" -fsanitize=address,undefined "$probe/p.c" -o "$probe/p" 2>"$probe/err" ||
    die "the C compiler cannot link -fsanitize=address,undefined (install libasan/libubsan): $(cat "$probe/err")"

section "Header is up to date (MSGRPRIV_CHECK_HEADER=1 cargo build)"
# First, before any other build regenerates the header.
MSGRPRIV_CHECK_HEADER=1 cargo build --locked --lib
done_step "header check"

section "cargo test"
cargo test --locked
done_step "cargo test"

# configure <dir> <cmake args...>: (re)configures a build of the C tests.
configure() {
    local dir=$1
    shift
    cmake -S "$root" -B "$dir" "${generator[@]}" --log-level=WARNING \
        -DCMAKE_BUILD_TYPE="$build_type" "$@"
}
run_ctest() {
    ctest --test-dir "$1" --output-on-failure --no-tests=error -j "$jobs"
}

section "C tests"
configure build/test-all/plain -DMSGRPRIV_SANITIZE= -DMSGRPRIV_VALGRIND=OFF
cmake --build build/test-all/plain -j "$jobs"
run_ctest build/test-all/plain
done_step "C tests"

if [ "$skip_valgrind" = 0 ]; then
    section "C tests under valgrind"
    # Same build, only the test commands change.
    configure build/test-all/plain -DMSGRPRIV_SANITIZE= -DMSGRPRIV_VALGRIND=ON
    cmake --build build/test-all/plain -j "$jobs"
    run_ctest build/test-all/plain
    done_step "valgrind"
fi

section "C tests with AddressSanitizer and UndefinedBehaviorSanitizer"
configure build/test-all/sanitize -DMSGRPRIV_SANITIZE=address,undefined -DMSGRPRIV_VALGRIND=OFF
cmake --build build/test-all/sanitize -j "$jobs"
run_ctest build/test-all/sanitize
done_step "sanitizers"

section "Header unchanged by the builds"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && git ls-files --error-unmatch include/msgrpriv.h >/dev/null 2>&1; then
    if ! git diff --exit-code --stat -- include/msgrpriv.h; then
        if [ -n "${CI:-}" ]; then
            die "include/msgrpriv.h differs from the committed one"
        fi
        echo "NOTE: include/msgrpriv.h was regenerated and differs from the committed one: commit it."
    fi
fi
echo "ok"

printf '\n==== All tests passed in %ds ====\n' "$((SECONDS - start))"
