//! `msgr_service_*`: the embedded Messenger service.

use super::guard;
use super::handles;
use super::strings::{in_opt_str, in_str, out, out_ptr};
use super::{msgr_service, MSGR_HRESULT};
use crate::error::{Result, E_ILLEGAL_METHOD_CALL, E_INVALIDARG, S_FALSE, S_OK};
use crate::service::{EmbeddedService, Service, ServiceOptions};
use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

/// Options for msgr_service_create(). Set `struct_size` to `sizeof(msgr_service_options)`;
/// fields added later go at the end, so older callers keep working.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct msgr_service_options {
    /// `sizeof(msgr_service_options)` as the caller compiled it. Values smaller than the
    /// first version's size give E_INVALIDARG; fields beyond `struct_size` (added by later
    /// versions) are not read and keep their defaults.
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
    pub registry_path: *const c_char,
}

/// The size of the first version of msgr_service_options (every field up to
/// `registry_path`): the smallest `struct_size` accepted.
const OPTIONS_V1_SIZE: usize = std::mem::size_of::<msgr_service_options>();

/// Creates an embedded Messenger service.
///
/// @param options  NULL for the defaults (120 s timeout, real clock, registry in memory).
/// @param out      Receives the service handle; release it with msgr_service_destroy().
/// @return S_OK; E_POINTER when `out` is NULL; E_INVALIDARG for a bad `struct_size` or an
///         invalid UTF-8 path; E_FAIL when the registry file cannot be opened (a directory, a
///         symbolic link, unparsable content).
#[no_mangle]
pub unsafe extern "C" fn msgr_service_create(
    options: *const msgr_service_options,
    out_service: *mut *mut msgr_service,
) -> MSGR_HRESULT {
    guard(|| {
        out_ptr(out_service)?;
        let mut opts = ServiceOptions::default();
        if !options.is_null() {
            // Read only the `struct_size` bytes the caller has: fields added in later
            // versions keep their zero default for older callers.
            let size = options.cast::<u32>().read_unaligned() as usize;
            if size < OPTIONS_V1_SIZE {
                return Err(E_INVALIDARG);
            }
            let mut o = msgr_service_options {
                struct_size: 0,
                invitation_timeout_ms: 0,
                manual_clock: false,
                registry_path: std::ptr::null(),
            };
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
            opts.registry_path = in_opt_str(o.registry_path)?.map(Into::into);
        }
        let svc = EmbeddedService::new(opts)?;
        let h =
            handles::insert::<msgr_service, ServiceHandle>(Arc::new(ServiceHandle::embedded(svc)))?;
        out(out_service, h)?;
        Ok(S_OK)
    })
}

/// Adds (or replaces) a Lock and Key application ID/key pair. Lock and Key is in force from
/// the next sign-in on as soon as the service holds one pair.
///
/// @return S_OK; E_POINTER for a NULL argument; E_HANDLE; E_INVALIDARG for an empty, over
///         256 characters or invalid UTF-8 ID or key.
#[no_mangle]
pub unsafe extern "C" fn msgr_service_add_app_key(
    service: *mut msgr_service,
    app_id: *const c_char,
    key: *const c_char,
) -> MSGR_HRESULT {
    guard(|| {
        let svc = embedded(service)?;
        svc.add_app_key(in_str(app_id)?, in_str(key)?)?;
        Ok(S_OK)
    })
}

/// Moves a manual clock forward by `ms` milliseconds and fires, in the calling thread, the
/// session deadlines that fell due (invitation timeouts; their events are queued to the
/// clients).
///
/// @return S_OK; E_POINTER; E_HANDLE; E_ILLEGAL_METHOD_CALL when the service runs on the
///         real clock.
#[no_mangle]
pub unsafe extern "C" fn msgr_service_advance_clock(
    service: *mut msgr_service,
    ms: u64,
) -> MSGR_HRESULT {
    guard(|| {
        let svc = embedded(service)?;
        svc.advance_clock(ms)?;
        Ok(S_OK)
    })
}

/// Test hook: makes messages to `sign_in_name` fail delivery (as if its network were cut),
/// so senders get OnSendError, or succeed again. An undelivered invitation, Accept or
/// Decline leaves the inviter to time out.
///
/// @return S_OK; S_FALSE when that user is not signed in (nothing changes); E_POINTER;
///         E_HANDLE; E_INVALIDARG for invalid UTF-8.
#[no_mangle]
pub unsafe extern "C" fn msgr_service_set_reachable(
    service: *mut msgr_service,
    sign_in_name: *const c_char,
    reachable: bool,
) -> MSGR_HRESULT {
    guard(|| {
        let svc = embedded(service)?;
        let name = in_str(sign_in_name)?;
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
/// @return S_OK; E_HANDLE for a stale or wrong-kind handle.
#[no_mangle]
pub unsafe extern "C" fn msgr_service_destroy(service: *mut msgr_service) -> MSGR_HRESULT {
    guard(|| {
        let svc = handles::remove::<msgr_service, ServiceHandle>(service)?;
        drop(svc);
        Ok(S_OK)
    })
}

/// What a `msgr_service` handle holds: the service behind the seam, and the embedded
/// service's test hooks when it is that one (the hooks give E_ILLEGAL_METHOD_CALL on any
/// other).
pub(crate) struct ServiceHandle {
    pub(crate) service: Arc<dyn Service>,
    embedded: Option<EmbeddedService>,
}

impl ServiceHandle {
    fn embedded(svc: EmbeddedService) -> Self {
        ServiceHandle {
            service: Arc::new(svc.clone()),
            embedded: Some(svc),
        }
    }
}

/// The embedded service behind `service`, for its test hooks.
unsafe fn embedded(service: *mut msgr_service) -> Result<EmbeddedService> {
    let h: Arc<ServiceHandle> = handles::get(service)?;
    h.embedded.clone().ok_or(E_ILLEGAL_METHOD_CALL)
}
