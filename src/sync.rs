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
//! - `thread_local!` is loom's (loom threads share one OS thread).

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
