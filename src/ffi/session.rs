//! `msgr_session_*`: sessions, their properties and methods, and the ten DMsgrSessionEvents
//! registrations.

use super::callbacks::{advise_session, msgr_destroy_callback, opt_ptr, release_session};
use super::enums::SESSION_STATE;
use super::guard;
use super::handles;
use super::strings::{in_opt_str, in_str, out, out_ptr, out_str};
use super::{msgr_session, MSGR_HRESULT};
use crate::error::{Hr, S_FALSE, S_OK};
use crate::events::{SessionEvent, SessionEventKind};
use crate::session::{Session, SessionCore};
use crate::Text;
use std::ffi::{c_char, c_void, CStr};
use std::sync::Arc;

fn with_session(
    name: &'static CStr,
    session: *mut msgr_session,
    f: impl FnOnce(&Session) -> crate::Result<Hr>,
) -> MSGR_HRESULT {
    guard(name, || {
        let s: Arc<SessionCore> = handles::get(session)?;
        f(&Session(s))
    })
}

unsafe fn get_text(
    name: &'static CStr,
    session: *mut msgr_session,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
    f: impl FnOnce(&Session) -> crate::Result<Text>,
) -> MSGR_HRESULT {
    with_session(name, session, |s| {
        out_ptr(needed, "needed")?;
        let t = f(s)?;
        out_str(t.as_str(), buf, buf_len, needed)
    })
}

/// Adds a reference to a session handle (for example to keep the session lent to
/// OnInvitation).
///
/// @param session  The session; on success the caller owns one more reference, to give
///                 back with msgr_session_release().
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_add_ref(session: *mut msgr_session) -> MSGR_HRESULT {
    guard(c"msgr_session_add_ref", || {
        handles::add_ref(session)?;
        Ok(S_OK)
    })
}

/// Releases a reference. At the last one the handle becomes stale, the session's
/// registrations end (destroy callbacks run) and events queued for them are dropped; the
/// session itself goes on until it ends (the other side is not affected). May be called
/// from the session's own callbacks. NULL does nothing.
///
/// @param session  The session, or NULL; the caller gives up one reference it owns.
/// @return S_OK; E_HANDLE for a stale or wrong-kind handle.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_release(session: *mut msgr_session) -> MSGR_HRESULT {
    guard(c"msgr_session_release", || {
        if session.is_null() {
            return Ok(S_OK);
        }
        release_session(session)
    })
}

/// State.
///
/// @param session  The session.
/// @param state    Receives the state.
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_get_state(
    session: *mut msgr_session,
    state: *mut SESSION_STATE,
) -> MSGR_HRESULT {
    guard(c"msgr_session_get_state", || {
        // A plain getter: read while the handle is pinned, no reference taken.
        let st = handles::with(session, SessionCore::state)?;
        out(state, "state", st.into())?;
        Ok(S_OK)
    })
}

/// Flags: SF_INVITER on the inviting side, SF_INVITEE on the invited side.
///
/// @param session  The session.
/// @param flags    Receives the SESSION_FLAGS bits.
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_get_flags(
    session: *mut msgr_session,
    flags: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_get_flags", || {
        let f = handles::with(session, SessionCore::flags)?;
        out(flags, "flags", f)?;
        Ok(S_OK)
    })
}

/// SessionID, `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}` (uppercase), the same on both sides.
/// String getters take a caller buffer: `*needed` receives the size including the
/// terminator; with a NULL or short `buf` they return E_INSUFFICIENT_BUFFER (0x8007007A)
/// and write nothing else.
///
/// @param session  The session.
/// @param buf      Receives the SessionID and a NUL; NULL to ask for the size only.
/// @param buf_len  The size of `buf` in bytes (ignored when `buf` is NULL).
/// @param needed   Receives the size the SessionID needs in bytes, the NUL included (also with
///                 E_INSUFFICIENT_BUFFER).
/// @return S_OK; E_POINTER (NULL session or `needed`); E_HANDLE; E_INSUFFICIENT_BUFFER.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_get_session_id(
    session: *mut msgr_session,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> MSGR_HRESULT {
    get_text(
        c"msgr_session_get_session_id",
        session,
        buf,
        buf_len,
        needed,
        |s| Ok(s.id().clone()),
    )
}

