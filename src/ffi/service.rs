//! `msgr_service_*`: the service behind the clients: the embedded Messenger service, or the
//! XMPP service (when the library is built with the `xmpp` feature).

use super::callbacks::{msgr_destroy_callback, UserData};
use super::guard;
use super::handles;
use super::strings::{in_opt_str, in_str, out, out_ptr};
use super::{msgr_service, MSGR_HRESULT};
use crate::error::{Result, E_ILLEGAL_METHOD_CALL, E_INVALIDARG, S_FALSE, S_OK};
use crate::service::{EmbeddedService, Service, ServiceOptions};
use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

/// Options for msgr_service_create(). Set `struct_size` to `sizeof(msgr_service_options)`;
/// fields added later go at the end, so older callers keep working.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct msgr_service_options {
    /// `sizeof(msgr_service_options)` as the caller compiled it: the size of this version,
    /// of the first one (every field up to `registry_path`), of the second one (every field
    /// up to `credentials_destroy`), or of a later, larger one; any other value gives
    /// E_INVALIDARG. Fields beyond `struct_size` are not read and keep their defaults.
    pub struct_size: u32,
    /// How long an invitation may go unanswered before both sides end with
    /// SR_SESSION_TIMEOUT, in milliseconds; 0 means the default, 120000 (two minutes). The
    /// inviter keeps the time and tells the invitee; an invitee that hears nothing ends by
    /// itself five seconds later.
    pub invitation_timeout_ms: u32,
    /// true: time moves only through msgr_service_advance_clock() (for tests);
    /// false: the real monotonic clock.
    pub manual_clock: bool,
    /// UTF-8 path of the registry file (JSON, created 0600 if missing, shared safely between
    /// processes); NULL keeps the application registry in memory. A lookup (invite, accept,
    /// application name and URL) waits at most 250 ms for another process that holds the
    /// file's lock, then reads the file without the lock (it is only ever replaced whole).
    /// Changes made through another service on the file, in any process, are announced to
    /// this service's managers (OnAppRegistered, OnAppUnRegistered) within about a tenth of
    /// a second: a thread of the service checks the file.
    pub registry_path: *const c_char,
    /// MSGR_TRANSPORT_EMBEDDED (0, the default) or MSGR_TRANSPORT_XMPP.
    pub transport: i32,
    /// XMPP: the server's host, UTF-8: an IP literal ("127.0.0.1", "::1", no brackets) or a
    /// host name, resolved at each sign-in (required: NULL gives E_POINTER, "" E_INVALIDARG).
    /// With `tls` MSGR_TLS_PLAIN only a loopback IP literal is accepted (E_INVALIDARG
    /// otherwise).
    pub server_host: *const c_char,
    /// XMPP: the server's client port; 0 means 5222, the usual port for both STARTTLS and
    /// plain TCP (above 65535: E_INVALIDARG). Direct TLS servers usually listen on 5223.
    pub server_port: u32,
    /// XMPP: the resource each client binds; NULL means "msgrpriv".
    pub xmpp_resource: *const c_char,
    /// XMPP: how long a sign-in (connect, authenticate, bind) may take, in milliseconds; 0
    /// means 10000. Past it the sign-in fails with MSGR_E_DISCONNECTED.
    pub connect_timeout_ms: u32,
    /// XMPP: how long a step may wait for the peer's acknowledgement before it counts as not
    /// delivered (OnSendError), in milliseconds; 0 means 10000.
    pub request_timeout_ms: u32,
    /// XMPP: gives the password of each sign-in name (required for MSGR_TRANSPORT_XMPP).
    pub credentials: msgr_credential_callback,
    /// Handed back to `credentials`.
    pub credentials_user_data: *mut c_void,
    /// Called once with `credentials_user_data` when the service no longer needs it (once
    /// the service and every client on it are gone), or when msgr_service_create() fails for
    /// an XMPP service. Optional.
    pub credentials_destroy: msgr_destroy_callback,
    /// XMPP: how the connection to the server is protected (an MSGR_TLS value; others give
    /// E_INVALIDARG): MSGR_TLS_STARTTLS (0, the default), MSGR_TLS_DIRECT or MSGR_TLS_PLAIN.
    pub tls: i32,
    /// XMPP: UTF-8 path of a PEM file of the certificates trusted to sign (or be) the
    /// server's certificate; it replaces the system's trust store. NULL (the default): the
    /// system's store. A file that cannot be read or holds no certificate, or invalid UTF-8:
    /// E_INVALIDARG.
    pub ca_file: *const c_char,
    /// XMPP: the XMPP domain, UTF-8. When set, it is the name the server's certificate must
    /// carry and the stream's `to`, a sign-in name without '@' is completed with it ("alice"
    /// signs in as "alice@<domain>"), and a sign-in name at another domain is refused
    /// (E_INVALIDARG at sign-in). NULL (the default): each sign-in name's own domain. An
    /// empty or invalid domain: E_INVALIDARG.
    pub xmpp_domain: *const c_char,
    /// XMPP: how long the connection to the server may be quiet before the client pings
    /// the server, in milliseconds; 0 means 30000. A ping not answered within
    /// `request_timeout_ms` counts as a lost connection.
    pub xmpp_keepalive_ms: u32,
    /// XMPP: after a lost connection the client is signed out and the service signs it in
    /// again, first after about a second, then after twice the pause before each time, up
    /// to this many milliseconds (see msgr_client_get_connection_state()); 0 means 30000;
    /// MSGR_INFINITE: never (the client stays signed out).
    pub xmpp_reconnect_max_ms: u32,
    /// XMPP: true takes invitations from users who are not among the invitee's contacts
    /// (its roster, which includes the server's shared groups); false (the default) refuses
    /// them: the inviter's session ends declined with E_ACCESSDENIED.
    pub xmpp_allow_strangers: bool,
    /// XMPP: how many invitations one sender may send to one client in a minute; more are
    /// refused (the inviter's session ends declined with E_NOT_ENOUGH_QUOTA). 0 means 30;
    /// MSGR_INFINITE: no limit.
    pub xmpp_invitations_per_minute: u32,
}

