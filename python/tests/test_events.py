"""Every one of the 18 events reaches Python with the right arguments and types; in/out flags;
registration forms (method, decorator, names); order; unadvise; the launcher."""

from __future__ import annotations

import shutil
from typing import Any, Dict, List, Optional, Tuple

import pytest

import msgrpriv
from msgrpriv import Flag, HResult, LockStatus, Registration, Session, SessionManager, SessionState, codes
from helpers import ALICE, APP, APP_ID, APP_KEY, BOB, World

Calls = Dict[str, List[Tuple[Any, ...]]]


def capture_all(obj: Any, specs: Any, calls: Calls) -> List[Registration]:
    """Registers, through the on_<event> methods, a recorder for each event."""
    regs = []
    for spec in specs:
        def cb(*args: Any, _name: str = spec.name) -> None:
            calls.setdefault(_name, []).append(args)
        regs.append(getattr(obj, "on_" + spec.name)(cb))
    return regs


def test_all_manager_events_reach_python() -> None:
    calls: Calls = {}
    with msgrpriv.Service(manual_clock=True) as svc:
        svc.add_app_key(APP_ID, APP_KEY)
        with svc.client(ALICE) as a, svc.client(BOB) as b, a.session_manager() as ma, b.session_manager() as mb:
            regs = capture_all(mb, msgrpriv.MANAGER_EVENTS, calls)
            assert all(isinstance(r, Registration) and r.active for r in regs)
            assert [r.event for r in regs] == [e.name for e in msgrpriv.MANAGER_EVENTS]
            b.pump()
            assert calls.pop("lock_enable") == [(mb, True)]
            assert calls.pop("lock_status_changed") == [(mb, LockStatus.INITIALIZED)]
            assert calls == {}

            mb.request_challenge(99)
            b.pump()
            assert calls.pop("lock_status_changed") == [(mb, LockStatus.PENDING_RESULT)]
            ((m, cookie, challenge),) = calls.pop("lock_challenge")
            assert m is mb and cookie == 99 and isinstance(challenge, str) and len(challenge) == 32
            mb.send_response(APP_ID, msgrpriv.compute_response(challenge, APP_KEY), 99)
            b.pump()
            assert calls.pop("lock_result") == [(mb, 99, True)]
            status = calls.pop("lock_status_changed")
            assert status == [(mb, LockStatus.UNLOCKED)] and type(status[0][1]) is LockStatus

            # unlock alice too, without recording
            ma.on_lock_challenge(lambda m, c, ch: m.send_response(APP_ID, msgrpriv.compute_response(ch, APP_KEY), c))
            ma.request_challenge()
            a.pump()
            a.pump()
            assert ma.lock_status is LockStatus.UNLOCKED

            ma.register_application(APP, "Test App", "http://example.com/app")
            b.pump()
            assert calls.pop("app_registered") == [(mb, APP)]
            s = ma.create_session()
            s.application = APP
            s.invite(BOB, "data ü")
            b.pump()
            ((m, session, data, handled),) = calls.pop("invitation")
            assert m is mb and isinstance(session, Session) and data == "data ü"
            assert isinstance(handled, Flag) and handled.value is False
            assert session.session_id == s.session_id and session.state is SessionState.INVITATION
            s.cancel()
            session.close()
            s.close()
            b.pump()
            a.pump()
            ma.unregister_application(APP.lower())  # either case: stored uppercase
            b.pump()
            assert calls.pop("app_unregistered") == [(mb, APP)]
            b.shutdown()
            b.pump()
            assert calls.pop("app_shutdown") == [(mb,)]
            assert calls.pop("lock_status_changed") == [(mb, LockStatus.NOT_INITIALIZED)]
            assert calls == {}


