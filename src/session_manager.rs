//! The session manager (IMsgrSessionManager + IMsgrLock): creates sessions, registers
//! applications, and carries its own Lock and Key status (see [`LockCell`]).

use crate::dispatch::SinksPtr;
use crate::error::{Result, E_FAIL, E_INVALIDARG};
use crate::event;
use crate::event::ManagerEventKind;
use crate::lock::{Held, LockCell};
use crate::registry::AppEntry;
use crate::session::{Host, Queue, Session};
use crate::sinks::{Callback, Sinks};
use crate::types::{check_chars, limits, LockStatus};
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The events of a manager, with the crate's sessions.
pub(crate) type ManagerEvent = event::ManagerEvent<Session>;
type Job = crate::dispatch::Job<Session>;

pub(crate) struct ManagerCore {
    host: Arc<dyn Host>,
    /// The client's event queue (the host's, held here so that raising needs no call).
    queue: Arc<Queue>,
    lock: Arc<LockCell>,
    /// Handed to the event queue when the manager is dropped (see [`SinksPtr`]).
    sinks: ManuallyDrop<Arc<Sinks<ManagerEvent>>>,
    closed: AtomicBool,
}

impl Drop for ManagerCore {
    fn drop(&mut self) {
        // SAFETY: taken once, here; the field is not used afterwards.
        let sinks = unsafe { ManuallyDrop::take(&mut self.sinks) };
        let queue = &self.queue;
        hand_over(&self.lock, || queue.release_sinks(sinks));
    }
}

/// What a manager that goes does with its sink list: first it stops announcing through its
/// lock cell, so that the client's walk of its managers ([`ManagerLink`]) queues nothing more
/// for the list; then `release` hands the list to the queue, whose Release job (or immediate
/// free) comes after everything queued for it. Model checked (`manager_release_racing_walk`).
pub(crate) fn hand_over(lock: &LockCell, release: impl FnOnce()) {
    lock.stop_announcing();
    release();
}

/// A manager as its client's list holds it: what signing in and out needs, without a
/// reference to the manager (walking the list then costs no reference count per manager).
/// `sinks` stays valid for the jobs queued through the link because they are queued under
/// the lock cell's lock while it announces, and the manager stops its announcing
/// ([`LockCell::stop_announcing`]) before it hands its list to the queue.
pub(crate) struct ManagerLink {
    pub(crate) core: std::sync::Weak<ManagerCore>,
    lock: Arc<LockCell>,
    sinks: SinksPtr<ManagerEvent>,
}

impl ManagerLink {
    pub(crate) fn new(m: &Arc<ManagerCore>) -> Self {
        ManagerLink {
            core: Arc::downgrade(m),
            lock: Arc::clone(&m.lock),
            sinks: SinksPtr::new(&m.sinks),
        }
    }
}

/// The client signed in, starting connection `epoch`: every manager of `links` that hears it
/// gets OnLockEnable and OnLockStatusChanged (see [`walk`]).
pub(crate) fn walk_signed_in(links: &[ManagerLink], queue: &Queue, enforced: bool, epoch: u64) {
    let enable = Template::new(ManagerEvent::LockEnable { enabled: enforced });
    let status = Template::new(ManagerEvent::LockStatusChanged {
        status: LockCell::status_at_sign_in(enforced),
    });
    walk(links, queue, 2, |l, jobs| {
        let held = l.lock.signed_in_held(enforced, epoch)?;
        jobs.push_like(&enable, &l.sinks);
        jobs.push_like(&status, &l.sinks);
        Some(held)
    });
}

/// The client signed out, starting connection `epoch`: every manager of `links` whose status
/// changes gets OnLockStatusChanged(LOCK_NOTINITIALIZED) (see [`walk`]).
pub(crate) fn walk_signed_out(links: &[ManagerLink], queue: &Queue, epoch: u64) {
    let status = Template::new(ManagerEvent::LockStatusChanged {
        status: LockStatus::NotInitialized,
    });
    walk(links, queue, 1, |l, jobs| {
        let held = l.lock.signed_out_held(epoch)?;
        jobs.push_like(&status, &l.sinks);
        Some(held)
    });
}

/// A job a walk queues for many managers: an event that owns nothing (Lock and Key's
/// statuses), copied bit for bit for each manager.
pub(crate) struct Template(Job);

