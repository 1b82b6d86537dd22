//! Event registration from C: the callback types, the user data with its destroy
//! notification, and the helpers every `msgr_*_on_*` function goes through.
//!
//! A registration's user data is owned by a [`UserData`] whose drop runs the destroy
//! callback: exactly once, when the registration ends for any reason, also when the
//! registration call itself fails. The callback receives the handle of the object it was
//! registered on (captured at registration: registrations end before that handle does).

use super::handles;
use super::strings::out_ptr;
use super::{msgr_session, msgr_session_manager};
use crate::error::{Result, E_POINTER, S_OK};
use crate::events::{ManagerEvent, ManagerEventKind, SessionEvent, SessionEventKind};
use crate::session::{Session, SessionCore};
use crate::session_manager::SessionManager;
use crate::Hr;
use std::ffi::{c_char, c_void};
use std::sync::Arc;

/// Called once when a registration ends (unadvise, release of its object, or a failed
/// registration call), with the registration's user data. Optional (NULL: nothing is called).
///
/// @param user_data  The user data given with this callback: the registration's `user_data`
///                   (or the options' `credentials_user_data`); the library does not use it
///                   after this call.
pub type msgr_destroy_callback = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// The user data of one registration and its destroy notification.
pub(crate) struct UserData {
    data: *mut c_void,
    destroy: msgr_destroy_callback,
}

// SAFETY: the library never dereferences user data; it hands it back to the application's
// callbacks, which the header documents may run on the dispatching thread.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

impl UserData {
    pub(crate) fn new(data: *mut c_void, destroy: msgr_destroy_callback) -> Self {
        UserData { data, destroy }
    }
    pub(crate) fn ptr(&self) -> *mut c_void {
        self.data
    }
}

impl Drop for UserData {
    fn drop(&mut self) {
        if let Some(d) = self.destroy.take() {
            // SAFETY: the application's destroy callback with its own user data.
            unsafe { d(self.data) }
        }
    }
}

/// Builds the Rust callback of one registration from the C callback, its user data and the
/// handle of the object it is registered on.
pub(crate) type MakeCallback<F, E> = fn(F, UserData, usize) -> crate::events::Callback<E>;

/// The C string of an optional text (NULL when absent).
pub(crate) fn opt_ptr(t: &Option<crate::Text>) -> *const c_char {
    t.as_ref().map_or(std::ptr::null(), |t| t.as_c_ptr())
}

/// Registers on a manager: `make` builds the Rust callback from the C one. The user data
/// is dropped (destroy runs) on every failure path.
pub(crate) unsafe fn advise_manager<F: Copy + Send + Sync + 'static>(
    manager: *mut msgr_session_manager,
    kind: ManagerEventKind,
    callback: Option<F>,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
    make: MakeCallback<F, ManagerEvent>,
) -> Result<Hr> {
    let ud = UserData::new(user_data, destroy);
    out_ptr(cookie, "cookie")?;
    let cb = callback.ok_or(E_POINTER)?;
    let m: Arc<SessionManager> = handles::get(manager)?;
    let c = m.advise_callback(kind, make(cb, ud, manager as usize))?;
    cookie.write_unaligned(c);
    Ok(S_OK)
}

/// Registers on a session; see [`advise_manager`].
pub(crate) unsafe fn advise_session<F: Copy + Send + Sync + 'static>(
    session: *mut msgr_session,
    kind: SessionEventKind,
    callback: Option<F>,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
    make: MakeCallback<F, SessionEvent>,
) -> Result<Hr> {
    let ud = UserData::new(user_data, destroy);
    out_ptr(cookie, "cookie")?;
    let cb = callback.ok_or(E_POINTER)?;
    let s: Arc<SessionCore> = handles::get(session)?;
    let c = Session(s).advise_callback(kind, make(cb, ud, session as usize))?;
    cookie.write_unaligned(c);
    Ok(S_OK)
}

/// A session handle lent to a callback (OnInvitation): one reference for the duration of
/// the call; when the application took none of its own, the handle ends with it.
pub(crate) fn with_borrowed_session(session: &Session, f: impl FnOnce(*mut msgr_session)) {
    let Ok(h) = handles::acquire::<msgr_session, SessionCore>(&session.0) else {
        return;
    };
    f(h);
    let _ = release_session(h);
}

/// Drops one reference of a session handle; at the last one the session's registrations
/// end (outside every lock).
pub(crate) fn release_session(h: *mut msgr_session) -> Result<Hr> {
    if let Some(core) = handles::release::<msgr_session, SessionCore>(h)? {
        Session(core).detach();
    }
    Ok(S_OK)
}
