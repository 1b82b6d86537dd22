"""Build step of the msgrpriv Python package: bundles the native library.

``pip install ./python`` runs :class:`BuildPy`, which

1. takes the library named by ``MSGRPRIV_LIBRARY`` when that variable is set (a prebuilt
   ``target/release/libmsgrpriv.so``: no cargo run), or else runs
   ``cargo build --release --locked --lib`` in the crate directory (``MSGRPRIV_CARGO_DIR``,
   default: the parent of this directory) and takes the cdylib cargo reports;
2. copies it into the package (``msgrpriv/libmsgrpriv.so``);
3. writes ``msgrpriv/_build_info.py`` with the crate version, which the package checks
   against ``msgr_version()`` at import.

The wheel is tagged ``py3-none-<platform>``: pure Python, one native library.
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

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
LIB_SUFFIXES = (".so", ".dylib", ".dll")


def _cargo_dir() -> Path | None:
    """The crate directory (holding Cargo.toml), or None when there is none."""
    env = os.environ.get("MSGRPRIV_CARGO_DIR")
    d = Path(env).resolve() if env else HERE.parent
    return d if (d / "Cargo.toml").is_file() else None


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
    raise RuntimeError(
        "msgrpriv: cannot find the Rust crate (Cargo.toml) next to python/; set "
        "MSGRPRIV_CARGO_DIR to the crate directory or MSGRPRIV_LIBRARY to a built "
        "libmsgrpriv.so"
    )


def _cargo_build(cargo_dir: Path) -> Path:
    """Runs cargo and returns the path of the cdylib it built."""
    cargo = os.environ.get("CARGO", "cargo")
    if shutil.which(cargo) is None:
        raise RuntimeError(
            "msgrpriv: cargo not found; install Rust (https://rustup.rs) or set "
            "MSGRPRIV_LIBRARY to a built libmsgrpriv.so"
        )
    cmd = [cargo, "build", "--release", "--locked", "--lib", "--message-format=json-render-diagnostics"]
    print(f"msgrpriv: running {' '.join(cmd)} in {cargo_dir}", file=sys.stderr)
    proc = subprocess.run(cmd, cwd=cargo_dir, stdout=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"msgrpriv: cargo build failed with status {proc.returncode}")
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
        raise RuntimeError("msgrpriv: cargo did not report the msgrpriv cdylib")
    return found[0]


def _native_library() -> Path:
    prebuilt = os.environ.get("MSGRPRIV_LIBRARY")
    if prebuilt:
        path = Path(prebuilt).resolve()
        if not path.is_file():
            raise RuntimeError(f"msgrpriv: MSGRPRIV_LIBRARY={prebuilt} is not a file")
        print(f"msgrpriv: bundling {path} (MSGRPRIV_LIBRARY)", file=sys.stderr)
        return path
    cargo_dir = _cargo_dir()
    if cargo_dir is None:
        _version()  # raises the explanatory error
    assert cargo_dir is not None
    return _cargo_build(cargo_dir)


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
        version = self.distribution.get_version()
        (dest_dir / "_build_info.py").write_text(
            '"""Written by setup.py at build time: the library version this package expects."""\n\n'
            f"VERSION = {version!r}\n",
            encoding="utf-8",
        )


cmdclass: dict[str, type] = {"build_py": BuildPy}

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

        def finalize_options(self) -> None:
            super().finalize_options()
            self.root_is_pure = False

        def get_tag(self) -> tuple[str, str, str]:
            _, _, plat = super().get_tag()
            return "py3", "none", plat

    cmdclass["bdist_wheel"] = BdistWheel

setup(version=_version(), cmdclass=cmdclass)
