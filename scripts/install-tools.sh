#!/usr/bin/env bash
# Installs the tools the build and the tests need when they are missing (Debian, apt-get; as
# root or with sudo, no stdin needed). Used by .ci/run and scripts/demo.sh.
set -euo pipefail

printf '==== Installing missing tools ====\n\n'
packages=()
command -v cmake >/dev/null || packages+=(cmake)
command -v make >/dev/null || command -v ninja >/dev/null || packages+=(make)
command -v cc >/dev/null || packages+=(gcc)
command -v c++ >/dev/null || packages+=(g++)
command -v valgrind >/dev/null || packages+=(valgrind)
{ command -v nm >/dev/null && command -v readelf >/dev/null; } || packages+=(binutils)
command -v git >/dev/null || packages+=(git)
command -v pkg-config >/dev/null || packages+=(pkgconf)   # the install_consumers test
command -v prosody >/dev/null || packages+=(prosody)      # the XMPP tests' server (tests/common/prosody.rs)
command -v doxygen >/dev/null || packages+=(doxygen)      # the reference (scripts/docs.sh)
if [ "${#packages[@]}" -gt 0 ]; then
    sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "need root or sudo to install: ${packages[*]}" >&2; exit 1; }
        sudo=(sudo -n)
    fi
    echo "apt-get install ${packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq </dev/null
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" </dev/null
else
    echo "nothing to install"
fi

# rustfmt and clippy for the style checks of scripts/test-all.sh (the build and the demo do
# not need them: a failure to add them is reported, not fatal).
for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        echo "rustup component add $component"
        rustup component add "$component" || echo "WARNING: could not add $component"
    fi
done
