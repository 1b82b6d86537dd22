#!/usr/bin/env bash
# Builds the Python wheel and tests it the way a user without Rust installs it:
#
#   1. a build venv ($work/build-venv, reused) with setuptools, wheel and auditwheel (PyPI);
#   2. `pip wheel ./python` in it: setup.py runs
#      `cargo build --release --locked --lib --features xmpp` in cargo's target directory
#      (CARGO_TARGET_DIR, default target/; nothing to compile after scripts/cargo-only.sh),
#      bundles the stripped library and tags the wheel manylinux (MSGRPRIV_LIBRARY is ignored:
#      the wheel always carries that release library);
#   3. checks the wheel: `auditwheel show` finds it consistent with its own platform tag, the
#      library in it has no symbol table, its metadata carries the LICENSE;
#   4. checks the sdist (setup.py sdist): it carries the crate, and cargo reads the unpacked
#      crate's manifest and lock file (`cargo fetch --locked --offline`; a full build from the
#      unpacked sdist is `pip wheel msgrpriv-*.tar.gz`, minutes from nothing);
#   5. a fresh venv ($work/test-venv, made anew each run) used with a PATH that has no cargo
#      nor rustc: installs the wheel, pytest, mypy, setuptools and wheel (PyPI), and runs
#      python/tests against the installed package (MSGRPRIV_LIBRARY and CARGO unset).
#
#   bash scripts/python-wheel.sh [pytest arguments...]     (default: -q)
#
# The wheel is left in $work/wheelhouse. Run by scripts/test-all.sh after the Python tests.
# Needs python3 (3.9+) with pip, cargo, binutils (readelf, strip) and PyPI (the pip cache
# serves later runs). Environment:
#   CARGO_TARGET_DIR   cargo's target directory (default: target/); $work is
#                      $CARGO_TARGET_DIR/python-wheel
#   PYTHON             the interpreter to make the venvs with (default: python3)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
python=${PYTHON:-python3}
work=$CARGO_TARGET_DIR/python-wheel
wheelhouse=$work/wheelhouse
start=$SECONDS
unset MSGRPRIV_LIBRARY MSGRPRIV_CARGO_DIR MSGRPRIV_CARGO_FEATURES

say() { printf 'python-wheel: %s\n' "$*"; }
fail() { printf 'python-wheel: FAILED: %s\n' "$*" >&2; exit 1; }

# make_venv DIR: a venv at DIR, and pip_cmd set to drive it. Debian without python3-venv has
# no ensurepip: the venv is then made --without-pip and driven by the system pip (as
# python/run-tests.sh does).
make_venv() {
    local dir=$1
    if ! "$python" -m venv "$dir" 2>/dev/null; then
        rm -rf "$dir"
        "$python" -m venv --without-pip "$dir"
    fi
}
pip_for() {
    local vpy=$1/bin/python
    if "$vpy" -m pip --version >/dev/null 2>&1; then
        pip_cmd=("$vpy" -m pip)
    else
        pip_cmd=("$python" -m pip --python "$vpy")
    fi
    pip_cmd+=(--disable-pip-version-check --quiet)
}

# 1. The build venv, once.
bvenv=$work/build-venv
if ! "$bvenv/bin/python" -c 'import setuptools, wheel, auditwheel' 2>/dev/null; then
    rm -rf "$bvenv"
    say "creating $bvenv"
    make_venv "$bvenv"
    pip_for "$bvenv"
    # auditwheel: checks the wheel's manylinux tag against the library's symbol versions.
    "${pip_cmd[@]}" install 'setuptools>=70.1' wheel auditwheel
fi
pip_for "$bvenv"

# 2. The wheel.
rm -rf "$wheelhouse"
mkdir -p "$wheelhouse"
t=$SECONDS
say "pip wheel ./python (cargo target directory: $CARGO_TARGET_DIR)"
"${pip_cmd[@]}" wheel --no-build-isolation --no-deps -w "$wheelhouse" "$root/python"
wheels=("$wheelhouse"/msgrpriv-*.whl)
[ "${#wheels[@]}" = 1 ] && [ -f "${wheels[0]}" ] || fail "expected one wheel in $wheelhouse: ${wheels[*]}"
wheel=${wheels[0]}
say "built $(basename "$wheel") ($(stat -c %s "$wheel") bytes) in $((SECONDS - t))s"

