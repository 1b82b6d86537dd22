#!/usr/bin/env bash
# The library built with cargo alone (docs/BUILDING.md, "The library with cargo"), release, for
# both shipped feature sets: none, and xmpp (what the CMake build installs and the Python
# package bundles). For each:
#
#   cargo build --locked --release --lib [--features xmpp]
#   cc  -I include examples/invite_demo.c   -L target/release -lmsgrpriv -Wl,-rpath,...
#   c++ -I include examples/invite_demo.cpp -L target/release -lmsgrpriv -Wl,-rpath,...
#
# checks that the library carries no SONAME (so the programs need `libmsgrpriv.so`, the file
# cargo leaves), runs both programs against it, and checks its stripped size against the
# budget (scripts/check-size.sh). Run by scripts/test-all.sh after the C tests.
#
# Environment: CARGO_TARGET_DIR (default: target/), CC, CXX.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
libdir=$target/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0

# xmpp last: the library left in target/release is then the one `pip install ./python` and
# scripts/python-wheel.sh bundle (cargo rebuilds the crate, not its dependencies, when the
# feature set changes).
for features in default xmpp; do
    args=()
    [ "$features" = default ] || args=(--features "$features")
    printf '\n== cargo build --release --lib %s\n' "${args[*]}"
    cargo build --locked --release --lib "${args[@]}"
    lib=$libdir/libmsgrpriv.so
    soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
    if [ -n "$soname" ]; then
        echo "FAILED: $lib has the SONAME $soname: a program linked against it cannot start"
        fail=1
    fi
    "${CC:-cc}" -std=c11 -Wall -Wextra -pedantic -Werror -I include examples/invite_demo.c \
        -o "$work/invite_demo" -L "$libdir" -lmsgrpriv -Wl,-rpath,"$libdir"
    "${CXX:-c++}" -std=c++17 -Wall -Wextra -pedantic -Werror -I include examples/invite_demo.cpp \
        -o "$work/invite_demo_cpp" -L "$libdir" -lmsgrpriv -Wl,-rpath,"$libdir"
    for exe in "$work/invite_demo" "$work/invite_demo_cpp"; do
        loaded=$(ldd "$exe" | awk '$1 == "libmsgrpriv.so" { print $3 }')
        if [ ! "$loaded" -ef "$lib" ]; then
            echo "FAILED: $(basename "$exe") loads '$loaded', not $lib"
            fail=1
        fi
        rc=0
        "$exe" >"$work/out" 2>&1 || rc=$?
        if [ "$rc" = 0 ]; then
            echo "ok: $(basename "$exe") ($features), linked with -L $libdir, ran to completion"
        else
            cat "$work/out"
            echo "FAILED: $(basename "$exe") ($features) exited with status $rc"
            fail=1
        fi
    done
    sh scripts/check-size.sh "$lib" "$features" || fail=1
done
exit "$fail"
