//! Lock and Key (docs/CONTRACT.md, "Lock and Key"): success, wrong key, wrong cookie, unknown ID,
//! second request, gated calls while locked, re-lock after sign-out and sign-in.

mod common;
use common::*;
use msgrpriv::error::*;
use msgrpriv::lock::compute_response;
use msgrpriv::*;
use std::sync::Arc;

struct Locked {
    svc: EmbeddedService,
    c: Client,
    m: SessionManager,
    log: Log,
    challenges: Arc<parking_lot::Mutex<Vec<(i32, String)>>>,
}

fn locked() -> Locked {
    let svc = service(true);
    svc.add_app_key(APP_ID, APP_KEY).unwrap();
    let c = Client::new(
        Arc::new(svc.clone()),
        "carol@example.com",
        DispatchMode::Manual,
    )
    .unwrap();
    let m = c.create_session_manager().unwrap();
    let log: Log = Arc::default();
    record_manager(&m, "M", &log);
    let challenges: Arc<parking_lot::Mutex<Vec<(i32, String)>>> = Arc::default();
    let ch = challenges.clone();
    m.advise(ManagerEventKind::LockChallenge, move |e| {
        if let ManagerEvent::LockChallenge { cookie, challenge } = e {
            ch.lock().push((*cookie, challenge.as_str().to_string()));
        }
    })
    .unwrap();
    let l = Locked {
        svc,
        c,
        m,
        log,
        challenges,
    };
    assert_eq!(
        l.pump(),
        lines(&["M:LockEnable(true)", "M:LockStatusChanged(Initialized)"])
    );
    l
}

impl Locked {
    fn pump(&self) -> Vec<String> {
        drain(&self.c);
        std::mem::take(&mut *self.log.lock())
    }
    fn challenge(&self, cookie: i32) -> String {
        self.m.request_challenge(cookie).unwrap();
        self.pump();
        let (c, ch) = self.challenges.lock().pop().unwrap();
        assert_eq!(c, cookie);
        ch
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        self.c.destroy();
    }
}

#[test]
fn lock_enable_after_sign_in() {
    let l = locked();
    // The events raised at creation were delivered by the first dispatch in locked().
    assert_eq!(l.m.lock_status(), LockStatus::Initialized);
    let m2 = l.c.create_session_manager().unwrap();
    let log: Log = Arc::default();
    record_manager(&m2, "M2", &log);
    l.c.dispatch(Some(std::time::Duration::ZERO)).unwrap();
    assert_eq!(
        *log.lock(),
        lines(&["M2:LockEnable(true)", "M2:LockStatusChanged(Initialized)"])
    );
    m2.close();
}

#[test]
fn disabled_without_keys() {
    let w = World::new();
    let log: Log = Arc::default();
    let m = w.a.create_session_manager().unwrap();
    record_manager(&m, "M", &log);
    w.pump();
    assert_eq!(
        *log.lock(),
        lines(&["M:LockEnable(false)", "M:LockStatusChanged(Disabled)"])
    );
    assert_eq!(m.lock_status(), LockStatus::Disabled);
    assert_eq!(m.request_challenge(1), Err(MSGR_E_API_DISABLED));
    assert_eq!(m.send_response(APP_ID, "x", 1), Err(MSGR_E_API_DISABLED));
    assert!(m.create_session().is_ok());
}

#[test]
fn unlock_succeeds() {
    let l = locked();
    let ch = l.challenge(42);
    assert_eq!(ch.len(), 32);
    assert_eq!(l.m.lock_status(), LockStatus::PendingResult);
    assert_eq!(l.m.request_challenge(43), Err(MSGR_E_API_PENDING_UNLOCK));
    l.m.send_response(APP_ID, &compute_response(&ch, APP_KEY), 42)
        .unwrap();
    assert_eq!(
        l.pump(),
        lines(&["M:LockResult(42,true)", "M:LockStatusChanged(Unlocked)"])
    );
    assert_eq!(l.m.lock_status(), LockStatus::Unlocked);
    assert_eq!(l.m.request_challenge(44), Err(MSGR_E_API_ALREADY_UNLOCKED));
    assert!(l.m.create_session().is_ok());
}

#[test]
fn challenge_events_in_order() {
    let l = locked();
    l.m.request_challenge(7).unwrap();
    assert_eq!(
        l.pump(),
        lines(&["M:LockStatusChanged(PendingResult)", "M:LockChallenge(7)"])
    );
}

