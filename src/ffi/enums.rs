//! The documented enumerations as C sees them, with their Msgrpriv.h names and values.
//!
//! The core's enums (`crate::types`) use Rust names; these mirrors carry the documented
//! names into the header (`typedef enum { SS_UNKNOWN = 0, ... } SESSION_STATE;`). Convert
//! with `From` (core to C, for outputs and callback arguments) and the `*_from_c` functions (C
//! to core, for inputs: never take one of these enums as an input parameter type, since C may pass any
//! integer and an out-of-range value would be undefined behaviour in Rust).

#![allow(non_camel_case_types)]

#[cfg(test)]
use crate::error::{Hr, E_INVALIDARG};
#[cfg(test)]
use crate::types::session_flags;
use crate::types::{LockStatus, SessionState};

/// SESSION_STATE: the state of a session (IMsgrSession::get_State, OnStateChanged).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SESSION_STATE {
    /// The state is not known.
    SS_UNKNOWN = 0,
    /// Created, nobody invited yet.
    SS_READY = 1,
    /// An invitation is outstanding.
    SS_INVITATION = 2,
    /// Accepted; the application is being started.
    SS_ACCEPTED = 3,
    /// Both sides are connected.
    SS_CONNECTED = 4,
    /// Cancelled by either side (terminal).
    SS_CANCELLED = 5,
    /// The invitation was declined (terminal).
    SS_DECLINED = 6,
    /// Ended by a timeout, a disconnection or a shutdown (terminal).
    SS_TERMINATED = 7,
}

/// SESSION_FLAGS: bits of a session's Flags property. Flags outputs are `uint32_t` bit sets of
/// these values.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SESSION_FLAGS {
    /// No flag.
    SF_NONE = 0,
    /// This side sent the invitation.
    SF_INVITER = 0x1,
    /// This side received the invitation.
    SF_INVITEE = 0x2,
    /// Defined for completeness; never set by this implementation.
    SF_APP_INVITE_COMPATIBLE = 0x4,
}

/// LockStatus: the Lock and Key status of one session manager (IMsgrLock::get_Status,
/// OnLockStatusChanged). Named `LockStatus` in C.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MsgrLockStatus {
    /// The client is not signed in; no challenge can be requested.
    LOCK_NOTINITIALIZED = 1,
    /// Locked, ready for a challenge.
    LOCK_INITIALIZED = 2,
    /// A challenge was issued; waiting for the response.
    LOCK_PENDINGRESULT = 3,
    /// Unlocked: every call is allowed.
    LOCK_UNLOCKED = 4,
    /// The response was wrong; locked until the next sign-in.
    LOCK_UNLOCKFAILED = 5,
    /// Lock and Key is not in force: every call is allowed.
    LOCK_DISABLED = 6,
}

impl From<SessionState> for SESSION_STATE {
    fn from(s: SessionState) -> Self {
        match s {
            SessionState::Unknown => Self::SS_UNKNOWN,
            SessionState::Ready => Self::SS_READY,
            SessionState::Invitation => Self::SS_INVITATION,
            SessionState::Accepted => Self::SS_ACCEPTED,
            SessionState::Connected => Self::SS_CONNECTED,
            SessionState::Cancelled => Self::SS_CANCELLED,
            SessionState::Declined => Self::SS_DECLINED,
            SessionState::Terminated => Self::SS_TERMINATED,
        }
    }
}

/// A SESSION_STATE value from C; E_INVALIDARG when out of range.
#[cfg(test)]
pub(crate) fn session_state_from_c(v: i32) -> Result<SessionState, Hr> {
    Ok(match v {
        0 => SessionState::Unknown,
        1 => SessionState::Ready,
        2 => SessionState::Invitation,
        3 => SessionState::Accepted,
        4 => SessionState::Connected,
        5 => SessionState::Cancelled,
        6 => SessionState::Declined,
        7 => SessionState::Terminated,
        _ => return Err(E_INVALIDARG),
    })
}

impl From<LockStatus> for MsgrLockStatus {
    fn from(s: LockStatus) -> Self {
        match s {
            LockStatus::NotInitialized => Self::LOCK_NOTINITIALIZED,
            LockStatus::Initialized => Self::LOCK_INITIALIZED,
            LockStatus::PendingResult => Self::LOCK_PENDINGRESULT,
            LockStatus::Unlocked => Self::LOCK_UNLOCKED,
            LockStatus::UnlockFailed => Self::LOCK_UNLOCKFAILED,
            LockStatus::Disabled => Self::LOCK_DISABLED,
        }
    }
}

/// A LockStatus value from C; E_INVALIDARG when out of range.
#[cfg(test)]
pub(crate) fn lock_status_from_c(v: i32) -> Result<LockStatus, Hr> {
    Ok(match v {
        1 => LockStatus::NotInitialized,
        2 => LockStatus::Initialized,
        3 => LockStatus::PendingResult,
        4 => LockStatus::Unlocked,
        5 => LockStatus::UnlockFailed,
        6 => LockStatus::Disabled,
        _ => return Err(E_INVALIDARG),
    })
}

/// SESSION_FLAGS bits as C sees them (the core's `session_flags` values, which the mirror
/// enum must equal).
#[cfg(test)]
pub(crate) const SESSION_FLAG_BITS: [(SESSION_FLAGS, u32); 4] = [
    (SESSION_FLAGS::SF_NONE, session_flags::SF_NONE),
    (SESSION_FLAGS::SF_INVITER, session_flags::SF_INVITER),
    (SESSION_FLAGS::SF_INVITEE, session_flags::SF_INVITEE),
    (
        SESSION_FLAGS::SF_APP_INVITE_COMPATIBLE,
        session_flags::SF_APP_INVITE_COMPATIBLE,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_state_mirrors_core() {
        for v in -2..12 {
            match session_state_from_c(v) {
                Ok(core) => {
                    assert_eq!(core as i32, v);
                    assert_eq!(SESSION_STATE::from(core) as i32, v);
                }
                Err(e) => {
                    assert_eq!(e, E_INVALIDARG);
                    assert!(!(0..=7).contains(&v));
                }
            }
        }
        assert_eq!(SESSION_STATE::SS_TERMINATED as i32, 7);
        assert_eq!(
            std::mem::size_of::<SESSION_STATE>(),
            std::mem::size_of::<std::ffi::c_int>()
        );
    }

    #[test]
    fn lock_status_mirrors_core() {
        for v in -2..12 {
            match lock_status_from_c(v) {
                Ok(core) => {
                    assert_eq!(core as i32, v);
                    assert_eq!(MsgrLockStatus::from(core) as i32, v);
                }
                Err(_) => assert!(!(1..=6).contains(&v)),
            }
        }
        assert_eq!(MsgrLockStatus::LOCK_INITIALIZED as i32, 2);
    }

    #[test]
    fn session_flags_mirror_core() {
        for (c, core) in SESSION_FLAG_BITS {
            assert_eq!(c as u32, core);
        }
        assert_eq!(SESSION_FLAGS::SF_INVITEE as u32, 0x2);
    }
}
