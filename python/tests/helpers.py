"""Shared fixtures for the Python tests: two users on one embedded service, and recorders that
log every event as a readable line, in the format of the Rust core tests
(``"A:StateChanged(INVITATION)@CONNECTED"``: tag, event, arguments, state at delivery)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, List, Optional, Sequence

import msgrpriv
from msgrpriv import Client, Service, Session, SessionManager

APP = "{11111111-2222-3333-4444-555555555555}"
APP_ID = "msgrpriv-test-app"
APP_KEY = "s3cret-key"
ALICE = "alice@example.com"
BOB = "bob@example.com"

REPO = Path(__file__).resolve().parents[2]
HEADER = Path(os.environ.get("MSGRPRIV_HEADER", REPO / "include" / "msgrpriv.h"))
CARGO_TOML = REPO / "Cargo.toml"


def run_python(args: Sequence[str], timeout: float) -> "subprocess.CompletedProcess[str]":
    """Runs ``sys.executable *args`` with the installed package importable and the
    interpreter's default hooks (no pytest in the child); raises subprocess.TimeoutExpired
    (and kills the child) after ``timeout`` seconds."""
    env = dict(os.environ, PYTHONPATH=str(Path(msgrpriv.__file__).resolve().parents[1]))
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def fmt(data: Optional[str]) -> str:
    return "NULL" if data is None else f'"{data}"'


def _state(s: Session) -> str:
    try:
        return s.state.name
    except msgrpriv.MsgrError as e:
        return f"<{e.name}>"


SESSION_LINES = {
    "before_app_launch": lambda s, enable: f"BeforeAppLaunch({enable.value})",
    "accepted": lambda s, d: f"Accepted({fmt(d)})",
    "app_not_present": lambda s, name, url: f"AppNotPresent({name},{url})",
    "cancelled": lambda s, d: f"Cancelled({fmt(d)})",
    "context_data": lambda s, d: f"ContextData({d})",
    "declined": lambda s, d: f"Declined({fmt(d)})",
    "ready_to_launch": lambda s: "ReadyToLaunch",
    "send_error": lambda s, hr: f"SendError({hr.name})",
    "state_changed": lambda s, prev: f"StateChanged({prev.name})",
    "termination": lambda s, hr, d: f"Termination({hr.name},{fmt(d)})",
}

MANAGER_LINES = {
    "app_registered": lambda m, guid: f"AppRegistered({guid})",
    "app_unregistered": lambda m, guid: f"AppUnregistered({guid})",
    "app_shutdown": lambda m: "AppShutdown",
    "invitation": lambda m, s, d, handled: f"Invitation({fmt(d)})",
    "lock_challenge": lambda m, cookie, challenge: f"LockChallenge({cookie})",
    "lock_enable": lambda m, enabled: f"LockEnable({enabled})",
    "lock_result": lambda m, cookie, ok: f"LockResult({cookie},{ok})",
    "lock_status_changed": lambda m, status: f"LockStatusChanged({status.name})",
}


def record_session(s: Session, tag: str, log: List[str]) -> None:
    """Logs every event of ``s`` as ``<tag>:<line>@<state at delivery>``."""
    for name, line in SESSION_LINES.items():

        def cb(session: Session, *args: Any, _line: Any = line) -> None:
            assert session is s
            log.append(f"{tag}:{_line(session, *args)}@{_state(session)}")

        s.on(name, cb)


def record_manager(m: SessionManager, tag: str, log: List[str]) -> None:
    """Logs every event of ``m`` as ``<tag>:<line>``."""
    for name, line in MANAGER_LINES.items():

        def cb(manager: SessionManager, *args: Any, _line: Any = line) -> None:
            assert manager is m
            log.append(f"{tag}:{_line(manager, *args)}")

        m.on(name, cb)


class World:
    """Two users (alice "A", bob "B") on one embedded service with a manual clock.

    Bob's manager accepts responsibility for every invitation, records the new session's
    events as "B" and keeps it in ``received``.
    """

    def __init__(self, keys: bool = False, mode: msgrpriv.DispatchMode = msgrpriv.DispatchMode.MANUAL) -> None:
        self.svc = Service(manual_clock=True)
        if keys:
            self.svc.add_app_key(APP_ID, APP_KEY)
        self.a = Client(self.svc, ALICE, mode)
        self.b = Client(self.svc, BOB, mode)
        self.ma = self.a.session_manager()
        self.mb = self.b.session_manager()
        self.log: List[str] = []
        self.received: List[Session] = []
        self.sessions: List[Session] = []

        @self.mb.on("invitation")
        def invited(m: SessionManager, s: Session, data: Optional[str], handled: msgrpriv.Flag) -> None:
            record_session(s, "B", self.log)
            self.log.append(f"B:Invitation({fmt(data)})")
            handled.value = True
            self.received.append(s)

        if mode == msgrpriv.DispatchMode.MANUAL:
            self.pump()
        self.take()

    def pump(self) -> None:
        """Dispatches both clients until neither has anything left."""
        while self.a.dispatch(0) + self.b.dispatch(0):
            pass

    def take(self) -> List[str]:
        out, self.log[:] = list(self.log), []
        return out

    def side(self, tag: str) -> List[str]:
        return [line for line in self.log if line.startswith(tag + ":")]

    def register_app(self, path: Optional[str] = None) -> None:
        self.ma.register_application(APP, "Test App", "http://example.com/app", path)
        self.pump()
        self.take()

    def session(self) -> Session:
        """A session created by A, recorded as "A", application set."""
        s = self.ma.create_session()
        record_session(s, "A", self.log)
        s.application = APP
        self.sessions.append(s)
        return s

    def invited(self) -> "tuple[Session, Session]":
        s = self.session()
        s.invite(BOB, "hello")
        self.pump()
        self.take()
        return s, self.received[-1]

    def connected(self) -> "tuple[Session, Session]":
        a, b = self.invited()
        b.accept("yes")
        self.pump()
        self.take()
        assert a.state == msgrpriv.SessionState.CONNECTED
        assert b.state == msgrpriv.SessionState.CONNECTED
        return a, b

    def close(self) -> None:
        for s in self.sessions + self.received:
            s.close()
        for obj in (self.ma, self.mb, self.a, self.b, self.svc):
            obj.close()
