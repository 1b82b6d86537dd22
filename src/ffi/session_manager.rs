//! `msgr_session_manager_*`: session managers, application registration, Lock and Key, and
//! the eight DMsgrSessionManagerEvents registrations.

use super::callbacks::{advise_manager, msgr_destroy_callback, with_borrowed_session};
use super::enums::MsgrLockStatus;
use super::guard;
use super::handles;
use super::strings::{in_opt_str, in_str, out, out_ptr, out_str};
use super::{msgr_client, msgr_session, msgr_session_manager, MSGR_HRESULT};
use crate::client::Client;
use crate::error::{Hr, S_OK};
use crate::events::{ManagerEvent, ManagerEventKind};
use crate::session::SessionCore;
use crate::session_manager::SessionManager;
use std::ffi::{c_char, c_void, CStr};
use std::fmt::Write;
use std::sync::Arc;

fn with_manager(
    name: &'static CStr,
    manager: *mut msgr_session_manager,
    f: impl FnOnce(&SessionManager) -> crate::Result<Hr>,
) -> MSGR_HRESULT {
    guard(name, || {
        let m: Arc<SessionManager> = handles::get(manager)?;
        f(&m)
    })
}

/// Creates a session manager on a client. When the client is signed in, OnLockEnable and
/// OnLockStatusChanged are queued for it at once: register callbacks, then dispatch. In
/// thread mode the client's thread may deliver those two before any callback is registered:
/// read msgr_session_manager_get_lock_status() instead, or register first and then sign in
/// (msgr_client_sign_out(), register, msgr_client_sign_in()) to receive them.
///
/// @param client       The client (msgr_client_create()).
/// @param out_manager  Receives the manager; release it with msgr_session_manager_release().
/// @return S_OK; E_POINTER; E_HANDLE; MSGR_E_SERVER_SHUTDOWN after msgr_client_shutdown().
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_create(
    client: *mut msgr_client,
    out_manager: *mut *mut msgr_session_manager,
) -> MSGR_HRESULT {
    guard(c"msgr_session_manager_create", || {
        out_ptr(out_manager, "out_manager")?;
        let c: Arc<Client> = handles::get(client)?;
        let m = SessionManager::new(&c)?;
        match handles::insert::<msgr_session_manager, SessionManager>(Arc::new(m.clone())) {
            Ok(h) => {
                out(out_manager, "out_manager", h)?;
                Ok(S_OK)
            }
            Err(e) => {
                m.close();
                Err(e)
            }
        }
    })
}

/// Releases a session manager: its registrations end (destroy callbacks run), events queued
/// for it are dropped, the handle becomes stale. Its sessions go on. May be called from the
/// manager's own callbacks. NULL does nothing.
///
/// @param manager  The manager, or NULL; the handle is stale once this returns S_OK.
/// @return S_OK; E_HANDLE for a stale or wrong-kind handle.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_release(
    manager: *mut msgr_session_manager,
) -> MSGR_HRESULT {
    guard(c"msgr_session_manager_release", || {
        if let Some(m) = handles::remove::<msgr_session_manager, SessionManager>(manager)? {
            m.close();
        }
        Ok(S_OK)
    })
}

/// CreateSession: a new session in SS_READY, flags SF_INVITER, a fresh SessionID. A new
/// session is needed for every invitation.
///
/// @param manager      The manager, unlocked (LOCK_UNLOCKED or LOCK_DISABLED).
/// @param out_session  Receives the session with one reference; release it with
///                     msgr_session_release().
/// @return S_OK; E_POINTER; E_HANDLE; MSGR_E_API_LOCKED while the manager is locked; MSGR_E_NOT_LOGGED_ON while signed out.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_create_session(
    manager: *mut msgr_session_manager,
    out_session: *mut *mut msgr_session,
) -> MSGR_HRESULT {
    with_manager(c"msgr_session_manager_create_session", manager, |m| {
        out_ptr(out_session, "out_session")?;
        let s = m.create_session()?;
        let h = handles::insert::<msgr_session, SessionCore>(Arc::clone(&s.0))?;
        out(out_session, "out_session", h)?;
        Ok(S_OK)
    })
}

