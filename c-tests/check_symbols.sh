#!/bin/sh
# check_symbols.sh LIBRARY HEADER SONAME CC
#
# The shared library exports exactly the functions the header declares (curl's symbol test),
# every declaration in the header (function, typedef, macro, enum constant, struct field) has
# a doc comment, and the library carries the SONAME the CMake build links against.
set -eu
lib=$1 header=$2 soname=$3 cc=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# Declared: function names followed by "(" once the preprocessor has removed the comments.
# (Callback typedefs read "(*name)(" and do not match.)
printf '#include "%s"\n' "$header" | "$cc" -E -P -x c - |
    grep -oE '(^|[^A-Za-z0-9_])msgr_[A-Za-z0-9_]+[[:space:]]*\(' |
    sed -E 's/^[^m]*//; s/[[:space:]]*\($//' | sort -u >"$tmp/declared"
# Exported: every defined dynamic symbol.
nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u >"$tmp/exported"

if [ ! -s "$tmp/declared" ]; then
    echo "no msgr_ function found in $header"
    fail=1
fi
if ! cmp -s "$tmp/declared" "$tmp/exported"; then
    echo "declared in $header but not exported by $lib:"
    comm -23 "$tmp/declared" "$tmp/exported" | sed 's/^/    /'
    echo "exported by $lib but not declared in $header:"
    comm -13 "$tmp/declared" "$tmp/exported" | sed 's/^/    /'
    fail=1
fi

# Documented: the line before each declaration ends a comment.
if ! awk '
    /^MSGR_API/ { if (prev !~ /\*\/[[:space:]]*$/) { printf "%s:%d: undocumented: %s\n", FILENAME, FNR, $0; bad = 1 } }
    NF { prev = $0 }
    END { exit bad }' "$header"; then
    fail=1
fi

# Documented too, by a doc comment (/** ... */): every typedef, macro (but the include guard),
# enum constant and struct field, so that the header is the API reference. The comment may
# sit above an `#if !defined(NAME)`.
if ! awk '
    NF == 0 { next }
    /^typedef/ || (/^#define [A-Za-z_]/ && !/^#define __msgrpriv_h__/) ||
    /^    [A-Z][A-Z0-9_]* = / || /^    [A-Za-z_][A-Za-z0-9_ ]*[ *][a-z_][a-z0-9_]*;$/ {
        documented = (prev ~ /^#if !defined/) ? prev2_doc : prev_doc
        if (!documented) { printf "%s:%d: undocumented: %s\n", FILENAME, FNR, $0; bad = 1 }
        items++
    }
    {
        if ($0 ~ /\/\*\*/) indoc = 1; else if ($0 ~ /\/\*/) indoc = 0
        prev2_doc = prev_doc; prev_doc = indoc && $0 ~ /\*\/[[:space:]]*$/; prev = $0
    }
    END { if (items < 50) { printf "%s: only %d items found: is the check still right?\n", FILENAME, items; bad = 1 }; exit bad }' "$header"; then
    fail=1
fi

# SONAME.
actual=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$actual" != "$soname" ]; then
    echo "SONAME of $lib is '$actual', expected '$soname'"
    fail=1
fi

[ "$fail" = 0 ] && echo "$(wc -l <"$tmp/declared") functions declared and exported, all documented; SONAME $actual"
exit "$fail"
