//! The detail of a failure: which argument was wrong and what form was expected, noted by
//! the check that refuses it, for the C layer's per-thread "last error" text
//! (`msgr_last_error()`).
//!
//! A check that returns a failure code notes its detail with [`detail!`] just before; the
//! C layer takes it when the call returns that failure, and drops it when the call succeeds
//! after all (a failure handled inside the call). Nothing is noted on the paths that
//! succeed, so the cost is one thread-local check per call.

use std::cell::RefCell;
use std::fmt;

std::thread_local! {
    static PENDING: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Notes the detail of the failure the current call is about to return (see [`detail!`]).
#[cold]
#[inline(never)]
pub(crate) fn note(args: fmt::Arguments<'_>) {
    let text = fmt::format(args);
    let _ = PENDING.try_with(|p| *p.borrow_mut() = Some(text));
}

/// Takes the detail noted during the current call, if any.
pub(crate) fn take() -> Option<String> {
    PENDING.try_with(|p| p.borrow_mut().take()).ok().flatten()
}

/// Drops a detail noted during a call that succeeded after all.
#[inline]
pub(crate) fn discard() {
    let _ = PENDING.try_with(|p| {
        if p.borrow().is_some() {
            *p.borrow_mut() = None;
        }
    });
}

/// Notes why the current call fails: `detail!("guid: expected {}", FORM)`. The text names
/// the argument first (as the C function's parameter is named), then what was wrong.
macro_rules! detail {
    ($($t:tt)*) => {
        $crate::detail::note(format_args!($($t)*))
    };
}
pub(crate) use detail;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noted_then_taken_once() {
        assert_eq!(take(), None);
        detail!("guid: expected {}", "{X}");
        assert_eq!(take().as_deref(), Some("guid: expected {X}"));
        assert_eq!(take(), None);
        detail!("x");
        discard();
        assert_eq!(take(), None);
    }
}
