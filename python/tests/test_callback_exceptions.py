"""An exception raised inside a Python callback is not lost: it is caught in the trampoline and
re-raised from the dispatch call that ran it, after the other events were delivered."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List

import pytest

import msgrpriv
from msgrpriv import Flag, Session, SessionManager, SessionState
from helpers import APP, BOB, World, run_python


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


TWO_RAISE = '''
import sys
from pathlib import Path
import msgrpriv

class Boom(Exception):
    pass

def first_callback(manager, guid):
    raise Boom("first")

def second_callback(manager, guid):
    raise ValueError("second")

{hook}
svc = msgrpriv.Service(manual_clock=True)
alice = svc.client("alice@example.com")
m = alice.session_manager()
alice.pump()
m.on_app_registered(first_callback)
m.on_app_registered(second_callback)
m.register_application("{{44444444-2222-3333-4444-555555555555}}", "x", "y")
print("dispatching", flush=True)
alice.dispatch(0)
print("not reached", flush=True)
'''

CHAINING_HOOK = '''
def chaining_hook(args):
    print("hook got", type(args).__name__, args.exc_type.__name__, file=sys.stderr)
    sys.__unraisablehook__(args)

sys.unraisablehook = chaining_hook
'''


def _two_raise(tmp_path: Path, hook: str) -> "tuple[str, str]":
    """Runs TWO_RAISE in a child; returns (the hook's report, the uncaught traceback)."""
    script = tmp_path / "two_raise.py"
    script.write_text(TWO_RAISE.format(hook=hook))
    proc = run_python([str(script)], timeout=60)
    # dispatch() raised the first exception, uncaught: the interpreter exits with status 1
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == "dispatching\n"
    assert "TypeError" not in proc.stderr, proc.stderr
    report, sep, uncaught = proc.stderr.rpartition("Traceback (most recent call last):\n")
    assert sep, proc.stderr
    return report, sep + uncaught


def _assert_two_raise_output(report: str, uncaught: str, stderr_head: str) -> None:
    # the second exception, through sys.unraisablehook, with its own traceback text
    assert report.startswith(stderr_head + "Further exception in a msgrpriv callback: <Client "), report
    assert "Traceback (most recent call last):\n" in report
    assert ", in second_callback\n" in report and '    raise ValueError("second")\n' in report
    assert report.endswith("ValueError: second\n"), report
    assert "first" not in report
    # the first one, raised by dispatch()
    assert ", in first_callback\n" in uncaught and '    raise Boom("first")\n' in uncaught
    assert uncaught.endswith("Boom: first\n"), uncaught
    assert "second" not in uncaught


def test_several_exceptions_with_the_default_unraisablehook(tmp_path: Path) -> None:
    """The interpreter's own hook accepts what the package hands it: the first exception is
    raised by dispatch(), the second is printed to stderr with its traceback."""
    report, uncaught = _two_raise(tmp_path, hook="")
    _assert_two_raise_output(report, uncaught, "")


def test_several_exceptions_with_a_hook_that_chains_to_the_default(tmp_path: Path) -> None:
    report, uncaught = _two_raise(tmp_path, hook=CHAINING_HOOK)
    _assert_two_raise_output(report, uncaught, "hook got UnraisableHookArgs ValueError\n")


def test_the_unraisablehook_gets_the_interpreters_own_argument_type(app_world: World, monkeypatch: Any) -> None:
    w = app_world
    got: List[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", got.append)
    w.ma.on_app_registered(lambda m, g: (_ for _ in ()).throw(Boom("first")))
    w.ma.on_app_registered(lambda m, g: (_ for _ in ()).throw(ValueError("second")))
    w.ma.register_application("{44444444-2222-3333-4444-555555555555}", "x", "y")
    with pytest.raises(Boom, match="first"):
        w.a.dispatch(0)
    (u,) = got
    assert type(u).__name__ == "UnraisableHookArgs" and type(u).__module__ == "builtins"
    assert u.exc_type is ValueError and str(u.exc_value) == "second"
    assert u.exc_traceback is u.exc_value.__traceback__ and u.exc_traceback is not None
    assert u.err_msg == "Further exception in a msgrpriv callback"
    assert u.object is w.a


def _two_raise_in_process(w: World) -> None:
    def second_callback(m: SessionManager, g: str) -> None:
        raise ValueError("second")

    w.ma.on_app_registered(lambda m, g: (_ for _ in ()).throw(Boom("first")))
    w.ma.on_app_registered(second_callback)
    w.ma.register_application("{44444444-2222-3333-4444-555555555555}", "x", "y")
    with pytest.raises(Boom, match="first"):
        w.a.dispatch(0)


def test_without_the_interpreters_type_the_default_hook_is_written_out(
    app_world: World, monkeypatch: Any, capsys: Any
) -> None:
    """Where UnraisableHookArgs cannot be made, the default hook's report is written to stderr
    in its format instead of handing it an object it rejects."""
    monkeypatch.setattr(msgrpriv._callbacks, "_HookArgs", None)
    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)
    _two_raise_in_process(app_world)
    err = capsys.readouterr().err
    assert err.startswith("Further exception in a msgrpriv callback: <Client 'alice@example.com' manual>\n")
    assert "Traceback (most recent call last):\n" in err and ", in second_callback\n" in err
    assert err.endswith("ValueError: second\n") and "TypeError" not in err


def test_a_failing_hook_loses_nothing(app_world: World, monkeypatch: Any, capsys: Any) -> None:
    def broken_hook(args: Any) -> None:
        raise RuntimeError("the hook broke")

    monkeypatch.setattr(sys, "unraisablehook", broken_hook)
    _two_raise_in_process(app_world)  # dispatch() still raises the first exception
    err = capsys.readouterr().err
    second, _, hook = err.partition("Exception ignored in sys.unraisablehook: ")
    assert second.startswith("Further exception in a msgrpriv callback: <Client ")
    assert second.endswith("ValueError: second\n")
    assert hook.startswith("<function ") and hook.endswith("RuntimeError: the hook broke\n")
