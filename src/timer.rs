//! Deadlines on a real or a manual clock.
//!
//! A service owns one [`Timers`]; the sessions of its clients schedule their deadlines on it
//! (an unanswered invitation, an unacknowledged answer, a step whose completion never came).
//! On a real clock a thread, started at the first deadline, fires them when they are due; on
//! a manual clock time moves only through [`Timers::advance`], which fires the due deadlines
//! in the calling thread. A deadline's target is held weakly: a target that is gone is
//! skipped. Targets are called with no lock of the wheel held.

use crate::error::{Result, E_ILLEGAL_METHOD_CALL};
use crate::locks::{Condvar, Mutex, MutexGuard};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// What a deadline calls when it is due.
pub(crate) trait Expiry: Send + Sync {
    /// The deadline `id` is due (called once, with no lock of the wheel held).
    fn expired(self: Arc<Self>, id: TimerId);
}

/// One scheduled deadline: its time on the wheel's clock (ms) and a sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerId(u64, u64);

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

#[derive(Default)]
struct Wheel {
    due: BTreeMap<TimerId, Weak<dyn Expiry>>,
    seq: u64,
    shutdown: bool,
    /// The clock time (ms) the thread sleeps until: 0 while it is awake or not started. A
    /// new deadline due earlier must wake it; any other need not (a cancelled deadline only
    /// costs it a spurious wake-up).
    sleep_until: u64,
}

struct Shared {
    wheel: Mutex<Wheel>,
    cv: Condvar,
    clock: Clock,
}

thread_local!(static ON_TIMER_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });

/// A set of deadlines on one clock.
pub struct Timers {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Timers {
    fn drop(&mut self) {
        self.shared.wheel.lock().shutdown = true;
        self.shared.cv.notify_all();
        // Wait for the thread, unless this is it (a target dropped the last reference).
        if let Some(h) = self.thread.get_mut().take() {
            if !ON_TIMER_THREAD.with(|t| t.get()) {
                let _ = h.join();
            }
        }
    }
}

impl Timers {
    /// A wheel on a real clock, or on a manual one (`manual`) that only
    /// [`advance`](Self::advance) moves.
    pub fn new(manual: bool) -> Timers {
        Timers {
            shared: Arc::new(Shared {
                wheel: Mutex::new(Wheel::default()),
                cv: Condvar::new(),
                clock: Clock {
                    manual,
                    start: Instant::now(),
                    manual_ms: AtomicU64::new(0),
                },
            }),
            thread: Mutex::new(None),
        }
    }

    /// The clock's time in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.shared.clock.now_ms()
    }

    /// Number of deadlines not yet fired or cancelled.
    pub fn pending(&self) -> usize {
        self.shared.wheel.lock().due.len()
    }

    /// Schedules `target` to be called `delay` from now.
    pub(crate) fn schedule(&self, delay: Duration, target: Weak<dyn Expiry>) -> TimerId {
        let shared = &self.shared;
        let ms = delay.as_millis().min(u64::MAX as u128) as u64;
        let deadline = shared.clock.now_ms().saturating_add(ms);
        let (id, earlier_than_sleep) = {
            let mut w = shared.wheel.lock();
            w.seq += 1;
            let id = TimerId(deadline, w.seq);
            w.due.insert(id, target);
            (id, deadline < w.sleep_until)
        };
        if shared.clock.manual {
            return id;
        }
        // Wake the thread only when it would otherwise sleep past the new deadline: a
        // deadline does not cost a futex wake-up and a context switch.
        if earlier_than_sleep {
            shared.cv.notify_all();
        }
        let mut thread = self.thread.lock();
        if thread.is_none() {
            let s = Arc::clone(shared);
            *thread = std::thread::Builder::new()
                .name("msgrpriv-timers".into())
                .spawn(move || {
                    ON_TIMER_THREAD.with(|t| t.set(true));
                    run(s)
                })
                .ok();
        }
        id
    }

