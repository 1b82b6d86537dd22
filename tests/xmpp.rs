//! The XMPP service against a real Prosody that the tests start themselves (loopback only):
//! sign-in as XMPP login, presence as "signed in", and the invitation flow with its event
//! order on both sides, the same as on the embedded service.
#![cfg(feature = "xmpp")]

mod common;
use common::prosody::Prosody;
use common::*;
use msgrpriv::error::*;
use msgrpriv::xmpp::{Tls, XmppOptions, XmppService};
use msgrpriv::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USERS: &[(&str, &str)] = &[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")];

fn creds() -> msgrpriv::xmpp::Credentials {
    Arc::new(|name: &str| {
        USERS
            .iter()
            .find(|(u, _)| name.starts_with(&format!("{u}@")))
            .map(|(_, p)| p.to_string())
    })
}

/// Options for the fixture's plain-TCP server on loopback.
fn plain(server: &Prosody, creds: msgrpriv::xmpp::Credentials) -> XmppOptions {
    let mut o = XmppOptions::new(server.host(), server.addr.port(), creds);
    o.tls = Tls::Plain;
    o
}

fn xmpp(server: &Prosody) -> XmppService {
    XmppService::new(plain(server, creds())).unwrap()
}

/// The lines of side `tag` ("A" for "A:...") in `log`.
fn of_side(log: &[String], tag: &str) -> Vec<String> {
    let prefix = format!("{tag}:");
    log.iter()
        .filter(|l| l.starts_with(&prefix))
        .cloned()
        .collect()
}

/// True once `w`'s log has a line starting with `prefix`.
fn logged(w: &World, prefix: &str) -> bool {
    w.log.lock().iter().any(|l| l.starts_with(prefix))
}

/// Dispatches both clients of `w` until `done` holds (at most 10 s).
fn wait_until(w: &World, what: &str, done: impl Fn(&World) -> bool) {
    let start = Instant::now();
    while !done(w) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        w.a.dispatch(Some(Duration::from_millis(2))).unwrap();
        w.b.dispatch(Some(Duration::from_millis(2))).unwrap();
    }
    // Whatever else is already queued.
    w.pump();
}

