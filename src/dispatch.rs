//! Per-client event queues and their delivery: manual dispatch with a timeout, a file
//! descriptor that is readable while events are pending, and a client-owned thread.
//!
//! Events are queued in the order they are raised and delivered in that order. No internal
//! lock is held while a callback runs. Only one thread delivers a client's events at a time;
//! a callback may call `dispatch` again on its own thread (a nested loop continues with the
//! next event), while another thread calling `dispatch` waits for its turn within its
//! timeout.
//!
//! The delivering thread takes every queued job in one lock acquisition (a swap of buffers)
//! and delivers them from its private buffer without locking per event; a nested `dispatch`
//! continues from that buffer, so the order is unchanged. A close is seen before every event.

//!
//! Model checked with loom (`--cfg loom`, scripts/loom.sh, the models in `loom_tests`): the
//! lock, the condition variable, the delivery thread's wake word (a futex, emulated with a
//! lock and a condition variable under loom), the atomics and the `taken` cell come from
//! `crate::sync`, which are `crate::locks`' and std's in a normal build and loom's under
//! `cfg(loom)`. The differences under `cfg(loom)`, all outside the code paths of a normal
//! build: the thread identity comes from loom's thread-local; `Notifier::new` returns `None`
//! (no eventfd, so every set/clear of the descriptor is skipped and `event_fd` fails); timed
//! waits never time out (loom has no time; see `crate::sync`); `Job` has a test-only `Probe`
//! variant.

use crate::error::{Result, E_FAIL, E_ILLEGAL_METHOD_CALL};
use crate::event::{ManagerEvent, SessionEvent};
use crate::sinks::{EventKind, Reclaimer, Sinks};
use crate::sync::Arc as SyncArc;
use crate::sync::{
    AtomicBool, AtomicUsize, Condvar, Mutex, MutexGuard, Ordering, UnsafeCell, WakeWord,
};
use crate::trace::{self, trace};
use std::sync::atomic::{AtomicBool as StdAtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A cheap identity for the calling thread (the address of a thread-local), without the
/// allocation `std::thread::current()` makes on threads the library did not start.
type ThreadId = usize;

fn current_thread() -> ThreadId {
    #[cfg(not(loom))]
    crate::sync::thread_local!(static MARK: u8 = const { 0 });
    #[cfg(loom)]
    crate::sync::thread_local!(static MARK: u8 = 0);
    MARK.with(|m| m as *const u8 as usize)
}

/// How a client's events reach its callbacks.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DispatchMode {
    /// The application calls `dispatch` (and may poll the event descriptor).
    Manual = 0,
    /// A thread owned by the client delivers events as they arrive.
    Thread = 1,
}

/// A job's pointer to the sink list of the object its event was raised for, without a
/// reference count (taking and dropping one per event cost about 5 ns of a 48 ns delivery).
///
/// The list outlives every job that points at it: its owner (a manager, or a session) does
/// not drop its `Arc<Sinks>` but hands it to [`EventQueue::release_sinks`] (when the owner is
/// dropped, and when a session replaces its list as its application releases it), which frees
/// it behind the jobs already queued and after the deliveries under way.
pub(crate) struct SinksPtr<E>(std::ptr::NonNull<Sinks<E>>);

impl<E> SinksPtr<E> {
    pub(crate) fn new(sinks: &Arc<Sinks<E>>) -> Self {
        SinksPtr(std::ptr::NonNull::from(&**sinks))
    }

    /// A pointer to no list, for a job that is never run (a template, see
    /// `session_manager::Template`).
    pub(crate) fn dangling() -> Self {
        SinksPtr(std::ptr::NonNull::dangling())
    }

    fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }
}

impl<E> Clone for SinksPtr<E> {
    fn clone(&self) -> Self {
        SinksPtr(self.0)
    }
}

impl<E> std::ops::Deref for SinksPtr<E> {
    type Target = Sinks<E>;
    fn deref(&self) -> &Sinks<E> {
        // SAFETY: see the type's documentation: the list outlives the job.
        unsafe { self.0.as_ref() }
    }
}

// SAFETY: a shared reference to a `Sinks` (which is Sync) that outlives the pointer.
unsafe impl<E> Send for SinksPtr<E> where Sinks<E>: Sync {}

/// What the object an event was raised for does once its callbacks have run: the queue
/// calls it after delivering OnInvitation (on the invitation's session) and BeforeAppLaunch
/// (on the session it was raised for), with what the callbacks left in the event's in/out
/// field. Implemented by the session; the queue is generic over it, so the call is direct.
pub(crate) trait FollowUp: Send + 'static {
    /// OnInvitation was delivered; `handled`: whether a manager took care of it.
    fn invitation_handled(&self, handled: bool);
    /// BeforeAppLaunch was delivered; `enable`: whether the application may be launched.
    fn launch_decided(&self, enable: bool);
}

