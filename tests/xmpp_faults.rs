//! The network fails, and every session still ends exactly once on each side, with the
//! documented code, no later than the invitation timeout plus a grace: the XMPP service
//! against a real Prosody, with a fault proxy (tests/common/proxy.rs) between each client and
//! the server. Scenarios: a stanza lost at every step, steps that cross, duplicated and
//! delayed traffic, a connection cut while a step is in flight, a blackholed peer, the server
//! killed and restarted, and the peer's process killed (kill -9) in each session state.
//!
//! Short timeouts keep it fast: requests 1 s, invitations 3 s (the invitee's own deadline is
//! 8 s: the invitation timeout plus the library's five-second grace). A scenario that holds
//! a step back gives the side waiting for its answer a longer request timeout, so that no
//! outcome depends on how fast the machine is.
#![cfg(feature = "xmpp")]

mod common;
#[path = "common/proxy.rs"]
mod proxy;

use common::prosody::Prosody;
use common::*;
use msgrpriv::error::*;
use msgrpriv::events::{ManagerEvent, ManagerEventKind};
use msgrpriv::xmpp::{Credentials, Tls, XmppOptions, XmppService};
use msgrpriv::*;
use parking_lot::Mutex;
use proxy::{Dir, Proxy};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USERS: &[(&str, &str)] = &[("alice", "alicepw"), ("bob", "bobpw")];
const REQUEST: Duration = Duration::from_secs(1);
/// Two seconds longer than a request may take: a step's OnSendError comes well before the
/// inviter's deadline, also on a slow machine.
const INVITATION: Duration = Duration::from_secs(3);
/// How long a wait for an end may take: the invitee's deadline plus a generous margin for a
/// slow machine (a deadline, not a measurement).
const BOUND: Duration = Duration::from_secs(20);

/// Each user's password is their name followed by "pw".
fn creds() -> Credentials {
    Arc::new(|name: &str| name.split('@').next().map(|u| format!("{u}pw")))
}

fn options(host: &str, port: u16, invitation: Duration) -> XmppOptions {
    let mut o = XmppOptions::new(host, port, creds());
    o.tls = Tls::Plain;
    o.request_timeout = REQUEST;
    o.invitation_timeout = invitation;
    o.connect_timeout = Duration::from_secs(5);
    o
}

/// One signed-in user: its own service (its own connection, through a proxy or not), a
/// manager that records its events as "<tag>m:..." and every session it takes part in as
/// "<tag>:...".
struct Side {
    tag: &'static str,
    jid: String,
    svc: XmppService,
    client: Client,
    manager: SessionManager,
    received: Arc<Mutex<Vec<Session>>>,
    created: Mutex<Vec<Session>>,
}

impl Side {
    fn new(tag: &'static str, jid: String, o: XmppOptions, log: &Log) -> Side {
        let svc = XmppService::new(o).unwrap();
        let client = Client::new(Arc::new(svc.clone()), &jid, DispatchMode::Manual).unwrap();
        let manager = client.create_session_manager().unwrap();
        manager
            .register_application(APP, "Chess", "http://example.com/chess", "", 0)
            .unwrap();
        record_manager(&manager, &format!("{tag}m"), log);
        let received: Arc<Mutex<Vec<Session>>> = Arc::default();
        let (log2, received2) = (log.clone(), received.clone());
        manager
            .advise(ManagerEventKind::Invitation, move |e| {
                if let ManagerEvent::Invitation {
                    session, handled, ..
                } = e
                {
                    record_session(session, tag, &log2);
                    log2.lock().push(format!("{tag}:Invitation"));
                    *handled = true;
                    received2.lock().push(session.clone());
                }
            })
            .unwrap();
        Side {
            tag,
            jid,
            svc,
            client,
            manager,
            received,
            created: Mutex::default(),
        }
    }

    /// A session of this side's, recorded, application set.
    fn session(&self, log: &Log) -> Session {
        let s = self.manager.create_session().unwrap();
        record_session(&s, self.tag, log);
        self.created.lock().push(s.clone());
        s.set_application(APP).unwrap();
        s
    }

    fn invitee_session(&self) -> Option<Session> {
        self.received.lock().last().cloned()
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        self.client.destroy();
        for s in self
            .created
            .lock()
            .drain(..)
            .chain(self.received.lock().drain(..))
        {
            s.detach();
        }
    }
}

/// Alice ("A") and bob ("B"), each through their own proxy, on one server.
struct Pair {
    log: Log,
    a: Side,
    b: Side,
    pa: Proxy,
    pb: Proxy,
    server: Prosody,
}

impl Pair {
    fn new() -> Pair {
        Self::with_timeout(INVITATION)
    }

    fn with_timeout(invitation: Duration) -> Pair {
        Self::build(invitation, REQUEST, REQUEST)
    }

    /// `request_a`, `request_b`: alice's and bob's request timeouts.
    fn build(invitation: Duration, request_a: Duration, request_b: Duration) -> Pair {
        Self::custom(invitation, request_a, request_b, Duration::from_secs(30))
    }

    /// `keepalive`: how long a connection, or a session's peer, may be quiet before it is
    /// pinged (30 s by default: no scenario lasts that long).
    fn custom(
        invitation: Duration,
        request_a: Duration,
        request_b: Duration,
        keepalive: Duration,
    ) -> Pair {
        let server = Prosody::start(USERS);
        let pa = Proxy::start(server.addr);
        let pb = Proxy::start(server.addr);
        let log: Log = Arc::default();
        let mut oa = options(&pa.host(), pa.port(), invitation);
        oa.request_timeout = request_a;
        oa.keepalive = keepalive;
        let a = Side::new("A", server.jid("alice"), oa, &log);
        let mut ob = options(&pb.host(), pb.port(), invitation);
        ob.request_timeout = request_b;
        ob.keepalive = keepalive;
        let b = Side::new("B", server.jid("bob"), ob, &log);
        let p = Pair {
            log,
            a,
            b,
            pa,
            pb,
            server,
        };
        p.wait("presence both ways", Duration::from_secs(10), |p| {
            p.a.svc.online(&p.b.jid).is_some() && p.b.svc.online(&p.a.jid).is_some()
        });
        p.take();
        p
    }