#[test]
fn wrong_key_fails_and_only_one_challenge_per_sign_in() {
    let l = locked();
    let ch = l.challenge(1);
    l.m.send_response(APP_ID, &compute_response(&ch, "wrong"), 1)
        .unwrap();
    assert_eq!(
        l.pump(),
        lines(&["M:LockResult(1,false)", "M:LockStatusChanged(UnlockFailed)"])
    );
    assert_eq!(l.m.request_challenge(2), Err(MSGR_E_API_UNLOCK_FAILED));
    assert_eq!(l.m.create_session().unwrap_err(), MSGR_E_API_LOCKED);
}

#[test]
fn unknown_app_id_fails() {
    let l = locked();
    let ch = l.challenge(1);
    l.m.send_response("nobody", &compute_response(&ch, APP_KEY), 1)
        .unwrap();
    assert_eq!(
        l.pump(),
        lines(&["M:LockResult(1,false)", "M:LockStatusChanged(UnlockFailed)"])
    );
}

#[test]
fn wrong_cookie_changes_nothing() {
    let l = locked();
    let ch = l.challenge(5);
    let r = compute_response(&ch, APP_KEY);
    assert_eq!(l.m.send_response(APP_ID, &r, 6), Err(E_INVALIDARG));
    assert!(l.pump().is_empty());
    assert_eq!(l.m.lock_status(), LockStatus::PendingResult);
    l.m.send_response(APP_ID, &r, 5).unwrap();
    assert_eq!(l.m.lock_status(), LockStatus::Unlocked);
}

#[test]
fn response_without_challenge() {
    let l = locked();
    assert_eq!(l.m.send_response(APP_ID, "00", 1), Err(MSGR_E_API_LOCKED));
}

#[test]
fn every_gated_call_refuses_while_locked() {
    let l = locked();
    let m = &l.m;
    assert_eq!(m.create_session().unwrap_err(), MSGR_E_API_LOCKED);
    assert_eq!(m.launching_session(1).unwrap_err(), MSGR_E_API_LOCKED);
    assert_eq!(
        m.register_application(APP, "n", "u", "", 0),
        Err(MSGR_E_API_LOCKED)
    );
    assert_eq!(m.unregister_application(APP), Err(MSGR_E_API_LOCKED));
    assert_eq!(m.applications().unwrap_err(), MSGR_E_API_LOCKED);
    // Not gated: status and the exchange itself.
    assert_eq!(m.lock_status(), LockStatus::Initialized);
}

#[test]
fn locked_again_after_sign_out_and_in() {
    let l = locked();
    let ch = l.challenge(1);
    l.m.send_response(APP_ID, &compute_response(&ch, APP_KEY), 1)
        .unwrap();
    l.pump();
    let s = l.m.create_session().unwrap();
    l.c.sign_out().unwrap();
    assert_eq!(l.pump(), lines(&["M:LockStatusChanged(NotInitialized)"]));
    assert_eq!(l.m.request_challenge(2), Err(MSGR_E_API_NOTINITIALIZED));
    assert_eq!(l.c.sign_out(), Err(MSGR_E_NOT_LOGGED_ON));
    // Sessions follow their manager's lock; signed out, gated calls say so.
    assert_eq!(s.set_local_address("x"), Err(MSGR_E_NOT_LOGGED_ON));
    assert_eq!(l.m.create_session().unwrap_err(), MSGR_E_NOT_LOGGED_ON);
    l.c.sign_in().unwrap();
    assert_eq!(l.c.sign_in(), Err(MSGR_E_ALREADY_LOGGED_ON));
    assert_eq!(
        l.pump(),
        lines(&["M:LockEnable(true)", "M:LockStatusChanged(Initialized)"])
    );
    assert_eq!(l.m.create_session().unwrap_err(), MSGR_E_API_LOCKED);
    let ch = l.challenge(3);
    l.m.send_response(APP_ID, &compute_response(&ch, APP_KEY), 3)
        .unwrap();
    assert_eq!(l.m.lock_status(), LockStatus::Unlocked);
    let _ = &l.svc;
}

