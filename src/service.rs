//! The service behind a client: the seam ([`Service`]) and the embedded in-process
//! implementation ([`EmbeddedService`]).
//!
//! A service signs users in, routes [`Message`]s between their clients, holds the Lock and
//! Key application ID/key pairs, issues challenges and checks responses, and keeps the clock
//! the sessions' deadlines run on (the sessions decide their timeouts themselves). The
//! session logic talks only to the trait, so a network-backed service (an XMPP server) can
//! replace the embedded one without touching it.

use crate::error::{Result, MSGR_E_ALREADY_LOGGED_ON, MSGR_E_DISCONNECTED};
use crate::lock::{self, AppKeys};
use crate::locks::Mutex;
use crate::registry::AppRegistry;
use crate::timer::Timers;
use crate::types::Text;
use crate::Hr;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// What one client sends another about a session, through the service.
#[derive(Clone, Debug)]
pub enum Message {
    /// An invitation to a new session.
    Invite {
        /// The SessionID both sides share.
        session_id: Text,
        /// The application's GUID.
        app_guid: Text,
        /// The application's name at the inviter.
        app_name: Text,
        /// The application's URL at the inviter.
        app_url: Text,
        /// Invite's application data.
        app_data: Option<Text>,
        /// The inviter's LocalAddress.
        address: Text,
        /// How long the inviter waits for an answer, in milliseconds; the invitee that hears
        /// nothing ends the invitation by itself a short grace after it.
        timeout_ms: u64,
    },
    /// The invitee accepted.
    Accept {
        /// SessionID
        session_id: Text,
        /// Accept's application data.
        app_data: Option<Text>,
        /// The invitee's LocalAddress.
        address: Text,
    },
    /// The invitee declined (or does not have the application).
    Decline {
        /// SessionID
        session_id: Text,
        /// Decline's application data.
        app_data: Option<Text>,
        /// True when the invitee does not have the application registered.
        not_present: bool,
    },
    /// The sender cancelled.
    Cancel {
        /// SessionID
        session_id: Text,
        /// The reason handed to the receiver.
        hr: Hr,
        /// Cancel's application data.
        app_data: Option<Text>,
    },
    /// SendContextData.
    ContextData {
        /// SessionID
        session_id: Text,
        /// The data.
        data: Text,
    },
    /// The invitee's application could not be launched.
    LaunchFailed {
        /// SessionID
        session_id: Text,
    },
    /// The sender signed out or shut down.
    PeerGone {
        /// SessionID
        session_id: Text,
    },
    /// From the inviter: the invitation was not answered in time.
    Timeout {
        /// SessionID
        session_id: Text,
    },
    /// The invitee's service refused the invitation before any client saw it (its policy:
    /// the inviter is not a contact, or sent too many invitations); the inviter ends
    /// declined with `hr`.
    Refused {
        /// SessionID
        session_id: Text,
        /// Why (E_ACCESSDENIED, E_NOT_ENOUGH_QUOTA).
        hr: Hr,
    },
}

impl Message {
    /// The message's kind and session, for the trace.
    pub fn describe(&self) -> String {
        let kind = match self {
            Message::Invite { .. } => "Invite",
            Message::Accept { .. } => "Accept",
            Message::Decline {
                not_present: false, ..
            } => "Decline",
            Message::Decline {
                not_present: true, ..
            } => "Decline (application not present)",
            Message::Cancel { .. } => "Cancel",
            Message::ContextData { .. } => "ContextData",
            Message::LaunchFailed { .. } => "LaunchFailed",
            Message::PeerGone { .. } => "PeerGone",
            Message::Timeout { .. } => "Timeout",
            Message::Refused { .. } => "Refused",
        };
        format!("{kind} of session {}", self.session_id())
    }

    /// The session the message is about.
    pub fn session_id(&self) -> &Text {
        match self {
            Message::Invite { session_id, .. }
            | Message::Accept { session_id, .. }
            | Message::Decline { session_id, .. }
            | Message::Cancel { session_id, .. }
            | Message::ContextData { session_id, .. }
            | Message::LaunchFailed { session_id }
            | Message::PeerGone { session_id }
            | Message::Timeout { session_id }
            | Message::Refused { session_id, .. } => session_id,
        }
    }
}

