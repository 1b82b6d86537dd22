//! The documented events (DMsgrSessionManagerEvents, DMsgrSessionEvents) and the per-object
//! lists of registered callbacks ("sinks").
//!
//! A registration holds a callback for one event kind. The callback's captured state is
//! dropped exactly once, when the registration ends for any reason (unadvise, release of
//! the object, or a failed registration): the C layer puts the destroy notification in that
//! drop. Delivery reads a lock-free snapshot of the list, so a callback may end its own or
//! any other registration; a registration ended during delivery is not called afterwards
//! and is dropped only when the delivery that was using it finishes.
//!
//! Model checked with loom (`--cfg loom`, scripts/loom.sh, the models in `loom_tests`): the
//! lock, the atomics, `Arc` and `ArcSwap` of the sink lists come from `crate::sync`. The one
//! difference under `cfg(loom)`: `ArcSwap` is a mutex around an `Arc` there (loom cannot model
//! arc-swap's internals), so a snapshot is an `Arc` clone taken under that lock instead of
//! arc-swap's lock-free guard; the code of this file is the same in both builds.

use crate::error::{Hr, Result, E_HANDLE, E_INVALIDARG};
use crate::session::Session;
use crate::sync::{Arc, ArcSwap, AtomicBool, AtomicU32, Mutex, Ordering};
use crate::types::{LockStatus, SessionState, Text};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Events of a session manager (DMsgrSessionManagerEvents).
#[derive(Debug)]
pub enum ManagerEvent {
    /// OnAppRegistered(guid)
    AppRegistered {
        /// The registered application's GUID.
        guid: Text,
    },
    /// OnAppUnRegistered(guid)
    AppUnregistered {
        /// The unregistered application's GUID.
        guid: Text,
    },
    /// OnAppShutdown(): the client is shutting down; the last event a manager receives.
    AppShutdown,
    /// OnInvitation(session, app data, in/out handled)
    Invitation {
        /// The new invitee-side session.
        session: Session,
        /// The inviter's application data (None when it sent none).
        app_data: Option<Text>,
        /// In/out: set to true when the application takes care of the invitation.
        handled: bool,
    },
    /// OnLockChallenge(cookie, challenge)
    LockChallenge {
        /// The cookie given to RequestChallenge.
        cookie: i32,
        /// The service's challenge.
        challenge: Text,
    },
    /// OnLockEnable(enabled)
    LockEnable {
        /// True when Lock and Key is in force.
        enabled: bool,
    },
    /// OnLockResult(cookie, succeeded)
    LockResult {
        /// The cookie given to SendResponse.
        cookie: i32,
        /// Whether the unlock succeeded.
        succeeded: bool,
    },
    /// OnLockStatusChanged(status)
    LockStatusChanged {
        /// The new status.
        status: LockStatus,
    },
}

/// The kinds of [`ManagerEvent`], for registration.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ManagerEventKind {
    /// OnAppRegistered
    AppRegistered,
    /// OnAppUnRegistered
    AppUnregistered,
    /// OnAppShutdown
    AppShutdown,
    /// OnInvitation
    Invitation,
    /// OnLockChallenge
    LockChallenge,
    /// OnLockEnable
    LockEnable,
    /// OnLockResult
    LockResult,
    /// OnLockStatusChanged
    LockStatusChanged,
}

impl ManagerEvent {
    /// This event's kind.
    pub fn kind(&self) -> ManagerEventKind {
        match self {
            Self::AppRegistered { .. } => ManagerEventKind::AppRegistered,
            Self::AppUnregistered { .. } => ManagerEventKind::AppUnregistered,
            Self::AppShutdown => ManagerEventKind::AppShutdown,
            Self::Invitation { .. } => ManagerEventKind::Invitation,
            Self::LockChallenge { .. } => ManagerEventKind::LockChallenge,
            Self::LockEnable { .. } => ManagerEventKind::LockEnable,
            Self::LockResult { .. } => ManagerEventKind::LockResult,
            Self::LockStatusChanged { .. } => ManagerEventKind::LockStatusChanged,
        }
    }
}

