//! Result codes: the single table every name, value and text comes from.
//!
//! Values are the documented HRESULT-style codes (docs/CONTRACT.md, "Result codes") and never
//! change.
//! `msgr_result_text` and the Python wrapper's names are generated from [`CODES`].

use std::fmt;

/// A 32-bit HRESULT-style result code (negative = failure; the default is S_OK).
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hr(pub i32);

/// The core's result type: the error is always one of the documented codes.
pub type Result<T> = std::result::Result<T, Hr>;

impl Hr {
    /// True for success codes (S_OK, S_FALSE).
    pub const fn succeeded(self) -> bool {
        self.0 >= 0
    }
    /// True for failure codes.
    pub const fn failed(self) -> bool {
        self.0 < 0
    }
    /// The documented name of this code, if it is one of ours.
    pub fn name(self) -> Option<&'static str> {
        lookup(self).map(|c| c.name)
    }
    /// The static English text for this code.
    pub fn text(self) -> &'static str {
        lookup(self)
            .map(|c| c.text)
            .unwrap_or("Unknown result code.")
    }
}

impl fmt::Debug for Hr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}(0x{:08X})", self.0 as u32),
            None => write!(f, "Hr(0x{:08X})", self.0 as u32),
        }
    }
}

impl fmt::Display for Hr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self, self.text())
    }
}

impl std::error::Error for Hr {}

const fn hr(v: u32) -> Hr {
    Hr(v as i32)
}

/// One row of the code table.
#[derive(Debug, Clone, Copy)]
pub struct CodeInfo {
    /// The code.
    pub code: Hr,
    /// Its documented name, e.g. `SR_INVITATION_DECLINED`.
    pub name: &'static str,
    /// Static English text.
    pub text: &'static str,
    /// The family: "generic", "lock", "session" or "messenger".
    pub family: &'static str,
}

macro_rules! codes {
    ($( $name:ident = $value:expr, $family:literal, $text:literal; )*) => {
        $(
            #[doc = $text]
            pub const $name: Hr = hr($value);
        )*
        /// Every documented code, in table order.
        pub const CODES: &[CodeInfo] = &[
            $( CodeInfo { code: $name, name: stringify!($name), text: $text, family: $family }, )*
        ];
    };
}

