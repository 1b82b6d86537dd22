//! msgrpriv: the Windows Messenger "Session Invite" and "Lock and Key" private API
//! (Msgrpriv.h), rebuilt as a portable, thread-safe library with a C ABI.
//!
//! The crate has two layers. The safe core (every module but `ffi`) holds the objects, the
//! session state machine, the embedded service, the registry, Lock and Key and the event
//! queues. The `ffi` module is the thin `extern "C"` layer: it checks arguments, maps
//! errors, validates handles and contains panics. docs/ARCHITECTURE.md draws the modules
//! and the direction of their dependencies.
//!
//! The public Rust API: [`Client`], [`SessionManager`], [`Session`], the [`events`], the
//! [`Service`] seam with its embedded implementation ([`service`], [`timer`], [`registry`]),
//! the Lock and Key arithmetic ([`lock`]), [`launcher`], [`error`] codes and value
//! [`types`]. The other modules are the crate's own.

#![warn(missing_docs)]

mod client;
mod detail;
mod dispatch;
pub mod error;
mod event;
pub mod launcher;
pub mod lock;
mod locks;
mod random;
pub mod registry;
pub mod service;
pub mod session;
mod session_manager;
mod sinks;
mod sync;
pub mod timer;
pub mod trace;
pub mod types;
mod watch;
#[cfg(feature = "xmpp")]
pub mod xmpp;
/// With the feature `xmpp-protocol` alone: the stanza mapping without the service (the
/// xmpp_stanza fuzz target's build).
#[cfg(all(feature = "xmpp-protocol", not(feature = "xmpp")))]
pub mod xmpp {
    pub mod protocol;
}

pub mod ffi;

#[cfg(all(test, loom))]
mod loom_tests;

/// The events of managers and sessions, their kinds, and the lists of callbacks that
/// receive them.
pub mod events {
    pub use crate::event::{ManagerEventKind, SessionEvent, SessionEventKind};
    pub use crate::sinks::{Callback, EventKind, Reclaimer, Sinks};

    /// Events of a session manager (DMsgrSessionManagerEvents); OnInvitation carries the new
    /// invitee-side [`Session`](crate::Session).
    pub type ManagerEvent = crate::event::ManagerEvent<crate::Session>;
}

pub use client::{Client, ConnectionState};
pub use dispatch::DispatchMode;
pub use error::{Hr, Result};
pub use events::{ManagerEvent, ManagerEventKind, SessionEvent, SessionEventKind};
pub use launcher::{LaunchRequest, Launcher, ProcessLauncher};
pub use service::{EmbeddedService, Service, ServiceOptions};
pub use session::Session;
pub use session_manager::SessionManager;
pub use types::{LockStatus, SessionState, Text};