    fn take(&self) -> Vec<String> {
        drain(&self.a.client);
        drain(&self.b.client);
        std::mem::take(&mut *self.log.lock())
    }

    fn logged(&self, prefix: &str) -> bool {
        self.log.lock().iter().any(|l| l.starts_with(prefix))
    }

    fn ended(&self, tag: &str) -> bool {
        self.logged(&format!("{tag}:Termination"))
    }

    /// Dispatches both clients until `done` holds; panics with the log after `bound`.
    fn wait(&self, what: &str, bound: Duration, done: impl Fn(&Pair) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < bound,
                "timed out after {bound:?} waiting for {what}; log: {:#?}",
                self.log.lock()
            );
            self.a
                .client
                .dispatch(Some(Duration::from_millis(2)))
                .unwrap();
            self.b
                .client
                .dispatch(Some(Duration::from_millis(2)))
                .unwrap();
        }
        drain(&self.a.client);
        drain(&self.b.client);
    }

    /// Dispatches both clients for `d`.
    fn settle(&self, d: Duration) {
        let start = Instant::now();
        self.wait("nothing", d + Duration::from_secs(5), |_| {
            start.elapsed() >= d
        });
    }

    /// Waits until both sides ended, then a little longer (nothing may follow), and returns
    /// the log.
    fn both_end(&self, what: &str) -> Vec<String> {
        self.wait(what, BOUND, |p| p.ended("A") && p.ended("B"));
        self.settle(Duration::from_millis(300));
        self.take()
    }

    /// Alice invites bob; returns both sides once the invitation arrived (log emptied).
    fn invited(&self) -> (Session, Session) {
        let before = self.b.received.lock().len();
        let acked = self.pa.watch_next(Dir::Down, 1, is_result);
        let s = self.a.session(&self.log);
        s.invite(&self.b.jid, None).unwrap();
        self.wait("the invitation", Duration::from_secs(10), |p| {
            p.b.received.lock().len() > before
        });
        // Bob's acknowledgement has reached alice's connection.
        assert!(
            acked.wait(1, Duration::from_secs(5)),
            "the invitation acknowledged"
        );
        self.take();
        (s, self.b.invitee_session().unwrap())
    }

    /// Both sides connected (log emptied).
    fn connected(&self) -> (Session, Session) {
        let (s, r) = self.invited();
        let acked = self.pb.watch_next(Dir::Down, 1, is_result);
        r.accept(None).unwrap();
        self.wait("connected", Duration::from_secs(10), |_| {
            s.state() == SessionState::Connected && r.state() == SessionState::Connected
        });
        assert!(
            acked.wait(1, Duration::from_secs(5)),
            "the acceptance acknowledged"
        );
        self.take();
        (s, r)
    }
}

/// The lines of side `tag` ("A" gives the "A:..." lines, not the manager's "Am:...").
fn side(log: &[String], tag: &str) -> Vec<String> {
    let prefix = format!("{tag}:");
    log.iter()
        .filter(|l| l.starts_with(&prefix))
        .cloned()
        .collect()
}

/// Checks that `tag`'s lines are `want` (each a line without the tag), which ends with its
/// single OnTermination.
fn expect_side(log: &[String], tag: &str, want: &[&str]) {
    let want: Vec<String> = want.iter().map(|l| format!("{tag}:{l}")).collect();
    assert_eq!(side(log, tag), want, "side {tag}; whole log: {log:#?}");
    let ends = want.iter().filter(|l| l.contains(":Termination(")).count();
    assert!(ends <= 1);
}

fn has(s: &str, what: &str) -> bool {
    s.contains(what)
}

/// An IQ result (an acknowledgement).
fn is_result(s: &str) -> bool {
    s.starts_with("<iq") && (s.contains("type='result'") || s.contains("type=\"result\""))
}

/// The id attribute of a stanza's start tag.
fn stanza_id(s: &str) -> Option<String> {
    let head = &s[..s.find('>')?];
    let at = head.find(" id=")? + 4;
    let quote = head[at..].chars().next()?;
    let rest = &head[at + 1..];
    Some(rest[..rest.find(quote)?].to_string())
}

/// Matches the first stanza `pred` matches and every later one with its id that `pred`
/// matches too: a step and the copies the library sends of it while no answer comes.
fn every_copy(pred: impl Fn(&str) -> bool + Send + 'static) -> impl Fn(&str) -> bool + Send {
    let first: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    move |s: &str| {
        if !pred(s) {
            return false;
        }
        let mut first = first.lock().unwrap();
        match (&*first, stanza_id(s)) {
            (None, id) => {
                *first = id;
                true
            }
            (Some(f), Some(id)) => *f == id,
            (Some(_), None) => false,
        }
    }
}

/// Every copy of a step may be dropped (the library sends a few).
const ALL: usize = 100;

// ---- a stanza lost at every step ----