    /// Cancels a deadline (nothing happens when it fired or was cancelled already).
    pub(crate) fn cancel(&self, id: TimerId) {
        let removed = self.shared.wheel.lock().due.remove(&id);
        drop(removed);
    }

    /// Moves the manual clock forward by `ms` and fires the deadlines that are due, in the
    /// calling thread. E_ILLEGAL_METHOD_CALL on a real clock.
    pub fn advance(&self, ms: u64) -> Result<()> {
        let clock = &self.shared.clock;
        if !clock.manual {
            return Err(E_ILLEGAL_METHOD_CALL);
        }
        let _ = clock
            .manual_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(v.saturating_add(ms))
            });
        self.shared.fire_due();
        Ok(())
    }
}

impl Shared {
    /// Fires every deadline due now, earliest first, with no lock held while targets run.
    fn fire_due(&self) {
        let now = self.clock.now_ms();
        let due = {
            let mut w = self.wheel.lock();
            let later = w.due.split_off(&TimerId(now.saturating_add(1), 0));
            std::mem::replace(&mut w.due, later)
        };
        for (id, target) in due {
            if let Some(t) = target.upgrade() {
                t.expired(id);
            }
        }
    }
}

/// The timer thread of a real clock: sleeps until the earliest deadline, fires what is due.
fn run(shared: Arc<Shared>) {
    let mut w = shared.wheel.lock();
    let sleep = |w: &mut MutexGuard<'_, Wheel>, now: u64, ms: u64| {
        w.sleep_until = now.saturating_add(ms);
        shared.cv.wait_for(w, Duration::from_millis(ms));
        w.sleep_until = 0;
    };
    loop {
        if w.shutdown {
            return;
        }
        let now = shared.clock.now_ms();
        match w.due.keys().next().copied() {
            Some(TimerId(deadline, _)) if deadline <= now => {
                drop(w);
                shared.fire_due();
                w = shared.wheel.lock();
            }
            Some(TimerId(deadline, _)) => sleep(&mut w, now, deadline - now),
            None => sleep(&mut w, now, 60_000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Log(Mutex<Vec<TimerId>>);

    impl Expiry for Log {
        fn expired(self: Arc<Self>, id: TimerId) {
            self.0.lock().push(id);
        }
    }

    fn target(log: &Arc<Log>) -> Weak<dyn Expiry> {
        Arc::downgrade(log) as Weak<dyn Expiry>
    }

    #[test]
    fn manual_clock_fires_due_deadlines_in_order() {
        let t = Timers::new(true);
        let log = Arc::new(Log(Mutex::new(Vec::new())));
        let late = t.schedule(Duration::from_millis(20), target(&log));
        let early = t.schedule(Duration::from_millis(10), target(&log));
        let cancelled = t.schedule(Duration::from_millis(10), target(&log));
        t.cancel(cancelled);
        assert_eq!(t.pending(), 2);
        t.advance(9).unwrap();
        assert!(log.0.lock().is_empty());
        t.advance(11).unwrap();
        assert_eq!(*log.0.lock(), vec![early, late]);
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn a_dropped_target_is_skipped() {
        let t = Timers::new(true);
        let log = Arc::new(Log(Mutex::new(Vec::new())));
        t.schedule(Duration::ZERO, target(&log));
        drop(log);
        t.advance(0).unwrap();
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn real_clock_fires_on_its_thread() {
        let t = Timers::new(false);
        assert_eq!(t.advance(1), Err(E_ILLEGAL_METHOD_CALL));
        let log = Arc::new(Log(Mutex::new(Vec::new())));
        let id = t.schedule(Duration::from_millis(5), target(&log));
        let start = Instant::now();
        while log.0.lock().is_empty() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(*log.0.lock(), vec![id]);
        assert!(start.elapsed() >= Duration::from_millis(4));
    }
}
