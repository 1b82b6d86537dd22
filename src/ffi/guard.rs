//! The panic boundary: every exported body runs inside [`guard`] (or [`guard_or`] for the few
//! functions that do not return a result code), so no Rust panic ever unwinds into C.
//!
//! A caught panic becomes E_UNEXPECTED. The core's locks (`crate::locks`) do not poison,
//! so the library stays usable after a contained panic.

use super::MSGR_HRESULT;
use crate::error::{Hr, E_UNEXPECTED};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f` and turns its outcome into a result code: `Ok(hr)` gives `hr`, `Err(hr)` gives
/// `hr`, a panic gives E_UNEXPECTED.
#[inline]
pub(crate) fn guard(f: impl FnOnce() -> crate::Result<Hr>) -> MSGR_HRESULT {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(hr)) | Ok(Err(hr)) => hr.0,
        Err(payload) => {
            drop_payload(payload);
            E_UNEXPECTED.0
        }
    }
}

/// Runs `f` for a function that does not return a result code (a getter of static text, a
/// `void` function); a panic gives `fallback`.
#[inline]
pub(crate) fn guard_or<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            drop_payload(payload);
            fallback
        }
    }
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
        assert_eq!(guard(|| Ok(S_OK)), 0);
        assert_eq!(guard(|| Ok(S_FALSE)), 1);
        assert_eq!(guard(|| Err(E_INVALIDARG)), E_INVALIDARG.0);
    }

    #[test]
    fn panics_become_e_unexpected() {
        assert_eq!(guard(|| panic!("contained")), E_UNEXPECTED.0);
        assert_eq!(guard_or(7, || -> i32 { panic!("contained") }), 7);
        assert_eq!(guard_or(7, || 3), 3);
    }

    #[test]
    fn a_panicking_payload_drop_is_contained() {
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("payload drop");
            }
        }
        let hr = guard(|| std::panic::panic_any(Bomb));
        assert_eq!(hr, E_UNEXPECTED.0);
    }
}
