"""Bad input from Python gives exceptions, never a crash: wrong types, None, oversize and
malformed strings, out-of-range integers, closed objects, stale and forged handles."""

from __future__ import annotations

from ctypes import byref, c_int, c_size_t, c_uint32, create_string_buffer
from typing import Any, Callable

import pytest

import msgrpriv
from msgrpriv import GenericError, MsgrError, SessionError, codes
from msgrpriv._library import lib
from helpers import ALICE, APP, BOB, World

NOT_STR = [42, 4.2, object(), ["x"], {"x": 1}]


def raises_code(name: str, fn: Callable[[], Any]) -> MsgrError:
    with pytest.raises(MsgrError) as ei:
        fn()
    assert ei.value.name == name, ei.value
    return ei.value


@pytest.mark.parametrize("bad", NOT_STR, ids=lambda v: type(v).__name__)
def test_wrong_types_raise_type_error(app_world: World, bad: Any) -> None:
    w = app_world
    s = w.session()
    for call in (
        lambda: s.invite(bad),
        lambda: s.invite(BOB, bad),
        lambda: s.accept(bad),
        lambda: s.decline(bad),
        lambda: s.send_context_data(bad),
        lambda: setattr(s, "local_address", bad),
        lambda: setattr(s, "application", bad),
        lambda: w.ma.register_application(bad, "n", "u"),
        lambda: w.ma.register_application(APP, bad, "u"),
        lambda: w.ma.unregister_application(bad),
        lambda: w.ma.send_response(bad, "r", 1),
        lambda: w.svc.add_app_key(bad, "k"),
        lambda: w.svc.set_reachable(bad, True),
        lambda: msgrpriv.compute_response(bad, "k"),
        lambda: msgrpriv.Client(w.svc, bad),
    ):
        with pytest.raises(TypeError):
            call()
    if not isinstance(bad, (int, float)):  # an int is a valid hr
        with pytest.raises(TypeError):
            s.cancel(bad)
    for call in (
        lambda: w.ma.request_challenge("1"),
        lambda: w.ma.request_challenge(1.5),
        lambda: w.ma.launching_session("1"),
        lambda: w.svc.advance_time("1"),
        lambda: w.a.dispatch("1"),
        lambda: msgrpriv.Service(invitation_timeout="1"),
        lambda: msgrpriv.Service(0.5),  # every argument is a keyword argument
        lambda: msgrpriv.Service(manual_clock="yes"),
        lambda: msgrpriv.Service(registry_path=42),
        lambda: msgrpriv.Client("not a service", "x@example.com"),  # type: ignore[arg-type]
        lambda: msgrpriv.SessionManager(w.svc),  # type: ignore[arg-type]
        lambda: msgrpriv.Session(),
    ):
        with pytest.raises(TypeError):
            call()


def test_none_where_a_value_is_required(app_world: World) -> None:
    w = app_world
    s = w.session()
    for call in (
        lambda: s.invite(None),
        lambda: s.send_context_data(None),
        lambda: setattr(s, "local_address", None),
        lambda: setattr(s, "application", None),
        lambda: w.ma.register_application(None, "n", "u"),
        lambda: w.ma.unregister_application(None),
        lambda: w.ma.send_response(None, "r", 1),
        lambda: w.ma.send_response("id", None, 1),
        lambda: w.ma.send_response("id", "r", None),
        lambda: w.ma.launching_session(None),
        lambda: msgrpriv.compute_response(None, "k"),
        lambda: msgrpriv.Client(w.svc, None),
        lambda: w.ma.on_invitation(None),
    ):
        with pytest.raises(TypeError):
            call()
    # None is the documented "no data" for app data and path
    s.invite(BOB, None)
    w.pump()
    w.received[-1].accept(None)


