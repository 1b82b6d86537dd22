//! Lock and Key: the per-manager lock status machine and the challenge/response arithmetic.
//!
//! Response = the challenge string immediately followed by the key, hashed with MD5 and written
//! as 32 lowercase hex digits (docs/CONTRACT.md, "Lock and Key"). The service compares responses in
//! constant time.
//!
//! The status machine ([`LockCell`]) is the crate's own: each manager has one, and the sessions
//! it creates or receives share it. Its transitions run under its lock and announce the new
//! status through a closure the manager passes, so that the announcements are queued in the
//! order of the transitions.

use crate::detail::detail;
use crate::error::{
    Result, E_INVALIDARG, MSGR_E_API_ALREADY_UNLOCKED, MSGR_E_API_DISABLED, MSGR_E_API_LOCKED,
    MSGR_E_API_NOTINITIALIZED, MSGR_E_API_PENDING_UNLOCK, MSGR_E_API_UNLOCK_FAILED,
    MSGR_E_NOT_LOGGED_ON,
};
use crate::locks::Mutex;
use crate::types::{LockStatus, Text};
use md5::{Digest, Md5};
use std::sync::Arc;
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

/// One connection of a client to its service: from a sign-in to the next sign-out, or a
/// signed-out stretch. Epochs count the changes, so an odd epoch is signed in. Lock and Key
/// statuses carry the epoch they were set in (see [`LockCell::gate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Connection {
    pub(crate) epoch: u64,
    /// Whether the service enforced Lock and Key when this connection signed in.
    pub(crate) enforced: bool,
}

impl Connection {
    pub(crate) fn signed_in(self) -> bool {
        self.epoch % 2 == 1
    }

    /// The connection in one word, for an atomic.
    pub(crate) fn pack(self) -> u64 {
        self.epoch << 1 | self.enforced as u64
    }

    /// The inverse of [`pack`](Self::pack).
    pub(crate) fn unpack(v: u64) -> Connection {
        Connection {
            epoch: v >> 1,
            enforced: v & 1 == 1,
        }
    }
}

struct LockData {
    status: LockStatus,
    /// The client's connection epoch (see [`Connection`]) this status belongs to. A
    /// status from an earlier epoch opens nothing: the manager that followed the client's
    /// sign-ins is gone, so the exchange was not repeated after the last sign-in.
    epoch: u64,
    cookie: i32,
    challenge: Option<Text>,
    /// Counts the steps of the exchange (challenge requested, response sent), so that a
    /// service's late answer to an earlier step changes nothing.
    step: u64,
    /// False once the manager was closed or dropped: sign-in and sign-out leave the status
    /// as it is and announce nothing (see [`LockCell::stop_announcing`]).
    announcing: bool,
}

/// A step of the exchange under way: a service's answer applies only to the step it answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    epoch: u64,
    step: u64,
}

/// A [`LockCell`] whose sign-in or sign-out transition is made and not yet announced: the
/// cell stays locked until this is dropped, so nothing else changes or announces its status
/// in between. A walk of several cells holds them all while it builds their events, then
/// queues the events in one push and lets the cells go: the order of each cell's
/// announcements is the order of its transitions, at one queue lock per walk instead of one
/// per cell.
pub(crate) struct Held<'a>(#[allow(dead_code)] crate::sync::MutexGuard<'a, LockData>);

/// One manager's Lock and Key status; sessions created or received by the manager share it,
/// and outlive it: a session whose manager was released keeps the status the manager had
/// in that connection epoch, and is locked in every later one.
pub(crate) struct LockCell {
    /// `crate::sync`'s: loom's under `cfg(loom)`, for the model of the client's walk of its
    /// managers (`manager_release_racing_walk`).
    data: crate::sync::Mutex<LockData>,
}

