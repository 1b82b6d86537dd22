"""Thread mode: a thread owned by each client delivers its events; exceptions raised there are
kept on the client; Python threads may register, unregister and close concurrently."""

from __future__ import annotations

import threading
import time
from typing import Any, List, Optional

import pytest

import msgrpriv
from msgrpriv import DispatchMode, Flag, Session, SessionManager, SessionState
from helpers import ALICE, APP, BOB

THREAD = DispatchMode.THREAD


def wait_for(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.002)


def test_invitation_flow_in_thread_mode() -> None:
    main = threading.get_ident()
    threads: List[int] = []
    done = threading.Event()
    log: List[str] = []
    with msgrpriv.Service() as svc, svc.client(ALICE, THREAD) as a, svc.client(BOB, THREAD) as b:
        ma, mb = a.session_manager(), b.session_manager()
        kept: List[Session] = []

        def invited(m: SessionManager, s: Session, data: Optional[str], handled: Flag) -> bool:
            threads.append(threading.get_ident())
            kept.append(s)
            s.on_context_data(lambda s, d: log.append(f"B got {d}"))
            s.on_termination(lambda s, hr, d: (log.append(f"B end {hr}"), done.set()))
            s.accept("yes")
            return True

        mb.on_invitation(invited)
        ma.register_application(APP, "n", "u")
        s = ma.create_session()
        s.application = APP
        s.on_accepted(lambda s, d: (threads.append(threading.get_ident()), s.send_context_data("hi")))
        s.invite(BOB)
        wait_for(lambda: "B got hi" in log)
        s.cancel()
        assert done.wait(10)
        assert log == ["B got hi", "B end SR_SESSION_CANCELLED_REMOTE"]
        assert threads and main not in threads
        assert s.state is SessionState.CANCELLED
        for o in kept + [s, ma, mb]:
            o.close()


def test_thread_mode_exceptions_are_kept_for_the_client() -> None:
    with msgrpriv.Service() as svc:
        c = svc.client(ALICE, THREAD)
        m = c.session_manager()
        ran = threading.Event()

        def bad(m: SessionManager, guid: str) -> None:
            ran.set()
            raise LookupError(guid)

        reg = m.on_app_registered(bad)
        m.register_application(APP, "n", "u")
        assert ran.wait(10)
        wait_for(lambda: c.pending_exceptions)
        assert isinstance(c.pending_exceptions[0], LookupError)
        with pytest.raises(LookupError):
            c.raise_pending()
        c.raise_pending()  # once only

        # the next method call of the client raises it, and so does leaving a with block
        reg.close()
        m.unregister_application(APP)
        g2 = APP.replace("1", "9")  # (the unregistration of APP may still be in flight)
        m.on_app_unregistered(lambda m, g: 1 / 0 if g == g2 else None)
        m.register_application(g2, "n", "u")
        m.unregister_application(g2)
        wait_for(lambda: c.pending_exceptions)
        with pytest.raises(ZeroDivisionError):
            with c:
                pass
        assert c.closed
        m.close()


def test_concurrent_registration_closing_and_delivery() -> None:
    base = msgrpriv.live_registrations()
    errors: List[BaseException] = []
    hits = [0]
    with msgrpriv.Service() as svc, svc.client(ALICE, THREAD) as a:
        ma = a.session_manager()
        stop = threading.Event()

        def churn_registrations() -> None:
            try:
                while not stop.is_set():
                    regs = [ma.on_app_registered(lambda *x: hits.__setitem__(0, hits[0] + 1)) for _ in range(20)]
                    for r in regs:
                        r.close()
            except BaseException as e:  # pragma: no cover
                errors.append(e)

        def churn_sessions() -> None:
            try:
                while not stop.is_set():
                    s = ma.create_session()
                    s.on_state_changed(lambda *x: None)
                    s.cancel()
                    s.close()
            except BaseException as e:  # pragma: no cover
                errors.append(e)

        def churn_managers() -> None:
            try:
                while not stop.is_set():
                    m = a.session_manager()
                    m.on_lock_enable(lambda *x: None)
                    m.on_lock_status_changed(lambda *x: None)
                    del m
            except BaseException as e:  # pragma: no cover
                errors.append(e)

        def registry_events() -> None:
            i = 0
            try:
                while not stop.is_set():
                    g = "{%08X-2222-3333-4444-555555555555}" % (i % 50)
                    try:
                        ma.register_application(g, "n", "u")
                    except msgrpriv.SessionError:
                        ma.unregister_application(g)
                    i += 1
            except BaseException as e:  # pragma: no cover
                errors.append(e)

        workers = [threading.Thread(target=t) for t in (churn_registrations, churn_sessions, churn_managers, registry_events)]
        for t in workers:
            t.start()
        time.sleep(1.5)
        stop.set()
        for t in workers:
            t.join(10)
        assert errors == []
        ma.close()
        a.raise_pending()
    assert hits[0] >= 0
    wait_for(lambda: msgrpriv.live_registrations() == base)
