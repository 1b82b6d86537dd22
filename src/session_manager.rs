//! The session manager (IMsgrSessionManager + IMsgrLock): creates sessions, registers
//! applications, and carries its own Lock and Key status.

use crate::client::{Client, ClientCore};
use crate::dispatch::{Job, SinksPtr};
use crate::error::{
    Result, E_INVALIDARG, MSGR_E_API_ALREADY_UNLOCKED, MSGR_E_API_DISABLED, MSGR_E_API_LOCKED,
    MSGR_E_API_NOTINITIALIZED, MSGR_E_API_PENDING_UNLOCK, MSGR_E_API_UNLOCK_FAILED, E_FAIL,
    MSGR_E_NOT_LOGGED_ON,
};
use crate::events::{Callback, ManagerEvent, ManagerEventKind, Sinks};
use crate::registry::AppEntry;
use crate::session::Session;
use crate::types::{check_chars, limits, LockStatus, Text};
use crate::locks::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::mem::ManuallyDrop;
use std::sync::Arc;

struct LockData {
    status: LockStatus,
    cookie: i32,
    challenge: Option<Text>,
}

/// One manager's Lock and Key status; sessions created or received by the manager share it.
pub(crate) struct LockCell {
    data: Mutex<LockData>,
}

impl LockCell {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(LockCell {
            data: Mutex::new(LockData {
                status: LockStatus::NotInitialized,
                cookie: 0,
                challenge: None,
            }),
        })
    }

    pub(crate) fn status(&self) -> LockStatus {
        self.data.lock().status
    }

    /// Lets gated calls through when unlocked or when Lock and Key is off; otherwise
    /// MSGR_E_NOT_LOGGED_ON while the client is signed out (LOCK_NOTINITIALIZED) and
    /// MSGR_E_API_LOCKED while locked.
    pub(crate) fn gate(&self) -> Result<()> {
        match self.status() {
            LockStatus::Unlocked | LockStatus::Disabled => Ok(()),
            LockStatus::NotInitialized => Err(MSGR_E_NOT_LOGGED_ON),
            _ => Err(MSGR_E_API_LOCKED),
        }
    }
}

pub(crate) struct ManagerCore {
    pub(crate) client: Arc<ClientCore>,
    pub(crate) lock: Arc<LockCell>,
    /// Handed to the event queue when the manager is dropped (see [`SinksPtr`]).
    pub(crate) sinks: ManuallyDrop<Arc<Sinks<ManagerEvent>>>,
    closed: AtomicBool,
}

impl Drop for ManagerCore {
    fn drop(&mut self) {
        // SAFETY: taken once, here; the field is not used afterwards.
        let sinks = unsafe { ManuallyDrop::take(&mut self.sinks) };
        self.client.queue.release_sinks(sinks);
    }
}

impl ManagerCore {
    fn job(&self, event: ManagerEvent) -> Job {
        Job::Manager {
            sinks: SinksPtr::new(&self.sinks),
            event,
        }
    }

    /// Queues one event for this manager.
    pub(crate) fn raise(&self, event: ManagerEvent) {
        if !self.closed.load(Ordering::Acquire) {
            self.client.queue.push(self.job(event));
        }
    }

    /// The client signed in: the manager is locked (or Lock and Key is off).
    pub(crate) fn signed_in(&self, enforced: bool) {
        let mut d = self.lock.data.lock();
        d.status = if enforced {
            LockStatus::Initialized
        } else {
            LockStatus::Disabled
        };
        d.challenge = None;
        let status = d.status;
        self.client.queue.push_all([
            self.job(ManagerEvent::LockEnable { enabled: enforced }),
            self.job(ManagerEvent::LockStatusChanged { status }),
        ]);
    }

    /// The client signed out: back to LOCK_NOTINITIALIZED.
    pub(crate) fn signed_out(&self) {
        let mut d = self.lock.data.lock();
        if d.status != LockStatus::NotInitialized {
            d.status = LockStatus::NotInitialized;
            d.challenge = None;
            self.client.queue.push(self.job(ManagerEvent::LockStatusChanged {
                status: LockStatus::NotInitialized,
            }));
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// A session manager: what an application creates to use the API. Each one is locked on
/// its own until it completes the Lock and Key exchange (when the service enforces it).
#[derive(Clone)]
pub struct SessionManager(pub(crate) Arc<ManagerCore>);

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionManager({:?})", self.lock_status())
    }
}

impl PartialEq for SessionManager {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl SessionManager {
    /// Creates a manager on `client`. When the client is signed in, OnLockEnable and
    /// OnLockStatusChanged are queued for it at once. MSGR_E_SERVER_SHUTDOWN after the
    /// client shut down.
    pub fn new(client: &Client) -> Result<SessionManager> {
        let core = Arc::new(ManagerCore {
            client: Arc::clone(&client.0),
            lock: LockCell::new(),
            sinks: ManuallyDrop::new(Arc::new(Sinks::new(client.0.queue.reclaimer().clone()))),
            closed: AtomicBool::new(false),
        });
        client.0.add_manager(&core)?;
        Ok(SessionManager(core))
    }

    /// The client this manager belongs to.
    pub fn client(&self) -> Client {
        Client(Arc::clone(&self.0.client))
    }

    /// Ends the manager: every registration ends, queued events are dropped, it receives
    /// nothing more. Its sessions go on. Calling it twice does nothing.
    pub fn close(&self) {
        if !self.0.closed.swap(true, Ordering::AcqRel) {
            self.0.sinks.close();
            self.0.client.queue.purge_dead();
        }
    }

