//! The handle table: C handles are tokens looked up here, never pointers to Rust memory.
//!
//! A token packs (slot, generation, kind) into a non-null pointer-sized value. On 64-bit
//! targets:
//!
//! ```text
//!  63                32 31                   3 2   0
//! +--------------------+----------------------+-----+
//! | generation (1..)   | slot + 1 (1..2^29-1) | kind|
//! +--------------------+----------------------+-----+
//! ```
//!
//! (32-bit targets: generation 12 bits, slot + 1 17 bits, kind 3 bits.) Kinds are 1..=4, so
//! a token's low three bits are never zero: no 8-aligned address (a real object pointer) can
//! be a token, and a small integer (generation 0) never is one. Any value is safe to decode;
//! it is a valid token only when its slot exists, holds an object of that kind and has that
//! generation. A freed slot gets a new generation before it is reused, and a slot whose
//! generation would wrap is retired instead, so an old token never becomes valid again.
//!
//! Each live entry holds one `Arc` to the object and a count of C references (`refs`) to its
//! token. The same object gets the same token while it is in the table ([`HandleTable::acquire`]
//! finds it by `Arc` pointer identity). Objects leave the table by [`HandleTable::release`] or
//! [`HandleTable::remove`], which hand the `Arc` back to the caller: an object (and with it any
//! user destroy callback) is never dropped while the table lock is held.
//!
//! Writers serialise on an `RwLock` around the bookkeeping (reference counts, free
//! list, reverse map). [`HandleTable::get`] takes no lock: slots live in chunks that never
//! move, each with one state word (generation, kind and a count of pinned readers); a reader
//! pins the slot with one atomic addition that also tells whether its token is current, clones
//! the `Arc` and unpins. A writer emptying a slot first clears its kind (new readers fail) and
//! waits for the pinned readers, which run nothing but that clone, before taking the object.
//! Readers of different handles touch no shared cache line; nothing allocates.
//!
//! Each process has its own table ([`table`]). A child made by `fork()` must not take the
//! parent's table lock (a parent thread may have held it at the fork, and then it stays held
//! for ever in the child) nor touch the parent's objects, so a `pthread_atfork` child handler
//! only marks the table as inherited (one atomic operation), and the child's first use of the
//! library makes a new, empty table whose `parent` is the inherited one. The inherited tables
//! are never written in the child and never freed (their objects are leaked there): they only
//! tell an inherited token ([`E_INHERITED`]) from a stale or forged one (E_HANDLE), with the
//! same lock-free check as a reader. The child's table starts each slot above every
//! generation the slot had in the inherited tables, so its tokens and theirs never coincide.

// The table is the foundation the object-level functions are built on; until all of them
// exist, parts of its API have no caller outside the tests.

use crate::error::{
    Hr, Result, E_HANDLE, E_OUTOFMEMORY, E_POINTER, E_UNEXPECTED, MSGR_E_SERVER_SHUTDOWN,
};
use crate::locks::RwLock;
use std::any::Any;
use std::cell::UnsafeCell;
use std::collections::{HashMap, VecDeque};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;

/// What a call gets for a handle that a forked child process inherited from its parent (the
/// header's "Threads" section): the object belongs to the parent, whose threads, locks and
/// descriptors the child must not touch. Release and destroy functions answer S_OK instead
/// ([`release`], [`remove`]) and free nothing.
pub(crate) const E_INHERITED: Hr = MSGR_E_SERVER_SHUTDOWN;

/// The kind of object a handle names. The value is stored in the token's low bits.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// `msgr_service`
    Service = 1,
    /// `msgr_client`
    Client = 2,
    /// `msgr_session_manager`
    SessionManager = 3,
    /// `msgr_session`
    Session = 4,
}

/// A handle as C sees it, as an integer. 0 is NULL.
pub(crate) type Token = usize;

/// An object as the table stores it.
type Object = Arc<dyn Any + Send + Sync>;

const KIND_BITS: u32 = 3;
const KIND_MASK: usize = (1 << KIND_BITS) - 1;
#[cfg(target_pointer_width = "64")]
const SLOT_BITS: u32 = 29;
#[cfg(target_pointer_width = "64")]
const GEN_BITS: u32 = 32;
#[cfg(target_pointer_width = "32")]
const SLOT_BITS: u32 = 17;
#[cfg(target_pointer_width = "32")]
const GEN_BITS: u32 = 12;
const SLOT_MASK: usize = (1 << SLOT_BITS) - 1;
const GEN_SHIFT: u32 = KIND_BITS + SLOT_BITS;
/// Slot numbers are 0..MAX_SLOTS (the token stores slot + 1, and 0 is never stored).
const MAX_SLOTS: usize = SLOT_MASK;
/// Generations are 1..=MAX_GEN; 0 never names a live entry.
const MAX_GEN: u32 = (((1u64 << GEN_BITS) - 1) & u32::MAX as u64) as u32;

const _: () = assert!(KIND_BITS + SLOT_BITS + GEN_BITS == usize::BITS);

fn encode(slot: usize, generation: u32, kind: Kind) -> Token {
    debug_assert!(slot < MAX_SLOTS && generation != 0 && u64::from(generation) >> GEN_BITS == 0);
    ((generation as usize) << GEN_SHIFT) | ((slot + 1) << KIND_BITS) | kind as usize
}

/// Splits a token into (slot, generation) after checking everything that can be checked
/// without the table: NULL gives E_POINTER, a wrong kind, slot 0 or generation 0 E_HANDLE.
#[inline]
fn decode(token: Token, kind: Kind) -> Result<(usize, u32)> {
    if token == 0 {
        return Err(E_POINTER);
    }
    let slot1 = (token >> KIND_BITS) & SLOT_MASK;
    let generation = (token >> GEN_SHIFT) as u32;
    if token & KIND_MASK != kind as usize || slot1 == 0 || generation == 0 {
        return Err(E_HANDLE);
    }
    Ok((slot1 - 1, generation))
}

/// The identity of an object for the reverse lookup: its kind and `Arc` data address.
fn identity<T>(kind: Kind, obj: &Arc<T>) -> (Kind, usize) {
    (kind, Arc::as_ptr(obj) as *const () as usize)
}

// Slots live in chunks that never move: chunk `level` holds `CHUNK_BASE << level` slots, so a
// reader finds a slot with one atomic load and no lock while writers add chunks.
const CHUNK_BASE_BITS: u32 = 6;
const CHUNK_BASE: usize = 1 << CHUNK_BASE_BITS;
/// Enough levels for every slot number below MAX_SLOTS.
const LEVELS: usize = (SLOT_BITS - CHUNK_BASE_BITS + 1) as usize;

// A slot's state word: generation in the top GEN_BITS bits, the number of readers that pinned
// the slot in the middle, the occupant's kind (0: free) in the low KIND_BITS bits.
const STATE_GEN_SHIFT: u32 = usize::BITS - GEN_BITS;
const PIN: usize = 1 << KIND_BITS;
const PIN_MASK: usize = ((1usize << STATE_GEN_SHIFT) - 1) & !KIND_MASK;

const _: () = assert!(STATE_GEN_SHIFT > KIND_BITS + 8, "room for pins");