/// One copy of each step lost (the first one): the library sends it again after a third of
/// the request timeout, and nothing else shows.
#[test]
fn one_lost_copy_of_each_step_is_made_up_for() {
    let p = Pair::new();
    let lost = |proxy: &Proxy, dir: Dir, what: &'static str| {
        proxy.drop_next(dir, 1, move |s| has(s, what))
    };
    // Invitation, acceptance, context data, cancel.
    let rules = [
        lost(&p.pa, Dir::Up, "session-initiate"),
        lost(&p.pb, Dir::Up, "session-accept"),
        lost(&p.pa, Dir::Up, "<context"),
        lost(&p.pa, Dir::Up, "session-terminate"),
    ];
    let (s, r) = p.invited();
    r.accept(Some("yes")).unwrap();
    p.wait("connected", Duration::from_secs(10), |_| {
        s.state() == SessionState::Connected && r.state() == SessionState::Connected
    });
    s.send_context_data("once").unwrap();
    p.wait("context data", Duration::from_secs(10), |_| {
        r.context_data().as_str() == "once"
    });
    s.cancel(E_FAIL, Some("bye")).unwrap();
    let log = p.both_end("both ends");
    assert!(rules.iter().all(|r| r.fired() == 1));
    expect_side(
        &log,
        "A",
        &[
            "StateChanged(Invitation)@Connected",
            "Accepted(\"yes\")@Connected",
            "ReadyToLaunch@Connected",
            "StateChanged(Accepted)@Connected",
            "StateChanged(Connected)@Cancelled",
            "Termination(SR_SESSION_CANCELLED_LOCAL,\"bye\")@Cancelled",
        ],
    );
    expect_side(
        &log,
        "B",
        &[
            "StateChanged(Invitation)@Accepted",
            "BeforeAppLaunch(true)@Accepted",
            "ReadyToLaunch@Connected",
            "StateChanged(Accepted)@Connected",
            "ContextData(once)@Connected",
            "StateChanged(Connected)@Cancelled",
            "Cancelled(\"bye\")@Cancelled",
            "Termination(E_FAIL,\"bye\")@Cancelled",
        ],
    );
    // A decline, then the inviter's timeout, each with one copy lost.
    let decline = lost(&p.pb, Dir::Up, "session-terminate");
    let (_s, r) = p.invited();
    r.decline(Some("no")).unwrap();
    let log = p.both_end("the decline");
    assert_eq!(decline.fired(), 1);
    expect_side(
        &log,
        "A",
        &[
            "StateChanged(Invitation)@Declined",
            "Declined(\"no\")@Declined",
            "Termination(SR_INVITATION_DECLINED,\"no\")@Declined",
        ],
    );
    let timeout = lost(&p.pa, Dir::Up, "<timeout");
    let before = p.b.received.lock().len();
    let (_s, _r) = p.invited();
    assert_eq!(p.b.received.lock().len(), before + 1);
    let log = p.both_end("the timeout");
    assert_eq!(timeout.fired(), 1);
    for tag in ["A", "B"] {
        expect_side(
            &log,
            tag,
            &[
                "StateChanged(Invitation)@Terminated",
                "Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
            ],
        );
    }
}

#[test]
fn an_invitation_lost_with_every_copy_is_a_send_error_then_a_timeout() {
    let p = Pair::new();
    let rule =
        p.pa.drop_next(Dir::Up, ALL, every_copy(|s| has(s, "session-initiate")));
    let s = p.a.session(&p.log);
    s.invite(&p.b.jid, None).unwrap();
    p.wait("the inviter's end", BOUND, |p| p.ended("A"));
    p.settle(Duration::from_millis(300));
    let log = p.take();
    assert!(rule.fired() >= 1);
    expect_side(
        &log,
        "A",
        &[
            "StateChanged(Ready)@Invitation",
            "SendError(SR_INVITATION_SEND_FAILURE)@Invitation",
            "StateChanged(Invitation)@Terminated",
            "Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
        ],
    );
    expect_side(&log, "B", &[]);
    assert!(p.b.invitee_session().is_none());
}

#[test]
fn an_acceptance_lost_with_every_copy_ends_both_sides_at_the_timeout() {
    let p = Pair::new();
    let (_s, r) = p.invited();
    let rule =
        p.pb.drop_next(Dir::Up, ALL, every_copy(|s| has(s, "session-accept")));
    r.accept(Some("yes")).unwrap();
    let log = p.both_end("both ends");
    assert!(rule.fired() >= 1);
    expect_side(
        &log,
        "A",
        &[
            "StateChanged(Invitation)@Terminated",
            "Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
        ],
    );
    // Bob launched at once; his acceptance was never acknowledged, and the inviter's
    // timeout reaches him.
    expect_side(
        &log,
        "B",
        &[
            "StateChanged(Invitation)@Accepted",
            "BeforeAppLaunch(true)@Accepted",
            "ReadyToLaunch@Connected",
            "StateChanged(Accepted)@Connected",
            "SendError(SR_ACCEPT_SEND_FAILURE)@Connected",
            "StateChanged(Connected)@Terminated",
            "Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
        ],
    );
}

#[test]
fn a_decline_lost_with_every_copy_ends_the_inviter_at_the_timeout() {
    let p = Pair::new();
    let (_s, r) = p.invited();
    let rule =
        p.pb.drop_next(Dir::Up, ALL, every_copy(|s| has(s, "session-terminate")));
    r.decline(Some("no")).unwrap();
    let log = p.both_end("both ends");
    assert!(rule.fired() >= 1);
    expect_side(
        &log,
        "A",
        &[
            "StateChanged(Invitation)@Terminated",
            "Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
        ],
    );
    expect_side(
        &log,
        "B",
        &[
            "StateChanged(Invitation)@Declined",
            "SendError(SR_DECLINE_SEND_FAILURE)@Declined",
            "Termination(SR_INVITATION_DECLINED,\"no\")@Declined",
        ],
    );
}

#[test]
fn a_cancel_of_an_invitation_lost_with_every_copy_ends_the_invitee_at_its_deadline() {
    let p = Pair::new();
    let (s, _r) = p.invited();
    let rule =
        p.pa.drop_next(Dir::Up, ALL, every_copy(|s| has(s, "session-terminate")));
    s.cancel(E_FAIL, Some("bye")).unwrap();
    let log = p.both_end("both ends");
    assert!(rule.fired() >= 1);
    expect_side(
        &log,
        "A",
        &[
            "StateChanged(Invitation)@Cancelled",
            "SendError(SR_CANCEL_SEND_FAILURE)@Cancelled",
            "Termination(SR_SESSION_CANCELLED_LOCAL,\"bye\")@Cancelled",
        ],
    );
    expect_side(
        &log,
        "B",
        &[
            "StateChanged(Invitation)@Terminated",
            "Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
        ],
    );
}

