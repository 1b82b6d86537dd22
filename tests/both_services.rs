//! The same scenarios, from the same code, over the embedded service and over a real XMPP
//! server (Prosody, started per test; with the `xmpp` feature): the per-session event
//! sequences on both sides, the codes and the limits must be the same. Each scenario waits by
//! dispatching both clients until what it expects has happened (bounded), which on the
//! embedded service is already the case.

mod common;
use common::*;
use msgrpriv::error::*;
use msgrpriv::*;
#[cfg(feature = "xmpp")]
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A world on one of the services, and the invitee's sign-in name there.
struct Net {
    w: World,
    bob: String,
    /// Keeps the XMPP server alive for the test.
    #[cfg(feature = "xmpp")]
    _server: Option<common::prosody::Prosody>,
}

impl Net {
    fn embedded(timeout: Duration) -> Net {
        let svc = EmbeddedService::new(ServiceOptions {
            invitation_timeout: timeout,
            manual_clock: false,
            registry_path: None,
        })
        .unwrap();
        let w = World::with_service(svc);
        w.register_app("");
        Net {
            w,
            bob: "bob@example.com".into(),
            #[cfg(feature = "xmpp")]
            _server: None,
        }
    }

    #[cfg(feature = "xmpp")]
    fn xmpp(timeout: Duration) -> Net {
        use msgrpriv::xmpp::{Tls, XmppOptions, XmppService};
        let server = common::prosody::Prosody::start(&[("alice", "alicepw"), ("bob", "bobpw")]);
        let creds: msgrpriv::xmpp::Credentials = Arc::new(|name: &str| {
            Some(
                if name.starts_with("alice@") {
                    "alicepw"
                } else {
                    "bobpw"
                }
                .to_string(),
            )
        });
        let mut options = XmppOptions::new(server.host(), server.addr.port(), creds);
        options.tls = Tls::Plain;
        options.invitation_timeout = timeout;
        let svc = XmppService::new(options).unwrap();
        let (alice, bob) = (server.jid("alice"), server.jid("bob"));
        let w = World::with_dyn_names(service(true), Arc::new(svc.clone()), &alice, &bob);
        let start = Instant::now();
        while svc.online(&bob).is_none() || svc.online(&alice).is_none() {
            assert!(start.elapsed() < Duration::from_secs(10), "no presence");
            std::thread::sleep(Duration::from_millis(2));
        }
        w.register_app("");
        Net {
            w,
            bob,
            _server: Some(server),
        }
    }

    /// Dispatches both clients until `done` holds (at most 15 s), then what is left.
    fn wait(&self, what: &str, done: impl Fn(&World) -> bool) {
        let start = Instant::now();
        while !done(&self.w) {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "timed out waiting for {what}"
            );
            self.w.a.dispatch(Some(Duration::from_millis(2))).unwrap();
            self.w.b.dispatch(Some(Duration::from_millis(2))).unwrap();
        }
        self.w.pump();
    }

    fn logged(&self, prefix: &str) -> bool {
        self.w.log.lock().iter().any(|l| l.starts_with(prefix))
    }

    /// Waits until both sides' OnTermination arrived.
    fn wait_ended(&self) {
        self.wait("both OnTermination", |_| {
            self.logged("A:Termination") && self.logged("B:Termination")
        });
    }

    /// One side's events, without the state each callback saw (which depends on timing).
    fn side(&self, tag: &str) -> Vec<String> {
        self.w
            .side(tag)
            .into_iter()
            .map(|l| l.split('@').next().unwrap_or("").to_string())
            .collect()
    }

    /// Alice invites bob with "hello"; returns both sides once the invitation arrived.
    fn invited(&self) -> (Session, Session) {
        let s = self.w.session();
        s.invite(&self.bob, Some("hello")).unwrap();
        self.wait("the invitation", |w| !w.received.lock().is_empty());
        let r = self.w.received.lock()[0].clone();
        (s, r)
    }
}

/// Runs `scenario` over the embedded service, and over Prosody with the `xmpp` feature.
fn on_both(timeout: Duration, scenario: impl Fn(&Net)) {
    scenario(&Net::embedded(timeout));
    #[cfg(feature = "xmpp")]
    scenario(&Net::xmpp(timeout));
}

const LONG: Duration = Duration::from_secs(120);