/// (level, offset) of a slot number.
#[inline]
fn locate(slot: usize) -> (usize, usize) {
    let x = slot + CHUNK_BASE;
    let level = (usize::BITS - 1 - x.leading_zeros() - CHUNK_BASE_BITS) as usize;
    (level, x - (CHUNK_BASE << level))
}

/// Where slot `offset` of a chunk of `CHUNK_BASE << level` slots sits: the chunk is read as
/// 8 rows, consecutive slots go to consecutive rows, so handles created one after the other
/// (by different threads, typically) do not share a cache line and their readers' pins do
/// not contend. A bijection on 0..(CHUNK_BASE << level).
#[inline]
fn spread(level: usize, offset: usize) -> usize {
    let rows_shift = CHUNK_BASE_BITS as usize + level - 3; // row length: chunk / 8
    ((offset & 7) << rows_shift) | (offset >> 3)
}

/// One handle slot, readable without the table lock.
struct Slot {
    /// generation << STATE_GEN_SHIFT | pins << KIND_BITS | kind (0 when free). Writers (under
    /// the table lock) change generation and kind with atomic additions, so readers' pins are
    /// never lost.
    state: AtomicUsize,
    /// The occupant, initialised exactly while the kind is not 0. Written only under the table
    /// lock, while the kind is 0 and no reader is pinned; read only by a reader pinned on a
    /// state that matches its token.
    object: UnsafeCell<MaybeUninit<Object>>,
}

impl Slot {
    #[inline]
    fn generation(&self) -> u32 {
        (self.state.load(Ordering::Acquire) >> STATE_GEN_SHIFT) as u32
    }

    #[inline]
    fn holds(&self, generation: u32, kind: Kind) -> bool {
        self.state.load(Ordering::Acquire) & !PIN_MASK
            == ((generation as usize) << STATE_GEN_SHIFT) | kind as usize
    }

    /// The occupant. Caller: holds the table lock on an occupied slot, or is pinned on a
    /// matching state.
    #[inline]
    unsafe fn object(&self) -> &Object {
        (*self.object.get()).assume_init_ref()
    }
}

/// What only writers touch, under the table lock.
struct Table {
    /// Slots handed out so far (0..len).
    len: usize,
    /// C references to each slot's occupant (at least 1 while occupied).
    refs: Vec<u32>,
    /// Free slots, oldest first: reusing the least recently freed slot keeps stale tokens
    /// pointing at free slots for as long as possible.
    free: VecDeque<usize>,
    /// Reverse lookup: object identity -> slot, for every occupied slot. A hash map (made on
    /// first use, so that `new` stays const): with a million live handles an ordered map's
    /// descent costs a cache miss per level on every insert and acquire.
    by_object: Option<HashMap<(Kind, usize), usize, AddrHash>>,
}

impl Table {
    fn by_object(&mut self) -> &mut HashMap<(Kind, usize), usize, AddrHash> {
        self.by_object.get_or_insert_with(HashMap::default)
    }

    fn slot_of(&self, ident: &(Kind, usize)) -> Option<usize> {
        self.by_object.as_ref()?.get(ident).copied()
    }
}

/// Hashes an object identity (kind, address): addresses are aligned, so their bits are mixed
/// before the map takes its bucket from the low ones.
#[derive(Default, Clone, Copy)]
struct AddrHash;

impl std::hash::BuildHasher for AddrHash {
    type Hasher = AddrHasher;
    fn build_hasher(&self) -> AddrHasher {
        AddrHasher(0)
    }
}

struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        // splitmix64's finaliser over the running value
        let mut z = (self.0 ^ i).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        self.0 = z ^ (z >> 31);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A table of live handles. The library uses one per process, [`table`]; tests make their own.
pub(crate) struct HandleTable {
    /// Writers (insert, add_ref, release, remove, acquire) serialise on this lock; `get`
    /// never takes it.
    inner: RwLock<Table>,
    chunks: [AtomicPtr<Slot>; LEVELS],
    /// In a forked child: the table inherited from the parent (frozen, never freed).
    parent: Option<&'static HandleTable>,
}

// SAFETY: the slots' objects are `Send + Sync`; `Slot::object` is accessed under the rules
// documented on it (the table lock for writers, a matching pin for readers).
unsafe impl Send for HandleTable {}
unsafe impl Sync for HandleTable {}

/// Downcasts a stored object; a kind whose object has another type is reported as E_HANDLE.
fn downcast<T: Any + Send + Sync>(object: Object) -> Result<Arc<T>> {
    object.downcast::<T>().map_err(|_| E_HANDLE)
}

impl HandleTable {
    /// An empty table.
    pub(crate) const fn new() -> Self {
        HandleTable {
            inner: RwLock::new(Table {
                len: 0,
                refs: Vec::new(),
                free: VecDeque::new(),
                by_object: None,
            }),
            chunks: [const { AtomicPtr::new(std::ptr::null_mut()) }; LEVELS],
            parent: None,
        }
    }

    /// An empty table for a forked child whose inherited table is `parent`.
    fn forked_from(parent: &'static HandleTable) -> Self {
        let mut t = Self::new();
        t.parent = Some(parent);
        t
    }

    /// True when a table inherited across a fork held an object of `kind` at (`slot`,
    /// `generation`) at the fork. Inherited tables are frozen in this process (no thread
    /// here writes them), so the slot states read are those of the fork.
    #[cold]
    fn inherited(&self, slot: usize, generation: u32, kind: Kind) -> bool {
        let mut t = self.parent;
        while let Some(p) = t {
            if p.slot(slot).is_some_and(|s| s.holds(generation, kind)) {
                return true;
            }
            t = p.parent;
        }
        false
    }

    /// The error for a well-formed token that names nothing in this table: E_INHERITED for
    /// an object inherited across a fork, E_HANDLE otherwise.
    #[cold]
    fn miss(&self, slot: usize, generation: u32, kind: Kind) -> Hr {
        if self.inherited(slot, generation, kind) {
            E_INHERITED
        } else {
            E_HANDLE
        }
    }

    /// The highest generation slot `slot` has in the inherited tables (0: none).
    fn inherited_generation(&self, slot: usize) -> u32 {
        let mut g = 0;
        let mut t = self.parent;
        while let Some(p) = t {
            if let Some(s) = p.slot(slot) {
                g = g.max(s.generation());
            }
            t = p.parent;
        }
        g
    }

    /// The slot numbered `slot`, if its chunk exists (lock-free).
    #[inline]
    fn slot(&self, slot: usize) -> Option<&Slot> {
        let (level, offset) = locate(slot);
        let chunk = self.chunks.get(level)?.load(Ordering::Acquire);
        if chunk.is_null() {
            return None;
        }
        // SAFETY: a published chunk of level `level` has CHUNK_BASE << level initialised
        // (zeroed: generation 0, free) slots and lives as long as the table; `spread` stays
        // within it.
        Some(unsafe { &*chunk.add(spread(level, offset)) })
    }

    fn chunk_layout(level: usize) -> std::alloc::Layout {
        std::alloc::Layout::array::<Slot>(CHUNK_BASE << level).expect("chunk size")
    }

