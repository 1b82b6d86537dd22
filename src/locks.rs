//! The library's locks: `std::sync`'s, with the parking_lot-like API the code uses (no
//! poisoning: a lock whose holder panicked is simply locked again, so a contained panic
//! leaves the library usable; `Condvar::wait(&mut guard)`; `MutexGuard::unlocked`).
//!
//! Not parking_lot's: parking_lot parks threads in one process-wide table whose queues link
//! the waiting threads' thread-local records. After a `fork()`, the child inherits the
//! entries of the parent's waiting threads (which do not exist there), and the threads the
//! child starts reuse those threads' stacks and thread-local memory (glibc recycles them),
//! which corrupts the queues: the child's first contended lock or condition variable then
//! crashes or hangs. std's locks keep all their state in the lock itself (a futex word on
//! Linux), so the locks of objects a child creates owe nothing to the parent.

use std::ops::{Deref, DerefMut};
use std::sync::PoisonError;
use std::time::{Duration, Instant};

/// A mutual exclusion lock that does not poison.
#[derive(Default)]
pub(crate) struct Mutex<T: ?Sized>(std::sync::Mutex<T>);

/// The guard of a locked [`Mutex`]. `guard` is `None` only inside [`MutexGuard::unlocked`]
/// and [`Condvar`]'s waits.
pub(crate) struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a std::sync::Mutex<T>,
    guard: Option<std::sync::MutexGuard<'a, T>>,
}

impl<T> Mutex<T> {
    pub(crate) const fn new(value: T) -> Self {
        Mutex(std::sync::Mutex::new(value))
    }
}

impl<T: ?Sized> Mutex<T> {
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        MutexGuard {
            mutex: &self.0,
            guard: Some(self.0.lock().unwrap_or_else(PoisonError::into_inner)),
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    /// True while some thread holds the lock (a snapshot). When it returns false, everything
    /// written before the last unlock is visible to the caller (the check takes and drops the
    /// lock, an acquire).
    #[cfg(test)]
    #[inline]
    pub(crate) fn is_locked(&self) -> bool {
        matches!(self.0.try_lock(), Err(std::sync::TryLockError::WouldBlock))
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// Unlocks, runs `f`, locks again (parking_lot's `MutexGuard::unlocked`).
    pub(crate) fn unlocked<U>(this: &mut Self, f: impl FnOnce() -> U) -> U {
        this.guard = None;
        // Locked again also when `f` panics, so the guard's drop unlocks a held lock.
        struct Relock<'g, 'a, T: ?Sized>(&'g mut MutexGuard<'a, T>);
        impl<T: ?Sized> Drop for Relock<'_, '_, T> {
            fn drop(&mut self) {
                self.0.guard = Some(self.0.mutex.lock().unwrap_or_else(PoisonError::into_inner));
            }
        }
        let _relock = Relock(this);
        f()
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        self.guard.as_deref().expect("locked")
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_deref_mut().expect("locked")
    }
}

/// Whether a timed wait ended because its time ran out.
pub(crate) struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    pub(crate) fn timed_out(&self) -> bool {
        self.0
    }
}

/// A condition variable for [`Mutex`].
#[derive(Default)]
pub(crate) struct Condvar(std::sync::Condvar);

impl Condvar {
    pub(crate) const fn new() -> Self {
        Condvar(std::sync::Condvar::new())
    }

    // Unused under `cfg(loom)`, where the queue waits on loom's condition variable.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
        let g = guard.guard.take().expect("locked");
        guard.guard = Some(self.0.wait(g).unwrap_or_else(PoisonError::into_inner));
    }

    /// Waits until notified or until `timeout` has passed.
    pub(crate) fn wait_for<T>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        timeout: Duration,
    ) -> WaitTimeoutResult {
        let g = guard.guard.take().expect("locked");
        let (g, r) = self
            .0
            .wait_timeout(g, timeout)
            .unwrap_or_else(PoisonError::into_inner);
        guard.guard = Some(g);
        WaitTimeoutResult(r.timed_out())
    }

    /// Waits until notified or until `deadline`; timed out only when the deadline passed.
    pub(crate) fn wait_until<T>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        deadline: Instant,
    ) -> WaitTimeoutResult {
        let now = Instant::now();
        if now >= deadline {
            return WaitTimeoutResult(true);
        }
        self.wait_for(guard, deadline - now);
        WaitTimeoutResult(Instant::now() >= deadline)
    }

    pub(crate) fn notify_all(&self) {
        self.0.notify_all();
    }
}

/// A reader-writer lock that does not poison.
pub(crate) struct RwLock<T>(std::sync::RwLock<T>);

impl<T> RwLock<T> {
    pub(crate) const fn new(value: T) -> Self {
        RwLock(std::sync::RwLock::new(value))
    }

    #[inline]
    #[cfg(test)]
    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    #[inline]
    pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_panic_does_not_poison() {
        let m = Arc::new(Mutex::new(1));
        let m2 = Arc::clone(&m);
        let r = std::thread::spawn(move || {
            let _g = m2.lock();
            panic!("holder panics");
        })
        .join();
        assert!(r.is_err());
        *m.lock() += 1;
        assert_eq!(*m.lock(), 2);
        let l = RwLock::new(0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _w = l.write();
            panic!("writer panics");
        }));
        assert!(r.is_err());
        *l.write() += 1;
        assert_eq!(*l.read(), 1);
    }

    #[test]
    fn unlocked_and_waits() {
        let m = Mutex::new(0);
        let cv = Condvar::new();
        let mut g = m.lock();
        assert!(MutexGuard::unlocked(&mut g, || !m.is_locked()));
        assert!(m.is_locked());
        *g += 1;
        assert!(cv.wait_for(&mut g, Duration::from_millis(1)).timed_out());
        assert!(cv.wait_until(&mut g, Instant::now()).timed_out());
        assert_eq!(*g, 1);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            MutexGuard::unlocked(&mut g, || panic!("inside unlocked"))
        }));
        assert!(r.is_err());
        assert_eq!(*g, 1, "locked again after the panic");
        drop(g);
        assert!(!m.is_locked());
    }
}