/// Application: the GUID of the session's application.
///
/// @param session  The session.
/// @param buf      Receives the GUID and a NUL; NULL to ask for the size only.
/// @param buf_len  The size of `buf` in bytes (ignored when `buf` is NULL).
/// @param needed   Receives the size the GUID needs in bytes, the NUL included (also with
///                 E_INSUFFICIENT_BUFFER).
/// @return S_OK; E_POINTER; E_HANDLE; E_INSUFFICIENT_BUFFER; SR_APP_NOT_SPECIFIED when none
///         is set.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_get_application(
    session: *mut msgr_session,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> MSGR_HRESULT {
    get_text(
        c"msgr_session_get_application",
        session,
        buf,
        buf_len,
        needed,
        |s| s.application(),
    )
}

/// Sets Application: the GUID of an application registered with the client's registry.
///
/// @param session  The session, in SS_READY.
/// @param guid     The application's GUID, braced: `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`,
///                 hex digits in either case (stored in uppercase).
/// @return S_OK; E_POINTER; E_HANDLE; MSGR_E_API_LOCKED (MSGR_E_NOT_LOGGED_ON while signed out); E_INVALIDARG for a malformed GUID;
///         SR_SESSION_NOT_READY unless SS_READY; SR_APP_NOT_REGISTERED.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_set_application(
    session: *mut msgr_session,
    guid: *const c_char,
) -> MSGR_HRESULT {
    with_session(c"msgr_session_set_application", session, |s| {
        s.set_application(in_str(guid, "guid")?)?;
        Ok(S_OK)
    })
}

/// ApplicationName, from the registry ("" when the application is not registered here).
///
/// @param session  The session.
/// @param buf      Receives the name and a NUL; NULL to ask for the size only.
/// @param buf_len  The size of `buf` in bytes (ignored when `buf` is NULL).
/// @param needed   Receives the size the name needs in bytes, the NUL included (also with
///                 E_INSUFFICIENT_BUFFER).
/// @return S_OK; E_POINTER; E_HANDLE; E_INSUFFICIENT_BUFFER; SR_APP_NOT_SPECIFIED.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_get_application_name(
    session: *mut msgr_session,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> MSGR_HRESULT {
    get_text(
        c"msgr_session_get_application_name",
        session,
        buf,
        buf_len,
        needed,
        |s| s.application_name(),
    )
}

/// ApplicationURL, from the registry.
///
/// @param session  The session.
/// @param buf      Receives the URL and a NUL; NULL to ask for the size only.
/// @param buf_len  The size of `buf` in bytes (ignored when `buf` is NULL).
/// @param needed   Receives the size the URL needs in bytes, the NUL included (also with
///                 E_INSUFFICIENT_BUFFER).
/// @return S_OK; E_POINTER; E_HANDLE; E_INSUFFICIENT_BUFFER; SR_APP_NOT_SPECIFIED.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_get_application_url(
    session: *mut msgr_session,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> MSGR_HRESULT {
    get_text(
        c"msgr_session_get_application_url",
        session,
        buf,
        buf_len,
        needed,
        |s| s.application_url(),
    )
}

/// ContextData: the last application data received from the other side (the invitation's
/// app data, then Accept/Decline/Cancel data and SendContextData); "" when none yet.
///
/// @param session  The session.
/// @param buf      Receives the data and a NUL; NULL to ask for the size only.
/// @param buf_len  The size of `buf` in bytes (ignored when `buf` is NULL).
/// @param needed   Receives the size the data needs in bytes, the NUL included (also with
///                 E_INSUFFICIENT_BUFFER).
/// @return S_OK; E_POINTER; E_HANDLE; E_INSUFFICIENT_BUFFER.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_get_context_data(
    session: *mut msgr_session,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> MSGR_HRESULT {
    get_text(
        c"msgr_session_get_context_data",
        session,
        buf,
        buf_len,
        needed,
        |s| Ok(s.context_data()),
    )
}

