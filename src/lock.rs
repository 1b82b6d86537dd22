//! Lock and Key: the per-manager lock status machine and the challenge/response arithmetic.
//!
//! Response = the challenge string immediately followed by the key, hashed with MD5 and written
//! as 32 lowercase hex digits (docs/CONTRACT.md, "Lock and Key"). The service compares responses in
//! constant time.

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

/// The response an application computes for `challenge` with its `key`.
pub fn compute_response(challenge: &str, key: &str) -> String {
    let mut h = Md5::new();
    h.update(challenge.as_bytes());
    h.update(key.as_bytes());
    let digest = h.finalize();
    let mut out = String::with_capacity(32);
    for b in digest {
        out.push(hex_digit(b >> 4));
        out.push(hex_digit(b & 15));
    }
    out
}

/// The lowercase hex digit of `nibble` (0..=15) without a branch on its value: the expected
/// response derives from the key, so how it is encoded must not depend on its digits either
/// (`char::from_digit` branches on digit versus letter).
fn hex_digit(nibble: u8) -> char {
    // 0xFF when nibble > 9, else 0: the sign of 9 - nibble.
    let letter = ((9i16 - nibble as i16) >> 8) as u8;
    (b'0' + nibble + (letter & (b'a' - b'0' - 10))) as char
}

/// Checks `response` against the expected response for (`challenge`, `key`) without
/// returning early on the first difference: the work done does not depend on where (or
/// whether) the strings differ, only on the length of `response`.
pub fn verify_response(challenge: &str, key: &str, response: &str) -> bool {
    let expected = compute_response(challenge, key);
    // Compare a fixed 32 bytes whatever the response length, then fold the length check in.
    let mut padded = [0u8; 32];
    let r = response.as_bytes();
    let n = r.len().min(32);
    padded[..n].copy_from_slice(&r[..n]);
    let same = padded.ct_eq(expected.as_bytes());
    let len_ok = (r.len() as u64).ct_eq(&32u64);
    bool::from(same & len_ok)
}

/// A fresh challenge: 128 bits from the operating system's random source, as 32 uppercase
/// hex digits.
pub fn new_challenge() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("operating system random source");
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_md5_vectors() {
        // RFC 1321 test suite: MD5("abc") split as challenge "ab" + key "c".
        assert_eq!(
            compute_response("ab", "c"),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(compute_response("", ""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            compute_response("message ", "digest"),
            "f96b697d7cb7938d525a2f31aaf161d0"
        );
    }

    #[test]
    fn verify_accepts_only_the_exact_response() {
        let r = compute_response("CHAL", "key");
        assert!(verify_response("CHAL", "key", &r));
        assert!(!verify_response("CHAL", "key", &r.to_uppercase()));
        assert!(!verify_response("CHAL", "kez", &r));
        assert!(!verify_response("CHAL", "key", &r[..31]));
        assert!(!verify_response("CHAL", "key", &(r.clone() + "0")));
        assert!(!verify_response("CHAL", "key", ""));
    }

    #[test]
    fn hex_digits() {
        let all: String = (0..16).map(hex_digit).collect();
        assert_eq!(all, "0123456789abcdef");
    }

    #[test]
    fn challenges_are_fresh() {
        let a = new_challenge();
        assert_eq!(a.len(), 32);
        assert_ne!(a, new_challenge());
    }
}
