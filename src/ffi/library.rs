//! Library-level functions: version, result-code text, Lock and Key arithmetic.

use super::callbacks::{msgr_destroy_callback, UserData};
use super::guard::{guard, guard_or};
use super::strings::{in_str_max, out_ptr};
use super::MSGR_HRESULT;
use crate::error::{Hr, CODES, E_INVALIDARG, S_OK};
use crate::trace::{set_trace, TraceLevel, TraceSink};
use crate::types::limits::LOCK_FIELD_CHARS;
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

/// "MAJOR.MINOR.PATCH" of this crate, NUL-terminated.
static VERSION: &CStr = match CStr::from_bytes_with_nul(
    concat!(
        env!("CARGO_PKG_VERSION_MAJOR"),
        ".",
        env!("CARGO_PKG_VERSION_MINOR"),
        ".",
        env!("CARGO_PKG_VERSION_PATCH"),
        "\0"
    )
    .as_bytes(),
) {
    Ok(v) => v,
    Err(_) => panic!("version has no interior NUL"),
};

/// The text of every code in `CODES`, NUL-terminated, in table order: made on first use
/// and never freed. Not a `LazyLock`: one that a parent thread was initialising at a fork
/// would block the child for ever; threads racing to make it keep the first one published.
static TEXTS: AtomicPtr<Vec<CString>> = AtomicPtr::new(std::ptr::null_mut());

fn texts() -> &'static [CString] {
    let mut p = TEXTS.load(Ordering::Acquire);
    if p.is_null() {
        let made: Vec<CString> = CODES
            .iter()
            .map(|c| CString::new(c.text).expect("code texts have no NUL"))
            .collect();
        let made = Box::into_raw(Box::new(made));
        p = match TEXTS.compare_exchange(
            std::ptr::null_mut(),
            made,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => made,
            Err(first) => {
                // SAFETY: ours, never published.
                drop(unsafe { Box::from_raw(made) });
                first
            }
        };
    }
    // SAFETY: published once, never freed.
    unsafe { &*p }
}

const UNKNOWN: &CStr = c"Unknown result code.";

/// Returns the version of the library as "MAJOR.MINOR.PATCH", the same version as the
/// MSGR_VERSION_* macros of the header it was built with.
///
/// May be called from any thread, at any time.
///
/// @return a static NUL-terminated string; never NULL, never to be freed.
#[no_mangle]
pub extern "C" fn msgr_version() -> *const c_char {
    VERSION.as_ptr()
}

/// Returns the static English text of a result code (for logs and error messages).
///
/// May be called from any thread, at any time.
///
/// @param hr any value; codes this library does not define give "Unknown result code.".
/// @return a static NUL-terminated string; never NULL, never to be freed.
#[no_mangle]
pub extern "C" fn msgr_result_text(hr: MSGR_HRESULT) -> *const c_char {
    guard_or(c"msgr_result_text", UNKNOWN.as_ptr(), || {
        match CODES.iter().position(|c| c.code == Hr(hr)) {
            Some(i) => texts()[i].as_ptr(),
            None => UNKNOWN.as_ptr(),
        }
    })
}

/// Returns this thread's last error: what the last call that failed on this thread
/// returned and why, as "function: detail (CODE)", for example
/// `msgr_session_manager_register_application: guid: "abc" is not a GUID: expected
/// {XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX} with hex digits (E_INVALIDARG)`. The detail names
/// the argument (as the header names the parameter) and the form expected, or the step to
/// take next; when there is no more to say it is the code's text (msgr_result_text()).
///
/// Calls that succeed leave it as it is: read it right after a call returned a failure
/// code. Each thread has its own; a callback's failed calls are the callback thread's.
///
/// May be called from any thread, at any time.
///
/// @return a NUL-terminated UTF-8 string owned by the library, valid on this thread until
///         the next call that fails on it; "" when no call has failed on this thread. Never
///         NULL, never to be freed.
#[no_mangle]
pub extern "C" fn msgr_last_error() -> *const c_char {
    guard_or(c"msgr_last_error", c"".as_ptr(), super::guard::last_error)
}

