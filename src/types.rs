//! The documented enumerations, limits and the small value types shared by the core.

use crate::detail::detail;
use crate::error::{Hr, Result, E_INVALIDARG};
use std::alloc::{self, Layout};
use std::fmt;
use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};

/// SESSION_STATE: the state of a session (docs/CONTRACT.md, "Enumerations").
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// SS_UNKNOWN
    Unknown = 0,
    /// SS_READY: created, nobody invited yet.
    Ready = 1,
    /// SS_INVITATION: an invitation is outstanding.
    Invitation = 2,
    /// SS_ACCEPTED: accepted, the application is being started.
    Accepted = 3,
    /// SS_CONNECTED: both sides are connected.
    Connected = 4,
    /// SS_CANCELLED (terminal)
    Cancelled = 5,
    /// SS_DECLINED (terminal)
    Declined = 6,
    /// SS_TERMINATED (terminal)
    Terminated = 7,
}

impl SessionState {
    /// The state whose value is `v` (SS_UNKNOWN for a value that is none).
    pub fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Ready,
            2 => Self::Invitation,
            3 => Self::Accepted,
            4 => Self::Connected,
            5 => Self::Cancelled,
            6 => Self::Declined,
            7 => Self::Terminated,
            _ => Self::Unknown,
        }
    }

    /// True for SS_CANCELLED, SS_DECLINED and SS_TERMINATED.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Cancelled | Self::Declined | Self::Terminated)
    }
}

/// SESSION_FLAGS bits.
pub mod session_flags {
    /// SF_NONE
    pub const SF_NONE: u32 = 0;
    /// SF_INVITER: this side sent the invitation.
    pub const SF_INVITER: u32 = 0x1;
    /// SF_INVITEE: this side received the invitation.
    pub const SF_INVITEE: u32 = 0x2;
    /// SF_APP_INVITE_COMPATIBLE (defined for completeness; never set by this implementation).
    pub const SF_APP_INVITE_COMPATIBLE: u32 = 0x4;
}

/// LockStatus: the Lock and Key status of one session manager.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockStatus {
    /// LOCK_NOTINITIALIZED: the client is not signed in.
    NotInitialized = 1,
    /// LOCK_INITIALIZED: locked, ready for a challenge.
    Initialized = 2,
    /// LOCK_PENDINGRESULT: a challenge was issued, waiting for the response.
    PendingResult = 3,
    /// LOCK_UNLOCKED
    Unlocked = 4,
    /// LOCK_UNLOCKFAILED
    UnlockFailed = 5,
    /// LOCK_DISABLED: Lock and Key is not in force.
    Disabled = 6,
}

impl LockStatus {
    /// True when the gated calls are allowed.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Unlocked | Self::Disabled)
    }
}

/// The limits of docs/CONTRACT.md, "Limits".
pub mod limits {
    /// A GUID in braced form: 38 characters (39 with the terminator).
    pub const GUID_CHARS: usize = 38;
    /// Application name, characters.
    pub const APP_NAME_CHARS: usize = 256;
    /// Application URL, characters.
    pub const APP_URL_CHARS: usize = 256;
    /// Application path, characters.
    pub const APP_PATH_CHARS: usize = 260;
    /// App data for Invite/Accept/Decline/Cancel, bytes.
    pub const APP_DATA_BYTES: usize = 512;
    /// Context data, characters.
    pub const CONTEXT_DATA_CHARS: usize = 300;
    /// Context data sends per side.
    pub const CONTEXT_DATA_SENDS: u32 = 5;
    /// LocalAddress, characters.
    pub const LOCAL_ADDRESS_CHARS: usize = 30;
    /// Sign-in name, characters (ours).
    pub const SIGN_IN_NAME_CHARS: usize = 256;
    /// Lock and Key application ID and key, characters (ours).
    pub const LOCK_FIELD_CHARS: usize = 256;
}

