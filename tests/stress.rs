//! Many threads at once: clients in thread mode, workers inviting each other while the
//! invitees accept, decline or ignore from their dispatch threads, and inviters cancel at
//! random. No event is lost or duplicated: every session ends with exactly one OnTermination
//! per side, as its last event, and OnStateChanged matches the state path.

mod common;
use common::*;
use msgrpriv::*;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Logs = Arc<Mutex<HashMap<(String, char), Vec<String>>>>;

fn rng(seed: &AtomicU64) -> u64 {
    let mut x = seed.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

fn record(s: &Session, side: char, logs: &Logs) {
    for k in SESSION_KINDS {
        let logs = logs.clone();
        let id = s.id().to_string();
        s.advise(k, move |e| {
            logs.lock()
                .entry((id.clone(), side))
                .or_default()
                .push(session_line(e));
        })
        .unwrap();
    }
}

#[test]
fn threads_invite_accept_decline_cancel_at_once() {
    const CLIENTS: usize = 4;
    const PER_WORKER: usize = 150;
    let svc = service(true);
    let dynsvc: Arc<dyn Service> = Arc::new(svc.clone());
    let logs: Logs = Arc::default();
    let seed = Arc::new(AtomicU64::new(12345));
    let mut clients = Vec::new();
    let mut managers = Vec::new();
    for i in 0..CLIENTS {
        let c = Client::new(
            dynsvc.clone(),
            &format!("user{i}@example.com"),
            DispatchMode::Thread,
        )
        .unwrap();
        let m = c.create_session_manager().unwrap();
        let (logs, seed) = (logs.clone(), seed.clone());
        m.advise(ManagerEventKind::Invitation, move |e| {
            if let ManagerEvent::Invitation { session, .. } = e {
                record(session, 'B', &logs);
                match rng(&seed) % 3 {
                    0 => session.accept(None).unwrap(),
                    1 => session.decline(None).unwrap(),
                    _ => {}
                }
            }
        })
        .unwrap();
        clients.push(c);
        managers.push(m);
    }
    // Lock and Key is off: wait until every manager saw its sign-in.
    for m in &managers {
        let t = Instant::now();
        while m.lock_status() != LockStatus::Disabled && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    managers[0]
        .register_application(APP, "Stress", "u", "", 0)
        .unwrap();
    let inviter_sessions: Arc<Mutex<Vec<Session>>> = Arc::default();
    std::thread::scope(|scope| {
        for (i, m) in managers.iter().enumerate() {
            let (m, logs, seed, all) = (
                m.clone(),
                logs.clone(),
                seed.clone(),
                inviter_sessions.clone(),
            );
            scope.spawn(move || {
                for _ in 0..PER_WORKER {
                    let s = m.create_session().unwrap();
                    record(&s, 'A', &logs);
                    s.set_application(APP).unwrap();
                    let j = (i + 1 + (rng(&seed) as usize % (CLIENTS - 1))) % CLIENTS;
                    s.invite(&format!("user{j}@example.com"), Some("hi"))
                        .unwrap();
                    if rng(&seed) % 4 == 0 {
                        let _ = s.cancel(msgrpriv::error::E_FAIL, None);
                    } else if rng(&seed) % 3 == 0 {
                        let _ = s.send_context_data("ctx");
                    }
                    all.lock().push(s);
                }
            });
        }
    });
    let quiet = || {
        let mut calm = 0;
        let t = Instant::now();
        while calm < 20 && t.elapsed() < Duration::from_secs(30) {
            if clients.iter().all(|c| c.pending_events() == 0) {
                calm += 1;
            } else {
                calm = 0;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    quiet();
    // End what is still open: connected sessions are cancelled, invitations time out.
    for s in inviter_sessions.lock().iter() {
        if matches!(s.state(), SessionState::Accepted | SessionState::Connected) {
            s.cancel(msgrpriv::error::E_FAIL, None).unwrap();
        }
    }
    svc.advance_clock(1_000_000).unwrap();
    quiet();
    let logs = logs.lock();
    let sessions = inviter_sessions.lock();
    assert_eq!(sessions.len(), CLIENTS * PER_WORKER);
    for s in sessions.iter() {
        assert!(s.state().is_terminal(), "{s:?}");
        for side in ['A', 'B'] {
            let l = logs
                .get(&(s.id().to_string(), side))
                .unwrap_or_else(|| panic!("{side} side of {s:?} saw nothing"));
            let terms = l.iter().filter(|e| e.starts_with("Termination")).count();
            assert_eq!(terms, 1, "{side} {s:?}: {l:?}");
            assert!(
                l.last().unwrap().starts_with("Termination"),
                "{side}: {l:?}"
            );
        }
        assert!(logs[&(s.id().to_string(), 'A')][0] == "StateChanged(Ready)");
    }
    assert_eq!(logs.len(), 2 * CLIENTS * PER_WORKER);
    for c in &clients {
        assert_eq!(c.live_sessions(), 0);
        c.destroy();
    }
}