fn world(server: &Prosody) -> (World, XmppService) {
    let svc = xmpp(server);
    let w = World::with_dyn_names(
        service(true),
        Arc::new(svc.clone()),
        &server.jid("alice"),
        &server.jid("bob"),
    );
    let bob = server.jid("bob");
    let alice = server.jid("alice");
    let start = Instant::now();
    while svc.online(&bob).is_none() || svc.online(&alice).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no presence; {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    w.register_app("");
    (w, svc)
}

/// Alice invites bob (no data) and waits for the invitation; the log is emptied. Returns both
/// sides.
fn invited(w: &World, server: &Prosody) -> (Session, Session) {
    let s = w.session();
    s.invite(&server.jid("bob"), None).unwrap();
    wait_until(w, "the invitation", |w| !w.received.lock().is_empty());
    w.take();
    let r = w.received.lock()[0].clone();
    (s, r)
}

#[test]
fn invitation_accepted_context_data_and_cancel_over_xmpp() {
    let server = Prosody::start(USERS);
    let (w, _svc) = world(&server);
    let bob = server.jid("bob");
    let s = w.session();
    s.invite(&bob, Some("hello")).unwrap();
    wait_until(&w, "the invitation", |w| !w.received.lock().is_empty());
    assert_eq!(
        w.take(),
        lines(&[
            "A:StateChanged(Ready)@Invitation",
            "B:Invitation(\"hello\")",
        ])
    );
    let r = w.received.lock()[0].clone();
    assert_eq!(r.user().unwrap().as_str(), server.jid("alice"));
    assert_eq!(r.context_data().as_str(), "hello");
    r.accept(Some("yes")).unwrap();
    wait_until(&w, "the acceptance", |_| {
        s.state() == SessionState::Connected
    });
    let log = w.take();
    assert_eq!(
        of_side(&log, "A"),
        lines(&[
            "A:StateChanged(Invitation)@Connected",
            "A:Accepted(\"yes\")@Connected",
            "A:ReadyToLaunch@Connected",
            "A:StateChanged(Accepted)@Connected",
        ])
    );
    assert_eq!(
        of_side(&log, "B"),
        lines(&[
            "B:StateChanged(Invitation)@Accepted",
            "B:BeforeAppLaunch(true)@Accepted",
            "B:ReadyToLaunch@Connected",
            "B:StateChanged(Accepted)@Connected",
        ])
    );
    s.send_context_data("ping").unwrap();
    wait_until(&w, "context data", |_| r.context_data().as_str() == "ping");
    r.send_context_data("pong").unwrap();
    wait_until(&w, "context data back", |_| {
        s.context_data().as_str() == "pong"
    });
    w.take();
    s.cancel(E_FAIL, Some("bye")).unwrap();
    // The canceller's OnTermination waits for the peer's acknowledgement.
    wait_until(&w, "the cancel", |w| {
        logged(w, "A:Termination") && logged(w, "B:Termination")
    });
    let log = w.take();
    assert_eq!(
        of_side(&log, "B"),
        lines(&[
            "B:StateChanged(Connected)@Cancelled",
            "B:Cancelled(\"bye\")@Cancelled",
            "B:Termination(E_FAIL,\"bye\")@Cancelled",
        ])
    );
    assert_eq!(w.a.live_sessions() + w.b.live_sessions(), 0);
}

#[test]
fn decline_over_xmpp() {
    let server = Prosody::start(USERS);
    let (w, _svc) = world(&server);
    let (s, r) = invited(&w, &server);
    r.decline(Some("no")).unwrap();
    wait_until(&w, "the decline", |w| logged(w, "A:Termination"));
    let log = w.take();
    assert_eq!(
        of_side(&log, "A"),
        lines(&[
            "A:StateChanged(Invitation)@Declined",
            "A:Declined(\"no\")@Declined",
            "A:Termination(SR_INVITATION_DECLINED,\"no\")@Declined",
        ])
    );
    assert_eq!(s.state(), SessionState::Declined);
    assert_eq!(s.context_data().as_str(), "no");
}

#[test]
fn sign_in_is_xmpp_login() {
    let server = Prosody::start(USERS);
    let svc = xmpp(&server);
    let dynsvc: Arc<dyn Service> = Arc::new(svc.clone());
    // Unknown user and wrong password: refused at once, no retry.
    let t0 = Instant::now();
    let nobody = Client::new(dynsvc.clone(), &server.jid("nobody"), DispatchMode::Manual);
    assert_eq!(nobody.unwrap_err(), SR_AUTHENTICATION_FAILED);
    let wrong = XmppService::new(plain(
        &server,
        Arc::new(|_: &str| Some("wrong".to_string())),
    ))
    .unwrap();
    let r = Client::new(Arc::new(wrong), &server.jid("alice"), DispatchMode::Manual);
    assert_eq!(r.unwrap_err(), SR_AUTHENTICATION_FAILED);
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    // Signed in twice through one service: refused.
    let a = Client::new(dynsvc.clone(), &server.jid("alice"), DispatchMode::Manual).unwrap();
    let again = Client::new(dynsvc.clone(), &server.jid("alice"), DispatchMode::Manual);
    assert_eq!(again.unwrap_err(), MSGR_E_ALREADY_LOGGED_ON);
    // Nobody there: not signed in.
    let s = {
        let m = a.create_session_manager().unwrap();
        m.register_application(APP, "n", "u", "", 0).unwrap();
        let s = m.create_session().unwrap();
        s.set_application(APP).unwrap();
        s
    };
    assert_eq!(
        s.invite(&server.jid("carol"), None),
        Err(MSGR_E_NOT_LOGGED_ON)
    );
    a.destroy();
    // Server unreachable: a bounded failure.
    let mut server = server;
    server.stop();
    let r = Client::new(dynsvc, &server.jid("bob"), DispatchMode::Manual);
    assert_eq!(r.unwrap_err(), MSGR_E_DISCONNECTED);
}

#[test]
fn a_lost_server_ends_live_sessions_then_its_clients_sign_in_again() {
    let mut server = Prosody::start(USERS);
    let (w, svc) = world(&server);
    let (s, r) = invited(&w, &server);
    r.accept(None).unwrap();
    wait_until(&w, "the acceptance", |_| {
        s.state() == SessionState::Connected
    });
    // A acknowledged the Accept before it sent this: once it arrives, B has the
    // acknowledgement too (one stream, in order). B acknowledges "x" once its client has
    // taken it, so A's acknowledgement is a moment behind: give it half a second (a round
    // trip here takes about a millisecond), so that no step waits for one when the server
    // goes.
    s.send_context_data("x").unwrap();
    wait_until(&w, "context data", |_| r.context_data().as_str() == "x");
    let settle = Instant::now();
    wait_until(&w, "the acknowledgement", |_| {
        settle.elapsed() > Duration::from_millis(500)
    });
    w.take();
    server.stop();
    wait_until(&w, "the end", |w| {
        logged(w, "A:Termination") && logged(w, "B:Termination")
    });
    let log = w.take();
    for tag in ["A", "B"] {
        assert_eq!(
            of_side(&log, tag),
            lines(&[
                &format!("{tag}:StateChanged(Connected)@Terminated"),
                &format!("{tag}:Termination(SR_CONNECTION_FAILURE,NULL)@Terminated"),
            ])
        );
    }
    assert!(!w.a.is_signed_in() && !w.b.is_signed_in());
    for c in [&w.a, &w.b] {
        assert_eq!(
            c.connection_state(),
            (ConnectionState::Reconnecting, MSGR_E_DISCONNECTED)
        );
    }
    record_lock(&w.ma, "A", &w.log);

    // The server comes back: both clients sign in again by themselves, their managers are
    // told as at any sign-in, and invitations flow again.
    let _again = Relaunched::new(&server);
    wait_until(&w, "signed in again", |w| {
        w.a.is_signed_in() && w.b.is_signed_in()
    });
    let start = Instant::now();
    while svc.online(&server.jid("bob")).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no presence again"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        of_side(&w.take(), "MA"),
        lines(&["MA:LockEnable(false)", "MA:LockStatusChanged(Disabled)"])
    );
    assert_eq!(
        w.a.connection_state(),
        (ConnectionState::SignedIn, MSGR_E_DISCONNECTED)
    );
    let (s, _r) = invited(&w, &server);
    assert_eq!(s.state(), SessionState::Invitation);
}