def test_all_session_events_reach_python(app_world: World) -> None:
    w = app_world
    calls_a: Calls = {}
    calls_b: Calls = {}

    # accepted, ready_to_launch, state_changed, before_app_launch, context_data, send_error,
    # cancelled, termination
    a = w.session()
    capture_all(a, msgrpriv.SESSION_EVENTS, calls_a)
    a.invite(BOB)
    w.pump()
    b = w.received[-1]
    capture_all(b, msgrpriv.SESSION_EVENTS, calls_b)
    assert calls_a.pop("state_changed") == [(a, SessionState.READY)]
    assert calls_a.pop("state_transition") == [(a, SessionState.READY, SessionState.INVITATION)]
    b.accept("ok")
    w.pump()
    assert calls_a.pop("accepted") == [(a, "ok")]
    assert calls_a.pop("ready_to_launch") == [(a,)]
    assert calls_a.pop("state_changed") == [(a, SessionState.INVITATION), (a, SessionState.ACCEPTED)]
    # Both delivered once the inviter is connected: only the transition callback says which
    # state each one led to.
    assert calls_a.pop("state_transition") == [
        (a, SessionState.INVITATION, SessionState.ACCEPTED),
        (a, SessionState.ACCEPTED, SessionState.CONNECTED),
    ]
    ((s, enable),) = calls_b.pop("before_app_launch")
    assert s is b and isinstance(enable, Flag) and enable.value is True
    assert calls_b.pop("ready_to_launch") == [(b,)]
    assert calls_b.pop("state_changed") == [(b, SessionState.INVITATION), (b, SessionState.ACCEPTED)]
    assert calls_b.pop("state_transition") == [
        (b, SessionState.INVITATION, SessionState.ACCEPTED),
        (b, SessionState.ACCEPTED, SessionState.CONNECTED),
    ]
    b.send_context_data("cd")
    w.pump()
    assert calls_a.pop("context_data") == [(a, "cd")]
    w.svc.set_reachable(BOB, False)
    a.send_context_data("lost")
    w.pump()
    ((s, hr),) = calls_a.pop("send_error")
    assert s is a and type(hr) is HResult and hr == codes.SR_CONTEXT_DATA_SEND_FAILURE
    w.svc.set_reachable(BOB, True)
    b.cancel(codes.SR_SESSION_CANCELLED_REMOTE, "bye")
    w.pump()
    assert calls_a.pop("state_changed") == [(a, SessionState.CONNECTED)]
    assert calls_a.pop("state_transition") == [(a, SessionState.CONNECTED, SessionState.CANCELLED)]
    assert calls_a.pop("cancelled") == [(a, "bye")]
    ((s, hr, data),) = calls_a.pop("termination")
    assert s is a and hr == codes.SR_SESSION_CANCELLED_REMOTE and hr.name == "SR_SESSION_CANCELLED_REMOTE"
    assert data == "bye"
    assert calls_b.pop("state_changed") == [(b, SessionState.CONNECTED)]
    assert calls_b.pop("state_transition") == [(b, SessionState.CONNECTED, SessionState.CANCELLED)]
    assert calls_b.pop("termination") == [(b, codes.SR_SESSION_CANCELLED_LOCAL, "bye")]
    assert calls_a == {} and calls_b == {}

    # declined (with NULL data) and app_not_present
    a2, b2 = w.invited()
    capture_all(a2, msgrpriv.SESSION_EVENTS, calls_a)
    b2.decline()
    w.pump()
    assert calls_a.pop("declined") == [(a2, None)]
    assert calls_a.pop("termination") == [(a2, codes.SR_INVITATION_DECLINED, None)]
    calls_a.clear()
    a3, b3 = w.invited()
    capture_all(b3, msgrpriv.SESSION_EVENTS, calls_b)
    w.mb.unregister_application(APP)
    w.pump()
    b3.accept()
    w.pump()
    assert calls_b.pop("app_not_present") == [(b3, "Test App", "http://example.com/app")]
    assert calls_b.pop("termination") == [(b3, codes.SR_APP_NOT_REGISTERED, None)]


def test_invitation_handled_flag_by_attribute_and_by_return(app_world: World) -> None:
    w = app_world
    seen: List[bool] = []
    # World's own handler (registered first) sets handled; later ones see it.
    w.mb.on_invitation(lambda m, s, d, h: seen.append(h.value))
    w.mb.on_invitation(lambda m, s, d, h: False)  # a bool return sets the flag
    w.mb.on_invitation(lambda m, s, d, h: seen.append(h.value))
    w.mb.on_invitation(lambda m, s, d, h: "ignored")  # not a bool: ignored
    w.mb.on_invitation(lambda m, s, d, h: seen.append(h.value))
    w.invited()
    assert seen == [True, False, False]


def test_before_app_launch_veto_by_return(app_world: World) -> None:
    w = app_world
    launched: List[Tuple[str, str, str]] = []
    w.b.set_launcher(lambda path, sid, guid: launched.append((path, sid, guid)) or 4242)
    w.ma.unregister_application(APP)
    w.register_app(shutil.which("true") or "/bin/true")
    a, b = w.invited()
    b.on_before_app_launch(lambda s, enable: False)
    b.accept()
    w.pump()
    assert launched == []
    assert b.state is SessionState.CONNECTED
    a2, b2 = w.invited()
    b2.accept()
    w.pump()
    assert launched == [(shutil.which("true") or "/bin/true", b2.session_id, APP)]
    found = w.mb.launching_session(4242)
    assert found is b2  # the same Python object while it is alive
    with pytest.raises(msgrpriv.GenericError):
        w.ma.launching_session(4242)
    w.b.set_launcher(None)