# 3. The wheel's checks. auditwheel show prints the most compatible tag the library qualifies
#    for; the wheel's tag must be that one (not older: pip would install it where it
#    cannot load).
plat=$(basename "$wheel" .whl)
plat=${plat##*-}
case "$plat" in
manylinux_*) ;;
*) fail "$(basename "$wheel") is tagged $plat, not manylinux" ;;
esac
show=$("$bvenv/bin/auditwheel" show "$wheel") || fail "auditwheel show: $show"
printf '%s\n' "$show" | sed 's/^/    /'
qualified=$(printf '%s\n' "$show" | tr '\n' ' ' | sed -n 's/.*consistent with the following platform tag: "\([^"]*\)".*/\1/p')
[ -n "$qualified" ] || fail "auditwheel show names no platform tag"
[ "${plat%%.*}" = "$qualified" ] || fail "the wheel is tagged $plat; auditwheel show says $qualified"
unpacked=$work/unpacked
rm -rf "$unpacked"
"$bvenv/bin/python" -m zipfile -e "$wheel" "$unpacked"
lib=$unpacked/msgrpriv/libmsgrpriv.so
[ -f "$lib" ] || fail "no msgrpriv/libmsgrpriv.so in the wheel"
! readelf -S "$lib" | grep -q '\.symtab' || fail "the wheel's library is not stripped"
readelf -d "$lib" | grep -q '(NEEDED)' || fail "readelf cannot read the wheel's library"
grep -q 'MIT License' "$unpacked"/msgrpriv-*.dist-info/licenses/LICENSE 2>/dev/null ||
    grep -q 'MIT License' "$unpacked"/msgrpriv-*.dist-info/LICENSE ||
    fail "no LICENSE in the wheel's metadata"
say "wheel: $plat, library $(stat -c %s "$lib") bytes stripped, LICENSE in its metadata"

# 4. The sdist (a second or two; the build directory is python/build, as for the wheel).
t=$SECONDS
sdist_dir=$work/sdist
rm -rf "$sdist_dir"
(cd "$root/python" && "$bvenv/bin/python" setup.py -q sdist -d "$sdist_dir" >/dev/null 2>&1) ||
    fail "setup.py sdist (run it in python/ to see why)"
sdists=("$sdist_dir"/msgrpriv-*.tar.gz)
tar -xzf "${sdists[0]}" -C "$sdist_dir"
crate=("$sdist_dir"/msgrpriv-*/crate)
for f in Cargo.toml Cargo.lock build.rs cbindgen.toml LICENSE src/lib.rs include/msgrpriv.h; do
    [ -f "${crate[0]}/$f" ] || fail "the sdist has no crate/$f"
done
(cd "${crate[0]}" && cargo fetch --locked --offline -q) || fail "cargo cannot read the sdist's crate"
say "sdist: $(basename "${sdists[0]}") carries the crate; cargo reads it ($((SECONDS - t))s)"

# 5. A fresh venv, no cargo on the PATH: install the wheel, run the tests against it.
t=$SECONDS
clean_path=
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
    [ -n "$d" ] && [ ! -x "$d/cargo" ] && [ ! -x "$d/rustc" ] || continue
    clean_path=${clean_path:+$clean_path:}$d
done
tvenv=$work/test-venv
rm -rf "$tvenv"
make_venv "$tvenv"
pip_for "$tvenv"
"${pip_cmd[@]}" install "$wheel" 'pytest>=7' mypy 'setuptools>=70.1' wheel
run() { env -u MSGRPRIV_LIBRARY -u CARGO -u RUSTC PATH="$tvenv/bin:$clean_path" "$@"; }
run sh -c '! command -v cargo && ! command -v rustc' >/dev/null || fail "cargo is still on the PATH"
installed=$(cd / && run "$tvenv/bin/python" -c 'import msgrpriv; print(msgrpriv.LIBRARY_PATH)')
case "$installed" in
"$tvenv"/*) say "installed in a fresh venv without cargo ($((SECONDS - t))s): $installed" ;;
*) fail "msgrpriv loads $installed, not the venv's" ;;
esac
# The pytest script, unlike `python -m pytest`, keeps python/ off sys.path: the tests import
# the installed package.
cd "$root/python"
[ "$#" -gt 0 ] || set -- -q
t=$SECONDS
set +e
run "$tvenv/bin/pytest" -p no:cacheprovider "$@"
status=$?
set -e
say "pytest exited with $status after $((SECONDS - t))s; $((SECONDS - start))s in all"
exit "$status"