/// An immutable, cheaply cloned string that also carries a NUL terminator, so the C layer
/// hands it to callbacks without copying. It never contains an interior NUL.
///
/// One allocation holds a reference count, the length and the bytes with their terminator;
/// a `Text` is a thin pointer to it. Dropping a text that holds the only reference frees it
/// after a load of the count, without an atomic read-modify-write (no other thread can add a
/// reference to a text it has none of); only shared texts pay the decrement.
pub struct Text(NonNull<TextHeader>);

/// The start of a [`Text`]'s allocation; the bytes and their terminator follow it.
#[repr(C)]
struct TextHeader {
    count: AtomicUsize,
    /// Bytes of the string, without the terminator.
    len: usize,
}

/// Where texts are allocated. Events carry texts from the thread that raises them to the one
/// that delivers them, which frees them one after another: with mimalloc that free is a push
/// on a per-thread list, where the system allocator of a multi-threaded process pays an
/// atomic compare-and-swap once its small per-thread cache is full (benches/NOTES.md).
/// Debug builds, the ones valgrind and the sanitizers check, use the global allocator, so
/// those tools see every text.
mod heap {
    #[cfg(not(debug_assertions))]
    use std::alloc::GlobalAlloc;
    use std::alloc::Layout;

    /// Allocates `layout` (of non-zero size); null when out of memory.
    ///
    /// # Safety
    /// As [`std::alloc::alloc`].
    #[inline]
    pub(super) unsafe fn alloc(layout: Layout) -> *mut u8 {
        #[cfg(not(debug_assertions))]
        return mimalloc::MiMalloc.alloc(layout);
        #[cfg(debug_assertions)]
        return std::alloc::alloc(layout);
    }

    /// Frees what [`alloc`] returned for `layout`.
    ///
    /// # Safety
    /// As [`std::alloc::dealloc`].
    #[inline]
    pub(super) unsafe fn dealloc(p: *mut u8, layout: Layout) {
        #[cfg(not(debug_assertions))]
        mimalloc::MiMalloc.dealloc(p, layout);
        #[cfg(debug_assertions)]
        std::alloc::dealloc(p, layout);
    }
}

// SAFETY: the bytes never change after construction, and the count is atomic: a `Text` is
// as shareable as an `Arc<str>`.
unsafe impl Send for Text {}
unsafe impl Sync for Text {}

impl Text {
    /// Makes a `Text`; fails with E_INVALIDARG when `s` contains a NUL character.
    pub fn new(s: &str) -> Result<Self> {
        if s.as_bytes().contains(&0) {
            detail!("a string holds a NUL character");
            return Err(E_INVALIDARG);
        }
        Ok(Self::copy_of(s))
    }

    /// The empty text.
    pub fn empty() -> Self {
        Self::copy_of("")
    }

    /// The layout of the allocation of a text of `len` bytes: the header, then the bytes and
    /// the terminator.
    fn layout(len: usize) -> Layout {
        size_of::<TextHeader>()
            .checked_add(len)
            .and_then(|n| n.checked_add(1))
            .and_then(|n| Layout::from_size_align(n, align_of::<TextHeader>()).ok())
            .expect("text length")
    }

    /// One allocation holding `s` (which has no NUL) and a terminator.
    fn copy_of(s: &str) -> Self {
        let layout = Self::layout(s.len());
        // SAFETY: the layout has a non-zero size; the header and `s.len() + 1` bytes are
        // written within it before the pointer is used.
        unsafe {
            let p = heap::alloc(layout).cast::<TextHeader>();
            let Some(p) = NonNull::new(p) else {
                alloc::handle_alloc_error(layout)
            };
            p.as_ptr().write(TextHeader {
                count: AtomicUsize::new(1),
                len: s.len(),
            });
            let bytes = p.as_ptr().add(1).cast::<u8>();
            std::ptr::copy_nonoverlapping(s.as_ptr(), bytes, s.len());
            bytes.add(s.len()).write(0);
            Text(p)
        }
    }

