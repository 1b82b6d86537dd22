//! The panic boundary: every exported body runs inside [`guard`] (or [`guard_or`] for the few
//! functions that do not return a result code), so no Rust panic ever unwinds into C.
//!
//! A caught panic becomes E_UNEXPECTED. The core's locks (`crate::locks`) do not poison,
//! so the library stays usable after a contained panic.
//!
//! The guard also keeps this thread's last error (`msgr_last_error()`): when the function
//! `name` returns a failure code, "name: detail (CODE)", the detail noted by the check
//! that failed (`crate::detail`) or else the code's own text.

use super::MSGR_HRESULT;
use crate::error::{Hr, E_UNEXPECTED};
use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

std::thread_local! {
    /// This thread's last error text; None until a call fails on this thread.
    static LAST: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Runs the function `name`'s body `f` and turns its outcome into a result code: `Ok(hr)`
/// gives `hr`, `Err(hr)` gives `hr`, a panic gives E_UNEXPECTED. A failure code becomes
/// this thread's last error.
#[inline]
pub(crate) fn guard(name: &'static CStr, f: impl FnOnce() -> crate::Result<Hr>) -> MSGR_HRESULT {
    let hr = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(hr)) | Ok(Err(hr)) => hr,
        Err(payload) => {
            drop_payload(payload);
            crate::detail::detail!(
                "an internal error was contained (a panic); the library remains usable"
            );
            E_UNEXPECTED
        }
    };
    if hr.failed() {
        record(name, hr);
    } else {
        crate::detail::discard();
    }
    hr.0
}

/// Runs `f` for the function `name` that does not return a result code (a getter of static
/// text, a `void` function); a panic gives `fallback`.
#[inline]
pub(crate) fn guard_or<T>(name: &'static CStr, fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            drop_payload(payload);
            crate::detail::detail!("an internal error was contained (a panic)");
            record(name, E_UNEXPECTED);
            fallback
        }
    }
}

/// Makes "name: detail (CODE)" this thread's last error.
#[cold]
#[inline(never)]
fn record(name: &CStr, hr: Hr) {
    let detail = crate::detail::take();
    let what = detail.as_deref().unwrap_or(hr.text());
    let code = match hr.name() {
        Some(n) => n.to_owned(),
        None => format!("0x{:08X}", hr.0 as u32),
    };
    let text = format!("{}: {what} ({code})", name.to_string_lossy()).replace('\0', " ");
    let text = CString::new(text).unwrap_or_default();
    let _ = LAST.try_with(|l| *l.borrow_mut() = Some(text));
}

/// This thread's last error text (see `msgr_last_error()`): valid until the next call that
/// fails on this thread.
pub(crate) fn last_error() -> *const c_char {
    LAST.try_with(|l| l.borrow().as_ref().map_or(c"".as_ptr(), |t| t.as_ptr()))
        .unwrap_or(c"".as_ptr())
}

/// Drops a panic payload without letting a panicking `Drop` of the payload escape: a second
/// panic from that drop is caught and its payload leaked (it cannot be dropped safely either).
#[cold]
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{E_INVALIDARG, S_FALSE, S_OK};

    #[test]
    fn results_pass_through() {
        assert_eq!(guard(c"f", || Ok(S_OK)), 0);
        assert_eq!(guard(c"f", || Ok(S_FALSE)), 1);
        assert_eq!(guard(c"f", || Err(E_INVALIDARG)), E_INVALIDARG.0);
    }

    #[test]
    fn a_failure_is_the_threads_last_error_until_the_next() {
        let text = || {
            unsafe { std::ffi::CStr::from_ptr(last_error()) }
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(guard(c"msgr_f", || Err(E_INVALIDARG)), E_INVALIDARG.0);
        assert_eq!(
            text(),
            "msgr_f: An argument is invalid: bad value, invalid UTF-8 or over its limit. (E_INVALIDARG)"
        );
        // Success leaves it; a detail noted by a check that failed inside a call that
        // succeeded after all is dropped.
        assert_eq!(
            guard(c"msgr_g", || {
                crate::detail::detail!("x: noted, then handled");
                Ok(S_OK)
            }),
            0
        );
        assert!(text().starts_with("msgr_f: "));
        assert_eq!(
            guard(c"msgr_h", || {
                crate::detail::detail!("guid: expected braces");
                Err(E_INVALIDARG)
            }),
            E_INVALIDARG.0
        );
        assert_eq!(text(), "msgr_h: guid: expected braces (E_INVALIDARG)");
        // Each thread has its own.
        std::thread::spawn(move || assert_eq!(text(), ""))
            .join()
            .unwrap();
    }

    #[test]
    fn panics_become_e_unexpected() {
        assert_eq!(guard(c"f", || panic!("contained")), E_UNEXPECTED.0);
        assert_eq!(guard_or(c"f", 7, || -> i32 { panic!("contained") }), 7);
        assert_eq!(guard_or(c"f", 7, || 3), 3);
    }

    #[test]
    fn a_panicking_payload_drop_is_contained() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("payload drop");
            }
        }
        let hr = guard(c"f", || std::panic::panic_any(Bomb));
        assert_eq!(hr, E_UNEXPECTED.0);
    }
}
