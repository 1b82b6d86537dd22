"""Garbage collection of objects that still have registrations: no crash, the destroy
notifications run, the slab empties, and the C side sees the releases."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import weakref
from ctypes import byref, c_int
from pathlib import Path
from typing import Any, List

import pytest

import msgrpriv
from msgrpriv import Session, SessionManager, SessionState
from helpers import ALICE, APP, BOB, World, run_python


def test_dropping_a_manager_with_registrations_runs_the_destroy_notifications(world: World) -> None:
    base = msgrpriv.live_registrations()
    m = world.a.session_manager()
    for spec in msgrpriv.MANAGER_EVENTS:
        m.on(spec.name, lambda *a: None)
    assert msgrpriv.live_registrations() == base + 8
    handle = m.handle
    del m  # plain reference counting: no gc.collect needed
    assert msgrpriv.live_registrations() == base
    assert msgrpriv._library.lib.msgr_session_manager_release(handle) == msgrpriv.codes.E_HANDLE


def test_reference_cycles_through_callbacks_are_collected(app_world: World) -> None:
    w = app_world
    base = msgrpriv.live_registrations()

    def make() -> "tuple[weakref.ref[SessionManager], weakref.ref[Session]]":
        m = w.a.session_manager()
        m.on_app_registered(lambda mm, g: print(m))  # the callback refers to its owner
        s = m.create_session()
        s.on_termination(lambda ss, hr, d: print(s, m))
        s.local_address = "cycle"
        return weakref.ref(m), weakref.ref(s)

    ref_m, ref_s = make()
    assert ref_m() is not None  # kept by the cycle...
    gc.collect()
    assert ref_m() is None and ref_s() is None  # ...until the collector breaks it
    assert msgrpriv.live_registrations() == base


def test_registration_outlives_its_owner(world: World) -> None:
    m = world.a.session_manager()
    reg = m.on_lock_enable(lambda *a: None)
    m.close()
    assert not reg.active
    reg.close()  # a no-op, no error
    del m
    gc.collect()
    assert "ended" in repr(reg)


def test_an_invitation_session_not_kept_is_released(app_world: World) -> None:
    w = app_world
    refs: List[Any] = []
    base = msgrpriv.live_registrations()

    def look_but_do_not_keep(m: SessionManager, s: Session, d: Any, h: Any) -> None:
        s.on_termination(lambda *a: None)  # ends with the last reference
        refs.append(weakref.ref(s))

    mb2 = w.b.session_manager()  # a second manager of bob's looks at the invitation
    mb2.on_invitation(look_but_do_not_keep)
    w.b.pump()
    a, b = w.invited()
    # World's handler keeps bob's session, so the wrapper is the same one and lives on
    assert refs[0]() is b
    w.received.clear()
    w.take()
    del b
    gc.collect()
    assert refs[0]() is None
    assert msgrpriv.live_registrations() == base + 1 + 10  # mb2's, alice's recorder
    a.cancel()
    w.pump()
    assert w.take() == [
        "A:StateChanged(INVITATION)@CANCELLED",
        "A:Termination(SR_SESSION_CANCELLED_LOCAL,NULL)@CANCELLED",
    ]  # bob's side registrations ended with the release: nothing recorded for B
    mb2.close()


def test_dropping_alice_entirely_ends_her_sessions_for_bob(app_world: World) -> None:
    w = app_world
    a, b = w.connected()
    w.sessions.clear()
    client_ref = weakref.ref(w.a)
    del a
    # the manager keeps the client alive; drop both
    w.ma = None  # type: ignore[assignment]
    w.a = None  # type: ignore[assignment]
    gc.collect()
    assert client_ref() is None
    w.b.pump()
    assert w.take() == [
        "B:StateChanged(CONNECTED)@TERMINATED",
        "B:Termination(SR_CONNECTION_FAILURE,NULL)@TERMINATED",
    ]
    assert b.state is SessionState.TERMINATED
    w.a = msgrpriv.Client(w.svc, ALICE)  # the name is free again
    w.ma = w.a.session_manager()


def test_gc_and_close_from_inside_callbacks(app_world: World) -> None:
    w = app_world
    closed: List[str] = []

    def close_everything(m: SessionManager, guid: str) -> None:
        m.close()  # the manager that fired: deferred by the library until we return
        gc.collect()
        closed.append(guid)

    m = w.a.session_manager()
    m.on_app_registered(close_everything)
    m.on_app_registered(lambda *a: closed.append("after close: dropped"))
    w.ma.register_application(APP.replace("1", "6"), "n", "u")
    w.a.pump()
    assert closed == [APP.replace("1", "6")]
    assert m.closed


def test_a_session_released_in_its_own_callback(app_world: World) -> None:
    w = app_world
    a, b = w.invited()
    seen: List[SessionState] = []

    def release_me(s: Session, prev: SessionState) -> None:
        seen.append(prev)
        s.close()

    a.on_state_changed(release_me)
    b.accept()
    w.pump()
    assert seen == [SessionState.INVITATION] and a.closed
    w.sessions.remove(a)


def test_objects_left_open_at_interpreter_exit() -> None:
    """A program that exits with live objects, registrations and a thread-mode client busy
    delivering events exits cleanly (the atexit hook closes everything first)."""
    code = textwrap.dedent(
        f"""
        import gc, threading, msgrpriv
        svc = msgrpriv.Service()
        a = svc.client({ALICE!r}, msgrpriv.DispatchMode.THREAD)
        b = svc.client({BOB!r})
        ma, mb = a.session_manager(), b.session_manager()
        hits = []
        for spec in msgrpriv.MANAGER_EVENTS:
            ma.on(spec.name, lambda *args: hits.append(args))
            mb.on(spec.name, lambda *args: hits.append(args))
        s = ma.create_session()
        s.on_termination(lambda *args: None)
        cycle = mb.create_session()
        cycle.on_state_changed(lambda *args: print(cycle))
        def storm():
            for i in range(2000):
                try:
                    g = "{{%08X-2222-3333-4444-555555555555}}" % i
                    ma.register_application(g, "n", "u")
                except Exception:
                    return
        threading.Thread(target=storm, daemon=True).start()
        print("bye", flush=True)
        """
    )
    for _ in range(3):
        env = dict(os.environ, PYTHONPATH=str(Path(msgrpriv.__file__).resolve().parents[1]))
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "bye"
        assert "Traceback" not in proc.stderr, proc.stderr


def test_objects_are_freed_by_reference_counting_alone() -> None:
    """No object of the package sits in a reference cycle of its own making: dropping the last
    reference releases the C handle at once, without the cyclic collector."""
    gc.disable()
    try:
        svc = msgrpriv.Service()
        c = svc.client(ALICE)
        m = c.session_manager()
        m.on_lock_enable(lambda *a: None)
        s = m.create_session()
        s.on_termination(lambda *a: None)
        refs = [weakref.ref(o) for o in (svc, c, m, s)]
        handles = [o.handle for o in (svc, c, m, s)]
        del svc, c, m, s
        assert [r() for r in refs] == [None] * 4
        lib = msgrpriv._library.lib
        assert lib.msgr_session_release(handles[3]) == msgrpriv.codes.E_HANDLE
        assert lib.msgr_session_manager_release(handles[2]) == msgrpriv.codes.E_HANDLE
        assert lib.msgr_client_destroy(handles[1]) == msgrpriv.codes.E_HANDLE
        assert lib.msgr_service_destroy(handles[0]) == msgrpriv.codes.E_HANDLE
    finally:
        gc.enable()


COLLECTOR_STRESS = '''
import collections, gc, sys, threading, time
import msgrpriv

gc.set_threshold(1)  # the cyclic collector runs at almost every allocation
duration = float(sys.argv[1])
svc = msgrpriv.Service(manual_clock=True)
errors = []
rounds = [0, 0]

def cycle(c):
    """A manager and a session in a reference cycle through their callbacks."""
    m = c.session_manager()
    m.on_lock_enable(lambda *a: m)
    s = m.create_session()
    s.on_termination(lambda *a: (s, m))
    return m

def worker(i):
    try:
        with svc.client("user%d@example.com" % i) as c:
            c.pump()
            kept = collections.deque(maxlen=16)
            deadline = time.monotonic() + duration
            while time.monotonic() < deadline:
                # cycles kept for a while (the collector moves them to older generations),
                # then left to the collector, which finalizes them wherever it runs
                kept.append(cycle(c))
                # close() while the collector (so other objects' finalizers) may run inside it
                with c.session_manager() as m2:
                    m2.on_app_registered(lambda *a: None)
                    m2.create_session().close()
                c.dispatch(0)
                rounds[i] += 1
            kept.clear()
    except BaseException as e:
        errors.append(repr(e))

threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
gc.collect()
svc.close()
print(min(rounds), msgrpriv.live_registrations(), errors, flush=True)
'''


def test_close_while_the_collector_finalizes_other_objects(tmp_path: Path) -> None:
    """Finalizers of objects in reference cycles run inside close() (gc threshold 1, two
    threads): nothing deadlocks, every round completes and every registration ends."""
    script = tmp_path / "collector_stress.py"
    script.write_text(COLLECTOR_STRESS)
    try:
        proc = run_python([str(script), "3"], timeout=40)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"deadlock: the stress did not finish in {e.timeout} s")
    assert proc.returncode == 0, proc.stderr
    rounds, live, errors = proc.stdout.split(" ", 2)
    assert errors.strip() == "[]"
    assert int(rounds) > 0 and int(live) == 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr


def test_a_close_inside_a_package_lock_releases_when_the_lock_is_left(world: World) -> None:
    """A close() that runs while its thread holds one of the package's locks (a finalizer the
    collector runs there) closes the object at once; the handle is released, and its
    registrations end, when the thread leaves the locked region."""
    lib = msgrpriv._library.lib
    status = c_int()

    base = msgrpriv.live_registrations()

    def cycle() -> "tuple[weakref.ref[SessionManager], int]":
        m = world.a.session_manager()
        m.on_lock_enable(lambda *a: m)
        return weakref.ref(m), m.handle or 0

    ref, h = cycle()
    with msgrpriv._callbacks._lock:
        gc.collect()  # finalizes the manager inside the locked region
        assert ref() is None or ref().closed  # type: ignore[union-attr]
        assert lib.msgr_session_manager_get_lock_status(h, byref(status)) == 0  # not released yet
        assert msgrpriv.live_registrations() == base + 1
    assert msgrpriv.live_registrations() == base
    assert lib.msgr_session_manager_get_lock_status(h, byref(status)) == msgrpriv.codes.E_HANDLE
    assert not msgrpriv._callbacks._deferred

    m = world.a.session_manager()
    h = m.handle or 0
    with msgrpriv._callbacks._lock:
        m.close()  # an explicit close there behaves the same
        assert m.closed and lib.msgr_session_manager_get_lock_status(h, byref(status)) == 0
    assert lib.msgr_session_manager_get_lock_status(h, byref(status)) == msgrpriv.codes.E_HANDLE