/// GetLaunchingSession: the session whose acceptance launched process `pid` (through this
/// manager's client).
///
/// @param manager      The manager, unlocked (LOCK_UNLOCKED or LOCK_DISABLED).
/// @param pid          The process id the launcher returned (not 0).
/// @param out_session  Receives the session with one more reference (release it with
///                     msgr_session_release()).
/// @return S_OK; E_POINTER; E_HANDLE; MSGR_E_API_LOCKED (MSGR_E_NOT_LOGGED_ON while signed out); E_INVALIDARG for pid 0; E_FAIL when
///         no session launched that process.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_get_launching_session(
    manager: *mut msgr_session_manager,
    pid: u32,
    out_session: *mut *mut msgr_session,
) -> MSGR_HRESULT {
    with_manager(
        c"msgr_session_manager_get_launching_session",
        manager,
        |m| {
            out_ptr(out_session, "out_session")?;
            let s = m.launching_session(pid)?;
            let h = handles::acquire::<msgr_session, SessionCore>(&s.0)?;
            out(out_session, "out_session", h)?;
            Ok(S_OK)
        },
    )
}

/// RegisterApplication: adds an application to the registry this client shares; every
/// manager sharing it gets OnAppRegistered(guid): at once the managers of this service,
/// within a tenth of a second or so those of other services on the same registry file
/// (msgr_service_options.registry_path), in any process.
///
/// @param manager  The manager, unlocked (LOCK_UNLOCKED or LOCK_DISABLED).
/// @param guid     The application's GUID, `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`, hex in
///                 either case (stored uppercase).
/// @param name     Its name: NUL-terminated UTF-8, at most 256 characters ("" allowed).
/// @param url      Its URL (where to get it): NUL-terminated UTF-8, at most 256 characters
///                 ("" allowed).
/// @param path     NULL or "" for none; else an absolute path of at most 260 characters to an
///                 existing file: the executable the default launcher starts. Name, URL and
///                 path may not contain control characters; all three are copied.
/// @param flags    Must be 0.
/// @return S_OK; E_POINTER; E_HANDLE; MSGR_E_API_LOCKED (MSGR_E_NOT_LOGGED_ON while signed out); E_INVALIDARG for bad flags, a
///         malformed GUID, an over-limit or invalid UTF-8 string, a relative path;
///         E_FILE_NOT_FOUND when the path does not exist (E_FAIL when it cannot be
///         examined); SR_APP_ALREADY_REGISTERED;
///         REGDB_E_WRITEREGDB when the registry file cannot be written.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_register_application(
    manager: *mut msgr_session_manager,
    guid: *const c_char,
    name: *const c_char,
    url: *const c_char,
    path: *const c_char,
    flags: u32,
) -> MSGR_HRESULT {
    with_manager(c"msgr_session_manager_register_application", manager, |m| {
        let (g, n, u) = (
            in_str(guid, "guid")?,
            in_str(name, "name")?,
            in_str(url, "url")?,
        );
        let p = in_opt_str(path, "path")?.unwrap_or("");
        m.register_application(g, n, u, p, flags)?;
        Ok(S_OK)
    })
}

/// UnRegisterApplication: every manager sharing the registry gets OnAppUnRegistered(guid)
/// (as for msgr_session_manager_register_application()).
///
/// @param manager  The manager, unlocked (LOCK_UNLOCKED or LOCK_DISABLED).
/// @param guid     The application's GUID, braced, hex in either case.
/// @return S_OK; E_POINTER; E_HANDLE; MSGR_E_API_LOCKED (MSGR_E_NOT_LOGGED_ON while signed out); E_INVALIDARG for a malformed GUID;
///         SR_APP_NOT_REGISTERED; REGDB_E_WRITEREGDB.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_unregister_application(
    manager: *mut msgr_session_manager,
    guid: *const c_char,
) -> MSGR_HRESULT {
    with_manager(
        c"msgr_session_manager_unregister_application",
        manager,
        |m| {
            m.unregister_application(in_str(guid, "guid")?)?;
            Ok(S_OK)
        },
    )
}

