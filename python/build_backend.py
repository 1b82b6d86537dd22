"""The package's PEP 517 build backend: setuptools' (``setuptools.build_meta``), plus one check.

A wheel bundles the native library, which cargo builds or ``MSGRPRIV_LIBRARY`` names. When
neither is available, the wheel hooks stop with one line saying so before setuptools runs
(a traceback from inside setup.py would bury it). An sdist needs neither: its hooks are
setuptools' own. setup.py makes the same check for a build that does not go through here.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Dict, List, Optional

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  (every hook this module does not wrap)

NO_CARGO = (
    "msgrpriv: building from source needs cargo (https://rustup.rs) or "
    "MSGRPRIV_LIBRARY=path/to/libmsgrpriv.so"
)


def check_library_source() -> None:
    """Exits with :data:`NO_CARGO` unless ``MSGRPRIV_LIBRARY`` is set or cargo is found
    (``CARGO``, default ``cargo``, on the PATH)."""
    if os.environ.get("MSGRPRIV_LIBRARY"):
        return
    if shutil.which(os.environ.get("CARGO") or "cargo") is None:
        raise SystemExit(NO_CARGO)


ConfigSettings = Optional[Dict[str, Any]]


def get_requires_for_build_wheel(config_settings: ConfigSettings = None) -> List[str]:
    check_library_source()
    return list(_setuptools.get_requires_for_build_wheel(config_settings))


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: ConfigSettings = None
) -> str:
    check_library_source()
    return str(_setuptools.prepare_metadata_for_build_wheel(metadata_directory, config_settings))


def build_wheel(
    wheel_directory: str,
    config_settings: ConfigSettings = None,
    metadata_directory: Optional[str] = None,
) -> str:
    check_library_source()
    return str(_setuptools.build_wheel(wheel_directory, config_settings, metadata_directory))


def get_requires_for_build_editable(config_settings: ConfigSettings = None) -> List[str]:
    check_library_source()
    return list(_setuptools.get_requires_for_build_editable(config_settings))


def prepare_metadata_for_build_editable(
    metadata_directory: str, config_settings: ConfigSettings = None
) -> str:
    check_library_source()
    return str(_setuptools.prepare_metadata_for_build_editable(metadata_directory, config_settings))


def build_editable(
    wheel_directory: str,
    config_settings: ConfigSettings = None,
    metadata_directory: Optional[str] = None,
) -> str:
    check_library_source()
    return str(_setuptools.build_editable(wheel_directory, config_settings, metadata_directory))