/// Computes the Lock and Key response to a challenge: MD5 of the challenge immediately
/// followed by the key, as 32 lowercase hex digits. The application sends it with
/// msgr_session_manager_send_response() after OnLockChallenge gave it the challenge.
///
/// May be called from any thread, at any time; it does not need a service.
///
/// @param challenge the challenge string, UTF-8, at most 256 characters.
/// @param key the application's key, UTF-8, at most 256 characters.
/// @param out_hex_33 a buffer of at least 33 bytes; on success receives the 32 hex digits and
///        a NUL. Untouched on failure.
/// @return S_OK; E_POINTER when an argument is NULL; E_INVALIDARG when a string is not UTF-8
///         or over 256 characters.
#[no_mangle]
pub unsafe extern "C" fn msgr_lock_compute_response(
    challenge: *const c_char,
    key: *const c_char,
    out_hex_33: *mut c_char,
) -> MSGR_HRESULT {
    guard(c"msgr_lock_compute_response", || {
        out_ptr(out_hex_33, "out_hex_33")?;
        let challenge = in_str_max(challenge, "challenge", LOCK_FIELD_CHARS, E_INVALIDARG)?;
        let key = in_str_max(key, "key", LOCK_FIELD_CHARS, E_INVALIDARG)?;
        let hex = crate::lock::compute_response(challenge, key);
        debug_assert_eq!(hex.len(), 32);
        std::ptr::copy_nonoverlapping(hex.as_ptr(), out_hex_33.cast::<u8>(), 32);
        out_hex_33.add(32).write(0);
        Ok(S_OK)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{E_HANDLE, E_POINTER, SR_OLD_SIP_STACK};
    use std::ptr::null;

    fn text(hr: i32) -> &'static str {
        unsafe { CStr::from_ptr(msgr_result_text(hr)) }
            .to_str()
            .unwrap()
    }

    #[test]
    fn version_matches_cargo() {
        let v = unsafe { CStr::from_ptr(msgr_version()) }.to_str().unwrap();
        assert_eq!(
            v,
            env!("CARGO_PKG_VERSION").split(['-', '+']).next().unwrap()
        );
    }

    #[test]
    fn every_code_has_its_text() {
        for c in CODES {
            assert_eq!(text(c.code.0), c.text, "{}", c.name);
        }
        assert_eq!(text(E_HANDLE.0), E_HANDLE.text());
        assert_eq!(text(SR_OLD_SIP_STACK.0), SR_OLD_SIP_STACK.text());
        assert_eq!(text(0x1234), "Unknown result code.");
        assert_eq!(text(-1), "Unknown result code.");
    }

    #[test]
    fn compute_response_known_vector() {
        let mut out = [b'x' as c_char; 40];
        let hr =
            unsafe { msgr_lock_compute_response(c"ab".as_ptr(), c"c".as_ptr(), out.as_mut_ptr()) };
        assert_eq!(hr, S_OK.0);
        let got = unsafe { CStr::from_ptr(out.as_ptr()) }.to_str().unwrap();
        assert_eq!(got, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(out[33], b'x' as c_char);
    }

    #[test]
    fn compute_response_errors_write_nothing() {
        let mut out = [b'x' as c_char; 33];
        let o = out.as_mut_ptr();
        let long = CString::new("k".repeat(257)).unwrap();
        let bad = c"\xff".as_ptr();
        unsafe {
            assert_eq!(
                msgr_lock_compute_response(null(), c"k".as_ptr(), o),
                E_POINTER.0
            );
            assert_eq!(
                msgr_lock_compute_response(c"c".as_ptr(), null(), o),
                E_POINTER.0
            );
            assert_eq!(
                msgr_lock_compute_response(c"c".as_ptr(), c"k".as_ptr(), std::ptr::null_mut()),
                E_POINTER.0
            );
            assert_eq!(
                msgr_lock_compute_response(bad, c"k".as_ptr(), o),
                E_INVALIDARG.0
            );
            assert_eq!(
                msgr_lock_compute_response(c"c".as_ptr(), long.as_ptr(), o),
                E_INVALIDARG.0
            );
        }
        assert_eq!(out, [b'x' as c_char; 33]);
    }
}

/// How much the trace tells (msgr_set_trace()); each level includes the ones before it.
#[repr(C)]
#[allow(dead_code)] // the header's names of the levels; the C layer reads the number
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MSGR_TRACE_LEVEL {
    /// Nothing (the default).
    MSGR_TRACE_OFF = 0,
    /// What is probably a mistake or a loss: an invitation no manager was told of (all
    /// locked, or none), a message not delivered or refused by the other side, events
    /// waiting over a second while nobody dispatches, a sign-in refused, a lost connection.
    MSGR_TRACE_WARNING = 1,
    /// What happens: sign-ins and sign-outs, every message sent and received.
    MSGR_TRACE_INFO = 2,
    /// Every event queued and delivered.
    MSGR_TRACE_DEBUG = 3,
}

/// Receives the trace (msgr_set_trace()): one line of English text per call, without a
/// newline. Called on the thread that did the work, possibly while the library holds locks
/// of its own: it must not call msgrpriv functions, and should return quickly.
///
/// @param user_data The `user_data` given to msgr_set_trace().
/// @param level     The message's level, an MSGR_TRACE_LEVEL (MSGR_TRACE_WARNING to
///                  MSGR_TRACE_DEBUG).
/// @param message   The text, NUL-terminated UTF-8, valid during the call only.
pub type msgr_trace_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, level: i32, message: *const c_char)>;

/// Sets the process's trace: every message up to `level` goes to `callback`, or to stderr
/// when `callback` is NULL ("msgrpriv[level]: text" lines). MSGR_TRACE_OFF turns it off.
/// The environment variable MSGRPRIV_TRACE sets a stderr trace when the first client is
/// created (`1` or `debug`: everything; `info`; `warning`), unless msgr_set_trace() was
/// called before. Off, a trace point costs one relaxed atomic load.
///
/// A previous callback's `destroy` runs once no message is being told to it any more.
///
/// May be called from any thread, at any time (not from inside the trace callback).
///
/// @param level     An MSGR_TRACE_LEVEL.
/// @param callback  Receives the messages; NULL writes them to stderr.
/// @param user_data Handed back to `callback` and `destroy`.
/// @param destroy   Optional; called once with `user_data` when the library no longer
///                  needs it: when the trace is set again, or at once when this call fails
///                  or `level` is MSGR_TRACE_OFF.
/// @return S_OK; E_INVALIDARG for a level outside MSGR_TRACE_OFF..MSGR_TRACE_DEBUG.
#[no_mangle]
pub unsafe extern "C" fn msgr_set_trace(
    level: i32,
    callback: msgr_trace_callback,
    user_data: *mut c_void,
    destroy: msgr_destroy_callback,
) -> MSGR_HRESULT {
    guard(c"msgr_set_trace", || {
        let ud = UserData::new(user_data, destroy);
        let levels =
            MSGR_TRACE_LEVEL::MSGR_TRACE_OFF as i32..=MSGR_TRACE_LEVEL::MSGR_TRACE_DEBUG as i32;
        let level = u8::try_from(level)
            .ok()
            .filter(|l| levels.contains(&i32::from(*l)))
            .and_then(TraceLevel::from_u8)
            .ok_or_else(|| {
                crate::detail::detail!(
                    "level: {level}, expected MSGR_TRACE_OFF (0) to MSGR_TRACE_DEBUG (3)"
                );
                E_INVALIDARG
            })?;
        let sink: Option<TraceSink> = match (level, callback) {
            (TraceLevel::Off, _) | (_, None) => None,
            (_, Some(cb)) => Some(Arc::new(move |level: TraceLevel, text: &str| {
                let text = CString::new(text.replace('\0', " ")).unwrap_or_default();
                // SAFETY: the application's callback with its user data and a valid string.
                unsafe { cb(ud.ptr(), level as i32, text.as_ptr()) }
            })),
        };
        set_trace(level, sink);
        Ok(S_OK)
    })
}
