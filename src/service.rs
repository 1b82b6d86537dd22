//! The service behind a client: the seam ([`Service`]) and the embedded in-process
//! implementation ([`EmbeddedService`]).
//!
//! A service signs users in, routes [`Message`]s between their clients, holds the Lock and
//! Key application ID/key pairs, issues challenges and checks responses, and times out
//! unanswered invitations. The session logic talks only to the trait, so a network-backed
//! service (an XMPP server) can replace the embedded one without touching it.

use crate::error::{Result, E_ILLEGAL_METHOD_CALL, E_INVALIDARG, MSGR_E_ALREADY_LOGGED_ON};
use crate::lock;
use crate::registry::AppRegistry;
use crate::types::{check_chars, limits, Text};
use crate::Hr;
use crate::locks::{Condvar, Mutex};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

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
    /// From the service: the invitation was not answered in time.
    Timeout {
        /// SessionID
        session_id: Text,
    },
}

impl Message {
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
            | Message::Timeout { session_id } => session_id,
        }
    }
}

/// The receiving end of a signed-in client.
pub trait Endpoint: Send + Sync {
    /// A message from `from` (the sender's sign-in name). Called with no service lock held.
    fn deliver(&self, from: &Text, msg: Message);
}

/// The message could not be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undeliverable;

/// The seam between the session logic and whatever carries it.
pub trait Service: Send + Sync {
    /// Signs `name` in and returns the name as the service spells it.
    /// MSGR_E_ALREADY_LOGGED_ON when it is signed in already.
    fn sign_in(&self, name: &str, endpoint: Weak<dyn Endpoint>) -> Result<Text>;
    /// Signs `name` out (no effect when it is not signed in).
    fn sign_out(&self, name: &Text);
    /// The signed-in spelling of `name`, when that user is signed in.
    fn online(&self, name: &str) -> Option<Text>;
    /// True when two names denote the same user.
    fn same_user(&self, a: &str, b: &str) -> bool;
    /// True when Lock and Key is in force.
    fn lock_enforced(&self) -> bool;
    /// A fresh challenge.
    fn issue_challenge(&self) -> Text;
    /// Checks a Lock and Key response, in constant time.
    fn check_response(&self, challenge: &str, app_id: &str, response: &str) -> bool;
    /// Routes `msg` from `from` to `to`.
    fn send(&self, from: &Text, to: &Text, msg: Message) -> std::result::Result<(), Undeliverable>;
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

struct Timer {
    session_id: Text,
    inviter: Text,
    invitee: Text,
    /// False until the invitation was handed to the invitee: a timeout cannot overtake the
    /// invitation it is about.
    armed: bool,
}

#[derive(Default)]
struct Timers {
    by_deadline: BTreeMap<(u64, u64), Timer>,
    by_session: HashMap<Text, (u64, u64)>,
    seq: u64,
    shutdown: bool,
    /// The clock time (ms) the timer thread sleeps until: 0 while it is awake or not started
    /// (it looks at the timers before it sleeps again). A new timer due
    /// earlier must wake it; any other need not (the thread re-reads the timers when it
    /// wakes, so a removed timer only costs it a spurious wake-up).
    sleep_until: u64,
}

struct Clock {
    manual: bool,
    start: Instant,
    manual_ms: AtomicU64,
}

impl Clock {
    fn now_ms(&self) -> u64 {
        if self.manual {
            self.manual_ms.load(Ordering::Acquire)
        } else {
            self.start.elapsed().as_millis() as u64
        }
    }
}

struct TimerWheel {
    timers: Mutex<Timers>,
    cv: Condvar,
    clock: Clock,
}

struct Inner {
    users: Mutex<HashMap<String, User>>,
    keys: Mutex<HashMap<String, String>>,
    registry: Arc<AppRegistry>,
    timeout_ms: u64,
    wheel: Arc<TimerWheel>,
    timer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

thread_local!(static ON_TIMER_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });

impl Drop for Inner {
    fn drop(&mut self) {
        self.wheel.timers.lock().shutdown = true;
        self.wheel.cv.notify_all();
        // Wait for the timer thread, unless this is it (it dropped the last reference).
        if let Some(h) = self.timer_thread.get_mut().take() {
            if !ON_TIMER_THREAD.with(|t| t.get()) {
                let _ = h.join();
            }
        }
    }
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
        let ms = options.invitation_timeout.as_millis().min(u64::MAX as u128) as u64;
        Ok(EmbeddedService {
            inner: Arc::new(Inner {
                users: Mutex::new(HashMap::new()),
                keys: Mutex::new(HashMap::new()),
                registry,
                timeout_ms: ms,
                wheel: Arc::new(TimerWheel {
                    timers: Mutex::new(Timers::default()),
                    cv: Condvar::new(),
                    clock: Clock {
                        manual: options.manual_clock,
                        start: Instant::now(),
                        manual_ms: AtomicU64::new(0),
                    },
                }),
                timer_thread: Mutex::new(None),
            }),
        })
    }