    /// A slot never used before (under the lock), its chunk allocated if needed. In a forked
    /// child it starts at the highest generation it had in the inherited tables (its first
    /// token is one above), and a slot exhausted there is retired here too.
    fn new_slot(&self, t: &mut Table) -> Result<usize> {
        loop {
            let slot = t.len;
            if slot >= MAX_SLOTS {
                return Err(E_OUTOFMEMORY);
            }
            let (level, _) = locate(slot);
            if self.chunks[level].load(Ordering::Acquire).is_null() {
                let layout = Self::chunk_layout(level);
                // SAFETY: non-zero size. All-zero bytes are a valid free slot (state 0; the
                // object is uninitialised while free); zeroed memory is only touched when used.
                let p = unsafe { std::alloc::alloc_zeroed(layout) } as *mut Slot;
                if p.is_null() {
                    return Err(E_OUTOFMEMORY);
                }
                self.chunks[level].store(p, Ordering::Release);
            }
            t.len += 1;
            t.refs.push(0);
            let inherited = self.inherited_generation(slot);
            if inherited == 0 {
                return Ok(slot);
            }
            let s = self.slot(slot).expect("allocated");
            // An addition, as in `occupy`: a reader with a forged token may be pinning it.
            // MAX_GEN is u32::MAX on 64-bit targets (the min is a no-op there, not on 32-bit).
            #[allow(clippy::unnecessary_min_or_max)]
            let generation = inherited.min(MAX_GEN);
            s.state
                .fetch_add((generation as usize) << STATE_GEN_SHIFT, Ordering::Release);
            if inherited < MAX_GEN {
                return Ok(slot);
            }
        }
    }

    /// The occupied slot named by a token (under the lock), or E_POINTER/E_HANDLE/E_INHERITED.
    fn entry(&self, token: Token, kind: Kind) -> Result<(usize, &Slot)> {
        let (slot, generation) = decode(token, kind)?;
        match self.slot(slot) {
            Some(s) if s.holds(generation, kind) => Ok((slot, s)),
            _ => Err(self.miss(slot, generation, kind)),
        }
    }

    /// Puts a new object in a slot with refs = 1 and returns its token (under the lock).
    fn occupy(
        &self,
        t: &mut Table,
        kind: Kind,
        ident: (Kind, usize),
        object: Object,
    ) -> Result<Token> {
        let slot = match t.free.pop_front() {
            Some(slot) => slot,
            None => self.new_slot(t)?,
        };
        let s = self.slot(slot).expect("allocated");
        // SAFETY: the slot is free (kind 0): no reader reads the object, and `vacate` waited
        // for the last pinned reader before freeing it.
        unsafe { (*s.object.get()).write(object) };
        // Free slots always have a generation below MAX_GEN (see `vacate`). One addition sets
        // generation + 1 and the kind, keeping the pins of readers that are failing right now.
        let old = s
            .state
            .fetch_add((1 << STATE_GEN_SHIFT) | kind as usize, Ordering::Release);
        let generation = (old >> STATE_GEN_SHIFT) as u32 + 1;
        t.refs[slot] = 1;
        t.by_object().insert(ident, slot);
        Ok(encode(slot, generation, kind))
    }

