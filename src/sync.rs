//! The synchronisation primitives of the event queue (`dispatch`) and the sink lists
//! (`events`), from one place so that `--cfg loom` can swap them for loom's model-checked ones
//! (scripts/loom.sh, the models in `loom_tests`).
//!
//! Normal build: plain re-exports of `crate::locks` and `std`, and an
//! `UnsafeCell` whose `with_mut` is an `#[inline(always)]` call of the closure on the raw
//! pointer: the code generated is the same as with the primitives used directly.
//!
//! Under `cfg(loom)`, with loom's API adapted to the parking_lot-like one used here:
//! - `Mutex::lock` returns a guard, no poisoning; `MutexGuard::unlocked` drops the guard, runs
//!   the closure and locks again (what parking_lot does, without its fairness details);
//! - `Condvar::wait_until` does not model time: it waits for a notification and never reports
//!   a timeout (loom's own `wait_timeout` does the same). Zero timeouts never reach it;
//! - `Arc`, atomics and `UnsafeCell` are loom's (loom checks the accesses to `UnsafeCell`
//!   against the happens-before order it builds from the mutex and the atomics);
//! - `thread_local!` is loom's (loom threads share one OS thread);
//! - [`WakeWord`] (a word one thread sleeps on) is a loom atomic with a loom mutex and
//!   condition variable in place of the futex calls, the form it also has off Linux.

#[cfg(not(loom))]
mod imp {
    pub(crate) use crate::locks::{Condvar, Mutex, MutexGuard};
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};
    pub(crate) use std::sync::Arc;
    pub(crate) use std::thread_local;

    /// `std::cell::UnsafeCell` with loom's access API.
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        #[inline(always)]
        pub(crate) const fn new(value: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        /// Runs `f` on the cell's pointer; the caller's `unsafe` block dereferences it.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering};
    pub(crate) use loom::sync::Arc;
    pub(crate) use loom::thread_local;
    use std::ops::{Deref, DerefMut};
    use std::time::Instant;

    /// A loom mutex with parking_lot's API (no poisoning).
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    /// The guard of [`Mutex`]; `None` only inside `unlocked` and `Condvar::wait`.
    pub(crate) struct MutexGuard<'a, T> {
        mutex: &'a Mutex<T>,
        guard: Option<loom::sync::MutexGuard<'a, T>>,
    }

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard {
                mutex: self,
                guard: Some(self.0.lock().unwrap_or_else(|e| e.into_inner())),
            }
        }
    }

    impl<T> MutexGuard<'_, T> {
        /// parking_lot's `MutexGuard::unlocked`: drop the lock, run `f`, take the lock again.
        pub(crate) fn unlocked<U>(this: &mut Self, f: impl FnOnce() -> U) -> U {
            this.guard = None;
            let r = f();
            this.guard = Some(this.mutex.0.lock().unwrap_or_else(|e| e.into_inner()));
            r
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.guard.as_ref().expect("locked")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.guard.as_mut().expect("locked")
        }
    }

    /// A loom condition variable with parking_lot's API.
    pub(crate) struct Condvar(loom::sync::Condvar);

    /// parking_lot's `WaitTimeoutResult`; never a timeout under loom.
    pub(crate) struct WaitTimeoutResult(bool);

    impl WaitTimeoutResult {
        pub(crate) fn timed_out(&self) -> bool {
            self.0
        }
    }

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let g = guard.guard.take().expect("locked");
            guard.guard = Some(self.0.wait(g).unwrap_or_else(|e| e.into_inner()));
        }

        /// Time is not modelled: waits for a notification like [`Self::wait`].
        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _deadline: Instant,
        ) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult(false)
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}

pub(crate) use imp::*;

/// A word one thread sleeps on until another thread changes it and wakes it: a futex on
/// Linux. The sleeper stores the value it sleeps on and calls [`WakeWord::wait_while`]; the
/// waker stores another value, then calls [`WakeWord::wake`] (the wake may come after the
/// sleeper saw the new value and left, or after it stored the sleeping value again: the
/// sleeper then wakes spuriously, sees the value it sleeps on and sleeps again).
pub(crate) struct WakeWord {
    word: AtomicU32,
    /// Off Linux and under loom: the futex emulated with a lock and a condition variable
    /// (the sleeper checks the word under the lock, the waker takes the lock before it
    /// notifies, so a wake cannot fall between the check and the wait).
    #[cfg(any(loom, not(target_os = "linux")))]
    lock: Mutex<()>,
    #[cfg(any(loom, not(target_os = "linux")))]
    cv: Condvar,
}

impl WakeWord {
    pub(crate) fn new(value: u32) -> Self {
        WakeWord {
            word: AtomicU32::new(value),
            #[cfg(any(loom, not(target_os = "linux")))]
            lock: Mutex::new(()),
            #[cfg(any(loom, not(target_os = "linux")))]
            cv: Condvar::new(),
        }
    }

    /// Stores `value` (a release: what was written before is visible to the thread that
    /// sees it).
    #[inline]
    pub(crate) fn set(&self, value: u32) {
        self.word.store(value, Ordering::Release);
    }

    /// Sleeps while the word holds `value`; returns once it holds another (an acquire).
    pub(crate) fn wait_while(&self, value: u32) {
        while self.word.load(Ordering::Acquire) == value {
            self.sleep(value);
        }
    }

    /// Wakes the thread sleeping on the word, if any.
    #[inline]
    pub(crate) fn wake(&self) {
        #[cfg(all(not(loom), target_os = "linux"))]
        self.futex(libc::FUTEX_WAKE, 1);
        #[cfg(any(loom, not(target_os = "linux")))]
        {
            drop(self.lock.lock());
            self.cv.notify_all();
        }
    }

    /// One sleep; may return spuriously. On Linux the kernel compares the word with `value`
    /// atomically with the sleep (EAGAIN when it differs, EINTR on a signal: both return,
    /// and `wait_while` looks again).
    fn sleep(&self, value: u32) {
        #[cfg(all(not(loom), target_os = "linux"))]
        self.futex(libc::FUTEX_WAIT, value);
        #[cfg(any(loom, not(target_os = "linux")))]
        {
            let mut g = self.lock.lock();
            if self.word.load(Ordering::Acquire) == value {
                self.cv.wait(&mut g);
            }
        }
    }

    /// The futex operation `op` (process-private) on the word, with `value` (FUTEX_WAIT's
    /// expected value, FUTEX_WAKE's count) and no timeout; its result is not needed.
    #[cfg(all(not(loom), target_os = "linux"))]
    fn futex(&self, op: i32, value: u32) {
        // SAFETY: a futex call on a live, aligned word; the kernel writes no memory.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.word.as_ptr(),
                op | libc::FUTEX_PRIVATE_FLAG,
                value,
                std::ptr::null::<libc::timespec>(),
            );
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn wake_word_wakes_its_sleeper() {
        let w = Arc::new(WakeWord::new(1));
        let sleeper = {
            let w = Arc::clone(&w);
            std::thread::spawn(move || w.wait_while(1))
        };
        std::thread::sleep(Duration::from_millis(20));
        w.set(0);
        w.wake();
        sleeper.join().unwrap();
        // A wake with nobody asleep, and a wait on a value the word does not hold, return.
        w.wake();
        w.wait_while(1);
    }
}
