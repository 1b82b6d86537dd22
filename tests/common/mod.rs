//! Shared fixtures for the core tests: a world of two signed-in users on one embedded
//! service, and recorders that log every event as a readable line.
#![allow(dead_code)]

#[cfg(feature = "xmpp")]
pub mod prosody;

use msgrpriv::events::{ManagerEvent, ManagerEventKind, SessionEvent, SessionEventKind};
use msgrpriv::*;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

pub const APP: &str = "{11111111-2222-3333-4444-555555555555}";
pub const APP_ID: &str = "msgrpriv-test-app";
pub const APP_KEY: &str = "s3cret-key";

pub type Log = Arc<Mutex<Vec<String>>>;

pub const SESSION_KINDS: [SessionEventKind; 10] = [
    SessionEventKind::BeforeAppLaunch,
    SessionEventKind::Accepted,
    SessionEventKind::AppNotPresent,
    SessionEventKind::Cancelled,
    SessionEventKind::ContextData,
    SessionEventKind::Declined,
    SessionEventKind::ReadyToLaunch,
    SessionEventKind::SendError,
    SessionEventKind::StateChanged,
    SessionEventKind::Termination,
];

pub const MANAGER_KINDS: [ManagerEventKind; 8] = [
    ManagerEventKind::AppRegistered,
    ManagerEventKind::AppUnregistered,
    ManagerEventKind::AppShutdown,
    ManagerEventKind::Invitation,
    ManagerEventKind::LockChallenge,
    ManagerEventKind::LockEnable,
    ManagerEventKind::LockResult,
    ManagerEventKind::LockStatusChanged,
];

fn data(d: &Option<Text>) -> String {
    match d {
        Some(t) => format!("{:?}", t.as_str()),
        None => "NULL".into(),
    }
}

pub fn session_line(e: &SessionEvent) -> String {
    match e {
        SessionEvent::BeforeAppLaunch { enable } => format!("BeforeAppLaunch({enable})"),
        SessionEvent::Accepted { app_data } => format!("Accepted({})", data(app_data)),
        SessionEvent::AppNotPresent { name, url } => format!("AppNotPresent({name},{url})"),
        SessionEvent::Cancelled { app_data } => format!("Cancelled({})", data(app_data)),
        SessionEvent::ContextData { data } => format!("ContextData({data})"),
        SessionEvent::Declined { app_data } => format!("Declined({})", data(app_data)),
        SessionEvent::ReadyToLaunch => "ReadyToLaunch".into(),
        SessionEvent::SendError { hr } => format!("SendError({})", hr.name().unwrap_or("?")),
        SessionEvent::StateChanged { previous, .. } => format!("StateChanged({previous:?})"),
        SessionEvent::Termination { hr, app_data } => {
            format!(
                "Termination({},{})",
                hr.name().unwrap_or("?"),
                data(app_data)
            )
        }
    }
}

/// Records every event of `s` as "<tag>:<line>@<state at delivery>".
pub fn record_session(s: &Session, tag: &str, log: &Log) {
    for k in SESSION_KINDS {
        let log = log.clone();
        let tag = tag.to_string();
        let weak = std::sync::Arc::downgrade(&Arc::new(()));
        let s2 = s.clone();
        drop(weak);
        // Note: the callback holds a session reference; detach() breaks the cycle.
        s.advise(k, move |e| {
            log.lock()
                .push(format!("{tag}:{}@{:?}", session_line(e), s2.state()));
        })
        .unwrap();
    }
}

pub fn manager_line(e: &ManagerEvent) -> String {
    match e {
        ManagerEvent::AppRegistered { guid } => format!("AppRegistered({guid})"),
        ManagerEvent::AppUnregistered { guid } => format!("AppUnregistered({guid})"),
        ManagerEvent::AppShutdown => "AppShutdown".into(),
        ManagerEvent::Invitation { app_data, .. } => format!("Invitation({})", data(app_data)),
        ManagerEvent::LockChallenge { cookie, .. } => format!("LockChallenge({cookie})"),
        ManagerEvent::LockEnable { enabled } => format!("LockEnable({enabled})"),
        ManagerEvent::LockResult { cookie, succeeded } => {
            format!("LockResult({cookie},{succeeded})")
        }
        ManagerEvent::LockStatusChanged { status } => format!("LockStatusChanged({status:?})"),
    }
}

pub fn record_manager(m: &SessionManager, tag: &str, log: &Log) {
    for k in MANAGER_KINDS {
        let log = log.clone();
        let tag = tag.to_string();
        m.advise(k, move |e| {
            log.lock().push(format!("{tag}:{}", manager_line(e)))
        })
        .unwrap();
    }
}

