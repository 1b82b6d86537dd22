//! Loom models of the event queue (`dispatch`) and of the sink lists (`events`): run with
//! `bash scripts/loom.sh` (`RUSTFLAGS="--cfg loom" cargo test --release --lib loom_tests`).
//!
//! Each model runs a small scenario under every interleaving loom explores (bounded by
//! `LOOM_MAX_PREEMPTIONS`, default [`PREEMPTIONS`]) and checks its invariants on a log of what
//! happened. The log is test bookkeeping behind a std mutex: loom runs one thread at a time, so
//! the log's order is the order of the execution being explored.
//!
//! "After `close` returned" is happens-before, not the log's order: loom explores weak memory,
//! and with release/acquire atomics a thread may still read a value older than one stored
//! "earlier" by another thread it has not synchronised with (what the C++ memory model allows;
//! no promise of this library says more). So the thread that closes then sets a loom flag
//! ([`Log::mark`], a release store), and every job or callback start and end reads it (an
//! acquire load) and logs what it saw: a start that comes after its own thread saw the flag
//! happens after the close returned, and is what the models forbid (`check_window`).
//!
//! docs/HARDENING.md lists the models, what they prove and the deliberate bugs each one was
//! shown to catch.

use crate::dispatch::DispatchMode;
use crate::error::{E_HANDLE, E_INVALIDARG};
use crate::session::Session;
use crate::sinks::{EventKind, Sinks};
use crate::sync::Arc;

/// The queue and its jobs as the crate uses them (jobs carry sessions; the models queue only
/// probes).
type EventQueue = crate::dispatch::EventQueue<Session>;
type Job = crate::dispatch::Job<Session>;
use loom::sync::atomic::AtomicUsize as LoomAtomicUsize;
use loom::thread;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc as StdArc, Mutex as StdMutex};
use std::time::Duration;

/// The default preemption bound: every interleaving with at most this many preemptions.
const PREEMPTIONS: usize = 4;

/// Runs `f` under loom and prints how many executions were explored.
fn model<F: Fn() + Sync + Send + 'static>(name: &str, f: F) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(PREEMPTIONS);
    }
    let bound = b.preemption_bound;
    let runs = StdArc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let started = std::time::Instant::now();
    b.check(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        f();
    });
    eprintln!(
        "loom model {name}: {} executions, preemption bound {bound:?}, {:.1?}",
        runs.load(Ordering::Relaxed),
        started.elapsed()
    );
}

type ThreadId = thread::ThreadId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    /// A job or a callback starts on a thread; whether that thread saw the mark (then).
    Start(u32, ThreadId, bool),
    /// It returns; whether its thread saw the mark.
    End(u32, ThreadId, bool),
    /// A job was dropped without running, or a registration's captured state was dropped.
    Dropped(u32),
    /// A point of the scenario (e.g. "close returned").
    Mark(&'static str),
}

struct Log {
    events: StdMutex<Vec<Ev>>,
    /// Set by [`Log::mark`] (release), read at every start and end (acquire).
    marked: loom::sync::atomic::AtomicBool,
}

impl Log {
    fn new() -> StdArc<Self> {
        StdArc::new(Log {
            events: StdMutex::new(Vec::new()),
            marked: loom::sync::atomic::AtomicBool::new(false),
        })
    }
    fn push(&self, e: Ev) {
        self.events.lock().unwrap().push(e);
    }
    fn events(&self) -> Vec<Ev> {
        self.events.lock().unwrap().clone()
    }
    /// Logs the point, and publishes it to the threads that will read the flag.
    fn mark(&self, what: &'static str) {
        self.push(Ev::Mark(what));
        self.marked
            .store(true, loom::sync::atomic::Ordering::Release);
    }
    fn start(&self, id: u32) {
        let saw = self.marked.load(loom::sync::atomic::Ordering::Acquire);
        self.push(Ev::Start(id, thread::current().id(), saw));
    }
    fn end(&self, id: u32) {
        let saw = self.marked.load(loom::sync::atomic::Ordering::Acquire);
        self.push(Ev::End(id, thread::current().id(), saw));
    }
}