impl Template {
    /// A template of `event`, which must be OnLockEnable or OnLockStatusChanged.
    pub(crate) fn new(event: ManagerEvent) -> Self {
        assert!(matches!(
            event,
            ManagerEvent::LockEnable { .. } | ManagerEvent::LockStatusChanged { .. }
        ));
        Template(Job::Manager {
            sinks: SinksPtr::dangling(),
            event,
        })
    }
}

/// The jobs of a [`walk`]: room for `per` more is made before each manager.
pub(crate) struct WalkJobs(Vec<Job>);

impl WalkJobs {
    /// Appends `template`'s job for the list `sinks`. The job is copied whole from the
    /// template and then pointed at the list: a job built field by field and then moved is
    /// read back by wide loads from the narrower stores just made, which the CPU cannot
    /// forward (a stall per job).
    #[inline(always)]
    pub(crate) fn push_like(&mut self, template: &Template, sinks: &SinksPtr<ManagerEvent>) {
        let len = self.0.len();
        assert!(
            len < self.0.capacity(),
            "a walk queues at most `per` jobs per manager"
        );
        // SAFETY: within the capacity (checked above). The template's event owns nothing
        // (`Template::new`), so a bitwise copy is a job of its own; its `sinks` field is then
        // overwritten (a pointer, nothing to drop) and the slot is initialised.
        unsafe {
            let slot = self.0.as_mut_ptr().add(len);
            std::ptr::copy_nonoverlapping(&template.0, slot, 1);
            if let Job::Manager { sinks: s, .. } = &mut *slot {
                std::ptr::write(s, sinks.clone());
            }
            self.0.set_len(len + 1);
        }
    }

    /// Appends a job built by the caller.
    #[cfg(all(test, loom))]
    pub(crate) fn extend(&mut self, jobs: impl IntoIterator<Item = Job>) {
        for j in jobs {
            self.0.reserve(1);
            self.0.push(j);
        }
    }
}

/// A walk of the client's managers: `each` makes a manager's transition, adds the events it
/// announces to the jobs and returns its lock cell held (see [`Held`](crate::lock::Held)).
/// Every job is queued in one push, and only then are the cells let go: each manager's
/// statuses are queued in the order of its transitions, and a manager that goes meanwhile
/// stops announcing ([`hand_over`]) only after the walk's jobs for its list are queued ahead
/// of the list's release. `per`: jobs per manager, for the capacity. Model checked
/// (`manager_release_racing_walk`).
pub(crate) fn walk<'a, L>(
    links: &'a [L],
    queue: &Queue,
    per: usize,
    mut each: impl FnMut(&'a L, &mut WalkJobs) -> Option<Held<'a>>,
) {
    let mut held = Vec::with_capacity(links.len());
    let mut jobs = WalkJobs(Vec::with_capacity(per * links.len()));
    for l in links {
        jobs.0.reserve(per);
        if let Some(h) = each(l, &mut jobs) {
            held.push(h);
        }
    }
    if !jobs.0.is_empty() {
        queue.push_all(jobs.0);
    }
    drop(held);
}

fn job(sinks: &SinksPtr<ManagerEvent>, event: ManagerEvent) -> Job {
    Job::Manager {
        sinks: sinks.clone(),
        event,
    }
}

fn announce_signed_in(
    lock: &LockCell,
    sinks: &SinksPtr<ManagerEvent>,
    queue: &Queue,
    enforced: bool,
    epoch: u64,
) {
    lock.signed_in(enforced, epoch, |status| {
        queue.push_all([
            job(sinks, ManagerEvent::LockEnable { enabled: enforced }),
            job(sinks, ManagerEvent::LockStatusChanged { status }),
        ]);
    });
}

impl ManagerCore {
    /// A manager of the client `host`, whose event queue is `queue`; the client adds it to
    /// its list.
    pub(crate) fn new(host: Arc<dyn Host>, queue: Arc<Queue>) -> Arc<ManagerCore> {
        let sinks = Arc::new(Sinks::new(queue.reclaimer().clone()));
        Arc::new(ManagerCore {
            host,
            queue,
            lock: LockCell::new(),
            sinks: ManuallyDrop::new(sinks),
            closed: AtomicBool::new(false),
        })
    }

