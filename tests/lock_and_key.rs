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
    let c = Client::new(Arc::new(svc.clone()), "carol@example.com", DispatchMode::Manual).unwrap();
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
    let l = Locked { svc, c, m, log, challenges };
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