/// A queued job that records its run (or its drop without running) in the log.
pub(crate) struct Probe {
    id: u32,
    log: StdArc<Log>,
    /// Run inside the job, as a callback would (a nested dispatch, a close).
    action: Option<Box<dyn FnOnce() + Send>>,
    ran: bool,
    /// The address of what the job points at without owning it (0: nothing).
    pub(crate) points_at: usize,
}

impl Probe {
    pub(crate) fn run(&mut self) {
        self.ran = true;
        self.log.start(self.id);
        if let Some(action) = self.action.take() {
            action();
        }
        self.log.end(self.id);
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if !self.ran {
            self.log.push(Ev::Dropped(self.id));
        }
    }
}

fn probe(id: u32, log: &StdArc<Log>) -> Job {
    Job::Probe(Probe {
        id,
        log: log.clone(),
        action: None,
        ran: false,
        points_at: 0,
    })
}

fn probe_with(id: u32, log: &StdArc<Log>, action: impl FnOnce() + Send + 'static) -> Job {
    Job::Probe(Probe {
        id,
        log: log.clone(),
        action: Some(Box::new(action)),
        ran: false,
        points_at: 0,
    })
}

/// `job` (a probe) marked as pointing at `addr`, as an event points at its sink list.
fn pointing_at(mut job: Job, addr: usize) -> Job {
    if let Job::Probe(p) = &mut job {
        p.points_at = addr;
    }
    job
}

fn starts(events: &[Ev]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            Ev::Start(id, ..) => Some(*id),
            _ => None,
        })
        .collect()
}

fn count(events: &[Ev], wanted: Ev) -> usize {
    events.iter().filter(|e| **e == wanted).count()
}

fn position(events: &[Ev], pred: impl Fn(&Ev) -> bool) -> Option<usize> {
    events.iter().position(pred)
}

/// The documented window of a close (or an unadvise), on one delivering thread: once a start
/// or an end on that thread saw the mark (so the close returned before it, in happens-before
/// order), no later start of one of `affected` on that thread. The first start that sees the
/// mark is allowed: its check may have come before the close (a delivery already under way).
fn check_window(events: &[Ev], affected: &[u32]) {
    let mut saw_on: Vec<ThreadId> = Vec::new();
    for e in events {
        match *e {
            Ev::Start(id, t, saw) => {
                if affected.contains(&id) && saw_on.contains(&t) {
                    panic!("{id} started after its thread saw the close return: {events:?}");
                }
                if saw {
                    saw_on.push(t);
                }
            }
            Ev::End(_, t, true) => saw_on.push(t),
            _ => {}
        }
    }
}

/// A registration's captured state: dropped exactly once, never during or before a call of
/// its callback.
fn check_lifetimes(events: &[Ev], id: u32) {
    assert_eq!(
        count(events, Ev::Dropped(id)),
        1,
        "{id} dropped once: {events:?}"
    );
    let d = position(events, |e| *e == Ev::Dropped(id)).unwrap();
    let mut inside = 0;
    for (i, e) in events.iter().enumerate() {
        match e {
            Ev::Start(x, ..) if *x == id => {
                assert!(i < d, "{id} called after its state was dropped: {events:?}");
                inside += 1;
            }
            Ev::End(x, ..) if *x == id => inside -= 1,
            Ev::Dropped(x) if *x == id => {
                assert_eq!(inside, 0, "{id} dropped during its call: {events:?}")
            }
            _ => {}
        }
    }
}

// ---- The event queue ----