/// LocalAddress: a stored value handed to the other side with Invite (inviter) or Accept
/// (invitee); not the machine's address. "" until set.
///
/// @param session  The session.
/// @param buf      Receives the address and a NUL; NULL to ask for the size only.
/// @param buf_len  The size of `buf` in bytes (ignored when `buf` is NULL).
/// @param needed   Receives the size the address needs in bytes, the NUL included (also with
///                 E_INSUFFICIENT_BUFFER).
/// @return S_OK; E_POINTER; E_HANDLE; E_INSUFFICIENT_BUFFER.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_get_local_address(
    session: *mut msgr_session,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> MSGR_HRESULT {
    get_text(
        c"msgr_session_get_local_address",
        session,
        buf,
        buf_len,
        needed,
        |s| Ok(s.local_address()),
    )
}

/// Sets LocalAddress (at most 30 characters).
///
/// @param session  The session.
/// @param address  The address: NUL-terminated UTF-8, at most 30 characters ("" clears it);
///                 copied.
/// @return S_OK; E_POINTER; E_HANDLE; MSGR_E_API_LOCKED (MSGR_E_NOT_LOGGED_ON while signed out); E_INVALIDARG for an over-long or
///         invalid UTF-8 address.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_set_local_address(
    session: *mut msgr_session,
    address: *const c_char,
) -> MSGR_HRESULT {
    with_session(c"msgr_session_set_local_address", session, |s| {
        s.set_local_address(in_str(address, "address")?)?;
        Ok(S_OK)
    })
}

/// RemoteAddress: the other side's LocalAddress, valid once SS_CONNECTED.
///
/// @param session  The session.
/// @param buf      Receives the address and a NUL; NULL to ask for the size only.
/// @param buf_len  The size of `buf` in bytes (ignored when `buf` is NULL).
/// @param needed   Receives the size the address needs in bytes, the NUL included (also with
///                 E_INSUFFICIENT_BUFFER).
/// @return S_OK; S_FALSE with "" before SS_CONNECTED; E_POINTER; E_HANDLE;
///         E_INSUFFICIENT_BUFFER.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_get_remote_address(
    session: *mut msgr_session,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> MSGR_HRESULT {
    with_session(c"msgr_session_get_remote_address", session, |s| {
        out_ptr(needed, "needed")?;
        match s.remote_address() {
            Some(t) => out_str(t.as_str(), buf, buf_len, needed),
            None => out_str("", buf, buf_len, needed).map(|_| S_FALSE),
        }
    })
}

/// User: the other party's sign-in name.
///
/// @param session  The session.
/// @param buf      Receives the sign-in name and a NUL; NULL to ask for the size only.
/// @param buf_len  The size of `buf` in bytes (ignored when `buf` is NULL).
/// @param needed   Receives the size the sign-in name needs in bytes, the NUL included (also with
///                 E_INSUFFICIENT_BUFFER).
/// @return S_OK; E_POINTER; E_HANDLE; E_INSUFFICIENT_BUFFER; SR_NO_USER_INVITED when nobody
///         was invited.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_get_user(
    session: *mut msgr_session,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> MSGR_HRESULT {
    get_text(
        c"msgr_session_get_user",
        session,
        buf,
        buf_len,
        needed,
        |s| s.user(),
    )
}

/// Invite(user, app data): sends the invitation; the state becomes SS_INVITATION
/// (OnStateChanged(SS_READY)) and the invited client's unlocked managers get OnInvitation.
///
/// @param app_data  NULL or at most 512 bytes.
/// @param session            The session, in SS_READY, with its application set.
/// @param user_sign_in_name  The user to invite: NUL-terminated UTF-8, 1 to 256 characters,
///                           no leading or trailing white space; not the session's own user.
/// @return S_OK; E_POINTER; E_HANDLE; MSGR_E_API_LOCKED (MSGR_E_NOT_LOGGED_ON while signed out); E_INVALIDARG for a bad name or
///         app data; SR_APP_NOT_SPECIFIED; SR_SESSION_NOT_READY; SR_INVITED_SELF;
///         MSGR_E_NOT_LOGGED_ON when either user is not signed in. A message that cannot be
///         delivered gives OnSendError(SR_INVITATION_SEND_FAILURE) later.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_invite(
    session: *mut msgr_session,
    user_sign_in_name: *const c_char,
    app_data: *const c_char,
) -> MSGR_HRESULT {
    with_session(c"msgr_session_invite", session, |s| {
        s.invite(
            in_str(user_sign_in_name, "user_sign_in_name")?,
            in_opt_str(app_data, "app_data")?,
        )?;
        Ok(S_OK)
    })
}

