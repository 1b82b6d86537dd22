//! Argument and output conventions (docs/CONTRACT.md, "Conventions of the C interface"): UTF-8
//! NUL-terminated input strings, output pointers written only on success, and the
//! caller-buffer convention for string outputs `(char *buf, size_t buf_len, size_t *needed)`.

// Helpers for the object-level functions; until all of them exist some have no caller.

use crate::detail::detail;
use crate::error::{Hr, Result, E_INSUFFICIENT_BUFFER, E_INVALIDARG, E_POINTER, S_OK};
use crate::types::check_chars;
use std::ffi::{c_char, CStr};

/// Borrows a required input string, the argument `name`. NULL gives E_POINTER, invalid UTF-8
/// E_INVALIDARG (each with its detail).
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a` and is not written
/// meanwhile.
#[inline]
pub(crate) unsafe fn in_str<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    if p.is_null() {
        detail!("{name}: NULL, where a string is required");
        return Err(E_POINTER);
    }
    CStr::from_ptr(p).to_str().map_err(|e| {
        detail!("{name}: not valid UTF-8 (byte {} is not)", e.valid_up_to());
        E_INVALIDARG
    })
}

/// Borrows an optional input string: NULL gives `None`, invalid UTF-8 E_INVALIDARG.
///
/// # Safety
/// As [`in_str`].
#[inline]
pub(crate) unsafe fn in_opt_str<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        in_str(p, name).map(Some)
    }
}

/// Borrows a required input string of at most `max_chars` characters (Unicode scalar values);
/// a longer one gives `over` (E_INVALIDARG unless the function documents another code).
///
/// # Safety
/// As [`in_str`].
#[inline]
pub(crate) unsafe fn in_str_max<'a>(
    p: *const c_char,
    name: &str,
    max_chars: usize,
    over: Hr,
) -> Result<&'a str> {
    let s = in_str(p, name)?;
    check_chars(s, max_chars, over).inspect_err(|_| {
        detail!(
            "{name}: {} characters, over the limit of {max_chars}",
            s.chars().count()
        )
    })?;
    Ok(s)
}

/// Checks an output pointer before any work is done, so that a call with a NULL output
/// fails with E_POINTER and changes nothing.
#[inline]
pub(crate) fn out_ptr<T>(p: *mut T, name: &str) -> Result<()> {
    if p.is_null() {
        detail!("{name}: NULL, where the result is to be written");
        Err(E_POINTER)
    } else {
        Ok(())
    }
}

/// Writes an output value. NULL gives E_POINTER and writes nothing. The pointer need not be
/// aligned.
///
/// # Safety
/// `p` is NULL or valid for a write of `T`.
#[inline]
pub(crate) unsafe fn out<T>(p: *mut T, name: &str, v: T) -> Result<()> {
    out_ptr(p, name)?;
    p.write_unaligned(v);
    Ok(())
}

/// Copies `s` to a caller buffer. `needed` must not be NULL (E_POINTER) and receives
/// `s.len() + 1`, the size including the terminator. When `buf` is NULL or `buf_len` is
/// smaller than that, returns E_INSUFFICIENT_BUFFER (0x8007007A) and writes nothing else;
/// otherwise copies `s` and a NUL and returns S_OK.
///
/// # Safety
/// `needed` is NULL or valid for a write of `size_t`; `buf` is NULL or valid for writes of
/// `buf_len` bytes.
pub(crate) unsafe fn out_str(
    s: &str,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> Result<Hr> {
    out_ptr(needed, "needed")?;
    let size = s.len() + 1;
    needed.write_unaligned(size);
    if buf.is_null() || buf_len < size {
        detail!("buf: {buf_len} bytes, {size} needed (*needed holds it)");
        return Err(E_INSUFFICIENT_BUFFER);
    }
    std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len());
    buf.add(s.len()).write(0);
    Ok(S_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr::{null, null_mut};

    #[test]
    fn input_strings() {
        unsafe {
            assert_eq!(in_str(c"héllo".as_ptr(), "s"), Ok("héllo"));
            assert_eq!(in_str(null(), "s"), Err(E_POINTER));
            let bad = b"a\xffb\0";
            assert_eq!(in_str(bad.as_ptr().cast(), "s"), Err(E_INVALIDARG));
            assert_eq!(in_opt_str(null(), "s"), Ok(None));
            assert_eq!(in_opt_str(c"".as_ptr(), "s"), Ok(Some("")));
            assert_eq!(in_opt_str(bad.as_ptr().cast(), "s"), Err(E_INVALIDARG));
            assert_eq!(in_str_max(c"ééé".as_ptr(), "s", 3, E_INVALIDARG), Ok("ééé"));
            let over = crate::error::SR_CONTEXT_DATA_OVER_LIMIT;
            assert_eq!(in_str_max(c"éééé".as_ptr(), "s", 3, over), Err(over));
            assert_eq!(in_str_max(null(), "s", 3, over), Err(E_POINTER));
        }
    }

    #[test]
    fn output_values() {
        let mut v = 0u32;
        unsafe {
            assert_eq!(out(null_mut::<u32>(), "p", 5), Err(E_POINTER));
            assert_eq!(out(&mut v, "p", 5), Ok(()));
        }
        assert_eq!(v, 5);
        assert_eq!(out_ptr(null_mut::<u8>(), "p"), Err(E_POINTER));
    }

    #[test]
    fn caller_buffer_convention() {
        let mut buf = [b'x' as c_char; 8];
        let mut needed = 0usize;
        unsafe {
            // NULL `needed`: E_POINTER, buffer untouched.
            assert_eq!(
                out_str("abc", buf.as_mut_ptr(), 8, null_mut()),
                Err(E_POINTER)
            );
            assert_eq!(buf[0], b'x' as c_char);
            // NULL buffer: the size query.
            assert_eq!(
                out_str("abc", null_mut(), 0, &mut needed),
                Err(E_INSUFFICIENT_BUFFER)
            );
            assert_eq!(needed, 4);
            // Short buffer: nothing written but `needed`.
            needed = 0;
            assert_eq!(
                out_str("abc", buf.as_mut_ptr(), 3, &mut needed),
                Err(E_INSUFFICIENT_BUFFER)
            );
            assert_eq!(needed, 4);
            assert_eq!(buf, [b'x' as c_char; 8]);
            // Exact fit.
            assert_eq!(out_str("abc", buf.as_mut_ptr(), 4, &mut needed), Ok(S_OK));
            assert_eq!(CStr::from_ptr(buf.as_ptr()).to_str(), Ok("abc"));
            assert_eq!(buf[4], b'x' as c_char);
            // Empty string needs one byte.
            assert_eq!(out_str("", buf.as_mut_ptr(), 1, &mut needed), Ok(S_OK));
            assert_eq!((needed, buf[0]), (1, 0));
        }
        assert_eq!(E_INSUFFICIENT_BUFFER.0 as u32, 0x8007_007A);
    }
}