    /// Empties an occupied slot and returns its object (under the lock). The slot is reused
    /// later with the next generation, or retired when its generation is exhausted.
    fn vacate(&self, t: &mut Table, slot: usize) -> Object {
        let s = self.slot(slot).expect("allocated");
        let state = s.state.load(Ordering::Acquire);
        let kind = state & KIND_MASK;
        debug_assert!(kind != 0, "occupied");
        // Kind 0: from now on every reader fails without touching the object...
        s.state.fetch_sub(kind, Ordering::AcqRel);
        // ... and those already pinned on the old state finish their Arc clone or their plain
        // getter first (a few instructions: readers never run anything else while pinned).
        let mut spins = 0u32;
        while s.state.load(Ordering::Acquire) & PIN_MASK != 0 {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        // SAFETY: occupied until now; no reader can read it any more.
        let object = unsafe { (*s.object.get()).assume_init_read() };
        t.refs[slot] = 0;
        if s.generation() < MAX_GEN {
            t.free.push_back(slot);
        }
        let ident = (
            kind_from_bits(kind),
            Arc::as_ptr(&object) as *const () as usize,
        );
        t.by_object().remove(&ident);
        object
    }

    /// Puts `obj` in the table with one reference and returns its new token.
    ///
    /// E_UNEXPECTED when `obj` is already in the table (use [`Self::acquire`] for objects that
    /// may be), E_OUTOFMEMORY when the table is full.
    pub(crate) fn insert<T: Any + Send + Sync>(&self, kind: Kind, obj: Arc<T>) -> Result<Token> {
        let ident = identity(kind, &obj);
        let mut t = self.inner.write();
        if t.slot_of(&ident).is_some() {
            return Err(E_UNEXPECTED);
        }
        self.occupy(&mut t, kind, ident, obj)
    }

    /// The object named by `token`. NULL gives E_POINTER; a stale, released, forged or
    /// wrong-kind token gives E_HANDLE; a token inherited across a fork E_INHERITED.
    ///
    /// Lock-free: the reader pins the slot (one atomic addition on the slot's own state word,
    /// which also tells whether the token is current), clones the `Arc` and unpins. Readers of
    /// different handles share no cache line.
    #[inline]
    pub(crate) fn get<T: Any + Send + Sync>(&self, token: Token, kind: Kind) -> Result<Arc<T>> {
        // `is` first, so that a mismatch clones nothing.
        self.pinned(token, kind, |o| {
            if o.is::<T>() {
                Ok(o.clone())
            } else {
                Err(E_HANDLE)
            }
        })
        .and_then(downcast)
    }

    /// Runs `f` on the object named by `token` while its slot is pinned, without cloning the
    /// `Arc` (no write to the object's reference count, which readers of the same handle on
    /// other threads would share). Errors as [`Self::get`].
    ///
    /// `f` runs while a release of the handle waits for it (spinning), so it must be a few
    /// instructions that neither block nor call the library: the getters of plain fields.
    #[inline]
    pub(crate) fn with<T: Any + Send + Sync, R>(
        &self,
        token: Token,
        kind: Kind,
        f: impl FnOnce(&T) -> R,
    ) -> Result<R> {
        self.pinned(token, kind, |o| {
            o.downcast_ref::<T>().map(f).ok_or(E_HANDLE)
        })
    }

    /// The reader side of [`Self::get`] and [`Self::with`]: pins the slot of `token`, runs
    /// `f` on its object when the token is current (E_HANDLE otherwise), and unpins, also if
    /// `f` panics.
    #[inline]
    fn pinned<R>(
        &self,
        token: Token,
        kind: Kind,
        f: impl FnOnce(&Object) -> Result<R>,
    ) -> Result<R> {
        let (slot, generation) = decode(token, kind)?;
        let Some(s) = self.slot(slot) else {
            return Err(self.miss(slot, generation, kind));
        };
        let want = ((generation as usize) << STATE_GEN_SHIFT) | kind as usize;
        struct Unpin<'a>(&'a AtomicUsize);
        impl Drop for Unpin<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(PIN, Ordering::Release);
            }
        }
        let old = s.state.fetch_add(PIN, Ordering::Acquire);
        let _pin = Unpin(&s.state);
        if old & !PIN_MASK != want {
            return Err(self.miss(slot, generation, kind));
        }
        // SAFETY: pinned on the state the token names: the slot is occupied and its object
        // stays until this reader unpins (see `vacate`).
        f(unsafe { s.object() })
    }

    /// Adds a reference to a live token and returns the new count. E_POINTER / E_HANDLE as
    /// [`Self::get`]; E_FAIL when the count would overflow.
    pub(crate) fn add_ref(&self, token: Token, kind: Kind) -> Result<u32> {
        let mut t = self.inner.write();
        let (slot, _) = self.entry(token, kind)?;
        let r = &mut t.refs[slot];
        *r = r.checked_add(1).ok_or(crate::error::E_FAIL)?;
        Ok(*r)
    }

    /// Drops one reference. When it was the last, the token becomes invalid and the object
    /// is returned (to be dropped by the caller, outside the lock); otherwise `None`.
    /// E_POINTER / E_HANDLE as [`Self::get`], and nothing changes on error.
    pub(crate) fn release<T: Any + Send + Sync>(
        &self,
        token: Token,
        kind: Kind,
    ) -> Result<Option<Arc<T>>> {
        let mut t = self.inner.write();
        let (slot, s) = self.entry(token, kind)?;
        // SAFETY: occupied (entry checked it) and we hold the lock.
        if !unsafe { s.object() }.is::<T>() {
            return Err(E_HANDLE);
        }
        t.refs[slot] -= 1;
        if t.refs[slot] > 0 {
            return Ok(None);
        }
        let object = self.vacate(&mut t, slot);
        drop(t);
        downcast(object).map(Some)
    }

    /// Invalidates a live token whatever its reference count (for destroy functions) and
    /// returns its object. E_POINTER / E_HANDLE as [`Self::get`].
    pub(crate) fn remove<T: Any + Send + Sync>(&self, token: Token, kind: Kind) -> Result<Arc<T>> {
        let mut t = self.inner.write();
        let (slot, s) = self.entry(token, kind)?;
        // SAFETY: occupied (entry checked it) and we hold the lock.
        if !unsafe { s.object() }.is::<T>() {
            return Err(E_HANDLE);
        }
        let object = self.vacate(&mut t, slot);
        drop(t);
        downcast(object)
    }

    /// The token for `obj`, with one more reference: the existing token if `obj` (by `Arc`
    /// pointer identity) is in the table, else a new one with one reference. Use it to hand an
    /// object to C (an out parameter, a callback argument); balance it with a release.
    pub(crate) fn acquire<T: Any + Send + Sync>(&self, kind: Kind, obj: &Arc<T>) -> Result<Token> {
        let ident = identity(kind, obj);
        let mut t = self.inner.write();
        if let Some(slot) = t.slot_of(&ident) {
            let r = &mut t.refs[slot];
            *r = r.checked_add(1).ok_or(crate::error::E_FAIL)?;
            let generation = self.slot(slot).expect("allocated").generation();
            return Ok(encode(slot, generation, kind));
        }
        self.occupy(&mut t, kind, ident, obj.clone())
    }

    /// The token `obj` has now, if it is in the table, without adding a reference.
    #[cfg(test)]
    pub(crate) fn token_of<T: Any + Send + Sync>(&self, kind: Kind, obj: &Arc<T>) -> Option<Token> {
        let t = self.inner.read();
        let slot = t.slot_of(&identity(kind, obj))?;
        Some(encode(slot, self.slot(slot)?.generation(), kind))
    }

    /// The number of live handles (for tests and leak checks).
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.inner.read().by_object.as_ref().map_or(0, HashMap::len)
    }

    /// Lock-free: `Ok` when `token` names a live object of `kind` (a snapshot: it may be
    /// released right after).
    #[cfg(test)]
    fn check(&self, token: Token, kind: Kind) -> Result<()> {
        let (slot, generation) = decode(token, kind)?;
        match self.slot(slot) {
            Some(s) if s.holds(generation, kind) => Ok(()),
            _ => Err(self.miss(slot, generation, kind)),
        }
    }

    /// Test hook: sets the generation of an allocated slot, keeping its kind and pins.
    #[cfg(test)]
    fn set_generation(&self, slot: usize, generation: u32) {
        let _t = self.inner.write();
        let s = self.slot(slot).expect("allocated");
        let st = s.state.load(Ordering::Acquire);
        s.state.store(
            ((generation as usize) << STATE_GEN_SHIFT) | (st & (PIN_MASK | KIND_MASK)),
            Ordering::Release,
        );
    }
}

impl Drop for HandleTable {
    fn drop(&mut self) {
        let len = self.inner.get_mut().len;
        for (level, c) in self.chunks.iter().enumerate() {
            let p = c.load(Ordering::Acquire);
            if p.is_null() {
                continue;
            }
            let n = CHUNK_BASE << level;
            for offset in 0..n {
                let slot = (CHUNK_BASE << level) - CHUNK_BASE + offset;
                if slot >= len {
                    break;
                }
                // SAFETY: exclusive access; an occupied slot's object is initialised.
                unsafe {
                    let s = &*p.add(spread(level, offset));
                    if s.state.load(Ordering::Acquire) & KIND_MASK != 0 {
                        (*s.object.get()).assume_init_drop();
                    }
                }
            }
            // SAFETY: allocated in `new_slot` with this layout.
            unsafe { std::alloc::dealloc(p as *mut u8, Self::chunk_layout(level)) };
        }
    }
}

/// The kind stored in a slot's low bits (1..=4 for an occupied slot).
fn kind_from_bits(bits: usize) -> Kind {
    match bits {
        1 => Kind::Service,
        2 => Kind::Client,
        3 => Kind::SessionManager,
        _ => Kind::Session,
    }
}

/// The handle table of the process that loaded the library.
static ROOT: HandleTable = HandleTable::new();

/// The address of this process's table when it is not [`ROOT`] (0: ROOT). Bit 0 is set by
/// the fork handler in a child: the table is then the parent's, replaced on the next use.
static CURRENT: AtomicUsize = AtomicUsize::new(0);

fn table_at(word: usize) -> &'static HandleTable {
    if word == 0 {
        &ROOT
    } else {
        // SAFETY: a nonzero word (bit 0 clear) is the address of a leaked table (`forked`).
        unsafe { &*(word as *const HandleTable) }
    }
}

/// The handle table of this process.
#[inline]
pub(crate) fn table() -> &'static HandleTable {
    let word = CURRENT.load(Ordering::Acquire);
    if word & 1 == 0 {
        table_at(word)
    } else {
        forked(word)
    }
}

