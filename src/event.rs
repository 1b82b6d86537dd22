//! The documented events (DMsgrSessionManagerEvents, DMsgrSessionEvents) and their kinds,
//! which registrations name (see [`crate::sinks`]). A manager's events are generic over the
//! session type that OnInvitation carries, so that this module knows nothing of sessions;
//! the public names (`msgrpriv::events`, in lib.rs) fix it to the
//! crate's `Session`.

use crate::error::Hr;
use crate::sinks::EventKind;
use crate::types::{LockStatus, SessionState, Text};

/// Events of a session manager (DMsgrSessionManagerEvents).
#[derive(Debug)]
pub enum ManagerEvent<S> {
    /// OnAppRegistered(guid)
    AppRegistered {
        /// The registered application's GUID.
        guid: Text,
    },
    /// OnAppUnRegistered(guid)
    AppUnregistered {
        /// The unregistered application's GUID.
        guid: Text,
    },
    /// OnAppShutdown(): the client is shutting down; the last event a manager receives.
    AppShutdown,
    /// OnInvitation(session, app data, in/out handled)
    Invitation {
        /// The new invitee-side session.
        session: S,
        /// The inviter's application data (None when it sent none).
        app_data: Option<Text>,
        /// In/out: set to true when the application takes care of the invitation.
        handled: bool,
    },
    /// OnLockChallenge(cookie, challenge)
    LockChallenge {
        /// The cookie given to RequestChallenge.
        cookie: i32,
        /// The service's challenge.
        challenge: Text,
    },
    /// OnLockEnable(enabled)
    LockEnable {
        /// True when Lock and Key is in force.
        enabled: bool,
    },
    /// OnLockResult(cookie, succeeded)
    LockResult {
        /// The cookie given to SendResponse.
        cookie: i32,
        /// Whether the unlock succeeded.
        succeeded: bool,
    },
    /// OnLockStatusChanged(status)
    LockStatusChanged {
        /// The new status.
        status: LockStatus,
    },
}

/// The kinds of [`ManagerEvent`], for registration.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ManagerEventKind {
    /// OnAppRegistered
    AppRegistered,
    /// OnAppUnRegistered
    AppUnregistered,
    /// OnAppShutdown
    AppShutdown,
    /// OnInvitation
    Invitation,
    /// OnLockChallenge
    LockChallenge,
    /// OnLockEnable
    LockEnable,
    /// OnLockResult
    LockResult,
    /// OnLockStatusChanged
    LockStatusChanged,
}

impl<S> ManagerEvent<S> {
    /// This event's kind.
    pub fn kind(&self) -> ManagerEventKind {
        match self {
            Self::AppRegistered { .. } => ManagerEventKind::AppRegistered,
            Self::AppUnregistered { .. } => ManagerEventKind::AppUnregistered,
            Self::AppShutdown => ManagerEventKind::AppShutdown,
            Self::Invitation { .. } => ManagerEventKind::Invitation,
            Self::LockChallenge { .. } => ManagerEventKind::LockChallenge,
            Self::LockEnable { .. } => ManagerEventKind::LockEnable,
            Self::LockResult { .. } => ManagerEventKind::LockResult,
            Self::LockStatusChanged { .. } => ManagerEventKind::LockStatusChanged,
        }
    }
}

/// Events of a session (DMsgrSessionEvents).
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// BeforeAppLaunch(in/out enable): set enable to false to keep the application from
    /// being launched.
    BeforeAppLaunch {
        /// In/out, true on entry.
        enable: bool,
    },
    /// OnAccepted(app data)
    Accepted {
        /// The invitee's application data.
        app_data: Option<Text>,
    },
    /// OnAppNotPresent(name, URL)
    AppNotPresent {
        /// The application's name, as the inviter registered it.
        name: Text,
        /// Where to get it.
        url: Text,
    },
    /// OnCancelled(app data)
    Cancelled {
        /// The canceller's application data.
        app_data: Option<Text>,
    },
    /// OnContextData(data)
    ContextData {
        /// The data the other side sent.
        data: Text,
    },
    /// OnDeclined(app data)
    Declined {
        /// The invitee's application data.
        app_data: Option<Text>,
    },
    /// OnReadyToLaunch()
    ReadyToLaunch,
    /// OnSendError(hr)
    SendError {
        /// SR_*_SEND_FAILURE of the step that failed.
        hr: Hr,
    },
    /// OnStateChanged(previous state). By the time it is delivered the session may have
    /// moved on: `current` is the state this one transition led to, which the session's
    /// state getter gives only until the next transition.
    StateChanged {
        /// The state before the transition.
        previous: SessionState,
        /// The state the transition led to.
        current: SessionState,
    },
    /// OnTermination(hr, app data): exactly once per session per side, as its last event.
    Termination {
        /// Why the session ended.
        hr: Hr,
        /// Application data that came with the ending, if any.
        app_data: Option<Text>,
    },
}

/// The kinds of [`SessionEvent`], for registration.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionEventKind {
    /// BeforeAppLaunch
    BeforeAppLaunch,
    /// OnAccepted
    Accepted,
    /// OnAppNotPresent
    AppNotPresent,
    /// OnCancelled
    Cancelled,
    /// OnContextData
    ContextData,
    /// OnDeclined
    Declined,
    /// OnReadyToLaunch
    ReadyToLaunch,
    /// OnSendError
    SendError,
    /// OnStateChanged
    StateChanged,
    /// OnTermination
    Termination,
}

impl SessionEvent {
    /// This event's kind.
    pub fn kind(&self) -> SessionEventKind {
        match self {
            Self::BeforeAppLaunch { .. } => SessionEventKind::BeforeAppLaunch,
            Self::Accepted { .. } => SessionEventKind::Accepted,
            Self::AppNotPresent { .. } => SessionEventKind::AppNotPresent,
            Self::Cancelled { .. } => SessionEventKind::Cancelled,
            Self::ContextData { .. } => SessionEventKind::ContextData,
            Self::Declined { .. } => SessionEventKind::Declined,
            Self::ReadyToLaunch => SessionEventKind::ReadyToLaunch,
            Self::SendError { .. } => SessionEventKind::SendError,
            Self::StateChanged { .. } => SessionEventKind::StateChanged,
            Self::Termination { .. } => SessionEventKind::Termination,
        }
    }
}

impl<S> EventKind for ManagerEvent<S> {
    fn kind_id(&self) -> u8 {
        self.kind() as u8
    }
}
impl EventKind for SessionEvent {
    fn kind_id(&self) -> u8 {
        self.kind() as u8
    }
}
