"""The error mapping: every code's name and family, and real failures of each family."""

from __future__ import annotations

import pickle
from typing import List, Tuple

import pytest

import msgrpriv
from msgrpriv import GenericError, HResult, LockError, MessengerError, MsgrError, SessionError, codes
from msgrpriv.errors import error_class, error_for
from helpers import ALICE, APP, APP_ID, APP_KEY, BOB, World


def expected_class(name: str) -> type:
    if name.startswith("MSGR_E_API_"):
        return LockError
    if name.startswith("SR_"):
        return SessionError
    if name.startswith("MSGR_E_"):
        return MessengerError
    return GenericError


@pytest.mark.parametrize("name", sorted(codes.CODES))
def test_every_code_has_its_name_family_and_text(name: str) -> None:
    code = codes.CODES[name]
    assert code.name == name
    assert msgrpriv.code_name(code) == name
    assert msgrpriv.code_name(code.unsigned) == name
    assert getattr(codes, name) is code
    assert HResult(code.unsigned) == code
    text = msgrpriv.result_text(code)
    assert text and text != "Unknown result code.", name
    if code < 0:
        exc = error_for(code)
        # the family's class, or its own subclass of it for the codes of a bad value
        own = {"E_INVALIDARG": msgrpriv.InvalidArgument, "E_HANDLE": msgrpriv.ClosedError,
               "SR_CONTEXT_DATA_OVER_LIMIT": msgrpriv.ContextDataOverLimit}.get(name)
        assert type(exc) is (own or expected_class(name))
        assert isinstance(exc, expected_class(name))
        assert isinstance(exc, ValueError) == (own is not None)
        assert isinstance(exc, MsgrError)
        assert exc.code == code and exc.name == name and exc.text == text
        assert name in str(exc) and code.hex in str(exc)
    else:
        assert name in ("S_OK", "S_FALSE")


def test_code_values_are_the_documented_ones() -> None:
    assert codes.E_FAIL == HResult(0x80004005) == -0x7FFFBFFB
    assert codes.SR_SESSION_TIMEOUT.hex == "0x81000609"
    assert codes.SR_OLD_SIP_STACK.unsigned == 0x81000624
    assert codes.MSGR_E_API_LOCKED.unsigned == 0x81000752
    assert codes.MSGR_E_NOT_LOGGED_ON.unsigned == 0x8100031E
    assert codes.E_HANDLE.unsigned == 0x80070006
    assert repr(codes.E_FAIL) == "<HResult E_FAIL 0x80004005>"
    assert codes.S_FALSE.succeeded and codes.E_FAIL.failed


def test_unknown_codes() -> None:
    assert msgrpriv.result_text(0x81000699) == "Unknown result code."
    assert HResult(0x81000699).name is None
    assert error_class(0x81000699) is SessionError
    assert error_class(0x810007FF) is LockError
    assert error_class(0x810003FF) is MessengerError
    assert error_class(0x80001234) is GenericError
    e = error_for(0x80001234)
    assert e.name is None and "0x80001234" in str(e)


def test_hresult_rejects_bad_values() -> None:
    with pytest.raises(OverflowError):
        HResult(2**32)
    with pytest.raises(OverflowError):
        HResult(-(2**31) - 1)
    with pytest.raises(TypeError):
        HResult("E_FAIL")  # type: ignore[arg-type]


def test_errors_pickle() -> None:
    e = pickle.loads(pickle.dumps(error_for(codes.SR_INVITED_SELF)))
    assert type(e) is SessionError and e.name == "SR_INVITED_SELF"


# ---- real failures from the library, one or more per family --------------------------------


