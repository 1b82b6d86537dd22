#!/bin/sh
# run.sh BUILD_DIR WORK_DIR CMAKE CC CXX GENERATOR VERSION SONAME
#
# The install_consumers test (CMakeLists.txt): installs the msgrpriv build BUILD_DIR into a
# fresh prefix under WORK_DIR, checks the tree (files, SONAME and version links, the licence,
# no debug information in the libraries), checks that `cmake --install --strip` strips the
# shared library further, then builds this directory's consumer programs (consumer.c,
# consumer_cxx.cpp) against it four ways and runs each:
#
#   1. pkg-config, shared:   cc app.c $(pkg-config --cflags --libs msgrpriv)
#   2. pkg-config, static:   cc app.c $(pkg-config --cflags --libs msgrpriv-static)
#   3. find_package, shared: msgrpriv::msgrpriv
#   4. find_package, static: msgrpriv::static
#
# Shared programs must need the SONAME and load the installed library; static ones must not
# need libmsgrpriv at all. Without pkg-config (outside CI) ways 1 and 2 are skipped and the
# script exits 77 (ctest: skipped) once the others passed.
set -eu
build=$1 work=$2 cmake=$3 cc=$4 cxx=$5 generator=$6 version=$7 soname=$8
here=$(cd "$(dirname "$0")" && pwd)
prefix=$work/prefix
fail=0
bad() {
    echo "FAILED: $*"
    fail=1
}
step() {
    printf '\n== %s\n' "$*"
}

rm -rf "$work"
mkdir -p "$work"

step "cmake --install $build --prefix $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" || {
    cat "$work/install.log"
    exit 1
}
(cd "$prefix" && find . -mindepth 1 | sort | while read -r f; do
    if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"; else echo "$f"; fi
done)

# GNUInstallDirs may pick lib64 or a multiarch directory: find it.
static_lib=$(find "$prefix" -name libmsgrpriv.a | head -n 1)
[ -n "$static_lib" ] || { echo "FAILED: no libmsgrpriv.a installed"; exit 1; }
libdir=$(dirname "$static_lib")
includedir=$prefix/include

step "install tree"
real=libmsgrpriv.so.$version
[ -f "$libdir/$real" ] && [ ! -L "$libdir/$real" ] || bad "$real is not a regular file"
[ "$(readlink "$libdir/$soname" 2>/dev/null)" = "$real" ] || bad "$soname does not link to $real"
[ "$(readlink "$libdir/libmsgrpriv.so" 2>/dev/null)" = "$soname" ] || bad "libmsgrpriv.so does not link to $soname"
actual=$(readelf -d "$libdir/$real" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$actual" = "$soname" ] || bad "SONAME of $real is '$actual', expected '$soname'"
for f in "$includedir/msgrpriv.h" "$includedir/msgrpriv.hpp" "$libdir/pkgconfig/msgrpriv.pc" \
    "$libdir/pkgconfig/msgrpriv-static.pc" "$libdir/cmake/msgrpriv/msgrprivConfig.cmake" \
    "$libdir/cmake/msgrpriv/msgrprivConfigVersion.cmake"; do
    [ -f "$f" ] || bad "missing $f"
done
cmp -s "$includedir/msgrpriv.h" "$here/../../include/msgrpriv.h" || bad "installed msgrpriv.h differs"
docdir=$(find "$prefix" -type d -path '*/doc/msgrpriv' | head -n 1)
if [ -z "$docdir" ]; then
    bad "no doc/msgrpriv directory installed (CMAKE_INSTALL_DOCDIR)"
else
    cmp -s "$docdir/LICENSE" "$here/../../LICENSE" || bad "the licence is not installed as $docdir/LICENSE"
    cmp -s "$docdir/CHANGELOG.md" "$here/../../CHANGELOG.md" || bad "CHANGELOG.md is not installed in $docdir"
fi
for f in "$libdir/$real" "$static_lib"; do
    # (.debug_gdb_scripts is loaded code's gdb hook, not debug information: strip -S keeps it.)
    if readelf -S -W "$f" | grep -Eq ' \.debug_(info|line|str|abbrev) '; then
        bad "$f carries debug information (the install strips it)"
    fi
done
[ "$fail" = 0 ] && echo "ok: $real, $soname -> $real, libmsgrpriv.so -> $soname, headers, .pc, CMake package, LICENSE, no debug information"

step "cmake --install $build --strip --component runtime"
stripped_prefix=$work/stripped
if "$cmake" --install "$build" --prefix "$stripped_prefix" --strip --component runtime \
    >"$work/install-strip.log"; then
    stripped=$(find "$stripped_prefix" -name "$real" | head -n 1)
    if [ -z "$stripped" ]; then
        bad "--strip --component runtime installed no $real"
    else
        (cd "$stripped_prefix" && find . -mindepth 1 | sort)
        if readelf -S -W "$stripped" | grep -q ' \.symtab '; then
            bad "--strip left the symbol table (.symtab) in $stripped"
        fi
        size=$(wc -c <"$stripped") default_size=$(wc -c <"$libdir/$real")
        [ "$size" -lt "$default_size" ] || bad "--strip had no effect: $size bytes, $default_size without"
        nm -D --defined-only "$stripped" | grep -q ' msgr_version$' || bad "--strip removed the exported symbols"
        [ -n "$(find "$stripped_prefix" -path '*/doc/msgrpriv/LICENSE')" ] || bad "the runtime component lacks the licence"
        echo "ok: $real: $size bytes with --strip, $default_size without; exports kept; LICENSE"
    fi
else
    cat "$work/install-strip.log"
    bad "cmake --install --strip failed"
fi

# run_checked NAME EXE shared|static: runs a consumer and checks what it links.
run_checked() {
    name=$1 exe=$2 kind=$3
    if ! out=$("$exe" 2>&1); then
        bad "$name: $exe failed: $out"
        return
    fi
    needed=$(readelf -d "$exe" | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p' | tr '\n' ' ')
    case "$kind" in
    shared)
        case " $needed" in
        *" $soname "*) ;;
        *) bad "$name: $exe does not need $soname (needs: $needed)" ;;
        esac
        if command -v ldd >/dev/null; then
            loaded=$(ldd "$exe" | awk -v s="$soname" '$1 == s { print $3 }')
            [ "$loaded" -ef "$libdir/$soname" ] || bad "$name: $exe loads '$loaded', not the installed library"
        fi
        ;;
    static)
        case "$needed" in
        *libmsgrpriv*) bad "$name: $exe needs libmsgrpriv although linked statically (needs: $needed)" ;;
        esac
        ;;
    esac
    echo "ok: $name: $out"
}

