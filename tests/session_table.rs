//! One test per row of the table in docs/CONTRACT.md ("Event order"), asserting the exact event
//! sequence on both sides (event, then the State property as seen by the callback).

mod common;
use common::*;
use msgrpriv::error::*;
use msgrpriv::*;
use std::time::Duration;

#[test]
fn invite() {
    let w = World::new();
    w.register_app("");
    let s = w.session();
    s.invite("bob@example.com", Some("hello")).unwrap();
    assert_eq!(s.state(), SessionState::Invitation);
    w.pump();
    assert_eq!(w.side("A"), lines(&["A:StateChanged(Ready)@Invitation"]));
    assert_eq!(w.side("B"), lines(&["B:Invitation(\"hello\")"]));
    let r = w.received.lock()[0].clone();
    assert_eq!(r.id(), s.id());
    assert_eq!(r.state(), SessionState::Invitation);
    assert_eq!(r.flags(), session_flags_invitee());
    assert_eq!(s.flags(), 1);
    assert_eq!(r.context_data().as_str(), "hello");
    assert_eq!(r.application().unwrap().as_str(), APP);
    assert_eq!(r.user().unwrap().as_str(), "alice@example.com");
    assert_eq!(s.user().unwrap().as_str(), "bob@example.com");
    assert!(r.invitation_handled());
}

fn session_flags_invitee() -> u32 {
    msgrpriv::types::session_flags::SF_INVITEE
}

#[test]
fn accept_with_app_registered() {
    let w = World::new();
    w.register_app("");
    let (a, b) = w.invited();
    b.set_local_address("10.0.0.2:5000").unwrap();
    a.set_local_address("ignored-after-invite").unwrap();
    b.accept(Some("yes")).unwrap();
    w.pump();
    assert_eq!(
        w.side("A"),
        lines(&[
            "A:StateChanged(Invitation)@Connected",
            "A:Accepted(\"yes\")@Connected",
            "A:ReadyToLaunch@Connected",
            "A:StateChanged(Accepted)@Connected",
        ])
    );
    assert_eq!(
        w.side("B"),
        lines(&[
            "B:StateChanged(Invitation)@Accepted",
            "B:BeforeAppLaunch(true)@Accepted",
            "B:ReadyToLaunch@Connected",
            "B:StateChanged(Accepted)@Connected",
        ])
    );
    assert_eq!(a.remote_address().unwrap().as_str(), "10.0.0.2:5000");
    assert_eq!(b.remote_address().unwrap().as_str(), "");
    assert_eq!(a.context_data().as_str(), "yes");
}

/// Context data the inviter sends while the invitee is still launching (its BeforeAppLaunch
/// not yet delivered) reaches the invitee after it is connected: one order, whatever the
/// timing.
#[test]
fn context_data_sent_while_the_invitee_launches_comes_after_it_connects() {
    let w = World::new();
    w.register_app("");
    let (a, b) = w.invited();
    b.accept(None).unwrap();
    assert_eq!(a.state(), SessionState::Connected);
    assert_eq!(b.state(), SessionState::Accepted);
    a.send_context_data("early").unwrap();
    a.send_context_data("early 2").unwrap();
    assert_eq!(
        b.context_data().as_str(),
        "hello",
        "not yet: the invitee is launching"
    );
    w.pump();
    assert_eq!(
        w.side("B"),
        lines(&[
            "B:StateChanged(Invitation)@Accepted",
            "B:BeforeAppLaunch(true)@Accepted",
            "B:ReadyToLaunch@Connected",
            "B:StateChanged(Accepted)@Connected",
            "B:ContextData(early)@Connected",
            "B:ContextData(early 2)@Connected",
        ])
    );
    assert_eq!(b.context_data().as_str(), "early 2");
}

#[test]
fn accept_with_app_not_registered_at_invitee() {
    let w = World::new();
    w.register_app("");
    let (a, b) = w.invited();
    w.mb.unregister_application(APP).unwrap();
    w.pump();
    w.take();
    b.accept(Some("yes")).unwrap();
    w.pump();
    assert_eq!(
        w.side("A"),
        lines(&[
            "A:StateChanged(Invitation)@Declined",
            "A:Declined(NULL)@Declined",
            "A:Termination(SR_APP_NOT_REGISTERED,NULL)@Declined",
        ])
    );
    assert_eq!(
        w.side("B"),
        lines(&[
            "B:AppNotPresent(Test App,http://example.com/app)@Declined",
            "B:StateChanged(Invitation)@Declined",
            "B:Termination(SR_APP_NOT_REGISTERED,NULL)@Declined",
        ])
    );
    assert_eq!(a.state(), SessionState::Declined);
    assert_eq!(b.state(), SessionState::Declined);
}

