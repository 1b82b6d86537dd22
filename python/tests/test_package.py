"""The package itself: the library it loads, the version check, type hints and docstrings."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator, Tuple

import pytest

import msgrpriv
from msgrpriv import aio, codes, enums, errors

PKG = Path(msgrpriv.__file__).resolve().parent


def test_library_location_and_version() -> None:
    env = os.environ.get("MSGRPRIV_LIBRARY")
    if env:
        assert msgrpriv.LIBRARY_PATH == Path(env).resolve()
    else:
        assert msgrpriv.LIBRARY_PATH.parent == PKG
    assert msgrpriv.version() == msgrpriv.LIBRARY_VERSION == msgrpriv.__version__


def test_compute_response_is_md5_of_challenge_and_key() -> None:
    import hashlib

    for ch, key in [("abc", "key"), ("é", "ü"), ("", "k"), ("", ""), ("c" * 256, "k" * 256)]:
        assert msgrpriv.compute_response(ch, key) == hashlib.md5((ch + key).encode()).hexdigest()


def test_installed_package_bundles_the_library() -> None:
    if "site-packages" not in str(PKG):
        pytest.skip("running from a source tree")
    assert (PKG / "libmsgrpriv.so").is_file() or (PKG / "libmsgrpriv.dylib").is_file()
    assert (PKG / "_build_info.py").is_file()
    assert (PKG / "py.typed").is_file()


def test_installed_distribution_carries_the_licence() -> None:
    if "site-packages" not in str(PKG):
        pytest.skip("running from a source tree")
    from importlib import metadata

    dist = metadata.distribution("msgrpriv")
    licences = [f for f in dist.files or [] if f.name == "LICENSE"]
    assert licences, "no LICENSE in the installed distribution's metadata"
    assert "MIT License" in licences[0].read_text(encoding="utf-8")
    assert "the msgrpriv authors" in licences[0].read_text(encoding="utf-8")


def test_py_typed_marker() -> None:
    assert (PKG / "py.typed").is_file()


def run_import(env: dict, pythonpath: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    e = dict(os.environ)
    e.update(env)
    e["PYTHONPATH"] = pythonpath
    return subprocess.run(
        [sys.executable, "-c", "import msgrpriv; print(msgrpriv.version())"],
        env=e, capture_output=True, text=True, timeout=60, cwd="/",
    )


def test_missing_override_library_is_an_import_error() -> None:
    p = run_import({"MSGRPRIV_LIBRARY": "/nonexistent/libmsgrpriv.so"}, str(PKG.parent))
    assert p.returncode != 0
    assert "ImportError" in p.stderr and "MSGRPRIV_LIBRARY" in p.stderr


def test_version_mismatch_is_an_import_error(tmp_path: Path) -> None:
    copy = tmp_path / "msgrpriv"
    shutil.copytree(PKG, copy, ignore=shutil.ignore_patterns("__pycache__", "lib*.so"))
    (copy / "_build_info.py").write_text("VERSION = '9.9.9'\n")
    p = run_import({"MSGRPRIV_LIBRARY": str(msgrpriv.LIBRARY_PATH)}, str(tmp_path))
    assert p.returncode != 0
    assert "expects 9.9.9" in p.stderr, p.stderr
    (copy / "_build_info.py").write_text(f"VERSION = {msgrpriv.LIBRARY_VERSION!r}\n")
    p = run_import({"MSGRPRIV_LIBRARY": str(msgrpriv.LIBRARY_PATH)}, str(tmp_path))
    assert p.returncode == 0 and p.stdout.strip() == msgrpriv.LIBRARY_VERSION, p.stderr


def public_items() -> Iterator[Tuple[str, Any]]:
    seen = set()
    modules = [msgrpriv, aio, codes, enums, errors]
    for mod in modules:
        yield mod.__name__, mod
        names = getattr(mod, "__all__", None) or [n for n in vars(mod) if not n.startswith("_")]
        for name in names:
            obj = getattr(mod, name)
            if isinstance(obj, (int, str, dict, tuple, list, Path)) or inspect.ismodule(obj):
                continue  # data: documented by its module
            if getattr(obj, "__module__", "").split(".")[0] not in ("msgrpriv",):
                continue  # imported from elsewhere (typing, ...)
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            yield f"{mod.__name__}.{name}", obj
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_") or attr in getattr(obj, "__members__", {}):
                        continue
                    if isinstance(member, (staticmethod, classmethod)):
                        member = member.__func__
                    if callable(member) or isinstance(member, property):
                        yield f"{mod.__name__}.{name}.{attr}", member


def test_every_public_name_has_a_docstring() -> None:
    missing = [name for name, obj in public_items() if not (inspect.getdoc(obj) or "").strip()]
    assert missing == []


def test_every_public_function_has_type_hints() -> None:
    unhinted = []
    for name, obj in public_items():
        fn = obj.fget if isinstance(obj, property) else obj
        if inspect.isfunction(fn):
            sig = inspect.signature(fn)
            params = [p for p in sig.parameters.values() if p.name not in ("self", "cls")]
            if any(p.annotation is inspect.Parameter.empty for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)):
                unhinted.append(name)
            elif sig.return_annotation is inspect.Signature.empty and fn.__name__ != "__init__":
                unhinted.append(name)
    assert unhinted == []


def test_the_example_runs() -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "invite_demo.py"
    env = dict(os.environ, PYTHONPATH=str(PKG.parent))
    p = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, timeout=60, cwd="/", env=env)
    assert p.returncode == 0, p.stderr
    assert "alice: got 'pong'" in p.stdout
    assert "bob: session over: SR_SESSION_CANCELLED_REMOTE 'bye'" in p.stdout


def test_ctrl_c_interrupts_an_endless_dispatch() -> None:
    code = (
        "import msgrpriv, signal, threading, os\n"
        "svc = msgrpriv.Service(); c = svc.client('alice@example.com')\n"
        "threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()\n"
        "try:\n"
        "    c.dispatch(); c.dispatch(); print('not interrupted')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(PKG.parent))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, env=env)
    assert p.stdout.strip() == "interrupted", p.stderr


def test_aio_is_reachable_from_a_plain_import() -> None:
    """``import msgrpriv`` alone makes ``msgrpriv.aio`` usable (a fresh interpreter, nothing
    else imported): the documented ``msgrpriv.aio.attach(client)`` works."""
    code = (
        "import sys, asyncio, msgrpriv\n"
        "assert 'msgrpriv.aio' not in sys.modules  # imported on first use\n"
        "async def main():\n"
        "    with msgrpriv.Service() as svc, svc.client('alice@example.com') as c:\n"
        "        async with msgrpriv.aio.attach(c) as ev:\n"
        "            print(type(ev).__name__, ev.client is c)\n"
        "asyncio.run(main())\n"
        "from msgrpriv import aio\n"
        "print(aio is msgrpriv.aio, 'aio' in dir(msgrpriv) or 'aio' in msgrpriv.__all__)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(PKG.parent))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/", env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:2] == ["LoopAttachment True", "True True"], p.stdout
    with pytest.raises(AttributeError, match="no_such_name"):
        msgrpriv.no_such_name  # type: ignore[attr-defined]