/// Records `m`'s Lock and Key events as "M<tag>:..." lines.
fn record_lock(m: &SessionManager, tag: &str, log: &Log) {
    for k in [
        ManagerEventKind::LockEnable,
        ManagerEventKind::LockStatusChanged,
    ] {
        let (log, tag) = (log.clone(), tag.to_string());
        m.advise(k, move |e| {
            log.lock().push(format!("M{tag}:{}", manager_line(e)))
        })
        .unwrap();
    }
}

/// A stopped fixture server started again on its port, with its users (stopped when
/// dropped).
struct Relaunched(std::process::Child);

impl Relaunched {
    fn new(server: &Prosody) -> Relaunched {
        let child = std::process::Command::new("prosody")
            .arg("--config")
            .arg(server.dir.join("prosody.cfg.lua"))
            .arg("-F")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prosody starts");
        let start = Instant::now();
        while std::net::TcpStream::connect_timeout(&server.addr, Duration::from_millis(200))
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "prosody not back"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Relaunched(child)
    }
}

impl Drop for Relaunched {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

#[test]
fn a_second_sign_in_replaces_the_first_once_and_a_refused_reconnection_is_final() {
    let mut server = Prosody::start(USERS);
    // Two services (two programs, as far as the server can tell) sign alice in.
    let first = Client::new(
        Arc::new(xmpp(&server)),
        &server.jid("alice"),
        DispatchMode::Manual,
    )
    .unwrap();
    let second = Client::new(
        Arc::new(xmpp(&server)),
        &server.jid("alice"),
        DispatchMode::Manual,
    )
    .unwrap();
    let start = Instant::now();
    while first.is_signed_in() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the first is not replaced"
        );
        first.dispatch(Some(Duration::from_millis(5))).unwrap();
    }
    assert_eq!(
        first.connection_state(),
        (ConnectionState::SignedOut, MSGR_E_ALREADY_LOGGED_ON)
    );
    // No reconnection, so no kicking back: the second stays signed in.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(second.connection_state(), (ConnectionState::SignedIn, S_OK));
    assert_eq!(first.connection_state().0, ConnectionState::SignedOut);
    second.destroy();
    first.destroy();

    // A password that no longer works: the reconnection is refused, and stops.
    let refuse = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r2 = refuse.clone();
    let svc = XmppService::new(plain(
        &server,
        Arc::new(move |_: &str| {
            let wrong = r2.load(std::sync::atomic::Ordering::SeqCst);
            Some(if wrong { "wrong" } else { "bobpw" }.to_string())
        }),
    ))
    .unwrap();
    let bob = Client::new(Arc::new(svc), &server.jid("bob"), DispatchMode::Manual).unwrap();
    refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    server.stop();
    let _again = Relaunched::new(&server);
    let start = Instant::now();
    while bob.connection_state().0 != ConnectionState::SignedOut {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            bob.connection_state()
        );
        bob.dispatch(Some(Duration::from_millis(5))).unwrap();
    }
    assert_eq!(
        bob.connection_state(),
        (ConnectionState::SignedOut, SR_AUTHENTICATION_FAILED)
    );
    // The application signs in again when it can.
    refuse.store(false, std::sync::atomic::Ordering::SeqCst);
    bob.sign_in().unwrap();
    assert_eq!(
        bob.connection_state(),
        (ConnectionState::SignedIn, SR_AUTHENTICATION_FAILED)
    );
}

