#!/bin/sh
# check_sanitizers.sh NM SANITIZERS EXECUTABLE...
#
# With AddressSanitizer requested, every test executable must reference its runtime
# (rustls-ffi's check): a build that silently dropped -fsanitize fails here.
set -eu
nm=$1 sanitizers=$2
shift 2
case "$sanitizers" in
*address*) ;;
*) echo "AddressSanitizer not requested ($sanitizers): nothing to check"; exit 0 ;;
esac
for exe in "$@"; do
    if ! "$nm" "$exe" | grep -q '__asan_init'; then
        echo "$exe is not linked with AddressSanitizer"
        exit 1
    fi
done
echo "$# executables linked with AddressSanitizer"