/// Applications (a read-only listing; not implemented in the original): one line per
/// registered application, sorted by GUID, `GUID<TAB>name<TAB>url<TAB>path<LF>`; "" when
/// none. Caller buffer: `*needed` receives the size including the terminator.
///
/// @param manager  The manager, unlocked (LOCK_UNLOCKED or LOCK_DISABLED).
/// @param buf      Receives the listing and a NUL; NULL to ask for the size only.
/// @param buf_len  The size of `buf` in bytes (ignored when `buf` is NULL).
/// @param needed   Receives the size the listing needs in bytes, the NUL included (also with
///                 E_INSUFFICIENT_BUFFER).
/// @return S_OK; E_POINTER; E_HANDLE; MSGR_E_API_LOCKED (MSGR_E_NOT_LOGGED_ON while signed out); E_INSUFFICIENT_BUFFER (0x8007007A)
///         when `buf` is NULL or shorter than `*needed`.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_get_applications(
    manager: *mut msgr_session_manager,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> MSGR_HRESULT {
    with_manager(c"msgr_session_manager_get_applications", manager, |m| {
        out_ptr(needed, "needed")?;
        let mut s = String::new();
        for a in m.applications()? {
            let _ = writeln!(s, "{}\t{}\t{}\t{}", a.guid, a.name, a.url, a.path);
        }
        out_str(&s, buf, buf_len, needed)
    })
}

/// Gets the manager's Lock and Key status.
///
/// @param manager  The manager.
/// @param status   Receives the status (a LockStatus value).
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_get_lock_status(
    manager: *mut msgr_session_manager,
    status: *mut MsgrLockStatus,
) -> MSGR_HRESULT {
    with_manager(c"msgr_session_manager_get_lock_status", manager, |m| {
        out(status, "status", m.lock_status().into())?;
        Ok(S_OK)
    })
}

/// RequestChallenge(cookie): status becomes LOCK_PENDINGRESULT (OnLockStatusChanged), then
/// OnLockChallenge(cookie, challenge) is queued. Only one challenge per sign-in.
///
/// @param manager  The manager, in LOCK_INITIALIZED.
/// @param cookie   Any value the application chooses (a fresh random one, docs/CONTRACT.md);
///                 OnLockChallenge hands it back, and msgr_session_manager_send_response()
///                 must give it again.
/// @return S_OK; E_POINTER; E_HANDLE; MSGR_E_API_NOTINITIALIZED (not signed in);
///         MSGR_E_API_PENDING_UNLOCK; MSGR_E_API_ALREADY_UNLOCKED; MSGR_E_API_DISABLED;
///         MSGR_E_API_UNLOCK_FAILED (after a failed unlock in this sign-in).
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_request_challenge(
    manager: *mut msgr_session_manager,
    cookie: i32,
) -> MSGR_HRESULT {
    with_manager(c"msgr_session_manager_request_challenge", manager, |m| {
        m.request_challenge(cookie).map(|_| S_OK)
    })
}

/// SendResponse(application ID, response, cookie): the service checks the response (the
/// challenge followed by the key, MD5, 32 lowercase hex digits; see
/// msgr_lock_compute_response()) in constant time; OnLockResult(cookie, succeeded) then
/// OnLockStatusChanged(LOCK_UNLOCKED or LOCK_UNLOCKFAILED) are queued.
///
/// @param manager   The manager, in LOCK_PENDINGRESULT with the challenge received.
/// @param app_id    The application ID (msgr_service_add_app_key()): NUL-terminated UTF-8,
///                  at most 256 characters. An unknown ID fails like a wrong key.
/// @param response  The response (msgr_lock_compute_response()): NUL-terminated UTF-8, at
///                  most 256 characters.
/// @param cookie    The cookie given to msgr_session_manager_request_challenge().
/// @return S_OK (whatever the outcome); E_POINTER; E_HANDLE; E_INVALIDARG for a cookie other
///         than the pending challenge's (nothing changes) or an over-long or invalid UTF-8
///         string; MSGR_E_API_LOCKED when no challenge is pending; MSGR_E_API_NOTINITIALIZED,
///         MSGR_E_API_ALREADY_UNLOCKED, MSGR_E_API_DISABLED, MSGR_E_API_UNLOCK_FAILED by status.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_send_response(
    manager: *mut msgr_session_manager,
    app_id: *const c_char,
    response: *const c_char,
    cookie: i32,
) -> MSGR_HRESULT {
    with_manager(c"msgr_session_manager_send_response", manager, |m| {
        m.send_response(
            in_str(app_id, "app_id")?,
            in_str(response, "response")?,
            cookie,
        )?;
        Ok(S_OK)
    })
}

