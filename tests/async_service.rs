//! The service seam is asynchronous: a service may answer a send, a challenge request or a
//! response check later, from another thread, or never. A wrapper around the embedded service
//! holds the completions back until the test releases them; the session logic holds no lock
//! while it waits, keeps the documented event order, ignores late answers that no longer
//! apply, and bounds a wait that never ends by the invitation timeout.

mod common;
use common::*;
use msgrpriv::error::*;
use msgrpriv::lock::compute_response;
use msgrpriv::registry::AppRegistry;
use msgrpriv::service::{ChallengeDone, CheckDone, Endpoint, Message, SendDone};
use msgrpriv::timer::Timers;
use msgrpriv::*;
use parking_lot::Mutex;
use std::sync::{Arc, Weak};
use std::time::Duration;

type Held = Box<dyn FnOnce() + Send>;

/// The embedded service with its completions held back while `hold` is set, and whole
/// messages (delivery and report) while `hold_messages` is set.
struct Deferred {
    inner: EmbeddedService,
    hold: Mutex<bool>,
    hold_messages: Mutex<bool>,
    held: Mutex<Vec<Held>>,
}

impl Deferred {
    fn new(inner: EmbeddedService) -> Arc<Deferred> {
        Arc::new(Deferred {
            inner,
            hold: Mutex::new(true),
            hold_messages: Mutex::new(false),
            held: Mutex::default(),
        })
    }
    fn defer(&self, f: Held) {
        if *self.hold.lock() {
            self.held.lock().push(f);
        } else {
            f();
        }
    }
    /// Runs the held completions, oldest first; returns how many ran.
    fn release(&self) -> usize {
        let held = std::mem::take(&mut *self.held.lock());
        let n = held.len();
        for f in held {
            f();
        }
        n
    }
    /// Forgets the held completions: their answers never come.
    fn lose(&self) -> usize {
        let n = self.held.lock().len();
        self.held.lock().clear();
        n
    }
}

impl Service for Deferred {
    fn sign_in(&self, name: &str, endpoint: Weak<dyn Endpoint>) -> Result<Text> {
        self.inner.sign_in(name, endpoint)
    }
    fn sign_out(&self, name: &Text) {
        self.inner.sign_out(name)
    }
    fn online(&self, name: &str) -> Option<Text> {
        self.inner.online(name)
    }
    fn same_user(&self, a: &str, b: &str) -> bool {
        self.inner.same_user(a, b)
    }
    fn lock_enforced(&self) -> bool {
        self.inner.lock_enforced()
    }
    fn issue_challenge(&self, done: ChallengeDone) {
        let inner = self.inner.clone();
        self.defer(Box::new(move || inner.issue_challenge(done)));
    }
    fn check_response(&self, challenge: &str, app_id: &str, response: &str, done: CheckDone) {
        let (inner, c, a, r) = (
            self.inner.clone(),
            challenge.to_owned(),
            app_id.to_owned(),
            response.to_owned(),
        );
        self.defer(Box::new(move || inner.check_response(&c, &a, &r, done)));
    }
    fn send(&self, from: &Text, to: &Text, msg: Message, done: SendDone) {
        if *self.hold_messages.lock() {
            let (inner, from, to) = (self.inner.clone(), from.clone(), to.clone());
            self.held
                .lock()
                .push(Box::new(move || inner.send(&from, &to, msg, done)));
            return;
        }
        // Delivered at once; only the delivery report is held back.
        let report: Arc<Mutex<Option<std::result::Result<(), service::Undeliverable>>>> =
            Arc::default();
        let r2 = report.clone();
        self.inner.send(
            from,
            to,
            msg,
            SendDone::from_fn(move |r| *r2.lock() = Some(r)),
        );
        let r = report
            .lock()
            .take()
            .expect("the embedded service reports inline");
        self.defer(Box::new(move || done.complete(r)));
    }
    fn timers(&self) -> &Timers {
        self.inner.timers()
    }
    fn invitation_timeout(&self) -> Duration {
        self.inner.invitation_timeout()
    }
    fn registry(&self) -> Arc<AppRegistry> {
        self.inner.registry()
    }
}

