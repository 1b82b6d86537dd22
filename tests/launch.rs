//! Application launch on accept (docs/CONTRACT.md, "Application launch").

mod common;
use common::*;
use msgrpriv::error::*;
use msgrpriv::*;
use parking_lot::Mutex;
use std::sync::Arc;

type Calls = Arc<Mutex<Vec<(String, String, String)>>>;

fn recording_launcher(result: Result<u32>) -> (Arc<dyn Launcher>, Calls) {
    let calls: Calls = Arc::default();
    let c = calls.clone();
    let l = move |r: &LaunchRequest<'_>| {
        c.lock().push((
            r.path.to_string(),
            r.session_id.to_string(),
            r.app_guid.to_string(),
        ));
        result
    };
    (Arc::new(l), calls)
}

#[test]
fn launch_records_the_launching_session() {
    let w = World::new();
    w.register_app("/bin/true");
    let (launcher, calls) = recording_launcher(Ok(4242));
    w.b.set_launcher(launcher);
    let (a, b) = w.connected();
    let calls = calls.lock().clone();
    assert_eq!(
        calls,
        vec![("/bin/true".to_string(), b.id().to_string(), APP.to_string())]
    );
    let found = w.mb.launching_session(4242).unwrap();
    assert_eq!(found, b);
    assert_eq!(w.ma.launching_session(4242).unwrap_err(), E_FAIL);
    let _ = a;
}

#[test]
fn before_app_launch_can_veto() {
    let w = World::new();
    w.register_app("/bin/true");
    let (launcher, calls) = recording_launcher(Ok(1));
    w.b.set_launcher(launcher);
    let (_a, b) = w.invited();
    b.advise(SessionEventKind::BeforeAppLaunch, |e| {
        if let SessionEvent::BeforeAppLaunch { enable } = e {
            *enable = false;
        }
    })
    .unwrap();
    b.accept(None).unwrap();
    w.pump();
    assert!(calls.lock().is_empty());
    assert_eq!(b.state(), SessionState::Connected);
    // The recorder registered first saw enable=true; the veto came after it.
    assert!(w
        .take()
        .contains(&"B:BeforeAppLaunch(true)@Accepted".to_string()));
}

#[test]
fn failed_launch_ends_both_sides() {
    let w = World::new();
    w.register_app("/bin/true");
    let (launcher, _calls) = recording_launcher(Err(E_FAIL));
    w.b.set_launcher(launcher);
    let (a, b) = w.invited();
    b.accept(None).unwrap();
    w.pump();
    assert_eq!(
        w.side("B"),
        lines(&[
            "B:StateChanged(Invitation)@Accepted",
            "B:BeforeAppLaunch(true)@Accepted",
            "B:StateChanged(Accepted)@Terminated",
            "B:Termination(SR_APPLICATION_LAUNCH_FAILED,NULL)@Terminated",
        ])
    );
    assert_eq!(
        w.side("A")[4..],
        lines(&[
            "A:StateChanged(Connected)@Terminated",
            "A:Termination(SR_APPLICATION_LAUNCH_FAILED,NULL)@Terminated",
        ])
    );
    assert_eq!(a.state(), SessionState::Terminated);
    assert_eq!(b.state(), SessionState::Terminated);
}

#[test]
fn default_launcher_runs_the_program_directly() {
    let dir = std::env::temp_dir().join(format!("msgrpriv-launch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("args.txt");
    let script = dir.join("app.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s|' \"$@\" > {}\n", out.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let w = World::new();
    w.register_app(script.to_str().unwrap());
    let (_a, b) = w.connected();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !out.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!("{}|", b.id())
    );
    let _ = std::fs::remove_dir_all(&dir);
    // Direct launch never goes through a shell: a relative path is refused.
    let req = LaunchRequest {
        path: "true",
        session_id: "x",
        app_guid: APP,
    };
    assert_eq!(ProcessLauncher.launch(&req), Err(E_INVALIDARG));
    let req = LaunchRequest {
        path: "/no/such/program",
        session_id: "x",
        app_guid: APP,
    };
    assert_eq!(
        ProcessLauncher.launch(&req),
        Err(SR_APPLICATION_LAUNCH_FAILED)
    );
}