/// First use of the library in a forked child: a new table, inheriting the parent's. The
/// tables are leaked: the child's for as long as the process lives, the parent's because
/// freeing its objects would touch the parent's threads, locks and descriptors.
#[cold]
fn forked(word: usize) -> &'static HandleTable {
    let parent = table_at(word & !1);
    let fresh = Box::into_raw(Box::new(HandleTable::forked_from(parent))) as usize;
    match CURRENT.compare_exchange(word, fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => table_at(fresh),
        Err(now) => {
            // Another thread of this child made it first.
            // SAFETY: ours, never published.
            drop(unsafe { Box::from_raw(fresh as *mut HandleTable) });
            table_at(now)
        }
    }
}

/// The `pthread_atfork` child handler: runs in the child's only thread, so it only sets a
/// bit (async-signal-safe, no lock, no allocation).
#[cfg(unix)]
extern "C" fn after_fork_in_child() {
    CURRENT.fetch_or(1, Ordering::Relaxed);
}

/// Registers the fork handler, once per process (inherited by children). Called before the
/// first handle is made, so every process holding handles has it. A flag, not a `Once`: a
/// `Once` that a parent thread was running at a fork stays "running" for ever in the child.
fn watch_forks() {
    static WATCHING: AtomicBool = AtomicBool::new(false);
    if !WATCHING.load(Ordering::Relaxed) && !WATCHING.swap(true, Ordering::AcqRel) {
        #[cfg(unix)]
        // SAFETY: registers a handler that only touches an atomic.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        }
    }
}

/// An opaque C handle type (`msgr_service`, ...) and the kind of its tokens.
pub(crate) trait Opaque {
    /// The kind of object behind handles of this type.
    const KIND: Kind;
    /// The C type's name, for the detail of a refused handle.
    const NAME: &'static str;
}

impl Opaque for super::msgr_service {
    const KIND: Kind = Kind::Service;
    const NAME: &'static str = "msgr_service";
}
impl Opaque for super::msgr_client {
    const KIND: Kind = Kind::Client;
    const NAME: &'static str = "msgr_client";
}
impl Opaque for super::msgr_session_manager {
    const KIND: Kind = Kind::SessionManager;
    const NAME: &'static str = "msgr_session_manager";
}
impl Opaque for super::msgr_session {
    const KIND: Kind = Kind::Session;
    const NAME: &'static str = "msgr_session";
}

/// Notes why a handle of type `H` was refused with `hr` (see `crate::detail`).
#[cold]
fn refused<H: Opaque>(hr: &Hr) {
    let name = H::NAME;
    match *hr {
        E_POINTER => crate::detail::detail!("the {name} handle is NULL"),
        E_HANDLE => crate::detail::detail!(
            "not a live {name} handle: released, destroyed, forged or of another kind"
        ),
        E_INHERITED => crate::detail::detail!(
            "the {name} handle was inherited across fork(): it belongs to the parent process"
        ),
        _ => {}
    }
}

// Typed front ends over the process's table: the handle's C type fixes the kind.

/// `f` on the object behind handle `h`, without taking a reference (see
/// [`HandleTable::with`]: for plain getters only).
#[inline]
pub(crate) fn with<H: Opaque, T: Any + Send + Sync, R>(
    h: *const H,
    f: impl FnOnce(&T) -> R,
) -> Result<R> {
    table()
        .with(h as Token, H::KIND, f)
        .inspect_err(refused::<H>)
}

/// The object behind handle `h` (see [`HandleTable::get`]).
#[inline]
pub(crate) fn get<H: Opaque, T: Any + Send + Sync>(h: *const H) -> Result<Arc<T>> {
    table().get(h as Token, H::KIND).inspect_err(refused::<H>)
}

/// A new handle with one reference for an object not yet in the table.
pub(crate) fn insert<H: Opaque, T: Any + Send + Sync>(obj: Arc<T>) -> Result<*mut H> {
    watch_forks();
    table().insert(H::KIND, obj).map(|t| t as *mut H)
}

/// The handle for `obj` with one more reference (see [`HandleTable::acquire`]).
pub(crate) fn acquire<H: Opaque, T: Any + Send + Sync>(obj: &Arc<T>) -> Result<*mut H> {
    table().acquire(H::KIND, obj).map(|t| t as *mut H)
}

/// One more reference to `h`; returns the new count.
pub(crate) fn add_ref<H: Opaque>(h: *const H) -> Result<u32> {
    table()
        .add_ref(h as Token, H::KIND)
        .inspect_err(refused::<H>)
}

/// One reference less to `h`; the object when it was the last. Releasing NULL does nothing
/// (`Ok(None)`), as every release and destroy function promises (docs/CONTRACT.md, "Objects
/// and their lifetimes"); so does releasing a handle inherited across a fork (nothing is
/// freed, the handle keeps answering E_INHERITED).
pub(crate) fn release<H: Opaque, T: Any + Send + Sync>(h: *const H) -> Result<Option<Arc<T>>> {
    if h.is_null() {
        return Ok(None);
    }
    match table().release(h as Token, H::KIND) {
        Err(E_INHERITED) => Ok(None),
        r => r.inspect_err(refused::<H>),
    }
}

/// Invalidates `h` whatever its count and returns its object; NULL gives `Ok(None)`, and so
/// does a handle inherited across a fork (as [`release`]).
/// Checks a handle without keeping the object: `Ok` for a live handle of the right kind.
#[cfg(test)]
pub(crate) fn check<H: Opaque>(h: *const H) -> std::result::Result<(), Hr> {
    table().check(h as Token, H::KIND)
}