/// (1) Two producers (`push` twice, `push_all` of two) and one dispatcher waiting with no
/// timeout: every job delivered exactly once, in push order per producer, none dropped, none
/// left, and the dispatcher never sleeps through a push (loom fails a deadlock).
#[test]
fn queue_two_producers_one_dispatcher() {
    model("queue_two_producers_one_dispatcher", || {
        let log = Log::new();
        let q = Arc::new(EventQueue::new(DispatchMode::Manual));
        let p1 = {
            let (q, log) = (q.clone(), log.clone());
            thread::spawn(move || {
                q.push(probe(10, &log));
                q.push(probe(11, &log));
            })
        };
        let p2 = {
            let (q, log) = (q.clone(), log.clone());
            thread::spawn(move || q.push_all([probe(20, &log), probe(21, &log)]))
        };
        let mut delivered = 0;
        while delivered < 4 {
            delivered += q.dispatch(None).unwrap();
        }
        p1.join().unwrap();
        p2.join().unwrap();
        assert_eq!(delivered, 4);
        assert_eq!(q.pending(), 0);
        let events = log.events();
        let s = starts(&events);
        let mut sorted = s.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [10, 11, 20, 21], "each delivered once: {events:?}");
        let at = |id| s.iter().position(|x| *x == id).unwrap();
        assert!(at(10) < at(11) && at(20) < at(21), "push order: {events:?}");
        assert!(
            !events.iter().any(|e| matches!(e, Ev::Dropped(_))),
            "{events:?}"
        );
    });
}

/// (2) `close` racing the client's delivery thread (`run_thread`) in the middle of two jobs,
/// then a push after the close: the delivery thread wakes up and ends; after `close` returned
/// no job starts except one already past the check (`check_window`); every job is delivered
/// or dropped, exactly once; the job pushed after the close is dropped at once.
#[test]
fn queue_close_racing_dispatch() {
    model("queue_close_racing_dispatch", || {
        let log = Log::new();
        let q = Arc::new(EventQueue::new(DispatchMode::Thread));
        q.push(probe(1, &log));
        q.push(probe(2, &log));
        let t = {
            let q = q.clone();
            thread::spawn(move || q.run_thread())
        };
        q.close();
        log.mark("closed");
        q.push(probe(9, &log));
        log.push(Ev::Mark("pushed after close"));
        t.join().unwrap();
        assert!(q.is_closed());
        assert_eq!(q.pending(), 0);
        let events = log.events();
        for id in [1, 2] {
            let ran = starts(&events).iter().filter(|x| **x == id).count();
            let dropped = count(&events, Ev::Dropped(id));
            assert_eq!(
                ran + dropped,
                1,
                "{id} delivered or dropped once: {events:?}"
            );
        }
        assert_eq!(count(&events, Ev::Dropped(9)), 1, "{events:?}");
        let d9 = position(&events, |e| *e == Ev::Dropped(9)).unwrap();
        let marked = position(&events, |e| *e == Ev::Mark("pushed after close")).unwrap();
        assert!(d9 < marked, "dropped by push itself: {events:?}");
        check_window(&events, &[1, 2]);
        let s = starts(&events);
        assert!(s.is_empty() || s == [1] || s == [1, 2], "order: {events:?}");
    });
}

/// (2c) The client's delivery thread (`run_thread`) going to sleep on its wake word while a
/// `push` and a `push_all` (one from the main thread, one from another; both ways round)
/// each queue one job: whatever point of its spin or of its way to sleep each push lands at,
/// the thread is woken (or does not sleep) and delivers both (loom fails a thread left asleep
/// as a deadlock). The close comes from the second job delivered, so only the pushes can wake
/// the thread for the jobs.
#[test]
fn queue_thread_wakes_for_push() {
    for push_all_first in [false, true] {
        model("queue_thread_wakes_for_push", move || {
            let log = Log::new();
            let q = Arc::new(EventQueue::new(DispatchMode::Thread));
            let ran = Arc::new(LoomAtomicUsize::new(0));
            let job = |id| {
                let (q, ran) = (q.clone(), ran.clone());
                probe_with(id, &log, move || {
                    if ran.fetch_add(1, loom::sync::atomic::Ordering::AcqRel) == 1 {
                        q.close();
                    }
                })
            };
            let t = {
                let q = q.clone();
                thread::spawn(move || q.run_thread())
            };
            let push = |q: &EventQueue, j: Job, all: bool| {
                if all {
                    q.push_all([j]);
                } else {
                    q.push(j);
                }
            };
            let p = {
                let (q, j) = (q.clone(), job(1));
                thread::spawn(move || push(&q, j, push_all_first))
            };
            push(&q, job(2), !push_all_first);
            p.join().unwrap();
            t.join().unwrap();
            let events = log.events();
            let mut s = starts(&events);
            s.sort_unstable();
            assert_eq!(s, [1, 2], "each delivered once: {events:?}");
            assert!(
                !events.iter().any(|e| matches!(e, Ev::Dropped(_))),
                "{events:?}"
            );
            assert_eq!(q.pending(), 0);
        });
    }
}

