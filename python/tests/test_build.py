"""Building the package from source, on a PATH without cargo: a wheel build stops with one
line that says what is missing; the sdist needs no cargo and carries the crate.

Both use the environment's own setuptools (``pip --no-build-isolation``, the backend's hook), so
they need pip, setuptools and wheel in the environment (run-tests.sh and
scripts/python-wheel.sh install them) and no network; they skip, saying so, without them."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Dict

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
ROOT = PYTHON_DIR.parent
NO_CARGO = (
    "msgrpriv: building from source needs cargo (https://rustup.rs) or "
    "MSGRPRIV_LIBRARY=path/to/libmsgrpriv.so"
)


def _need_setuptools() -> None:
    # Looked up, not imported: setuptools replaces distutils when imported, which fails in a
    # process that (through another test) has imported the standard library's.
    missing = [m for m in ("pip", "setuptools", "wheel") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"pip, setuptools and wheel are needed in this environment (no {missing})")


def env_without_cargo() -> Dict[str, str]:
    """The environment with every PATH directory holding cargo or rustc left out, and
    neither CARGO nor MSGRPRIV_LIBRARY set."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CARGO", "RUSTC", "MSGRPRIV_LIBRARY", "MSGRPRIV_CARGO_DIR")}
    dirs = [d for d in env.get("PATH", "").split(os.pathsep)
            if d and not any(os.access(os.path.join(d, t), os.X_OK) for t in ("cargo", "rustc"))]
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), *dirs])
    assert shutil.which("cargo", path=env["PATH"]) is None
    return env


def package_source(dest: Path) -> Path:
    """A copy of python/ without its tests, builds and venvs (and without the crate beside
    it, which a wheel build without cargo must not need)."""
    src = dest / "python"
    shutil.copytree(PYTHON_DIR, src, ignore=shutil.ignore_patterns(
        ".venv", "build", "dist", "tests", "*.egg-info", "__pycache__", "_build_info.py",
        "libmsgrpriv.*"))  # LICENSE, a link, becomes a copy of its target
    return src


def test_wheel_build_without_cargo_is_one_line(tmp_path: Path) -> None:
    _need_setuptools()
    src = package_source(tmp_path)
    p = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
         "--disable-pip-version-check", "--no-index", "-w", str(tmp_path / "out"), str(src)],
        env=env_without_cargo(), capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert NO_CARGO in out, out
    assert "Traceback" not in out, out
    # pip frames the backend's output as "[N lines of output]": ours is that one line.
    assert "[1 lines of output]" in out, out
    assert not list(tmp_path.glob("out/*.whl"))


def test_sdist_without_cargo_carries_the_crate(tmp_path: Path) -> None:
    _need_setuptools()
    src = package_source(tmp_path)
    env = env_without_cargo()
    env["MSGRPRIV_CARGO_DIR"] = str(ROOT)
    code = "import build_backend, sys; print(build_backend.build_sdist(sys.argv[1]))"
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path / "dist")], env=env,
                       capture_output=True, text=True, timeout=120, cwd=src)
    assert p.returncode == 0, p.stderr
    sdist = tmp_path / "dist" / p.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    crate = {"crate/" + n for n in ("Cargo.toml", "Cargo.lock", "build.rs", "cbindgen.toml",
                                    "LICENSE", "src/lib.rs", "src/ffi", "include/msgrpriv.h",
                                    "benches/core.rs", "benches/xmpp.rs")}
    package = {"setup.py", "pyproject.toml", "build_backend.py", "LICENSE", "README.md",
               "src/msgrpriv/__init__.py", "src/msgrpriv/py.typed"}
    assert crate | package <= names, sorted((crate | package) - names)
    assert not any(n.startswith("crate/target") for n in names)
