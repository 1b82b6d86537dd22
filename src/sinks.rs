//! The per-object lists of registered callbacks ("sinks") and the reclaimer that frees the
//! lists they replace.
//!
//! A registration holds a callback for one event kind. The callback's captured state is
//! dropped exactly once, when the registration ends for any reason (unadvise, release of
//! the object, or a failed registration): the C layer puts the destroy notification in that
//! drop. Delivery reads the list with a plain load of a pointer, so a callback may end its
//! own or any other registration; a registration ended during delivery is not called
//! afterwards, and the list it was in (with it) is freed once the delivery of the event under
//! way on its client has finished (see [`Reclaimer`]; at once when none is): the event queue
//! enters its client's reclaimer once per dispatch, so delivering an event costs no atomic
//! read-modify-write here.
//!
//! Model checked with loom (`--cfg loom`, scripts/loom.sh, the models in `loom_tests`): the
//! lock and the atomics come from `crate::sync`; the code of this file is the same in both
//! builds.

use crate::error::{Result, E_HANDLE, E_INVALIDARG};
use crate::sync::{Arc, AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Mutex, Ordering};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Something that names its kind, so a sink list can filter registrations.
pub trait EventKind {
    /// The kind as a small integer.
    fn kind_id(&self) -> u8;
}

/// A callback for events of type `E`, ready to be registered ([`Sinks::advise`]): the
/// closure is stored inline in the registration, so a delivery reaches it without another
/// pointer to follow. Its captured state is dropped exactly once, when the registration ends
/// (or when the callback is dropped unregistered).
pub struct Callback<E>(Reg<E>);

impl<E> Callback<E> {
    /// Wraps `f` for registration.
    pub fn new(f: impl Fn(&mut E) + Send + Sync + 'static) -> Self {
        Callback(std::sync::Arc::new(Registration {
            kind: 0,
            cookie: 0,
            active: AtomicBool::new(true),
            callback: f,
        }))
    }
}

/// A registration: a std `Arc` (its count is touched only by writers, which copy the list),
/// whose callback is its last field, unsized.
struct Registration<F: ?Sized> {
    kind: u8,
    cookie: u32,
    active: AtomicBool,
    callback: F,
}

type Reg<E> = std::sync::Arc<Registration<dyn Fn(&mut E) + Send + Sync>>;

/// Where the sink lists replaced by advise, unadvise and close wait while a delivery may be
/// reading them, and where the event queue puts what must outlive every delivery under way.
/// One per client (its event queue holds it and so does every sink list of the client's
/// objects); a standalone [`Sinks`] has its own.
///
/// A delivery `enter`s once per `dispatch` call, not per event: inside, an event's sink list is
/// read with a plain load of a pointer. A writer that replaces a list while a delivery is
/// under way hands the old one here ([`retire`](Self::retire)); it is freed (which drops the
/// registrations it held, and runs their destroy notifications) by the delivery between two
/// events ([`between_events`](Self::between_events)) or when it exits, or by the writer itself
/// when that delivery has already left. What is handed over with
/// [`retire_at_exit`](Self::retire_at_exit) (a released object's [`Sinks`], which queued jobs
/// point at) is freed only when no delivery is under way: by the last one to exit, or at once.
/// The event queue's release of such a list checks for deliveries under its own lock instead
/// ([`idle`](Self::idle)), and when there is none frees it without the garbage lock
/// ([`free_or_retire_at_exit`](Self::free_or_retire_at_exit)).
pub struct Reclaimer {
    /// Deliveries under way times [`DELIVERY`] (nested and standalone ones each count), plus
    /// [`RETIRED`] while `garbage.lists` is not empty and [`AT_EXIT`] while `garbage.at_exit`
    /// is not. One word, changed only by read-modify-writes: a delivery that enters after a
    /// writer retired something synchronises with that writer (so it reads the new list), and
    /// one that entered before keeps the writer from freeing.
    state: AtomicUsize,
    garbage: Mutex<Garbage>,
}

#[derive(Default)]
struct Garbage {
    /// Freed between events or at exit.
    lists: Vec<Box<dyn Send>>,
    /// Freed when no delivery is under way.
    at_exit: Vec<Box<dyn Send>>,
}

/// A flag bit of [`Reclaimer::state`]: replaced lists wait.
const RETIRED: usize = 1;
/// A flag bit of [`Reclaimer::state`]: something waits for the last delivery to exit.
const AT_EXIT: usize = 2;
/// One delivery in [`Reclaimer::state`].
const DELIVERY: usize = 4;

impl Default for Reclaimer {
    fn default() -> Self {
        Reclaimer {
            state: AtomicUsize::new(0),
            garbage: Mutex::new(Garbage::default()),
        }
    }
}

impl Reclaimer {
    /// A delivery starts: the lists it reads stay allocated until it [`exit`](Self::exit)s.
    pub fn enter(&self) {
        self.state.fetch_add(DELIVERY, Ordering::AcqRel);
    }

    /// A delivery ends; the last one frees what was retired meanwhile (outside every lock).
    pub fn exit(&self) {
        let before = self.state.fetch_sub(DELIVERY, Ordering::AcqRel);
        if before > DELIVERY && before < 2 * DELIVERY {
            self.collect(RETIRED | AT_EXIT);
        }
    }

