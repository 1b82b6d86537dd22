//! The file-backed application registry: persistence, sharing between objects, threads and
//! processes, permissions, refusal of symbolic links and of corrupted files.
#![cfg(unix)]

use msgrpriv::error::{
    E_FAIL, E_FILE_NOT_FOUND, E_INVALIDARG, REGDB_E_WRITEREGDB, SR_APP_ALREADY_REGISTERED,
    SR_APP_NOT_REGISTERED,
};
use msgrpriv::registry::*;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};

/// A fresh, empty directory under the system temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let d = std::env::temp_dir().join(format!(
            "msgrpriv-regfile-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700));
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn guid(tag: u32, i: u32) -> String {
    format!("{{{tag:08X}-0000-4000-8000-{i:012X}}}")
}

fn guids_in(reg: &AppRegistry) -> BTreeSet<String> {
    reg.list().into_iter().map(|e| e.guid).collect()
}

/// The guids in the file, read straight from disk (also checks the document's shape).
fn guids_on_disk(path: &Path) -> BTreeSet<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(v["version"], 1);
    v["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["guid"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn persists_across_reopen() {
    let dir = TempDir::new("persist");
    let path = dir.join("apps.json");
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();
    {
        let r = AppRegistry::open(&path).unwrap();
        assert_eq!(r.file_path(), Some(path.as_path()));
        assert!(r.list().is_empty());
        r.register(
            &guid(1, 1).to_lowercase(),
            "Chess \"deluxe\" ♞",
            "http://chess.example/",
            exe,
            0,
        )
        .unwrap();
        r.register(&guid(1, 2), "No executable", "", "", 0).unwrap();
        r.register(&guid(1, 3), "Gone soon", "", "", 0).unwrap();
        r.unregister(&guid(1, 3)).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"version\": 1"), "pretty-printed: {text}");
    assert!(text.contains("\n  \"apps\": ["), "pretty-printed: {text}");

    let r = AppRegistry::open(&path).unwrap();
    let l = r.list();
    assert_eq!(l.len(), 2);
    assert_eq!(
        l[0],
        AppEntry {
            guid: guid(1, 1),
            name: "Chess \"deluxe\" ♞".into(),
            url: "http://chess.example/".into(),
            path: exe.into(),
        }
    );
    assert_eq!(l[1].path, "");
    assert_eq!(r.get(&guid(1, 3)), None);
    assert_eq!(
        r.register(&guid(1, 2), "x", "", "", 0),
        Err(SR_APP_ALREADY_REGISTERED)
    );
    assert_eq!(r.unregister(&guid(1, 3)), Err(SR_APP_NOT_REGISTERED));
    // Validation happens before any file access and leaves the file alone.
    let before = std::fs::read(&path).unwrap();
    assert_eq!(
        r.register(&guid(1, 9), "x", "", "relative/path", 0),
        Err(E_INVALIDARG)
    );
    assert_eq!(
        r.register(&guid(1, 9), "x", "", "/no/such/msgrpriv/exe", 0),
        Err(E_FILE_NOT_FOUND)
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn relative_path_is_made_absolute() {
    let dir = TempDir::new("relative");
    // A relative path to the temporary directory, without changing the current directory
    // (that would disturb the other tests): climb to the root, then descend.
    let cwd = std::env::current_dir().unwrap();
    let mut rel = PathBuf::new();
    for _ in cwd.components().skip(1) {
        rel.push("..");
    }
    rel.push(dir.join("apps.json").strip_prefix("/").unwrap());
    assert!(rel.is_relative());
    let r = AppRegistry::open(&rel).unwrap();
    let abs = r.file_path().unwrap();
    assert!(abs.is_absolute());
    r.register(&guid(9, 1), "x", "", "", 0).unwrap();
    assert_eq!(guids_on_disk(&dir.join("apps.json")), [guid(9, 1)].into());
}

#[test]
fn two_objects_on_one_file_see_each_others_changes() {
    let dir = TempDir::new("two-objects");
    let path = dir.join("apps.json");
    let a = AppRegistry::open(&path).unwrap();
    let b = AppRegistry::open(&path).unwrap();
    a.register(&guid(2, 1), "from a", "", "", 0).unwrap();
    assert_eq!(b.get(&guid(2, 1)).unwrap().name, "from a");
    // b's write starts from a fresh read, so a's entry survives it.
    b.register(&guid(2, 2), "from b", "", "", 0).unwrap();
    assert_eq!(guids_in(&a), [guid(2, 1), guid(2, 2)].into());
    assert_eq!(
        a.register(&guid(2, 2), "again", "", "", 0),
        Err(SR_APP_ALREADY_REGISTERED)
    );
    b.unregister(&guid(2, 1)).unwrap();
    assert_eq!(a.get(&guid(2, 1)), None);
    assert_eq!(a.unregister(&guid(2, 1)), Err(SR_APP_NOT_REGISTERED));
    assert_eq!(guids_on_disk(&path), [guid(2, 2)].into());
}

#[test]
fn edits_by_other_tools_are_picked_up() {
    let dir = TempDir::new("foreign");
    let path = dir.join("apps.json");
    let r = AppRegistry::open(&path).unwrap();
    r.register(&guid(3, 1), "one", "", "", 0).unwrap();
    assert_eq!(r.list().len(), 1);
    // Rewritten in place (same inode) by some other tool.
    let doc = format!(
        "{{\"version\": 1, \"apps\": [{{\"guid\": \"{}\", \"name\": \"hand\", \"url\": \"\", \"path\": \"\"}}]}}",
        guid(3, 2).to_lowercase()
    );
    std::fs::write(&path, doc).unwrap();
    assert_eq!(guids_in(&r), [guid(3, 2)].into());
    assert_eq!(r.get(&guid(3, 2)).unwrap().name, "hand");
    // Deleted: empty, and the next change recreates it.
    std::fs::remove_file(&path).unwrap();
    assert!(r.list().is_empty());
    r.register(&guid(3, 3), "three", "", "", 0).unwrap();
    assert_eq!(guids_on_disk(&path), [guid(3, 3)].into());
    // Corrupted after open: reads keep the last good content, writes refuse and change
    // nothing.
    std::fs::write(&path, b"{ not json").unwrap();
    assert_eq!(guids_in(&r), [guid(3, 3)].into());
    assert_eq!(
        r.register(&guid(3, 4), "four", "", "", 0),
        Err(REGDB_E_WRITEREGDB)
    );
    assert_eq!(r.unregister(&guid(3, 3)), Err(REGDB_E_WRITEREGDB));
    assert_eq!(std::fs::read(&path).unwrap(), b"{ not json");
    assert_eq!(r.get(&guid(3, 4)), None);
}

#[test]
fn files_are_private() {
    let dir = TempDir::new("perms");
    let path = dir.join("apps.json");
    let r = AppRegistry::open(&path).unwrap();
    let lock = dir.join("apps.json.lock");
    for p in [&path, &lock] {
        let mode = std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", p.display());
    }
    r.register(&guid(4, 1), "x", "", "", 0).unwrap();
    let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
    assert_eq!(mode & 0o077, 0, "after a write: {mode:o}");
    assert_eq!(mode, 0o600, "umask permitting");
}

#[test]
fn symbolic_link_is_refused_never_followed() {
    let dir = TempDir::new("symlink");
    let target = dir.join("target.json");
    let good = b"{\"version\": 1, \"apps\": []}\n";
    std::fs::write(&target, good).unwrap();
    let path = dir.join("apps.json");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    assert_eq!(AppRegistry::open(&path).unwrap_err(), E_FAIL);
    // A dangling link too (following it would create the target).
    let dangling = dir.join("dangling.json");
    std::os::unix::fs::symlink(dir.join("nowhere.json"), &dangling).unwrap();
    assert_eq!(AppRegistry::open(&dangling).unwrap_err(), E_FAIL);
    assert!(!dir.join("nowhere.json").exists());

    // Planted after open: writes refuse, reads keep the last good content.
    let path2 = dir.join("apps2.json");
    let r = AppRegistry::open(&path2).unwrap();
    r.register(&guid(5, 1), "x", "", "", 0).unwrap();
    std::fs::remove_file(&path2).unwrap();
    std::os::unix::fs::symlink(&target, &path2).unwrap();
    assert_eq!(
        r.register(&guid(5, 2), "y", "", "", 0),
        Err(REGDB_E_WRITEREGDB)
    );
    assert_eq!(r.unregister(&guid(5, 1)), Err(REGDB_E_WRITEREGDB));
    assert_eq!(guids_in(&r), [guid(5, 1)].into());
    assert_eq!(std::fs::read(&target).unwrap(), good, "target untouched");
    assert!(std::fs::symlink_metadata(&path2)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn unusable_paths_fail_at_open() {
    let dir = TempDir::new("unusable");
    // A directory.
    assert_eq!(AppRegistry::open(&dir.0).unwrap_err(), E_FAIL);
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    assert_eq!(AppRegistry::open(&sub).unwrap_err(), E_FAIL);
    assert!(
        !dir.join("sub.lock").exists(),
        "nothing created next to a refused path"
    );
    // A missing directory.
    assert_eq!(
        AppRegistry::open(&dir.join("missing/apps.json")).unwrap_err(),
        E_FAIL
    );
    // A FIFO: refused without blocking.
    let fifo = dir.join("fifo.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert_eq!(AppRegistry::open(&fifo).unwrap_err(), E_FAIL);
}

#[test]
fn unlockable_registry_is_read_only() {
    let dir = TempDir::new("nolock");
    let path = dir.join("apps.json");
    AppRegistry::open(&path)
        .unwrap()
        .register(&guid(10, 1), "x", "", "", 0)
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    // Something that cannot be locked where the lock file belongs (a directory works even
    // for root, who ignores permissions).
    let lock = dir.join("apps.json.lock");
    std::fs::remove_file(&lock).unwrap();
    std::fs::create_dir(&lock).unwrap();
    let r = AppRegistry::open(&path).unwrap();
    assert_eq!(guids_in(&r), [guid(10, 1)].into(), "still readable");
    assert_eq!(
        r.register(&guid(10, 2), "y", "", "", 0),
        Err(REGDB_E_WRITEREGDB)
    );
    assert_eq!(r.unregister(&guid(10, 1)), Err(REGDB_E_WRITEREGDB));
    assert_eq!(
        guids_in(&r),
        [guid(10, 1)].into(),
        "nothing changed in memory"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "nothing changed on disk"
    );
    // Without a file to read, such a path is unusable.
    let other = dir.join("other.json");
    std::fs::create_dir(dir.join("other.json.lock")).unwrap();
    assert_eq!(AppRegistry::open(&other).unwrap_err(), E_FAIL);
    assert!(!other.exists());
}

#[test]
fn corrupted_file_fails_at_open_and_is_left_alone() {
    let dir = TempDir::new("corrupt");
    let cases: [&[u8]; 8] = [
        b"{ \"version\": 1, \"apps\": [",
        b"\x00\x01\x02garbage",
        b"[]",
        b"{\"version\": 2, \"apps\": []}",
        b"{\"version\": 1, \"apps\": [], \"extra\": true}",
        b"{\"version\": 1, \"apps\": [{\"guid\": \"not-a-guid\", \"name\": \"\", \"url\": \"\", \"path\": \"\"}]}",
        b"{\"version\": 1, \"apps\": [{\"guid\": \"{00000000-0000-0000-0000-000000000001}\", \"name\": \"\"}]}",
        b"{\"version\": 1, \"apps\": [{\"guid\": \"{00000000-0000-0000-0000-000000000001}\", \"name\": \"\", \"url\": \"\", \"path\": \"\"}, {\"guid\": \"{00000000-0000-0000-0000-000000000001}\", \"name\": \"\", \"url\": \"\", \"path\": \"\"}]}",
    ];
    for (i, bad) in cases.iter().enumerate() {
        let path = dir.join(&format!("bad{i}.json"));
        std::fs::write(&path, bad).unwrap();
        assert_eq!(AppRegistry::open(&path).unwrap_err(), E_FAIL, "case {i}");
        assert_eq!(
            &std::fs::read(&path).unwrap()[..],
            *bad,
            "case {i} untouched"
        );
    }
    // An empty file is an empty registry.
    let empty = dir.join("empty.json");
    std::fs::write(&empty, b"").unwrap();
    let r = AppRegistry::open(&empty).unwrap();
    assert!(r.list().is_empty());
    r.register(&guid(6, 1), "x", "", "", 0).unwrap();
    assert_eq!(guids_on_disk(&empty), [guid(6, 1)].into());
}

#[test]
fn leftover_temporary_files_are_ignored_and_cleaned() {
    let dir = TempDir::new("leftover");
    let path = dir.join("apps.json");
    AppRegistry::open(&path)
        .unwrap()
        .register(&guid(7, 1), "x", "", "", 0)
        .unwrap();
    // What a writer killed before its rename leaves behind.
    let stale = dir.join(".apps.json.tmp-999999-0-12345");
    std::fs::write(&stale, b"{\"version\": 1, \"apps\": [").unwrap();
    let unrelated = dir.join(".other.json.tmp-1-2-3");
    std::fs::write(&unrelated, b"keep me").unwrap();
    // The temporary file of a registry named "apps.json.tmp-x" is not ours.
    let lookalike = dir.join(".apps.json.tmp-x.tmp-1-2-3");
    std::fs::write(&lookalike, b"keep me").unwrap();
    let r = AppRegistry::open(&path).unwrap();
    assert_eq!(guids_in(&r), [guid(7, 1)].into());
    assert!(!stale.exists(), "stale temporary file removed at open");
    assert!(unrelated.exists(), "other files are not touched");
    assert!(lookalike.exists(), "other files are not touched");
    std::fs::remove_file(&lookalike).unwrap();
    // One appearing later does not disturb writes either.
    std::fs::write(&stale, b"junk").unwrap();
    r.register(&guid(7, 2), "y", "", "", 0).unwrap();
    assert_eq!(guids_on_disk(&path), [guid(7, 1), guid(7, 2)].into());
    let names: BTreeSet<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "apps.json",
            "apps.json.lock",
            ".apps.json.tmp-999999-0-12345",
            ".other.json.tmp-1-2-3"
        ]
        .map(String::from)
        .into(),
        "a successful write leaves no temporary file of its own"
    );
}

/// Registers `n` guids of set `tag`, then unregisters the odd ones.
fn churn(reg: &AppRegistry, tag: u32, n: u32) {
    for i in 0..n {
        reg.register(&guid(tag, i), &format!("app {tag}/{i}"), "", "", 0)
            .unwrap();
    }
    for i in (1..n).step_by(2) {
        reg.unregister(&guid(tag, i)).unwrap();
    }
}

fn expected_after_churn(tags: &[u32], n: u32) -> BTreeSet<String> {
    tags.iter()
        .flat_map(|&t| (0..n).step_by(2).map(move |i| guid(t, i)))
        .collect()
}

#[test]
fn threads_registering_at_once_lose_nothing() {
    let dir = TempDir::new("threads");
    let path = dir.join("apps.json");
    let shared = AppRegistry::open(&path).unwrap();
    let n = 40;
    let tags = [0x10, 0x11, 0x12, 0x13];
    let barrier = Arc::new(Barrier::new(tags.len()));
    let handles: Vec<_> = tags
        .iter()
        .map(|&tag| {
            let barrier = barrier.clone();
            let path = path.clone();
            let shared = shared.clone();
            std::thread::spawn(move || {
                // Half the threads use their own object, half share one.
                let own;
                let reg: &AppRegistry = if tag % 2 == 0 {
                    own = AppRegistry::open(&path).unwrap();
                    &own
                } else {
                    &shared
                };
                barrier.wait();
                churn(reg, tag, n);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let want = expected_after_churn(&tags, n);
    assert_eq!(guids_on_disk(&path), want);
    assert_eq!(guids_in(&shared), want);
    assert_eq!(guids_in(&AppRegistry::open(&path).unwrap()), want);
}

const CHILD_PATH: &str = "MSGRPRIV_REGFILE_CHILD_PATH";
const CHILD_TAG: &str = "MSGRPRIV_REGFILE_CHILD_TAG";
const CHURN_N: u32 = 60;

/// Child role for `processes_registering_at_once_lose_nothing`; does nothing in a normal run.
#[test]
fn child_role_churn() {
    let (Ok(path), Ok(tag)) = (std::env::var(CHILD_PATH), std::env::var(CHILD_TAG)) else {
        return;
    };
    let reg = AppRegistry::open(Path::new(&path)).unwrap();
    churn(&reg, tag.parse().unwrap(), CHURN_N);
}

#[test]
fn processes_registering_at_once_lose_nothing() {
    let dir = TempDir::new("processes");
    let path = dir.join("apps.json");
    let reg = AppRegistry::open(&path).unwrap();
    let child_tags = [0x20, 0x21];
    let children: Vec<_> = child_tags
        .iter()
        .map(|tag| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "child_role_churn",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_PATH, &path)
                .env(CHILD_TAG, tag.to_string())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    churn(&reg, 0x22, CHURN_N);
    for mut c in children {
        assert!(c.wait().unwrap().success(), "child failed");
    }
    let want = expected_after_churn(&[0x20, 0x21, 0x22], CHURN_N);
    assert_eq!(guids_on_disk(&path), want);
    assert_eq!(guids_in(&reg), want);
}

#[derive(Default)]
struct Counter {
    registered: AtomicUsize,
    unregistered: AtomicUsize,
}

impl RegistryListener for Counter {
    fn app_registered(&self, _: &str) {
        self.registered.fetch_add(1, Ordering::SeqCst);
    }
    fn app_unregistered(&self, _: &str) {
        self.unregistered.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn listeners_hear_their_objects_changes_at_once_and_the_others_through_the_file() {
    let dir = TempDir::new("listeners");
    let path = dir.join("apps.json");
    let a = AppRegistry::open(&path).unwrap();
    let b = AppRegistry::open(&path).unwrap();
    let ca = Arc::new(Counter::default());
    let cb = Arc::new(Counter::default());
    let wa: std::sync::Weak<dyn RegistryListener> =
        Arc::downgrade(&(ca.clone() as Arc<dyn RegistryListener>));
    let wb: std::sync::Weak<dyn RegistryListener> =
        Arc::downgrade(&(cb.clone() as Arc<dyn RegistryListener>));
    a.subscribe(wa);
    a.register(&guid(8, 1), "x", "", "", 0).unwrap();
    a.unregister(&guid(8, 1)).unwrap();
    // Through the object: at once, on the caller's thread.
    assert_eq!(ca.registered.load(Ordering::SeqCst), 1);
    assert_eq!(ca.unregistered.load(Ordering::SeqCst), 1);
    // (b's listener comes after: b has nothing to announce of a change undone before.)
    b.subscribe(wb);
    assert_eq!(b.register(&guid(8, 2), "x", "", "", 1), Err(E_INVALIDARG));
    b.register(&guid(8, 2), "x", "", "", 0).unwrap();
    assert_eq!(cb.registered.load(Ordering::SeqCst), 1);
    // Through the file: once, after a check of it (WATCH_PERIOD).
    let start = std::time::Instant::now();
    while ca.registered.load(Ordering::SeqCst) < 2 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "never announced"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(msgrpriv::registry::WATCH_PERIOD * 3);
    assert_eq!(ca.registered.load(Ordering::SeqCst), 2);
    assert_eq!(ca.unregistered.load(Ordering::SeqCst), 1);
    assert_eq!(
        cb.registered.load(Ordering::SeqCst),
        1,
        "b's own change, once"
    );
    assert_eq!(cb.unregistered.load(Ordering::SeqCst), 0);
}

const RACE_PATH: &str = "MSGRPRIV_REGFILE_RACE_PATH";
const RACE_TAG: &str = "MSGRPRIV_REGFILE_RACE_TAG";
/// How long each writer of the lock file race registers, in milliseconds.
const RACE_MS: u64 = 1500;
const RACE_WRITERS: u32 = 4;

/// Child role for `deleted_lock_file_loses_no_registration`: opens the registry, prints
/// `READY`, waits for `<path>.go` to exist, then registers guid(tag, 0), guid(tag, 1), ... for
/// RACE_MS and prints `DONE <count>`. Any failed registration panics (a non-zero exit). Does
/// nothing in a normal run.
#[test]
fn child_role_race_writer() {
    let (Ok(path), Ok(tag)) = (std::env::var(RACE_PATH), std::env::var(RACE_TAG)) else {
        return;
    };
    let tag: u32 = tag.parse().unwrap();
    let reg = AppRegistry::open(Path::new(&path)).unwrap();
    // Leading newline: the harness has already printed "test child_role_race_writer ... ".
    println!("\nREADY");
    let go = PathBuf::from(format!("{path}.go"));
    let waiting = Instant::now();
    while !go.exists() {
        assert!(
            waiting.elapsed() < Duration::from_secs(30),
            "no start signal"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let deadline = Instant::now() + Duration::from_millis(RACE_MS);
    let mut n = 0;
    while Instant::now() < deadline {
        if let Err(e) = reg.register(&guid(tag, n), "race", "", "", 0) {
            panic!("register {} failed: {e:?}", guid(tag, n));
        }
        n += 1;
    }
    println!("DONE {n}");
}

/// An age-based temporary file cleaner (or an administrator) deleting `<path>.lock` while
/// four writer processes register: every acknowledged registration is in the file at the end.
#[test]
fn deleted_lock_file_loses_no_registration() {
    let dir = TempDir::new("lockrace");
    let path = dir.join("apps.json");
    let lock_path = dir.join("apps.json.lock");
    drop(AppRegistry::open(&path).unwrap());
    let started = Instant::now();
    let mut children: Vec<_> = (0..RACE_WRITERS)
        .map(|tag| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "child_role_race_writer",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(RACE_PATH, &path)
                .env(RACE_TAG, tag.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Start the writers together once all have opened the registry (opening removes temporary
    // files, which are then another writer's while the lock file is being deleted).
    let mut outputs: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()))
        .collect();
    for out in &mut outputs {
        let mut line = String::new();
        while line.trim_end() != "READY" {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "writer ended early");
        }
    }
    std::fs::write(dir.join("apps.json.go"), b"").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let deleter = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut deleted = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if std::fs::remove_file(&lock_path).is_ok() {
                    deleted += 1;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            deleted
        })
    };
    let mut want = BTreeSet::new();
    let mut failed = Vec::new();
    for (tag, (mut c, mut out)) in children.into_iter().zip(outputs).enumerate() {
        let mut stdout = String::new();
        out.read_to_string(&mut stdout).unwrap();
        let done = stdout
            .lines()
            .find_map(|l| l.strip_prefix("DONE "))
            .and_then(|n| n.trim().parse::<u32>().ok());
        match (c.wait().unwrap().success(), done) {
            (true, Some(n)) => want.extend((0..n).map(|i| guid(tag as u32, i))),
            _ => failed.push(tag),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let deleted = deleter.join().unwrap();
    let on_disk = guids_on_disk(&path);
    let lost: Vec<_> = want.difference(&on_disk).collect();
    println!(
        "lock file race: {} registrations by {RACE_WRITERS} processes, lock file deleted {deleted} \
         times, {} lost, {:.2} s",
        want.len(),
        lost.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failed.is_empty(), "writers {failed:?} failed");
    assert!(deleted > 0, "the lock file was never deleted");
    assert!(lost.is_empty(), "acknowledged registrations lost: {lost:?}");
    assert!(on_disk.is_subset(&want), "unexpected entries");
}

/// Holds an exclusive `flock` on `lock_path` from another thread, as a stopped writer process
/// would, until told to release it or `max` has passed. Returns once the lock is held.
fn hold_lock(lock_path: &Path, max: Duration) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(lock_path)
        .unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
    let (release, released) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _ = released.recv_timeout(max);
        drop(f);
    });
    (release, holder)
}

/// Replaces the registry file the way a writer does (a new file renamed over it).
fn replace_document(path: &Path, guids: &[String]) {
    let apps: Vec<serde_json::Value> = guids
        .iter()
        .map(|g| serde_json::json!({"guid": g, "name": "n", "url": "", "path": ""}))
        .collect();
    let doc = serde_json::json!({"version": 1, "apps": apps});
    let tmp = path.with_extension("replacement");
    std::fs::write(&tmp, serde_json::to_vec(&doc).unwrap()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A writer that committed a new version and then stopped while holding the lock (3 s here)
/// delays a reader of the changed file by READ_LOCK_WAIT at most; the reader then gets that
/// version, read without the lock.
#[test]
fn reader_waits_for_a_held_lock_at_most_read_lock_wait() {
    let dir = TempDir::new("readwait");
    let path = dir.join("apps.json");
    let reg = AppRegistry::open(&path).unwrap();
    reg.register(&guid(0x30, 0), "n", "", "", 0).unwrap();
    let (release, holder) = hold_lock(&dir.join("apps.json.lock"), Duration::from_secs(3));
    let want = [guid(0x30, 0), guid(0x30, 1)];
    replace_document(&path, &want);

    let t = Instant::now();
    let got = reg.get(&guid(0x30, 1));
    let waited = t.elapsed();
    let t = Instant::now();
    let listed = guids_in(&reg);
    let again = t.elapsed();
    let _ = release.send(());
    holder.join().unwrap();
    println!(
        "reader behind a held lock: {:.0} ms (bound {} ms), then {:.3} ms",
        waited.as_secs_f64() * 1e3,
        READ_LOCK_WAIT.as_millis(),
        again.as_secs_f64() * 1e3
    );
    assert!(got.is_some(), "the committed version is read");
    assert!(waited >= READ_LOCK_WAIT, "waited {waited:?} for the lock");
    assert!(waited < READ_LOCK_WAIT * 5, "waited {waited:?}");
    assert_eq!(listed, want.into_iter().collect());
    assert!(
        again < READ_LOCK_WAIT,
        "unchanged file read again in {again:?}"
    );
}

/// A writer of this process waiting for a lock that another process holds does not make
/// readers of this process wait.
#[test]
fn readers_do_not_wait_for_a_waiting_writer_of_their_process() {
    let dir = TempDir::new("writerwait");
    let path = dir.join("apps.json");
    let reg = AppRegistry::open(&path).unwrap();
    reg.register(&guid(0x31, 0), "n", "", "", 0).unwrap();
    let (release, holder) = hold_lock(&dir.join("apps.json.lock"), Duration::from_secs(3));
    let writer = {
        let reg = reg.clone();
        std::thread::spawn(move || reg.register(&guid(0x31, 1), "n", "", "", 0))
    };
    // Let the writer reach its wait for the lock.
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let got = reg.get(&guid(0x31, 0));
    let listed = guids_in(&reg);
    let waited = t.elapsed();
    let writer_done = writer.is_finished();
    let _ = release.send(());
    holder.join().unwrap();
    assert_eq!(writer.join().unwrap(), Ok(()));
    println!(
        "reader beside a waiting writer: {:.3} ms",
        waited.as_secs_f64() * 1e3
    );
    assert!(got.is_some());
    assert_eq!(listed, [guid(0x31, 0)].into_iter().collect());
    assert!(!writer_done, "the writer waited for the lock");
    assert!(waited < READ_LOCK_WAIT * 5, "readers waited {waited:?}");
    assert_eq!(guids_on_disk(&path).len(), 2);
}
