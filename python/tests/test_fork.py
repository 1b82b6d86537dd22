"""fork() while thread-mode clients are busy (multiprocessing's 'fork' start method): in each
child, the inherited objects raise MSGR_E_SERVER_SHUTDOWN and close without error or panic,
and new objects (thread mode, event descriptor, the registry file) work fully."""

from __future__ import annotations

import multiprocessing
import os
import select
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, List, Optional

import pytest

import msgrpriv
from msgrpriv import DispatchMode, Flag, MessengerError, Session, SessionManager, SessionState, codes

THREAD = DispatchMode.THREAD
ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"
STABLE = "{F0F0F0F0-0000-4000-8000-0000000000A1}"
CHURN = "{F0F0F0F0-0000-4000-8000-0000000000A2}"
CHILDREN = 10

pytestmark = [
    pytest.mark.skipif(
        "fork" not in multiprocessing.get_all_start_methods(), reason="no fork start method"
    ),
    # Python 3.12 warns about fork() in a process with threads: that is the point here.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded"),
]


def wait_for(cond: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def expect_inherited(fn: Any) -> None:
    try:
        fn()
    except MessengerError as e:
        assert e.code == codes.MSGR_E_SERVER_SHUTDOWN, e
    else:
        raise AssertionError(f"{fn} did not raise")


def child_work(index: int, inherited: List[Any], registry: str) -> None:
    svc, alice, bob, ma, kept = inherited
    # Inherited objects: the documented code, then close() without error.
    expect_inherited(lambda: svc.add_app_key("app", "key"))
    expect_inherited(lambda: alice.sign_out())
    expect_inherited(lambda: bob.session_manager())
    expect_inherited(lambda: ma.create_session())
    expect_inherited(lambda: ma.lock_status)
    expect_inherited(lambda: kept.state)
    for obj in (kept, ma, alice, bob, svc):
        obj.close()

    # New objects: two thread-mode clients and a manual one on the same registry file.
    guid = "{F0F0F0F0-0000-4000-8000-%012d}" % (200 + index)
    registered: List[str] = []
    accepted = threading.Event()
    kept_invitee: List[Session] = []
    with msgrpriv.Service(registry_path=registry) as s2, s2.client(ALICE, THREAD) as a, \
            s2.client(BOB, THREAD) as b, s2.client(CAROL) as c:
        m1, m2, m3 = a.session_manager(), b.session_manager(), c.session_manager()
        m1.on_app_registered(lambda m, g: registered.append(g))
        m3.on_app_registered(lambda m, g: registered.append("manual " + g))

        def invited(m: SessionManager, s: Session, data: Optional[str], handled: Flag) -> None:
            handled.value = True
            kept_invitee.append(s)
            s.accept("yes")

        m2.on_invitation(invited)
        m1.register_application(guid, "child", "http://example.com")
        assert wait_for(lambda: guid in registered, 10), "OnAppRegistered not delivered"
        s = m1.create_session()
        s.on_accepted(lambda s, d: accepted.set())
        s.application = guid
        s.invite(BOB, "hi")
        assert accepted.wait(10), "OnAccepted not delivered"
        assert s.state is SessionState.CONNECTED
        r, _, _ = select.select([c.event_fd()], [], [], 10)
        assert r, "the manual client's descriptor did not become readable"
        assert c.dispatch(0) >= 1
        assert "manual " + guid in registered
        m1.unregister_application(guid)
        a.raise_pending()
        b.raise_pending()
        for x in kept_invitee + [s]:
            x.close()


def child_main(index: int, inherited: List[Any], registry: str, err_path: str) -> None:
    # stderr (a Rust panic message would go there) to a file the parent reads.
    fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)
    os.close(fd)
    status = 0
    try:
        child_work(index, inherited, registry)
    except BaseException:
        os.write(2, ("FAIL in child %d:\n%s" % (index, traceback.format_exc())).encode())
        status = 1
    os._exit(status)


def test_fork_while_thread_mode_clients_are_busy(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    registry = str(tmp_path / "registry.json")
    stop = threading.Event()
    counts = {"invitations": 0, "apps": 0, "errors": 0}
    errors: List[BaseException] = []
    svc = msgrpriv.Service(registry_path=registry)
    alice, bob = svc.client(ALICE, THREAD), svc.client(BOB, THREAD)
    ma, mb = alice.session_manager(), bob.session_manager()

    # The library's threads are kept busy delivering events, with no Python callback on them:
    # CPython 3.11 itself can hang a child forked while a foreign thread enters a ctypes
    # callback (in its own fork handling, before the child runs any code: docs/PYTHON.md).
    ma.register_application(STABLE, "stable", "http://example.com")
    kept = ma.create_session()
    sessions: List[Session] = []  # kept open until the end: no close() in the pump

    def invite_pump() -> None:
        try:
            while not stop.is_set():
                s = ma.create_session()
                s.application = STABLE
                s.invite(BOB, "hi")
                sessions.append(s)
                counts["invitations"] += 1
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def registry_pump() -> None:
        try:
            while not stop.is_set():
                mb.register_application(CHURN, "churn", "http://example.com")
                mb.unregister_application(CHURN)
                counts["apps"] += 2
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    pumps = [threading.Thread(target=invite_pump), threading.Thread(target=registry_pump)]
    for t in pumps:
        t.start()
    procs = []
    try:
        assert wait_for(lambda: counts["invitations"] >= 10 and counts["apps"] >= 4, 10)
        for i in range(CHILDREN):
            err = str(tmp_path / f"child{i}.err")
            before = counts["invitations"]
            p = ctx.Process(target=child_main, args=(i, [svc, alice, bob, ma, kept], registry, err))
            p.start()
            procs.append((p, err))
            wait_for(lambda: counts["invitations"] >= before + 3, 2)
        deadline = time.monotonic() + 30
        for p, _ in procs:
            p.join(max(0.0, deadline - time.monotonic()))
    finally:
        hung = [p for p, _ in procs if p.is_alive()]
        for p in hung:
            p.kill()
            p.join()
        stop.set()
        for t in pumps:
            t.join()
    assert not errors, errors
    problems = []
    for i, (p, err) in enumerate(procs):
        text = Path(err).read_text(errors="replace") if os.path.exists(err) else ""
        if p in hung:
            problems.append(f"child {i} hung (killed after 30 s); stderr: {text}")
        elif p.exitcode != 0 or "panicked" in text:
            problems.append(f"child {i} exit code {p.exitcode}; stderr: {text}")
    assert not problems, "\n".join(problems)
    # The parent is unaffected: the registry is not left locked by a child.
    ma.register_application(CHURN, "after", "http://example.com")
    ma.unregister_application(CHURN)
    for s in sessions:
        s.close()
    for obj in (kept, ma, mb, alice, bob, svc):
        obj.close()
    alice.raise_pending()
    bob.raise_pending()
