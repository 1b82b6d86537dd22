#!/usr/bin/env bash
# The main job: builds the library (cargo, driven by CMake) and runs the invitation demo
# (examples/invite_demo.c) on the embedded service. Installs cmake and a C compiler first when
# they are missing.
#
#   bash scripts/demo.sh          # two users in one process, on the embedded service
#   bash scripts/demo.sh --xmpp   # two processes through a Prosody the script starts and stops
#                                 # (examples/xmpp/invite_xmpp.c, scripts/with-prosody.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install-tools.sh >/dev/null
jobs=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
if [ "${1:-}" = --xmpp ]; then
    cmake -S . -B build/demo-xmpp -DCMAKE_BUILD_TYPE=Release -DMSGRPRIV_XMPP=ON \
        -DMSGRPRIV_BUILD_EXAMPLES=ON --log-level=WARNING >/dev/null
    cmake --build build/demo-xmpp --target example_invite_xmpp -j "$jobs" >/dev/null
    exec bash scripts/with-prosody.sh ./build/demo-xmpp/example_invite_xmpp
fi
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=Release -DMSGRPRIV_XMPP=OFF -DMSGRPRIV_BUILD_EXAMPLES=ON \
    --log-level=WARNING >/dev/null
cmake --build build/demo --target example_invite_demo -j "$jobs" >/dev/null
exec ./build/demo/example_invite_demo
