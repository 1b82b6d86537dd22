"""Build step of the msgrpriv Python package: bundles the native library.

``pip install ./python`` and ``pip wheel ./python`` run :class:`BuildPy`, which

1. takes the library named by ``MSGRPRIV_LIBRARY`` when that variable is set (a prebuilt
   ``target/release/libmsgrpriv.so``: no cargo run), or else runs
   ``cargo build --release --locked --lib --features xmpp`` in the crate directory and takes
   the cdylib cargo reports (``MSGRPRIV_CARGO_FEATURES`` replaces ``xmpp``; empty: none);
2. copies it into the package (``msgrpriv/libmsgrpriv.so``) and strips the copy (``strip``,
   or ``STRIP``: the exported symbols stay);
3. writes ``msgrpriv/_build_info.py`` with the crate version, which the package checks
   against ``msgr_version()`` at import.

The crate directory is ``MSGRPRIV_CARGO_DIR`` when set, else ``crate/`` beside this file (in
an unpacked sdist, which :class:`Sdist` fills with the crate), else the parent of this
directory (the repository).

The wheel is tagged ``py3-none-<platform>``: pure Python, one native library. On Linux the
platform is the manylinux tag the library qualifies for (:func:`manylinux_platform`), so
``auditwheel show`` accepts the wheel as it is.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from build_backend import check_library_source  # noqa: E402

LIB_SUFFIXES = (".so", ".dylib", ".dll")
DEFAULT_FEATURES = "xmpp"

# What the sdist carries of the crate (into crate/): enough for `cargo build --locked --lib`.
# Cargo.toml names the benches, so cargo wants their sources to read the manifest.
CRATE_FILES = ("Cargo.toml", "Cargo.lock", "build.rs", "cbindgen.toml", "LICENSE",
               "benches/core.rs", "benches/xmpp.rs")
CRATE_DIRS = ("src", "include")

# The libraries every manylinux policy lets a wheel's library link against without bundling
# them (PEP 600's system libraries, the subset a Rust cdylib uses).
MANYLINUX_SYSTEM_LIBS = frozenset({
    "libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0",
    "libgcc_s.so.1", "libutil.so.1",
})


def _cargo_dir() -> Path | None:
    """The crate directory (holding Cargo.toml), or None when there is none."""
    env = os.environ.get("MSGRPRIV_CARGO_DIR")
    candidates = [Path(env).resolve()] if env else [HERE / "crate", HERE.parent]
    return next((d for d in candidates if (d / "Cargo.toml").is_file()), None)


def _crate_version(cargo_dir: Path) -> str:
    """The ``version`` of the ``[package]`` table of Cargo.toml."""
    text = (cargo_dir / "Cargo.toml").read_text(encoding="utf-8")
    try:
        import tomllib  # Python 3.11+

        return str(tomllib.loads(text)["package"]["version"])
    except ImportError:
        m = re.search(r'^\[package\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.M | re.S)
        if not m:
            raise RuntimeError(f"no [package] version in {cargo_dir / 'Cargo.toml'}")
        return m.group(1)


def _library_version(path: Path) -> str:
    """``msgr_version()`` of a built library."""
    lib = ctypes.CDLL(str(path))
    lib.msgr_version.restype = ctypes.c_char_p
    lib.msgr_version.argtypes = []
    return lib.msgr_version().decode()


def _version() -> str:
    cargo_dir = _cargo_dir()
    if cargo_dir is not None:
        return _crate_version(cargo_dir)
    prebuilt = os.environ.get("MSGRPRIV_LIBRARY")
    if prebuilt:
        return _library_version(Path(prebuilt))
    raise SystemExit(
        "msgrpriv: cannot find the Rust crate (Cargo.toml) next to python/; set "
        "MSGRPRIV_CARGO_DIR to the crate directory or MSGRPRIV_LIBRARY to a built "
        "libmsgrpriv.so"
    )


def _cargo_build(cargo_dir: Path) -> Path:
    """Runs cargo and returns the path of the cdylib it built."""
    check_library_source()
    cargo = os.environ.get("CARGO") or "cargo"
    features = os.environ.get("MSGRPRIV_CARGO_FEATURES", DEFAULT_FEATURES).strip()
    cmd = [cargo, "build", "--release", "--locked", "--lib"]
    if features:
        cmd += ["--features", features]
    print(f"msgrpriv: running {' '.join(cmd)} in {cargo_dir}", file=sys.stderr)
    cmd.append("--message-format=json-render-diagnostics")
    proc = subprocess.run(cmd, cwd=cargo_dir, stdout=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"msgrpriv: cargo build failed with status {proc.returncode}")
    found: list[Path] = []
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") != "compiler-artifact":
            continue
        target = msg.get("target", {})
        if target.get("name") != "msgrpriv" or "cdylib" not in target.get("kind", []):
            continue
        found += [Path(f) for f in msg.get("filenames", []) if f.endswith(LIB_SUFFIXES)]
    if not found:
        raise SystemExit("msgrpriv: cargo did not report the msgrpriv cdylib")
    return found[0]


def _native_library() -> Path:
    prebuilt = os.environ.get("MSGRPRIV_LIBRARY")
    if prebuilt:
        path = Path(prebuilt).resolve()
        if not path.is_file():
            raise SystemExit(f"msgrpriv: MSGRPRIV_LIBRARY={prebuilt} is not a file")
        print(f"msgrpriv: bundling {path} (MSGRPRIV_LIBRARY)", file=sys.stderr)
        return path
    cargo_dir = _cargo_dir()
    if cargo_dir is None:
        _version()  # raises the explanatory error
    assert cargo_dir is not None
    return _cargo_build(cargo_dir)


def _strip(path: Path) -> None:
    """Strips the symbol table and debug information of ``path`` (the dynamic symbols, which
    ctypes looks up, stay), as ``cmake --install --strip`` does."""
    strip = shutil.which(os.environ.get("STRIP") or "strip")
    if strip is None:
        print("msgrpriv: no strip found: the bundled library keeps its symbols", file=sys.stderr)
        return
    # macOS's strip keeps the exported symbols only with -x.
    subprocess.run([strip, *(["-x"] if sys.platform == "darwin" else []), str(path)], check=True)


def manylinux_platform(lib: Path, plat: str) -> str:
    """The platform tag of a wheel whose only native code is ``lib``: for ``linux_<arch>``,
    ``manylinux_<glibc>_<arch>`` when ``lib`` links only against the PEP 600 system libraries
    and glibc, ``<glibc>`` being the newest GLIBC_ symbol version it needs (2_17 at least,
    which also gets the legacy alias manylinux2014). Other platforms, or no ``readelf``
    (binutils) to read the library with: ``plat`` unchanged."""
    readelf = shutil.which(os.environ.get("READELF") or "readelf")
    if not plat.startswith("linux_") or readelf is None:
        return plat
    out = subprocess.run(
        [readelf, "--dynamic", "--version-info", "--wide", str(lib)],
        stdout=subprocess.PIPE, check=True, env=dict(os.environ, LC_ALL="C"),
    ).stdout.decode("utf-8", "replace")
    needed = set(re.findall(r"\(NEEDED\).*\[(.+?)\]", out))
    if "libc.so.6" not in needed or not all(
        n in MANYLINUX_SYSTEM_LIBS or n.startswith("ld-linux") for n in needed
    ):
        return plat
    if "GLIBC_PRIVATE" in out:
        return plat
    versions = [(int(a), int(b)) for a, b in re.findall(r"Name: GLIBC_(\d+)\.(\d+)", out)]
    major, minor = max([(2, 17), *versions])
    arch = plat[len("linux_"):]
    tag = f"manylinux_{major}_{minor}_{arch}"
    return tag + f".manylinux2014_{arch}" if (major, minor) == (2, 17) else tag


class BuildPy(build_py):
    """build_py that also bundles the native library and records the expected version."""

    def run(self) -> None:
        # An in-tree build reuses build/lib: start clean so a removed module cannot linger.
        shutil.rmtree(Path(self.build_lib) / "msgrpriv", ignore_errors=True)
        super().run()
        lib = _native_library()
        dest_dir = Path(self.build_lib) / "msgrpriv"
        dest_dir.mkdir(parents=True, exist_ok=True)
        for old in dest_dir.glob("*msgrpriv.*"):
            if old.suffix in LIB_SUFFIXES:
                old.unlink()
        suffix = next((s for s in LIB_SUFFIXES if lib.name.endswith(s)), ".so")
        dest = dest_dir / (("msgrpriv" if suffix == ".dll" else "libmsgrpriv") + suffix)
        shutil.copyfile(lib, dest)
        _strip(dest)
        self.distribution.msgrpriv_library = dest  # type: ignore[attr-defined]
        version = self.distribution.get_version()
        (dest_dir / "_build_info.py").write_text(
            '"""Written by setup.py at build time: the library version this package expects."""\n\n'
            f"VERSION = {version!r}\n",
            encoding="utf-8",
        )


class Sdist(sdist):
    """sdist that also carries the crate (``crate/``), so that the unpacked sdist builds on
    its own with cargo."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        cargo_dir = _cargo_dir()
        if cargo_dir is None:
            _version()  # raises the explanatory error
        assert cargo_dir is not None
        dest = Path(base_dir) / "crate"
        for name in CRATE_FILES:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cargo_dir / name, dest / name)
        for name in CRATE_DIRS:
            shutil.copytree(cargo_dir / name, dest / name)