/// (2b) `close` waking waiters: two threads dispatching in a loop with no timeout (the
/// loop of `run_thread`, in manual mode) and one job; whichever delivers it, the other waits
/// for the job or for its turn; `close` wakes both (loom fails a thread left waiting) and the
/// job is delivered or dropped exactly once, on one thread.
#[test]
fn queue_close_wakes_waiters() {
    model("queue_close_wakes_waiters", || {
        let log = Log::new();
        let q = Arc::new(EventQueue::new(DispatchMode::Manual));
        q.push(probe(1, &log));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                thread::spawn(move || {
                    while !q.is_closed() {
                        q.dispatch(None).unwrap();
                    }
                })
            })
            .collect();
        q.close();
        log.mark("closed");
        for t in threads {
            t.join().unwrap();
        }
        let events = log.events();
        let ran = starts(&events).len();
        assert_eq!(ran + count(&events, Ev::Dropped(1)), 1, "{events:?}");
        check_window(&events, &[1]);
        assert_eq!(q.pending(), 0);
    });
}

/// (5) Nested dispatch and a second dispatching thread: jobs 1 and 2 queued, two threads call
/// `dispatch(None)`, job 1 dispatches again from inside (nested, zero timeout), the main
/// thread pushes job 3, which closes the queue. Never two threads inside jobs at once (a
/// nested job runs on the thread of the job it is nested in); 1, 2, 3 each delivered once in
/// order, 2 from the nested dispatch; both threads return.
#[test]
fn queue_nested_dispatch_and_second_thread() {
    model("queue_nested_dispatch_and_second_thread", || {
        let log = Log::new();
        let q = Arc::new(EventQueue::new(DispatchMode::Manual));
        let nested = q.clone();
        q.push(probe_with(1, &log, move || {
            nested.dispatch(Some(Duration::ZERO)).unwrap();
        }));
        q.push(probe(2, &log));
        let dispatchers: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                thread::spawn(move || q.dispatch(None).unwrap())
            })
            .collect();
        let closer = q.clone();
        q.push(probe_with(3, &log, move || closer.close()));
        let total: u32 = dispatchers.into_iter().map(|t| t.join().unwrap()).sum();
        // Job 1 counts for its thread; 2 (and maybe 3) for the nested call inside it, whose
        // count job 1 discards.
        assert!((1..=2).contains(&total), "{total}");
        let events = log.events();
        assert_eq!(starts(&events), [1, 2, 3], "{events:?}");
        assert!(
            !events.iter().any(|e| matches!(e, Ev::Dropped(_))),
            "{events:?}"
        );
        // Exclusivity: while a job runs, only its own thread starts another (nested).
        let mut running: Vec<ThreadId> = Vec::new();
        for e in &events {
            match e {
                Ev::Start(_, t, _) => {
                    if let Some(owner) = running.last() {
                        assert_eq!(owner, t, "two threads delivering at once: {events:?}");
                    }
                    running.push(*t);
                }
                Ev::End(..) => {
                    running.pop();
                }
                _ => {}
            }
        }
        let s2 = position(&events, |e| matches!(e, Ev::Start(2, ..))).unwrap();
        let e1 = position(&events, |e| matches!(e, Ev::End(1, ..))).unwrap();
        assert!(s2 < e1, "2 delivered by the nested dispatch: {events:?}");
    });
}

// ---- The sink lists ----

/// An event of kind `.0`.
struct TestEvent(u8);

impl EventKind for TestEvent {
    fn kind_id(&self) -> u8 {
        self.0
    }
}

/// The captured state of a registration: logs its drop.
struct Tracker {
    id: u32,
    log: StdArc<Log>,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.log.push(Ev::Dropped(self.id));
    }
}