/// Ends a registration made with one of the `msgr_session_manager_on_*` functions: its
/// callback is not called any more. Its destroy callback runs before this returns, or, while
/// the client is delivering an event (this call made from a callback, or from another thread
/// meanwhile), once that event's delivery has finished. May be called from a callback,
/// including the registration's own.
///
/// @param manager  The manager the registration was made on.
/// @param cookie   The cookie the registration function gave.
/// @return S_OK; E_POINTER; E_HANDLE; E_INVALIDARG for a cookie this object did not issue
/// or that was unadvised already (cookies are unique in the process: another object's
/// cookie is never this one's), changing nothing.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_unadvise(
    manager: *mut msgr_session_manager,
    cookie: u32,
) -> MSGR_HRESULT {
    with_manager(c"msgr_session_manager_unadvise", manager, |m| {
        m.unadvise(cookie).map(|_| S_OK)
    })
}

/// OnAppRegistered(guid).
///
/// @param user_data  The user data given at registration.
/// @param manager    The manager the callback was registered on (valid during the call).
/// @param guid       The GUID of the application registered (braced).
pub type msgr_on_app_registered_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        manager: *mut msgr_session_manager,
        guid: *const c_char,
    ),
>;
/// OnAppUnRegistered(guid).
///
/// @param user_data  The user data given at registration.
/// @param manager    The manager the callback was registered on (valid during the call).
/// @param guid       The GUID of the application unregistered (braced).
pub type msgr_on_app_unregistered_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        manager: *mut msgr_session_manager,
        guid: *const c_char,
    ),
>;
/// OnAppShutdown(): the last event the manager receives.
///
/// @param user_data  The user data given at registration.
/// @param manager    The manager the callback was registered on (valid during the call).
pub type msgr_on_app_shutdown_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, manager: *mut msgr_session_manager)>;
/// OnInvitation(session, app data, in/out handled). `session` is lent for the call: call
/// msgr_session_add_ref() to keep it. `app_data` may be NULL. Set `*handled` to true when
/// the application takes care of the invitation.
///
/// @param user_data  The user data given at registration.
/// @param manager    The manager the callback was registered on (valid during the call).
/// @param session    The new session, on the invited side (created in SS_INVITATION); lent
///                   for the call (msgr_session_add_ref() to keep it).
/// @param app_data   The app data the inviter gave to Invite, or NULL.
/// @param handled    Never NULL; false on entry (true when an earlier callback set it for
///                   this manager); set `*handled` to true when the application takes care
///                   of the invitation.
pub type msgr_on_invitation_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        manager: *mut msgr_session_manager,
        session: *mut msgr_session,
        app_data: *const c_char,
        handled: *mut bool,
    ),
>;
/// OnLockChallenge(cookie, challenge).
///
/// @param user_data  The user data given at registration.
/// @param manager    The manager the callback was registered on (valid during the call).
/// @param cookie     The cookie given to msgr_session_manager_request_challenge().
/// @param challenge  The challenge: 32 uppercase hex digits; valid during the call only.
pub type msgr_on_lock_challenge_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        manager: *mut msgr_session_manager,
        cookie: i32,
        challenge: *const c_char,
    ),
>;
/// OnLockEnable(enabled).
///
/// @param user_data  The user data given at registration.
/// @param manager    The manager the callback was registered on (valid during the call).
/// @param enabled    true when Lock and Key is in force on the service (the manager is
///                   locked), false when not (LOCK_DISABLED).
pub type msgr_on_lock_enable_callback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, manager: *mut msgr_session_manager, enabled: bool),
>;
/// OnLockResult(cookie, succeeded).
///
/// @param user_data  The user data given at registration.
/// @param manager    The manager the callback was registered on (valid during the call).
/// @param cookie     The cookie of the challenge answered.
/// @param succeeded  true when the response was right (LOCK_UNLOCKED follows), false when
///                   not (LOCK_UNLOCKFAILED follows).
pub type msgr_on_lock_result_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        manager: *mut msgr_session_manager,
        cookie: i32,
        succeeded: bool,
    ),
>;
/// OnLockStatusChanged(status).
///
/// @param user_data  The user data given at registration.
/// @param manager    The manager the callback was registered on (valid during the call).
/// @param status     The new status.
pub type msgr_on_lock_status_changed_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        manager: *mut msgr_session_manager,
        status: MsgrLockStatus,
    ),
>;