/// What became of a delivered message: a network service answers its sender with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The message was taken: it changed the session, or it was a step the session had no
    /// more use for (an answer to an invitation already answered, for instance).
    Taken,
    /// No live session with that SessionID has the sender as its peer (it never existed,
    /// it ended, or someone else is speaking for it). Nothing changed.
    UnknownSession,
    /// The session exists but its state does not allow that step (an Accept of a session
    /// already connected, context data before the answer, an invitation reusing a live
    /// SessionID). Nothing changed.
    OutOfOrder,
}

/// The receiving end of a signed-in client.
pub trait Endpoint: Send + Sync {
    /// A message from `from` (the sender's sign-in name). Called with no service lock held.
    fn deliver(&self, from: &Text, msg: Message) -> Delivery;
    /// Whether a live session `session_id` with `from` as its peer exists here (a
    /// network service answers pings and unknown requests about a session with it).
    fn has_session(&self, from: &Text, session_id: &Text) -> bool;
    /// The connection to the service was lost (`hr` says why: MSGR_E_DISCONNECTED for a
    /// broken connection, MSGR_E_ALREADY_LOGGED_ON when another sign-in of the same name
    /// replaced it): the client is signed out and its live sessions end with
    /// SR_CONNECTION_FAILURE. `retrying`: the service tries to sign it in again, and will
    /// call [`reconnected`](Self::reconnected) or
    /// [`reconnect_failed`](Self::reconnect_failed). Called with no service lock held.
    fn connection_lost(&self, hr: Hr, retrying: bool);
    /// The service signed the client in again after [`connection_lost`](Self::connection_lost).
    /// True when the client takes the connection (it is signed in again: its managers get
    /// the sign-in events); false when it does not want it (signed in or out by the
    /// application meanwhile, shut down, destroyed): the service then closes it.
    fn reconnected(&self) -> bool;
    /// The service stopped trying to sign the client in again (`hr` says why: a refused
    /// login is final).
    fn reconnect_failed(&self, hr: Hr);
}

/// The message could not be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undeliverable;

/// What a step's delivery report goes to: the sender (a session), told which step.
pub trait SendReport: Send + Sync {
    /// The report of the step `tag` (as given to [`SendDone::new`]).
    fn sent(self: Arc<Self>, tag: u64, result: std::result::Result<(), Undeliverable>);
}

/// The completion of [`Service::send`]: whether the message reached the other side. Call
/// [`complete`](Self::complete) exactly once. A session's report costs no allocation (a
/// reference to the session and a word that says which step it was).
#[must_use = "a send's completion must be completed exactly once"]
pub struct SendDone(Completion);

enum Completion {
    Nobody,
    Report(Arc<dyn SendReport>, u64),
    Fn(Box<dyn FnOnce(std::result::Result<(), Undeliverable>) + Send>),
}

impl SendDone {
    /// Reports to `to`, for its step `tag`.
    pub fn new(to: Arc<dyn SendReport>, tag: u64) -> Self {
        SendDone(Completion::Report(to, tag))
    }

    /// A completion nobody waits for.
    pub fn nobody() -> Self {
        SendDone(Completion::Nobody)
    }

    /// Calls `f` with the report.
    pub fn from_fn(
        f: impl FnOnce(std::result::Result<(), Undeliverable>) + Send + 'static,
    ) -> Self {
        SendDone(Completion::Fn(Box::new(f)))
    }

    /// Delivers the report.
    pub fn complete(self, result: std::result::Result<(), Undeliverable>) {
        match self.0 {
            Completion::Nobody => {}
            Completion::Report(to, tag) => to.sent(tag, result),
            Completion::Fn(f) => f(result),
        }
    }
}
/// The completion of [`Service::issue_challenge`]: the challenge, or why there is none.
pub type ChallengeDone = Box<dyn FnOnce(Result<Text>) + Send>;
/// The completion of [`Service::check_response`]: whether the response was right.
pub type CheckDone = Box<dyn FnOnce(bool) + Send>;

