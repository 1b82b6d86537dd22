"""An exception raised inside a Python callback is not lost: it is caught in the trampoline and
re-raised from the dispatch call that ran it, after the other events were delivered."""

from __future__ import annotations

import sys
from typing import Any, List

import pytest

import msgrpriv
from msgrpriv import Flag, Session, SessionManager, SessionState
from helpers import APP, BOB, World


class Boom(Exception):
    pass


def test_exception_surfaces_from_dispatch(app_world: World) -> None:
    w = app_world
    after: List[str] = []

    def bad(m: SessionManager, guid: str) -> None:
        raise Boom(guid)

    w.ma.on_app_registered(bad)
    w.ma.on_app_registered(lambda m, g: after.append("same event, next callback"))
    w.ma.on_app_unregistered(lambda m, g: after.append("next event"))
    w.ma.register_application("{44444444-2222-3333-4444-555555555555}", "x", "y")
    w.ma.unregister_application("{44444444-2222-3333-4444-555555555555}")
    with pytest.raises(Boom, match="44444444"):
        w.a.dispatch(0)
    # every queued event was still delivered, in order
    assert after == ["same event, next callback", "next event"]
    assert w.a.pending_exceptions == []
    assert w.a.dispatch(0) == 0  # nothing more, nothing re-raised twice


def test_the_traceback_points_into_the_callback(app_world: World) -> None:
    w = app_world

    def deep_bad(m: SessionManager, guid: str) -> None:
        {}["missing"]

    w.ma.on_app_registered(deep_bad)
    w.ma.register_application("{44444444-2222-3333-4444-555555555555}", "x", "y")
    with pytest.raises(KeyError) as ei:
        w.a.pump()
    assert any(tb.name == "deep_bad" for tb in ei.traceback)


def test_several_exceptions_first_raised_others_unraisable(app_world: World, monkeypatch: Any) -> None:
    w = app_world
    unraisable: List[BaseException] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(u.exc_value))
    w.ma.on_app_registered(lambda m, g: (_ for _ in ()).throw(Boom("first")))
    w.ma.on_app_registered(lambda m, g: (_ for _ in ()).throw(ValueError("second")))
    w.ma.register_application("{44444444-2222-3333-4444-555555555555}", "x", "y")
    with pytest.raises(Boom, match="first"):
        w.a.dispatch(0)
    assert [str(e) for e in unraisable] == ["second"]


def test_base_exceptions_surface_too(app_world: World) -> None:
    w = app_world

    def interrupt(m: SessionManager, guid: str) -> None:
        raise KeyboardInterrupt

    w.ma.on_app_registered(interrupt)
    w.ma.register_application("{44444444-2222-3333-4444-555555555555}", "x", "y")
    with pytest.raises(KeyboardInterrupt):
        w.a.dispatch(0)


def test_in_out_flag_is_written_back_even_when_the_callback_raises(app_world: World) -> None:
    w = app_world
    later: List[bool] = []

    def handle_then_fail(m: SessionManager, s: Session, d: Any, handled: Flag) -> None:
        handled.value = False
        raise Boom("after setting the flag")

    w.mb.on_invitation(handle_then_fail)
    w.mb.on_invitation(lambda m, s, d, h: later.append(h.value))
    s = w.session()
    s.invite(BOB)
    w.a.pump()
    with pytest.raises(Boom):
        w.b.dispatch(0)
    assert later == [False]
    # the session the failing callback received is still fine
    assert w.received[-1].state is SessionState.INVITATION


def test_session_callback_exception_and_the_library_keeps_working(app_world: World) -> None:
    w = app_world
    a, b = w.invited()
    a.on_accepted(lambda s, d: 1 / 0)
    b.accept("x")
    w.b.pump()
    with pytest.raises(ZeroDivisionError):
        w.a.dispatch(0)
    assert a.state is SessionState.CONNECTED
    a.send_context_data("still works")
    w.pump()
    assert b.context_data == "still works"


def test_exception_from_a_nested_dispatch(app_world: World) -> None:
    w = app_world
    seen: List[str] = []

    def nested(m: SessionManager, guid: str) -> None:
        seen.append("outer")
        m.unregister_application(guid)
        m.client.dispatch(0)  # delivers app_unregistered, whose callback raises
        seen.append("not reached")

    w.ma.on_app_registered(nested)
    w.ma.on_app_unregistered(lambda m, g: (_ for _ in ()).throw(Boom("inner")))
    w.ma.register_application("{44444444-2222-3333-4444-555555555555}", "x", "y")
    with pytest.raises(Boom, match="inner"):
        w.a.dispatch(0)
    assert seen == ["outer"]


def test_exceptions_without_dispatch_are_kept_for_raise_pending(app_world: World) -> None:
    w = app_world
    w.ma.on_app_registered(lambda m, g: (_ for _ in ()).throw(Boom("kept")))
    w.ma.register_application(APP.replace("1111", "5555"), "x", "y")
    # simulate a thread-mode delivery: dispatch via the low-level call, exception stays stored
    from ctypes import byref, c_uint32

    n = c_uint32()
    msgrpriv._library.lib.msgr_client_dispatch(w.a.handle, 0, byref(n))
    assert n.value == 1 and len(w.a.pending_exceptions) == 1
    with pytest.raises(Boom, match="kept"):
        w.a.sign_out()  # the client's next method call raises it, before doing anything
    w.a.sign_out()  # now it runs
    w.a.raise_pending()  # nothing left