def test_oversize_strings(app_world: World) -> None:
    w = app_world
    s = w.session()
    huge = "x" * 10_000_000
    raises_code("E_INVALIDARG", lambda: setattr(s, "local_address", "x" * 31))
    s.local_address = "x" * 30
    assert s.local_address == "x" * 30
    raises_code("E_INVALIDARG", lambda: setattr(s, "local_address", huge))
    raises_code("E_INVALIDARG", lambda: s.invite(BOB, "x" * 513))
    raises_code("E_INVALIDARG", lambda: s.invite(huge))
    raises_code("E_INVALIDARG", lambda: w.ma.register_application("{" + "A" * 100 + "}", "n", "u"))
    raises_code("E_INVALIDARG", lambda: w.ma.register_application(APP.replace("1", "7"), "n" * 257, "u"))
    raises_code("E_INVALIDARG", lambda: w.ma.register_application(APP.replace("1", "7"), "n", "u" * 257))
    raises_code("E_INVALIDARG", lambda: w.ma.register_application(APP.replace("1", "7"), "n", "u", "/" + "p" * 300))
    raises_code("E_INVALIDARG", lambda: w.svc.add_app_key("i" * 257, "k"))
    raises_code("E_INVALIDARG", lambda: msgrpriv.compute_response("c" * 257, "k"))
    raises_code("E_INVALIDARG", lambda: msgrpriv.Client(w.svc, "n" * 257))
    raises_code("E_INVALIDARG", lambda: msgrpriv.Client(w.svc, ""))
    s.invite(BOB, "x" * 512)  # exactly the limit
    w.pump()
    b = w.received[-1]
    raises_code("E_INVALIDARG", lambda: b.accept("y" * 513))
    b.accept("y" * 512)
    w.pump()
    raises_code("SR_CONTEXT_DATA_OVER_LIMIT", lambda: s.send_context_data("x" * 301))
    raises_code("SR_CONTEXT_DATA_OVER_LIMIT", lambda: s.send_context_data(huge))
    # nothing changed by the refused calls
    assert s.state is msgrpriv.SessionState.CONNECTED and s.local_address == "x" * 30


def test_malformed_strings(app_world: World) -> None:
    w = app_world
    s = w.session()
    with pytest.raises(ValueError, match="NUL"):
        s.local_address = "a\0b"
    with pytest.raises(ValueError, match="NUL"):
        s.invite("bob@example.com\0evil")
    with pytest.raises(msgrpriv.InvalidArgument) as ei:  # a ValueError, E_INVALIDARG
        s.local_address = "\udc80"  # a lone surrogate cannot be UTF-8
    assert isinstance(ei.value.__cause__, UnicodeEncodeError)
    raises_code("E_INVALIDARG", lambda: setattr(s, "local_address", b"\xff\xfe"))  # invalid UTF-8
    raises_code("E_INVALIDARG", lambda: s.invite(b"\xc3"))
    raises_code("E_INVALIDARG", lambda: w.ma.register_application(b"{\xff}", "n", "u"))
    s.local_address = "é€😀"
    assert s.local_address == "é€😀"
    s.local_address = b"bytes work"
    assert s.local_address == "bytes work"


def test_out_of_range_integers(app_world: World) -> None:
    w = app_world
    s = w.session()
    for call in (
        lambda: w.ma.request_challenge(2**31),
        lambda: w.ma.request_challenge(-(2**31) - 1),
        lambda: w.ma.send_response("id", "r", 2**40),
        lambda: w.ma.launching_session(2**32),
        lambda: w.ma.launching_session(-1),
        lambda: w.svc.advance_time(2**64),
        lambda: w.svc.advance_time(float("inf")),
        lambda: s.cancel(2**32),
        lambda: msgrpriv.Service(invitation_timeout=2**32 / 1000),
        lambda: w.ma.register_application(APP, "n", "u", None, 2**32),
    ):
        with pytest.raises(OverflowError):
            call()
    with pytest.raises(ValueError):
        w.a.dispatch(-1)
    with pytest.raises(ValueError):
        w.a.dispatch(float("nan"))
    for call in (
        lambda: w.svc.advance_time(-1),
        lambda: w.svc.advance_time(float("nan")),
        lambda: msgrpriv.Service(invitation_timeout=-0.5),
        lambda: msgrpriv.Service(invitation_timeout=0),  # None is the default
    ):
        with pytest.raises(ValueError):
            call()