def test_launcher_failures(app_world: World) -> None:
    w = app_world
    w.ma.unregister_application(APP)
    w.register_app(shutil.which("true") or "/bin/true")

    def refuse(path: str, sid: str, guid: str) -> int:
        raise msgrpriv.GenericError(codes.E_NOTIMPL)

    w.b.set_launcher(refuse)
    a, b = w.invited()
    b.accept()
    w.pump()  # a MsgrError from the launcher is a deliberate refusal: not re-raised
    assert w.side("B") == [
        "B:StateChanged(INVITATION)@ACCEPTED",
        "B:BeforeAppLaunch(True)@ACCEPTED",
        "B:StateChanged(ACCEPTED)@TERMINATED",
        "B:Termination(SR_APPLICATION_LAUNCH_FAILED,NULL)@TERMINATED",
    ]
    assert w.side("A")[-1] == "A:Termination(SR_APPLICATION_LAUNCH_FAILED,NULL)@TERMINATED"
    w.take()

    def broken(path: str, sid: str, guid: str) -> int:
        raise RuntimeError("launcher bug")

    w.b.set_launcher(broken)
    a, b = w.invited()
    b.accept()
    with pytest.raises(RuntimeError, match="launcher bug"):
        w.pump()
    w.pump()
    assert w.side("B")[-1] == "B:Termination(SR_APPLICATION_LAUNCH_FAILED,NULL)@TERMINATED"
    with pytest.raises(TypeError):
        w.b.set_launcher(42)  # type: ignore[arg-type]


def test_default_launcher_starts_the_program(app_world: World) -> None:
    true = shutil.which("true")
    if true is None:
        pytest.skip("no true(1)")
    w = app_world
    w.ma.unregister_application(APP)
    w.register_app(true)
    a, b = w.invited()
    b.accept()
    w.pump()
    assert b.state is SessionState.CONNECTED
    assert not any("LAUNCH_FAILED" in line for line in w.take())


def test_decorator_and_event_names(app_world: World) -> None:
    w = app_world
    got: List[str] = []

    @w.ma.on("app_registered")
    def one(m: SessionManager, guid: str) -> None:
        got.append("one")

    @w.ma.on("on_app_registered")
    def two(m: SessionManager, guid: str) -> None:
        got.append("two")

    @w.ma.on("OnAppRegistered")
    def three(m: SessionManager, guid: str) -> None:
        got.append("three")

    assert isinstance(one, Registration) and one.event == "app_registered"
    one(w.ma, APP)  # a registration calls its function
    assert got == ["one"]
    got.clear()
    w.ma.register_application("{22222222-2222-3333-4444-555555555555}", "x", "y")
    w.pump()
    assert got == ["one", "two", "three"]  # registration order
    two.close()
    assert not two.active and one.active
    two.close()  # idempotent
    got.clear()
    w.ma.unregister_application("{22222222-2222-3333-4444-555555555555}")
    w.ma.register_application("{22222222-2222-3333-4444-555555555555}", "x", "y")
    w.pump()
    assert got == ["one", "three"]
    with pytest.raises(ValueError):
        w.ma.on("termination")  # a session event on a manager
    with pytest.raises(ValueError):
        w.session().on("invitation")
    with pytest.raises(TypeError):
        w.ma.on("invitation", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        w.ma.on(7)  # type: ignore[arg-type]


def test_unadvise_from_inside_its_own_callback(app_world: World) -> None:
    w = app_world
    got: List[SessionState] = []
    a = w.session()
    reg: Optional[Registration] = None

    def once(s: Session, prev: SessionState) -> None:
        got.append(prev)
        assert reg is not None
        reg.close()

    reg = a.on_state_changed(once)
    a.invite(BOB)
    w.pump()
    assert reg.active is False
    w.received[-1].accept()
    w.pump()
    assert got == [SessionState.READY]


def test_registration_context_manager(app_world: World) -> None:
    w = app_world
    got: List[str] = []
    with w.ma.on_app_registered(lambda m, g: got.append(g)) as reg:
        w.ma.register_application("{33333333-2222-3333-4444-555555555555}", "x", "y")
        w.pump()
    assert not reg.active
    assert "active" not in repr(reg)
    w.ma.unregister_application("{33333333-2222-3333-4444-555555555555}")
    w.pump()
    assert got == ["{33333333-2222-3333-4444-555555555555}"]


def test_invited_session_kept_from_the_callback_stays_usable(app_world: World) -> None:
    """The session lent to OnInvitation is add_ref'd by the Python wrapper: it outlives the
    callback, and the same object comes back in its session events."""
    w = app_world
    a, b = w.invited()
    assert b.state is SessionState.INVITATION
    assert b.user == ALICE
    seen: List[Session] = []
    b.on_state_changed(lambda s, prev: seen.append(s))
    b.accept()
    w.pump()
    assert seen and all(s is b for s in seen)


def test_a_second_manager_of_the_same_client_gets_the_same_session(app_world: World) -> None:
    w = app_world
    got: List[Session] = []
    with w.b.session_manager() as mb2:
        mb2.on_invitation(lambda m, s, d, h: got.append(s))
        w.b.pump()
        a, b = w.invited()
        assert got == [b] and got[0] is b