codes! {
    S_OK = 0x0000_0000, "generic", "The operation succeeded.";
    S_FALSE = 0x0000_0001, "generic", "The operation succeeded but there was nothing to return.";
    E_NOTIMPL = 0x8000_4001, "generic", "Not implemented.";
    E_POINTER = 0x8000_4003, "generic", "A required pointer argument was NULL.";
    E_FAIL = 0x8000_4005, "generic", "Unspecified failure.";
    E_ILLEGAL_METHOD_CALL = 0x8000_000E, "generic", "The call is not allowed in the object's current mode or state.";
    E_UNEXPECTED = 0x8000_FFFF, "generic", "An internal fault was contained; the library remains usable.";
    E_HANDLE = 0x8007_0006, "generic", "The handle is stale, released, forged or of the wrong kind.";
    E_OUTOFMEMORY = 0x8007_000E, "generic", "Out of memory.";
    E_INVALIDARG = 0x8007_0057, "generic", "An argument is invalid: bad value, invalid UTF-8 or over its limit.";
    E_ACCESSDENIED = 0x8007_0005, "generic", "Access denied: the invitee's service accepts invitations from its contacts only.";
    E_NOT_ENOUGH_QUOTA = 0x8007_0718, "generic", "Over quota: the invitee's service refused the invitation, too many came from this sender in the last minute (HRESULT_FROM_WIN32(ERROR_NOT_ENOUGH_QUOTA)).";
    E_FILE_NOT_FOUND = 0x8007_0002, "generic", "The file does not exist (HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)).";
    E_INSUFFICIENT_BUFFER = 0x8007_007A, "generic", "The output buffer is NULL or too small; *needed holds the size required.";
    REGDB_E_WRITEREGDB = 0x8004_0151, "generic", "The application registry could not be written.";
    MSGR_E_API_NOTINITIALIZED = 0x8100_0751, "lock", "Lock and Key is not initialized: the client is not signed in yet.";
    MSGR_E_API_LOCKED = 0x8100_0752, "lock", "The session manager is locked: request a challenge (msgr_session_manager_request_challenge) and send its response (msgr_session_manager_send_response) first.";
    MSGR_E_API_UNLOCK_FAILED = 0x8100_0753, "lock", "The unlock failed; a sign-in allows one challenge: sign out and in again to try again.";
    MSGR_E_API_ALREADY_UNLOCKED = 0x8100_0754, "lock", "The session manager is already unlocked.";
    MSGR_E_API_PENDING_UNLOCK = 0x8100_0755, "lock", "A challenge is already pending; send its response first.";
    MSGR_E_API_DISABLED = 0x8100_0756, "lock", "Lock and Key is not in force on this service.";
    SR_APPLICATION_LAUNCH_FAILED = 0x8100_0601, "session", "The application could not be launched.";
    SR_INVITATION_DECLINED = 0x8100_0602, "session", "The invitation was declined.";
    SR_CONNECTION_FAILURE = 0x8100_0603, "session", "The connection to the other party failed.";
    SR_AUTHENTICATION_FAILED = 0x8100_0604, "session", "Authentication failed.";
    SR_SESSION_NOT_READY = 0x8100_0605, "session", "The session is no longer in the SS_READY state.";
    SR_SESSION_CANCELLED_LOCAL = 0x8100_0606, "session", "The session was cancelled on this side.";
    SR_SESSION_CANCELLED_REMOTE = 0x8100_0607, "session", "The session was cancelled by the other side.";
    SR_SESSION_PROTOCOL_ERROR = 0x8100_0608, "session", "Session protocol error.";
    SR_SESSION_TIMEOUT = 0x8100_0609, "session", "The invitation was not answered in time.";
    SR_CANCEL_BEFORE_CONNECT = 0x8100_060A, "session", "The session was cancelled before any invitation was sent.";
    SR_NOT_INVITEE = 0x8100_060B, "session", "Only the invited side may do this.";
    SR_NOT_INVITER = 0x8100_060C, "session", "Only the inviting side may do this.";
    SR_APP_ALREADY_REGISTERED = 0x8100_060D, "session", "An application with this GUID is already registered.";
    SR_APP_NOT_REGISTERED = 0x8100_060E, "session", "The application is not registered.";
    SR_NOT_VALID_FOR_APP_INVITE = 0x8100_060F, "session", "Not valid before the invitation was accepted.";
    SR_APP_NOT_SPECIFIED = 0x8100_0610, "session", "No application is set on the session.";
    SR_CONTEXT_DATA_OVER_LIMIT = 0x8100_0611, "session", "Context data over 300 characters, or more than five sends.";
    SR_NO_USER_INVITED = 0x8100_0612, "session", "Nobody has been invited to this session.";
    SR_INVITED_SELF = 0x8100_0613, "session", "A user cannot invite themselves.";
    SR_SESSION_STATE_INVALID = 0x8100_0614, "session", "The call is not valid in the session's current state.";
    SR_INVITATION_SEND_FAILURE = 0x8100_0615, "session", "The invitation could not be delivered.";
    SR_CANCEL_SEND_FAILURE = 0x8100_0616, "session", "The cancellation could not be delivered.";
    SR_DECLINE_SEND_FAILURE = 0x8100_0617, "session", "The decline could not be delivered.";
    SR_ACCEPT_SEND_FAILURE = 0x8100_0618, "session", "The acceptance could not be delivered.";
    SR_CONTEXT_DATA_SEND_FAILURE = 0x8100_0619, "session", "The context data could not be delivered.";
    SR_NETWORK_CONFIG_FAILURE = 0x8100_0620, "session", "Network configuration failure.";
    SR_NET_NOT_SUPPORTED = 0x8100_0621, "session", "The network is not supported.";
    SR_REMOTE_NET_NOT_SUPPORTED = 0x8100_0622, "session", "The other party's network is not supported.";
    SR_FIREWALL_NOT_SUPPORTED = 0x8100_0623, "session", "The firewall configuration is not supported.";
    SR_OLD_SIP_STACK = 0x8100_0624, "session", "The other party uses an old SIP stack.";
    MSGR_E_ALREADY_LOGGED_ON = 0x8100_0304, "messenger", "This sign-in name is already signed in on the service.";
    MSGR_E_USER_NOT_FOUND = 0x8100_030A, "messenger", "No such user.";
    MSGR_E_DISCONNECTED = 0x8100_030C, "messenger", "The client was disconnected from the service.";
    MSGR_E_NOT_LOGGED_ON = 0x8100_031E, "messenger", "The user is not signed in.";
    MSGR_E_SESSION_TIMEOUT = 0x8100_0329, "messenger", "The operation timed out.";
    MSGR_E_SERVER_SHUTDOWN = 0x8100_0347, "messenger", "The service or client has shut down.";
}

/// The table row for `code`, if it is a documented code.
pub fn lookup(code: Hr) -> Option<&'static CodeInfo> {
    CODES.iter().find(|c| c.code == code)
}

/// Turns a code into a `Result`: success codes are `Ok`.
pub fn check(code: Hr) -> Result<Hr> {
    if code.succeeded() {
        Ok(code)
    } else {
        Err(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_the_documented_ones() {
        assert_eq!(E_FAIL.0 as u32, 0x80004005);
        assert_eq!(E_HANDLE.0 as u32, 0x80070006);
        assert_eq!(SR_CONTEXT_DATA_SEND_FAILURE.0 as u32, 0x81000619);
        assert_eq!(SR_NETWORK_CONFIG_FAILURE.0 as u32, 0x81000620);
        assert_eq!(MSGR_E_SERVER_SHUTDOWN.0 as u32, 0x81000347);
        assert_eq!(MSGR_E_API_DISABLED.0 as u32, 0x81000756);
    }

    #[test]
    fn table_has_unique_codes_and_names() {
        for (i, a) in CODES.iter().enumerate() {
            for b in &CODES[i + 1..] {
                assert_ne!(a.code, b.code, "{} and {}", a.name, b.name);
                assert_ne!(a.name, b.name);
            }
            assert!(!a.text.is_empty());
            assert_eq!(a.code.succeeded(), a.name.starts_with("S_"));
        }
    }

    #[test]
    fn unknown_code_has_text() {
        assert_eq!(Hr(0x1234).name(), None);
        assert_eq!(Hr(0x1234).text(), "Unknown result code.");
        assert_eq!(SR_INVITED_SELF.name(), Some("SR_INVITED_SELF"));
    }
}