#[test]
fn decline() {
    let w = World::new();
    w.register_app("");
    let (a, b) = w.invited();
    b.decline(Some("busy")).unwrap();
    w.pump();
    assert_eq!(
        w.side("A"),
        lines(&[
            "A:StateChanged(Invitation)@Declined",
            "A:Declined(\"busy\")@Declined",
            "A:Termination(SR_INVITATION_DECLINED,\"busy\")@Declined",
        ])
    );
    assert_eq!(
        w.side("B"),
        lines(&[
            "B:StateChanged(Invitation)@Declined",
            "B:Termination(SR_INVITATION_DECLINED,\"busy\")@Declined",
        ])
    );
    assert_eq!(a.state(), SessionState::Declined);
    assert_eq!(w.a.live_sessions() + w.b.live_sessions(), 0);
}

#[test]
fn cancel_by_inviter_during_invitation() {
    let w = World::new();
    w.register_app("");
    let (a, _b) = w.invited();
    a.cancel(SR_SESSION_CANCELLED_REMOTE, Some("bye")).unwrap();
    w.pump();
    assert_eq!(
        w.side("A"),
        lines(&[
            "A:StateChanged(Invitation)@Cancelled",
            "A:Termination(SR_SESSION_CANCELLED_LOCAL,\"bye\")@Cancelled",
        ])
    );
    assert_eq!(
        w.side("B"),
        lines(&[
            "B:StateChanged(Invitation)@Cancelled",
            "B:Cancelled(\"bye\")@Cancelled",
            "B:Termination(SR_SESSION_CANCELLED_REMOTE,\"bye\")@Cancelled",
        ])
    );
}

#[test]
fn cancel_once_connected_by_either_side() {
    for invitee_cancels in [false, true] {
        let w = World::new();
        w.register_app("");
        let (a, b) = w.connected();
        let (me, other, canceller) = if invitee_cancels {
            ("B", "A", &b)
        } else {
            ("A", "B", &a)
        };
        canceller.cancel(E_FAIL, None).unwrap();
        w.pump();
        assert_eq!(
            w.side(me),
            vec![
                format!("{me}:StateChanged(Connected)@Cancelled"),
                format!("{me}:Termination(SR_SESSION_CANCELLED_LOCAL,NULL)@Cancelled"),
            ]
        );
        assert_eq!(
            w.side(other),
            vec![
                format!("{other}:StateChanged(Connected)@Cancelled"),
                format!("{other}:Cancelled(NULL)@Cancelled"),
                format!("{other}:Termination(E_FAIL,NULL)@Cancelled"),
            ]
        );
    }
}

#[test]
fn cancel_in_ready() {
    let w = World::new();
    w.register_app("");
    let s = w.session();
    s.cancel(E_FAIL, None).unwrap();
    w.pump();
    assert_eq!(
        w.take(),
        lines(&[
            "A:StateChanged(Ready)@Cancelled",
            "A:Termination(SR_CANCEL_BEFORE_CONNECT,NULL)@Cancelled",
        ])
    );
    assert_eq!(s.cancel(E_FAIL, None), Err(SR_SESSION_STATE_INVALID));
}

#[test]
fn no_answer_within_the_invitation_timeout() {
    let w = World::new();
    w.register_app("");
    let (a, b) = w.invited();
    w.svc.advance_clock(119_999).unwrap();
    w.pump();
    assert!(w.take().is_empty());
    w.svc.advance_clock(1).unwrap();
    w.pump();
    assert_eq!(
        w.side("A"),
        lines(&[
            "A:StateChanged(Invitation)@Terminated",
            "A:Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
        ])
    );
    assert_eq!(
        w.side("B"),
        lines(&[
            "B:StateChanged(Invitation)@Terminated",
            "B:Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
        ])
    );
    assert_eq!(b.accept(None), Err(SR_SESSION_STATE_INVALID));
    assert_eq!(a.state(), SessionState::Terminated);
    assert_eq!(w.svc.pending_invitations(), 0);
}