#[test]
fn context_data_lost_with_every_copy_is_a_send_error_and_the_session_goes_on() {
    let p = Pair::new();
    let (s, r) = p.connected();
    let rule =
        p.pa.drop_next(Dir::Up, ALL, every_copy(|s| has(s, "<context")));
    s.send_context_data("lost").unwrap();
    p.wait("the send error", Duration::from_secs(10), |p| {
        p.logged("A:SendError")
    });
    s.send_context_data("found").unwrap();
    p.wait("context data", Duration::from_secs(10), |_| {
        r.context_data().as_str() == "found"
    });
    r.cancel(E_UNEXPECTED, None).unwrap();
    let log = p.both_end("both ends");
    assert!(rule.fired() >= 1);
    expect_side(
        &log,
        "A",
        &[
            "SendError(SR_CONTEXT_DATA_SEND_FAILURE)@Connected",
            "StateChanged(Connected)@Cancelled",
            "Cancelled(NULL)@Cancelled",
            "Termination(E_UNEXPECTED,NULL)@Cancelled",
        ],
    );
    expect_side(
        &log,
        "B",
        &[
            "ContextData(found)@Connected",
            "StateChanged(Connected)@Cancelled",
            "Termination(SR_SESSION_CANCELLED_LOCAL,NULL)@Cancelled",
        ],
    );
}

#[test]
fn a_timeout_lost_with_every_copy_ends_the_invitee_at_its_own_deadline() {
    let p = Pair::new();
    let (_s, _r) = p.invited();
    let rule =
        p.pa.drop_next(Dir::Up, ALL, every_copy(|s| has(s, "<timeout")));
    let log = p.both_end("both ends");
    assert!(rule.fired() >= 1);
    for tag in ["A", "B"] {
        expect_side(
            &log,
            tag,
            &[
                "StateChanged(Invitation)@Terminated",
                "Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
            ],
        );
    }
}

/// A connected session whose cancel is lost with every copy: the canceller ends; the other
/// side hears nothing until its session ping (after a quiet keepalive, 2 s here) is answered
/// `<unknown-session/>`.
#[test]
fn a_cancel_of_a_connected_session_lost_with_every_copy_ends_the_other_side_at_its_ping() {
    let p = Pair::custom(INVITATION, REQUEST, REQUEST, Duration::from_secs(2));
    let (s, _r) = p.connected();
    let rule =
        p.pa.drop_next(Dir::Up, ALL, every_copy(|s| has(s, "session-terminate")));
    s.cancel(E_FAIL, None).unwrap();
    let log = p.both_end("both ends");
    assert!(rule.fired() >= 1);
    expect_side(
        &log,
        "A",
        &[
            "StateChanged(Connected)@Cancelled",
            "SendError(SR_CANCEL_SEND_FAILURE)@Cancelled",
            "Termination(SR_SESSION_CANCELLED_LOCAL,NULL)@Cancelled",
        ],
    );
    expect_side(
        &log,
        "B",
        &[
            "StateChanged(Connected)@Terminated",
            "Termination(SR_CONNECTION_FAILURE,NULL)@Terminated",
        ],
    );
}

/// Bob's connection goes silent (blackholed, nothing closed) with the session connected:
/// alice's session ping goes unanswered and ends her side; bob's own keepalive ping to the
/// server goes unanswered, his connection counts as lost and his side ends too.
#[test]
fn a_silent_connected_peer_is_found_by_the_pings() {
    let p = Pair::custom(INVITATION, REQUEST, REQUEST, Duration::from_secs(2));
    let (_s, _r) = p.connected();
    p.pb.blackhole(true);
    let log = p.both_end("both ends");
    for tag in ["A", "B"] {
        expect_side(
            &log,
            tag,
            &[
                "StateChanged(Connected)@Terminated",
                "Termination(SR_CONNECTION_FAILURE,NULL)@Terminated",
            ],
        );
    }
    p.pb.blackhole(false);
}

/// Alice signs out; her `<gone/>` is lost, but her unavailable presence ends bob's side.
#[test]
fn a_lost_sign_out_notice_is_made_up_for_by_presence() {
    let p = Pair::new();
    let (_s, _r) = p.connected();
    let rule = p.pa.drop_next(Dir::Up, 1, |s| has(s, "<gone"));
    p.a.client.sign_out().unwrap();
    let log = p.both_end("both ends");
    assert!(rule.fired() >= 1);
    for tag in ["A", "B"] {
        expect_side(
            &log,
            tag,
            &[
                "StateChanged(Connected)@Terminated",
                "Termination(SR_CONNECTION_FAILURE,NULL)@Terminated",
            ],
        );
    }
}

// ---- the connection cut, blackholed, delayed ----