/// Registers for OnAppRegistered. Every registration function of a manager takes the
/// manager, the callback (NULL: E_POINTER), user data handed back to it, an optional destroy
/// callback for that user data (run exactly once, when the registration ends for any
/// reason, also when this call fails) and `cookie`, which receives the registration's
/// cookie for msgr_session_manager_unadvise(). Callbacks run in registration order.
///
/// @param manager    The manager to watch.
/// @param callback   Called for each OnAppRegistered, with (user_data, manager, guid);
///                   not NULL.
/// @param user_data  Handed back to `callback` and `destroy`; any value (the library never
///                   dereferences it).
/// @param destroy    Called once with `user_data` when the registration ends (also when this
///                   call fails); NULL for none.
/// @param cookie     Receives the registration's cookie, for msgr_session_manager_unadvise().
/// @return S_OK; E_POINTER for a NULL manager, callback or cookie; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_on_app_registered(
    manager: *mut msgr_session_manager,
    callback: msgr_on_app_registered_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_manager_on_app_registered", || {
        advise_manager(
            manager,
            ManagerEventKind::AppRegistered,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut ManagerEvent| {
                    if let ManagerEvent::AppRegistered { guid } = e {
                        cb(ud.ptr(), h as *mut msgr_session_manager, guid.as_c_ptr())
                    }
                }
            },
        )
    })
}

/// Registers for OnAppUnRegistered (see msgr_session_manager_on_app_registered()).
///
/// @param manager    The manager to watch.
/// @param callback   Called for each OnAppUnRegistered, with (user_data, manager, guid);
///                   not NULL.
/// @param user_data  Handed back to `callback` and `destroy`; any value (the library never
///                   dereferences it).
/// @param destroy    Called once with `user_data` when the registration ends (also when this
///                   call fails); NULL for none.
/// @param cookie     Receives the registration's cookie, for msgr_session_manager_unadvise().
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_on_app_unregistered(
    manager: *mut msgr_session_manager,
    callback: msgr_on_app_unregistered_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_manager_on_app_unregistered", || {
        advise_manager(
            manager,
            ManagerEventKind::AppUnregistered,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut ManagerEvent| {
                    if let ManagerEvent::AppUnregistered { guid } = e {
                        cb(ud.ptr(), h as *mut msgr_session_manager, guid.as_c_ptr())
                    }
                }
            },
        )
    })
}

/// Registers for OnAppShutdown (see msgr_session_manager_on_app_registered()).
///
/// @param manager    The manager to watch.
/// @param callback   Called for each OnAppShutdown, with (user_data, manager);
///                   not NULL.
/// @param user_data  Handed back to `callback` and `destroy`; any value (the library never
///                   dereferences it).
/// @param destroy    Called once with `user_data` when the registration ends (also when this
///                   call fails); NULL for none.
/// @param cookie     Receives the registration's cookie, for msgr_session_manager_unadvise().
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_on_app_shutdown(
    manager: *mut msgr_session_manager,
    callback: msgr_on_app_shutdown_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_manager_on_app_shutdown", || {
        advise_manager(
            manager,
            ManagerEventKind::AppShutdown,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut ManagerEvent| {
                    if let ManagerEvent::AppShutdown = e {
                        cb(ud.ptr(), h as *mut msgr_session_manager)
                    }
                }
            },
        )
    })
}

/// Registers for OnInvitation (see msgr_session_manager_on_app_registered()). Only unlocked
/// managers receive invitations.
///
/// @param manager    The manager to watch.
/// @param callback   Called for each OnInvitation, with (user_data, manager, session,
///                   app_data, handled); not NULL.
/// @param user_data  Handed back to `callback` and `destroy`; any value (the library never
///                   dereferences it).
/// @param destroy    Called once with `user_data` when the registration ends (also when this
///                   call fails); NULL for none.
/// @param cookie     Receives the registration's cookie, for msgr_session_manager_unadvise().
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_on_invitation(
    manager: *mut msgr_session_manager,
    callback: msgr_on_invitation_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_manager_on_invitation", || {
        advise_manager(
            manager,
            ManagerEventKind::Invitation,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut ManagerEvent| {
                    if let ManagerEvent::Invitation {
                        session,
                        app_data,
                        handled,
                    } = e
                    {
                        let data = super::callbacks::opt_ptr(app_data);
                        let mut flag = *handled;
                        with_borrowed_session(session, |sh| {
                            cb(
                                ud.ptr(),
                                h as *mut msgr_session_manager,
                                sh,
                                data,
                                &mut flag,
                            )
                        });
                        *handled = flag;
                    }
                }
            },
        )
    })
}