/// Accept(app data): invitee only, in SS_INVITATION only. When the application is not
/// registered here, OnAppNotPresent fires and both sides end declined with
/// SR_APP_NOT_REGISTERED.
///
/// @param app_data  NULL or at most 512 bytes.
/// @param session   The session, on the invited side, in SS_INVITATION.
/// @return S_OK; E_POINTER; E_HANDLE; MSGR_E_API_LOCKED (MSGR_E_NOT_LOGGED_ON while signed out); E_INVALIDARG; SR_NOT_INVITEE;
///         SR_SESSION_STATE_INVALID.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_accept(
    session: *mut msgr_session,
    app_data: *const c_char,
) -> MSGR_HRESULT {
    with_session(c"msgr_session_accept", session, |s| {
        s.accept(in_opt_str(app_data, "app_data")?)?;
        Ok(S_OK)
    })
}

/// Decline(app data): invitee only, in SS_INVITATION only; both sides end in SS_DECLINED.
///
/// @param session   The session, on the invited side, in SS_INVITATION.
/// @param app_data  NULL or at most 512 bytes of UTF-8, handed to the inviter's OnDeclined.
/// @return S_OK; E_POINTER; E_HANDLE; MSGR_E_API_LOCKED (MSGR_E_NOT_LOGGED_ON while signed out); E_INVALIDARG; SR_NOT_INVITEE;
///         SR_SESSION_STATE_INVALID.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_decline(
    session: *mut msgr_session,
    app_data: *const c_char,
) -> MSGR_HRESULT {
    with_session(c"msgr_session_decline", session, |s| {
        s.decline(in_opt_str(app_data, "app_data")?)?;
        Ok(S_OK)
    })
}

/// Cancel(hr, app data): ends the invitation or the session. This side gets
/// OnTermination(SR_SESSION_CANCELLED_LOCAL) (SR_CANCEL_BEFORE_CONNECT in SS_READY, where
/// nothing is sent); the other side gets OnCancelled(app data) then OnTermination(hr).
///
/// @param session   The session, on either side.
/// @param hr        The code the other side's OnTermination receives, any value (usually
///                  SR_SESSION_CANCELLED_REMOTE).
/// @param app_data  NULL or at most 512 bytes of UTF-8, handed to the other side's
///                  OnCancelled.
/// @return S_OK; E_POINTER; E_HANDLE; MSGR_E_API_LOCKED (MSGR_E_NOT_LOGGED_ON while signed out); E_INVALIDARG;
///         SR_SESSION_STATE_INVALID once the session has ended.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_cancel(
    session: *mut msgr_session,
    hr: MSGR_HRESULT,
    app_data: *const c_char,
) -> MSGR_HRESULT {
    with_session(c"msgr_session_cancel", session, |s| {
        s.cancel(Hr(hr), in_opt_str(app_data, "app_data")?)?;
        Ok(S_OK)
    })
}

/// SendContextData(data): at most 300 characters, at most five times per side; the other
/// side gets OnContextData(data).
///
/// @param session  The session, once the invitation was accepted.
/// @param data     The data: NUL-terminated UTF-8, at most 300 characters.
/// @return S_OK; E_POINTER; E_HANDLE; MSGR_E_API_LOCKED (MSGR_E_NOT_LOGGED_ON while signed out); E_INVALIDARG for invalid UTF-8;
///         SR_CONTEXT_DATA_OVER_LIMIT; SR_NOT_VALID_FOR_APP_INVITE before the invitation was
///         accepted; SR_SESSION_STATE_INVALID once ended.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_send_context_data(
    session: *mut msgr_session,
    data: *const c_char,
) -> MSGR_HRESULT {
    with_session(c"msgr_session_send_context_data", session, |s| {
        s.send_context_data(in_str(data, "data")?)?;
        Ok(S_OK)
    })
}

