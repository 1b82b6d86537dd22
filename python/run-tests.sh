#!/usr/bin/env bash
# Installs the msgrpriv Python package into a virtual environment and runs its pytest suite.
#
#   bash python/run-tests.sh [pytest arguments...]
#
# Works from anywhere, on a fresh Debian machine with python3 (3.9+), pip and cargo; needs
# network access to PyPI only the first time (pytest, setuptools, wheel, mypy) and, if cargo has
# not fetched them yet, to crates.io. Idempotent and quick on later runs: the venv is reused
# and cargo rebuilds nothing when the crate is up to date.
#
# Environment:
#   MSGRPRIV_LIBRARY   a built libmsgrpriv.so (e.g. target/release/libmsgrpriv.so or
#                      target/debug/libmsgrpriv.so): bundled instead of running cargo, and
#                      loaded by the tests
#   MSGRPRIV_VENV      the virtual environment to create or reuse (default: python/.venv)
#   PYTHON             the interpreter to create it with (default: python3)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${MSGRPRIV_VENV:-$here/.venv}
python=${PYTHON:-python3}
start=$SECONDS

if [ -n "${MSGRPRIV_LIBRARY:-}" ]; then
    MSGRPRIV_LIBRARY=$(cd "$(dirname "$MSGRPRIV_LIBRARY")" && pwd)/$(basename "$MSGRPRIV_LIBRARY")
    export MSGRPRIV_LIBRARY
    [ -f "$MSGRPRIV_LIBRARY" ] || { echo "run-tests: MSGRPRIV_LIBRARY=$MSGRPRIV_LIBRARY is not a file" >&2; exit 1; }
fi

# 1. The virtual environment (Debian's python3 refuses pip installs outside one, PEP 668).
if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' 2>/dev/null; then
    rm -rf "$venv"
    echo "run-tests: creating $venv"
    if ! "$python" -m venv "$venv" 2>/dev/null; then
        # Debian without python3-venv has no ensurepip: make the venv without pip and drive
        # it with the system pip (pip >= 22.3 has --python).
        rm -rf "$venv"
        "$python" -m venv --without-pip "$venv"
    fi
fi
vpy=$venv/bin/python
if "$vpy" -m pip --version >/dev/null 2>&1; then
    pip=("$vpy" -m pip)
else
    pip=("$python" -m pip --python "$vpy")
fi
pip+=(--disable-pip-version-check --quiet)

# 2. Test and build tools, once.
if ! "$vpy" -c 'import pytest, setuptools, wheel' 2>/dev/null; then
    echo "run-tests: installing pytest, setuptools, wheel"
    "${pip[@]}" install 'pytest>=7' 'setuptools>=64' wheel
fi

# mypy, for tests/test_typing.py (which skips, saying so, when it is missing): not fatal.
if ! "$vpy" -c 'import mypy' 2>/dev/null; then
    echo "run-tests: installing mypy"
    "${pip[@]}" install mypy || echo "run-tests: mypy could not be installed; the typing tests will be skipped" >&2
fi

# 3. The package, every run (cargo build --release, or a copy of MSGRPRIV_LIBRARY).
echo "run-tests: pip install $here${MSGRPRIV_LIBRARY:+ (library: $MSGRPRIV_LIBRARY)}"
"${pip[@]}" install --no-build-isolation --no-deps --force-reinstall "$here"

# 4. The tests, against the installed package (the src/ layout keeps the source tree off
#    sys.path). The pytest script, unlike `python -m pytest`, does not add the cwd either.
cd "$here"
set +e
"$venv/bin/pytest" -q "$@"
status=$?
set -e
echo "run-tests: pytest exited with $status after $((SECONDS - start))s"
exit "$status"