/// Registers for OnLockChallenge (see msgr_session_manager_on_app_registered()).
///
/// @param manager    The manager to watch.
/// @param callback   Called for each OnLockChallenge, with (user_data, manager, cookie, challenge);
///                   not NULL.
/// @param user_data  Handed back to `callback` and `destroy`; any value (the library never
///                   dereferences it).
/// @param destroy    Called once with `user_data` when the registration ends (also when this
///                   call fails); NULL for none.
/// @param cookie     Receives the registration's cookie, for msgr_session_manager_unadvise().
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_on_lock_challenge(
    manager: *mut msgr_session_manager,
    callback: msgr_on_lock_challenge_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_manager_on_lock_challenge", || {
        advise_manager(
            manager,
            ManagerEventKind::LockChallenge,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut ManagerEvent| {
                    if let ManagerEvent::LockChallenge { cookie, challenge } = e {
                        cb(
                            ud.ptr(),
                            h as *mut msgr_session_manager,
                            *cookie,
                            challenge.as_c_ptr(),
                        )
                    }
                }
            },
        )
    })
}

/// Registers for OnLockEnable (see msgr_session_manager_on_app_registered()).
///
/// @param manager    The manager to watch.
/// @param callback   Called for each OnLockEnable, with (user_data, manager, enabled);
///                   not NULL.
/// @param user_data  Handed back to `callback` and `destroy`; any value (the library never
///                   dereferences it).
/// @param destroy    Called once with `user_data` when the registration ends (also when this
///                   call fails); NULL for none.
/// @param cookie     Receives the registration's cookie, for msgr_session_manager_unadvise().
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_on_lock_enable(
    manager: *mut msgr_session_manager,
    callback: msgr_on_lock_enable_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_manager_on_lock_enable", || {
        advise_manager(
            manager,
            ManagerEventKind::LockEnable,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut ManagerEvent| {
                    if let ManagerEvent::LockEnable { enabled } = e {
                        cb(ud.ptr(), h as *mut msgr_session_manager, *enabled)
                    }
                }
            },
        )
    })
}

/// Registers for OnLockResult (see msgr_session_manager_on_app_registered()).
///
/// @param manager    The manager to watch.
/// @param callback   Called for each OnLockResult, with (user_data, manager, cookie, succeeded);
///                   not NULL.
/// @param user_data  Handed back to `callback` and `destroy`; any value (the library never
///                   dereferences it).
/// @param destroy    Called once with `user_data` when the registration ends (also when this
///                   call fails); NULL for none.
/// @param cookie     Receives the registration's cookie, for msgr_session_manager_unadvise().
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_on_lock_result(
    manager: *mut msgr_session_manager,
    callback: msgr_on_lock_result_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_manager_on_lock_result", || {
        advise_manager(
            manager,
            ManagerEventKind::LockResult,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut ManagerEvent| {
                    if let ManagerEvent::LockResult { cookie, succeeded } = e {
                        cb(
                            ud.ptr(),
                            h as *mut msgr_session_manager,
                            *cookie,
                            *succeeded,
                        )
                    }
                }
            },
        )
    })
}

/// Registers for OnLockStatusChanged (see msgr_session_manager_on_app_registered()).
///
/// @param manager    The manager to watch.
/// @param callback   Called for each OnLockStatusChanged, with (user_data, manager, status);
///                   not NULL.
/// @param user_data  Handed back to `callback` and `destroy`; any value (the library never
///                   dereferences it).
/// @param destroy    Called once with `user_data` when the registration ends (also when this
///                   call fails); NULL for none.
/// @param cookie     Receives the registration's cookie, for msgr_session_manager_unadvise().
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_session_manager_on_lock_status_changed(
    manager: *mut msgr_session_manager,
    callback: msgr_on_lock_status_changed_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
    cookie: *mut u32,
) -> MSGR_HRESULT {
    guard(c"msgr_session_manager_on_lock_status_changed", || {
        advise_manager(
            manager,
            ManagerEventKind::LockStatusChanged,
            callback,
            user_data,
            destroy,
            cookie,
            |cb, ud, h| {
                move |e: &mut ManagerEvent| {
                    if let ManagerEvent::LockStatusChanged { status } = e {
                        cb(ud.ptr(), h as *mut msgr_session_manager, (*status).into())
                    }
                }
            },
        )
    })
}