/// Ends a registration made with one of the session registration functions: its callback is
/// not called any more. Its destroy callback runs before this returns, or, while the client
/// is delivering an event (this call made from a callback, or from another thread meanwhile),
/// once that event's delivery has finished.
///
/// @param session  The session the registration was made on.
/// @param cookie   The cookie the registration function gave.
/// @return S_OK; E_POINTER; E_HANDLE; E_INVALIDARG for a cookie this object did not issue
/// or that was unadvised already (cookies are unique in the process: another object's
/// cookie is never this one's), changing nothing.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_unadvise(
    session: *mut msgr_session,
    cookie: u32,
) -> MSGR_HRESULT {
    with_session(c"msgr_session_unadvise", session, |s| {
        s.unadvise(cookie).map(|_| S_OK)
    })
}

/// BeforeAppLaunch(in/out enable): set `*enable` to false to keep the application from
/// being launched.
///
/// @param user_data  The user data given at registration.
/// @param session    The session the callback was registered on (valid during the call).
/// @param enable     Never NULL: true, unless another BeforeAppLaunch callback set it to
///                   false; set `*enable` to false to prevent the launch.
pub type msgr_before_app_launch_callback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, session: *mut msgr_session, enable: *mut bool),
>;
/// OnAccepted(app data); `app_data` may be NULL.
///
/// @param user_data  The user data given at registration.
/// @param session    The session the callback was registered on (valid during the call).
/// @param app_data   The app data the invitee gave to Accept, or NULL.
pub type msgr_on_accepted_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        session: *mut msgr_session,
        app_data: *const c_char,
    ),
>;
/// OnAppNotPresent(name, URL).
///
/// @param user_data  The user data given at registration.
/// @param session    The session the callback was registered on (valid during the call).
/// @param name       The application's name, from the inviter's registry; never NULL.
/// @param url        The application's URL, from the inviter's registry (where to get
///                   it); never NULL.
pub type msgr_on_app_not_present_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        session: *mut msgr_session,
        name: *const c_char,
        url: *const c_char,
    ),
>;
/// OnCancelled(app data); `app_data` may be NULL.
///
/// @param user_data  The user data given at registration.
/// @param session    The session the callback was registered on (valid during the call).
/// @param app_data   The app data the other side gave to Cancel, or NULL.
pub type msgr_on_cancelled_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        session: *mut msgr_session,
        app_data: *const c_char,
    ),
>;
/// OnContextData(data).
///
/// @param user_data  The user data given at registration.
/// @param session    The session the callback was registered on (valid during the call).
/// @param data       The data the other side sent with
///                   msgr_session_send_context_data(); never NULL.
pub type msgr_on_context_data_callback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, session: *mut msgr_session, data: *const c_char),
>;
/// OnDeclined(app data); `app_data` may be NULL.
///
/// @param user_data  The user data given at registration.
/// @param session    The session the callback was registered on (valid during the call).
/// @param app_data   The app data the invitee gave to Decline, or NULL.
pub type msgr_on_declined_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        session: *mut msgr_session,
        app_data: *const c_char,
    ),
>;
/// OnReadyToLaunch().
///
/// @param user_data  The user data given at registration.
/// @param session    The session the callback was registered on (valid during the call).
pub type msgr_on_ready_to_launch_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, session: *mut msgr_session)>;
/// OnSendError(hr): SR_*_SEND_FAILURE of the step whose message was not delivered.
///
/// @param user_data  The user data given at registration.
/// @param session    The session the callback was registered on (valid during the call).
/// @param hr         The SR_*_SEND_FAILURE code of the step that was not delivered.
pub type msgr_on_send_error_callback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, session: *mut msgr_session, hr: MSGR_HRESULT),
>;
/// OnStateChanged(previous state). msgr_session_get_state() gives the state the session is
/// in when the callback runs, which may be several transitions later than the one this
/// call is about (an inviter sees SS_INVITATION then SS_ACCEPTED as `previous`, both with
/// SS_CONNECTED as the current state): to react once per transition, register a
/// msgr_on_state_transition_callback (msgr_session_on_state_transition()) instead.
///
/// @param user_data  The user data given at registration.
/// @param session    The session the callback was registered on (valid during the call).
/// @param previous   The state the session left.
pub type msgr_on_state_changed_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        session: *mut msgr_session,
        previous: SESSION_STATE,
    ),