/// The seam between the session logic and whatever carries it.
///
/// Requests that a remote service answers later take a completion, which the service calls
/// exactly once, from any thread, with no lock of the caller's held: the embedded service
/// calls it before the request returns, a network service when the answer arrives (or when
/// the request fails). The session logic holds no lock while it waits, and bounds every
/// wait by the invitation timeout.
pub trait Service: Send + Sync {
    /// Signs `name` in and returns the name as the service spells it.
    /// MSGR_E_ALREADY_LOGGED_ON when it is signed in already. A service that needs
    /// credentials gets them from its own credential source.
    fn sign_in(&self, name: &str, endpoint: Weak<dyn Endpoint>) -> Result<Text>;
    /// Signs `name` out (no effect when it is not signed in).
    fn sign_out(&self, name: &Text);
    /// Stops the service's attempts to sign `endpoint` in again as `name` after a lost
    /// connection (no effect when there are none).
    fn stop_reconnecting(&self, _name: &Text, _endpoint: &Weak<dyn Endpoint>) {}
    /// The signed-in spelling of `name`, when that user is signed in: a lookup in what the
    /// service knows locally (its presence information), never a round trip.
    fn online(&self, name: &str) -> Option<Text>;
    /// True when two names denote the same user.
    fn same_user(&self, a: &str, b: &str) -> bool;
    /// True when Lock and Key is in force.
    fn lock_enforced(&self) -> bool;
    /// Issues a fresh challenge; `done` receives it.
    fn issue_challenge(&self, done: ChallengeDone);
    /// Checks a Lock and Key response, in constant time; `done` receives the verdict.
    fn check_response(&self, challenge: &str, app_id: &str, response: &str, done: CheckDone);
    /// Routes `msg` from `from` to `to`; `done` learns whether it was delivered.
    fn send(&self, from: &Text, to: &Text, msg: Message, done: SendDone);
    /// The deadlines of the sessions of this service's clients, on the service's clock.
    fn timers(&self) -> &Timers;
    /// How long an invitation may go unanswered.
    fn invitation_timeout(&self) -> Duration;
    /// The application registry of this machine.
    fn registry(&self) -> Arc<AppRegistry>;
}

/// Options of the embedded service.
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    /// How long an invitation may go unanswered.
    pub invitation_timeout: Duration,
    /// True: time moves only through [`EmbeddedService::advance_clock`].
    pub manual_clock: bool,
    /// Registry file; None keeps the registry in memory.
    pub registry_path: Option<std::path::PathBuf>,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            invitation_timeout: Duration::from_secs(120),
            manual_clock: false,
            registry_path: None,
        }
    }
}

struct User {
    name: Text,
    endpoint: Weak<dyn Endpoint>,
    reachable: bool,
}

struct Inner {
    users: Mutex<HashMap<String, User>>,
    keys: AppKeys,
    registry: Arc<AppRegistry>,
    timeout: Duration,
    timers: Timers,
}

/// The embedded in-process Messenger service.
#[derive(Clone)]
pub struct EmbeddedService {
    inner: Arc<Inner>,
}

fn canonical(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Finds a user by name without regard to ASCII case, without allocating when the name is
/// already in canonical (lowercase) form, as most are.
fn lookup_user<'a>(users: &'a HashMap<String, User>, name: &str) -> Option<&'a User> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        users.get(&canonical(name))
    } else {
        users.get(name)
    }
}

impl EmbeddedService {
    /// Creates a service. E_FAIL when the registry file cannot be opened.
    pub fn new(options: ServiceOptions) -> Result<Self> {
        let registry = match &options.registry_path {
            Some(p) => AppRegistry::open(p)?,
            None => AppRegistry::in_memory(),
        };
        Ok(EmbeddedService {
            inner: Arc::new(Inner {
                users: Mutex::new(HashMap::new()),
                keys: AppKeys::default(),
                registry,
                timeout: options.invitation_timeout,
                timers: Timers::new(options.manual_clock),
            }),
        })
    }