class BinaryDistribution(Distribution):
    """A distribution with native code: installed into platlib (the wheel's root, which
    auditwheel requires of a wheel carrying a shared library), although it has no extension
    module for setuptools to build."""

    def has_ext_modules(self) -> bool:
        return True


cmdclass: dict[str, type] = {"build_py": BuildPy, "sdist": Sdist}

try:  # setuptools >= 70.1 ships bdist_wheel itself
    from setuptools.command.bdist_wheel import bdist_wheel as _bdist_wheel
except ImportError:  # pragma: no cover - older setuptools
    try:
        from wheel.bdist_wheel import bdist_wheel as _bdist_wheel
    except ImportError:
        _bdist_wheel = None

if _bdist_wheel is not None:

    class BdistWheel(_bdist_wheel):  # type: ignore[misc, valid-type]
        """Tags the wheel py3-none-<platform>: any Python 3, one native library."""

        def get_tag(self) -> tuple[str, str, str]:
            _, _, plat = super().get_tag()
            lib = getattr(self.distribution, "msgrpriv_library", None)
            if lib is not None:
                plat = manylinux_platform(lib, plat)
            return "py3", "none", plat

    cmdclass["bdist_wheel"] = BdistWheel

setup(version=_version(), cmdclass=cmdclass, distclass=BinaryDistribution)