skipped=""
if command -v pkg-config >/dev/null; then
    PKG_CONFIG_PATH=$libdir/pkgconfig
    export PKG_CONFIG_PATH
    step "pkg-config"
    [ "$(pkg-config --modversion msgrpriv)" = "$version" ] || bad "pkg-config --modversion msgrpriv is not $version"
    echo "msgrpriv $(pkg-config --modversion msgrpriv)"
    echo "  --cflags --libs:          $(pkg-config --cflags --libs msgrpriv)"
    echo "  --static --libs:          $(pkg-config --static --libs msgrpriv)"
    echo "  msgrpriv-static:          $(pkg-config --cflags --libs msgrpriv-static)"
    case "$(pkg-config --static --libs msgrpriv)" in
    *-lmsgrpriv*-lpthread*) ;;
    *) bad "pkg-config --static --libs msgrpriv lacks the private libraries" ;;
    esac

    for kind in shared static; do
        step "1/2. pkg-config, $kind"
        dir=$work/pkg-config-$kind
        mkdir -p "$dir"
        if [ "$kind" = shared ]; then
            # shellcheck disable=SC2046
            set -- $(pkg-config --cflags --libs msgrpriv) "-Wl,-rpath,$libdir"
        else
            # shellcheck disable=SC2046
            set -- $(pkg-config --cflags --libs msgrpriv-static)
        fi
        if "$cc" -std=c99 -Wall -Wextra -pedantic -Werror "$here/consumer.c" -o "$dir/consumer" "$@" &&
            "$cxx" -std=c++17 -Wall -Wextra -pedantic -Werror "$here/consumer_cxx.cpp" -o "$dir/consumer_cxx" "$@"; then
            run_checked "pkg-config $kind (C)" "$dir/consumer" "$kind"
            run_checked "pkg-config $kind (C++)" "$dir/consumer_cxx" "$kind"
        else
            bad "pkg-config $kind: build failed"
        fi
    done
else
    [ -z "${CI:-}" ] || bad "pkg-config not found"
    echo "NOTE: pkg-config not found: the pkg-config consumers are skipped"
    skipped=yes
fi

for kind in shared static; do
    step "3/4. find_package(msgrpriv CONFIG), $kind"
    dir=$work/cmake-$kind
    static=OFF
    [ "$kind" = shared ] || static=ON
    if "$cmake" -S "$here" -B "$dir" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCONSUMER_STATIC=$static >"$dir.log" 2>&1 &&
        "$cmake" --build "$dir" >>"$dir.log" 2>&1; then
        grep 'msgrpriv .* from' "$dir.log" || true
        found=$(sed -n 's/^msgrpriv_DIR:PATH=//p' "$dir/CMakeCache.txt")
        [ "$found" -ef "$libdir/cmake/msgrpriv" ] || bad "find_package found '$found', not the installed package"
        run_checked "find_package $kind (C)" "$dir/consumer" "$kind"
        run_checked "find_package $kind (C++)" "$dir/consumer_cxx" "$kind"
    else
        cat "$dir.log"
        bad "find_package $kind: configure or build failed"
    fi
done

step "find_package rejects an incompatible version"
mkdir -p "$work/version-check"
cat >"$work/version-check/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(version_check C)
find_package(msgrpriv 99.0 CONFIG QUIET)
if(msgrpriv_FOUND)
  message(FATAL_ERROR "msgrpriv ${msgrpriv_VERSION} accepted for 99.0")
endif()
find_package(msgrpriv ${WANT} CONFIG REQUIRED)
CMAKE
if "$cmake" -S "$work/version-check" -B "$work/version-check/build" -DWANT="$version" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$work/version-check.log" 2>&1; then
    echo "ok: $version accepted, 99.0 refused"
else
    cat "$work/version-check.log"
    bad "version check"
fi

echo
if [ "$fail" != 0 ]; then
    echo "install_consumers: FAILED (logs in $work)"
    exit 1
fi
if [ -n "$skipped" ]; then
    echo "install_consumers: passed without pkg-config (skipped)"
    exit 77
fi
echo "install_consumers: the installed tree works four ways"