#[test]
fn a_connection_cut_with_context_data_in_flight() {
    let p = Pair::new();
    let (s, _r) = p.connected();
    let rule = p.pa.drop_next(Dir::Up, 1, |s| has(s, "<context"));
    s.send_context_data("in flight").unwrap();
    assert!(rule.wait(1, Duration::from_secs(5)), "the step left alice");
    p.pa.cut();
    // Alice's events are delivered once her side has ended (each then reads Terminated).
    let start = Instant::now();
    while s.state() != SessionState::Terminated {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "alice's side ends"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let log = p.both_end("both ends");
    expect_side(
        &log,
        "A",
        &[
            "SendError(SR_CONTEXT_DATA_SEND_FAILURE)@Terminated",
            "StateChanged(Connected)@Terminated",
            "Termination(SR_CONNECTION_FAILURE,NULL)@Terminated",
        ],
    );
    // Prosody saw alice's connection close: her unavailable presence ends bob's side.
    expect_side(
        &log,
        "B",
        &[
            "StateChanged(Connected)@Terminated",
            "Termination(SR_CONNECTION_FAILURE,NULL)@Terminated",
        ],
    );
    assert!(log.contains(&"Am:LockStatusChanged(NotInitialized)".to_string()));
    // Signed in again (backoff: the first retry after about a second).
    p.wait("alice signed in again", BOUND, |p| {
        p.a.client.is_signed_in()
    });
    p.wait("the sign-in's events", Duration::from_secs(5), |p| {
        p.logged("Am:LockStatusChanged(Disabled)")
    });
    assert_eq!(
        p.take()
            .into_iter()
            .filter(|l| l.starts_with("Am:"))
            .collect::<Vec<_>>(),
        lines(&["Am:LockEnable(false)", "Am:LockStatusChanged(Disabled)"])
    );
    assert!(p.pa.accepted() >= 2);
}

#[test]
fn delayed_traffic_changes_nothing() {
    // A request crosses four delayed hops: its answer takes over 600 ms, so the requests wait
    // longer than the default second (nothing here is meant to time out).
    let long = Duration::from_secs(10);
    let p = Pair::build(long, long, long);
    p.pa.delay(Duration::from_millis(150));
    p.pb.delay(Duration::from_millis(150));
    let (s, r) = p.invited();
    r.accept(Some("yes")).unwrap();
    p.wait("connected", Duration::from_secs(10), |_| {
        s.state() == SessionState::Connected && r.state() == SessionState::Connected
    });
    s.send_context_data("slow").unwrap();
    p.wait("context data", Duration::from_secs(10), |_| {
        r.context_data().as_str() == "slow"
    });
    s.cancel(E_FAIL, Some("bye")).unwrap();
    let log = p.both_end("both ends");
    expect_side(
        &log,
        "A",
        &[
            "StateChanged(Invitation)@Connected",
            "Accepted(\"yes\")@Connected",
            "ReadyToLaunch@Connected",
            "StateChanged(Accepted)@Connected",
            "StateChanged(Connected)@Cancelled",
            "Termination(SR_SESSION_CANCELLED_LOCAL,\"bye\")@Cancelled",
        ],
    );
    expect_side(
        &log,
        "B",
        &[
            "StateChanged(Invitation)@Accepted",
            "BeforeAppLaunch(true)@Accepted",
            "ReadyToLaunch@Connected",
            "StateChanged(Accepted)@Connected",
            "ContextData(slow)@Connected",
            "StateChanged(Connected)@Cancelled",
            "Cancelled(\"bye\")@Cancelled",
            "Termination(E_FAIL,\"bye\")@Cancelled",
        ],
    );
}

#[test]
fn duplicated_steps_are_taken_once() {
    let p = Pair::new();
    let dup =
        p.pa.duplicate_next(Dir::Up, 1, |s| has(s, "session-initiate"));
    let (s, r) = p.invited();
    p.settle(Duration::from_millis(200));
    assert_eq!(dup.fired(), 1);
    assert_eq!(p.b.received.lock().len(), 1, "one invitation");
    let dup =
        p.pa.duplicate_next(Dir::Up, 1, |s| has(s, "session-terminate"));
    s.cancel(E_FAIL, None).unwrap();
    let log = p.both_end("both ends");
    assert_eq!(dup.fired(), 1);
    expect_side(
        &log,
        "A",
        &[
            "StateChanged(Invitation)@Cancelled",
            "Termination(SR_SESSION_CANCELLED_LOCAL,NULL)@Cancelled",
        ],
    );
    expect_side(
        &log,
        "B",
        &[
            "StateChanged(Invitation)@Cancelled",
            "Cancelled(NULL)@Cancelled",
            "Termination(E_FAIL,NULL)@Cancelled",
        ],
    );
    drop(r);
}

// ---- steps that cross ----

#[test]
fn a_cancel_crossing_an_acceptance_wins() {
    // Bob waits for the answer to his acceptance longer than it is held.
    let p = Pair::build(INVITATION, REQUEST, Duration::from_secs(10));
    let (s, r) = p.invited();
    // Bob's acceptance waits at his proxy until his next stanza (his answer to the cancel).
    let held = p.pb.hold_next(Dir::Up, Duration::from_secs(10), |s| {
        has(s, "session-accept")
    });
    r.accept(None).unwrap();
    p.wait("bob connected", Duration::from_secs(10), |_| {
        r.state() == SessionState::Connected
    });
    assert_eq!(held.fired(), 1);
    s.cancel(E_FAIL, Some("bye")).unwrap();
    let log = p.both_end("both ends");
    expect_side(
        &log,
        "A",
        &[
            "StateChanged(Invitation)@Cancelled",
            "Termination(SR_SESSION_CANCELLED_LOCAL,\"bye\")@Cancelled",
        ],
    );
    expect_side(
        &log,
        "B",
        &[
            "StateChanged(Invitation)@Accepted",
            "BeforeAppLaunch(true)@Accepted",
            "ReadyToLaunch@Connected",
            "StateChanged(Accepted)@Connected",
            "StateChanged(Connected)@Cancelled",
            "Cancelled(\"bye\")@Cancelled",
            "Termination(E_FAIL,\"bye\")@Cancelled",
        ],
    );
}

#[test]
fn both_sides_cancelling_at_once_end_once_each() {
    // Alice waits for the answer to her cancel longer than it is held.
    let p = Pair::build(INVITATION, Duration::from_secs(10), REQUEST);
    let (s, r) = p.connected();
    // Alice's cancel waits at her proxy until her answer to bob's has gone.
    let held = p.pa.hold_next(Dir::Up, Duration::from_secs(10), |s| {
        has(s, "session-terminate")
    });
    s.cancel(E_FAIL, Some("a")).unwrap();
    assert!(held.wait(1, Duration::from_secs(5)));
    r.cancel(E_UNEXPECTED, Some("b")).unwrap();
    let log = p.both_end("both ends");
    for (tag, data) in [("A", "a"), ("B", "b")] {
        expect_side(
            &log,
            tag,
            &[
                "StateChanged(Connected)@Cancelled",
                &format!("Termination(SR_SESSION_CANCELLED_LOCAL,\"{data}\")@Cancelled"),
            ],
        );
    }
}

#[test]
fn an_acceptance_crossing_the_timeout_loses() {
    // Bob waits for the answer to his acceptance longer than it is held.
    let p = Pair::build(INVITATION, REQUEST, Duration::from_secs(10));
    let (_s, r) = p.invited();
    // Bob's acceptance waits until his answer to the timeout has gone.
    let held = p.pb.hold_next(Dir::Up, Duration::from_secs(15), |s| {
        has(s, "session-accept")
    });
    r.accept(None).unwrap();
    let log = p.both_end("both ends");
    assert_eq!(held.fired(), 1);
    expect_side(
        &log,
        "A",
        &[
            "StateChanged(Invitation)@Terminated",
            "Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
        ],
    );
    expect_side(
        &log,
        "B",
        &[
            "StateChanged(Invitation)@Accepted",
            "BeforeAppLaunch(true)@Accepted",
            "ReadyToLaunch@Connected",
            "StateChanged(Accepted)@Connected",
            "StateChanged(Connected)@Terminated",
            "Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
        ],
    );
}

// ---- the server killed and restarted ----

/// The server is killed with a session in `state` (Invitation or Connected): each side ends
/// once with SR_CONNECTION_FAILURE and is signed out; the server comes back on the same port
/// and both are signed in again, and a new invitation goes through.
fn server_killed(state: SessionState) {
    let mut p = Pair::new();
    let (_s, _r) = match state {
        SessionState::Invitation => p.invited(),
        _ => p.connected(),
    };
    let before = match state {
        SessionState::Invitation => "Invitation",
        _ => "Connected",
    };
    p.server.kill();
    let log = p.both_end("both ends");
    for tag in ["A", "B"] {
        expect_side(
            &log,
            tag,
            &[
                &format!("StateChanged({before})@Terminated"),
                "Termination(SR_CONNECTION_FAILURE,NULL)@Terminated",
            ],
        );
        assert_eq!(
            side(&log, &format!("{tag}m")),
            lines(&[&format!("{tag}m:LockStatusChanged(NotInitialized)")])
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    p.server.restart();
    p.wait("both signed in again", BOUND, |p| {
        p.logged("Am:LockStatusChanged(Disabled)") && p.logged("Bm:LockStatusChanged(Disabled)")
    });
    let log = p.take();
    for tag in ["A", "B"] {
        assert_eq!(
            side(&log, &format!("{tag}m")),
            lines(&[
                &format!("{tag}m:LockEnable(false)"),
                &format!("{tag}m:LockStatusChanged(Disabled)"),
            ])
        );
    }
    p.wait("presence both ways", Duration::from_secs(10), |p| {
        p.a.svc.online(&p.b.jid).is_some() && p.b.svc.online(&p.a.jid).is_some()
    });
    let (s, r) = p.invited();
    r.decline(None).unwrap();
    let log = p.both_end("the new session's end");
    assert!(log.contains(&"A:Termination(SR_INVITATION_DECLINED,NULL)@Declined".to_string()));
    drop(s);
}

#[test]
fn the_server_killed_mid_invitation() {
    server_killed(SessionState::Invitation);
}

#[test]
fn the_server_killed_mid_session() {
    server_killed(SessionState::Connected);
}

// ---- the peer's process killed ----

/// The peer process: a msgrpriv client in a process of its own (this test binary run again
/// with MSGRPRIV_FAULTS_PEER set; without it this test does nothing). It prints
/// "PEER:<what>" lines as it goes, and ends by itself after 60 s.
///
/// Modes: "invitee" (bob: takes invitations, answers none), "accepter" (bob: accepts),
/// "inviter" (alice: invites MSGRPRIV_FAULTS_INVITE once it sees them online).
#[test]
fn peer_process() {
    let Ok(mode) = std::env::var("MSGRPRIV_FAULTS_PEER") else {
        return;
    };
    let addr: std::net::SocketAddr = std::env::var("MSGRPRIV_FAULTS_SERVER")
        .unwrap()
        .parse()
        .unwrap();
    let me = std::env::var("MSGRPRIV_FAULTS_ME").unwrap();
    let o = options(&addr.ip().to_string(), addr.port(), Duration::from_secs(60));
    let log: Log = Arc::default();
    let side = Side::new("P", me, o, &log);
    let say = |what: &str| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "PEER:{what}");
        let _ = out.flush();
    };
    say("ready");
    let mut invited: Option<Session> = None;
    if mode == "inviter" {
        let to = std::env::var("MSGRPRIV_FAULTS_INVITE").unwrap();
        let start = Instant::now();
        while side.svc.online(&to).is_none() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let s = side.session(&log);
        s.invite(&to, None).unwrap();
        say("invited");
        invited = Some(s);
    }
    let start = Instant::now();
    let mut told = String::new();
    while start.elapsed() < Duration::from_secs(60) {
        side.client
            .dispatch(Some(Duration::from_millis(5)))
            .unwrap();
        let s = invited.clone().or_else(|| side.invitee_session());
        let Some(s) = s else { continue };
        let state = format!("{:?}", s.state());
        if state != told {
            if mode == "accepter" && s.state() == SessionState::Invitation {
                s.accept(None).unwrap();
            }
            // The acknowledgement of the step that led here leaves on the client's own
            // thread: give it a moment before the parent may kill this process.
            std::thread::sleep(Duration::from_millis(100));
            say(&state);
            told = state;
        }
    }
}

/// The peer process, running.
struct PeerProcess {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl PeerProcess {
    fn start(server: &Prosody, mode: &str, me: &str, invite: &str) -> PeerProcess {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args(["--exact", "peer_process", "--nocapture", "--test-threads=1"])
            .env("MSGRPRIV_FAULTS_PEER", mode)
            .env("MSGRPRIV_FAULTS_SERVER", server.addr.to_string())
            .env("MSGRPRIV_FAULTS_ME", me)
            .env("MSGRPRIV_FAULTS_INVITE", invite)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the peer process starts");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                // libtest's "test peer_process ... " may start the line.
                if let Some(i) = l.find("PEER:") {
                    if tx.send(l[i + 5..].to_string()).is_err() {
                        break;
                    }
                }
            }
        });
        PeerProcess { child, lines }
    }

    /// Waits (at most 15 s) for the peer to say `what`.
    fn expect(&self, what: &str) {
        let start = Instant::now();
        loop {
            let left = Duration::from_secs(15).saturating_sub(start.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(l) if l == what => return,
                Ok(_) => {}
                Err(_) => panic!("the peer never said {what}"),
            }
        }
    }

    /// kill -9.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One side in this process ("A" for alice or "B" for bob), with a long invitation timeout:
/// only the peer's death can end its session within the test's bounds.
struct Lone {
    log: Log,
    side: Side,
}

impl Lone {
    fn new(server: &Prosody, tag: &'static str, user: &str) -> Lone {
        let log: Log = Arc::default();
        let o = options(&server.host(), server.addr.port(), Duration::from_secs(60));
        let side = Side::new(tag, server.jid(user), o, &log);
        Lone { log, side }
    }

    fn wait(&self, what: &str, bound: Duration, done: impl Fn(&Lone) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < bound,
                "timed out after {bound:?} waiting for {what}; log: {:#?}",
                self.log.lock()
            );
            self.side
                .client
                .dispatch(Some(Duration::from_millis(2)))
                .unwrap();
        }
        drain(&self.side.client);
    }

    fn take(&self) -> Vec<String> {
        drain(&self.side.client);
        std::mem::take(&mut *self.log.lock())
    }

    /// Waits for this side's end after the peer was killed at `killed`; returns the log and
    /// prints how long the detection took.
    fn end_after_kill(&self, killed: Instant, case: &str) -> Vec<String> {
        let tag = self.side.tag;
        self.wait("the end after the peer died", BOUND, |l| {
            l.log
                .lock()
                .iter()
                .any(|x| x.starts_with(&format!("{tag}:Termination")))
        });
        println!("{case}: dead peer detected after {:?}", killed.elapsed());
        let start = Instant::now();
        self.wait("nothing more", Duration::from_secs(5), |_| {
            start.elapsed() > Duration::from_millis(300)
        });
        self.take()
    }
}