impl LockCell {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(LockCell {
            data: crate::sync::Mutex::new(LockData {
                status: LockStatus::NotInitialized,
                epoch: 0,
                cookie: 0,
                challenge: None,
                step: 0,
                announcing: true,
            }),
        })
    }

    pub(crate) fn status(&self) -> LockStatus {
        self.data.lock().status
    }

    /// Lets gated calls through when unlocked or when Lock and Key is off, in the client's
    /// current connection; otherwise MSGR_E_NOT_LOGGED_ON while the client is signed out
    /// and MSGR_E_API_LOCKED while locked. A status set in an earlier connection belongs to
    /// a manager that was released before the client signed out and in again: the gate is
    /// then what that manager's would be with the exchange not repeated, locked when the
    /// connection enforces Lock and Key and open when it does not.
    pub(crate) fn gate(&self, connection: Connection) -> Result<()> {
        if !connection.signed_in() {
            detail!("the client is signed out: msgr_client_sign_in() first");
            return Err(MSGR_E_NOT_LOGGED_ON);
        }
        let d = self.data.lock();
        if d.epoch != connection.epoch {
            return if connection.enforced {
                locked(d.status);
                Err(MSGR_E_API_LOCKED)
            } else {
                Ok(())
            };
        }
        match d.status {
            LockStatus::Unlocked | LockStatus::Disabled => Ok(()),
            LockStatus::NotInitialized => {
                detail!("the client is signed out: msgr_client_sign_in() first");
                Err(MSGR_E_NOT_LOGGED_ON)
            }
            status => {
                locked(status);
                Err(MSGR_E_API_LOCKED)
            }
        }
    }

    /// The manager was closed or is being dropped: later sign-ins and sign-outs of its
    /// client leave this cell alone (its sessions keep the status of the epoch it ends in,
    /// see [`gate`](Self::gate)). Once this returns, [`signed_in_held`](Self::signed_in_held)
    /// and [`signed_out_held`](Self::signed_out_held) return `None`: the client's walk of its
    /// managers announces through the cell without holding the manager, and this is what
    /// keeps the manager's sink list valid for what the walk queues.
    pub(crate) fn stop_announcing(&self) {
        self.data.lock().announcing = false;
    }

    /// The client signed in, starting connection `epoch`: locked (LOCK_INITIALIZED), or
    /// LOCK_DISABLED when Lock and Key is off; `announce(status)` runs under the lock.
    /// Ignored when the status already follows a later epoch, or after
    /// [`stop_announcing`](Self::stop_announcing).
    pub(crate) fn signed_in(&self, enforced: bool, epoch: u64, announce: impl FnOnce(LockStatus)) {
        if let Some(_held) = self.signed_in_held(enforced, epoch) {
            announce(Self::status_at_sign_in(enforced));
        }
    }

    /// [`signed_in`](Self::signed_in) for a walk that announces several cells at once: the
    /// cell held until the walk has queued what it announces (dropping [`Held`] lets the cell
    /// go); its status is [`status_at_sign_in`](Self::status_at_sign_in). `None` when ignored.
    #[inline(always)]
    pub(crate) fn signed_in_held(&self, enforced: bool, epoch: u64) -> Option<Held<'_>> {
        let mut d = self.data.lock();
        if d.epoch > epoch || !d.announcing {
            return None;
        }
        d.epoch = epoch;
        d.status = Self::status_at_sign_in(enforced);
        d.challenge = None;
        Some(Held(d))
    }

    /// The status a sign-in sets: LOCK_INITIALIZED, or LOCK_DISABLED when Lock and Key is off.
    pub(crate) fn status_at_sign_in(enforced: bool) -> LockStatus {
        if enforced {
            LockStatus::Initialized
        } else {
            LockStatus::Disabled
        }
    }

    /// The client signed out, starting connection `epoch`: back to LOCK_NOTINITIALIZED, the
    /// cell held when the status changed for the walk to announce it (see
    /// [`signed_in_held`](Self::signed_in_held)); `None` when there is nothing to announce,
    /// when the status already follows a later epoch, or after
    /// [`stop_announcing`](Self::stop_announcing).
    #[inline(always)]
    pub(crate) fn signed_out_held(&self, epoch: u64) -> Option<Held<'_>> {
        let mut d = self.data.lock();
        if d.epoch > epoch || !d.announcing {
            return None;
        }
        d.epoch = epoch;
        if d.status == LockStatus::NotInitialized {
            return None;
        }
        d.status = LockStatus::NotInitialized;
        d.challenge = None;
        Some(Held(d))
    }

    /// RequestChallenge(cookie): LOCK_INITIALIZED becomes LOCK_PENDINGRESULT (`announce` runs
    /// under the lock); the status errors otherwise. Returns the step the service's challenge
    /// answers.
    pub(crate) fn request_challenge(&self, cookie: i32, announce: impl FnOnce()) -> Result<Step> {
        let mut d = self.data.lock();
        match d.status {
            LockStatus::NotInitialized => return Err(MSGR_E_API_NOTINITIALIZED),
            LockStatus::PendingResult => {
                detail!("a challenge is pending: answer its OnLockChallenge with msgr_session_manager_send_response(), then wait for OnLockResult");
                return Err(MSGR_E_API_PENDING_UNLOCK);
            }
            LockStatus::Unlocked => return Err(MSGR_E_API_ALREADY_UNLOCKED),
            LockStatus::Disabled => return Err(MSGR_E_API_DISABLED),
            LockStatus::UnlockFailed => {
                unlock_failed();
                return Err(MSGR_E_API_UNLOCK_FAILED);
            }
            LockStatus::Initialized => {}
        }
        d.status = LockStatus::PendingResult;
        d.cookie = cookie;
        d.challenge = None;
        d.step += 1;
        announce();
        Ok(Step {
            epoch: d.epoch,
            step: d.step,
        })
    }

    /// The service answered `step`'s RequestChallenge: with a challenge, `challenged(cookie,
    /// challenge)` runs under the lock; without one, the status goes back to LOCK_INITIALIZED
    /// and `announce(status)` runs under the lock. Nothing when the exchange moved on
    /// (signed out, or in again, meanwhile).
    pub(crate) fn challenge_issued(
        &self,
        step: Step,
        challenge: Result<Text>,
        challenged: impl FnOnce(i32, Text),
        announce: impl FnOnce(LockStatus),
    ) {
        let mut d = self.data.lock();
        if !self.answers(&d, step) {
            return;
        }
        match challenge {
            Ok(challenge) => {
                d.challenge = Some(challenge.clone());
                challenged(d.cookie, challenge);
            }
            Err(_) => {
                d.status = LockStatus::Initialized;
                announce(d.status);
            }
        }
    }

    /// SendResponse(.., cookie): takes the pending challenge, for the service to check the
    /// response against. E_INVALIDARG for a cookie other than the pending challenge's
    /// (nothing changes); MSGR_E_API_LOCKED when no challenge is pending; the status errors
    /// of [`request_challenge`](Self::request_challenge) otherwise.
    pub(crate) fn take_challenge(&self, cookie: i32) -> Result<(Text, Step)> {
        let mut d = self.data.lock();
        match d.status {
            LockStatus::NotInitialized => return Err(MSGR_E_API_NOTINITIALIZED),
            LockStatus::Initialized => return Err(MSGR_E_API_LOCKED),
            LockStatus::Unlocked => return Err(MSGR_E_API_ALREADY_UNLOCKED),
            LockStatus::Disabled => return Err(MSGR_E_API_DISABLED),
            LockStatus::UnlockFailed => return Err(MSGR_E_API_UNLOCK_FAILED),
            LockStatus::PendingResult => {}
        }
        if d.challenge.is_none() {
            detail!("no challenge has arrived yet: wait for OnLockChallenge (dispatch), then send its response");
            return Err(MSGR_E_API_LOCKED);
        }
        if cookie != d.cookie {
            detail!(
                "cookie: {cookie}, but the pending challenge's cookie is {} (from OnLockChallenge)",
                d.cookie
            );
            return Err(E_INVALIDARG);
        }
        d.step += 1;
        let step = Step {
            epoch: d.epoch,
            step: d.step,
        };
        Ok((d.challenge.take().unwrap_or_else(Text::empty), step))
    }

    /// The service checked `step`'s response: LOCK_UNLOCKED or LOCK_UNLOCKFAILED, and
    /// `announce(status)` runs under the lock. Nothing when the exchange moved on.
    pub(crate) fn checked(&self, step: Step, ok: bool, announce: impl FnOnce(LockStatus)) {
        let mut d = self.data.lock();
        if !self.answers(&d, step) {
            return;
        }
        d.status = if ok {
            LockStatus::Unlocked
        } else {
            LockStatus::UnlockFailed
        };
        announce(d.status);
    }

    /// True when `step` is the exchange's current step, still waiting for its answer.
    fn answers(&self, d: &LockData, step: Step) -> bool {
        d.epoch == step.epoch && d.step == step.step && d.status == LockStatus::PendingResult
    }
}