#[test]
fn signing_out_while_reconnecting_stops_the_attempts() {
    let mut server = Prosody::start(USERS);
    let a = Client::new(
        Arc::new(xmpp(&server)),
        &server.jid("alice"),
        DispatchMode::Manual,
    )
    .unwrap();
    server.stop();
    let start = Instant::now();
    while a.connection_state().0 != ConnectionState::Reconnecting {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the loss is not seen"
        );
        a.dispatch(Some(Duration::from_millis(5))).unwrap();
    }
    assert_eq!(a.sign_out(), Err(MSGR_E_NOT_LOGGED_ON));
    assert_eq!(
        a.connection_state(),
        (ConnectionState::SignedOut, MSGR_E_DISCONNECTED)
    );
    let _again = Relaunched::new(&server);
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        !a.is_signed_in(),
        "signed in against the application's sign-out"
    );
    // Its own sign-in works.
    a.sign_in().unwrap();
    assert_eq!(a.connection_state().0, ConnectionState::SignedIn);
}

#[test]
fn after_a_reconnection_lock_and_key_starts_again() {
    let mut server = Prosody::start(USERS);
    let svc = xmpp(&server);
    svc.add_app_key("app", "key").unwrap();
    let a = Client::new(Arc::new(svc), &server.jid("alice"), DispatchMode::Manual).unwrap();
    let m = a.create_session_manager().unwrap();
    let log: Log = Arc::default();
    record_lock(&m, "A", &log);
    drain(&a);
    // Unlocked in this sign-in.
    let got: Arc<parking_lot::Mutex<Option<String>>> = Arc::default();
    let got2 = got.clone();
    m.advise(ManagerEventKind::LockChallenge, move |e| {
        if let ManagerEvent::LockChallenge { challenge, .. } = e {
            *got2.lock() = Some(challenge.as_str().to_owned());
        }
    })
    .unwrap();
    let cookie = 7;
    m.request_challenge(cookie).unwrap();
    drain(&a);
    let challenge = got.lock().clone().expect("the challenge");
    let response = msgrpriv::lock::compute_response(&challenge, "key");
    m.send_response("app", &response, cookie).unwrap();
    drain(&a);
    assert_eq!(m.lock_status(), LockStatus::Unlocked);
    log.lock().clear();

    server.stop();
    let start = Instant::now();
    while a.connection_state().0 != ConnectionState::Reconnecting {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the loss is not seen"
        );
        a.dispatch(Some(Duration::from_millis(5))).unwrap();
    }
    let _again = Relaunched::new(&server);
    let start = Instant::now();
    while !a.is_signed_in() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not signed in again"
        );
        a.dispatch(Some(Duration::from_millis(5))).unwrap();
    }
    drain(&a);
    // Locked again, as at any sign-in: the exchange starts over.
    assert_eq!(
        std::mem::take(&mut *log.lock()),
        lines(&[
            "MA:LockStatusChanged(NotInitialized)",
            "MA:LockEnable(true)",
            "MA:LockStatusChanged(Initialized)",
        ])
    );
    assert_eq!(m.create_session().unwrap_err(), MSGR_E_API_LOCKED);
}
