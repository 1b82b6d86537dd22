#!/bin/sh
# check_codes.sh HEADER TEST_SOURCE
#
# Every result code the header defines is in the hand-written list of test_header.c (which
# static-asserts its documented value), and the list names no code the header lacks.
set -eu
header=$1 test_source=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -n 's/^#define \([A-Z0-9_]*\) ((MSGR_HRESULT)0x.*/\1/p' "$header" | sort >"$tmp/header"
sed -n 's/^ *X(\([A-Z0-9_]*\), 0x[0-9A-Fa-f]*u).*/\1/p' "$test_source" | sort >"$tmp/test"
if ! cmp -s "$tmp/header" "$tmp/test"; then
    echo "codes in $header but not in $test_source:"
    comm -23 "$tmp/header" "$tmp/test" | sed 's/^/    /'
    echo "codes in $test_source but not in $header:"
    comm -13 "$tmp/header" "$tmp/test" | sed 's/^/    /'
    exit 1
fi
echo "$(wc -l <"$tmp/header") result codes, all checked by $(basename "$test_source")"
