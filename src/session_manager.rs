//! The session manager (IMsgrSessionManager + IMsgrLock): creates sessions, registers
//! applications, and carries its own Lock and Key status.

use crate::client::{Client, ClientCore, Connection};
use crate::dispatch::{Job, SinksPtr};
use crate::error::{
    Result, E_FAIL, E_INVALIDARG, MSGR_E_API_ALREADY_UNLOCKED, MSGR_E_API_DISABLED,
    MSGR_E_API_LOCKED, MSGR_E_API_NOTINITIALIZED, MSGR_E_API_PENDING_UNLOCK,
    MSGR_E_API_UNLOCK_FAILED, MSGR_E_NOT_LOGGED_ON,
};
use crate::events::{Callback, ManagerEvent, ManagerEventKind, Sinks};
use crate::locks::Mutex;
use crate::registry::AppEntry;
use crate::session::Session;
use crate::types::{check_chars, limits, LockStatus, Text};
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

struct LockData {
    status: LockStatus,
    /// The client's connection epoch (see [`Connection`]) this status belongs to. A
    /// status from an earlier epoch opens nothing: the manager that followed the client's
    /// sign-ins is gone, so the exchange was not repeated after the last sign-in.
    epoch: u64,
    cookie: i32,
    challenge: Option<Text>,
    /// Counts the steps of the exchange (challenge requested, response sent), so that a
    /// service's late answer to an earlier step changes nothing.
    step: u64,
}

/// One manager's Lock and Key status; sessions created or received by the manager share it,
/// and outlive it: a session whose manager was released keeps the status the manager had
/// in that connection epoch, and is locked in every later one.
pub(crate) struct LockCell {
    data: Mutex<LockData>,
}

