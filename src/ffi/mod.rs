//! The `extern "C"` layer: converts and checks arguments, calls the core, maps errors,
//! validates handles and contains panics. cbindgen turns it into `include/msgrpriv.h`
//! (see build.rs and cbindgen.toml).
//!
//! How an exported function is written:
//!
//! ```ignore
//! /// Gets the session's LocalAddress. (Doc comment: what it does, parameters, each code.)
//! #[no_mangle]
//! pub unsafe extern "C" fn msgr_session_get_local_address(
//!     session: *mut msgr_session,
//!     buf: *mut c_char,
//!     buf_len: usize,
//!     needed: *mut usize,
//! ) -> MSGR_HRESULT {
//!     guard(c"msgr_session_get_local_address", || {
//!         let s: Arc<Session> = handles::get(session)?; // E_POINTER / E_HANDLE
//!         let addr = s.local_address()?;                // core error codes pass through
//!         strings::out_str(addr.as_str(), buf, buf_len, needed)
//!     })
//! }
//! ```
//!
//! Rules: every body runs in [`guard`] (or [`guard_or`]); inputs are read with
//! `strings::in_str`/`in_opt_str`/`in_str_max` and enums with `enums::*_from_c` (never take a
//! Rust enum as an input parameter type); outputs are checked with `strings::out_ptr` before any
//! work with side effects and written with `strings::out`/`out_str` only on success; handles
//! go through [`handles`] (tokens, never pointers to Rust memory); `Arc`s returned by a release
//! are dropped after every lock is let go.

#![allow(non_camel_case_types)]
// The header's doc comment of each function states what its pointers must be.
#![allow(clippy::missing_safety_doc)]

mod callbacks;
mod client;
pub mod enums;
mod guard;
pub(crate) mod handles;
mod library;
mod service;
mod session;
mod session_manager;
pub(crate) mod strings;

pub use callbacks::msgr_destroy_callback;
pub use client::*;
pub use enums::{MsgrLockStatus, SESSION_FLAGS, SESSION_STATE};
#[allow(unused_imports)]
pub(crate) use guard::{guard, guard_or};
pub use library::{msgr_lock_compute_response, msgr_result_text, msgr_version};
pub use service::*;
pub use session::*;
pub use session_manager::*;

/// A 32-bit result code: S_OK, S_FALSE or one of the failure codes of the header (negative).
/// In C it is `typedef int32_t MSGR_HRESULT;`, defined with the codes in the header.
pub type MSGR_HRESULT = i32;

/// An embedded Messenger service (opaque). Handles are tokens checked on every call: a stale
/// or forged one gives E_HANDLE, never a crash.
pub struct msgr_service {
    _opaque: [u8; 0],
}

/// A client: one signed-in identity attached to a service (opaque).
pub struct msgr_client {
    _opaque: [u8; 0],
}

/// A session manager (IMsgrSessionManager + IMsgrLock), created from a client (opaque).
pub struct msgr_session_manager {
    _opaque: [u8; 0],
}

/// A session (IMsgrSession): one invitation between two users (opaque, reference counted).
///
/// Its gated calls (invite, accept, decline, cancel, send_context_data and the two setters)
/// follow the Lock and Key status of the manager that created or received it. A session
/// whose manager was released keeps that manager's status until the client signs out; from
/// the next sign-in on, nobody can repeat the exchange for it, so it answers
/// MSGR_E_API_LOCKED when the service enforces Lock and Key (and is open when it does not).
pub struct msgr_session {
    _opaque: [u8; 0],
}
