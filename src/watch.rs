//! A watcher: a library-owned thread that polls a target at a fixed period, for changes
//! that nothing announces (a registry file changed by another process).
//!
//! The thread holds the target weakly: it stops when the target is gone or when the
//! [`Watcher`] is dropped, which waits for it (unless the drop runs on the watcher's own
//! thread, when it let go of the target's last reference).

use crate::locks::{Condvar, Mutex};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// What a watcher polls.
pub(crate) trait Poll: Send + Sync {
    /// Looks for changes and announces them. Runs on the watcher's thread.
    fn poll(&self);
}

struct Shared {
    stop: Mutex<bool>,
    cv: Condvar,
}

/// A running watcher; dropping it stops the thread.
pub(crate) struct Watcher {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

std::thread_local!(static ON_WATCHER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });

impl Watcher {
    /// Starts polling `target` every `period`. None when no thread can be started.
    pub(crate) fn start(target: Weak<dyn Poll>, period: Duration) -> Option<Watcher> {
        let shared = Arc::new(Shared {
            stop: Mutex::new(false),
            cv: Condvar::new(),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("msgrpriv-watch".into())
            .spawn(move || {
                ON_WATCHER.with(|w| w.set(true));
                loop {
                    {
                        let mut stop = s.stop.lock();
                        if !*stop {
                            s.cv.wait_for(&mut stop, period);
                        }
                        if *stop {
                            return;
                        }
                    }
                    let Some(t) = target.upgrade() else { return };
                    t.poll();
                }
            })
            .ok()?;
        Some(Watcher {
            shared,
            thread: Some(thread),
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        *self.shared.stop.lock() = true;
        self.shared.cv.notify_all();
        if let Some(h) = self.thread.take() {
            if !ON_WATCHER.with(|w| w.get()) {
                let _ = h.join();
            }
        }
    }
}