impl Default for msgr_service_options {
    /// Every field zero or NULL (the defaults), `struct_size` this version's.
    fn default() -> Self {
        msgr_service_options {
            struct_size: std::mem::size_of::<msgr_service_options>() as u32,
            invitation_timeout_ms: 0,
            manual_clock: false,
            registry_path: std::ptr::null(),
            transport: 0,
            server_host: std::ptr::null(),
            server_port: 0,
            xmpp_resource: std::ptr::null(),
            connect_timeout_ms: 0,
            request_timeout_ms: 0,
            credentials: None,
            credentials_user_data: std::ptr::null_mut(),
            credentials_destroy: None,
            tls: 0,
            ca_file: std::ptr::null(),
            xmpp_domain: std::ptr::null(),
            xmpp_keepalive_ms: 0,
            xmpp_reconnect_max_ms: 0,
            xmpp_allow_strangers: false,
            xmpp_invitations_per_minute: 0,
        }
    }
}

/// The size of the first version of msgr_service_options (every field up to
/// `registry_path`): the smallest `struct_size` accepted.
const OPTIONS_V1_SIZE: usize = std::mem::offset_of!(msgr_service_options, registry_path)
    + std::mem::size_of::<*const c_char>();

/// The size of the second version of msgr_service_options (every field up to
/// `credentials_destroy`).
const OPTIONS_V2_SIZE: usize = std::mem::offset_of!(msgr_service_options, credentials_destroy)
    + std::mem::size_of::<msgr_destroy_callback>();

/// The size of the third version of msgr_service_options (every field up to
/// `xmpp_domain`).
const OPTIONS_V3_SIZE: usize =
    std::mem::offset_of!(msgr_service_options, xmpp_domain) + std::mem::size_of::<*const c_char>();

/// How the XMPP service protects its connections (msgr_service_options.tls).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MSGR_TLS {
    /// STARTTLS, required (the default): the server must offer it and its certificate must
    /// verify for the XMPP domain against the trust roots (the system's store, or
    /// `ca_file`); otherwise the sign-in fails with SR_NETWORK_CONFIG_FAILURE, at once.
    MSGR_TLS_STARTTLS = 0,
    /// Direct TLS (XEP-0368): TLS from the first byte, to a port that expects it (often
    /// 5223); the certificate is verified as for MSGR_TLS_STARTTLS.
    MSGR_TLS_DIRECT = 1,
    /// Plain TCP, unencrypted: accepted only when `server_host` is a loopback IP literal.
    MSGR_TLS_PLAIN = 2,
}

/// Which service msgr_service_create() makes (msgr_service_options.transport).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MSGR_TRANSPORT {
    /// The embedded, in-process service: clients of one service invite each other.
    MSGR_TRANSPORT_EMBEDDED = 0,
    /// An XMPP server: sign-in names are bare JIDs, clients in any process or on any machine
    /// signed in to the server invite each other. E_NOTIMPL when the library was built
    /// without the `xmpp` feature.
    MSGR_TRANSPORT_XMPP = 1,
}

