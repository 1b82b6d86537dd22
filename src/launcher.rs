//! Application launch on accept: the replaceable launcher and the default one, which starts
//! the registered executable directly (never through a shell) with the SessionID as its one
//! argument.

use crate::error::{Result, E_INVALIDARG, SR_APPLICATION_LAUNCH_FAILED};
use std::path::Path;
use std::process::{Command, Stdio};

/// What to launch.
#[derive(Debug, Clone, Copy)]
pub struct LaunchRequest<'a> {
    /// The registered absolute path of the executable.
    pub path: &'a str,
    /// The SessionID, passed to the program as its only argument.
    pub session_id: &'a str,
    /// The application's GUID.
    pub app_guid: &'a str,
}

/// Decides what "launch" means; returns the new process id.
pub trait Launcher: Send + Sync {
    /// Launches the application; any error ends the session with
    /// SR_APPLICATION_LAUNCH_FAILED.
    fn launch(&self, request: &LaunchRequest<'_>) -> Result<u32>;
}

impl<F> Launcher for F
where
    F: Fn(&LaunchRequest<'_>) -> Result<u32> + Send + Sync,
{
    fn launch(&self, request: &LaunchRequest<'_>) -> Result<u32> {
        self(request)
    }
}

/// The default launcher: runs the executable directly, without a shell, with the SessionID
/// as its only argument, standard input closed; the child is reaped by a small thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessLauncher;

impl Launcher for ProcessLauncher {
    fn launch(&self, request: &LaunchRequest<'_>) -> Result<u32> {
        let path = Path::new(request.path);
        if !path.is_absolute() {
            return Err(E_INVALIDARG);
        }
        let mut child = Command::new(path)
            .arg(request.session_id)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|_| SR_APPLICATION_LAUNCH_FAILED)?;
        let pid = child.id();
        let _ = std::thread::Builder::new()
            .name("msgrpriv-reaper".into())
            .spawn(move || {
                let _ = child.wait();
            });
        Ok(pid)
    }
}