    /// Registers a callback for one event kind; returns its cookie.
    pub fn advise(
        &self,
        kind: ManagerEventKind,
        callback: impl Fn(&mut ManagerEvent) + Send + Sync + 'static,
    ) -> Result<u32> {
        self.advise_boxed(kind, Box::new(callback))
    }

    /// [`advise`](Self::advise) with an already boxed callback (dropped on failure).
    pub fn advise_boxed(&self, kind: ManagerEventKind, callback: Callback<ManagerEvent>) -> Result<u32> {
        self.0.sinks.advise(kind as u8, callback)
    }

    /// Ends a registration. E_INVALIDARG for an unknown cookie.
    pub fn unadvise(&self, cookie: u32) -> Result<()> {
        self.0.sinks.unadvise(cookie)
    }

    /// CreateSession: a new session in SS_READY with SF_INVITER and a fresh SessionID.
    pub fn create_session(&self) -> Result<Session> {
        self.0.lock.gate()?;
        Ok(Session::new_inviter(&self.0.client, &self.0.lock))
    }

    /// GetLaunchingSession: the session whose acceptance launched process `pid`.
    /// E_INVALIDARG for pid 0; E_FAIL when no session launched it.
    pub fn launching_session(&self, pid: u32) -> Result<Session> {
        self.0.lock.gate()?;
        if pid == 0 {
            return Err(E_INVALIDARG);
        }
        self.0.client.launching_session(pid).ok_or(E_FAIL)
    }

    /// RegisterApplication. Every manager sharing the registry gets OnAppRegistered.
    pub fn register_application(
        &self,
        guid: &str,
        name: &str,
        url: &str,
        path: &str,
        flags: u32,
    ) -> Result<()> {
        self.0.lock.gate()?;
        // Control characters would make the Applications listing ambiguous.
        if [name, url, path].iter().any(|s| s.chars().any(char::is_control)) {
            return Err(E_INVALIDARG);
        }
        self.0.client.registry.register(guid, name, url, path, flags)
    }

    /// UnRegisterApplication. Every manager sharing the registry gets OnAppUnRegistered.
    pub fn unregister_application(&self, guid: &str) -> Result<()> {
        self.0.lock.gate()?;
        self.0.client.registry.unregister(guid)
    }

    /// Applications [ours]: the registered applications, sorted by GUID.
    pub fn applications(&self) -> Result<Vec<AppEntry>> {
        self.0.lock.gate()?;
        Ok(self.0.client.registry.list())
    }

    /// The Lock and Key status.
    pub fn lock_status(&self) -> LockStatus {
        self.0.lock.status()
    }

    /// RequestChallenge(cookie): status becomes LOCK_PENDINGRESULT (OnLockStatusChanged),
    /// then OnLockChallenge(cookie, challenge) is queued.
    pub fn request_challenge(&self, cookie: i32) -> Result<()> {
        let m = &self.0;
        let mut d = m.lock.data.lock();
        match d.status {
            LockStatus::NotInitialized => return Err(MSGR_E_API_NOTINITIALIZED),
            LockStatus::PendingResult => return Err(MSGR_E_API_PENDING_UNLOCK),
            LockStatus::Unlocked => return Err(MSGR_E_API_ALREADY_UNLOCKED),
            LockStatus::Disabled => return Err(MSGR_E_API_DISABLED),
            LockStatus::UnlockFailed => return Err(MSGR_E_API_UNLOCK_FAILED),
            LockStatus::Initialized => {}
        }
        let challenge = m.client.service.issue_challenge();
        d.status = LockStatus::PendingResult;
        d.cookie = cookie;
        d.challenge = Some(challenge.clone());
        if !m.is_closed() {
            m.client.queue.push_all([
                m.job(ManagerEvent::LockStatusChanged {
                    status: LockStatus::PendingResult,
                }),
                m.job(ManagerEvent::LockChallenge { cookie, challenge }),
            ]);
        }
        Ok(())
    }

    /// SendResponse(application ID, response, cookie): the service checks the response;
    /// OnLockResult(cookie, succeeded) and OnLockStatusChanged follow. E_INVALIDARG for a
    /// cookie other than the pending challenge's (nothing changes); MSGR_E_API_LOCKED when
    /// no challenge is pending; the status errors of RequestChallenge otherwise.
    pub fn send_response(&self, app_id: &str, response: &str, cookie: i32) -> Result<()> {
        check_chars(app_id, limits::LOCK_FIELD_CHARS, E_INVALIDARG)?;
        check_chars(response, limits::LOCK_FIELD_CHARS, E_INVALIDARG)?;
        let m = &self.0;
        let mut d = m.lock.data.lock();
        match d.status {
            LockStatus::NotInitialized => return Err(MSGR_E_API_NOTINITIALIZED),
            LockStatus::Initialized => return Err(MSGR_E_API_LOCKED),
            LockStatus::Unlocked => return Err(MSGR_E_API_ALREADY_UNLOCKED),
            LockStatus::Disabled => return Err(MSGR_E_API_DISABLED),
            LockStatus::UnlockFailed => return Err(MSGR_E_API_UNLOCK_FAILED),
            LockStatus::PendingResult => {}
        }
        if cookie != d.cookie {
            return Err(E_INVALIDARG);
        }
        let challenge = d.challenge.take().unwrap_or_else(Text::empty);
        let ok = m
            .client
            .service
            .check_response(challenge.as_str(), app_id, response);
        d.status = if ok {
            LockStatus::Unlocked
        } else {
            LockStatus::UnlockFailed
        };
        let status = d.status;
        if !m.is_closed() {
            m.client.queue.push_all([
                m.job(ManagerEvent::LockResult {
                    cookie,
                    succeeded: ok,
                }),
                m.job(ManagerEvent::LockStatusChanged { status }),
            ]);
        }
        Ok(())
    }
}