/// Events of a session (DMsgrSessionEvents).
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// BeforeAppLaunch(in/out enable): set enable to false to keep the application from
    /// being launched.
    BeforeAppLaunch {
        /// In/out, true on entry.
        enable: bool,
    },
    /// OnAccepted(app data)
    Accepted {
        /// The invitee's application data.
        app_data: Option<Text>,
    },
    /// OnAppNotPresent(name, URL)
    AppNotPresent {
        /// The application's name, as the inviter registered it.
        name: Text,
        /// Where to get it.
        url: Text,
    },
    /// OnCancelled(app data)
    Cancelled {
        /// The canceller's application data.
        app_data: Option<Text>,
    },
    /// OnContextData(data)
    ContextData {
        /// The data the other side sent.
        data: Text,
    },
    /// OnDeclined(app data)
    Declined {
        /// The invitee's application data.
        app_data: Option<Text>,
    },
    /// OnReadyToLaunch()
    ReadyToLaunch,
    /// OnSendError(hr)
    SendError {
        /// SR_*_SEND_FAILURE of the step that failed.
        hr: Hr,
    },
    /// OnStateChanged(previous state); the session already holds the new state.
    StateChanged {
        /// The state before the transition.
        previous: SessionState,
    },
    /// OnTermination(hr, app data): exactly once per session per side, as its last event.
    Termination {
        /// Why the session ended.
        hr: Hr,
        /// Application data that came with the ending, if any.
        app_data: Option<Text>,
    },
}

/// The kinds of [`SessionEvent`], for registration.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionEventKind {
    /// BeforeAppLaunch
    BeforeAppLaunch,
    /// OnAccepted
    Accepted,
    /// OnAppNotPresent
    AppNotPresent,
    /// OnCancelled
    Cancelled,
    /// OnContextData
    ContextData,
    /// OnDeclined
    Declined,
    /// OnReadyToLaunch
    ReadyToLaunch,
    /// OnSendError
    SendError,
    /// OnStateChanged
    StateChanged,
    /// OnTermination
    Termination,
}

impl SessionEvent {
    /// This event's kind.
    pub fn kind(&self) -> SessionEventKind {
        match self {
            Self::BeforeAppLaunch { .. } => SessionEventKind::BeforeAppLaunch,
            Self::Accepted { .. } => SessionEventKind::Accepted,
            Self::AppNotPresent { .. } => SessionEventKind::AppNotPresent,
            Self::Cancelled { .. } => SessionEventKind::Cancelled,
            Self::ContextData { .. } => SessionEventKind::ContextData,
            Self::Declined { .. } => SessionEventKind::Declined,
            Self::ReadyToLaunch => SessionEventKind::ReadyToLaunch,
            Self::SendError { .. } => SessionEventKind::SendError,
            Self::StateChanged { .. } => SessionEventKind::StateChanged,
            Self::Termination { .. } => SessionEventKind::Termination,
        }
    }
}

/// Something that names its kind, so a sink list can filter registrations.
pub trait EventKind {
    /// The kind as a small integer.
    fn kind_id(&self) -> u8;
}
impl EventKind for ManagerEvent {
    fn kind_id(&self) -> u8 {
        self.kind() as u8
    }
}
impl EventKind for SessionEvent {
    fn kind_id(&self) -> u8 {
        self.kind() as u8
    }
}

/// A callback for events of type `E`.
pub type Callback<E> = Box<dyn Fn(&mut E) + Send + Sync>;

struct Registration<E> {
    kind: u8,
    cookie: u32,
    active: AtomicBool,
    callback: Callback<E>,
}

/// The registrations of one object for one event type.
pub struct Sinks<E> {
    list: ArcSwap<Vec<Arc<Registration<E>>>>,
    /// Bit `k` set when a registration of kind `k` is in `list` (written with `list`), so that
    /// an event nobody listens to is skipped without taking a snapshot.
    kinds: AtomicU32,
    writer: Mutex<u32>,
    alive: AtomicBool,
}

