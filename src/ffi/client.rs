//! `msgr_client_*`: a signed-in user, its event delivery and its launcher.

use super::callbacks::UserData;
use super::guard;
use super::handles;
use super::service::ServiceHandle;
use super::strings::{in_str, out, out_ptr};
use super::{msgr_client, msgr_service, MSGR_HRESULT};
use crate::client::Client;
use crate::dispatch::DispatchMode;
use crate::error::{Hr, E_INVALIDARG, S_OK};
use crate::launcher::{LaunchRequest, Launcher, ProcessLauncher};
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::Arc;
use std::time::Duration;

/// How a client's events reach its callbacks (the `dispatch_mode` of msgr_client_create()).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MSGR_DISPATCH_MODE {
    /// The application calls msgr_client_dispatch() (and may poll msgr_client_event_fd()).
    MSGR_DISPATCH_MANUAL = 0,
    /// A thread owned by the client delivers events as they arrive. After delivering, it
    /// keeps watching the queue for 20 microseconds before it sleeps, so that an event
    /// arriving then is delivered without waking a sleeping thread (at most that much CPU
    /// per burst of events; an idle client costs nothing). The environment variable
    /// MSGRPRIV_THREAD_SPIN_US, read once per process, changes it (0 disables, at most 10000).
    MSGR_DISPATCH_THREAD = 1,
}

/// Whether a client is signed in (msgr_client_get_connection_state()).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MSGR_CONNECTION_STATE {
    /// Signed out: by the application, or by a lost connection the service does not
    /// restore.
    MSGR_SIGNED_OUT = 0,
    /// Signed in.
    MSGR_SIGNED_IN = 1,
    /// Signed out by a lost connection (an XMPP service); the service is signing the client
    /// in again, with growing pauses. When it gets in, the client is signed in as by
    /// msgr_client_sign_in(): each manager gets OnLockEnable and OnLockStatusChanged.
    /// msgr_client_sign_in() signs in at once instead; msgr_client_sign_out() stops the
    /// attempts (and returns MSGR_E_NOT_LOGGED_ON: the client is signed out already).
    MSGR_RECONNECTING = 2,
}

/// A `timeout_ms` for msgr_client_dispatch() that waits for ever.
pub const MSGR_INFINITE: u32 = 0xFFFF_FFFF;

/// Launches an application for an accepted invitation (see msgr_client_set_launcher()).
/// Receives the registered absolute path, the SessionID and the application GUID; stores
/// the new process id in `*pid` and returns S_OK, or returns a failure code, which ends the
/// session with SR_APPLICATION_LAUNCH_FAILED. Runs on the dispatching thread.
///
/// @param user_data   The user_data given to msgr_client_set_launcher().
/// @param path        The application's registered path, absolute; NUL-terminated UTF-8,
///                    valid during the call only.
/// @param session_id  The session's SessionID, `{XXXXXXXX-...}`; valid during the call only.
/// @param app_guid    The application's GUID, braced; valid during the call only.
/// @param pid         Never NULL; receives the process id of the started application.
/// @return S_OK (or S_FALSE) when the application was started; a failure code otherwise.
pub type msgr_launch_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        path: *const c_char,
        session_id: *const c_char,
        app_guid: *const c_char,
        pid: *mut u32,
    ) -> MSGR_HRESULT,
>;

/// Creates a client and signs `sign_in_name` in on `service`.
///
/// @param service        The service to sign in on (msgr_service_create()); the client
///                       holds on to it (see msgr_service_destroy()).
/// @param sign_in_name   The user's sign-in name: UTF-8, 1 to 256 characters; copied.
/// @param dispatch_mode  MSGR_DISPATCH_MANUAL or MSGR_DISPATCH_THREAD.
/// @param out_client     Receives the client; destroy it with msgr_client_destroy().
/// @return S_OK; E_POINTER; E_HANDLE; E_INVALIDARG for an empty, over 256 characters or
///         invalid UTF-8 name, or an unknown mode; MSGR_E_ALREADY_LOGGED_ON when that name
///         (compared without regard to ASCII case) is signed in already.
#[no_mangle]
pub unsafe extern "C" fn msgr_client_create(
    service: *mut msgr_service,
    sign_in_name: *const c_char,
    dispatch_mode: i32,
    out_client: *mut *mut msgr_client,
) -> MSGR_HRESULT {
    guard(c"msgr_client_create", || {
        out_ptr(out_client, "out_client")?;
        let svc: Arc<ServiceHandle> = handles::get(service)?;
        let name = in_str(sign_in_name, "sign_in_name")?;
        let mode = match dispatch_mode {
            0 => DispatchMode::Manual,
            1 => DispatchMode::Thread,
            _ => return Err(E_INVALIDARG),
        };
        let client = Client::new(Arc::clone(&svc.service), name, mode)?;
        match handles::insert::<msgr_client, Client>(Arc::new(client.clone())) {
            Ok(h) => {
                out(out_client, "out_client", h)?;
                Ok(S_OK)
            }
            Err(e) => {
                client.destroy();
                Err(e)
            }
        }
    })
}