    /// Adds (or replaces) an application ID/key pair; Lock and Key is in force from the
    /// next sign-in on. E_INVALIDARG for an empty or over-long ID or key.
    pub fn add_app_key(&self, app_id: &str, key: &str) -> Result<()> {
        for s in [app_id, key] {
            if s.is_empty() || s.contains('\0') {
                return Err(E_INVALIDARG);
            }
            check_chars(s, limits::LOCK_FIELD_CHARS, E_INVALIDARG)?;
        }
        self.inner
            .keys
            .lock()
            .insert(app_id.to_owned(), key.to_owned());
        Ok(())
    }

    /// Moves the manual clock forward and fires the invitations that timed out, in the
    /// calling thread. E_ILLEGAL_METHOD_CALL on a real clock.
    pub fn advance_clock(&self, ms: u64) -> Result<()> {
        let clock = &self.inner.wheel.clock;
        if !clock.manual {
            return Err(E_ILLEGAL_METHOD_CALL);
        }
        let _ = clock
            .manual_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(v.saturating_add(ms))
            });
        self.inner.fire_due();
        Ok(())
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

    /// Number of pending invitation timers.
    pub fn pending_invitations(&self) -> usize {
        self.inner.wheel.timers.lock().by_session.len()
    }

    fn start_timer(&self, session_id: &Text, inviter: &Text, invitee: &Text) {
        let wheel = &self.inner.wheel;
        let deadline = wheel.clock.now_ms().saturating_add(self.inner.timeout_ms);
        let earlier_than_sleep = {
            let mut t = wheel.timers.lock();
            if let Some(old) = t.by_session.remove(session_id) {
                t.by_deadline.remove(&old);
            }
            t.seq += 1;
            let key = (deadline, t.seq);
            t.by_deadline.insert(
                key,
                Timer {
                    session_id: session_id.clone(),
                    inviter: inviter.clone(),
                    invitee: invitee.clone(),
                    armed: false,
                },
            );
            t.by_session.insert(session_id.clone(), key);
            deadline < t.sleep_until
        };
        if wheel.clock.manual {
            return;
        }
        // Wake the timer thread only when it would otherwise sleep past the new deadline:
        // an invitation does not cost a futex wake-up and a context switch.
        if earlier_than_sleep {
            wheel.cv.notify_all();
        }
        let mut thread = self.inner.timer_thread.lock();
        if thread.is_none() {
            let wheel = Arc::clone(&self.inner.wheel);
            let weak = Arc::downgrade(&self.inner);
            *thread = std::thread::Builder::new()
                .name("msgrpriv-timers".into())
                .spawn(move || {
                    ON_TIMER_THREAD.with(|t| t.set(true));
                    timer_thread(wheel, weak)
                })
                .ok();
        }
    }

    /// The invitation was delivered (or could not be): its timer may fire now, at once when
    /// it is already due.
    fn arm_timer(&self, session_id: &Text) {
        let due = {
            let mut t = self.inner.wheel.timers.lock();
            let Some(key) = t.by_session.get(session_id).copied() else {
                return;
            };
            if let Some(timer) = t.by_deadline.get_mut(&key) {
                timer.armed = true;
            }
            key.0 <= self.inner.wheel.clock.now_ms()
        };
        if due {
            self.inner.fire_due();
        }
    }

    fn stop_timer(&self, session_id: &Text) {
        let mut t = self.inner.wheel.timers.lock();
        if let Some(key) = t.by_session.remove(session_id) {
            t.by_deadline.remove(&key);
        }
    }
}

