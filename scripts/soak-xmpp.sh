#!/usr/bin/env bash
# The XMPP soak (issue 18, point 5): 100 clients in two processes invite each other through
# one Prosody for N minutes, each process through its own fault proxy that drops 1 % of the
# stanzas and cuts one of its connections every two minutes (one a minute for the two). Every
# session must end exactly once on each side (OnTermination counted per session and side);
# the counts are printed (sessions started, sides ended per code and role, OnSendError per
# code, stanzas dropped, connections cut, sign-ins after a loss, sessions left connected by
# a lost cancel and ended after 5 s) with the resident memory of each process (RSS from /proc/self/status: after the warm-up, at the end of the run, peak).
# Fails (non-zero) when a side did not end exactly once, when a client whose connection was
# cut is signed out for good when the run ends (the library signs it in again), or, on runs
# of 5 minutes or more, when the RSS grows over the second half of the run by more than a
# tenth plus 4 MB (the RSS at each tenth of the run is printed).
#
# Usage: bash scripts/soak-xmpp.sh [minutes]     (default 10; CI runs 25 seconds:
#        MSGRPRIV_SOAK_SECONDS=25 bash scripts/soak-xmpp.sh)
# Environment (tests/xmpp_soak.rs): MSGRPRIV_SOAK_SECONDS (overrides the minutes),
# MSGRPRIV_SOAK_CLIENTS [100], MSGRPRIV_SOAK_DROP_PER_MILLION [10000],
# MSGRPRIV_SOAK_CUT_SECONDS [120, per process], MSGRPRIV_SOAK_SEED [1].
# Needs prosody and prosodyctl on PATH (scripts/install-tools.sh installs them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
minutes=${1:-10}
export MSGRPRIV_SOAK_SECONDS=${MSGRPRIV_SOAK_SECONDS:-$((minutes * 60))}
start=$SECONDS
cargo test --locked --features xmpp --test xmpp_soak -- --ignored --exact soak --nocapture
echo "soak-xmpp: ${MSGRPRIV_SOAK_SECONDS} s run, $((SECONDS - start)) s wall time (build included)"