    /// The client this manager belongs to.
    pub(crate) fn host(&self) -> &Arc<dyn Host> {
        &self.host
    }

    /// The manager's Lock and Key status.
    pub(crate) fn lock(&self) -> &Arc<LockCell> {
        &self.lock
    }

    fn job(&self, event: ManagerEvent) -> Job {
        Job::Manager {
            sinks: SinksPtr::new(&self.sinks),
            event,
        }
    }

    /// Queues one event for this manager.
    pub(crate) fn raise(&self, event: ManagerEvent) {
        if !self.closed.load(Ordering::Acquire) {
            self.queue.push(self.job(event));
        }
    }

    /// The client signed in, starting connection `epoch`: the manager is locked (or Lock and
    /// Key is off). Ignored when the lock already follows a later epoch.
    pub(crate) fn signed_in(&self, enforced: bool, epoch: u64) {
        let sinks = SinksPtr::new(&self.sinks);
        announce_signed_in(&self.lock, &sinks, &self.queue, enforced, epoch);
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
    /// Ends the manager: every registration ends, queued events are dropped, it receives
    /// nothing more. Its sessions go on. Calling it twice does nothing.
    pub fn close(&self) {
        if !self.0.closed.swap(true, Ordering::AcqRel) {
            self.0.lock.stop_announcing();
            self.0.sinks.close();
            self.0.queue.purge_dead();
        }
    }

    /// Registers a callback for one event kind; returns its cookie.
    pub fn advise(
        &self,
        kind: ManagerEventKind,
        callback: impl Fn(&mut ManagerEvent) + Send + Sync + 'static,
    ) -> Result<u32> {
        self.advise_callback(kind, Callback::new(callback))
    }

    /// [`advise`](Self::advise) with a callback already wrapped (dropped on failure).
    pub fn advise_callback(
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
        self.0.lock.gate(self.0.host.connection())
    }

    /// CreateSession: a new session in SS_READY with SF_INVITER and a fresh SessionID.
    pub fn create_session(&self) -> Result<Session> {
        self.gate()?;
        Ok(Session::new_inviter(
            &self.0.host,
            &self.0.queue,
            &self.0.lock,
        ))
    }

    /// GetLaunchingSession: the session whose acceptance launched process `pid`.
    /// E_INVALIDARG for pid 0; E_FAIL when no session launched it.
    pub fn launching_session(&self, pid: u32) -> Result<Session> {
        self.gate()?;
        if pid == 0 {
            return Err(E_INVALIDARG);
        }
        self.0.host.launching_session(pid).ok_or(E_FAIL)
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
            .host
            .registry()
            .register(guid, name, url, path, flags)
    }

    /// UnRegisterApplication. Every manager sharing the registry gets OnAppUnRegistered.
    pub fn unregister_application(&self, guid: &str) -> Result<()> {
        self.gate()?;
        self.0.host.registry().unregister(guid)
    }

    /// Applications [ours]: the registered applications, sorted by GUID.
    pub fn applications(&self) -> Result<Vec<AppEntry>> {
        self.gate()?;
        Ok(self.0.host.registry().list())
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
        let step = m.lock.request_challenge(cookie, || {
            m.raise(ManagerEvent::LockStatusChanged {
                status: LockStatus::PendingResult,
            });
        })?;
        let core = Arc::clone(m);
        m.host.service().issue_challenge(Box::new(move |challenge| {
            core.lock.challenge_issued(
                step,
                challenge,
                |cookie, challenge| core.raise(ManagerEvent::LockChallenge { cookie, challenge }),
                |status| core.raise(ManagerEvent::LockStatusChanged { status }),
            );
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
        let (challenge, step) = m.lock.take_challenge(cookie)?;
        let core = Arc::clone(m);
        let done = Box::new(move |ok: bool| {
            core.lock.checked(step, ok, |status| {
                if !core.is_closed() {
                    core.queue.push_all([
                        core.job(ManagerEvent::LockResult {
                            cookie,
                            succeeded: ok,
                        }),
                        core.job(ManagerEvent::LockStatusChanged { status }),
                    ]);
                }
            });
        });
        m.host
            .service()
            .check_response(challenge.as_str(), app_id, response, done);
        Ok(())
    }
}
