"""One unit of time across the API: seconds (int or float), as asyncio. The millisecond names
are deprecated aliases that warn."""

from __future__ import annotations

from typing import List

import pytest

import msgrpriv
from msgrpriv import Session, codes
from helpers import ALICE, APP, BOB, World


def timeout_after(w: World, seconds_before: float, seconds_after: float) -> List[str]:
    s = w.session()
    s.invite(BOB)
    w.pump()
    w.take()
    ended: List[str] = []
    s.on_termination(lambda s, hr, d: ended.append(str(hr)))
    w.svc.advance_time(seconds_before)
    w.pump()
    before = list(ended)
    w.svc.advance_time(seconds_after)
    w.pump()
    return before + ["|"] + ended


def test_advance_time_in_seconds(app_world: World) -> None:
    # the default invitation timeout is 120 s: 119.999 s is not enough, one more ms is
    assert timeout_after(app_world, 119.999, 0.001) == ["|", "SR_SESSION_TIMEOUT"]


def test_invitation_timeout_in_seconds() -> None:
    with msgrpriv.Service(invitation_timeout=1.5, manual_clock=True) as svc:
        a, b = svc.client(ALICE), svc.client(BOB)
        ma, mb = a.session_manager(), b.session_manager()
        kept: List[Session] = []
        mb.on_invitation(lambda m, s, d, h: kept.append(s))
        ma.register_application(APP, "n", "u")
        s = ma.create_session()
        s.application = APP
        ended: List[str] = []
        s.on_termination(lambda s, hr, d: ended.append(str(hr)))
        s.invite(BOB)
        for seconds, expected in ((1.499, []), (0.001, ["SR_SESSION_TIMEOUT"])):
            svc.advance_time(seconds)
            while a.dispatch(0) + b.dispatch(0):
                pass
            assert ended == expected
        for o in kept + [s, ma, mb, a, b]:
            o.close()


def test_millisecond_names_are_deprecated_aliases(app_world: World) -> None:
    w = app_world
    s = w.session()
    s.invite(BOB)
    w.pump()
    ended: List[str] = []
    s.on_termination(lambda s, hr, d: ended.append(str(hr)))
    with pytest.deprecated_call(match=r"advance_clock\(ms\) is deprecated; use Service.advance_time"):
        w.svc.advance_clock(119_999)
    w.pump()
    assert ended == []
    with pytest.deprecated_call():
        w.svc.advance_clock(1)
    w.pump()
    assert ended == ["SR_SESSION_TIMEOUT"]
    with pytest.deprecated_call(match="invitation_timeout_ms is deprecated; use invitation_timeout"):
        msgrpriv.Service(invitation_timeout_ms=50).close()
    with pytest.deprecated_call(), pytest.raises(TypeError, match="not both"):
        msgrpriv.Service(invitation_timeout=1, invitation_timeout_ms=50)
    with pytest.deprecated_call(), pytest.raises(OverflowError):
        msgrpriv.Service(invitation_timeout_ms=2**32)
    with pytest.deprecated_call(), pytest.raises(OverflowError):
        w.svc.advance_clock(-1)
    for name in ("connect_timeout_ms", "request_timeout_ms"):
        with pytest.deprecated_call(match=f"{name} is deprecated"):
            msgrpriv.Service(**{name: 1000}).close()  # type: ignore[arg-type]


def test_real_clock_timeout_in_seconds(world: World) -> None:
    """A real clock, 50 ms: the invitation times out by itself."""
    import time

    with msgrpriv.Service(invitation_timeout=0.05) as svc, svc.client(ALICE) as a, svc.client(BOB) as b:
        ma, mb = a.session_manager(), b.session_manager()
        kept: List[Session] = []
        mb.on_invitation(lambda m, s, d, h: kept.append(s))
        ma.register_application(APP.replace("1", "9"), "n", "u")
        s = ma.create_session()
        s.application = APP.replace("1", "9")
        ended: List[str] = []
        s.on_termination(lambda s, hr, d: ended.append(str(hr)))
        start = time.monotonic()
        s.invite(BOB)
        while not ended and time.monotonic() - start < 10:
            a.dispatch(0.1)
            b.dispatch(0)
        assert ended == ["SR_SESSION_TIMEOUT"]
        assert time.monotonic() - start >= 0.04
        assert s.state.terminal
        for o in kept + [s, ma, mb]:
            o.close()
    assert codes.SR_SESSION_TIMEOUT.unsigned == 0x81000609
