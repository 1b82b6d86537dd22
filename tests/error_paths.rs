//! The documented error codes (docs/CONTRACT.md, "The session manager", "The session" and
//! "Limits"): each refused call
//! returns its code and changes nothing.

mod common;
use common::*;
use msgrpriv::error::*;
use msgrpriv::*;
use std::sync::Arc;

#[test]
fn create_session_defaults() {
    let w = World::new();
    let s = w.ma.create_session().unwrap();
    assert_eq!(s.state(), SessionState::Ready);
    assert_eq!(s.flags(), 1);
    let id = s.id().as_str();
    assert_eq!(id.len(), 38);
    assert_eq!(msgrpriv::types::normalize_guid(id).unwrap(), id);
    assert_ne!(w.ma.create_session().unwrap().id(), s.id());
    assert_eq!(s.application(), Err(SR_APP_NOT_SPECIFIED));
    assert_eq!(s.application_name(), Err(SR_APP_NOT_SPECIFIED));
    assert_eq!(s.application_url(), Err(SR_APP_NOT_SPECIFIED));
    assert_eq!(s.user(), Err(SR_NO_USER_INVITED));
    assert_eq!(s.remote_address(), None);
    assert_eq!(s.context_data().as_str(), "");
    assert_eq!(s.local_address().as_str(), "");
}

#[test]
fn register_application_rules() {
    let w = World::new();
    let m = &w.ma;
    assert_eq!(
        m.register_application(APP, "n", "u", "", 1),
        Err(E_INVALIDARG)
    );
    assert_eq!(
        m.register_application("{bad}", "n", "u", "", 0),
        Err(E_INVALIDARG)
    );
    assert_eq!(
        m.register_application(APP, &"n".repeat(257), "u", "", 0),
        Err(E_INVALIDARG)
    );
    assert_eq!(
        m.register_application(APP, "n", &"u".repeat(257), "", 0),
        Err(E_INVALIDARG)
    );
    assert_eq!(
        m.register_application(APP, "n", "u", &format!("/{}", "p".repeat(260)), 0),
        Err(E_INVALIDARG)
    );
    assert_eq!(
        m.register_application(APP, "n", "u", "relative/app", 0),
        Err(E_INVALIDARG)
    );
    assert_eq!(
        m.register_application(APP, "n", "u", "/no/such/dir/app", 0),
        Err(E_FILE_NOT_FOUND)
    );
    assert!(m.applications().unwrap().is_empty());
    m.register_application(&APP.to_lowercase(), &"n".repeat(256), "u", "/bin/sh", 0)
        .unwrap();
    assert_eq!(
        m.register_application(APP, "other", "u", "", 0),
        Err(SR_APP_ALREADY_REGISTERED)
    );
    let apps = m.applications().unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].guid, APP);
    m.unregister_application(APP).unwrap();
    assert_eq!(m.unregister_application(APP), Err(SR_APP_NOT_REGISTERED));
    assert_eq!(m.unregister_application("nope"), Err(E_INVALIDARG));
}