#[test]
fn answered_invitation_does_not_time_out() {
    let w = World::new();
    w.register_app("");
    let (_a, _b) = w.connected();
    w.svc.advance_clock(10 * 120_000).unwrap();
    w.pump();
    assert!(w.take().is_empty());
}

#[test]
fn real_clock_timeout() {
    let svc = EmbeddedService::new(ServiceOptions {
        invitation_timeout: Duration::from_millis(50),
        manual_clock: false,
        registry_path: None,
    })
    .unwrap();
    assert_eq!(svc.advance_clock(1), Err(E_ILLEGAL_METHOD_CALL));
    let w = World::with_service(svc);
    w.register_app("");
    let (a, _b) = w.invited();
    let log = wait_for_termination(&w);
    assert_eq!(a.state(), SessionState::Terminated);
    assert!(log.contains(&"A:Termination(SR_SESSION_TIMEOUT,NULL)@Terminated".to_string()));
}

/// Dispatches A on the real clock until its OnTermination was delivered (at most 10 s);
/// returns the events delivered meanwhile. (The state turns terminal before OnTermination is
/// queued: it comes after the step's message was sent, so polling the state is not enough.)
fn wait_for_termination(w: &World) -> Vec<String> {
    let start = std::time::Instant::now();
    let mut log = Vec::new();
    while !log.iter().any(|l: &String| l.starts_with("A:Termination"))
        && start.elapsed() < Duration::from_secs(10)
    {
        w.a.dispatch(Some(Duration::from_millis(5))).unwrap();
        log.extend(w.take());
    }
    log
}

