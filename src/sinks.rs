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
//! A list is one allocation: the count, then one entry per registration with its kind and,
//! for a callback whose captured state is a few words of plain data (the C layer's: the
//! function, the user data and the handle), a copy of that state. Delivering such an event
//! reads the object's [`Sinks`] and its current list, and calls: the registration itself is
//! read only when the list was replaced during the delivery (to skip the registrations ended
//! meanwhile).
//!
//! Model checked with loom (`--cfg loom`, scripts/loom.sh, the models in `loom_tests`): the
//! lock and the atomics come from `crate::sync`; the code of this file is the same in both
//! builds.

use crate::error::{Result, E_HANDLE, E_INVALIDARG};
use crate::sync::{Arc, AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Mutex, Ordering};
use std::alloc::Layout;
use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{addr_of, addr_of_mut, NonNull};

/// Something that names its kind, so a sink list can filter registrations.
pub trait EventKind {
    /// The kind as a small integer.
    fn kind_id(&self) -> u8;
}

/// A callback for events of type `E`, ready to be registered ([`Sinks::advise`]). Its
/// captured state is dropped exactly once, when the registration ends (or when the callback
/// is dropped unregistered).
pub struct Callback<E> {
    reg: Reg<E>,
    call: Call<E>,
    words: Words,
}

impl<E: 'static> Callback<E> {
    /// Wraps `f` for registration: a delivery calls it through the registration.
    pub fn new(f: impl Fn(&mut E) + Send + Sync + 'static) -> Self {
        Callback {
            reg: std::sync::Arc::new(Registration {
                active: AtomicBool::new(true),
                callback: f,
            }),
            call: call_registration::<E>,
            words: [MaybeUninit::uninit(); WORDS],
        }
    }

    /// Wraps `f`, whose captured state is plain data (`Copy`) of at most three words, and
    /// `owner`, what the registration owns besides (the C layer's user data, whose drop runs
    /// the destroy notification), dropped when it ends. The lists hold a copy of `f`, which a
    /// delivery calls without reading the registration.
    pub(crate) fn with_owner<F, O>(f: F, owner: O) -> Self
    where
        F: Fn(&mut E) + Copy + Send + Sync + 'static,
        O: Send + Sync + 'static,
    {
        const { assert!(size_of::<F>() <= size_of::<Words>() && align_of::<F>() <= align_of::<Words>()) };
        let mut words: Words = [MaybeUninit::uninit(); WORDS];
        // SAFETY: `F` fits in `words` and is no more aligned (checked above).
        unsafe { words.as_mut_ptr().cast::<F>().write(f) };
        Callback {
            reg: std::sync::Arc::new(Registration {
                active: AtomicBool::new(true),
                callback: move |e: &mut E| {
                    let _ = &owner;
                    f(e)
                },
            }),
            call: call_words::<E, F>,
            words,
        }
    }
}

/// A registration: a std `Arc` (its count is touched only by writers, which copy the lists
/// that hold it), whose callback is its last field, unsized. Owns the callback's captured
/// state.
struct Registration<F: ?Sized> {
    /// False once the registration ended: a delivery that finds its list replaced meanwhile
    /// calls only the registrations still active.
    active: AtomicBool,
    callback: F,
}

type Reg<E> = std::sync::Arc<Registration<dyn Fn(&mut E) + Send + Sync>>;

/// Room in a list entry for a copy of a callback's captured state (see
/// [`Callback::with_owner`]).
const WORDS: usize = 3;
type Words = [MaybeUninit<usize>; WORDS];

/// How a callback is called (`call` of a [`Callback`], given that callback).
type Call<E> = unsafe fn(&Callback<E>, &mut E);

/// [`Call`] of a callback made with [`Callback::new`]: through the registration.
unsafe fn call_registration<E>(callback: &Callback<E>, event: &mut E) {
    (callback.reg.callback)(event)
}