def test_lock_errors_from_the_library() -> None:
    w = World(keys=True)
    try:
        assert w.ma.lock_status is msgrpriv.LockStatus.INITIALIZED
        with pytest.raises(LockError) as ei:
            w.ma.create_session()
        assert ei.value.code == codes.MSGR_E_API_LOCKED and ei.value.name == "MSGR_E_API_LOCKED"
        with pytest.raises(LockError) as ei:
            w.ma.register_application(APP, "n", "u")
        assert ei.value.name == "MSGR_E_API_LOCKED"
        w.ma.request_challenge(5)
        with pytest.raises(LockError) as ei:
            w.ma.request_challenge(6)
        assert ei.value.name == "MSGR_E_API_PENDING_UNLOCK"
        w.ma.send_response(APP_ID, "0" * 32, 5)  # wrong: fails
        w.pump()
        assert w.ma.lock_status is msgrpriv.LockStatus.UNLOCK_FAILED
        with pytest.raises(LockError) as ei:
            w.ma.request_challenge(7)
        assert ei.value.name == "MSGR_E_API_UNLOCK_FAILED"
        w.a.sign_out()
        with pytest.raises(LockError) as ei:
            w.ma.request_challenge(8)
        assert ei.value.name == "MSGR_E_API_NOTINITIALIZED"
    finally:
        w.close()


def test_lock_disabled(world: World) -> None:
    with pytest.raises(LockError) as ei:
        world.ma.request_challenge()
    assert ei.value.name == "MSGR_E_API_DISABLED"
    with pytest.raises(LockError):
        world.ma.send_response(APP_ID, msgrpriv.compute_response("x", APP_KEY), 1)


def test_session_errors_from_the_library(app_world: World) -> None:
    w = app_world
    s = w.ma.create_session()
    w.sessions.append(s)
    with pytest.raises(SessionError) as ei:
        s.invite(BOB)
    assert ei.value.name == "SR_APP_NOT_SPECIFIED" and ei.value.code == codes.SR_APP_NOT_SPECIFIED
    s.application = APP
    with pytest.raises(SessionError) as ei:
        s.invite(ALICE)
    assert ei.value.name == "SR_INVITED_SELF"
    with pytest.raises(SessionError) as ei:
        s.accept()
    assert ei.value.name == "SR_NOT_INVITEE"
    with pytest.raises(SessionError) as ei:
        s.application = "{99999999-2222-3333-4444-555555555555}"
    assert ei.value.name == "SR_APP_NOT_REGISTERED"
    with pytest.raises(SessionError) as ei:
        w.ma.register_application(APP, "again", "u")
    assert ei.value.name == "SR_APP_ALREADY_REGISTERED"
    with pytest.raises(SessionError) as ei:
        w.ma.unregister_application("{99999999-2222-3333-4444-555555555555}")
    assert ei.value.name == "SR_APP_NOT_REGISTERED"
    a, b = w.invited()
    with pytest.raises(SessionError) as ei:
        a.send_context_data("too early")
    assert ei.value.name == "SR_NOT_VALID_FOR_APP_INVITE"
    b.accept()
    w.pump()
    with pytest.raises(SessionError) as ei:
        a.send_context_data("x" * 301)
    assert ei.value.name == "SR_CONTEXT_DATA_OVER_LIMIT"
    a.cancel()
    w.pump()
    with pytest.raises(SessionError) as ei:
        a.cancel()
    assert ei.value.name == "SR_SESSION_STATE_INVALID"


def test_messenger_errors_from_the_library(app_world: World) -> None:
    w = app_world
    with pytest.raises(MessengerError) as ei:
        msgrpriv.Client(w.svc, ALICE.upper())
    assert ei.value.name == "MSGR_E_ALREADY_LOGGED_ON"
    s = w.session()
    with pytest.raises(MessengerError) as ei:
        s.invite("nobody@example.com")
    assert ei.value.name == "MSGR_E_NOT_LOGGED_ON"
    w.b.sign_out()
    with pytest.raises(MessengerError) as ei:
        w.b.sign_out()
    assert ei.value.name == "MSGR_E_NOT_LOGGED_ON"
    w.b.shutdown()
    with pytest.raises(MessengerError) as ei:
        w.b.sign_in()
    assert ei.value.name == "MSGR_E_SERVER_SHUTDOWN"