>;
/// OnStateChanged with both ends of the transition: `previous` and `current`, the state this
/// one transition led to. Several transitions can happen before the first is delivered
/// (an inviter goes SS_INVITATION -> SS_ACCEPTED -> SS_CONNECTED in one step), so
/// msgr_session_get_state() in a msgr_on_state_changed_callback may already give a later
/// state; `current` never does. Registered with msgr_session_on_state_transition().
///
/// @param user_data  The user data given at registration.
/// @param session    The session the callback was registered on (valid during the call).
/// @param previous   The state the session left.
/// @param current    The state this transition led to.
pub type msgr_on_state_transition_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        session: *mut msgr_session,
        previous: SESSION_STATE,
        current: SESSION_STATE,
    ),
>;
/// OnTermination(hr, app data): the last event of the session on this side, exactly once.
///
/// @param user_data  The user data given at registration.
/// @param session    The session the callback was registered on (valid during the call).
/// @param hr         Why the session ended (docs/CONTRACT.md, "Event order"): for example
///                   SR_SESSION_CANCELLED_LOCAL, the code the other side gave to Cancel,
///                   SR_SESSION_TIMEOUT or SR_CONNECTION_FAILURE.
/// @param app_data   The app data of the step that ended it (Decline, Cancel), or NULL.
pub type msgr_on_termination_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        session: *mut msgr_session,
        hr: MSGR_HRESULT,
        app_data: *const c_char,
    ),
>;

/// Registers for BeforeAppLaunch. Every registration function of a session takes the
/// session, the callback (NULL: E_POINTER), user data handed back to it, an optional
/// destroy callback for that user data (run exactly once, when the registration ends for
/// any reason, also when this call fails) and `cookie`, which receives the cookie for
/// msgr_session_unadvise(). Registrations end at the session handle's last release.
///
/// @param session    The session to watch.
/// @param callback   Called for each BeforeAppLaunch, with (user_data, session, enable); not NULL.
/// @param user_data  Handed back to `callback` and `destroy`; any value (the library never
///                   dereferences it).
/// @param destroy    Called once with `user_data` when the registration ends (also when this
///                   call fails); NULL for none.
/// @param cookie     Receives the registration's cookie, for msgr_session_unadvise().
/// @return S_OK; E_POINTER for a NULL session, callback or cookie; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_before_app_launch(
    session: *mut msgr_session,
    callback: msgr_before_app_launch_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_before_app_launch", || {
        advise_session(
            session,
            SessionEventKind::BeforeAppLaunch,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut SessionEvent| {
                    if let SessionEvent::BeforeAppLaunch { enable } = e {
                        let mut v = *enable;
                        cb(ud.ptr(), h as *mut msgr_session, &mut v);
                        *enable = v;
                    }
                }
            },
        )
    })
}

/// Registers for OnAccepted (see msgr_session_before_app_launch()).
///
/// @param session    The session to watch.
/// @param callback   Called for each OnAccepted, with (user_data, session, app_data); not NULL.
/// @param user_data  Handed back to `callback` and `destroy`; any value (the library never
///                   dereferences it).
/// @param destroy    Called once with `user_data` when the registration ends (also when this
///                   call fails); NULL for none.
/// @param cookie     Receives the registration's cookie, for msgr_session_unadvise().
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_on_accepted(
    session: *mut msgr_session,
    callback: msgr_on_accepted_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_on_accepted", || {
        advise_session(
            session,
            SessionEventKind::Accepted,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut SessionEvent| {
                    if let SessionEvent::Accepted { app_data } = e {
                        cb(ud.ptr(), h as *mut msgr_session, opt_ptr(app_data))
                    }
                }
            },
        )
    })
}