/// One queued event with the sink list it was raised for; `S` is the session type (see
/// [`FollowUp`]).
///
/// A word-sized tag: the payload starts on a word boundary, so the copies of a job (pushed,
/// popped) are made of aligned 16-byte moves that the CPU can forward to the loads that
/// follow. With the default layout (a one-byte tag, the payload from byte 1) the profile of
/// dispatch showed store-forwarding stalls on every job.
#[repr(u64)]
pub(crate) enum Job<S> {
    Manager {
        sinks: SinksPtr<ManagerEvent<S>>,
        event: ManagerEvent<S>,
    },
    Session {
        /// The session, for the events whose delivery it follows up (BeforeAppLaunch); `None`
        /// for the others, so that raising and delivering them costs no reference count.
        session: Option<S>,
        sinks: SinksPtr<SessionEvent>,
        event: SessionEvent,
    },
    /// Not an event: a released object's sink list, freed (through the reclaimer, after the
    /// deliveries under way) once the jobs queued before it are done. Not counted by
    /// `pending` and does not make the descriptor readable.
    Release(#[allow(dead_code)] Released),
    /// Model checking only: a job that records what happens to it.
    #[cfg(all(test, loom))]
    Probe(crate::loom_tests::Probe),
}

// A job is one cache line at most: asserted where the session type is known (session.rs).

impl<S: FollowUp> Job<S> {
    /// True when the object the event was raised for still exists.
    fn is_live(&self) -> bool {
        match self {
            Job::Manager { sinks, .. } => sinks.is_alive(),
            Job::Session { sinks, .. } => sinks.is_alive(),
            Job::Release(_) => false,
            #[cfg(all(test, loom))]
            Job::Probe(_) => true,
        }
    }

    fn is_event(&self) -> bool {
        !matches!(self, Job::Release(_))
    }

    /// The event's name, for the trace.
    fn describe(&self) -> String {
        match self {
            Job::Manager { event, .. } => format!("On{:?}", event.kind()),
            Job::Session { event, .. } => format!("On{:?}", event.kind()),
            Job::Release(_) => "a release".into(),
            #[cfg(all(test, loom))]
            Job::Probe(_) => "a probe".into(),
        }
    }

    /// True when the job points at the object at `addr` (see [`SinksPtr`]).
    fn points_at(&self, addr: usize) -> bool {
        match self {
            Job::Manager { sinks, .. } => sinks.addr() == addr,
            Job::Session { sinks, .. } => sinks.addr() == addr,
            Job::Release(_) => false,
            #[cfg(all(test, loom))]
            Job::Probe(p) => p.points_at == addr,
        }
    }

    /// True for jobs that carry work besides delivery, kept by `purge_dead` even when their
    /// object is gone: BeforeAppLaunch decides the launch, and a Release stays behind the jobs
    /// that point at its list.
    fn has_follow_up(&self) -> bool {
        matches!(
            self,
            Job::Session {
                event: SessionEvent::BeforeAppLaunch { .. },
                ..
            } | Job::Release(_)
        )
    }

    /// Delivers the event in place (the job is dropped by the caller); returns whether it
    /// reached a live object. `entered`: the reclaimer the delivering thread has entered (the
    /// queue's).
    fn run(&mut self, entered: &SyncArc<Reclaimer>) -> bool {
        let live = self.is_live();
        match self {
            Job::Manager { sinks, event } => {
                deliver(sinks, event, entered);
                if let ManagerEvent::Invitation {
                    session, handled, ..
                } = event
                {
                    session.invitation_handled(*handled);
                }
            }
            Job::Session {
                session,
                sinks,
                event,
            } => {
                deliver(sinks, event, entered);
                if let (SessionEvent::BeforeAppLaunch { enable }, Some(session)) =
                    (&*event, session)
                {
                    session.launch_decided(*enable);
                }
            }
            // Freed by its drop, after the delivery.
            Job::Release(_) => {}
            #[cfg(all(test, loom))]
            Job::Probe(p) => p.run(),
        }
        live
    }
}

/// A released sink list on its way out (see [`Job::Release`]): its drop hands it to the
/// reclaimer, which frees it when no delivery is under way.
pub(crate) struct Released {
    garbage: Option<Box<dyn Send>>,
    reclaimer: SyncArc<Reclaimer>,
}

impl Drop for Released {
    fn drop(&mut self) {
        if let Some(g) = self.garbage.take() {
            self.reclaimer.retire_at_exit(g);
        }
    }
}

/// Delivers `event` to `sinks` without entering their reclaimer again when it is the one the
/// delivering thread entered (always, for lists of the client's own objects).
#[inline]
fn deliver<E: EventKind + 'static>(sinks: &Sinks<E>, event: &mut E, entered: &SyncArc<Reclaimer>) {
    if SyncArc::ptr_eq(sinks.reclaimer(), entered) {
        // SAFETY: the delivering thread entered this reclaimer for the whole of
        // `deliver_taken`, which runs this job.
        unsafe { sinks.deliver_entered(event) }
    } else {
        sinks.deliver(event)
    }
}