/// A callback that logs its start and end, with a scheduling point in between (so that a
/// close or an unadvise can complete while it runs).
fn callback(
    id: u32,
    log: &StdArc<Log>,
    step: &Arc<LoomAtomicUsize>,
) -> crate::sinks::Callback<TestEvent> {
    let tracker = Tracker {
        id,
        log: log.clone(),
    };
    let step = step.clone();
    crate::sinks::Callback::new(move |_event: &mut TestEvent| {
        tracker.log.start(tracker.id);
        step.fetch_add(1, loom::sync::atomic::Ordering::Relaxed);
        tracker.log.end(tracker.id);
    })
}

/// The same callback made the way the C layer makes its own ([`Callback::with_owner`]): the
/// lists hold a copy of a plain-data call, which reaches the log through a pointer to what
/// the registration owns; so a call after that owner's drop would also be a use after free.
///
/// [`Callback::with_owner`]: crate::sinks::Callback::with_owner
fn callback_with_owner(
    id: u32,
    log: &StdArc<Log>,
    step: &Arc<LoomAtomicUsize>,
) -> crate::sinks::Callback<TestEvent> {
    struct Owned(Tracker, Arc<LoomAtomicUsize>);
    #[derive(Clone, Copy)]
    struct Ptr(*const Owned);
    // SAFETY: the pointee is Send and Sync and outlives every call (the registration owns it).
    unsafe impl Send for Ptr {}
    unsafe impl Sync for Ptr {}
    let owned = Box::new(Owned(
        Tracker {
            id,
            log: log.clone(),
        },
        step.clone(),
    ));
    let p = Ptr(&*owned);
    crate::sinks::Callback::with_owner(
        move |_event: &mut TestEvent| {
            let p = p;
            // SAFETY: the registration owns `owned` until it ends, after its last call.
            let Owned(tracker, step) = unsafe { &*p.0 };
            tracker.log.start(tracker.id);
            step.fetch_add(1, loom::sync::atomic::Ordering::Relaxed);
            tracker.log.end(tracker.id);
        },
        owned,
    )
}

/// (3) `Sinks::close` (the object's destruction) racing a delivery to two registrations (the
/// second made as the C layer makes its callbacks, [`callback_with_owner`]): no callback starts after `close` returned except one already past its check; each
/// registration's state dropped exactly once, never during or before a call; both gone once
/// the delivery ended; a registration attempted after the close fails and drops its state.
#[test]
fn sinks_close_racing_deliver() {
    model("sinks_close_racing_deliver", || {
        let log = Log::new();
        let step = Arc::new(LoomAtomicUsize::new(0));
        let sinks = Arc::new(Sinks::<TestEvent>::default());
        sinks.advise(0, callback(1, &log, &step)).unwrap();
        sinks
            .advise(0, callback_with_owner(2, &log, &step))
            .unwrap();
        let t = {
            let sinks = sinks.clone();
            thread::spawn(move || sinks.deliver(&mut TestEvent(0)))
        };
        sinks.close();
        log.mark("closed");
        assert_eq!(sinks.advise(0, callback(3, &log, &step)), Err(E_HANDLE));
        assert!(
            log.events().contains(&Ev::Dropped(3)),
            "refused, dropped at once"
        );
        t.join().unwrap();
        let events = log.events();
        check_window(&events, &[1, 2]);
        for id in [1, 2, 3] {
            check_lifetimes(&events, id);
        }
        assert!(sinks.is_empty());
    });
}