/// Registers for OnAppNotPresent (see msgr_session_before_app_launch()).
///
/// @param session    The session to watch.
/// @param callback   Called for each OnAppNotPresent, with (user_data, session, name, url);
///                   not NULL.
/// @param user_data  Handed back to `callback` and `destroy`; any value (the library never
///                   dereferences it).
/// @param destroy    Called once with `user_data` when the registration ends (also when this
///                   call fails); NULL for none.
/// @param cookie     Receives the registration's cookie, for msgr_session_unadvise().
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_on_app_not_present(
    session: *mut msgr_session,
    callback: msgr_on_app_not_present_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_on_app_not_present", || {
        advise_session(
            session,
            SessionEventKind::AppNotPresent,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut SessionEvent| {
                    if let SessionEvent::AppNotPresent { name, url } = e {
                        cb(
                            ud.ptr(),
                            h as *mut msgr_session,
                            name.as_c_ptr(),
                            url.as_c_ptr(),
                        )
                    }
                }
            },
        )
    })
}

/// Registers for OnCancelled (see msgr_session_before_app_launch()).
///
/// @param session    The session to watch.
/// @param callback   Called for each OnCancelled, with (user_data, session, app_data); not NULL.
/// @param user_data  Handed back to `callback` and `destroy`; any value (the library never
///                   dereferences it).
/// @param destroy    Called once with `user_data` when the registration ends (also when this
///                   call fails); NULL for none.
/// @param cookie     Receives the registration's cookie, for msgr_session_unadvise().
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_on_cancelled(
    session: *mut msgr_session,
    callback: msgr_on_cancelled_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_on_cancelled", || {
        advise_session(
            session,
            SessionEventKind::Cancelled,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut SessionEvent| {
                    if let SessionEvent::Cancelled { app_data } = e {
                        cb(ud.ptr(), h as *mut msgr_session, opt_ptr(app_data))
                    }
                }
            },
        )
    })
}

/// Registers for OnContextData (see msgr_session_before_app_launch()).
///
/// @param session    The session to watch.
/// @param callback   Called for each OnContextData, with (user_data, session, data); not NULL.
/// @param user_data  Handed back to `callback` and `destroy`; any value (the library never
///                   dereferences it).
/// @param destroy    Called once with `user_data` when the registration ends (also when this
///                   call fails); NULL for none.
/// @param cookie     Receives the registration's cookie, for msgr_session_unadvise().
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_on_context_data(
    session: *mut msgr_session,
    callback: msgr_on_context_data_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_on_context_data", || {
        advise_session(
            session,
            SessionEventKind::ContextData,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut SessionEvent| {
                    if let SessionEvent::ContextData { data } = e {
                        cb(ud.ptr(), h as *mut msgr_session, data.as_c_ptr())
                    }
                }
            },
        )
    })
}

/// Registers for OnDeclined (see msgr_session_before_app_launch()).
///
/// @param session    The session to watch.
/// @param callback   Called for each OnDeclined, with (user_data, session, app_data); not NULL.
/// @param user_data  Handed back to `callback` and `destroy`; any value (the library never
///                   dereferences it).
/// @param destroy    Called once with `user_data` when the registration ends (also when this
///                   call fails); NULL for none.
/// @param cookie     Receives the registration's cookie, for msgr_session_unadvise().
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_on_declined(
    session: *mut msgr_session,
    callback: msgr_on_declined_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_on_declined", || {
        advise_session(
            session,
            SessionEventKind::Declined,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut SessionEvent| {
                    if let SessionEvent::Declined { app_data } = e {
                        cb(ud.ptr(), h as *mut msgr_session, opt_ptr(app_data))
                    }
                }
            },
        )
    })
}

/// Registers for OnReadyToLaunch (see msgr_session_before_app_launch()).
///
/// @param session    The session to watch.
/// @param callback   Called for each OnReadyToLaunch, with (user_data, session); not NULL.
/// @param user_data  Handed back to `callback` and `destroy`; any value (the library never
///                   dereferences it).
/// @param destroy    Called once with `user_data` when the registration ends (also when this
///                   call fails); NULL for none.
/// @param cookie     Receives the registration's cookie, for msgr_session_unadvise().
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_on_ready_to_launch(
    session: *mut msgr_session,
    callback: msgr_on_ready_to_launch_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_on_ready_to_launch", || {
        advise_session(
            session,
            SessionEventKind::ReadyToLaunch,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut SessionEvent| {
                    if let SessionEvent::ReadyToLaunch = e {
                        cb(ud.ptr(), h as *mut msgr_session)
                    }
                }
            },
        )
    })
}