/// [`Call`] of a callback made with [`Callback::with_owner`]: its copy in the words.
///
/// # Safety
/// `callback.words` holds an `F` (written by `with_owner`, which made `callback`).
unsafe fn call_words<E, F: Fn(&mut E)>(callback: &Callback<E>, event: &mut E) {
    (*callback.words.as_ptr().cast::<F>())(event)
}

impl<E> Callback<E> {
    /// Calls it.
    #[inline]
    fn call(&self, event: &mut E) {
        // SAFETY: `call` and `words` were made together, by `new` or `with_owner`.
        unsafe { (self.call)(self, event) }
    }
}

impl<E> Clone for Callback<E> {
    /// Another handle on the same registration (the lists' copies).
    fn clone(&self) -> Self {
        Callback {
            reg: self.reg.clone(),
            call: self.call,
            words: self.words,
        }
    }
}

/// One registration in a list.
struct Entry<E> {
    kind: u8,
    cookie: u32,
    callback: Callback<E>,
}

impl<E> Clone for Entry<E> {
    fn clone(&self) -> Self {
        Entry {
            kind: self.kind,
            cookie: self.cookie,
            callback: self.callback.clone(),
        }
    }
}

/// The allocation of a [`List`]: the count, then the entries.
#[repr(C)]
struct Block<E> {
    len: usize,
    entries: [Entry<E>; 0],
}

/// An immutable list of registrations in one allocation (see the module's documentation);
/// owns its entries.
struct List<E>(NonNull<Block<E>>);

// SAFETY: a list owns its entries and never changes them; entries are Send and Sync (their
// words hold a copy of a Send + Sync callback).
unsafe impl<E> Send for List<E> where Entry<E>: Send + Sync {}

impl<E> List<E> {
    fn layout(len: usize) -> Layout {
        Layout::new::<Block<E>>()
            .extend(Layout::array::<Entry<E>>(len).expect("list length"))
            .expect("list length")
            .0
            .pad_to_align()
    }

    fn new(entries: Vec<Entry<E>>) -> Self {
        let layout = Self::layout(entries.len());
        // SAFETY: the layout has a non-zero size (the count); the count and the entries are
        // written within it, where `entries_at` reads them, before the pointer is used.
        unsafe {
            let p = std::alloc::alloc(layout).cast::<Block<E>>();
            let Some(p) = NonNull::new(p) else {
                std::alloc::handle_alloc_error(layout)
            };
            addr_of_mut!((*p.as_ptr()).len).write(entries.len());
            let first = addr_of_mut!((*p.as_ptr()).entries).cast::<Entry<E>>();
            for (i, e) in entries.into_iter().enumerate() {
                first.add(i).write(e);
            }
            List(p)
        }
    }

    /// The entries of the list at `p`.
    ///
    /// # Safety
    /// `p` comes from [`into_raw`](Self::into_raw) and the list is not freed during `'a`.
    unsafe fn entries_at<'a>(p: *const Block<E>) -> &'a [Entry<E>] {
        std::slice::from_raw_parts(addr_of!((*p).entries).cast::<Entry<E>>(), (*p).len)
    }

    fn into_raw(self) -> *mut Block<E> {
        ManuallyDrop::new(self).0.as_ptr()
    }

    /// # Safety
    /// `p` comes from [`into_raw`](Self::into_raw), and is taken back once.
    unsafe fn from_raw(p: *mut Block<E>) -> Self {
        List(NonNull::new_unchecked(p))
    }
}

impl<E> Drop for List<E> {
    fn drop(&mut self) {
        // SAFETY: this list owns the allocation and its entries.
        unsafe {
            let len = (*self.0.as_ptr()).len;
            let first = addr_of_mut!((*self.0.as_ptr()).entries).cast::<Entry<E>>();
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(first, len));
            std::alloc::dealloc(self.0.as_ptr().cast(), Self::layout(len));
        }
    }
}

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