#[test]
fn a_failed_unlock_is_forgotten_at_the_next_sign_in() {
    let l = locked();
    let ch = l.challenge(1);
    l.m.send_response(APP_ID, "bad", 1).unwrap();
    assert_eq!(l.m.lock_status(), LockStatus::UnlockFailed);
    l.c.sign_out().unwrap();
    l.c.sign_in().unwrap();
    let ch2 = l.challenge(2);
    assert_ne!(ch, ch2);
    l.m.send_response(APP_ID, &compute_response(&ch2, APP_KEY), 2)
        .unwrap();
    assert_eq!(l.m.lock_status(), LockStatus::Unlocked);
}

#[test]
fn each_manager_is_locked_on_its_own() {
    let l = locked();
    let m2 = l.c.create_session_manager().unwrap();
    let ch = l.challenge(1);
    l.m.send_response(APP_ID, &compute_response(&ch, APP_KEY), 1)
        .unwrap();
    assert_eq!(l.m.lock_status(), LockStatus::Unlocked);
    assert_eq!(m2.lock_status(), LockStatus::Initialized);
    assert_eq!(m2.create_session().unwrap_err(), MSGR_E_API_LOCKED);
}

/// Completes the Lock and Key exchange for `m` (on client `c`).
fn unlock(c: &Client, m: &SessionManager) {
    let got: Arc<parking_lot::Mutex<Option<String>>> = Arc::default();
    let g = got.clone();
    let cookie = m
        .advise(ManagerEventKind::LockChallenge, move |e| {
            if let ManagerEvent::LockChallenge { challenge, .. } = e {
                *g.lock() = Some(challenge.as_str().to_string());
            }
        })
        .unwrap();
    m.request_challenge(9).unwrap();
    drain(c);
    let ch = got.lock().take().expect("OnLockChallenge delivered");
    m.send_response(APP_ID, &compute_response(&ch, APP_KEY), 9)
        .unwrap();
    drain(c);
    m.unadvise(cookie).unwrap();
    assert_eq!(m.lock_status(), LockStatus::Unlocked);
}

/// Every gated session call, by name, with its result. None of them may change a session
/// that the gate refuses.
fn gated_session_calls(s: &Session) -> Vec<(&'static str, Result<()>)> {
    vec![
        ("set_application", s.set_application(APP)),
        ("set_local_address", s.set_local_address("10.0.0.1:80")),
        ("invite", s.invite("bob@example.com", Some("hi"))),
        ("accept", s.accept(Some("yes"))),
        ("decline", s.decline(Some("no"))),
        ("send_context_data", s.send_context_data("ctx")),
        ("cancel", s.cancel(SR_SESSION_CANCELLED_REMOTE, None)),
    ]
}

fn assert_all_refused(s: &Session, hr: Hr, what: &str) {
    let state = s.state();
    for (name, r) in gated_session_calls(s) {
        assert_eq!(r, Err(hr), "{what}: {name}");
    }
    assert_eq!(s.state(), state, "{what}: a refused call changed the state");
    assert_eq!(
        s.local_address().as_str(),
        "",
        "{what}: the address changed"
    );
}

/// Two users on a service that enforces Lock and Key, both managers unlocked, an
/// application registered by A.
fn unlocked_pair() -> (
    EmbeddedService,
    Client,
    Client,
    SessionManager,
    SessionManager,
) {
    let svc = service(true);
    svc.add_app_key(APP_ID, APP_KEY).unwrap();
    let dynsvc: Arc<dyn Service> = Arc::new(svc.clone());
    let a = Client::new(dynsvc.clone(), "alice@example.com", DispatchMode::Manual).unwrap();
    let b = Client::new(dynsvc, "bob@example.com", DispatchMode::Manual).unwrap();
    let ma = a.create_session_manager().unwrap();
    let mb = b.create_session_manager().unwrap();
    unlock(&a, &ma);
    unlock(&b, &mb);
    ma.register_application(APP, "Test App", "http://example.com/app", "", 0)
        .unwrap();
    drain(&a);
    drain(&b);
    (svc, a, b, ma, mb)
}

