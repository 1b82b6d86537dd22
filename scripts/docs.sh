#!/usr/bin/env bash
# Builds the HTML reference with doxygen (docs/Doxyfile): include/msgrpriv.h, the C++ layer
# include/msgrpriv.hpp, README.md (the main page) and docs/*.md. Fails when doxygen prints any
# warning (undocumented member or parameter, bad @param name, broken reference, ...), after
# listing them. Run from anywhere; needs doxygen (scripts/install-tools.sh installs it).
#
#   MSGRPRIV_DOCS_DIR   output directory (default build/docs); the HTML is in its html/
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v doxygen >/dev/null || { echo "docs.sh: doxygen not found (apt-get install doxygen)" >&2; exit 1; }

out=${MSGRPRIV_DOCS_DIR:-build/docs}
rm -rf "$out/html"
mkdir -p "$out"
out=$(cd "$out" && pwd)
log=$out/warnings.log
rm -f "$log"

# docs/Doxyfile with the output directory and the log file of this run (a later setting of a
# tag replaces an earlier one). Warnings about the configuration itself go to stderr, the others
# to the log: both count.
echo "doxygen $(doxygen --version), output in $out"
{
    cat docs/Doxyfile
    printf 'OUTPUT_DIRECTORY = "%s"\nWARN_LOGFILE = "%s"\n' "$out" "$log"
} | doxygen - 2>"$out/stderr.log" || {
    cat "$out/stderr.log" >&2
    echo "docs.sh: doxygen failed" >&2
    exit 1
}
cat "$log" "$out/stderr.log" >"$out/all-warnings.log" 2>/dev/null || true
count=$(grep -c 'warning:' "$out/all-warnings.log" || true)
if [ -s "$out/all-warnings.log" ]; then
    cat "$out/all-warnings.log" >&2
    echo "docs.sh: $count doxygen warning(s) (listed above, and in $out/all-warnings.log)" >&2
    exit 1
fi
echo "HTML reference: $out/html/index.html (no warnings)"