pub(crate) fn remove<H: Opaque, T: Any + Send + Sync>(h: *const H) -> Result<Option<Arc<T>>> {
    if h.is_null() {
        return Ok(None);
    }
    match table().remove(h as Token, H::KIND) {
        Err(E_INHERITED) => Ok(None),
        r => r.map(Some).inspect_err(refused::<H>),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Obj(u64);
    struct Other;

    /// xorshift64*: deterministic pseudo-random values for the forged-token tests.
    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed >> 12;
        *seed ^= *seed << 25;
        *seed ^= *seed >> 27;
        seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    #[test]
    fn insert_get_release() {
        let t = HandleTable::new();
        let a = t.insert(Kind::Session, Arc::new(Obj(7))).unwrap();
        assert_ne!(a, 0);
        assert_ne!(a & 7, 0, "tokens are never 8-aligned");
        assert_eq!(t.get::<Obj>(a, Kind::Session).unwrap().0, 7);
        assert_eq!(t.add_ref(a, Kind::Session), Ok(2));
        assert!(t.release::<Obj>(a, Kind::Session).unwrap().is_none());
        assert_eq!(t.get::<Obj>(a, Kind::Session).unwrap().0, 7);
        let last = t.release::<Obj>(a, Kind::Session).unwrap().unwrap();
        assert_eq!(last.0, 7);
        assert_eq!(t.get::<Obj>(a, Kind::Session).err(), Some(E_HANDLE));
        assert_eq!(t.release::<Obj>(a, Kind::Session).err(), Some(E_HANDLE));
        assert_eq!(t.add_ref(a, Kind::Session).err(), Some(E_HANDLE));
        assert_eq!(t.live(), 0);
    }

    #[test]
    fn with_reads_in_place_and_checks_like_get() {
        let t = HandleTable::new();
        let o = Arc::new(Obj(9));
        let a = t.insert(Kind::Session, o.clone()).unwrap();
        assert_eq!(t.with(a, Kind::Session, |x: &Obj| x.0), Ok(9));
        assert_eq!(Arc::strong_count(&o), 2, "no reference taken");
        assert_eq!(t.with(0, Kind::Session, |x: &Obj| x.0), Err(E_POINTER));
        assert_eq!(t.with(a, Kind::Client, |x: &Obj| x.0), Err(E_HANDLE));
        assert_eq!(t.with(a, Kind::Session, |_: &Other| ()), Err(E_HANDLE));
        assert_eq!(
            t.with(a ^ (1 << 40), Kind::Session, |x: &Obj| x.0),
            Err(E_HANDLE),
            "forged"
        );
        // A panicking reader leaves the slot unpinned: the release below would spin for
        // ever otherwise.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            t.with(a, Kind::Session, |_: &Obj| panic!("reader"))
        }));
        assert!(r.is_err());
        assert!(t.release::<Obj>(a, Kind::Session).unwrap().is_some());
        assert_eq!(
            t.with(a, Kind::Session, |x: &Obj| x.0),
            Err(E_HANDLE),
            "released"
        );
    }

    #[test]
    fn null_is_e_pointer() {
        let t = HandleTable::new();
        assert_eq!(t.get::<Obj>(0, Kind::Client).err(), Some(E_POINTER));
        assert_eq!(t.add_ref(0, Kind::Client).err(), Some(E_POINTER));
        assert_eq!(t.release::<Obj>(0, Kind::Client).err(), Some(E_POINTER));
        assert_eq!(t.remove::<Obj>(0, Kind::Client).err(), Some(E_POINTER));
    }

    #[test]
    fn typed_release_of_null_does_nothing() {
        let r = release::<super::super::msgr_session, Obj>(std::ptr::null());
        assert!(matches!(r, Ok(None)));
        assert_eq!(
            get::<super::super::msgr_session, Obj>(std::ptr::null()).err(),
            Some(E_POINTER)
        );
    }

    #[test]
    fn typed_front_end() {
        use super::super::{msgr_client, msgr_session};
        let o = Arc::new(Obj(11));
        let s: *mut msgr_session = insert(o.clone()).unwrap();
        let got: Arc<Obj> = get(s).unwrap(); // *mut coerces; the type fixes the kind
        assert_eq!(got.0, 11);
        assert_eq!(acquire::<msgr_session, _>(&o).unwrap(), s);
        assert_eq!(add_ref(s), Ok(3));
        assert_eq!(get::<msgr_client, Obj>(s.cast()).err(), Some(E_HANDLE));
        assert_eq!(check(s), Ok(()));
        assert!(release::<_, Obj>(s).unwrap().is_none());
        assert!(remove::<_, Obj>(s).unwrap().is_some());
        assert_eq!(check(s), Err(E_HANDLE));
        assert_eq!(release::<_, Obj>(s).err(), Some(E_HANDLE));
    }

    /// A forked child's table: inherited tokens give E_INHERITED (release and remove too, at
    /// this level), stale ones E_HANDLE, and the child's own tokens never coincide with the
    /// inherited ones, also through a second fork and a slot exhausted in the parent.
    #[test]
    fn forked_child_tables() {
        let parent: &'static HandleTable = Box::leak(Box::new(HandleTable::new()));
        let live = parent.insert(Kind::Client, Arc::new(Obj(1))).unwrap();
        let stale = parent.insert(Kind::Session, Arc::new(Obj(2))).unwrap();
        parent
            .release::<Obj>(stale, Kind::Session)
            .unwrap()
            .unwrap();
        let reused = parent.insert(Kind::Session, Arc::new(Obj(3))).unwrap();
        let exhausted = parent.insert(Kind::Service, Arc::new(Obj(4))).unwrap();
        parent.set_generation(decode(exhausted, Kind::Service).unwrap().0, MAX_GEN);
        let exhausted = encode(
            decode(exhausted, Kind::Service).unwrap().0,
            MAX_GEN,
            Kind::Service,
        );

        let child: &'static HandleTable = Box::leak(Box::new(HandleTable::forked_from(parent)));
        for (tok, kind) in [
            (live, Kind::Client),
            (reused, Kind::Session),
            (exhausted, Kind::Service),
        ] {
            assert_eq!(child.get::<Obj>(tok, kind).err(), Some(E_INHERITED));
            assert_eq!(
                child.with(tok, kind, |o: &Obj| o.0).err(),
                Some(E_INHERITED)
            );
            assert_eq!(child.check(tok, kind).err(), Some(E_INHERITED));
            assert_eq!(child.add_ref(tok, kind).err(), Some(E_INHERITED));
            assert_eq!(child.release::<Obj>(tok, kind).err(), Some(E_INHERITED));
            assert_eq!(child.remove::<Obj>(tok, kind).err(), Some(E_INHERITED));
        }
        assert_eq!(child.get::<Obj>(stale, Kind::Session).err(), Some(E_HANDLE));
        assert_eq!(
            child.get::<Obj>(live, Kind::Session).err(),
            Some(E_HANDLE),
            "wrong kind"
        );
        assert_eq!(child.get::<Obj>(0, Kind::Session).err(), Some(E_POINTER));

        // The child's slots start above the parent's generations; the exhausted one is skipped.
        let mine: Vec<Token> = (0..4)
            .map(|i| child.insert(Kind::Session, Arc::new(Obj(10 + i))).unwrap())
            .collect();
        for (i, &t) in mine.iter().enumerate() {
            assert_eq!(child.get::<Obj>(t, Kind::Session).unwrap().0, 10 + i as u64);
            let (slot, generation) = decode(t, Kind::Session).unwrap();
            assert_ne!(slot, 2, "exhausted in the parent");
            assert!(generation > parent.slot(slot).map_or(0, Slot::generation));
            assert_eq!(parent.check(t, Kind::Session).err(), Some(E_HANDLE));
        }
        assert_eq!(child.live(), 4);
        assert_eq!(parent.live(), 3, "the parent's table is not written");

        // A grandchild inherits both.
        let grandchild = HandleTable::forked_from(child);
        assert_eq!(
            grandchild.get::<Obj>(mine[0], Kind::Session).err(),
            Some(E_INHERITED)
        );
        assert_eq!(
            grandchild.get::<Obj>(live, Kind::Client).err(),
            Some(E_INHERITED)
        );
        let t = grandchild.insert(Kind::Session, Arc::new(Obj(20))).unwrap();
        assert!(!mine.contains(&t) && t != reused);
        assert_eq!(grandchild.get::<Obj>(t, Kind::Session).unwrap().0, 20);
    }

    #[test]
    fn wrong_kind_and_wrong_type() {
        let t = HandleTable::new();
        let a = t.insert(Kind::Client, Arc::new(Obj(1))).unwrap();
        for k in [Kind::Service, Kind::SessionManager, Kind::Session] {
            assert_eq!(t.get::<Obj>(a, k).err(), Some(E_HANDLE));
            assert_eq!(t.add_ref(a, k).err(), Some(E_HANDLE));
            assert_eq!(t.release::<Obj>(a, k).err(), Some(E_HANDLE));
            // The same slot and generation with another kind's bits is not valid either.
            assert_eq!(t.get::<Obj>((a & !7) | k as usize, k).err(), Some(E_HANDLE));
        }
        assert_eq!(t.get::<Other>(a, Kind::Client).err(), Some(E_HANDLE));
        assert_eq!(t.release::<Other>(a, Kind::Client).err(), Some(E_HANDLE));
        assert_eq!(t.remove::<Other>(a, Kind::Client).err(), Some(E_HANDLE));
        // Nothing changed: still one reference.
        assert!(t.release::<Obj>(a, Kind::Client).unwrap().is_some());
    }

    #[test]
    fn reuse_after_release_gives_a_new_token() {
        let t = HandleTable::new();
        let a = t.insert(Kind::Session, Arc::new(Obj(1))).unwrap();
        t.release::<Obj>(a, Kind::Session).unwrap().unwrap();
        let b = t.insert(Kind::Session, Arc::new(Obj(2))).unwrap();
        assert_ne!(a, b);
        // Same slot, next generation.
        let (sa, ga) = decode(a, Kind::Session).unwrap();
        assert_eq!(decode(b, Kind::Session).unwrap(), (sa, ga + 1));
        assert_eq!(t.get::<Obj>(a, Kind::Session).err(), Some(E_HANDLE));
        assert_eq!(t.get::<Obj>(b, Kind::Session).unwrap().0, 2);
        assert_eq!(t.release::<Obj>(a, Kind::Session).err(), Some(E_HANDLE));
        assert_eq!(
            t.get::<Obj>(b, Kind::Session).unwrap().0,
            2,
            "stale release is harmless"
        );
    }

    #[test]
    fn free_slots_are_reused_oldest_first() {
        let t = HandleTable::new();
        let toks: Vec<_> = (0..4)
            .map(|i| t.insert(Kind::Session, Arc::new(Obj(i))).unwrap())
            .collect();
        for &x in &toks[..3] {
            t.release::<Obj>(x, Kind::Session).unwrap();
        }
        let n = t.insert(Kind::Session, Arc::new(Obj(9))).unwrap();
        assert_eq!(
            decode(n, Kind::Session).unwrap().0,
            decode(toks[0], Kind::Session).unwrap().0
        );
    }

    #[test]
    fn exhausted_generation_retires_the_slot() {
        let t = HandleTable::new();
        let a = t.insert(Kind::Service, Arc::new(Obj(1))).unwrap();
        t.set_generation(0, MAX_GEN);
        let a_last = encode(0, MAX_GEN, Kind::Service);
        assert_ne!(a, a_last);
        t.release::<Obj>(a_last, Kind::Service).unwrap().unwrap();
        let b = t.insert(Kind::Service, Arc::new(Obj(2))).unwrap();
        assert_eq!(
            decode(b, Kind::Service).unwrap().0,
            1,
            "slot 0 retired, never reused"
        );
        // Neither the first nor the last token of the retired slot is valid.
        assert_eq!(t.get::<Obj>(a, Kind::Service).err(), Some(E_HANDLE));
        assert_eq!(t.get::<Obj>(a_last, Kind::Service).err(), Some(E_HANDLE));
    }

    #[test]
    fn acquire_returns_the_same_token_while_live() {
        let t = HandleTable::new();
        let o = Arc::new(Obj(5));
        let a = t.acquire(Kind::Session, &o).unwrap();
        let b = t.acquire(Kind::Session, &o).unwrap();
        assert_eq!(a, b);
        assert_eq!(t.token_of(Kind::Session, &o), Some(a));
        assert_eq!(t.insert(Kind::Session, o.clone()).err(), Some(E_UNEXPECTED));
        assert!(t.release::<Obj>(a, Kind::Session).unwrap().is_none());
        assert!(t.release::<Obj>(a, Kind::Session).unwrap().is_some());
        assert_eq!(t.token_of(Kind::Session, &o), None);
        let c = t.acquire(Kind::Session, &o).unwrap();
        assert_ne!(a, c, "a new life gets a new token");
        assert_eq!(t.get::<Obj>(a, Kind::Session).err(), Some(E_HANDLE));
        // Another object gets another token.
        let d = t.acquire(Kind::Session, &Arc::new(Obj(6))).unwrap();
        assert_ne!(c, d);
    }

    #[test]
    fn remove_ignores_the_count() {
        let t = HandleTable::new();
        let a = t.insert(Kind::Client, Arc::new(Obj(3))).unwrap();
        t.add_ref(a, Kind::Client).unwrap();
        t.add_ref(a, Kind::Client).unwrap();
        assert_eq!(t.remove::<Obj>(a, Kind::Client).unwrap().0, 3);
        assert_eq!(t.get::<Obj>(a, Kind::Client).err(), Some(E_HANDLE));
        assert_eq!(t.live(), 0);
    }

    #[test]
    fn forged_values_are_rejected() {
        let t = HandleTable::new();
        let objs: Vec<_> = (0..64).map(|i| Arc::new(Obj(i))).collect();
        let mut toks: Vec<_> = objs
            .iter()
            .map(|o| t.acquire(Kind::Session, o).unwrap())
            .collect();
        // Churn so that generations are not all 1.
        for o in objs.iter().take(32) {
            let tok = t.token_of(Kind::Session, o).unwrap();
            t.release::<Obj>(tok, Kind::Session).unwrap();
            toks.push(t.acquire(Kind::Session, o).unwrap());
        }
        let live: std::collections::HashSet<_> = objs
            .iter()
            .map(|o| t.token_of(Kind::Session, o).unwrap())
            .collect();
        let all = [
            Kind::Service,
            Kind::Client,
            Kind::SessionManager,
            Kind::Session,
        ];
        let probe = |v: usize| {
            for k in all {
                let r = t.get::<Obj>(v, k);
                if k == Kind::Session && live.contains(&v) {
                    assert!(r.is_ok());
                } else if v == 0 {
                    assert_eq!(r.err(), Some(E_POINTER));
                } else {
                    assert_eq!(r.err(), Some(E_HANDLE), "{v:#x} {k:?}");
                }
            }
        };
        // Small integers.
        for v in 0..100_000usize {
            probe(v);
        }
        // Random words.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200_000 {
            probe(rng(&mut seed) as usize);
        }
        // Real heap pointers, aligned and misaligned, and pointers to the objects themselves.
        let heap: Vec<Box<[u8; 24]>> = (0..256).map(|_| Box::new([0u8; 24])).collect();
        for b in &heap {
            for off in 0..24 {
                probe(b.as_ptr() as usize + off);
            }
        }
        for o in &objs {
            for off in 0..16 {
                probe(Arc::as_ptr(o) as usize + off);
            }
        }
        // Live tokens with single bits flipped.
        for &tok in &live {
            for bit in 0..usize::BITS {
                probe(tok ^ (1 << bit));
            }
        }
        probe(usize::MAX);
        // Stale tokens from the churn.
        for &tok in &toks {
            probe(tok);
        }
    }

    static DROP_TABLE: HandleTable = HandleTable::new();

    #[test]
    fn objects_are_dropped_outside_the_lock() {
        // An object whose drop uses the table (as a user destroy callback may) must not
        // deadlock: release/remove return it instead of dropping it under the lock.
        struct Reentrant(Token);
        impl Drop for Reentrant {
            fn drop(&mut self) {
                assert!(DROP_TABLE.get::<Obj>(self.0, Kind::Service).is_ok());
                let other = DROP_TABLE.insert(Kind::Service, Arc::new(Obj(0))).unwrap();
                DROP_TABLE.release::<Obj>(other, Kind::Service).unwrap();
            }
        }
        let keep = DROP_TABLE.insert(Kind::Service, Arc::new(Obj(1))).unwrap();
        let a = DROP_TABLE
            .insert(Kind::Client, Arc::new(Reentrant(keep)))
            .unwrap();
        drop(DROP_TABLE.release::<Reentrant>(a, Kind::Client).unwrap());
        let b = DROP_TABLE
            .insert(Kind::Client, Arc::new(Reentrant(keep)))
            .unwrap();
        drop(DROP_TABLE.remove::<Reentrant>(b, Kind::Client).unwrap());
    }

    #[test]
    fn concurrent_insert_get_release() {
        static T: HandleTable = HandleTable::new();
        let shared = Arc::new(Obj(u64::MAX));
        let shared_tok = T.acquire(Kind::Session, &shared).unwrap();
        let stale = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for th in 0..8u64 {
                let stale = &stale;
                let shared = &shared;
                s.spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..5_000u64 {
                        let v = th << 32 | i;
                        let tok = T.insert(Kind::Session, Arc::new(Obj(v))).unwrap();
                        assert_eq!(T.get::<Obj>(tok, Kind::Session).unwrap().0, v);
                        mine.push((tok, v));
                        // Shared object: same token from every thread.
                        let st = T.acquire(Kind::Session, shared).unwrap();
                        assert_eq!(st, shared_tok);
                        assert_eq!(T.get::<Obj>(st, Kind::Session).unwrap().0, u64::MAX);
                        assert!(T.release::<Obj>(st, Kind::Session).unwrap().is_none());
                        if i % 3 == 0 {
                            let (tok, v) = mine.swap_remove(mine.len() / 2);
                            assert_eq!(T.release::<Obj>(tok, Kind::Session).unwrap().unwrap().0, v);
                            stale.store(tok, Ordering::Relaxed);
                        }
                        // Some thread's released token: never valid again, even after its
                        // slot was reused.
                        let old = stale.load(Ordering::Relaxed);
                        if old != 0 {
                            assert_eq!(T.get::<Obj>(old, Kind::Session).err(), Some(E_HANDLE));
                        }
                    }
                    for (tok, v) in mine {
                        assert_eq!(T.get::<Obj>(tok, Kind::Session).unwrap().0, v);
                        assert_eq!(T.release::<Obj>(tok, Kind::Session).unwrap().unwrap().0, v);
                    }
                });
            }
        });
        assert!(T
            .release::<Obj>(shared_tok, Kind::Session)
            .unwrap()
            .is_some());
        assert_eq!(T.live(), 0);
    }
}