/// Gives the password of `sign_in_name` for an XMPP sign-in: write it, NUL-terminated, into
/// `password` (`password_size` bytes) and return true; false refuses the sign-in
/// (SR_AUTHENTICATION_FAILED). Called once per sign-in: on the thread that signs in
/// (msgr_client_create(), msgr_client_sign_in()), or on the service's own thread when it
/// signs a client in again after a lost connection (a refusal then ends the attempts). The
/// library wipes the buffer after use and never logs it.
///
/// @param user_data      The options' `credentials_user_data`.
/// @param sign_in_name   The sign-in name (the bare JID), NUL-terminated UTF-8; valid during
///                       the call only.
/// @param password       The buffer to write the password into, UTF-8 and NUL-terminated
///                       (a password without a NUL in the buffer, or not UTF-8, refuses the
///                       sign-in); valid during the call only.
/// @param password_size  The size of `password` in bytes, the terminator included.
/// @return true when `password` holds the password; false to refuse the sign-in.
pub type msgr_credential_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        sign_in_name: *const c_char,
        password: *mut c_char,
        password_size: usize,
    ) -> bool,
>;

/// Creates a service: the embedded Messenger service, or, with `transport` set to
/// MSGR_TRANSPORT_XMPP, an XMPP service that signs each client in to an XMPP server (a
/// sign-in name is then a bare JID, signing in is an XMPP login over TLS (STARTTLS by
/// default): SR_AUTHENTICATION_FAILED when the server refuses it, SR_NETWORK_CONFIG_FAILURE
/// when the TLS the options ask for cannot be set up (no STARTTLS offered, a certificate that
/// does not verify), MSGR_E_DISCONNECTED when the server cannot be reached in time; the
/// protocol is docs/xmpp.md). The XMPP service runs one thread of its own; callbacks still
/// run where each client's dispatch mode says. manual_clock is ignored by the XMPP service.
///
/// @param options  NULL for the defaults (embedded, 120 s timeout, real clock, registry in
///                 memory).
///                 Otherwise read only during the call (strings are copied); its
///                 `struct_size` says how much of it the caller has.
/// @param out_service  Receives the service handle; release it with msgr_service_destroy().
/// @return S_OK; E_POINTER when `out_service` is NULL, or an XMPP service has no `credentials`;
///         E_INVALIDARG for a bad `struct_size`, an unknown transport or TLS policy, an
///         invalid UTF-8 string, an empty `server_host`, MSGR_TLS_PLAIN with a
///         `server_host` that is not a loopback IP literal, a `ca_file` that cannot be read
///         or holds no certificate, an empty or invalid `xmpp_domain` or an empty
///         `xmpp_resource`;
///         E_NOTIMPL for MSGR_TRANSPORT_XMPP when the library was built without the `xmpp`
///         feature; E_FAIL when the registry file cannot be opened (a directory, a symbolic
///         link, unparsable content).
#[no_mangle]
pub unsafe extern "C" fn msgr_service_create(
    options: *const msgr_service_options,
    out_service: *mut *mut msgr_service,
) -> MSGR_HRESULT {
    guard(c"msgr_service_create", || {
        out_ptr(out_service, "out_service")?;
        let mut opts = ServiceOptions::default();
        if !options.is_null() {
            // Read only the `struct_size` bytes the caller has: fields added in later
            // versions keep their zero default for older callers.
            let size = options.cast::<u32>().read_unaligned() as usize;
            let current = std::mem::size_of::<msgr_service_options>();
            let older = [OPTIONS_V1_SIZE, OPTIONS_V2_SIZE, OPTIONS_V3_SIZE];
            if !older.contains(&size) && size < current {
                return Err(E_INVALIDARG);
            }
            let mut o = msgr_service_options::default();
            let n = size.min(std::mem::size_of::<msgr_service_options>());
            std::ptr::copy_nonoverlapping(
                options.cast::<u8>(),
                (&mut o as *mut msgr_service_options).cast::<u8>(),
                n,
            );
            if o.invitation_timeout_ms != 0 {
                opts.invitation_timeout = Duration::from_millis(o.invitation_timeout_ms.into());
            }
            opts.manual_clock = o.manual_clock;
            opts.registry_path =
                in_opt_str(o.registry_path, "options->registry_path")?.map(Into::into);
            match o.transport {
                0 => {}
                1 => {
                    let h = xmpp_service(&o, &opts)?;
                    out(
                        out_service,
                        "out_service",
                        handles::insert::<msgr_service, ServiceHandle>(Arc::new(h))?,
                    )?;
                    return Ok(S_OK);
                }
                _ => return Err(E_INVALIDARG),
            }
        }
        let svc = EmbeddedService::new(opts)?;
        let h =
            handles::insert::<msgr_service, ServiceHandle>(Arc::new(ServiceHandle::embedded(svc)))?;
        out(out_service, "out_service", h)?;
        Ok(S_OK)
    })
}

