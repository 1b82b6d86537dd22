"""One family per mistake: every bad string is a ValueError that carries its HRESULT, a closed
object raises ClosedError (a ValueError, as I/O on a closed file), every exception names the
method that failed, and codes compare as documented."""

from __future__ import annotations

import pickle
from typing import Any, Callable

import pytest

import msgrpriv
from msgrpriv import ClosedError, ContextDataOverLimit, GenericError, InvalidArgument, SessionError, codes
from helpers import APP, BOB, World


def raises(cls: type, fn: Callable[[], Any]) -> Any:
    with pytest.raises(cls) as ei:
        fn()
    return ei.value


def test_every_bad_string_is_a_value_error_with_its_code(app_world: World) -> None:
    w = app_world
    s = w.session()
    bad = [
        (lambda: setattr(s, "local_address", "x" * 31), "Session.local_address"),  # too long
        (lambda: s.invite(BOB, "x" * 513), "Session.invite"),
        (lambda: w.ma.register_application("not-a-guid", "n", "u"), "SessionManager.register_application"),
        (lambda: w.ma.register_application("{" + "A" * 100 + "}", "n", "u"), "SessionManager.register_application"),
        (lambda: setattr(s, "local_address", b"\xff\xfe"), "Session.local_address"),  # invalid UTF-8
        (lambda: s.invite(b"\xc3"), "Session.invite"),
        (lambda: s.invite("bob@example.com\0evil"), "Session.invite"),  # embedded NUL
        (lambda: setattr(s, "local_address", "\udc80"), "Session.local_address"),  # lone surrogate
        (lambda: msgrpriv.Client(w.svc, "n" * 257), "Client()"),
        (lambda: msgrpriv.compute_response("c\0", "k"), "msgrpriv.compute_response"),
        (lambda: w.ma.on("no_such_event", lambda *a: None), "SessionManager.on"),
        (lambda: w.svc.add_app_key("i" * 257, "k"), "Service.add_app_key"),
    ]
    for call, method in bad:
        e = raises(ValueError, call)
        assert type(e) is InvalidArgument and isinstance(e, GenericError), e
        assert e.code == codes.E_INVALIDARG and e.name == "E_INVALIDARG"
        assert e.method == method and str(e).startswith(f"{method}: E_INVALIDARG (0x80070057)"), e
    w.pump()
    b = w.received[-1] if w.received else None
    assert b is None  # nothing was sent
    s.invite(BOB)
    w.pump()
    w.received[-1].accept()
    w.pump()
    e = raises(ValueError, lambda: s.send_context_data("x" * 301))
    assert type(e) is ContextDataOverLimit and isinstance(e, SessionError)
    assert e.name == "SR_CONTEXT_DATA_OVER_LIMIT" and e.method == "Session.send_context_data"
    assert e.detail and e.detail.startswith("msgr_session_send_context_data:")


def test_errors_that_are_not_bad_values_are_no_value_errors(app_world: World) -> None:
    w = app_world
    s = w.session()
    e = raises(SessionError, lambda: s.invite("alice@example.com"))
    assert e.name == "SR_INVITED_SELF" and not isinstance(e, ValueError)
    assert e.method == "Session.invite"
    e = raises(SessionError, lambda: w.ma.register_application(APP, "n", "u"))
    assert e.name == "SR_APP_ALREADY_REGISTERED" and not isinstance(e, ValueError)


def test_closed_objects_raise_closed_error(app_world: World) -> None:
    w = app_world
    s = w.session()
    s.close()
    for call, method in [
        (lambda: s.state, "Session.state"),
        (lambda: s.invite(BOB), "Session.invite"),
        (lambda: s.on_termination(lambda *a: None), "Session.on_termination"),
        (lambda: setattr(s, "local_address", "x"), "Session.local_address"),
    ]:
        e = raises(ClosedError, call)
        assert isinstance(e, ValueError) and isinstance(e, GenericError)
        assert e.code == codes.E_HANDLE and e.method == method
        assert str(e).startswith(f"{method}: E_HANDLE") and "Session is closed" in str(e)
    w.a.close()
    e = raises(ValueError, lambda: w.a.dispatch(0))
    assert type(e) is ClosedError and e.method == "Client.dispatch"


def test_errors_pickle_with_their_method() -> None:
    e = msgrpriv.errors.error_for(codes.E_INVALIDARG, "detail", "Session.invite")
    copy = pickle.loads(pickle.dumps(e))
    assert type(copy) is InvalidArgument and copy.method == "Session.invite" and str(copy) == str(e)
    assert msgrpriv.errors.error_for(codes.E_FAIL).method is None  # made outside the package


def test_codes_compare_as_documented() -> None:
    """Codes are the signed values C returns: they equal the constants and the HResult of the
    documented unsigned value; ``.unsigned`` equals the documented hexadecimal value. An int
    equal to both forms could not hash as both (x == y requires hash(x) == hash(y))."""
    code = msgrpriv.errors.error_for(codes.SR_CONTEXT_DATA_OVER_LIMIT).code
    assert code == codes.SR_CONTEXT_DATA_OVER_LIMIT == msgrpriv.HResult(0x81000611)
    assert code.unsigned == 0x81000611 and code.hex == "0x81000611"
    assert code == -0x7EFFF9EF and code != 0x81000611  # the signed value, as documented
    assert {codes.SR_CONTEXT_DATA_OVER_LIMIT: "x"}[code] == "x"
    assert hash(code) == hash(int(code))