    /// Called by a delivery between two events, holding no list: when it is the only one
    /// under way (not nested), frees the lists retired meanwhile. So a registration ended
    /// during the delivery of an event is dropped once that event's delivery has finished,
    /// not at the end of the whole dispatch. One load when there is nothing to do.
    #[inline]
    pub fn between_events(&self) {
        if self.state.load(Ordering::Acquire) & !AT_EXIT == DELIVERY | RETIRED {
            self.collect(RETIRED);
        }
    }

    /// `garbage` (a list already unlinked by a read-modify-write) is freed now when no
    /// delivery is under way, or else by the delivery between two events or when it exits.
    fn retire(&self, garbage: Box<dyn Send>) {
        self.put(garbage, RETIRED);
    }

    /// `garbage` is freed now when no delivery is under way, or else by the last delivery to
    /// exit (never between two events: a delivery may still hold jobs that point into it).
    pub(crate) fn retire_at_exit(&self, garbage: Box<dyn Send>) {
        self.put(garbage, AT_EXIT);
    }

    /// True when no delivery is under way. Acquire: what the deliveries that have exited did
    /// (their reads of the lists and of what their jobs point at) happens before what the
    /// caller does after a true answer. Whether a delivery that enters later can reach what
    /// the caller frees is the caller's to rule out (see [`free_or_retire_at_exit`]).
    ///
    /// [`free_or_retire_at_exit`]: Self::free_or_retire_at_exit
    pub(crate) fn idle(&self) -> bool {
        self.state.load(Ordering::Acquire) < DELIVERY
    }

    /// Frees `garbage` at once when `idle` (an [`idle`](Self::idle) answer, read at a point
    /// after which no delivery can reach `garbage` except one already counted in the state),
    /// or else hands it to [`retire_at_exit`](Self::retire_at_exit). At once is the drop
    /// alone: no lock, no allocation, nothing written to the state.
    pub(crate) fn free_or_retire_at_exit<G: Send + 'static>(&self, garbage: G, idle: bool) {
        if idle {
            drop(garbage);
        } else {
            self.retire_at_exit(Box::new(garbage));
        }
    }

    /// `garbage` is freed now when the state shows no delivery, or else waits under `flag`.
    /// The flag is set and `garbage` stored in the same hold of the garbage lock, so a
    /// delivery whose exit sees the flag finds `garbage` when it takes that lock to collect.
    fn put(&self, garbage: Box<dyn Send>, flag: usize) {
        let mut g = self.garbage.lock();
        let before = self.state.fetch_or(flag, Ordering::AcqRel);
        if before < DELIVERY {
            // Also what a delivery that has just exited left for its collect.
            let freed = std::mem::take(&mut *g);
            self.state.fetch_and(!(RETIRED | AT_EXIT), Ordering::AcqRel);
            drop(g);
            drop(freed);
            drop(garbage);
        } else if flag == RETIRED {
            g.lists.push(garbage);
        } else {
            g.at_exit.push(garbage);
        }
    }

    /// Frees what waits under the flags `which` (outside the lock).
    fn collect(&self, which: usize) {
        let freed = {
            let mut g = self.garbage.lock();
            self.state.fetch_and(!which, Ordering::AcqRel);
            Garbage {
                lists: std::mem::take(&mut g.lists),
                at_exit: if which & AT_EXIT != 0 {
                    std::mem::take(&mut g.at_exit)
                } else {
                    Vec::new()
                },
            }
        };
        drop(freed);
    }
}

/// A list of registrations: up to two inline, so that the usual list (one callback per kind
/// and object) is one allocation.
type List<E> = smallvec::SmallVec<[Reg<E>; 2]>;

/// The registrations of one object for one event type.
pub struct Sinks<E> {
    /// The current list (a leaked `Box`): replaced whole by writers, under `writer`; read by
    /// deliveries, which [`Reclaimer::enter`]ed `reclaimer` first.
    list: AtomicPtr<List<E>>,
    /// Bit `k` set when a registration of kind `k` is in `list` (written with `list`), so that
    /// an event nobody listens to is skipped without reading the list.
    kinds: AtomicU32,
    writer: Mutex<()>,
    alive: AtomicBool,
    reclaimer: Arc<Reclaimer>,
}

/// The `kinds` bit of a kind (kinds >= 32 share the top bit, which then means "maybe").
fn kind_bit(kind: u8) -> u32 {
    1u32 << kind.min(31)
}

fn kinds_of<E>(list: &[Reg<E>]) -> u32 {
    list.iter().fold(0, |m, r| m | kind_bit(r.kind))
}

impl<E: EventKind + 'static> Default for Sinks<E> {
    /// A standalone list, with a reclaimer of its own.
    fn default() -> Self {
        Self::new(Arc::new(Reclaimer::default()))
    }
}

impl<E> Drop for Sinks<E> {
    fn drop(&mut self) {
        // SAFETY: the list was leaked from a Box by `new` or a writer; nobody else holds this
        // object any more, so no delivery reads it.
        drop(unsafe { Box::from_raw(self.list.load(Ordering::Acquire)) });
    }
}