/// How many jobs ahead of the one it delivers the delivery asks for the sink list of a
/// session's event ([`Sinks::prefetch`]).
const PREFETCH_AHEAD: usize = 2;

/// The jobs the delivering thread took from the queue in one go, run from the front (see
/// [`EventQueue::taken`]): `jobs[next..]` wait, those before were moved out to run. Once the
/// last one is moved out the vector is emptied (its buffer kept for the next swap).
struct Taken<S> {
    jobs: Vec<Job<S>>,
    next: usize,
}

impl<S> Default for Taken<S> {
    fn default() -> Self {
        Taken {
            jobs: Vec::new(),
            next: 0,
        }
    }
}

impl<S> Taken<S> {
    fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Number of jobs waiting.
    fn len(&self) -> usize {
        self.jobs.len() - self.next
    }

    /// Takes the jobs of `queued`, leaving it this one's empty buffer. Only when this is
    /// empty (checked: once per batch, and what keeps a nested dispatch from reordering the
    /// jobs or losing one).
    fn take(&mut self, queued: &mut Vec<Job<S>>) {
        assert!(
            self.is_empty() && self.next == 0,
            "jobs taken over jobs not run"
        );
        std::mem::swap(&mut self.jobs, queued);
    }

    /// Moves out the next job.
    #[inline]
    fn pop_front(&mut self) -> Option<Job<S>> {
        if self.next == self.jobs.len() {
            return None;
        }
        // SAFETY: `next` < len: a job not moved out yet, moved out once (`next` passes it).
        let job = unsafe { self.jobs.as_ptr().add(self.next).read() };
        self.next += 1;
        if self.next == self.jobs.len() {
            // SAFETY: every job was moved out: nothing is left to drop.
            unsafe { self.jobs.set_len(0) };
            self.next = 0;
        }
        Some(job)
    }

    /// When the next job is a session's event, asks the CPU to load the sink list of the
    /// session event [`PREFETCH_AHEAD`] jobs after it, which is then in cache when its turn
    /// comes. Sessions can be many, their lists out of cache; a client's few managers keep
    /// theirs in cache.
    #[inline]
    fn prefetch_ahead(&self) {
        if let Some(Job::Session { .. }) = self.jobs.get(self.next) {
            if let Some(Job::Session { sinks, .. }) = self.jobs.get(self.next + PREFETCH_AHEAD) {
                sinks.prefetch();
            }
        }
    }

    /// Moves out the jobs still waiting, leaving this empty.
    fn take_rest(&mut self) -> Vec<Job<S>> {
        let rest = self.jobs.drain(self.next..).collect();
        // SAFETY: the jobs before `next` were moved out; the rest were drained.
        unsafe { self.jobs.set_len(0) };
        self.next = 0;
        rest
    }
}

impl<S> Drop for Taken<S> {
    fn drop(&mut self) {
        drop(self.take_rest());
    }
}

struct QueueState<S> {
    jobs: Vec<Job<S>>,
    /// How many of `jobs` are [`Job::Release`]s.
    releases: usize,
    /// The thread delivering now, if any.
    busy: Option<ThreadId>,
    closed: bool,
    waiters: u32,
    /// The client-owned delivery thread sleeps on `EventQueue::wake` (or is about to): the
    /// next push or the close clears this and wakes it (see [`EventQueue::run_thread`]).
    sleeping: bool,
}

impl<S> QueueState<S> {
    /// Number of events in `jobs`.
    fn events(&self) -> usize {
        self.jobs.len() - self.releases
    }
}

impl<S: FollowUp> trace::Stalled for EventQueue<S>
where
    EventQueue<S>: Send + Sync,
{
    fn check(&self, limit: Duration) {
        let since = self.backlog_since.load(Ordering::Relaxed);
        if since == 0 {
            return;
        }
        let waited = Duration::from_nanos(trace_clock().saturating_sub(since));
        if waited < limit || self.backlog_warned.swap(true, Ordering::Relaxed) {
            return;
        }
        let why = match self.mode {
            DispatchMode::Manual => "nobody called msgr_client_dispatch() (manual mode)",
            DispatchMode::Thread => "the client's thread is still in a callback",
        };
        trace!(
            Warning,
            "{}: {} events have waited {:.1} s to be delivered: {why}",
            self.owner,
            self.pending(),
            waited.as_secs_f64()
        );
    }
}