fn with_client(
    name: &'static CStr,
    client: *mut msgr_client,
    f: impl FnOnce(&Client) -> crate::Result<Hr>,
) -> MSGR_HRESULT {
    guard(name, || {
        let c: Arc<Client> = handles::get(client)?;
        f(&c)
    })
}

/// Signs out: every live session ends on both sides (SS_TERMINATED,
/// OnTermination(SR_CONNECTION_FAILURE)) and every manager goes back to LOCK_NOTINITIALIZED
/// (OnLockStatusChanged).
///
/// @param client  The client (msgr_client_create()).
/// @return S_OK; E_POINTER; E_HANDLE; MSGR_E_NOT_LOGGED_ON when not signed in.
#[no_mangle]
pub unsafe extern "C" fn msgr_client_sign_out(client: *mut msgr_client) -> MSGR_HRESULT {
    with_client(c"msgr_client_sign_out", client, |c| {
        c.sign_out().map(|_| S_OK)
    })
}

/// Signs in again: every manager is locked again and gets OnLockEnable and
/// OnLockStatusChanged.
///
/// @param client  The client (msgr_client_create()).
/// @return S_OK; E_POINTER; E_HANDLE; MSGR_E_ALREADY_LOGGED_ON when signed in (here or by
///         another client of the same name); MSGR_E_SERVER_SHUTDOWN after
///         msgr_client_shutdown().
#[no_mangle]
pub unsafe extern "C" fn msgr_client_sign_in(client: *mut msgr_client) -> MSGR_HRESULT {
    with_client(c"msgr_client_sign_in", client, |c| {
        c.sign_in().map(|_| S_OK)
    })
}

/// Shuts the client down: signs out if needed, then OnAppShutdown is queued as the last
/// event of each of its managers. The client can no longer sign in or create managers.
///
/// @param client  The client (msgr_client_create()).
/// @return S_OK; E_POINTER; E_HANDLE; MSGR_E_SERVER_SHUTDOWN when already shut down.
#[no_mangle]
pub unsafe extern "C" fn msgr_client_shutdown(client: *mut msgr_client) -> MSGR_HRESULT {
    with_client(c"msgr_client_shutdown", client, |c| {
        c.shutdown().map(|_| S_OK)
    })
}

/// Destroys the client: signs out (the other parties' sessions end with
/// SR_CONNECTION_FAILURE), drops its queued events and stops its thread. Its managers and
/// sessions stay valid handles until released, and behave as signed out. May be called from
/// the client's own callbacks. NULL does nothing.
///
/// @param client  The client, or NULL; the handle is stale once this returns S_OK.
/// @return S_OK; E_HANDLE for a stale or wrong-kind handle.
#[no_mangle]
pub unsafe extern "C" fn msgr_client_destroy(client: *mut msgr_client) -> MSGR_HRESULT {
    guard(c"msgr_client_destroy", || {
        if let Some(c) = handles::remove::<msgr_client, Client>(client)? {
            c.destroy();
        }
        Ok(S_OK)
    })
}

/// Delivers queued events (manual mode): waits up to `timeout_ms` (0 polls, MSGR_INFINITE
/// waits for ever) for the first event, then delivers every pending one, including events
/// raised by the callbacks it runs. Only one thread delivers a client's events at a time;
/// a callback may call this again (a nested loop continues with the next event).
///
/// @param client      The client, created with MSGR_DISPATCH_MANUAL.
/// @param timeout_ms  Milliseconds to wait for the first event: 0 polls, MSGR_INFINITE waits
///                    for ever.
/// @param dispatched  Receives how many events were delivered (0 when the timeout passed).
/// @return S_OK; E_POINTER; E_HANDLE; E_ILLEGAL_METHOD_CALL for a thread-mode client.
#[no_mangle]
pub unsafe extern "C" fn msgr_client_dispatch(
    client: *mut msgr_client,
    timeout_ms: u32,
    dispatched: *mut u32,
) -> MSGR_HRESULT {
    with_client(c"msgr_client_dispatch", client, |c| {
        out_ptr(dispatched, "dispatched")?;
        let t = (timeout_ms != MSGR_INFINITE).then(|| Duration::from_millis(timeout_ms.into()));
        let n = c.dispatch(t)?;
        out(dispatched, "dispatched", n)?;
        Ok(S_OK)
    })
}