/// Notes what a locked manager's caller can do next, given its status.
#[cold]
fn locked(status: LockStatus) {
    match status {
        LockStatus::PendingResult => detail!(
            "the manager is locked, an unlock under way: wait for OnLockResult (dispatch)"
        ),
        LockStatus::UnlockFailed => unlock_failed(),
        _ => detail!(
            "the manager is locked: unlock it first (msgr_session_manager_request_challenge(), then msgr_session_manager_send_response() with the response to OnLockChallenge's challenge)"
        ),
    }
}

#[cold]
fn unlock_failed() {
    detail!("the unlock failed, and a sign-in allows one challenge: sign out and in again (msgr_client_sign_out(), msgr_client_sign_in()) to try again");
}

/// A service's Lock and Key application ID/key pairs. Lock and Key is in force while it holds
/// one; responses are checked in constant time.
#[derive(Default)]
pub(crate) struct AppKeys(Mutex<std::collections::HashMap<String, String>>);

impl AppKeys {
    /// Adds (or replaces) a pair. E_INVALIDARG for an empty or over-long ID or key.
    pub(crate) fn add(&self, app_id: &str, key: &str) -> crate::error::Result<()> {
        use crate::error::E_INVALIDARG;
        use crate::types::limits;
        for (name, s) in [("app_id", app_id), ("key", key)] {
            if s.is_empty() || s.contains('\0') {
                detail!("{name}: empty or holding a NUL character");
                return Err(E_INVALIDARG);
            }
            crate::types::check_arg(name, s, limits::LOCK_FIELD_CHARS, E_INVALIDARG)?;
        }
        self.0.lock().insert(app_id.to_owned(), key.to_owned());
        Ok(())
    }

    /// True while at least one pair is held.
    pub(crate) fn enforced(&self) -> bool {
        !self.0.lock().is_empty()
    }

    /// Whether `response` answers `challenge` with `app_id`'s key. An unknown ID costs the
    /// same work as a known one, then fails.
    pub(crate) fn check(&self, challenge: &str, app_id: &str, response: &str) -> bool {
        let key = self.0.lock().get(app_id).cloned();
        let ok = verify_response(challenge, key.as_deref().unwrap_or(""), response);
        ok & key.is_some()
    }
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