#[test]
fn accepted_then_cancelled_by_the_invitee() {
    on_both(LONG, |n| {
        let (s, r) = n.invited();
        r.accept(Some("yes")).unwrap();
        n.wait("connected", |_| s.state() == SessionState::Connected);
        s.send_context_data("ping").unwrap();
        n.wait("context data", |_| r.context_data().as_str() == "ping");
        r.cancel(E_FAIL, Some("bye")).unwrap();
        n.wait_ended();
        assert_eq!(
            n.side("A"),
            lines(&[
                "A:StateChanged(Ready)",
                "A:StateChanged(Invitation)",
                "A:Accepted(\"yes\")",
                "A:ReadyToLaunch",
                "A:StateChanged(Accepted)",
                "A:StateChanged(Connected)",
                "A:Cancelled(\"bye\")",
                "A:Termination(E_FAIL,\"bye\")",
            ])
        );
        assert_eq!(
            n.side("B"),
            lines(&[
                "B:Invitation(\"hello\")",
                "B:StateChanged(Invitation)",
                "B:BeforeAppLaunch(true)",
                "B:ReadyToLaunch",
                "B:StateChanged(Accepted)",
                "B:ContextData(ping)",
                "B:StateChanged(Connected)",
                "B:Termination(SR_SESSION_CANCELLED_LOCAL,\"bye\")",
            ])
        );
        assert_eq!(n.w.a.live_sessions() + n.w.b.live_sessions(), 0);
    });
}

#[test]
fn declined_and_cancelled_before_an_answer() {
    on_both(LONG, |n| {
        let (s, r) = n.invited();
        r.decline(Some("no")).unwrap();
        n.wait_ended();
        assert_eq!(
            n.side("A"),
            lines(&[
                "A:StateChanged(Ready)",
                "A:StateChanged(Invitation)",
                "A:Declined(\"no\")",
                "A:Termination(SR_INVITATION_DECLINED,\"no\")",
            ])
        );
        assert_eq!(
            n.side("B"),
            lines(&[
                "B:Invitation(\"hello\")",
                "B:StateChanged(Invitation)",
                "B:Termination(SR_INVITATION_DECLINED,\"no\")",
            ])
        );
        assert_eq!(s.state(), SessionState::Declined);
        assert_eq!(r.accept(None), Err(SR_SESSION_STATE_INVALID));
    });
    on_both(LONG, |n| {
        let (s, r) = n.invited();
        s.cancel(SR_SESSION_CANCELLED_REMOTE, None).unwrap();
        n.wait_ended();
        assert_eq!(r.state(), SessionState::Cancelled);
        assert_eq!(
            n.side("B"),
            lines(&[
                "B:Invitation(\"hello\")",
                "B:StateChanged(Invitation)",
                "B:Cancelled(NULL)",
                "B:Termination(SR_SESSION_CANCELLED_REMOTE,NULL)",
            ])
        );
    });
}

#[test]
fn context_data_limits() {
    on_both(LONG, |n| {
        let (s, r) = n.invited();
        assert_eq!(
            s.send_context_data("early"),
            Err(SR_NOT_VALID_FOR_APP_INVITE)
        );
        r.accept(None).unwrap();
        n.wait("connected", |_| s.state() == SessionState::Connected);
        let long = "x".repeat(301);
        assert_eq!(s.send_context_data(&long), Err(SR_CONTEXT_DATA_OVER_LIMIT));
        for i in 0..5 {
            s.send_context_data(&format!("m{i}")).unwrap();
        }
        assert_eq!(
            s.send_context_data("sixth"),
            Err(SR_CONTEXT_DATA_OVER_LIMIT)
        );
        n.wait("five messages", |_| r.context_data().as_str() == "m4");
        let got: Vec<String> = n
            .side("B")
            .into_iter()
            .filter(|l| l.starts_with("B:ContextData"))
            .collect();
        assert_eq!(
            got,
            (0..5)
                .map(|i| format!("B:ContextData(m{i})"))
                .collect::<Vec<_>>()
        );
    });
}

#[test]
fn the_invitee_signs_out() {
    on_both(LONG, |n| {
        let (s, _r) = n.invited();
        n.w.b.sign_out().unwrap();
        n.wait_ended();
        assert_eq!(
            n.side("A"),
            lines(&[
                "A:StateChanged(Ready)",
                "A:StateChanged(Invitation)",
                "A:Termination(SR_CONNECTION_FAILURE,NULL)",
            ])
        );
        assert_eq!(s.state(), SessionState::Terminated);
        // Signed out: not signed in for an invitation either, once the service knows it (at
        // once in process; when bob's unavailable presence arrives over the network).
        let start = Instant::now();
        loop {
            let again = n.w.session();
            match again.invite(&n.bob, None) {
                Err(MSGR_E_NOT_LOGGED_ON) => break,
                Ok(()) => {
                    again.cancel(E_FAIL, None).unwrap();
                    assert!(start.elapsed() < Duration::from_secs(5), "bob still online");
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    });
}

#[test]
fn an_unanswered_invitation_times_out_on_both_sides() {
    on_both(Duration::from_millis(300), |n| {
        let (_s, _r) = n.invited();
        let start = Instant::now();
        n.wait_ended();
        assert!(start.elapsed() < Duration::from_secs(5));
        for tag in ["A", "B"] {
            assert_eq!(
                n.side(tag).last().map(String::as_str),
                Some(format!("{tag}:Termination(SR_SESSION_TIMEOUT,NULL)").as_str())
            );
        }
    });
}
