//! The client's list of managers: a closed manager receives nothing more even while the
//! application still holds it, the others keep their creation order, and churn (many
//! managers created and closed) leaves exactly the open ones listening.

mod common;
use common::*;
use msgrpriv::*;
use std::sync::Arc;

#[test]
fn a_closed_manager_still_held_gets_no_sign_in_events() {
    let c = Client::new(
        Arc::new(service(true)),
        "carol@example.com",
        DispatchMode::Manual,
    )
    .unwrap();
    let log: Log = Arc::default();
    let ms: Vec<SessionManager> = (0..3)
        .map(|i| {
            let m = c.create_session_manager().unwrap();
            record_manager(&m, &format!("M{i}"), &log);
            m
        })
        .collect();
    drain(&c);
    log.lock().clear();
    ms[1].close();
    c.sign_out().unwrap();
    // Sign-out reached the open managers only.
    assert_eq!(ms[0].lock_status(), LockStatus::NotInitialized);
    assert_eq!(ms[1].lock_status(), LockStatus::Disabled);
    assert_eq!(ms[2].lock_status(), LockStatus::NotInitialized);
    c.sign_in().unwrap();
    drain(&c);
    assert_eq!(
        *log.lock(),
        lines(&[
            "M0:LockStatusChanged(NotInitialized)",
            "M2:LockStatusChanged(NotInitialized)",
            "M0:LockEnable(false)",
            "M0:LockStatusChanged(Disabled)",
            "M2:LockEnable(false)",
            "M2:LockStatusChanged(Disabled)",
        ])
    );
    // Its lock state stayed where close left it.
    assert_eq!(ms[1].lock_status(), LockStatus::Disabled);
    c.destroy();
}

#[test]
fn churn_leaves_exactly_the_open_managers_listening() {
    let c = Client::new(
        Arc::new(service(true)),
        "carol@example.com",
        DispatchMode::Manual,
    )
    .unwrap();
    let log: Log = Arc::default();
    let mut held = Vec::new();
    let mut open = Vec::new();
    for i in 0..3000 {
        let m = c.create_session_manager().unwrap();
        match i % 3 {
            // closed and dropped
            0 => m.close(),
            // closed, still held by the application
            1 => {
                m.close();
                held.push(m);
            }
            // open: every 100th one records its events
            _ => {
                if i % 100 == 2 {
                    record_manager(&m, &format!("M{i}"), &log);
                }
                open.push(m);
            }
        }
        if i % 500 == 0 {
            drain(&c);
        }
    }
    drain(&c);
    log.lock().clear();
    c.sign_out().unwrap();
    let n = c.dispatch(Some(std::time::Duration::ZERO)).unwrap();
    assert_eq!(
        n as usize,
        open.len(),
        "one OnLockStatusChanged per open manager"
    );
    let expected: Vec<String> = (0..3000)
        .filter(|i| i % 3 == 2 && i % 100 == 2)
        .map(|i| format!("M{i}:LockStatusChanged(NotInitialized)"))
        .collect();
    assert_eq!(*log.lock(), expected, "creation order");
    drop(held);
    c.destroy();
}

#[test]
fn an_invitation_goes_to_an_open_manager_not_a_closed_one() {
    let w = World::new();
    w.register_app("");
    let log: Log = Arc::default();
    let mb2 = w.b.create_session_manager().unwrap();
    record_manager(&mb2, "B2", &log);
    w.pump();
    log.lock().clear();
    w.mb.close();
    let s = w.session();
    s.invite("bob@example.com", Some("hello")).unwrap();
    w.pump();
    assert_eq!(*log.lock(), lines(&["B2:Invitation(\"hello\")"]));
    assert!(
        w.received.lock().is_empty(),
        "the closed manager's callback did not run"
    );
    mb2.close();
}