def test_closed_objects_raise_e_handle(app_world: World) -> None:
    w = app_world
    s = w.session()
    s.close()
    s.close()  # idempotent
    assert s.closed and s.handle is None and "closed" in repr(s)
    for call in (
        lambda: s.state,
        lambda: s.session_id,
        lambda: s.invite(BOB),
        lambda: s.cancel(),
        lambda: s.on_termination(lambda *a: None),
        lambda: setattr(s, "local_address", "x"),
    ):
        e = raises_code("E_HANDLE", call)
        assert isinstance(e, GenericError)
    w.ma.close()
    raises_code("E_HANDLE", lambda: w.ma.create_session())
    raises_code("E_HANDLE", lambda: w.ma.lock_status)
    raises_code("E_HANDLE", lambda: w.ma.on("invitation", lambda *a: None))
    w.a.close()
    raises_code("E_HANDLE", lambda: w.a.dispatch(0))
    raises_code("E_HANDLE", lambda: w.a.session_manager())
    raises_code("E_HANDLE", lambda: w.a.event_fd())
    w.svc.close()
    raises_code("E_HANDLE", lambda: w.svc.client("z@example.com"))
    raises_code("E_HANDLE", lambda: w.svc.add_app_key("a", "b"))
    # a client keeps working after its service handle was destroyed (documented)
    w.b.pump()


def test_objects_outliving_their_parents(app_world: World) -> None:
    w = app_world
    a, b = w.connected()
    w.a.close()  # alice's sessions and manager stay valid handles, as signed out
    w.b.pump()
    assert b.state is msgrpriv.SessionState.TERMINATED
    assert a.state is msgrpriv.SessionState.TERMINATED
    assert w.ma.lock_status is msgrpriv.LockStatus.NOT_INITIALIZED
    with pytest.raises(MsgrError):
        w.ma.create_session()


def test_stale_forged_and_wrong_kind_handles_at_the_c_level(app_world: World) -> None:
    """The library validates every handle: the Python layer may hand it anything."""
    w = app_world
    s = w.session()
    stale = s.handle
    s.close()
    st = c_int()
    assert lib.msgr_session_get_state(stale, byref(st)) == codes.E_HANDLE
    assert lib.msgr_session_release(stale) == codes.E_HANDLE
    assert lib.msgr_session_add_ref(stale) == codes.E_HANDLE
    assert lib.msgr_session_get_state(None, byref(st)) == codes.E_POINTER
    for forged in (1, 8, 0xDEADBEEF, 2**63 + 12345, 2**64 - 1):
        assert lib.msgr_session_get_state(forged, byref(st)) == codes.E_HANDLE
        assert lib.msgr_client_dispatch(forged, 0, byref(c_uint32())) == codes.E_HANDLE
    # a client token passed as a session, a manager token as a client
    assert lib.msgr_session_get_state(w.a.handle, byref(st)) == codes.E_HANDLE
    assert lib.msgr_client_sign_out(w.ma.handle) == codes.E_HANDLE
    # NULL output pointers and short buffers
    s2 = w.session()
    assert lib.msgr_session_get_state(s2.handle, None) == codes.E_POINTER
    needed = c_size_t()
    assert lib.msgr_session_get_session_id(s2.handle, None, 0, byref(needed)) == codes.E_INSUFFICIENT_BUFFER
    assert needed.value == 39
    buf = create_string_buffer(38)
    assert lib.msgr_session_get_session_id(s2.handle, buf, 38, byref(needed)) == codes.E_INSUFFICIENT_BUFFER
    assert buf.raw == b"\0" * 38  # nothing written
    assert lib.msgr_session_get_session_id(s2.handle, buf, 38, None) == codes.E_POINTER
    # the Python wrapper is still fine after all of that
    assert s2.state is msgrpriv.SessionState.READY


def test_errors_do_not_disturb_later_calls(app_world: World) -> None:
    w = app_world
    s = w.session()
    for _ in range(100):
        with pytest.raises(SessionError):
            s.invite(ALICE)
    s.invite(BOB)
    w.pump()
    assert s.state is msgrpriv.SessionState.INVITATION
