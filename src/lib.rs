//! msgrpriv: the Windows Messenger "Session Invite" and "Lock and Key" private API
//! (Msgrpriv.h), rebuilt as a portable, thread-safe library with a C ABI.
//!
//! The crate has two layers. The safe core (every module but `ffi`) holds the objects, the
//! session state machine, the embedded service, the registry, Lock and Key and the event
//! queues. The `ffi` module is the thin `extern "C"` layer: it checks arguments, maps
//! errors, validates handles and contains panics.

#![warn(missing_docs)]

pub mod client;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod launcher;
pub mod lock;
mod locks;
pub mod random;
pub mod registry;
pub mod service;
pub mod session;
pub mod session_manager;
mod sync;
pub mod timer;
pub mod types;

pub mod ffi;

#[cfg(all(test, loom))]
mod loom_tests;

pub use client::Client;
pub use dispatch::DispatchMode;
pub use error::{Hr, Result};
pub use events::{ManagerEvent, ManagerEventKind, SessionEvent, SessionEventKind};
pub use launcher::{LaunchRequest, Launcher, ProcessLauncher};
pub use service::{EmbeddedService, Service, ServiceOptions};
pub use session::Session;
pub use session_manager::SessionManager;
pub use types::{LockStatus, SessionState, Text};