def test_generic_errors_from_the_library(app_world: World) -> None:
    w = app_world
    s = w.session()
    with pytest.raises(GenericError) as ei:
        s.local_address = "x" * 31
    assert ei.value.name == "E_INVALIDARG"
    with pytest.raises(GenericError) as ei:
        w.ma.register_application("not-a-guid", "n", "u")
    assert ei.value.name == "E_INVALIDARG"
    with pytest.raises(GenericError) as ei:
        w.ma.launching_session(12345)
    assert ei.value.name == "E_FAIL"
    with pytest.raises(GenericError) as ei:
        w.ma.launching_session(0)
    assert ei.value.name == "E_INVALIDARG"
    with msgrpriv.Service() as real_clock:
        with pytest.raises(GenericError) as ei:
            real_clock.advance_time(0.001)
        assert ei.value.name == "E_ILLEGAL_METHOD_CALL"
    with msgrpriv.Client(w.svc, "carol@example.com", msgrpriv.DispatchMode.THREAD) as t:
        with pytest.raises(GenericError) as ei:
            t.dispatch(0)
        assert ei.value.name == "E_ILLEGAL_METHOD_CALL"
        with pytest.raises(GenericError):
            t.event_fd()
    with pytest.raises(GenericError) as ei:
        w.ma.register_application("{AAAAAAAA-2222-3333-4444-555555555555}", "n", "u", "relative/path")
    assert ei.value.name == "E_INVALIDARG"
    with pytest.raises(GenericError) as ei:
        w.ma.register_application("{AAAAAAAA-2222-3333-4444-555555555555}", "n", "u", "/no/such/file")
    assert ei.value.name == "E_FILE_NOT_FOUND"
    assert ei.value.detail == (
        'msgr_session_manager_register_application: path: "/no/such/file" does not exist'
        " (E_FILE_NOT_FOUND)"
    )
    with pytest.raises(GenericError) as ei:
        w.ma.register_application("{AAAAAAAA-2222-3333-4444-555555555555}", "n", "u", None, 1)
    assert ei.value.name == "E_INVALIDARG"
    assert ei.value.detail == "msgr_session_manager_register_application: flags: 1, must be 0 (E_INVALIDARG)"
    assert "[msgr_session_manager_register_application: flags: 1, must be 0" in str(ei.value)


def test_registry_write_error(tmp_path: "pytest.TempPathFactory") -> None:
    import os

    path = tmp_path / "registry.json"  # type: ignore[operator]
    with msgrpriv.Service(registry_path=path) as svc, svc.client(ALICE) as c, c.session_manager() as m:
        m.register_application(APP, "n", "u")
        assert [a.guid for a in m.applications] == [APP]
        if os.geteuid() == 0:
            return  # root writes anyway
        os.chmod(tmp_path, 0o500)  # type: ignore[arg-type]
        os.chmod(path, 0o400)
        try:
            with pytest.raises(GenericError) as ei:
                m.register_application("{AAAAAAAA-2222-3333-4444-555555555555}", "n", "u")
            assert ei.value.name == "REGDB_E_WRITEREGDB"
        finally:
            os.chmod(tmp_path, 0o700)  # type: ignore[arg-type]
            os.chmod(path, 0o600)


def test_bad_registry_file(tmp_path: "pytest.TempPathFactory") -> None:
    with pytest.raises(GenericError) as ei:
        msgrpriv.Service(registry_path=tmp_path)  # a directory
    assert ei.value.name == "E_FAIL"


def test_trace_tells_what_happens(app_world: World) -> None:
    lines: List[Tuple[msgrpriv.TraceLevel, str]] = []
    msgrpriv.set_trace(msgrpriv.TraceLevel.INFO, lambda level, text: lines.append((level, text)))
    try:
        w = app_world
        s = w.session()
        s.invite(BOB)
        assert (msgrpriv.TraceLevel.INFO, f"{ALICE}: sends Invite of session {s.session_id} to {BOB}") in lines
        assert (msgrpriv.TraceLevel.INFO, f"{BOB}: received Invite of session {s.session_id} from {ALICE}") in lines
        assert not any(level == msgrpriv.TraceLevel.DEBUG for level, _ in lines)
    finally:
        msgrpriv.set_trace(msgrpriv.TraceLevel.OFF)
    n = len(lines)
    w.pump()
    assert len(lines) == n
    with pytest.raises(GenericError) as ei:
        msgrpriv.set_trace(7)
    assert ei.value.name == "E_INVALIDARG"