#[test]
fn sessions_of_a_released_manager_are_locked_after_sign_out_and_in() {
    let (_svc, a, b, ma, mb) = unlocked_pair();
    let ready = ma.create_session().unwrap();
    // Received by B's manager, which is then released too.
    let received: Arc<parking_lot::Mutex<Vec<Session>>> = Arc::default();
    let r2 = received.clone();
    mb.advise(ManagerEventKind::Invitation, move |e| {
        if let ManagerEvent::Invitation {
            session, handled, ..
        } = e
        {
            *handled = true;
            r2.lock().push(session.clone());
        }
    })
    .unwrap();
    let inviter = ma.create_session().unwrap();
    inviter.set_application(APP).unwrap();
    inviter.invite("bob@example.com", None).unwrap();
    drain(&b);
    let invitee = received.lock().pop().expect("invitation delivered");

    // Released in the connection the exchange was made in: the sessions keep that status.
    ma.close();
    drop(ma);
    mb.close();
    drop(mb);
    ready.set_local_address("").unwrap();

    a.sign_out().unwrap();
    b.sign_out().unwrap();
    assert_all_refused(&ready, MSGR_E_NOT_LOGGED_ON, "A signed out, READY session");
    assert_all_refused(
        &invitee,
        MSGR_E_NOT_LOGGED_ON,
        "B signed out, invitee session",
    );
    a.sign_in().unwrap();
    b.sign_in().unwrap();
    assert_all_refused(
        &ready,
        MSGR_E_API_LOCKED,
        "A signed in again, READY session",
    );
    assert_all_refused(
        &inviter,
        MSGR_E_API_LOCKED,
        "A signed in again, ended session",
    );
    assert_all_refused(
        &invitee,
        MSGR_E_API_LOCKED,
        "B signed in again, invitee session",
    );
    assert_eq!(ready.state(), SessionState::Ready);
    assert_eq!(b.live_sessions(), 0, "no invitation reached B");
    // A new manager is locked too, until its own exchange.
    let m2 = a.create_session_manager().unwrap();
    drain(&a);
    assert_eq!(m2.create_session().unwrap_err(), MSGR_E_API_LOCKED);
    unlock(&a, &m2);
    // Unlocking another manager opens only that manager's sessions.
    assert_all_refused(
        &ready,
        MSGR_E_API_LOCKED,
        "after another manager's exchange",
    );
    let fresh = m2.create_session().unwrap();
    assert_eq!(fresh.set_application(APP), Ok(()));
    a.destroy();
    b.destroy();
}

#[test]
fn sessions_of_a_live_manager_follow_its_exchange_across_sign_ins() {
    let (_svc, a, b, ma, _mb) = unlocked_pair();
    let s = ma.create_session().unwrap();
    a.sign_out().unwrap();
    a.sign_in().unwrap();
    drain(&a);
    assert_eq!(ma.lock_status(), LockStatus::Initialized);
    assert_all_refused(&s, MSGR_E_API_LOCKED, "live manager, locked again");
    unlock(&a, &ma);
    s.set_application(APP).unwrap();
    s.invite("bob@example.com", None).unwrap();
    assert_eq!(s.state(), SessionState::Invitation);
    a.destroy();
    b.destroy();
}

#[test]
fn a_key_added_while_signed_out_locks_sessions_of_a_released_disabled_manager() {
    let svc = service(true);
    let dynsvc: Arc<dyn Service> = Arc::new(svc.clone());
    let a = Client::new(dynsvc.clone(), "alice@example.com", DispatchMode::Manual).unwrap();
    let b = Client::new(dynsvc, "bob@example.com", DispatchMode::Manual).unwrap();
    let m = a.create_session_manager().unwrap();
    drain(&a);
    assert_eq!(m.lock_status(), LockStatus::Disabled);
    m.register_application(APP, "Test App", "http://example.com/app", "", 0)
        .unwrap();
    let s = m.create_session().unwrap();
    m.close();
    drop(m);
    // Disabled in this connection: the session keeps working.
    s.set_local_address("").unwrap();
    a.sign_out().unwrap();
    svc.add_app_key(APP_ID, APP_KEY).unwrap();
    a.sign_in().unwrap();
    assert_all_refused(&s, MSGR_E_API_LOCKED, "key added, signed in again");
    assert_eq!(b.live_sessions(), 0);
    a.destroy();
    b.destroy();
}

#[test]
fn without_keys_sessions_of_a_released_manager_work_after_sign_out_and_in() {
    let w = World::new();
    let m = w.a.create_session_manager().unwrap();
    let s = m.create_session().unwrap();
    m.close();
    drop(m);
    w.a.sign_out().unwrap();
    assert_all_refused(&s, MSGR_E_NOT_LOGGED_ON, "signed out");
    w.a.sign_in().unwrap();
    // Lock and Key is off in the new connection too: nothing to unlock, the gate is open.
    w.register_app("");
    s.set_application(APP).unwrap();
    s.invite("bob@example.com", None).unwrap();
    assert_eq!(s.state(), SessionState::Invitation);
}