/// The XMPP service the options describe.
#[cfg(feature = "xmpp")]
unsafe fn xmpp_service(o: &msgr_service_options, opts: &ServiceOptions) -> Result<ServiceHandle> {
    use crate::xmpp::{Tls, XmppOptions, XmppService};
    // First: whatever fails below, the destroy notification runs once (when this drops).
    let user_data = Arc::new(UserData::new(
        o.credentials_user_data,
        o.credentials_destroy,
    ));
    let host = in_str(o.server_host, "options->server_host")?;
    let port = match o.server_port {
        0 => 5222u16,
        p => u16::try_from(p).map_err(|_| E_INVALIDARG)?,
    };
    let tls = match o.tls {
        0 => Tls::StartTls,
        1 => Tls::Direct,
        2 => Tls::Plain,
        _ => return Err(E_INVALIDARG),
    };
    let ca_file = in_opt_str(o.ca_file, "options->ca_file")?.map(std::path::PathBuf::from);
    let domain = in_opt_str(o.xmpp_domain, "options->xmpp_domain")?.map(str::to_owned);
    let callback = o.credentials.ok_or(crate::error::E_POINTER)?;
    let credentials: crate::xmpp::Credentials = Arc::new(move |name: &str| {
        let name = std::ffi::CString::new(name).ok()?;
        let mut buf = vec![0u8; 1024];
        // SAFETY: the caller's callback, with a buffer of the size given.
        let ok = unsafe {
            callback(
                user_data.ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast::<c_char>(),
                buf.len(),
            )
        };
        let len = buf.iter().position(|&b| b == 0);
        let password = match (ok, len) {
            (true, Some(len)) => std::str::from_utf8(&buf[..len]).ok().map(str::to_owned),
            _ => None,
        };
        crate::xmpp::wipe(&mut buf);
        password
    });
    let mut x = XmppOptions::new(host, port, credentials);
    x.tls = tls;
    x.ca_file = ca_file;
    x.domain = domain;
    x.invitation_timeout = opts.invitation_timeout;
    x.registry_path = opts.registry_path.clone();
    if let Some(r) = in_opt_str(o.xmpp_resource, "options->xmpp_resource")? {
        if r.is_empty() {
            return Err(E_INVALIDARG);
        }
        x.resource = r.to_owned();
    }
    if o.connect_timeout_ms != 0 {
        x.connect_timeout = Duration::from_millis(o.connect_timeout_ms.into());
    }
    if o.request_timeout_ms != 0 {
        x.request_timeout = Duration::from_millis(o.request_timeout_ms.into());
    }
    if o.xmpp_keepalive_ms != 0 {
        x.keepalive = Duration::from_millis(o.xmpp_keepalive_ms.into());
    }
    match o.xmpp_reconnect_max_ms {
        0 => {}
        u32::MAX => x.reconnect_max = Duration::ZERO, // MSGR_INFINITE
        ms => x.reconnect_max = Duration::from_millis(ms.into()),
    }
    x.allow_strangers = o.xmpp_allow_strangers;
    match o.xmpp_invitations_per_minute {
        0 => {}
        u32::MAX => x.invitations_per_minute = 0, // MSGR_INFINITE
        n => x.invitations_per_minute = n,
    }
    Ok(ServiceHandle::xmpp(XmppService::new(x)?))
}

#[cfg(not(feature = "xmpp"))]
unsafe fn xmpp_service(o: &msgr_service_options, _: &ServiceOptions) -> Result<ServiceHandle> {
    drop(UserData::new(
        o.credentials_user_data,
        o.credentials_destroy,
    ));
    Err(crate::error::E_NOTIMPL)
}

/// Adds (or replaces) a Lock and Key application ID/key pair. Lock and Key is in force from
/// the next sign-in on as soon as the service holds one pair.
///
/// @param service  The service (embedded or XMPP).
/// @param app_id   The application ID: UTF-8, 1 to 256 characters; copied.
/// @param key      Its key: UTF-8, 1 to 256 characters; copied. A pair with the same ID
///                 replaces the previous key.
/// @return S_OK; E_POINTER for a NULL argument; E_HANDLE; E_INVALIDARG for an empty, over
///         256 characters or invalid UTF-8 ID or key.
#[no_mangle]
pub unsafe extern "C" fn msgr_service_add_app_key(
    service: *mut msgr_service,
    app_id: *const c_char,
    key: *const c_char,
) -> MSGR_HRESULT {
    guard(c"msgr_service_add_app_key", || {
        let h: Arc<ServiceHandle> = handles::get(service)?;
        h.add_app_key(in_str(app_id, "app_id")?, in_str(key, "key")?)?;
        Ok(S_OK)
    })
}