/// (4) `unadvise` from another thread racing two deliveries to two registrations (the one
/// ended is second in the list, made as the C layer makes its callbacks): the other registration gets both events; the one ended is
/// not called after `unadvise` returned except when already past its check, its state is
/// dropped exactly once, never during or before a call; a second `unadvise` fails.
#[test]
fn sinks_unadvise_racing_deliver() {
    model("sinks_unadvise_racing_deliver", || {
        let log = Log::new();
        let step = Arc::new(LoomAtomicUsize::new(0));
        let sinks = Arc::new(Sinks::<TestEvent>::default());
        sinks.advise(0, callback(1, &log, &step)).unwrap();
        let cookie = sinks
            .advise(0, callback_with_owner(2, &log, &step))
            .unwrap();
        let t = {
            let sinks = sinks.clone();
            thread::spawn(move || {
                sinks.deliver(&mut TestEvent(0));
                sinks.deliver(&mut TestEvent(0));
            })
        };
        sinks.unadvise(cookie).unwrap();
        log.mark("unadvised");
        assert_eq!(sinks.unadvise(cookie), Err(E_INVALIDARG));
        t.join().unwrap();
        let events = log.events();
        check_window(&events, &[2]);
        assert_eq!(
            starts(&events).iter().filter(|id| **id == 1).count(),
            2,
            "{events:?}"
        );
        check_lifetimes(&events, 2);
        assert_eq!(count(&events, Ev::Dropped(1)), 0, "{events:?}");
        assert_eq!(sinks.len(), 1);
        sinks.close();
        check_lifetimes(&log.events(), 1);
    });
}

/// What a job points at without owning it (as a job's [`crate::dispatch::SinksPtr`]): its
/// drop writes the cell, a job reads it, so loom reports a free that is not ordered after
/// every read (a use after free); `freed` turns one that is ordered before a read into a
/// plain assertion failure before the read.
struct Pointee {
    cell: loom::cell::UnsafeCell<u32>,
    freed: StdArc<loom::sync::atomic::AtomicBool>,
}

impl Drop for Pointee {
    fn drop(&mut self) {
        self.cell.with_mut(|p| unsafe { *p = 0 });
        self.freed
            .store(true, loom::sync::atomic::Ordering::Release);
    }
}

struct PointeePtr(*const Pointee);
// SAFETY: test bookkeeping; the models check that the pointee outlives its readers.
unsafe impl Send for PointeePtr {}

impl PointeePtr {
    fn addr(&self) -> usize {
        self.0 as usize
    }

    fn read(&self, freed: &loom::sync::atomic::AtomicBool) {
        assert!(
            !freed.load(loom::sync::atomic::Ordering::Acquire),
            "freed before a job that points at it ran"
        );
        // SAFETY: what the model checks.
        let v = unsafe { (*self.0).cell.with(|p| *p) };
        assert_eq!(v, 7);
    }
}

/// A pointee, a pointer to it for jobs, and whether it was freed; the pointee is handed back
/// as garbage for `release_later`.
fn pointee() -> (
    PointeePtr,
    Box<dyn Send>,
    StdArc<loom::sync::atomic::AtomicBool>,
) {
    let freed = StdArc::new(loom::sync::atomic::AtomicBool::new(false));
    let boxed = Box::new(Pointee {
        cell: loom::cell::UnsafeCell::new(7),
        freed: freed.clone(),
    });
    (PointeePtr(&*boxed), boxed, freed)
}

/// Asserts that each pointee (its `freed` flag, from [`pointee`]) was freed in the end.
fn assert_freed(flags: &[&StdArc<loom::sync::atomic::AtomicBool>]) {
    for f in flags {
        assert!(
            f.load(loom::sync::atomic::Ordering::Acquire),
            "freed in the end"
        );
    }
}

/// A dispatch racing `owner`, then, once it is done, a dispatch of what is left: nothing
/// may stay pending.
fn dispatch_around(q: &EventQueue, owner: thread::JoinHandle<()>) {
    let _ = q.dispatch(Some(Duration::ZERO));
    owner.join().unwrap();
    let _ = q.dispatch(Some(Duration::ZERO));
    assert_eq!(q.pending(), 0);
}

