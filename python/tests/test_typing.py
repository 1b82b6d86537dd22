"""Typing that reaches the user: ``mypy --strict`` accepts a script written against the
documented API (tests/typing_check.py) and the package itself, ``reveal_type`` shows the real
types, and enums print their names on every Python version."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

import msgrpriv
from msgrpriv import DispatchMode, LockStatus, SessionFlags, SessionState, Tls, TraceLevel

TESTS = Path(__file__).resolve().parent
SOURCE = TESTS.parent / "src" / "msgrpriv"
PKG = Path(msgrpriv.__file__).resolve().parent


def mypy(*args: str) -> "subprocess.CompletedProcess[str]":
    try:
        import mypy  # noqa: F401
    except ImportError:
        pytest.skip("mypy is not installed in this environment (run-tests.sh installs it: "
                    "pip install mypy)")
    cmd = [sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
           "--cache-dir", str(Path(sys.prefix) / "mypy_cache"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=TESTS)


def revealed(output: str) -> Dict[int, str]:
    """line number -> revealed type, from mypy's notes."""
    out = {}
    for line in output.splitlines():
        head, sep, rest = line.partition(": note: Revealed type is ")
        if sep:
            out[int(head.split(":")[1])] = spelled_as_3_10(rest.strip('"'))
    return out


def spelled_as_3_10(t: str) -> str:
    """A revealed type as mypy spells it for Python 3.10 and later: for older targets it
    writes ``Union[builtins.str, None]`` where newer ones write ``str | None``."""
    t = t.replace("builtins.", "")
    while True:
        u = re.sub(r"Union\[([^\[\]]+), None\]", r"\1 | None", t)
        if u == t:
            return t
        t = u


def reveal_lines(marker: str) -> List[int]:
    lines = (TESTS / "typing_check.py").read_text().splitlines()
    return [i + 1 for i, text in enumerate(lines) if f"reveal_type({marker})" in text]


def test_user_script_passes_mypy_strict_with_real_types() -> None:
    p = mypy("typing_check.py")
    errors = [line for line in p.stdout.splitlines() if ": error:" in line]
    assert errors == [] and p.returncode == 0, p.stdout + p.stderr
    types = revealed(p.stdout)

    def at(expr: str) -> str:
        (line,) = reveal_lines(expr)
        return types[line]

    assert at("svc") == "msgrpriv._objects.Service"
    assert at("alice") == "msgrpriv._objects.Client"
    assert at("ma") == "msgrpriv._objects.SessionManager"
    assert at("manager") == "msgrpriv._objects.SessionManager"  # with ... as manager
    assert at("s") == "msgrpriv._objects.Session"
    assert at("s.state") == "msgrpriv.enums.SessionState"
    assert at("s.flags") == "msgrpriv.enums.SessionFlags"
    assert at("s.remote_address") == "str | None"
    assert at("e.code") == "msgrpriv.codes.HResult"
    assert at("events") == "msgrpriv.aio.LoopAttachment"
    assert at("guid") == "str"  # run_until returns the awaited future's type
    assert at("event") == "msgrpriv.aio.Event"
    assert at("data") == "str | None"  # aio.invite: the acceptance's app data
    # the decorator keeps the decorated function's parameters and result
    assert at("invited") == (
        "msgrpriv._callbacks.Registration[[manager: msgrpriv._objects.SessionManager, "
        "session: msgrpriv._objects.Session, app_data: str | None, "
        "handled: msgrpriv._callbacks.Flag], None]"
    )
    assert "Any" not in " ".join(v for k, v in types.items() if k != reveal_lines("reg")[0])


def test_mypy_strict_flags_misuse(tmp_path: Path) -> None:
    """The types are real enough to catch mistakes: a wrong callback or argument is an error."""
    bad = tmp_path / "typing_bad.py"
    bad.write_text(
        "import msgrpriv\n"
        "with msgrpriv.Service() as svc, svc.client('a@example.com') as c:\n"
        "    m = c.session_manager()\n"
        "    m.on_app_registered(lambda m, guid: guid.no_such_method())\n"
        "    s = m.create_session()\n"
        "    s.invite(42)\n"
        "    @m.on('invitation')\n"
        "    def f(m: msgrpriv.SessionManager) -> int:\n"
        "        return 1\n"
        "    x: str = f(m)\n"
    )
    p = mypy(str(bad))
    errors = [line.split(": error: ")[1] for line in p.stdout.splitlines() if ": error: " in line]
    assert any('"str" has no attribute "no_such_method"' in e for e in errors), p.stdout
    assert any('"invite" of "Session" has incompatible type "int"' in e for e in errors), p.stdout
    assert any('Incompatible types in assignment (expression has type "int"' in e for e in errors), p.stdout


def test_package_passes_mypy_strict() -> None:
    target = SOURCE if SOURCE.is_dir() else PKG
    p = mypy(str(target))
    assert p.returncode == 0, p.stdout + p.stderr


def test_user_script_runs() -> None:
    env = dict(os.environ, PYTHONPATH=str(PKG.parent))
    p = subprocess.run([sys.executable, str(TESTS / "typing_check.py")], capture_output=True,
                       text=True, timeout=60, cwd="/", env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == "CONNECTED ['accepted sure']"
    assert p.stdout.splitlines()[2] == "invitation ok"


def test_context_managers_return_themselves() -> None:
    with msgrpriv.Service() as svc:
        assert type(svc) is msgrpriv.Service
        with svc.client("carol@example.com") as c, c.session_manager() as m, m.create_session() as s:
            assert (type(c), type(m), type(s)) == (msgrpriv.Client, msgrpriv.SessionManager, msgrpriv.Session)


def test_enums_print_their_names() -> None:
    assert str(SessionState.CONNECTED) == "CONNECTED"
    assert str(SessionState.SS_CONNECTED) == "CONNECTED"  # a C alias is the same member
    assert f"{SessionState.READY}" == "READY" and "%s" % SessionState.READY == "READY"
    assert f"{SessionState.READY:>8}" == "   READY"
    assert f"{SessionState.READY:d}" == "1" and f"{SessionState.CONNECTED:02x}" == "04"
    assert repr(SessionState.CONNECTED) == "<SessionState.CONNECTED: 4>"
    assert SessionState.CONNECTED == 4 and int(SessionState.CONNECTED) == 4
    for enum in (SessionState, LockStatus, DispatchMode, TraceLevel, Tls):
        for member in enum:
            assert str(member) == member.name and format(member) == member.name
    assert str(LockStatus.LOCK_UNLOCKED) == "UNLOCKED"
    assert str(SessionFlags.INVITER) == "INVITER"
    assert str(SessionFlags.INVITEE | SessionFlags.APP_INVITE_COMPATIBLE) == "INVITEE|APP_INVITE_COMPATIBLE"
    assert str(SessionFlags(0)) == "NONE" and f"{SessionFlags.INVITEE}" == "INVITEE"
    assert f"{SessionFlags.INVITEE:d}" == "2"