/// Moves a manual clock forward by `ms` milliseconds and fires, in the calling thread, the
/// session deadlines that fell due (invitation timeouts; their events are queued to the
/// clients).
///
/// @param service  An embedded service created with `manual_clock` true (any other service
///                 gives E_ILLEGAL_METHOD_CALL).
/// @param ms       How far to move the clock, in milliseconds.
/// @return S_OK; E_POINTER; E_HANDLE; E_ILLEGAL_METHOD_CALL when the service runs on the
///         real clock.
#[no_mangle]
pub unsafe extern "C" fn msgr_service_advance_clock(
    service: *mut msgr_service,
    ms: u64,
) -> MSGR_HRESULT {
    guard(c"msgr_service_advance_clock", || {
        let svc = embedded(service)?;
        svc.advance_clock(ms)?;
        Ok(S_OK)
    })
}

/// Test hook: makes messages to `sign_in_name` fail delivery (as if its network were cut),
/// so senders get OnSendError, or succeed again. An undelivered invitation, Accept or
/// Decline leaves the inviter to time out.
///
/// @param service       An embedded service (an XMPP service gives E_ILLEGAL_METHOD_CALL).
/// @param sign_in_name  The user whose messages to cut or restore, NUL-terminated UTF-8.
/// @param reachable     false: messages to that user fail delivery; true: they are delivered
///                      again.
/// @return S_OK; S_FALSE when that user is not signed in (nothing changes); E_POINTER;
///         E_HANDLE; E_INVALIDARG for invalid UTF-8.
#[no_mangle]
pub unsafe extern "C" fn msgr_service_set_reachable(
    service: *mut msgr_service,
    sign_in_name: *const c_char,
    reachable: bool,
) -> MSGR_HRESULT {
    guard(c"msgr_service_set_reachable", || {
        let svc = embedded(service)?;
        let name = in_str(sign_in_name, "sign_in_name")?;
        Ok(if svc.set_reachable(name, reachable) {
            S_OK
        } else {
            S_FALSE
        })
    })
}

/// Destroys a service handle. Clients created on it keep working until they are destroyed
/// (they hold the service alive). NULL does nothing.
///
/// @param service  The service, or NULL; the handle is stale once this returns S_OK.
/// @return S_OK; E_HANDLE for a stale or wrong-kind handle.
#[no_mangle]
pub unsafe extern "C" fn msgr_service_destroy(service: *mut msgr_service) -> MSGR_HRESULT {
    guard(c"msgr_service_destroy", || {
        let svc = handles::remove::<msgr_service, ServiceHandle>(service)?;
        drop(svc);
        Ok(S_OK)
    })
}

/// What a `msgr_service` handle holds: the service behind the seam, and the concrete
/// service for what only it offers (the embedded service's test hooks give
/// E_ILLEGAL_METHOD_CALL on any other).
pub(crate) struct ServiceHandle {
    pub(crate) service: Arc<dyn Service>,
    concrete: Concrete,
}

enum Concrete {
    Embedded(EmbeddedService),
    #[cfg(feature = "xmpp")]
    Xmpp(crate::xmpp::XmppService),
}

impl ServiceHandle {
    fn embedded(svc: EmbeddedService) -> Self {
        ServiceHandle {
            service: Arc::new(svc.clone()),
            concrete: Concrete::Embedded(svc),
        }
    }

    #[cfg(feature = "xmpp")]
    fn xmpp(svc: crate::xmpp::XmppService) -> Self {
        ServiceHandle {
            service: Arc::new(svc.clone()),
            concrete: Concrete::Xmpp(svc),
        }
    }

    fn add_app_key(&self, app_id: &str, key: &str) -> Result<()> {
        match &self.concrete {
            Concrete::Embedded(s) => s.add_app_key(app_id, key),
            #[cfg(feature = "xmpp")]
            Concrete::Xmpp(s) => s.add_app_key(app_id, key),
        }
    }
}

/// The embedded service behind `service`, for its test hooks.
unsafe fn embedded(service: *mut msgr_service) -> Result<EmbeddedService> {
    let h: Arc<ServiceHandle> = handles::get(service)?;
    match &h.concrete {
        Concrete::Embedded(s) => Ok(s.clone()),
        #[allow(unreachable_patterns)] // the only variant without the xmpp feature
        _ => Err(E_ILLEGAL_METHOD_CALL),
    }
}