/// (5) `release_later` (a released object's sink list): the owner queues a job that points at
/// the pointee, then releases it, while another thread dispatches. Whether the release finds
/// the job still queued (a Release job goes behind it) or already taken (the pointee waits for
/// the delivery's exit), it is freed only after the job ran, and always freed in the end. Two
/// jobs and two pointees: the second pointee may be released between the two events of one
/// batch (it must not be freed there); the second job dispatches again from inside (nested).
#[test]
fn queue_release_waits_for_queued_and_taken_jobs() {
    model("queue_release_waits_for_queued_and_taken_jobs", || {
        let log = Log::new();
        let q = Arc::new(EventQueue::new(DispatchMode::Manual));
        let (p1, garbage, freed) = pointee();
        let (p2, garbage2, freed2) = pointee();
        let (a1, a2) = (p1.addr(), p2.addr());
        let f1 = freed.clone();
        let job = pointing_at(probe_with(1, &log, move || p1.read(&f1)), a1);
        // Job 2 dispatches again from inside (nested) after its read.
        let f2 = freed2.clone();
        let qn = q.clone();
        let job2 = pointing_at(
            probe_with(2, &log, move || {
                p2.read(&f2);
                let _ = qn.dispatch(Some(Duration::ZERO));
            }),
            a2,
        );
        let owner = {
            let q = q.clone();
            thread::spawn(move || {
                q.push(job);
                q.push(job2);
                q.release_later(garbage, a1);
                q.release_later(garbage2, a2);
            })
        };
        dispatch_around(&q, owner);
        let events = log.events();
        assert_eq!(starts(&events), [1, 2], "{events:?}");
        assert_freed(&[&freed, &freed2]);
    });
}

/// (7) A manager's sink list handed to the queue as the manager goes
/// (`session_manager::hand_over`), racing the client's sign-out walk
/// (`session_manager::walk`), which announces through the managers' lock cells without
/// holding the managers (`ManagerLink`) and holds every cell until its one push, and a
/// dispatch: the walk's job for the going manager is either refused (its cell stopped
/// announcing) or queued ahead of the release, so the list (the pointee) is freed only after
/// the job ran, and freed in the end; the other manager's job is always delivered.
#[test]
fn manager_release_racing_walk() {
    model("manager_release_racing_walk", || {
        let log = Log::new();
        let q = Arc::new(EventQueue::new(DispatchMode::Manual));
        let lock = crate::lock::LockCell::new();
        let other = crate::lock::LockCell::new();
        lock.signed_in(false, 1, |_| {});
        other.signed_in(false, 1, |_| {});
        let (p1, garbage, freed) = pointee();
        let a1 = p1.addr();
        let f1 = freed.clone();
        let walk = {
            let (q, lock, other, log) = (q.clone(), lock.clone(), other.clone(), log.clone());
            thread::spawn(move || {
                let p1 = StdMutex::new(Some(p1));
                let cells = [(lock, 1), (other, 2)];
                crate::session_manager::walk(&cells, &q, 1, |(cell, id), jobs| {
                    let held = cell.signed_out_held(2)?;
                    jobs.extend([match (*id, p1.lock().unwrap().take()) {
                        (1, Some(p1)) => {
                            let f1 = f1.clone();
                            pointing_at(probe_with(1, &log, move || p1.read(&f1)), a1)
                        }
                        _ => probe(2, &log),
                    }]);
                    Some(held)
                });
            })
        };
        let gone = {
            let (q, lock) = (q.clone(), lock.clone());
            thread::spawn(move || {
                crate::session_manager::hand_over(&lock, || q.release_later(garbage, a1));
            })
        };
        q.dispatch(Some(Duration::ZERO)).unwrap();
        walk.join().unwrap();
        gone.join().unwrap();
        q.dispatch(Some(Duration::ZERO)).unwrap();
        let events = log.events();
        assert!(starts(&events).len() <= 2, "{events:?}");
        assert_eq!(
            starts(&events).iter().filter(|&&id| id == 2).count(),
            1,
            "{events:?}"
        );
        assert_eq!(count(&events, Ev::Dropped(1)), 0, "{events:?}");
        assert_freed(&[&freed]);
    });
}