pub struct World {
    pub svc: EmbeddedService,
    pub a: Client,
    pub b: Client,
    pub ma: SessionManager,
    pub mb: SessionManager,
    pub log: Log,
    /// The invitee-side session B received, once an invitation arrived.
    pub received: Arc<Mutex<Vec<Session>>>,
    /// The inviter-side sessions made by [`World::session`].
    pub created: Mutex<Vec<Session>>,
}

pub fn service(manual_clock: bool) -> EmbeddedService {
    EmbeddedService::new(ServiceOptions {
        invitation_timeout: Duration::from_secs(120),
        manual_clock,
        registry_path: None,
    })
    .unwrap()
}

impl World {
    /// Two users, Lock and Key off, an application registered with no path.
    pub fn new() -> World {
        Self::with_service(service(true))
    }

    pub fn with_service(svc: EmbeddedService) -> World {
        let dynsvc: Arc<dyn Service> = Arc::new(svc.clone());
        Self::with_dyn(svc, dynsvc)
    }

    /// A world on `dynsvc`, a service built on the embedded `svc` (whose clock and test hooks
    /// the tests use).
    pub fn with_dyn(svc: EmbeddedService, dynsvc: Arc<dyn Service>) -> World {
        Self::with_dyn_names(svc, dynsvc, "alice@example.com", "bob@example.com")
    }

    /// [`World::with_dyn`] with the two users' sign-in names.
    pub fn with_dyn_names(
        svc: EmbeddedService,
        dynsvc: Arc<dyn Service>,
        alice: &str,
        bob: &str,
    ) -> World {
        let a = Client::new(dynsvc.clone(), alice, DispatchMode::Manual).unwrap();
        let b = Client::new(dynsvc, bob, DispatchMode::Manual).unwrap();
        let ma = a.create_session_manager().unwrap();
        let mb = b.create_session_manager().unwrap();
        let log: Log = Arc::default();
        let received: Arc<Mutex<Vec<Session>>> = Arc::default();
        {
            let received = received.clone();
            let log2 = log.clone();
            mb.advise(ManagerEventKind::Invitation, move |e| {
                if let ManagerEvent::Invitation {
                    session,
                    handled,
                    app_data,
                } = e
                {
                    record_session(session, "B", &log2);
                    log2.lock()
                        .push(format!("B:Invitation({})", data(app_data)));
                    *handled = true;
                    received.lock().push(session.clone());
                }
            })
            .unwrap();
        }
        let w = World {
            svc,
            a,
            b,
            ma,
            mb,
            log,
            received,
            created: Mutex::default(),
        };
        w.pump();
        w.take();
        w
    }

    pub fn register_app(&self, path: &str) {
        self.ma
            .register_application(APP, "Test App", "http://example.com/app", path, 0)
            .unwrap();
        self.pump();
        self.take();
    }

    /// Dispatches both clients until neither has anything left.
    pub fn pump(&self) {
        loop {
            let n = self.a.dispatch(Some(Duration::ZERO)).unwrap()
                + self.b.dispatch(Some(Duration::ZERO)).unwrap();
            if n == 0 {
                break;
            }
        }
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock())
    }

    /// A session created by A, recorded as "A", application set.
    pub fn session(&self) -> Session {
        let s = self.ma.create_session().unwrap();
        record_session(&s, "A", &self.log);
        self.created.lock().push(s.clone());
        s.set_application(APP).unwrap();
        s
    }

    /// Invites B and returns (inviter session, invitee session) with the log emptied.
    pub fn invited(&self) -> (Session, Session) {
        let s = self.session();
        s.invite("bob@example.com", Some("hello")).unwrap();
        self.pump();
        self.take();
        let r = self
            .received
            .lock()
            .last()
            .cloned()
            .expect("invitation arrived");
        (s, r)
    }

    pub fn connected(&self) -> (Session, Session) {
        let (a, b) = self.invited();
        b.accept(Some("yes")).unwrap();
        self.pump();
        self.take();
        assert_eq!(a.state(), SessionState::Connected);
        assert_eq!(b.state(), SessionState::Connected);
        (a, b)
    }

    pub fn side(&self, tag: &str) -> Vec<String> {
        let prefix = format!("{tag}:");
        self.log
            .lock()
            .iter()
            .filter(|l| l.starts_with(&prefix))
            .cloned()
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.a.destroy();
        self.b.destroy();
        // The recorders hold their session (record_session): end their registrations, or
        // each session and its callbacks keep each other alive (LeakSanitizer sees the cycle).
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

/// Dispatches one client until nothing is left.
pub fn drain(c: &Client) {
    while c.dispatch(Some(Duration::ZERO)).unwrap() > 0 {}
}

pub fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// xorshift64*: a small deterministic generator for the tests (no extra dependency).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}
