#!/usr/bin/env bash
# Model checks the event queue and the sink lists with loom: the models of src/loom_tests.rs
# (docs/HARDENING.md says what each proves). The crate is built with `--cfg loom`, which swaps
# the primitives of src/sync.rs for loom's, in release mode, in its own target directory
# (target/loom, or MSGRPRIV_LOOM_TARGET_DIR) so that the normal build is not invalidated.
#
#   bash scripts/loom.sh                        # every model
#   bash scripts/loom.sh sinks_                 # the models whose name contains sinks_
#   LOOM_MAX_PREEMPTIONS=6 bash scripts/loom.sh # a deeper search (default bound: 4)
#
# Prints each model's number of explored executions and time. A failing model prints the
# interleaving's log; LOOM_CHECKPOINT_FILE and LOOM_LOG (loom's own variables) help replay it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export RUSTFLAGS="--cfg loom ${MSGRPRIV_LOOM_RUSTFLAGS:-}"
export CARGO_TARGET_DIR=${MSGRPRIV_LOOM_TARGET_DIR:-$PWD/target/loom}
filter=loom_tests::${1:-}
shift || true
cargo test --locked --release --lib -- "$filter" --nocapture --test-threads=1 "$@"