impl LockCell {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(LockCell {
            data: Mutex::new(LockData {
                status: LockStatus::NotInitialized,
                epoch: 0,
                cookie: 0,
                challenge: None,
                step: 0,
            }),
        })
    }

    pub(crate) fn status(&self) -> LockStatus {
        self.data.lock().status
    }

    /// Lets gated calls through when unlocked or when Lock and Key is off, in the client's
    /// current connection; otherwise MSGR_E_NOT_LOGGED_ON while the client is signed out
    /// and MSGR_E_API_LOCKED while locked. A status set in an earlier connection belongs to
    /// a manager that was released before the client signed out and in again: the gate is
    /// then what that manager's would be with the exchange not repeated, locked when the
    /// connection enforces Lock and Key and open when it does not.
    pub(crate) fn gate(&self, connection: Connection) -> Result<()> {
        if !connection.signed_in() {
            return Err(MSGR_E_NOT_LOGGED_ON);
        }
        let d = self.data.lock();
        if d.epoch != connection.epoch {
            return if connection.enforced {
                Err(MSGR_E_API_LOCKED)
            } else {
                Ok(())
            };
        }
        match d.status {
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

    /// The client signed in, starting connection `epoch`: the manager is locked (or Lock and
    /// Key is off). Ignored when the lock already follows a later epoch.
    pub(crate) fn signed_in(&self, enforced: bool, epoch: u64) {
        let mut d = self.lock.data.lock();
        if d.epoch > epoch {
            return;
        }
        d.epoch = epoch;
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

    /// The client signed out, starting connection `epoch`: back to LOCK_NOTINITIALIZED.
    pub(crate) fn signed_out(&self, epoch: u64) {
        let mut d = self.lock.data.lock();
        if d.epoch > epoch {
            return;
        }
        d.epoch = epoch;
        if d.status != LockStatus::NotInitialized {
            d.status = LockStatus::NotInitialized;
            d.challenge = None;
            self.client
                .queue
                .push(self.job(ManagerEvent::LockStatusChanged {
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
    pub fn advise_boxed(
        &self,
        kind: ManagerEventKind,
        callback: Callback<ManagerEvent>,
    ) -> Result<u32> {
        self.0.sinks.advise(kind as u8, callback)
    }

    /// Ends a registration. E_INVALIDARG for an unknown cookie.
    pub fn unadvise(&self, cookie: u32) -> Result<()> {
        self.0.sinks.unadvise(cookie)
    }

    fn gate(&self) -> Result<()> {
        self.0.lock.gate(self.0.client.connection())
    }

    /// CreateSession: a new session in SS_READY with SF_INVITER and a fresh SessionID.
    pub fn create_session(&self) -> Result<Session> {
        self.gate()?;
        Ok(Session::new_inviter(&self.0.client, &self.0.lock))
    }

    /// GetLaunchingSession: the session whose acceptance launched process `pid`.
    /// E_INVALIDARG for pid 0; E_FAIL when no session launched it.
    pub fn launching_session(&self, pid: u32) -> Result<Session> {
        self.gate()?;
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
        self.gate()?;
        // Control characters would make the Applications listing ambiguous.
        if [name, url, path]
            .iter()
            .any(|s| s.chars().any(char::is_control))
        {
            return Err(E_INVALIDARG);
        }
        self.0
            .client
            .registry
            .register(guid, name, url, path, flags)
    }

    /// UnRegisterApplication. Every manager sharing the registry gets OnAppUnRegistered.
    pub fn unregister_application(&self, guid: &str) -> Result<()> {
        self.gate()?;
        self.0.client.registry.unregister(guid)
    }

    /// Applications [ours]: the registered applications, sorted by GUID.
    pub fn applications(&self) -> Result<Vec<AppEntry>> {
        self.gate()?;
        Ok(self.0.client.registry.list())
    }

    /// The Lock and Key status.
    pub fn lock_status(&self) -> LockStatus {
        self.0.lock.status()
    }

    /// RequestChallenge(cookie): status becomes LOCK_PENDINGRESULT (OnLockStatusChanged),
    /// then, once the service issued the challenge, OnLockChallenge(cookie, challenge) is
    /// queued. When the service cannot issue one, the status goes back to LOCK_INITIALIZED
    /// (OnLockStatusChanged). No lock is held while the service works.
    pub fn request_challenge(&self, cookie: i32) -> Result<()> {
        let m = &self.0;
        let step = {
            let mut d = m.lock.data.lock();
            match d.status {
                LockStatus::NotInitialized => return Err(MSGR_E_API_NOTINITIALIZED),
                LockStatus::PendingResult => return Err(MSGR_E_API_PENDING_UNLOCK),
                LockStatus::Unlocked => return Err(MSGR_E_API_ALREADY_UNLOCKED),
                LockStatus::Disabled => return Err(MSGR_E_API_DISABLED),
                LockStatus::UnlockFailed => return Err(MSGR_E_API_UNLOCK_FAILED),
                LockStatus::Initialized => {}
            }
            d.status = LockStatus::PendingResult;
            d.cookie = cookie;
            d.challenge = None;
            d.step += 1;
            m.raise(ManagerEvent::LockStatusChanged {
                status: LockStatus::PendingResult,
            });
            (d.epoch, d.step)
        };
        let core = Arc::clone(m);
        m.client.service.issue_challenge(Box::new(move |challenge| {
            let mut d = core.lock.data.lock();
            if (d.epoch, d.step) != step || d.status != LockStatus::PendingResult {
                return; // signed out (or in again) meanwhile
            }
            match challenge {
                Ok(challenge) => {
                    d.challenge = Some(challenge.clone());
                    let cookie = d.cookie;
                    core.raise(ManagerEvent::LockChallenge { cookie, challenge });
                }
                Err(_) => {
                    d.status = LockStatus::Initialized;
                    core.raise(ManagerEvent::LockStatusChanged {
                        status: LockStatus::Initialized,
                    });
                }
            }
        }));
        Ok(())
    }

    /// SendResponse(application ID, response, cookie): the service checks the response;
    /// once it answered, OnLockResult(cookie, succeeded) and OnLockStatusChanged follow.
    /// E_INVALIDARG for a cookie other than the pending challenge's (nothing changes);
    /// MSGR_E_API_LOCKED when no challenge is pending (none issued yet, or its response is
    /// being checked); the status errors of RequestChallenge otherwise. No lock is held while
    /// the service checks.
    pub fn send_response(&self, app_id: &str, response: &str, cookie: i32) -> Result<()> {
        check_chars(app_id, limits::LOCK_FIELD_CHARS, E_INVALIDARG)?;
        check_chars(response, limits::LOCK_FIELD_CHARS, E_INVALIDARG)?;
        let m = &self.0;
        let (challenge, step) = {
            let mut d = m.lock.data.lock();
            match d.status {
                LockStatus::NotInitialized => return Err(MSGR_E_API_NOTINITIALIZED),
                LockStatus::Initialized => return Err(MSGR_E_API_LOCKED),
                LockStatus::Unlocked => return Err(MSGR_E_API_ALREADY_UNLOCKED),
                LockStatus::Disabled => return Err(MSGR_E_API_DISABLED),
                LockStatus::UnlockFailed => return Err(MSGR_E_API_UNLOCK_FAILED),
                LockStatus::PendingResult => {}
            }
            if d.challenge.is_none() {
                return Err(MSGR_E_API_LOCKED);
            }
            if cookie != d.cookie {
                return Err(E_INVALIDARG);
            }
            d.step += 1;
            (
                d.challenge.take().unwrap_or_else(Text::empty),
                (d.epoch, d.step),
            )
        };
        let core = Arc::clone(m);
        let done = Box::new(move |ok: bool| {
            let mut d = core.lock.data.lock();
            if (d.epoch, d.step) != step || d.status != LockStatus::PendingResult {
                return; // signed out (or in again) meanwhile
            }
            d.status = if ok {
                LockStatus::Unlocked
            } else {
                LockStatus::UnlockFailed
            };
            let status = d.status;
            if !core.is_closed() {
                core.client.queue.push_all([
                    core.job(ManagerEvent::LockResult {
                        cookie,
                        succeeded: ok,
                    }),
                    core.job(ManagerEvent::LockStatusChanged { status }),
                ]);
            }
        });
        m.client
            .service
            .check_response(challenge.as_str(), app_id, response, done);
        Ok(())
    }
}