    /// Adds (or replaces) an application ID/key pair; Lock and Key is in force from the
    /// next sign-in on. E_INVALIDARG for an empty or over-long ID or key.
    pub fn add_app_key(&self, app_id: &str, key: &str) -> Result<()> {
        self.inner.keys.add(app_id, key)
    }

    /// Moves the manual clock forward and fires the deadlines that are due (unanswered
    /// invitations), in the calling thread. E_ILLEGAL_METHOD_CALL on a real clock.
    pub fn advance_clock(&self, ms: u64) -> Result<()> {
        self.inner.timers.advance(ms)
    }

    /// Makes messages to `name` fail delivery (as if its network were cut) or succeed
    /// again. Returns false when `name` is not signed in.
    pub fn set_reachable(&self, name: &str, reachable: bool) -> bool {
        match self.inner.users.lock().get_mut(&canonical(name)) {
            Some(u) => {
                u.reachable = reachable;
                true
            }
            None => false,
        }
    }

    /// Number of pending session deadlines: invitations not answered yet (on each side) and
    /// answers not acknowledged yet.
    pub fn pending_invitations(&self) -> usize {
        self.inner.timers.pending()
    }

    /// Cuts `name`'s connection, as a network failure would: its client is told
    /// (`Endpoint::connection_lost`), which ends its live sessions with
    /// SR_CONNECTION_FAILURE and signs it out. Returns false when `name` is not signed in.
    pub fn drop_connection(&self, name: &str) -> bool {
        let removed = self.inner.users.lock().remove(&canonical(name));
        match removed.and_then(|u| u.endpoint.upgrade()) {
            Some(ep) => {
                ep.connection_lost(MSGR_E_DISCONNECTED, false);
                true
            }
            None => false,
        }
    }
}

impl Inner {
    fn endpoint(&self, name: &str) -> Option<Arc<dyn Endpoint>> {
        let users = self.users.lock();
        let u = lookup_user(&users, name)?;
        if !u.reachable {
            return None;
        }
        u.endpoint.upgrade()
    }
}

impl Service for EmbeddedService {
    fn sign_in(&self, name: &str, endpoint: Weak<dyn Endpoint>) -> Result<Text> {
        let text = Text::new(name)?;
        let mut users = self.inner.users.lock();
        let key = canonical(name);
        if let Some(u) = users.get(&key) {
            if u.endpoint.strong_count() > 0 {
                return Err(MSGR_E_ALREADY_LOGGED_ON);
            }
        }
        users.insert(
            key,
            User {
                name: text.clone(),
                endpoint,
                reachable: true,
            },
        );
        Ok(text)
    }

    fn sign_out(&self, name: &Text) {
        let removed = self.inner.users.lock().remove(&canonical(name.as_str()));
        drop(removed);
    }

    fn online(&self, name: &str) -> Option<Text> {
        let users = self.inner.users.lock();
        let u = lookup_user(&users, name)?;
        (u.endpoint.strong_count() > 0).then(|| u.name.clone())
    }

    fn same_user(&self, a: &str, b: &str) -> bool {
        a.eq_ignore_ascii_case(b)
    }

    fn lock_enforced(&self) -> bool {
        self.inner.keys.enforced()
    }

    fn issue_challenge(&self, done: ChallengeDone) {
        done(Ok(
            Text::new(&lock::new_challenge()).expect("hex has no NUL")
        ));
    }

    fn check_response(&self, challenge: &str, app_id: &str, response: &str, done: CheckDone) {
        done(self.inner.keys.check(challenge, app_id, response));
    }

    fn send(&self, from: &Text, to: &Text, msg: Message, done: SendDone) {
        let result = match self.inner.endpoint(to.as_str()) {
            Some(ep) => {
                // In one process the sender learns nothing more from a refusal than from
                // the silence a lost answer would give.
                let _ = ep.deliver(from, msg);
                Ok(())
            }
            None => Err(Undeliverable),
        };
        done.complete(result);
    }

    fn timers(&self) -> &Timers {
        &self.inner.timers
    }

    fn invitation_timeout(&self) -> Duration {
        self.inner.timeout
    }

    fn registry(&self) -> Arc<AppRegistry> {
        Arc::clone(&self.inner.registry)
    }
}