/// (6) `release_later` racing `close` and the delivery thread: the job runs or is dropped,
/// the pointee is freed after the job in every case (a close drops the queued Release job,
/// which still waits for the delivery under way).
#[test]
fn queue_release_racing_close() {
    model("queue_release_racing_close", || {
        let log = Log::new();
        let q = Arc::new(EventQueue::new(DispatchMode::Thread));
        let (p1, garbage, freed) = pointee();
        let a1 = p1.addr();
        let f1 = freed.clone();
        q.push(pointing_at(probe_with(1, &log, move || p1.read(&f1)), a1));
        let t = {
            let q = q.clone();
            thread::spawn(move || q.run_thread())
        };
        let closer = {
            let q = q.clone();
            thread::spawn(move || q.close())
        };
        q.release_later(garbage, a1);
        closer.join().unwrap();
        t.join().unwrap();
        let events = log.events();
        let ran = starts(&events).len();
        assert_eq!(ran + count(&events, Ev::Dropped(1)), 1, "{events:?}");
        assert_freed(&[&freed]);
    });
}

/// (8) Releases inside a delivery and beside it, for the two ends of `release_later` when no
/// job is queued for the object: waiting for the deliveries under way, or freed at once when
/// there is none. Jobs 1 and 2 (of objects 1 and 2) are queued before the dispatch, so one
/// batch takes both; job 1's callback releases object 2, whose job is taken and has not run:
/// a delivery is under way, so object 2 is freed neither at once nor between the two events,
/// but at the delivery's exit. Meanwhile another thread releases object 1: it finds job 1
/// queued (a Release job goes behind it), taken (it waits for the exit), or run with the
/// delivery gone (freed at once, after job 1's read).
#[test]
fn queue_release_inside_and_beside_delivery() {
    model("queue_release_inside_and_beside_delivery", || {
        let log = Log::new();
        let q = Arc::new(EventQueue::new(DispatchMode::Manual));
        let (p1, garbage1, freed1) = pointee();
        let (p2, garbage2, freed2) = pointee();
        let (a1, a2) = (p1.addr(), p2.addr());
        let (f1, f2) = (freed1.clone(), freed2.clone());
        let qn = q.clone();
        q.push(pointing_at(
            probe_with(1, &log, move || {
                p1.read(&f1);
                qn.release_later(garbage2, a2);
            }),
            a1,
        ));
        q.push(pointing_at(probe_with(2, &log, move || p2.read(&f2)), a2));
        let owner = {
            let q = q.clone();
            thread::spawn(move || q.release_later(garbage1, a1))
        };
        dispatch_around(&q, owner);
        let events = log.events();
        assert_eq!(starts(&events), [1, 2], "{events:?}");
        assert_freed(&[&freed1, &freed2]);
    });
}

/// (9) A Release job dropped by `close` while a delivery that reads its object is under way:
/// job 1's callback raises the object's next event (job 2, queued), releases the object (a
/// Release job goes behind job 2) and reads the object again (a delivery reads the sink list
/// after its callbacks return), while another thread closes the queue, which may drop job 2
/// and the Release job between the two. The object is freed after job 1's read in every
/// order (the dropped Release job waits for the delivery's exit), and freed in the end.
#[test]
fn queue_release_job_dropped_by_close() {
    model("queue_release_job_dropped_by_close", || {
        let log = Log::new();
        let q = Arc::new(EventQueue::new(DispatchMode::Manual));
        let (p1, garbage, freed) = pointee();
        let a1 = p1.addr();
        let p1b = PointeePtr(p1.0);
        let (f1, f1b) = (freed.clone(), freed.clone());
        let (qn, logn) = (q.clone(), log.clone());
        q.push(pointing_at(
            probe_with(1, &log, move || {
                qn.push(pointing_at(
                    probe_with(2, &logn, move || p1b.read(&f1b)),
                    a1,
                ));
                qn.release_later(garbage, a1);
                p1.read(&f1);
            }),
            a1,
        ));
        let closer = {
            let q = q.clone();
            thread::spawn(move || q.close())
        };
        let _ = q.dispatch(Some(Duration::ZERO));
        closer.join().unwrap();
        let events = log.events();
        let ran = |id| starts(&events).iter().filter(|s| **s == id).count();
        assert_eq!(ran(1) + count(&events, Ev::Dropped(1)), 1, "{events:?}");
        assert_eq!(
            ran(2) + count(&events, Ev::Dropped(2)),
            ran(1),
            "{events:?}"
        );
        assert_freed(&[&freed]);
    });
}