/// The next registration cookie of the process, never 0. One sequence for every object, so
/// that unadvising an object with a cookie another object issued finds nothing (E_INVALIDARG)
/// instead of a registration that happens to share its number.
fn next_cookie() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    loop {
        let c = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if c != 0 {
            return c;
        }
    }
}

impl<E: EventKind + 'static> Sinks<E> {
    /// An empty list whose replaced versions go to `reclaimer` (the client's, for the lists
    /// its event queue delivers to).
    pub fn new(reclaimer: Arc<Reclaimer>) -> Self {
        Sinks {
            list: AtomicPtr::new(Box::into_raw(Box::new(List::new()))),
            kinds: AtomicU32::new(0),
            writer: Mutex::new(()),
            alive: AtomicBool::new(true),
            reclaimer,
        }
    }

    /// The reclaimer a delivery to this list must have entered.
    pub fn reclaimer(&self) -> &Arc<Reclaimer> {
        &self.reclaimer
    }

    /// The current list; the caller holds `writer`.
    fn current(&self) -> &List<E> {
        // SAFETY: only writers replace the list, under `writer`, which the caller holds.
        unsafe { &*self.list.load(Ordering::Acquire) }
    }

    /// Publishes `v` (the caller holds `writer`) and retires the list it replaces.
    fn replace(&self, v: List<E>) {
        self.kinds.store(kinds_of(&v), Ordering::Release);
        let old = self.list.swap(Box::into_raw(Box::new(v)), Ordering::AcqRel);
        // SAFETY: `old` was leaked from a Box and is now unreachable from `list`.
        self.reclaimer.retire(unsafe { Box::from_raw(old) });
    }

    /// Adds a registration and returns its cookie (never 0, and unique in the process until
    /// the 32-bit cookie space wraps, so another object's cookie is unknown here). E_HANDLE
    /// once the object is gone; the callback is then dropped, which runs its destroy
    /// notification.
    pub fn advise(&self, kind: u8, callback: Callback<E>) -> Result<u32> {
        let w = self.writer.lock();
        if !self.alive.load(Ordering::Acquire) {
            drop(w);
            drop(callback);
            return Err(E_HANDLE);
        }
        let cookie = loop {
            let c = next_cookie();
            if !self.current().iter().any(|r| r.cookie == c) {
                break c;
            }
        };
        let mut reg = callback.0;
        let r = std::sync::Arc::get_mut(&mut reg).expect("a callback is registered once");
        r.kind = kind;
        r.cookie = cookie;
        let mut v = self.current().clone();
        v.push(reg);
        self.replace(v);
        Ok(cookie)
    }

    /// Ends a registration. E_INVALIDARG for a cookie that is not registered here.
    pub fn unadvise(&self, cookie: u32) -> Result<()> {
        let _w = self.writer.lock();
        let cur = self.current();
        let Some(pos) = cur.iter().position(|r| r.cookie == cookie) else {
            return Err(E_INVALIDARG);
        };
        cur[pos].active.store(false, Ordering::Release);
        let mut v = cur.clone();
        v.remove(pos);
        self.replace(v);
        Ok(())
    }

    /// Ends every registration and refuses new ones: the object is gone.
    pub fn close(&self) {
        let _w = self.writer.lock();
        self.alive.store(false, Ordering::Release);
        for r in self.current().iter() {
            r.active.store(false, Ordering::Release);
        }
        self.replace(List::new());
    }

    /// True until [`close`](Self::close).
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Number of live registrations.
    pub fn len(&self) -> usize {
        let _w = self.writer.lock();
        self.current().len()
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs every active registration for this event's kind, in registration order. A
    /// panicking callback is contained and the next one still runs.
    pub fn deliver(&self, event: &mut E) {
        self.reclaimer.enter();
        // SAFETY: entered just above.
        unsafe { self.deliver_entered(event) };
        self.reclaimer.exit();
    }

    /// [`deliver`](Self::deliver) inside a delivery that has entered this list's reclaimer
    /// (the event queue enters its client's once per dispatch).
    ///
    /// # Safety
    /// `self.reclaimer()` must be entered, and not exited before this returns.
    pub unsafe fn deliver_entered(&self, event: &mut E) {
        if !self.is_alive() {
            return;
        }
        let kind = event.kind_id();
        // Nobody registered for this kind (a registration added concurrently with this
        // delivery may or may not see it, as with the list below).
        if self.kinds.load(Ordering::Acquire) & kind_bit(kind) == 0 {
            return;
        }
        // A plain load: a writer that replaces the list while this delivery runs (a callback
        // may) retires the old one to the reclaimer, so it and its registrations stay
        // allocated until the delivery exits.
        let list = unsafe { &*self.list.load(Ordering::Acquire) };
        for reg in list.iter() {
            if reg.kind == kind && reg.active.load(Ordering::Acquire) && self.is_alive() {
                let _ = catch_unwind(AssertUnwindSafe(|| (reg.callback)(event)));
            }
        }
    }
}