/// Registers for OnSendError (see msgr_session_before_app_launch()).
///
/// @param session    The session to watch.
/// @param callback   Called for each OnSendError, with (user_data, session, hr); not NULL.
/// @param user_data  Handed back to `callback` and `destroy`; any value (the library never
///                   dereferences it).
/// @param destroy    Called once with `user_data` when the registration ends (also when this
///                   call fails); NULL for none.
/// @param cookie     Receives the registration's cookie, for msgr_session_unadvise().
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_on_send_error(
    session: *mut msgr_session,
    callback: msgr_on_send_error_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_on_send_error", || {
        advise_session(
            session,
            SessionEventKind::SendError,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut SessionEvent| {
                    if let SessionEvent::SendError { hr } = e {
                        cb(ud.ptr(), h as *mut msgr_session, hr.0)
                    }
                }
            },
        )
    })
}

/// Registers for OnStateChanged (see msgr_session_before_app_launch(), and
/// msgr_session_on_state_transition() for the callback that also gets the new state).
///
/// @param session    The session to watch.
/// @param callback   Called for each OnStateChanged, with (user_data, session, previous); not NULL.
/// @param user_data  Handed back to `callback` and `destroy`; any value (the library never
///                   dereferences it).
/// @param destroy    Called once with `user_data` when the registration ends (also when this
///                   call fails); NULL for none.
/// @param cookie     Receives the registration's cookie, for msgr_session_unadvise().
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_on_state_changed(
    session: *mut msgr_session,
    callback: msgr_on_state_changed_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_on_state_changed", || {
        advise_session(
            session,
            SessionEventKind::StateChanged,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut SessionEvent| {
                    if let SessionEvent::StateChanged { previous, .. } = e {
                        cb(ud.ptr(), h as *mut msgr_session, (*previous).into())
                    }
                }
            },
        )
    })
}

/// Registers for OnStateChanged with the previous and the new state of each transition
/// (msgr_on_state_transition_callback): code that reacts to a state reacts once per
/// transition into it, whatever msgr_session_get_state() says by delivery time. Same event,
/// same order and same cookies as msgr_session_on_state_changed() (unregister with
/// msgr_session_unadvise()); see msgr_session_before_app_launch().
///
/// @param session   The session.
/// @param callback  Called with (user_data, session, previous, current).
/// @param user_data Handed back to `callback` and `destroy`.
/// @param destroy   Optional; called once with `user_data` when the registration ends.
/// @param cookie    Receives the registration's cookie.
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_on_state_transition(
    session: *mut msgr_session,
    callback: msgr_on_state_transition_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_on_state_transition", || {
        advise_session(
            session,
            SessionEventKind::StateChanged,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut SessionEvent| {
                    if let SessionEvent::StateChanged { previous, current } = e {
                        cb(
                            ud.ptr(),
                            h as *mut msgr_session,
                            (*previous).into(),
                            (*current).into(),
                        )
                    }
                }
            },
        )
    })
}

/// Registers for OnTermination (see msgr_session_before_app_launch()).
///
/// @param session    The session to watch.
/// @param callback   Called for each OnTermination, with (user_data, session, hr, app_data);
///                   not NULL.
/// @param user_data  Handed back to `callback` and `destroy`; any value (the library never
///                   dereferences it).
/// @param destroy    Called once with `user_data` when the registration ends (also when this
///                   call fails); NULL for none.
/// @param cookie     Receives the registration's cookie, for msgr_session_unadvise().
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_on_termination(
    session: *mut msgr_session,
    callback: msgr_on_termination_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_on_termination", || {
        advise_session(
            session,
            SessionEventKind::Termination,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut SessionEvent| {
                    if let SessionEvent::Termination { hr, app_data } = e {
                        cb(ud.ptr(), h as *mut msgr_session, hr.0, opt_ptr(app_data))
                    }
                }
            },
        )
    })
}