    fn header(&self) -> &TextHeader {
        // SAFETY: the allocation lives while this reference to it does.
        unsafe { self.0.as_ref() }
    }

    fn bytes(&self) -> *const u8 {
        // SAFETY: the bytes follow the header within the allocation.
        unsafe { self.0.as_ptr().add(1).cast::<u8>() }
    }

    /// The string without its terminator.
    pub fn as_str(&self) -> &str {
        // SAFETY: `len` bytes of UTF-8 copied from a `str` at construction, never changed.
        unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                self.bytes(),
                self.header().len,
            ))
        }
    }

    /// A pointer to the NUL-terminated bytes, valid while this `Text` (or a clone) lives.
    pub fn as_c_ptr(&self) -> *const std::ffi::c_char {
        self.bytes().cast()
    }

    /// Length in characters (Unicode scalar values).
    pub fn chars(&self) -> usize {
        self.as_str().chars().count()
    }
}

impl Clone for Text {
    fn clone(&self) -> Self {
        let before = self.header().count.fetch_add(1, Ordering::Relaxed);
        if before > isize::MAX as usize {
            std::process::abort();
        }
        Text(self.0)
    }
}

impl Drop for Text {
    fn drop(&mut self) {
        let h = self.header();
        // A count of 1 is this reference alone: nobody can add one meanwhile. The acquire
        // load (or, for a shared text, the decrement and the fence) orders the free after
        // the other references' drops, which decrement with release.
        if h.count.load(Ordering::Acquire) != 1 && h.count.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        // SAFETY: the layout `copy_of` allocated with, which `Self::layout` checked then.
        let layout = unsafe {
            Layout::from_size_align_unchecked(
                size_of::<TextHeader>() + h.len + 1,
                align_of::<TextHeader>(),
            )
        };
        // SAFETY: the last reference: allocated by `copy_of` with this layout.
        unsafe { heap::dealloc(self.0.as_ptr().cast(), layout) }
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Checks a string against a limit in characters; E_INVALIDARG (or `over`) when too long.
pub fn check_chars(s: &str, max: usize, over: Hr) -> Result<()> {
    // Fast path: byte length bounds the character count.
    if s.len() <= max || s.chars().count() <= max {
        Ok(())
    } else {
        Err(over)
    }
}

/// [`check_chars`] of the argument `arg`, noting the detail when it is over the limit.
pub fn check_arg(arg: &str, s: &str, max: usize, over: Hr) -> Result<()> {
    check_chars(s, max, over).inspect_err(|_| {
        detail!(
            "{arg}: {} characters, over the limit of {max}",
            s.chars().count()
        )
    })
}

/// Checks a sign-in name: 1 to 256 characters, no NUL.
pub fn check_sign_in_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('\0') || name.trim() != name {
        detail!("the sign-in name {name:?} is empty, holds a NUL or has spaces around it");
        return Err(E_INVALIDARG);
    }
    check_arg(
        "the sign-in name",
        name,
        limits::SIGN_IN_NAME_CHARS,
        E_INVALIDARG,
    )
}

/// Validates optional application data (Invite/Accept/Decline/Cancel): at most 512 bytes.
pub fn app_data(data: Option<&str>) -> Result<Option<Text>> {
    match data {
        None => Ok(None),
        Some(d) if d.len() > limits::APP_DATA_BYTES => {
            detail!(
                "app_data: {} bytes (UTF-8), over the limit of {}",
                d.len(),
                limits::APP_DATA_BYTES
            );
            Err(E_INVALIDARG)
        }
        Some(d) => Text::new(d).map(Some),
    }
}

/// Parses a GUID in the braced form `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}` (hex digits in
/// either case) and returns it with uppercase digits; E_INVALIDARG otherwise.
pub fn normalize_guid(s: &str) -> Result<String> {
    if is_guid(s) {
        Ok(s.to_ascii_uppercase())
    } else {
        detail!(
            "guid: {s:?} is not a GUID: expected {{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}}, hex digits in braces"
        );
        Err(E_INVALIDARG)
    }
}

/// True for a GUID in the braced form, hex digits in either case (no allocation).
pub fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != limits::GUID_CHARS || b[0] != b'{' || b[37] != b'}' {
        return false;
    }
    b[1..37].iter().enumerate().all(|(i, &c)| {
        let dash = matches!(i, 8 | 13 | 18 | 23);
        dash == (c == b'-') && (dash || c.is_ascii_hexdigit())
    })
}