#[cfg(test)]
mod lock_free {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn slot_geometry() {
        let mut expect = (0usize, 0usize);
        for slot in 0..100_000usize {
            assert_eq!(locate(slot), expect, "slot {slot}");
            expect.1 += 1;
            if expect.1 == CHUNK_BASE << expect.0 {
                expect = (expect.0 + 1, 0);
            }
        }
        assert!(locate(MAX_SLOTS - 1).0 < LEVELS);
        for level in 0..6 {
            let n = CHUNK_BASE << level;
            let mut seen = vec![false; n];
            for offset in 0..n {
                let p = spread(level, offset);
                assert!(p < n && !seen[p], "spread is a bijection");
                seen[p] = true;
            }
            assert!(
                spread(level, 1) - spread(level, 0) >= 8,
                "neighbours are 8 slots apart"
            );
        }
    }

    /// Readers never see another object than the one their token named (the slots are reused
    /// with new generations all the time) while a writer keeps emptying and refilling the very slots they read.
    #[test]
    fn readers_race_writers_on_the_same_slots() {
        static T: HandleTable = HandleTable::new();
        struct Tagged {
            token: AtomicUsize,
        }
        let tokens: Vec<AtomicUsize> = (0..4).map(|_| AtomicUsize::new(0)).collect();
        let stop = AtomicBool::new(false);
        let seen = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        for t in &tokens {
                            let tok = t.load(Ordering::Acquire);
                            if let Ok(o) = T.get::<Tagged>(tok, Kind::Session) {
                                assert_eq!(o.token.load(Ordering::SeqCst), tok);
                                seen.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
            // At least 50000 refills, and on until the readers (who may get no CPU for a while
            // on a loaded machine) have read a few thousand times, for at most 20 s.
            let start = std::time::Instant::now();
            let mut round = 0usize;
            while round < 50_000
                || (seen.load(Ordering::Relaxed) < 5_000 && start.elapsed().as_secs() < 20)
            {
                let i = round % tokens.len();
                let old = tokens[i].swap(0, Ordering::AcqRel);
                if old != 0 {
                    assert!(T.release::<Tagged>(old, Kind::Session).unwrap().is_some());
                }
                let o = Arc::new(Tagged {
                    token: AtomicUsize::new(0),
                });
                let tok = T.insert(Kind::Session, Arc::clone(&o)).unwrap();
                o.token.store(tok, Ordering::SeqCst);
                tokens[i].store(tok, Ordering::Release);
                round += 1;
            }
            stop.store(true, Ordering::Relaxed);
        });
        for t in &tokens {
            let o = T
                .release::<Tagged>(t.load(Ordering::Acquire), Kind::Session)
                .unwrap();
            assert!(o.is_some());
        }
        assert_eq!(T.live(), 0);
    }
}

#[cfg(test)]
mod bench {
    use super::*;

    /// `cargo test --release --lib handles::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn get_cost() {
        let t = HandleTable::new();
        let objs: Vec<_> = (0..1000).map(|i| Arc::new(i as u64)).collect();
        let toks: Vec<_> = objs
            .iter()
            .map(|o| t.acquire(Kind::Session, o).unwrap())
            .collect();
        let n = 10_000_000;
        let start = std::time::Instant::now();
        let mut sum = 0u64;
        for i in 0..n {
            sum += *t.get::<u64>(toks[i % toks.len()], Kind::Session).unwrap();
        }
        let el = start.elapsed();
        println!(
            "get+drop: {:.1} ns (sum {sum})",
            el.as_nanos() as f64 / n as f64
        );
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let start = std::time::Instant::now();
                    let mut sum = 0u64;
                    for i in 0..n / 4 {
                        sum += *t.get::<u64>(toks[i % toks.len()], Kind::Session).unwrap();
                    }
                    let el = start.elapsed();
                    println!(
                        "4 threads: {:.1} ns (sum {sum})",
                        el.as_nanos() as f64 / (n / 4) as f64
                    );
                });
            }
        });
    }
}
