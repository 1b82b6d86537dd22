#!/usr/bin/env bash
# The main job: builds the library (cargo, driven by CMake) and runs the invitation demo
# (examples/invite_demo.c) on the embedded service. Installs cmake and a C compiler first when
# they are missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install-tools.sh >/dev/null
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=Release --log-level=WARNING >/dev/null
cmake --build build/demo --target example_invite_demo -j "$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)" >/dev/null
exec ./build/demo/example_invite_demo