/// The `kinds` bit of a kind (kinds >= 32 share the top bit, which then means "maybe").
fn kind_bit(kind: u8) -> u32 {
    1u32 << kind.min(31)
}

fn kinds_of<E>(list: &[Arc<Registration<E>>]) -> u32 {
    list.iter().fold(0, |m, r| m | kind_bit(r.kind))
}

impl<E: EventKind> Default for Sinks<E> {
    fn default() -> Self {
        Sinks {
            list: ArcSwap::from_pointee(Vec::new()),
            kinds: AtomicU32::new(0),
            writer: Mutex::new(0),
            alive: AtomicBool::new(true),
        }
    }
}

impl<E: EventKind> Sinks<E> {
    /// Adds a registration and returns its cookie (never 0). E_HANDLE once the object is
    /// gone; the callback is then dropped, which runs its destroy notification.
    pub fn advise(&self, kind: u8, callback: Callback<E>) -> Result<u32> {
        let old;
        let cookie;
        {
            let mut next = self.writer.lock();
            if !self.alive.load(Ordering::Acquire) {
                drop(next);
                drop(callback);
                return Err(E_HANDLE);
            }
            *next = next.wrapping_add(1).max(1);
            cookie = *next;
            let reg = Arc::new(Registration {
                kind,
                cookie,
                active: AtomicBool::new(true),
                callback,
            });
            let mut v: Vec<_> = (**self.list.load()).clone();
            v.push(reg);
            self.kinds.store(kinds_of(&v), Ordering::Release);
            old = self.list.swap(Arc::new(v));
        }
        drop(old);
        Ok(cookie)
    }

    /// Ends a registration. E_INVALIDARG for a cookie that is not registered here.
    pub fn unadvise(&self, cookie: u32) -> Result<()> {
        let old;
        {
            let _w = self.writer.lock();
            let cur = self.list.load_full();
            let Some(pos) = cur.iter().position(|r| r.cookie == cookie) else {
                return Err(E_INVALIDARG);
            };
            cur[pos].active.store(false, Ordering::Release);
            let mut v: Vec<_> = (*cur).clone();
            v.remove(pos);
            self.kinds.store(kinds_of(&v), Ordering::Release);
            old = (cur, self.list.swap(Arc::new(v)));
        }
        drop(old);
        Ok(())
    }

    /// Ends every registration and refuses new ones: the object is gone.
    pub fn close(&self) {
        let old;
        {
            let _w = self.writer.lock();
            self.alive.store(false, Ordering::Release);
            self.kinds.store(0, Ordering::Release);
            old = self.list.swap(Arc::new(Vec::new()));
            for r in old.iter() {
                r.active.store(false, Ordering::Release);
            }
        }
        drop(old);
    }

    /// True until [`close`](Self::close).
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Number of live registrations.
    pub fn len(&self) -> usize {
        self.list.load().len()
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs every active registration for this event's kind, in registration order. A
    /// panicking callback is contained and the next one still runs.
    pub fn deliver(&self, event: &mut E) {
        if !self.is_alive() {
            return;
        }
        let kind = event.kind_id();
        // Nobody registered for this kind (a registration added concurrently with this
        // delivery may or may not see it, as with the snapshot below).
        if self.kinds.load(Ordering::Acquire) & kind_bit(kind) == 0 {
            return;
        }
        // A guard, not a clone: no reference count traffic. It stays valid while callbacks
        // change the list (a writer that replaces it pays this reader's debt first), and it
        // keeps the registrations of the snapshot alive until the delivery ends.
        let snapshot = self.list.load();
        for reg in snapshot.iter() {
            if reg.kind == kind && reg.active.load(Ordering::Acquire) && self.is_alive() {
                let _ = catch_unwind(AssertUnwindSafe(|| (reg.callback)(event)));
            }
        }
        drop(snapshot);
    }
}
