"""Loads the native library, applies the declaration table and checks the version.

The library is loaded by full path (its SONAME does not matter):

1. ``MSGRPRIV_LIBRARY``, when set: the path of a ``libmsgrpriv.so`` (for example a
   ``target/release`` or ``target/debug`` build of the crate);
2. otherwise the library bundled in the package directory at install time.

At import ``msgr_version()`` must equal the version the package was built for (the crate
version recorded by setup.py, or, in a source checkout, the ``Cargo.toml`` next to
``python/``); a mismatch raises ``ImportError``.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import re
from pathlib import Path
from typing import Any, Optional

from ._ffi import FUNCTIONS

PACKAGE_DIR = Path(__file__).resolve().parent
_NAMES = ("libmsgrpriv.so", "libmsgrpriv.dylib", "msgrpriv.dll")


def _find_library() -> Path:
    env = os.environ.get("MSGRPRIV_LIBRARY")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ImportError(f"msgrpriv: MSGRPRIV_LIBRARY={env!r} is not a file")
        return path.resolve()
    for name in _NAMES:
        path = PACKAGE_DIR / name
        if path.is_file():
            return path
    raise ImportError(
        "msgrpriv: the native library is not bundled in "
        f"{PACKAGE_DIR}; install the package with `pip install ./python` (which builds it "
        "with cargo) or set MSGRPRIV_LIBRARY to a built libmsgrpriv.so"
    )


def _expected_version() -> Optional[str]:
    try:  # written by setup.py at build time
        return str(importlib.import_module("._build_info", __package__).VERSION)
    except ImportError:
        pass
    # A source checkout: python/src/msgrpriv -> the crate's Cargo.toml.
    cargo = PACKAGE_DIR.parent.parent.parent / "Cargo.toml"
    if cargo.is_file():
        m = re.search(
            r'^\[package\][^\[]*?^version\s*=\s*"([^"]+)"',
            cargo.read_text(encoding="utf-8"),
            re.M | re.S,
        )
        if m:
            return m.group(1)
    return None


def _load(path: Path) -> Any:
    lib = ctypes.CDLL(str(path))
    for name, argtypes, restype in FUNCTIONS:
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise ImportError(f"msgrpriv: {path} does not export {name}") from None
        fn.argtypes = list(argtypes)
        fn.restype = restype
    return lib


LIBRARY_PATH: Path = _find_library()
"""The path the library was loaded from."""

lib: Any = _load(LIBRARY_PATH)
"""The ctypes library with every function of the declaration table declared."""

LIBRARY_VERSION: str = lib.msgr_version().decode("ascii")
"""``msgr_version()`` of the loaded library."""

EXPECTED_VERSION: Optional[str] = _expected_version()
"""The version this package was built for."""

if EXPECTED_VERSION is not None and EXPECTED_VERSION != LIBRARY_VERSION:
    raise ImportError(
        f"msgrpriv: {LIBRARY_PATH} is version {LIBRARY_VERSION}, this package expects "
        f"{EXPECTED_VERSION}; rebuild it (pip install ./python) or fix MSGRPRIV_LIBRARY"
    )


def result_text(code: int) -> str:
    """``msgr_result_text(code)``: the library's English text for a result code."""
    return str(lib.msgr_result_text(code).decode("utf-8", "replace"))


def last_error() -> str:
    """``msgr_last_error()``: why the last call that failed on this thread failed
    ("function: detail (CODE)"); "" when none has."""
    return str(lib.msgr_last_error().decode("utf-8", "replace"))
