"""The documented invitation flow end to end, and every row of the session table
(docs/CONTRACT.md, "Event order"), asserting the exact event sequences on both sides."""

from __future__ import annotations

from typing import List, Optional

import msgrpriv
from msgrpriv import Flag, LockStatus, Session, SessionFlags, SessionManager, SessionState, codes
from helpers import ALICE, APP, APP_ID, APP_KEY, BOB, World, record_manager, record_session


def test_documented_invitation_flow_end_to_end() -> None:
    """Two users, Lock and Key unlocked through compute_response, an application registered,
    invite, OnInvitation, accept, context data both ways, cancel."""
    log: List[str] = []
    with msgrpriv.Service(manual_clock=True) as svc:
        svc.add_app_key(APP_ID, APP_KEY)
        alice, bob = svc.client(ALICE), svc.client(BOB)
        ma, mb = alice.session_manager(), bob.session_manager()
        record_manager(ma, "MA", log)
        record_manager(mb, "MB", log)

        def pump() -> None:
            while alice.dispatch(0) + bob.dispatch(0):
                pass

        # Lock and Key: each manager answers its own challenge.
        def answer(m: SessionManager, cookie: int, challenge: str) -> None:
            assert len(challenge) > 0
            m.send_response(APP_ID, msgrpriv.compute_response(challenge, APP_KEY), cookie)

        ma.on_lock_challenge(answer)
        mb.on_lock_challenge(answer)
        pump()
        assert log == [
            "MA:LockEnable(True)", "MA:LockStatusChanged(INITIALIZED)",
            "MB:LockEnable(True)", "MB:LockStatusChanged(INITIALIZED)",
        ]
        log.clear()
        assert ma.request_challenge(42) == 42
        assert mb.request_challenge(-7) == -7
        pump()
        assert [line for line in log if line.startswith("MA:")] == [
            "MA:LockStatusChanged(PENDING_RESULT)", "MA:LockChallenge(42)",
            "MA:LockResult(42,True)", "MA:LockStatusChanged(UNLOCKED)",
        ]
        assert [line for line in log if line.startswith("MB:")] == [
            "MB:LockStatusChanged(PENDING_RESULT)", "MB:LockChallenge(-7)",
            "MB:LockResult(-7,True)", "MB:LockStatusChanged(UNLOCKED)",
        ]
        assert ma.lock_status is LockStatus.UNLOCKED and mb.lock_status is LockStatus.UNLOCKED
        log.clear()

        # The application, registered once in the shared registry.
        ma.register_application(APP, "Test App", "http://example.com/app")
        pump()
        assert log == [f"MA:AppRegistered({APP})", f"MB:AppRegistered({APP})"]
        assert ma.applications == [msgrpriv.Application(APP, "Test App", "http://example.com/app", None)]
        log.clear()

        # Bob keeps every invitation and records its session.
        received: List[Session] = []

        @mb.on("invitation")
        def keep(m: SessionManager, s: Session, data: Optional[str], handled: Flag) -> bool:
            record_session(s, "B", log)
            received.append(s)
            return True  # handled

        # Invite.
        a = ma.create_session()
        assert a.state is SessionState.READY and a.flags == SessionFlags.INVITER
        record_session(a, "A", log)
        a.application = APP
        a.local_address = "10.0.0.1:4000"
        a.invite(BOB, "hello")
        assert a.state is SessionState.INVITATION
        pump()
        assert log == ["A:StateChanged(READY)@INVITATION", 'MB:Invitation("hello")']
        log.clear()
        (b,) = received
        assert b.session_id == a.session_id
        assert b.flags == SessionFlags.INVITEE and b.state is SessionState.INVITATION
        assert b.application == APP and b.application_name == "Test App"
        assert b.application_url == "http://example.com/app"
        assert b.context_data == "hello" and b.user == ALICE and a.user == BOB
        assert a.remote_address is None and b.remote_address is None

        # Accept.
        b.local_address = "10.0.0.2:5000"
        b.accept("yes")
        pump()
        assert [line for line in log if line.startswith("A:")] == [
            "A:StateChanged(INVITATION)@CONNECTED",
            'A:Accepted("yes")@CONNECTED',
            "A:ReadyToLaunch@CONNECTED",
            "A:StateChanged(ACCEPTED)@CONNECTED",
        ]
        assert [line for line in log if line.startswith("B:")] == [
            "B:StateChanged(INVITATION)@ACCEPTED",
            "B:BeforeAppLaunch(True)@ACCEPTED",
            "B:ReadyToLaunch@CONNECTED",
            "B:StateChanged(ACCEPTED)@CONNECTED",
        ]
        assert a.remote_address == "10.0.0.2:5000"
        assert b.remote_address == "10.0.0.1:4000"
        assert a.context_data == "yes"
        log.clear()

        # Context data both ways.
        a.send_context_data("from alice")
        b.send_context_data("from bob")
        pump()
        assert [line for line in log if line.startswith("A:")] == ["A:ContextData(from bob)@CONNECTED"]
        assert [line for line in log if line.startswith("B:")] == ["B:ContextData(from alice)@CONNECTED"]
        assert a.context_data == "from bob" and b.context_data == "from alice"
        log.clear()

        # Cancel.
        a.cancel(codes.SR_SESSION_CANCELLED_REMOTE, "bye")
        pump()
        assert [line for line in log if line.startswith("A:")] == [
            "A:StateChanged(CONNECTED)@CANCELLED",
            'A:Termination(SR_SESSION_CANCELLED_LOCAL,"bye")@CANCELLED',
        ]
        assert [line for line in log if line.startswith("B:")] == [
            "B:StateChanged(CONNECTED)@CANCELLED",
            'B:Cancelled("bye")@CANCELLED',
            'B:Termination(SR_SESSION_CANCELLED_REMOTE,"bye")@CANCELLED',
        ]
        assert not [line for line in log if line.startswith("M")]
        for obj in (a, b, ma, mb, alice, bob):
            obj.close()