/// A client on a deferring service that enforces Lock and Key, its manager recorded as "M".
fn locked_client() -> (Arc<Deferred>, Client, SessionManager, Log) {
    let svc = service(true);
    svc.add_app_key(APP_ID, APP_KEY).unwrap();
    let d = Deferred::new(svc);
    let c = Client::new(d.clone(), "carol@example.com", DispatchMode::Manual).unwrap();
    let m = c.create_session_manager().unwrap();
    let log: Log = Arc::default();
    record_manager(&m, "M", &log);
    (d, c, m, log)
}

#[test]
fn lock_and_key_answers_arrive_later() {
    let (d, c, m, log) = locked_client();
    let challenge: Arc<Mutex<Option<String>>> = Arc::default();
    let ch = challenge.clone();
    m.advise(ManagerEventKind::LockChallenge, move |e| {
        if let ManagerEvent::LockChallenge { challenge, .. } = e {
            *ch.lock() = Some(challenge.as_str().to_string());
        }
    })
    .unwrap();
    drain(&c);
    log.lock().clear();

    m.request_challenge(7).unwrap();
    drain(&c);
    assert_eq!(*log.lock(), lines(&["M:LockStatusChanged(PendingResult)"]));
    assert_eq!(m.request_challenge(8), Err(MSGR_E_API_PENDING_UNLOCK));
    // No challenge issued yet: no response can be pending.
    assert_eq!(m.send_response(APP_ID, "x", 7), Err(MSGR_E_API_LOCKED));
    assert_eq!(d.release(), 1);
    drain(&c);
    assert_eq!(
        *log.lock(),
        lines(&["M:LockStatusChanged(PendingResult)", "M:LockChallenge(7)"])
    );
    log.lock().clear();
    let response = compute_response(challenge.lock().as_deref().unwrap(), APP_KEY);
    m.send_response(APP_ID, &response, 7).unwrap();
    // Being checked: the status waits, a second response finds nothing pending.
    assert_eq!(m.lock_status(), LockStatus::PendingResult);
    assert_eq!(
        m.send_response(APP_ID, &response, 7),
        Err(MSGR_E_API_LOCKED)
    );
    drain(&c);
    assert!(log.lock().is_empty());
    assert_eq!(d.release(), 1);
    drain(&c);
    assert_eq!(
        *log.lock(),
        lines(&["M:LockResult(7,true)", "M:LockStatusChanged(Unlocked)"])
    );
    assert_eq!(m.lock_status(), LockStatus::Unlocked);
    c.destroy();
}

#[test]
fn a_late_lock_answer_after_sign_out_changes_nothing() {
    let (d, c, m, log) = locked_client();
    drain(&c);
    m.request_challenge(1).unwrap();
    c.sign_out().unwrap();
    c.sign_in().unwrap();
    drain(&c);
    log.lock().clear();
    assert_eq!(d.release(), 1);
    drain(&c);
    assert!(log.lock().is_empty(), "{:?}", log.lock());
    assert_eq!(m.lock_status(), LockStatus::Initialized);
    c.destroy();
}

/// The delivery report of a step that ended the session never comes: OnTermination waits for
/// it no longer than the invitation timeout. A report that comes in time releases it, after
/// the step's OnSendError.
#[test]
fn a_termination_waits_for_the_report_no_longer_than_the_timeout() {
    let d = Deferred::new(service(true));
    *d.hold.lock() = false;
    let w = World::with_dyn(d.inner.clone(), d.clone());
    w.register_app("");
    let (a, _b) = w.connected();
    *d.hold.lock() = true;
    a.cancel(E_FAIL, None).unwrap();
    w.pump();
    assert_eq!(
        w.take(),
        lines(&[
            "A:StateChanged(Connected)@Cancelled",
            "B:StateChanged(Connected)@Cancelled",
            "B:Cancelled(NULL)@Cancelled",
            "B:Termination(E_FAIL,NULL)@Cancelled",
        ])
    );
    assert_eq!(d.lose(), 1);
    d.inner.advance_clock(119_999).unwrap();
    w.pump();
    assert!(w.take().is_empty());
    d.inner.advance_clock(1).unwrap();
    w.pump();
    assert_eq!(
        w.take(),
        lines(&["A:Termination(SR_SESSION_CANCELLED_LOCAL,NULL)@Cancelled"])
    );
    assert_eq!(w.a.live_sessions(), 0);

    // In time, and not delivered: OnSendError, then OnTermination, exactly once.
    let (a, _b) = {
        *d.hold.lock() = false;
        let pair = w.connected();
        *d.hold.lock() = true;
        pair
    };
    assert!(d.inner.set_reachable("bob@example.com", false));
    a.cancel(E_FAIL, None).unwrap();
    w.pump();
    assert_eq!(w.take(), lines(&["A:StateChanged(Connected)@Cancelled"]));
    assert_eq!(d.release(), 1);
    w.pump();
    assert_eq!(
        w.take(),
        lines(&[
            "A:SendError(SR_CANCEL_SEND_FAILURE)@Cancelled",
            "A:Termination(SR_SESSION_CANCELLED_LOCAL,NULL)@Cancelled",
        ])
    );
    d.inner.advance_clock(200_000).unwrap();
    w.pump();
    assert!(w.take().is_empty());
    assert_eq!(d.inner.pending_invitations(), 0);
}