fn peer_killed_with_alice_inviting(accept: bool) {
    let server = Prosody::start(USERS);
    let mut peer = PeerProcess::start(
        &server,
        if accept { "accepter" } else { "invitee" },
        &server.jid("bob"),
        "",
    );
    peer.expect("ready");
    let a = Lone::new(&server, "A", "alice");
    let bob = server.jid("bob");
    a.wait("bob online", Duration::from_secs(10), |a| {
        a.side.svc.online(&bob).is_some()
    });
    a.take();
    let s = a.side.session(&a.log);
    s.invite(&bob, None).unwrap();
    let before = if accept {
        peer.expect("Connected");
        a.wait("connected", Duration::from_secs(10), |_| {
            s.state() == SessionState::Connected
        });
        "Connected"
    } else {
        peer.expect("Invitation");
        "Invitation"
    };
    a.take();
    let killed = Instant::now();
    peer.kill();
    let mut log = a.end_after_kill(killed, &format!("inviter in SS_{before}"));
    // The peer process may die after it took the invitation but before its
    // acknowledgement left: the invitation was not delivered, as far as alice can know.
    if !accept {
        log.retain(|l| l != "A:SendError(SR_INVITATION_SEND_FAILURE)@Invitation");
    }
    expect_side(
        &log,
        "A",
        &[
            &format!("StateChanged({before})@Terminated"),
            "Termination(SR_CONNECTION_FAILURE,NULL)@Terminated",
        ],
    );
}

#[test]
fn the_invitees_process_killed_in_ss_invitation() {
    peer_killed_with_alice_inviting(false);
}

#[test]
fn the_invitees_process_killed_in_ss_connected() {
    peer_killed_with_alice_inviting(true);
}