def test_invite(app_world: World) -> None:
    w = app_world
    s = w.session()
    s.invite(BOB, "hello")
    w.pump()
    assert w.side("A") == ["A:StateChanged(READY)@INVITATION"]
    assert w.side("B") == ['B:Invitation("hello")']


def test_accept_with_app_not_registered_at_invitee(app_world: World) -> None:
    w = app_world
    a, b = w.invited()
    w.mb.unregister_application(APP)
    w.pump()
    w.take()
    b.accept("yes")
    w.pump()
    assert w.side("A") == [
        "A:StateChanged(INVITATION)@DECLINED",
        "A:Declined(NULL)@DECLINED",
        "A:Termination(SR_APP_NOT_REGISTERED,NULL)@DECLINED",
    ]
    assert w.side("B") == [
        "B:AppNotPresent(Test App,http://example.com/app)@DECLINED",
        "B:StateChanged(INVITATION)@DECLINED",
        "B:Termination(SR_APP_NOT_REGISTERED,NULL)@DECLINED",
    ]


def test_decline(app_world: World) -> None:
    w = app_world
    a, b = w.invited()
    b.decline("busy")
    w.pump()
    assert w.side("A") == [
        "A:StateChanged(INVITATION)@DECLINED",
        'A:Declined("busy")@DECLINED',
        'A:Termination(SR_INVITATION_DECLINED,"busy")@DECLINED',
    ]
    assert w.side("B") == [
        "B:StateChanged(INVITATION)@DECLINED",
        'B:Termination(SR_INVITATION_DECLINED,"busy")@DECLINED',
    ]
    assert a.state.terminal and b.state is SessionState.DECLINED


def test_cancel_by_inviter_during_invitation(app_world: World) -> None:
    w = app_world
    a, b = w.invited()
    a.cancel(codes.E_FAIL)
    w.pump()
    assert w.side("A") == [
        "A:StateChanged(INVITATION)@CANCELLED",
        "A:Termination(SR_SESSION_CANCELLED_LOCAL,NULL)@CANCELLED",
    ]
    assert w.side("B") == [
        "B:StateChanged(INVITATION)@CANCELLED",
        "B:Cancelled(NULL)@CANCELLED",
        "B:Termination(E_FAIL,NULL)@CANCELLED",
    ]


def test_cancel_once_connected_by_the_invitee(app_world: World) -> None:
    w = app_world
    a, b = w.connected()
    b.cancel(0x80004005, "done")  # the unsigned spelling of E_FAIL
    w.pump()
    assert w.side("B") == [
        "B:StateChanged(CONNECTED)@CANCELLED",
        'B:Termination(SR_SESSION_CANCELLED_LOCAL,"done")@CANCELLED',
    ]
    assert w.side("A") == [
        "A:StateChanged(CONNECTED)@CANCELLED",
        'A:Cancelled("done")@CANCELLED',
        'A:Termination(E_FAIL,"done")@CANCELLED',
    ]


def test_cancel_in_ready(app_world: World) -> None:
    w = app_world
    s = w.session()
    s.cancel()
    w.pump()
    assert w.take() == [
        "A:StateChanged(READY)@CANCELLED",
        "A:Termination(SR_CANCEL_BEFORE_CONNECT,NULL)@CANCELLED",
    ]


def test_no_answer_within_the_invitation_timeout(app_world: World) -> None:
    w = app_world
    a, b = w.invited()
    w.svc.advance_time(119.999)
    w.pump()
    assert w.take() == []
    w.svc.advance_time(0.001)
    w.pump()
    for tag in "AB":
        assert w.side(tag) == [
            f"{tag}:StateChanged(INVITATION)@TERMINATED",
            f"{tag}:Termination(SR_SESSION_TIMEOUT,NULL)@TERMINATED",
        ]


def test_the_other_client_signs_out(app_world: World) -> None:
    w = app_world
    a, b = w.connected()
    w.b.sign_out()
    w.pump()
    for tag in "AB":
        assert w.side(tag) == [
            f"{tag}:StateChanged(CONNECTED)@TERMINATED",
            f"{tag}:Termination(SR_CONNECTION_FAILURE,NULL)@TERMINATED",
        ]


def test_a_message_cannot_be_delivered(app_world: World) -> None:
    w = app_world
    a, b = w.connected()
    assert w.svc.set_reachable(BOB, False) is True
    assert w.svc.set_reachable("nobody@example.com", False) is False
    a.send_context_data("lost")
    w.pump()
    assert w.take() == ["A:SendError(SR_CONTEXT_DATA_SEND_FAILURE)@CONNECTED"]


def test_context_data_limits(app_world: World) -> None:
    w = app_world
    a, b = w.connected()
    a.send_context_data("é" * 300)
    for i in range(4):
        a.send_context_data(str(i))
    try:
        a.send_context_data("sixth")
    except msgrpriv.SessionError as e:
        assert e.name == "SR_CONTEXT_DATA_OVER_LIMIT"
    else:
        raise AssertionError("the sixth send was accepted")
    w.pump()
    assert w.side("B")[0] == f"B:ContextData({'é' * 300})@CONNECTED"
    assert len(w.side("B")) == 5