/// The timer thread is woken only when a new timer is due before it would wake anyway: a
/// timer started while it sleeps until an earlier (since removed) deadline, or after it went
/// idle, still fires on time, and not early.
#[test]
fn real_clock_timeouts_after_a_cancel_and_after_idle() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    let svc = EmbeddedService::new(ServiceOptions {
        invitation_timeout: TIMEOUT,
        manual_clock: false,
        registry_path: None,
    })
    .unwrap();
    let w = World::with_service(svc);
    w.register_app("");
    // The thread sleeps until the first invitation's deadline; it is cancelled, and the second
    // invitation's deadline comes after it: no wake-up, the thread finds it when it wakes.
    let (first, _) = w.invited();
    std::thread::sleep(Duration::from_millis(50)); // the timer thread started and sleeps
    first.cancel(S_OK, None).unwrap();
    w.pump();
    w.take();
    std::thread::sleep(Duration::from_millis(100));
    for round in ["after a cancel", "after idle"] {
        let t0 = std::time::Instant::now();
        let (s, _) = w.invited();
        let log = wait_for_termination(&w);
        let took = t0.elapsed();
        assert_eq!(s.state(), SessionState::Terminated, "{round}");
        assert!(
            log.contains(&"A:Termination(SR_SESSION_TIMEOUT,NULL)@Terminated".to_string()),
            "{round}: {log:?}"
        );
        assert!(
            took >= TIMEOUT - Duration::from_millis(10),
            "{round}: fired early, {took:?}"
        );
        assert!(
            took < Duration::from_secs(5),
            "{round}: fired late, {took:?}"
        );
        // No timer left: the thread sleeps for a long while; the next invitation wakes it.
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_other_client_signs_out() {
    for shutdown in [false, true] {
        let w = World::new();
        w.register_app("");
        let (a, b) = w.connected();
        if shutdown {
            w.b.shutdown().unwrap();
        } else {
            w.b.sign_out().unwrap();
        }
        w.pump();
        assert_eq!(
            w.side("A"),
            lines(&[
                "A:StateChanged(Connected)@Terminated",
                "A:Termination(SR_CONNECTION_FAILURE,NULL)@Terminated",
            ])
        );
        assert_eq!(
            w.side("B"),
            lines(&[
                "B:StateChanged(Connected)@Terminated",
                "B:Termination(SR_CONNECTION_FAILURE,NULL)@Terminated",
            ])
        );
        assert_eq!(a.state(), SessionState::Terminated);
        assert_eq!(b.state(), SessionState::Terminated);
    }
}

#[test]
fn a_message_cannot_be_delivered() {
    let w = World::new();
    w.register_app("");
    let (a, _b) = w.connected();
    assert!(w.svc.set_reachable("bob@example.com", false));
    a.send_context_data("lost").unwrap();
    w.pump();
    assert_eq!(
        w.take(),
        lines(&["A:SendError(SR_CONTEXT_DATA_SEND_FAILURE)@Connected"])
    );
    // The invitation itself: it is lost, then the invitation times out on the inviter.
    let s = w.session();
    s.invite("bob@example.com", None).unwrap();
    w.pump();
    assert_eq!(
        w.take(),
        lines(&[
            "A:StateChanged(Ready)@Invitation",
            "A:SendError(SR_INVITATION_SEND_FAILURE)@Invitation",
        ])
    );
    w.svc.advance_clock(120_000).unwrap();
    w.pump();
    assert_eq!(
        w.take(),
        lines(&[
            "A:StateChanged(Invitation)@Terminated",
            "A:Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
        ])
    );
    a.cancel(E_FAIL, None).unwrap();
    w.pump();
    assert_eq!(
        w.take(),
        lines(&[
            "A:StateChanged(Connected)@Cancelled",
            "A:SendError(SR_CANCEL_SEND_FAILURE)@Cancelled",
            "A:Termination(SR_SESSION_CANCELLED_LOCAL,NULL)@Cancelled",
        ])
    );
}

#[test]
fn context_data_both_ways_and_limits() {
    let w = World::new();
    w.register_app("");
    let (a, b) = w.connected();
    a.send_context_data("from a").unwrap();
    b.send_context_data("from b").unwrap();
    w.pump();
    assert_eq!(w.side("A"), lines(&["A:ContextData(from b)@Connected"]));
    assert_eq!(w.side("B"), lines(&["B:ContextData(from a)@Connected"]));
    assert_eq!(a.context_data().as_str(), "from b");
    assert_eq!(b.context_data().as_str(), "from a");
    assert_eq!(
        a.send_context_data(&"x".repeat(301)),
        Err(SR_CONTEXT_DATA_OVER_LIMIT)
    );
    a.send_context_data(&"é".repeat(300)).unwrap();
    for i in 0..3 {
        a.send_context_data(&format!("{i}")).unwrap();
    }
    assert_eq!(
        a.send_context_data("sixth"),
        Err(SR_CONTEXT_DATA_OVER_LIMIT)
    );
    // the other side still has its own five
    for _ in 0..4 {
        b.send_context_data("ok").unwrap();
    }
    assert_eq!(
        b.send_context_data("sixth"),
        Err(SR_CONTEXT_DATA_OVER_LIMIT)
    );
}

#[test]
fn a_timeout_never_overtakes_its_invitation() {
    let svc = EmbeddedService::new(ServiceOptions {
        invitation_timeout: Duration::from_millis(1),
        manual_clock: false,
        registry_path: None,
    })
    .unwrap();
    let w = World::with_service(svc);
    w.register_app("");
    let mut sessions = Vec::new();
    for _ in 0..200 {
        let s = w.session();
        s.invite("bob@example.com", None).unwrap();
        sessions.push(s);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        w.pump();
        let received = w.received.lock().clone();
        let done = sessions.iter().all(|s| s.state().is_terminal())
            && received.len() <= sessions.len()
            && received.iter().all(|r| r.state().is_terminal());
        if done || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    for s in &sessions {
        assert_eq!(s.state(), SessionState::Terminated);
    }
    for r in w.received.lock().iter() {
        assert_eq!(r.state(), SessionState::Terminated, "invitee stuck");
    }
    assert_eq!(w.b.live_sessions(), 0);
}

/// An Accept that cannot be delivered: the invitee hears OnSendError and goes on as far as
/// it can; the inviter, who heard nothing, times out, and the invitee ends with it at the
/// same deadline instead of staying connected to a peer that never heard of it.
#[test]
fn an_undelivered_accept_ends_both_sides_at_the_deadline() {
    let w = World::new();
    w.register_app("");
    let (a, b) = w.invited();
    w.svc.advance_clock(1_000).unwrap();
    assert!(w.svc.set_reachable("alice@example.com", false));
    b.accept(Some("yes")).unwrap();
    w.pump();
    assert_eq!(
        w.take(),
        lines(&[
            "B:StateChanged(Invitation)@Accepted",
            "B:BeforeAppLaunch(true)@Accepted",
            "B:SendError(SR_ACCEPT_SEND_FAILURE)@Connected",
            "B:ReadyToLaunch@Connected",
            "B:StateChanged(Accepted)@Connected",
        ])
    );
    assert_eq!(a.state(), SessionState::Invitation);
    w.svc.advance_clock(118_999).unwrap();
    w.pump();
    assert!(w.take().is_empty());
    w.svc.advance_clock(1).unwrap();
    w.pump();
    assert_eq!(
        w.side("A"),
        lines(&[
            "A:StateChanged(Invitation)@Terminated",
            "A:Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
        ])
    );
    assert_eq!(
        w.side("B"),
        lines(&[
            "B:StateChanged(Connected)@Terminated",
            "B:Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
        ])
    );
    assert_eq!(w.a.live_sessions() + w.b.live_sessions(), 0);
    assert_eq!(w.svc.pending_invitations(), 0);
}

/// A Decline that cannot be delivered: the invitee's session ends declined (OnSendError
/// first); the inviter still times out.
#[test]
fn an_undelivered_decline_leaves_the_inviter_to_time_out() {
    let w = World::new();
    w.register_app("");
    let (a, b) = w.invited();
    assert!(w.svc.set_reachable("alice@example.com", false));
    b.decline(Some("no")).unwrap();
    w.pump();
    assert_eq!(
        w.take(),
        lines(&[
            "B:StateChanged(Invitation)@Declined",
            "B:SendError(SR_DECLINE_SEND_FAILURE)@Declined",
            "B:Termination(SR_INVITATION_DECLINED,\"no\")@Declined",
        ])
    );
    assert_eq!(a.state(), SessionState::Invitation);
    w.svc.advance_clock(120_000).unwrap();
    w.pump();
    assert_eq!(
        w.take(),
        lines(&[
            "A:StateChanged(Invitation)@Terminated",
            "A:Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
        ])
    );
    assert_eq!(w.svc.pending_invitations(), 0);
}

/// The inviter's timeout cannot reach the invitee: the invitee ends by itself, a grace
/// after the deadline.
#[test]
fn an_invitee_that_hears_nothing_ends_a_grace_after_the_deadline() {
    let w = World::new();
    w.register_app("");
    let (_a, b) = w.invited();
    assert!(w.svc.set_reachable("bob@example.com", false));
    w.svc.advance_clock(120_000).unwrap();
    w.pump();
    assert_eq!(
        w.take(),
        lines(&[
            "A:StateChanged(Invitation)@Terminated",
            "A:Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
        ])
    );
    assert_eq!(b.state(), SessionState::Invitation);
    let grace = msgrpriv::session::INVITEE_GRACE.as_millis() as u64;
    w.svc.advance_clock(grace - 1).unwrap();
    w.pump();
    assert!(w.take().is_empty());
    w.svc.advance_clock(1).unwrap();
    w.pump();
    assert_eq!(
        w.take(),
        lines(&[
            "B:StateChanged(Invitation)@Terminated",
            "B:Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
        ])
    );
    assert_eq!(b.accept(None), Err(SR_SESSION_STATE_INVALID));
    assert_eq!(w.b.live_sessions(), 0);
    assert_eq!(w.svc.pending_invitations(), 0);
}

/// A lost connection (the service tells the client) ends the live sessions with
/// SR_CONNECTION_FAILURE and signs the client out; it can sign in again.
#[test]
fn a_lost_connection_ends_live_sessions_and_signs_out() {
    let w = World::new();
    w.register_app("");
    let (a, b) = w.connected();
    assert!(w.svc.drop_connection("bob@example.com"));
    assert!(!w.svc.drop_connection("bob@example.com"));
    w.pump();
    assert_eq!(
        w.side("B"),
        lines(&[
            "B:StateChanged(Connected)@Terminated",
            "B:Termination(SR_CONNECTION_FAILURE,NULL)@Terminated",
        ])
    );
    assert!(!w.b.is_signed_in());
    assert_eq!(w.mb.lock_status(), LockStatus::NotInitialized);
    // The peer was not told (the connection is gone): it goes on until it learns otherwise.
    assert_eq!(a.state(), SessionState::Connected);
    assert_eq!(b.state(), SessionState::Terminated);
    w.take();
    w.b.sign_in().unwrap();
    assert!(w.b.is_signed_in());
    a.send_context_data("anyone?").unwrap();
    w.pump();
    // The session is unknown to B's new connection: nothing arrives there.
    assert!(w.side("B").is_empty());
}
