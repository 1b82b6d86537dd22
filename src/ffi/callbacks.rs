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
use crate::events::{Callback, ManagerEvent, ManagerEventKind, SessionEvent, SessionEventKind};
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
    data: UserPtr,
    destroy: msgr_destroy_callback,
}

/// A user data pointer, as a registration's callback captures it (a copy: the [`UserData`]
/// it comes from owns it).
#[derive(Clone, Copy)]
pub(crate) struct UserPtr(*mut c_void);

// SAFETY: the library never dereferences user data; it hands it back to the application's
// callbacks, which the header documents may run on the dispatching thread.
unsafe impl Send for UserPtr {}
unsafe impl Sync for UserPtr {}

impl UserPtr {
    pub(crate) fn ptr(self) -> *mut c_void {
        self.0
    }
}

impl UserData {
    pub(crate) fn new(data: *mut c_void, destroy: msgr_destroy_callback) -> Self {
        UserData {
            data: UserPtr(data),
            destroy,
        }
    }
    pub(crate) fn ptr(&self) -> *mut c_void {
        self.data.0
    }
    fn user_ptr(&self) -> UserPtr {
        self.data
    }
}

impl Drop for UserData {
    fn drop(&mut self) {
        if let Some(d) = self.destroy.take() {
            // SAFETY: the application's destroy callback with its own user data.
            unsafe { d(self.data.0) }
        }
    }
}

/// The C string of an optional text (NULL when absent).
pub(crate) fn opt_ptr(t: &Option<crate::Text>) -> *const c_char {
    t.as_ref().map_or(std::ptr::null(), |t| t.as_c_ptr())
}

/// Registers on a manager: `make` builds the Rust callback from the C one, its user data
/// and the manager's handle; the registration owns the user data, which is dropped (destroy
/// runs) when it ends and on every failure path.
pub(crate) unsafe fn advise_manager<F, G>(
    manager: *mut msgr_session_manager,
    kind: ManagerEventKind,
    callback: Option<F>,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
    make: impl FnOnce(F, UserPtr, usize) -> G,
) -> Result<Hr>
where
    F: Copy + Send + Sync + 'static,
    G: Fn(&mut ManagerEvent) + Copy + Send + Sync + 'static,
{
    let ud = UserData::new(user_data, destroy);
    out_ptr(cookie, "cookie")?;
    let cb = callback.ok_or(E_POINTER)?;
    let m: Arc<SessionManager> = handles::get(manager)?;
    let f = make(cb, ud.user_ptr(), manager as usize);
    let c = m.advise_callback(kind, Callback::with_owner(f, ud))?;
    cookie.write_unaligned(c);
    Ok(S_OK)
}

/// Registers on a session; see [`advise_manager`].
pub(crate) unsafe fn advise_session<F, G>(
    session: *mut msgr_session,
    kind: SessionEventKind,
    callback: Option<F>,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
    make: impl FnOnce(F, UserPtr, usize) -> G,
) -> Result<Hr>
where
    F: Copy + Send + Sync + 'static,
    G: Fn(&mut SessionEvent) + Copy + Send + Sync + 'static,
{
    let ud = UserData::new(user_data, destroy);
    out_ptr(cookie, "cookie")?;
    let cb = callback.ok_or(E_POINTER)?;
    let s: Arc<SessionCore> = handles::get(session)?;
    let f = make(cb, ud.user_ptr(), session as usize);
    let c = Session(s).advise_callback(kind, Callback::with_owner(f, ud))?;
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