#[test]
fn registry_events_reach_every_manager_sharing_it() {
    let w = World::new();
    let log: Log = Arc::default();
    record_manager(&w.ma, "A", &log);
    record_manager(&w.mb, "B", &log);
    let ma2 = w.a.create_session_manager().unwrap();
    record_manager(&ma2, "A2", &log);
    w.pump();
    log.lock().clear();
    w.ma.register_application(APP, "n", "u", "", 0).unwrap();
    w.ma.unregister_application(APP).unwrap();
    w.pump();
    let mut got = log.lock().clone();
    got.sort();
    let mut want = Vec::new();
    for t in ["A", "A2", "B"] {
        want.push(format!("{t}:AppRegistered({APP})"));
        want.push(format!("{t}:AppUnregistered({APP})"));
    }
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn set_application_rules() {
    let w = World::new();
    let s = w.ma.create_session().unwrap();
    assert_eq!(s.set_application("junk"), Err(E_INVALIDARG));
    assert_eq!(s.set_application(APP), Err(SR_APP_NOT_REGISTERED));
    w.register_app("");
    s.set_application(&APP.to_lowercase()).unwrap();
    assert_eq!(s.application().unwrap().as_str(), APP);
    assert_eq!(s.application_name().unwrap().as_str(), "Test App");
    assert_eq!(
        s.application_url().unwrap().as_str(),
        "http://example.com/app"
    );
    w.ma.unregister_application(APP).unwrap();
    assert_eq!(s.application_name().unwrap().as_str(), "");
    w.register_app("");
    s.invite("bob@example.com", None).unwrap();
    assert_eq!(s.set_application(APP), Err(SR_SESSION_NOT_READY));
}

#[test]
fn invite_rules() {
    let w = World::new();
    w.register_app("");
    let s = w.ma.create_session().unwrap();
    assert_eq!(s.invite("bob@example.com", None), Err(SR_APP_NOT_SPECIFIED));
    s.set_application(APP).unwrap();
    assert_eq!(s.invite("alice@example.com", None), Err(SR_INVITED_SELF));
    assert_eq!(s.invite("ALICE@example.com", None), Err(SR_INVITED_SELF));
    assert_eq!(
        s.invite("nobody@example.com", None),
        Err(MSGR_E_NOT_LOGGED_ON)
    );
    assert_eq!(s.invite("", None), Err(E_INVALIDARG));
    assert_eq!(s.invite(&"x".repeat(257), None), Err(E_INVALIDARG));
    assert_eq!(
        s.invite("bob@example.com", Some(&"d".repeat(513))),
        Err(E_INVALIDARG)
    );
    assert_eq!(s.state(), SessionState::Ready);
    assert_eq!(s.user(), Err(SR_NO_USER_INVITED));
    s.invite("bob@example.com", Some(&"d".repeat(512))).unwrap();
    assert_eq!(s.invite("bob@example.com", None), Err(SR_SESSION_NOT_READY));
    w.b.sign_out().unwrap();
    let s2 = w.session();
    assert_eq!(
        s2.invite("bob@example.com", None),
        Err(MSGR_E_NOT_LOGGED_ON)
    );
    w.a.sign_out().unwrap();
    w.a.sign_in().unwrap();
    // Signed out in between: A's manager is unlocked again (no keys), B is offline.
    assert_eq!(
        s2.invite("bob@example.com", None),
        Err(MSGR_E_NOT_LOGGED_ON)
    );
}

#[test]
fn accept_and_decline_rules() {
    let w = World::new();
    w.register_app("");
    let (a, b) = w.invited();
    assert_eq!(a.accept(None), Err(SR_NOT_INVITEE));
    assert_eq!(a.decline(None), Err(SR_NOT_INVITEE));
    assert_eq!(b.accept(Some(&"x".repeat(513))), Err(E_INVALIDARG));
    assert_eq!(b.decline(Some(&"x".repeat(513))), Err(E_INVALIDARG));
    assert_eq!(b.state(), SessionState::Invitation);
    assert_eq!(
        b.send_context_data("early"),
        Err(SR_NOT_VALID_FOR_APP_INVITE)
    );
    assert_eq!(
        a.send_context_data("early"),
        Err(SR_NOT_VALID_FOR_APP_INVITE)
    );
    b.accept(None).unwrap();
    assert_eq!(b.accept(None), Err(SR_SESSION_STATE_INVALID));
    assert_eq!(b.decline(None), Err(SR_SESSION_STATE_INVALID));
    w.pump();
    a.cancel(E_FAIL, None).unwrap();
    assert_eq!(a.send_context_data("late"), Err(SR_SESSION_STATE_INVALID));
    assert_eq!(a.cancel(E_FAIL, None), Err(SR_SESSION_STATE_INVALID));
    assert_eq!(a.cancel(E_FAIL, Some(&"x".repeat(513))), Err(E_INVALIDARG));
}

#[test]
fn local_address_limit() {
    let w = World::new();
    let s = w.ma.create_session().unwrap();
    s.set_local_address(&"a".repeat(30)).unwrap();
    assert_eq!(s.set_local_address(&"a".repeat(31)), Err(E_INVALIDARG));
    assert_eq!(s.local_address().as_str(), "a".repeat(30));
}

#[test]
fn sign_in_names_are_unique() {
    let svc: Arc<dyn Service> = Arc::new(service(true));
    let c = Client::new(svc.clone(), "dave@example.com", DispatchMode::Manual).unwrap();
    assert_eq!(
        Client::new(svc.clone(), "Dave@Example.com", DispatchMode::Manual).unwrap_err(),
        MSGR_E_ALREADY_LOGGED_ON
    );
    assert_eq!(
        Client::new(svc.clone(), "", DispatchMode::Manual).unwrap_err(),
        E_INVALIDARG
    );
    c.sign_out().unwrap();
    let c2 = Client::new(svc.clone(), "dave@example.com", DispatchMode::Manual).unwrap();
    assert_eq!(c.sign_in(), Err(MSGR_E_ALREADY_LOGGED_ON));
    c2.destroy();
    c.sign_in().unwrap();
    c.destroy();
}

#[test]
fn shutdown_is_the_last_manager_event() {
    let w = World::new();
    let log: Log = Arc::default();
    record_manager(&w.ma, "A", &log);
    w.a.shutdown().unwrap();
    w.pump();
    assert_eq!(
        *log.lock(),
        lines(&["A:LockStatusChanged(NotInitialized)", "A:AppShutdown"])
    );
    assert_eq!(w.a.shutdown(), Err(MSGR_E_SERVER_SHUTDOWN));
    assert_eq!(w.a.sign_in(), Err(MSGR_E_SERVER_SHUTDOWN));
    assert_eq!(
        w.a.create_session_manager().unwrap_err(),
        MSGR_E_SERVER_SHUTDOWN
    );
    w.ma.register_application(APP, "n", "u", "", 0).unwrap_err();
    w.mb.register_application(APP, "n", "u", "", 0).unwrap();
    w.pump();
    assert_eq!(log.lock().last().unwrap(), "A:AppShutdown");
}

#[test]
fn launching_session_rules() {
    let w = World::new();
    assert_eq!(w.ma.launching_session(0).unwrap_err(), E_INVALIDARG);
    assert_eq!(w.ma.launching_session(12345).unwrap_err(), E_FAIL);
}

#[test]
fn unadvise_unknown_cookie() {
    let w = World::new();
    assert_eq!(w.ma.unadvise(999), Err(E_INVALIDARG));
    let s = w.ma.create_session().unwrap();
    assert_eq!(s.unadvise(0), Err(E_INVALIDARG));
}

#[test]
fn dispatch_modes() {
    let svc: Arc<dyn Service> = Arc::new(service(true));
    let t = Client::new(svc.clone(), "t@example.com", DispatchMode::Thread).unwrap();
    assert_eq!(
        t.dispatch(Some(std::time::Duration::ZERO)),
        Err(E_ILLEGAL_METHOD_CALL)
    );
    assert_eq!(t.event_fd(), Err(E_ILLEGAL_METHOD_CALL));
    t.destroy();
    t.destroy();
}