/// A client's event queue; `S` is the session type (see [`FollowUp`]).
pub(crate) struct EventQueue<S> {
    state: Mutex<QueueState<S>>,
    /// Jobs the delivering thread took from `state.jobs` in one go, oldest first. Only the
    /// thread recorded in `state.busy` touches it (nested dispatch runs on that same thread,
    /// never while a reference into it is held); it is empty whenever `busy` is `None`.
    taken: UnsafeCell<Taken<S>>,
    /// The number of events (not releases) in `taken`, written only by the delivering thread,
    /// for [`Self::pending`].
    taken_len: AtomicUsize,
    /// `state.closed`, readable without the lock before every event.
    closed_fast: AtomicBool,
    /// True while `state.jobs` is not empty (written under the lock), so that the delivery
    /// thread can wait for work by spinning on it without taking the lock.
    has_jobs: AtomicBool,
    /// Waiters of `dispatch` (manual mode; a nested dispatch with a timeout in thread mode).
    cv: Condvar,
    /// What the client-owned delivery thread sleeps on when idle: [`ASLEEP`] from when it
    /// set `state.sleeping` until a push or the close sets [`AWAKE`] (both under the lock)
    /// and wakes it after releasing the lock.
    wake: WakeWord,
    notifier: OnceLock<Notifier>,
    mode: DispatchMode,
    thread_id: OnceLock<ThreadId>,
    /// Shared with the sink lists of the client's objects: entered around each delivery.
    reclaimer: SyncArc<Reclaimer>,
    /// Whose queue this is (the client's sign-in name), for the trace.
    owner: String,
    /// While a trace is on: when the oldest undelivered event was queued (nanoseconds from
    /// [`trace_clock`]; 0: none), and whether the trace warned of it already.
    backlog_since: AtomicU64,
    backlog_warned: StdAtomicBool,
}

/// Nanoseconds since the first call, for [`EventQueue::backlog_since`] (never 0).
fn trace_clock() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    epoch.elapsed().as_nanos() as u64 + 1
}

// SAFETY: `taken` is only accessed by the thread that set `state.busy` to itself under the
// mutex, which orders the accesses of successive delivering threads; everything else is
// Sync. Jobs are Send.
unsafe impl<S: Send> Sync for EventQueue<S> {}

impl<S: FollowUp> EventQueue<S> {
    #[cfg(all(test, loom))]
    pub(crate) fn new(mode: DispatchMode) -> Self {
        Self::with_owner(mode, String::new())
    }

    /// A queue for the client `owner` (named in the trace).
    pub(crate) fn with_owner(mode: DispatchMode, owner: String) -> Self {
        EventQueue {
            state: Mutex::new(QueueState {
                jobs: Vec::new(),
                releases: 0,
                busy: None,
                closed: false,
                waiters: 0,
                sleeping: false,
            }),
            taken: UnsafeCell::new(Taken::default()),
            taken_len: AtomicUsize::new(0),
            closed_fast: AtomicBool::new(false),
            has_jobs: AtomicBool::new(false),
            cv: Condvar::new(),
            wake: WakeWord::new(AWAKE),
            notifier: OnceLock::new(),
            mode,
            thread_id: OnceLock::new(),
            reclaimer: SyncArc::new(Reclaimer::default()),
            owner,
            backlog_since: AtomicU64::new(0),
            backlog_warned: StdAtomicBool::new(false),
        }
    }