/// Bob is invited by alice's process, answers as `answer` says (None, Some(false): accepted
/// and left in SS_ACCEPTED, Some(true): accepted and connected), then alice's process is
/// killed.
fn peer_killed_with_bob_invited(answer: Option<bool>) {
    let server = Prosody::start(USERS);
    let b = Lone::new(&server, "B", "bob");
    let mut peer = PeerProcess::start(&server, "inviter", &server.jid("alice"), &server.jid("bob"));
    peer.expect("invited");
    b.wait("the invitation", Duration::from_secs(10), |b| {
        b.side.invitee_session().is_some()
    });
    b.take();
    let r = b.side.invitee_session().unwrap();
    let before = match answer {
        None => "Invitation",
        Some(connect) => {
            r.accept(None).unwrap();
            peer.expect("Connected");
            if connect {
                b.wait("connected", Duration::from_secs(10), |_| {
                    r.state() == SessionState::Connected
                });
                b.take();
                "Connected"
            } else {
                // Not dispatched: BeforeAppLaunch waits, the session stays SS_ACCEPTED.
                assert_eq!(r.state(), SessionState::Accepted);
                "Accepted"
            }
        }
    };
    let killed = Instant::now();
    peer.kill();
    if before == "Accepted" {
        // Not dispatched until the end: the session is left SS_ACCEPTED when it ends.
        let start = Instant::now();
        while !r.state().is_terminal() {
            assert!(start.elapsed() < BOUND, "bob's side ends");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let log = b.end_after_kill(killed, &format!("invitee in SS_{before}"));
    let mut want: Vec<String> = Vec::new();
    if before == "Accepted" {
        want.extend(lines(&[
            "StateChanged(Invitation)@Terminated",
            "BeforeAppLaunch(true)@Terminated",
        ]));
    }
    want.push(format!("StateChanged({before})@Terminated"));
    want.push("Termination(SR_CONNECTION_FAILURE,NULL)@Terminated".into());
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    expect_side(&log, "B", &want);
}

#[test]
fn the_inviters_process_killed_in_ss_invitation() {
    peer_killed_with_bob_invited(None);
}

#[test]
fn the_inviters_process_killed_in_ss_accepted() {
    peer_killed_with_bob_invited(Some(false));
}

#[test]
fn the_inviters_process_killed_in_ss_connected() {
    peer_killed_with_bob_invited(Some(true));
}

/// Every acknowledgement of bob's acceptance (and of its copies) is lost: alice is
/// connected, bob counts the acceptance undelivered, keeps the invitee's deadline and ends at
/// it, and tells alice, who ends timed out too.
#[test]
fn an_acceptance_whose_every_acknowledgement_is_lost_ends_both_sides() {
    let p = Pair::new();
    let (s, r) = p.invited();
    let rule = p.pb.drop_next(Dir::Down, ALL, every_copy(is_result));
    r.accept(None).unwrap();
    p.wait("alice connected", Duration::from_secs(10), |_| {
        s.state() == SessionState::Connected
    });
    let log = p.both_end("both ends");
    assert!(rule.fired() >= 1);
    expect_side(
        &log,
        "B",
        &[
            "StateChanged(Invitation)@Accepted",
            "BeforeAppLaunch(true)@Accepted",
            "ReadyToLaunch@Connected",
            "StateChanged(Accepted)@Connected",
            "SendError(SR_ACCEPT_SEND_FAILURE)@Connected",
            "StateChanged(Connected)@Terminated",
            "Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
        ],
    );
    expect_side(
        &log,
        "A",
        &[
            "StateChanged(Invitation)@Connected",
            "Accepted(NULL)@Connected",
            "ReadyToLaunch@Connected",
            "StateChanged(Accepted)@Connected",
            "StateChanged(Connected)@Terminated",
            "Termination(SR_SESSION_TIMEOUT,NULL)@Terminated",
        ],
    );
}

/// Context data sent twice by the network (the same IQ, the same id): raised once.
#[test]
fn duplicated_context_data_is_raised_once() {
    let p = Pair::new();
    let (s, r) = p.connected();
    let dup = p.pa.duplicate_next(Dir::Up, 1, |s| has(s, "<context"));
    s.send_context_data("once").unwrap();
    p.wait("context data", Duration::from_secs(10), |_| {
        r.context_data().as_str() == "once"
    });
    p.settle(Duration::from_millis(300));
    assert_eq!(dup.fired(), 1);
    let log = p.take();
    expect_side(&log, "B", &["ContextData(once)@Connected"]);
    expect_side(&log, "A", &[]);
}

// ---- sign-in after a loss ----

/// The connection is cut and the proxy refuses new ones for a while: the client is signed
/// out once, retries with a growing delay (a handful of attempts, not a busy loop), and is
/// signed in again once the proxy accepts.
#[test]
fn reconnection_backs_off_while_the_server_is_unreachable() {
    let p = Pair::new();
    let accepted = p.pa.accepted();
    p.pa.refuse(true);
    p.pa.cut();
    p.wait("alice signed out", Duration::from_secs(10), |p| {
        !p.a.client.is_signed_in()
    });
    p.settle(Duration::from_secs(4));
    assert_eq!(
        p.a.client.connection_state(),
        (ConnectionState::Reconnecting, MSGR_E_DISCONNECTED)
    );
    let tries = p.pa.accepted() - accepted;
    assert!(
        (1..=6).contains(&tries),
        "{tries} connection attempts in 4 s of refusal"
    );
    p.pa.refuse(false);
    p.wait("alice signed in again", BOUND, |p| {
        p.logged("Am:LockStatusChanged(Disabled)")
    });
    let log = p.take();
    assert_eq!(
        side(&log, "Am"),
        lines(&[
            "Am:LockStatusChanged(NotInitialized)",
            "Am:LockEnable(false)",
            "Am:LockStatusChanged(Disabled)",
        ])
    );
    assert_eq!(
        p.a.client.connection_state(),
        (ConnectionState::SignedIn, MSGR_E_DISCONNECTED)
    );
    expect_side(&log, "B", &[]);
}

/// The same user signs in from a second service: the server keeps the newer connection;
/// the older client is signed out once (its session ends) and does not come back (no
/// kick-each-other loop).
#[test]
fn the_same_user_signed_in_twice_signs_the_older_out_once() {
    let p = Pair::new();
    let (_s, _r) = p.connected();
    let log2: Log = Arc::default();
    let newer = Side::new(
        "N",
        p.server.jid("alice"),
        options(&p.server.host(), p.server.addr.port(), INVITATION),
        &log2,
    );
    p.wait(
        "alice's older client signed out",
        Duration::from_secs(10),
        |p| !p.a.client.is_signed_in(),
    );
    // Longer than a few reconnection delays: neither client may take the name back.
    p.settle(Duration::from_secs(4));
    drain(&newer.client);
    assert!(newer.client.is_signed_in());
    assert_eq!(
        p.a.client.connection_state(),
        (ConnectionState::SignedOut, MSGR_E_ALREADY_LOGGED_ON)
    );
    let log = p.both_end("both ends");
    for tag in ["A", "B"] {
        expect_side(
            &log,
            tag,
            &[
                "StateChanged(Connected)@Terminated",
                "Termination(SR_CONNECTION_FAILURE,NULL)@Terminated",
            ],
        );
    }
    assert_eq!(
        side(&log, "Am"),
        lines(&["Am:LockStatusChanged(NotInitialized)"])
    );
    let newer_lock: Vec<String> = side(&log2.lock(), "Nm")
        .into_iter()
        .filter(|l| l.contains(":Lock"))
        .collect();
    assert_eq!(
        newer_lock,
        lines(&["Nm:LockEnable(false)", "Nm:LockStatusChanged(Disabled)"])
    );
}