/// Builds a world on a deferring service that delivers at once, with an invitation from A
/// to B pending; then holds every message.
fn crossing_world() -> (Arc<Deferred>, World, Session, Session) {
    let d = Deferred::new(service(true));
    *d.hold.lock() = false;
    let w = World::with_dyn(d.inner.clone(), d.clone());
    w.register_app("");
    let (a, b) = w.invited();
    *d.hold_messages.lock() = true;
    (d, w, a, b)
}

/// An Accept crossing a Cancel on the network: the cancel wins on both sides (the inviter
/// ended first and ignores the late acceptance; the invitee, connected meanwhile, ends
/// cancelled), each side ends exactly once.
#[test]
fn an_accept_crossing_a_cancel_ends_both_cancelled() {
    let (d, w, a, b) = crossing_world();
    a.cancel(SR_SESSION_CANCELLED_REMOTE, Some("no more"))
        .unwrap();
    b.accept(Some("yes")).unwrap();
    w.pump();
    assert_eq!(d.release(), 2);
    w.pump();
    assert_eq!(
        w.side("A"),
        lines(&[
            "A:StateChanged(Invitation)@Cancelled",
            "A:Termination(SR_SESSION_CANCELLED_LOCAL,\"no more\")@Cancelled",
        ])
    );
    assert_eq!(
        w.side("B"),
        lines(&[
            "B:StateChanged(Invitation)@Accepted",
            "B:BeforeAppLaunch(true)@Accepted",
            "B:ReadyToLaunch@Connected",
            "B:StateChanged(Accepted)@Connected",
            "B:StateChanged(Connected)@Cancelled",
            "B:Cancelled(\"no more\")@Cancelled",
            "B:Termination(SR_SESSION_CANCELLED_REMOTE,\"no more\")@Cancelled",
        ])
    );
    assert_eq!(
        (a.state(), b.state()),
        (SessionState::Cancelled, SessionState::Cancelled)
    );
    assert_eq!(w.a.live_sessions() + w.b.live_sessions(), 0);
}

/// An Accept crossing the inviter's timeout: the timeout wins on both sides.
#[test]
fn an_accept_crossing_the_timeout_ends_both_timed_out() {
    let (d, w, a, b) = crossing_world();
    b.accept(None).unwrap();
    d.inner.advance_clock(120_000).unwrap();
    w.pump();
    assert_eq!(d.release(), 2);
    w.pump();
    let ends = |tag: &str| {
        w.side(tag)
            .into_iter()
            .filter(|l| l.contains("Termination"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ends("A"),
        lines(&["A:Termination(SR_SESSION_TIMEOUT,NULL)@Terminated"])
    );
    assert_eq!(
        ends("B"),
        lines(&["B:Termination(SR_SESSION_TIMEOUT,NULL)@Terminated"])
    );
    assert!(!w.side("A").iter().any(|l| l.contains("Accepted(")));
    assert_eq!(
        (a.state(), b.state()),
        (SessionState::Terminated, SessionState::Terminated)
    );
    assert_eq!(d.inner.pending_invitations(), 0);
}