/// Tells whether the client is signed in, and why it was last signed out other than by the
/// application.
///
/// @param client  The client (msgr_client_create()).
/// @param state   Receives an MSGR_CONNECTION_STATE value.
/// @param reason  Receives why the client was last signed out other than by the
///                application: S_OK when it never was; MSGR_E_DISCONNECTED for a lost
///                connection; MSGR_E_ALREADY_LOGGED_ON when another sign-in of the same name
///                (another program, or another machine) replaced it, which is not
///                undone; SR_AUTHENTICATION_FAILED or SR_NETWORK_CONFIG_FAILURE when
///                signing in again was refused, which ends the attempts. A later sign-in
///                leaves it as it is.
/// @return S_OK; E_POINTER; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_client_get_connection_state(
    client: *mut msgr_client,
    state: *mut i32,
    reason: *mut MSGR_HRESULT,
) -> MSGR_HRESULT {
    with_client(c"msgr_client_get_connection_state", client, |c| {
        out_ptr(state, "state")?;
        out_ptr(reason, "reason")?;
        let (s, why) = c.connection_state();
        out(state, "state", s as i32)?;
        out(reason, "reason", why.0)?;
        Ok(S_OK)
    })
}

/// Gets a file descriptor that is readable while events are pending (manual mode), for
/// poll/epoll/select. The client owns it: do not read or close it; it is valid until
/// msgr_client_destroy().
///
/// @param client  The client, created with MSGR_DISPATCH_MANUAL.
/// @param fd      Receives the descriptor.
/// @return S_OK; E_POINTER; E_HANDLE; E_ILLEGAL_METHOD_CALL for a thread-mode client;
///         E_FAIL when the descriptor cannot be created.
#[no_mangle]
pub unsafe extern "C" fn msgr_client_event_fd(
    client: *mut msgr_client,
    fd: *mut i32,
) -> MSGR_HRESULT {
    with_client(c"msgr_client_event_fd", client, |c| {
        out_ptr(fd, "fd")?;
        let v = c.event_fd()?;
        out(fd, "fd", v)?;
        Ok(S_OK)
    })
}

struct CLauncher {
    callback: unsafe extern "C" fn(
        *mut c_void,
        *const c_char,
        *const c_char,
        *const c_char,
        *mut u32,
    ) -> MSGR_HRESULT,
    user_data: UserData,
}

impl Launcher for CLauncher {
    fn launch(&self, r: &LaunchRequest<'_>) -> crate::Result<u32> {
        let path = CString::new(r.path).map_err(|_| E_INVALIDARG)?;
        let id = CString::new(r.session_id).map_err(|_| E_INVALIDARG)?;
        let guid = CString::new(r.app_guid).map_err(|_| E_INVALIDARG)?;
        let mut pid = 0u32;
        // SAFETY: the application's launcher with its own user data and live strings.
        let hr = unsafe {
            (self.callback)(
                self.user_data.ptr(),
                path.as_ptr(),
                id.as_ptr(),
                guid.as_ptr(),
                &mut pid,
            )
        };
        if hr < 0 {
            Err(Hr(hr))
        } else {
            Ok(pid)
        }
    }
}

/// Replaces the launcher that runs when an accepted invitation's BeforeAppLaunch left
/// `enable` true and the application is registered with a path. NULL restores the default,
/// which starts the registered executable directly (never through a shell) with the
/// SessionID as its only argument. The session is then recorded as the launching session
/// of the returned process id (msgr_session_manager_get_launching_session()).
///
/// @param client     The client whose accepted invitations the launcher starts.
/// @param callback   The launcher, or NULL for the default one.
/// @param user_data  Passed to every call of `callback`; any value, never dereferenced by
///                   the library, which does not free it (there is no destroy callback).
/// @return S_OK; E_POINTER for a NULL client; E_HANDLE.
#[no_mangle]
pub unsafe extern "C" fn msgr_client_set_launcher(
    client: *mut msgr_client,
    callback: msgr_launch_callback,
    user_data: *mut c_void,
) -> MSGR_HRESULT {
    with_client(c"msgr_client_set_launcher", client, |c| {
        let l: Arc<dyn Launcher> = match callback {
            Some(cb) => Arc::new(CLauncher {
                callback: cb,
                user_data: UserData::new(user_data, None),
            }),
            None => Arc::new(ProcessLauncher),
        };
        c.set_launcher(l);
        Ok(S_OK)
    })
}