/// A fresh SessionID in the braced uppercase form.
pub fn new_session_id() -> Text {
    // A random (version 4) UUID; the bytes come from the operating system's random source
    // through a per-thread block (random.rs), not one system call per SessionID.
    let uuid = uuid::Builder::from_random_bytes(crate::random::bytes16()).into_uuid();
    let mut buf = [0u8; 38];
    buf[0] = b'{';
    uuid.hyphenated().encode_upper(&mut buf[1..37]);
    buf[37] = b'}';
    Text::new(std::str::from_utf8(&buf).expect("ASCII")).expect("no NUL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_forms() {
        let g = normalize_guid("{e3a3b1d9-5675-43c0-bf04-37be11939fb7}").unwrap();
        assert_eq!(g, "{E3A3B1D9-5675-43C0-BF04-37BE11939FB7}");
        for bad in [
            "",
            "E3A3B1D9-5675-43C0-BF04-37BE11939FB7",
            "{E3A3B1D9-5675-43C0-BF04-37BE11939FB7",
            "{E3A3B1D9-5675-43C0-BF04-37BE11939FBG}",
            "{E3A3B1D9+5675-43C0-BF04-37BE11939FB7}",
            "{E3A3B1D9-5675-43C0-BF04-37BE11939FB7}x",
            "{E3A3B1D95-675-43C0-BF04-37BE11939FB7}",
        ] {
            assert_eq!(normalize_guid(bad), Err(E_INVALIDARG), "{bad}");
        }
    }

    #[test]
    fn session_ids_are_braced_uppercase_and_unique() {
        let a = new_session_id();
        let b = new_session_id();
        assert_ne!(a, b);
        assert_eq!(normalize_guid(a.as_str()).unwrap(), a.as_str());
        // {XXXXXXXX-XXXX-4XXX-[89AB]XXX-XXXXXXXXXXXX}: a random (version 4, RFC 4122) UUID
        for id in [a, b] {
            let s = id.as_str().as_bytes();
            assert_eq!(s[15], b'4', "{id}");
            assert!(b"89AB".contains(&s[20]), "{id}");
        }
    }

    #[test]
    fn session_state_round_trips_through_u8() {
        for v in 0..=7u8 {
            assert_eq!(SessionState::from_u8(v) as u8, v);
        }
        assert_eq!(SessionState::from_u8(8), SessionState::Unknown);
        assert_eq!(SessionState::from_u8(255), SessionState::Unknown);
    }

    #[test]
    fn text_keeps_terminator() {
        let t = Text::new("héllo").unwrap();
        assert_eq!(t.as_str(), "héllo");
        assert_eq!(t.chars(), 5);
        let c = unsafe { std::ffi::CStr::from_ptr(t.as_c_ptr()) };
        assert_eq!(c.to_str().unwrap(), "héllo");
        assert!(Text::new("a\0b").is_err());
    }

    #[test]
    fn limits_on_chars_and_bytes() {
        let s = "é".repeat(300);
        assert!(check_chars(&s, 300, E_INVALIDARG).is_ok());
        assert!(check_chars(&(s + "x"), 300, E_INVALIDARG).is_err());
        assert!(app_data(Some(&"x".repeat(512))).is_ok());
        assert!(app_data(Some(&"x".repeat(513))).is_err());
        assert_eq!(app_data(None), Ok(None));
    }
}