    /// A trace is on: tells what was queued, and notes when a backlog starts.
    #[cold]
    fn trace_queued(&self, jobs: &[Job<S>], from: usize, was_empty: bool) {
        if was_empty {
            let _ = self.backlog_since.compare_exchange(
                0,
                trace_clock(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        if trace::enabled(trace::TraceLevel::Debug) {
            for job in jobs.iter().skip(from).filter(|j| j.is_event()) {
                trace!(Debug, "{}: queued {}", self.owner, job.describe());
            }
        }
    }

    /// The reclaimer of the sink lists this queue delivers to (see [`Reclaimer`]).
    pub(crate) fn reclaimer(&self) -> &SyncArc<Reclaimer> {
        &self.reclaimer
    }

    pub(crate) fn mode(&self) -> DispatchMode {
        self.mode
    }

    /// Queues a job; dropped at once when the queue is closed.
    pub(crate) fn push(&self, job: Job<S>) {
        let mut st = self.state.lock();
        if st.closed {
            drop(st);
            drop(job);
            return;
        }
        let was_empty = st.events() == 0;
        st.jobs.push(job);
        if trace::enabled(trace::TraceLevel::Warning) {
            self.trace_queued(&st.jobs, st.jobs.len() - 1, was_empty);
        }
        if was_empty {
            self.has_jobs.store(true, Ordering::Release);
            if let Some(n) = self.notifier.get() {
                n.set();
            }
        }
        let notify = st.waiters > 0;
        let wake = self.rouse(&mut st);
        drop(st);
        self.woken(notify, wake);
    }

    /// Queues several jobs in order, atomically with respect to other pushes.
    pub(crate) fn push_all(&self, jobs: impl IntoIterator<Item = Job<S>>) {
        let mut st = self.state.lock();
        if st.closed {
            drop(st);
            return;
        }
        let was_empty = st.events() == 0;
        let from = st.jobs.len();
        st.jobs.extend(jobs);
        if trace::enabled(trace::TraceLevel::Warning) && st.jobs.len() > from {
            self.trace_queued(&st.jobs, from, was_empty);
        }
        if was_empty && st.events() > 0 {
            self.has_jobs.store(true, Ordering::Release);
            if let Some(n) = self.notifier.get() {
                n.set();
            }
        }
        let notify = st.waiters > 0;
        let wake = st.jobs.len() > from && self.rouse(&mut st);
        drop(st);
        self.woken(notify, wake);
    }

    /// After a push or the close, with the lock released (so that a woken thread does not
    /// find it held): wakes the `dispatch` callers waiting on the condition variable
    /// (`notify`: some were counted in `waiters` under the lock; they look at the queue again
    /// under it) and the sleeping delivery thread (`wake`, see [`rouse`](Self::rouse)).
    #[inline]
    fn woken(&self, notify: bool, wake: bool) {
        if notify {
            self.cv.notify_all();
        }
        if wake {
            self.wake.wake();
        }
    }

    /// Under the lock: when the delivery thread sleeps (or is about to), marks it awake and
    /// returns true; the caller then wakes it ([`WakeWord::wake`]) once it has released the
    /// lock, so that the woken thread does not find the lock held.
    #[inline]
    fn rouse(&self, st: &mut QueueState<S>) -> bool {
        if !st.sleeping {
            return false;
        }
        st.sleeping = false;
        self.wake.set(AWAKE);
        true
    }

    /// Number of queued events (including those taken for delivery and not yet run).
    pub(crate) fn pending(&self) -> usize {
        self.state.lock().events() + self.taken_len.load(Ordering::Acquire)
    }

    /// Delivers events: waits up to `timeout` for the first (None waits for ever), then
    /// delivers everything pending, including events raised while delivering. Returns the
    /// number delivered.
    pub(crate) fn dispatch(&self, timeout: Option<Duration>) -> Result<u32> {
        if self.mode == DispatchMode::Thread && self.thread_id.get() != Some(&current_thread()) {
            return Err(E_ILLEGAL_METHOD_CALL);
        }
        self.dispatch_inner(timeout)
    }

    fn dispatch_inner(&self, timeout: Option<Duration>) -> Result<u32> {
        let me = current_thread();
        // The deadline costs a clock read: only taken when it is needed.
        let mut deadline: Option<Instant> = None;
        let mut delivered = 0u32;
        let mut st = self.state.lock();
        loop {
            if st.closed {
                break;
            }
            let nested = st.busy == Some(me);
            if st.busy.is_none() || nested {
                // SAFETY: this thread is (nested) or becomes (below, before the lock is
                // released) the delivering thread; no reference into `taken` outlives this
                // statement.
                let have = self.taken.with_mut(|taken| unsafe {
                    let taken = &mut *taken;
                    if taken.is_empty() && !st.jobs.is_empty() {
                        if trace::enabled(trace::TraceLevel::Warning) {
                            self.backlog_since.store(0, Ordering::Relaxed);
                            self.backlog_warned.store(false, Ordering::Relaxed);
                        }
                        taken.take(&mut st.jobs);
                        self.has_jobs.store(false, Ordering::Relaxed);
                        self.taken_len
                            .store(taken.len() - st.releases, Ordering::Release);
                        st.releases = 0;
                    }
                    !taken.is_empty()
                });
                if have {
                    let prev = st.busy.replace(me);
                    // Entered under the lock: a sink list released after the jobs were taken
                    // (so with no job of its own left in `jobs`) waits for this delivery's
                    // exit. Sink lists replaced meanwhile stay allocated until `exit` (which
                    // frees them, outside every lock).
                    self.reclaimer.enter();
                    let n = MutexGuard::unlocked(&mut st, || {
                        let n = self.deliver_taken();
                        self.reclaimer.exit();
                        n
                    });
                    st.busy = prev;
                    if prev.is_none() && st.waiters > 0 {
                        self.cv.notify_all();
                    }
                    delivered = delivered.saturating_add(n);
                    continue;
                }
                if delivered > 0 {
                    break;
                }
            }
            // Nothing to do now (or another thread is delivering): wait.
            if timeout == Some(Duration::ZERO) {
                break;
            }
            st.waiters += 1;
            let timed_out = match timeout {
                Some(t) => {
                    let d = *deadline.get_or_insert_with(|| Instant::now() + t);
                    self.cv.wait_until(&mut st, d).timed_out()
                }
                None => {
                    self.cv.wait(&mut st);
                    false
                }
            };
            st.waiters -= 1;
            if timed_out {
                break;
            }
        }
        Ok(delivered)
    }

    /// Runs the jobs of `taken` in order, without the lock, until it is empty or the queue is
    /// closed (the rest is then dropped). Called only by the delivering thread; callbacks may
    /// dispatch again (nested), which continues from the same buffer. Returns how many reached
    /// a live object.
    fn deliver_taken(&self) -> u32 {
        let mut n = 0u32;
        loop {
            if self.closed_fast.load(Ordering::Acquire) {
                // SAFETY: delivering thread; the rest is dropped outside every lock.
                let rest = self.taken.with_mut(|taken| unsafe { (*taken).take_rest() });
                self.taken_len.store(0, Ordering::Release);
                drop(rest);
                return n;
            }
            // The job is run and dropped where `pop_front` put it (no further moves: copies of
            // a job showed up in the profile as store-forwarding stalls).
            {
                // SAFETY: delivering thread; the borrow ends with the statement.
                let mut job = self.taken.with_mut(|taken| unsafe {
                    (*taken).prefetch_ahead();
                    (*taken).pop_front()
                });
                let Some(job) = job.as_mut() else { return n };
                if job.is_event() {
                    let left = self.taken_len.load(Ordering::Relaxed) - 1;
                    self.taken_len.store(left, Ordering::Release);
                    // The last taken event: the descriptor stays readable only if more were
                    // queued meanwhile.
                    if left == 0 {
                        if let Some(notifier) = self.notifier.get() {
                            let st = self.state.lock();
                            if st.events() == 0 {
                                notifier.clear();
                            }
                        }
                    }
                }
                // Events of objects released meanwhile (purge_dead cannot reach the taken
                // ones) are dropped uncounted, as purged ones are.
                if trace::enabled(trace::TraceLevel::Debug) && job.is_event() {
                    trace!(Debug, "{}: delivering {}", self.owner, job.describe());
                }
                if job.run(&self.reclaimer) {
                    n = n.saturating_add(1);
                }
            }
            // Registrations ended during that event's delivery are dropped now (their destroy
            // notifications run), when this is the outermost delivery.
            self.reclaimer.between_events();
        }
    }

    /// Closes the queue: pending events are dropped (outside the lock; those a delivering
    /// thread already took are dropped by it before its next event), waiters wake up and later
    /// events are discarded.
    pub(crate) fn close(&self) {
        let (dropped, wake) = {
            let mut st = self.state.lock();
            st.closed = true;
            self.closed_fast.store(true, Ordering::Release);
            self.cv.notify_all();
            let wake = self.rouse(&mut st);
            if let Some(n) = self.notifier.get() {
                n.clear();
            }
            self.has_jobs.store(false, Ordering::Relaxed);
            st.releases = 0;
            (std::mem::take(&mut st.jobs), wake)
        };
        // The dispatch() waiters were notified under the lock, above.
        self.woken(false, wake);
        drop(dropped);
    }

    /// Drops the queued events of objects that are gone (a released manager or session), so
    /// they are neither counted nor keep the event descriptor readable. The dropped jobs are
    /// freed outside the lock.
    pub(crate) fn purge_dead(&self) {
        let removed = self.purge_locked(&mut self.state.lock());
        drop(removed);
    }

    /// [`purge_dead`](Self::purge_dead) under the lock; returns the jobs to drop after it.
    fn purge_locked(&self, st: &mut QueueState<S>) -> Vec<Job<S>> {
        if st.jobs.iter().all(|j| j.is_live() || j.has_follow_up()) {
            return Vec::new();
        }
        let (keep, removed): (Vec<Job<S>>, Vec<Job<S>>) = std::mem::take(&mut st.jobs)
            .into_iter()
            .partition(|j| j.is_live() || j.has_follow_up());
        st.jobs = keep;
        if st.events() == 0 {
            self.has_jobs.store(false, Ordering::Relaxed);
            if let Some(n) = self.notifier.get() {
                n.clear();
            }
        }
        removed
    }

    /// Frees `sinks`, a released object's sink list that jobs may point at (see
    /// [`SinksPtr`]), once those jobs are done: behind the jobs queued now, and after the
    /// deliveries under way (which may hold jobs taken before). Its owner is gone or has
    /// replaced it, so no new job will point at it. Purges the events of released objects
    /// first (see [`purge_dead`](Self::purge_dead)), in the same lock.
    pub(crate) fn release_sinks<E: EventKind + Send + 'static>(&self, sinks: Arc<Sinks<E>>)
    where
        Sinks<E>: Send + Sync,
    {
        let addr = Arc::as_ptr(&sinks) as usize;
        self.release_later(sinks, addr);
    }

    /// Frees `garbage`, which jobs may point at as `addr`, once the jobs queued now and the
    /// deliveries under way are done (see [`release_sinks`](Self::release_sinks)).
    pub(crate) fn release_later<G: Send + 'static>(&self, garbage: G, addr: usize) {
        let mut st = self.state.lock();
        let removed = self.purge_locked(&mut st);
        // Usually none: the owner closed the list, so its events were just purged. A Release
        // job only when one is left (a launch decision, or a manager dropped without being
        // closed), so objects released while nobody dispatches do not pile up.
        if st.jobs.iter().any(|j| j.points_at(addr)) {
            st.jobs.push(Job::Release(Released {
                garbage: Some(Box::new(garbage)),
                reclaimer: SyncArc::clone(&self.reclaimer),
            }));
            st.releases += 1;
            drop(st);
            drop(removed);
            return;
        }
        // No job queued for it. Only a delivery that has taken jobs and not yet exited can
        // hold one, and such a delivery is counted in the reclaimer: it entered under this
        // lock, in the same critical section as its taking of the jobs, so that entry
        // happens before this read. A delivery that enters after this lock is released takes
        // only jobs queued from now on, and none of them points at `garbage` (its owner is
        // gone). So when the reclaimer shows no delivery, nothing can reach `garbage` any
        // more, and the deliveries that did have exited before the (acquire) read: it is
        // freed at once. Otherwise it waits for the last delivery to exit.
        let idle = self.reclaimer.idle();
        drop(st);
        drop(removed);
        self.reclaimer.free_or_retire_at_exit(garbage, idle);
    }

    /// True once [`close`](Self::close) ran (for the loom models).
    #[cfg(all(test, loom))]
    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// The descriptor that is readable while events are pending (manual mode only).
    pub(crate) fn event_fd(&self) -> Result<i32> {
        if self.mode != DispatchMode::Manual {
            return Err(E_ILLEGAL_METHOD_CALL);
        }
        if let Some(n) = self.notifier.get() {
            return Ok(n.read_fd());
        }
        let n = Notifier::new().ok_or(E_FAIL)?;
        let st = self.state.lock();
        let fresh = self.notifier.set(n).is_ok();
        let n = self.notifier.get().expect("set above");
        if fresh && (st.events() > 0 || self.taken_len.load(Ordering::Acquire) > 0) {
            n.set();
        }
        Ok(n.read_fd())
    }

    /// Body of the client-owned delivery thread.
    ///
    /// After delivering, the thread watches the queue for a short while (`spin`, see
    /// [`thread_spin`]) before it sleeps ([`Self::sleep`]): an event that arrives in that
    /// window is delivered without waking a sleeping thread (a futex wake-up, which on a
    /// virtual machine can take tens of microseconds when the other CPU has gone idle), and
    /// the raising thread has no thread to wake. A client that has delivered nothing since
    /// it last slept does not spin, so idle clients cost nothing.
    pub(crate) fn run_thread(&self) {
        let _ = self.thread_id.set(current_thread());
        let spin = thread_spin();
        while !self.closed_fast.load(Ordering::Acquire) {
            // Deliver what is there without waiting.
            if matches!(self.dispatch_inner(Some(Duration::ZERO)), Ok(n) if n > 0) {
                continue;
            }
            if !spin.is_zero() && self.spin_for_jobs(spin) {
                continue;
            }
            self.sleep();
        }
    }

    /// The delivery thread's idle sleep: under the lock, unless a job came or the queue was
    /// closed meanwhile, sets `state.sleeping` and the wake word to [`ASLEEP`]; then sleeps on
    /// the word (not under the lock) until a push or the close (which see `sleeping` under
    /// the same lock, so none is missed) set it to [`AWAKE`]. Returns without the lock: the
    /// caller's next dispatch takes it once, to take the jobs. Not a wait on the condition
    /// variable, whose wake-up takes the lock again before it returns, and whose notifier
    /// holds it.
    fn sleep(&self) {
        {
            let mut st = self.state.lock();
            if st.closed || !st.jobs.is_empty() {
                return;
            }
            st.sleeping = true;
            self.wake.set(ASLEEP);
        }
        self.wake.wait_while(ASLEEP);
    }

    /// Watches `has_jobs` (and `closed`) for up to `window` without taking the lock; true
    /// when there is something to do. Spins with a pause hint first, then yields the CPU
    /// between looks, so that on a busy machine the runnable threads (often the one raising
    /// the next event) get it.
    #[cfg(not(loom))]
    fn spin_for_jobs(&self, window: Duration) -> bool {
        let ready =
            || self.has_jobs.load(Ordering::Acquire) || self.closed_fast.load(Ordering::Acquire);
        for _ in 0..256 {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        let start = Instant::now();
        loop {
            for _ in 0..32 {
                if ready() {
                    return true;
                }
                std::hint::spin_loop();
            }
            std::thread::yield_now();
            if ready() {
                return true;
            }
            if start.elapsed() >= window {
                return false;
            }
        }
    }

    /// Under loom (no time, and unbounded spinning cannot be model checked): two looks with
    /// a yield between them, which keeps both outcomes of the spin (work found, or give up
    /// and sleep) in the models.
    #[cfg(loom)]
    fn spin_for_jobs(&self, _window: Duration) -> bool {
        let ready =
            || self.has_jobs.load(Ordering::Acquire) || self.closed_fast.load(Ordering::Acquire);
        if ready() {
            return true;
        }
        loom::thread::yield_now();
        ready()
    }

    /// True on the client-owned delivery thread.
    pub(crate) fn on_own_thread(&self) -> bool {
        self.thread_id.get() == Some(&current_thread())
    }
}

/// How long a thread-mode client's delivery thread keeps looking for the next event before
/// it sleeps: 20 microseconds, or `MSGRPRIV_THREAD_SPIN_US` (0 disables the spin; at most
/// 10000), read once per process.
pub(crate) fn thread_spin() -> Duration {
    #[cfg(loom)]
    {
        Duration::from_micros(DEFAULT_THREAD_SPIN_US)
    }
    #[cfg(not(loom))]
    {
        // The microseconds, or u64::MAX before the first read. Not a `OnceLock`: one that a
        // parent thread was initialising at a fork would block the child for ever; two
        // threads reading the variable at once store the same value.
        static SPIN_US: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(u64::MAX);
        let mut us = SPIN_US.load(std::sync::atomic::Ordering::Relaxed);
        if us == u64::MAX {
            us = std::env::var("MSGRPRIV_THREAD_SPIN_US")
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map_or(DEFAULT_THREAD_SPIN_US, |v| v.min(10_000));
            SPIN_US.store(us, std::sync::atomic::Ordering::Relaxed);
        }
        Duration::from_micros(us)
    }
}

/// The values of [`EventQueue::wake`].
const AWAKE: u32 = 0;
const ASLEEP: u32 = 1;

/// The default of [`thread_spin`], in microseconds.
pub(crate) const DEFAULT_THREAD_SPIN_US: u64 = 20;

/// A level-triggered readiness descriptor: readable while the queue is not empty.
struct Notifier {
    read: i32,
    write: i32,
}

impl Notifier {
    /// Under loom: none (the descriptor is not modelled; see the module's documentation).
    #[cfg(loom)]
    fn new() -> Option<Self> {
        None
    }

    #[cfg(all(target_os = "linux", not(loom)))]
    fn new() -> Option<Self> {
        // SAFETY: plain system call.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        (fd >= 0).then_some(Notifier {
            read: fd,
            write: fd,
        })
    }

    #[cfg(all(not(target_os = "linux"), not(loom)))]
    fn new() -> Option<Self> {
        let mut fds = [0i32; 2];
        // SAFETY: fds has room for two descriptors.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return None;
        }
        for fd in fds {
            // SAFETY: valid descriptors just created.
            unsafe {
                libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        Some(Notifier {
            read: fds[0],
            write: fds[1],
        })
    }

    fn read_fd(&self) -> i32 {
        self.read
    }

    fn set(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes (eventfd) or 1 byte (pipe) from a live local.
        unsafe {
            libc::write(
                self.write,
                (&one as *const u64).cast(),
                if self.read == self.write { 8 } else { 1 },
            );
        }
    }

    fn clear(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reads into a live local buffer; the descriptor is non-blocking.
            let n = unsafe { libc::read(self.read, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 || self.read == self.write {
                break;
            }
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        // SAFETY: descriptors owned by this notifier.
        unsafe {
            libc::close(self.read);
            if self.write != self.read {
                libc::close(self.write);
            }
        }
    }
}