/// The registrations of one object for one event type.
pub struct Sinks<E> {
    /// The current list ([`List::into_raw`]): replaced whole by writers, under `writer`; read
    /// by deliveries, which [`Reclaimer::enter`]ed `reclaimer` first.
    list: AtomicPtr<Block<E>>,
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

fn kinds_of<E>(list: &[Entry<E>]) -> u32 {
    list.iter().fold(0, |m, e| m | kind_bit(e.kind))
}

impl<E: EventKind + 'static> Default for Sinks<E> {
    /// A standalone list, with a reclaimer of its own.
    fn default() -> Self {
        Self::new(Arc::new(Reclaimer::default()))
    }
}

impl<E> Drop for Sinks<E> {
    fn drop(&mut self) {
        // SAFETY: the list was published by `new` or a writer; nobody else holds this object
        // any more, so no delivery reads it.
        drop(unsafe { List::from_raw(self.list.load(Ordering::Acquire)) });
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
            list: AtomicPtr::new(List::new(Vec::new()).into_raw()),
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

    /// The current list's entries; the caller holds `writer`.
    fn current(&self) -> &[Entry<E>] {
        // SAFETY: only writers replace the list, under `writer`, which the caller holds.
        unsafe { List::entries_at(self.list.load(Ordering::Acquire)) }
    }

    /// Publishes `v` (the caller holds `writer`) and retires the list it replaces.
    fn replace(&self, v: Vec<Entry<E>>) {
        self.kinds.store(kinds_of(&v), Ordering::Release);
        let old = self.list.swap(List::new(v).into_raw(), Ordering::AcqRel);
        // SAFETY: `old` was published by `new` or a writer and is now unreachable from `list`.
        self.reclaimer
            .retire(Box::new(unsafe { List::from_raw(old) }));
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
        let mut v = self.current().to_vec();
        v.push(Entry {
            kind,
            cookie,
            callback,
        });
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
        cur[pos].callback.reg.active.store(false, Ordering::Release);
        let mut v = cur.to_vec();
        v.remove(pos);
        self.replace(v);
        Ok(())
    }

    /// Ends every registration and refuses new ones: the object is gone.
    pub fn close(&self) {
        let _w = self.writer.lock();
        self.alive.store(false, Ordering::Release);
        for e in self.current() {
            e.callback.reg.active.store(false, Ordering::Release);
        }
        self.replace(Vec::new());
    }

    /// Asks the CPU to start loading the current list (a hint: reads nothing else).
    #[inline]
    pub(crate) fn prefetch(&self) {
        #[cfg(all(target_arch = "x86_64", not(loom)))]
        {
            let list = self.list.load(Ordering::Relaxed);
            // SAFETY: a prefetch reads nothing and faults on no address.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    list as *const i8,
                )
            }
        }
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
    #[inline(always)]
    pub unsafe fn deliver_entered(&self, event: &mut E) {
        let kind = event.kind_id();
        // Nobody registered for this kind, or the object is gone (its list is empty). A
        // registration added concurrently with this delivery may or may not see it, as with
        // the list below.
        if self.kinds.load(Ordering::Acquire) & kind_bit(kind) == 0 {
            return;
        }
        // A plain load: a writer that replaces the list while this delivery runs (a callback
        // may) retires the old one to the reclaimer, so it and its registrations stay
        // allocated until the delivery exits.
        let list = self.list.load(Ordering::Acquire);
        let entries = unsafe { List::entries_at(list) };
        let mut called = false;
        for entry in entries {
            if entry.kind != kind {
                continue;
            }
            // Ending a registration (unadvise, close) marks it inactive, then replaces the
            // list: after a callback has run, a list that differs from the current one may
            // hold registrations ended by it, which are skipped.
            if called
                && self.list.load(Ordering::Acquire) != list
                && !entry.callback.reg.active.load(Ordering::Acquire)
            {
                continue;
            }
            called = true;
            let _ = catch_unwind(AssertUnwindSafe(|| entry.callback.call(event)));
        }
    }
}