fn timer_thread(wheel: Arc<TimerWheel>, service: Weak<Inner>) {
    let mut t = wheel.timers.lock();
    // Sleeps for `ms` unless woken; `sleep_until` tells `start_timer` whether to wake it.
    let sleep = |t: &mut crate::locks::MutexGuard<'_, Timers>, now: u64, ms: u64| {
        t.sleep_until = now.saturating_add(ms);
        wheel.cv.wait_for(t, Duration::from_millis(ms));
        t.sleep_until = 0;
    };
    t.sleep_until = 0;
    loop {
        if t.shutdown {
            return;
        }
        let now = wheel.clock.now_ms();
        match t.by_deadline.keys().next().copied() {
            Some((deadline, _)) if deadline <= now => {
                if t.by_deadline
                    .values()
                    .next()
                    .is_some_and(|timer| !timer.armed)
                {
                    // Its invitation is being delivered right now; arming fires it.
                    sleep(&mut t, now, 1);
                    continue;
                }
                drop(t);
                match service.upgrade() {
                    Some(inner) => inner.fire_due(),
                    None => return,
                }
                t = wheel.timers.lock();
            }
            Some((deadline, _)) => sleep(&mut t, now, deadline - now),
            None => sleep(&mut t, now, 60_000),
        }
    }
}

impl Inner {
    fn fire_due(&self) {
        let now = self.wheel.clock.now_ms();
        let due: Vec<Timer> = {
            let mut t = self.wheel.timers.lock();
            let later = t.by_deadline.split_off(&(now.saturating_add(1), 0));
            let due = std::mem::replace(&mut t.by_deadline, later);
            let mut fire = Vec::new();
            for (key, timer) in due {
                if timer.armed {
                    t.by_session.remove(&timer.session_id);
                    fire.push(timer);
                } else {
                    t.by_deadline.insert(key, timer);
                }
            }
            fire
        };
        for timer in due {
            for (to, from) in [
                (&timer.inviter, &timer.invitee),
                (&timer.invitee, &timer.inviter),
            ] {
                if let Some(ep) = self.endpoint(to.as_str()) {
                    ep.deliver(
                        from,
                        Message::Timeout {
                            session_id: timer.session_id.clone(),
                        },
                    );
                }
            }
        }
    }

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
        !self.inner.keys.lock().is_empty()
    }

    fn issue_challenge(&self) -> Text {
        Text::new(&lock::new_challenge()).expect("hex has no NUL")
    }

    fn check_response(&self, challenge: &str, app_id: &str, response: &str) -> bool {
        let key = self.inner.keys.lock().get(app_id).cloned();
        // An unknown ID costs the same work as a known one, then fails.
        let ok = lock::verify_response(challenge, key.as_deref().unwrap_or(""), response);
        ok & key.is_some()
    }

    fn send(&self, from: &Text, to: &Text, msg: Message) -> std::result::Result<(), Undeliverable> {
        match &msg {
            Message::Invite { session_id, .. } => self.start_timer(session_id, from, to),
            Message::Accept { session_id, .. }
            | Message::Decline { session_id, .. }
            | Message::Cancel { session_id, .. }
            | Message::PeerGone { session_id } => self.stop_timer(session_id),
            _ => {}
        }
        let invite = match &msg {
            Message::Invite { session_id, .. } => Some(session_id.clone()),
            _ => None,
        };
        let result = match self.inner.endpoint(to.as_str()) {
            Some(ep) => {
                ep.deliver(from, msg);
                Ok(())
            }
            None => Err(Undeliverable),
        };
        if let Some(id) = invite {
            self.arm_timer(&id);
        }
        result
    }

    fn registry(&self) -> Arc<AppRegistry> {
        Arc::clone(&self.inner.registry)
    }
}
