//! The application registry: the list of applications that can be invited to a session
//! (RegisterApplication / UnRegisterApplication; docs/CONTRACT.md, "The session manager"
//! and "Limits").
//!
//! Two backends share one API:
//!
//! * [`AppRegistry::in_memory`]: a map private to this process.
//! * [`AppRegistry::open`]: a crash-safe, human-readable JSON file shared by every process
//!   that opens the same path.
//!
//! # The registry file
//!
//! ```json
//! {
//!   "version": 1,
//!   "apps": [
//!     { "guid": "{...}", "name": "...", "url": "...", "path": "..." }
//!   ]
//! }
//! ```
//!
//! The file is never modified in place. Every change:
//!
//! 1. takes an exclusive `flock` on the side file `<path>.lock` (created mode 0600, never
//!    deleted by the library; its times are set to now each time a writer takes it), then
//!    checks that the file it locked is still the one at `<path>.lock` (same device and
//!    inode): when someone deleted or replaced it meanwhile, the lock is taken again on the
//!    file now there;
//! 2. takes an exclusive `flock` on the data file itself (the version now at the path, which
//!    is never written), and checks in the same way that it is still the one at the path;
//! 3. re-reads the data file, since another process may have changed it;
//! 4. applies the change and writes the whole new document to a fresh temporary file in the
//!    same directory (`.<file name>.tmp-<pid>-<n>-<nanos>`, created `O_CREAT|O_EXCL|O_NOFOLLOW`,
//!    mode 0600) and `fsync`s it;
//! 5. checks that the data file is still the version read in step 3 and still the locked one
//!    (without a data file to lock: that the lock file is still the locked one, else takes
//!    the lock on the new lock file and checks again); if not, discards the temporary file
//!    and starts again from step 1, applying the change to what is then read;
//! 6. renames the temporary file over the data file, `fsync`s the directory and releases the
//!    locks.
//!
//! Each step is repeated at most 100 times; a change that still cannot get its locks or
//! commit fails with REGDB_E_WRITEREGDB and changes nothing.
//!
//! A process killed at any instant therefore leaves either the old or the new document, and
//! concurrent writers in several processes are serialised by the locks, so none loses
//! another's change. The lock file alone would not be enough: if it is deleted while a writer
//! holds it (an age-based cleaner of temporary files, an administrator), a second writer
//! locks a new lock file at the same time. The data file's lock keeps them apart, since only
//! a writer holding it replaces the data file. What remains is the data file itself being
//! deleted or replaced by someone else while writers run (its content is then lost anyway),
//! and, while there is no data file, two writers creating it at once: step 5 makes one of
//! them start again unless the other's whole change fits between the first's check and its
//! rename.
//!
//! Because a data file's inode is never written after it has been renamed into place, readers
//! are safe even without the lock. A reader that finds the file changed reloads it under a
//! shared `flock` when it gets one within [`READ_LOCK_WAIT`] (250 ms); when a writer holds the
//! lock longer (a stopped or very slow process), the reader reloads without the lock and gets
//! the last version renamed into place, complete, though its writer may not have returned
//! yet. When reloading fails (see [`AppRegistry::get`]) the reader keeps the last content it
//! read. Reads therefore never wait for another process for longer than [`READ_LOCK_WAIT`],
//! and a writer of this process waiting for the lock does not make readers of this process
//! wait. Writers wait for the lock for as long as it is held.
//!
//! Temporary files left by a killed writer are ignored and removed the next time a registry
//! is opened on that path (only while holding the exclusive lock, when no writer can be
//! active; a writer whose temporary file is removed all the same, because the lock file was
//! deleted, starts its change again).
//!
//! The data file is always opened with `O_NOFOLLOW`: a symbolic link planted at the path is
//! refused, never followed (symbolic links in the *directories* leading to it are followed as
//! usual).

use crate::detail::detail;
use crate::error::{
    Result, E_FAIL, E_FILE_NOT_FOUND, E_INVALIDARG, REGDB_E_WRITEREGDB, SR_APP_ALREADY_REGISTERED,
    SR_APP_NOT_REGISTERED,
};
use crate::locks::Mutex;
use crate::types::{check_arg, check_chars, limits, normalize_guid};
use crate::watch::{Poll, Watcher};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Weak};

/// The longest a reader of a registry file waits for the shared lock when it has to reload
/// the file; then it reloads without the lock (see the module documentation).
pub const READ_LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// How often a registry file with listeners is checked for changes made elsewhere (by
/// another process, or through another [`AppRegistry`] on the same file). Such a change is
/// announced at most this long plus [`READ_LOCK_WAIT`] (and the time to read the file)
/// after it was committed.
pub const WATCH_PERIOD: std::time::Duration = std::time::Duration::from_millis(100);

/// One registered application.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppEntry {
    /// The application GUID in the braced form, uppercase hex digits.
    pub guid: String,
    /// Display name (at most 256 characters).
    pub name: String,
    /// URL where the application can be obtained (at most 256 characters).
    pub url: String,
    /// Absolute path of the executable (at most 260 characters); empty when the application
    /// has no executable to launch.
    pub path: String,
}

/// Receives registration changes. Listeners are held weakly by the registry (see
/// [`AppRegistry::subscribe`]).
pub trait RegistryListener: Send + Sync {
    /// An application was registered (`guid` braced, uppercase).
    fn app_registered(&self, guid: &str);
    /// An application was unregistered (`guid` braced, uppercase).
    fn app_unregistered(&self, guid: &str);
}

/// The application registry: in memory or backed by a crash-safe file.
///
/// Thread safe. Listeners are called after every successful change made through this
/// object, with no internal lock held, so they may call back into the registry.
pub struct AppRegistry {
    backend: Backend,
    listeners: Mutex<Vec<Weak<dyn RegistryListener>>>,
    /// File registries: what the listeners were last told the file holds. A change made
    /// elsewhere shows as a difference from it (see [`WATCH_PERIOD`]).
    announced: Option<Mutex<BTreeMap<String, AppEntry>>>,
    /// This registry, for the watcher it starts at its first subscription.
    me: Weak<AppRegistry>,
    watcher: Mutex<Option<Watcher>>,
}

enum Backend {
    Memory(Mutex<BTreeMap<String, AppEntry>>),
    #[cfg(unix)]
    File(Box<file::FileStore>),
}

/// Which notification to send after a successful change.
#[derive(Clone, Copy)]
enum Change {
    Registered,
    Unregistered,
}

impl AppRegistry {
    /// A new, empty registry private to this process.
    pub fn in_memory() -> Arc<AppRegistry> {
        Arc::new_cyclic(|me| AppRegistry {
            backend: Backend::Memory(Mutex::new(BTreeMap::new())),
            listeners: Mutex::new(Vec::new()),
            announced: None,
            me: me.clone(),
            watcher: Mutex::new(None),
        })
    }

    /// Opens the registry file at `path`, creating it (mode 0600, with an empty application
    /// list, atomically) when it does not exist. A relative path is made absolute against the
    /// current directory now, so later changes of directory do not matter.
    ///
    /// Leftover temporary files of killed writers are removed. An empty (or whitespace-only)
    /// existing file is accepted as an empty registry.
    ///
    /// Fails with E_FAIL when the path is not usable:
    /// * it has no file name or its directory does not exist;
    /// * it names a symbolic link (never followed), a directory or anything but a regular
    ///   file;
    /// * the file cannot be read, is larger than 64 MiB, or its content is not a valid
    ///   registry document: not JSON, `version` other than 1, unknown fields, an entry with
    ///   a malformed GUID, over-limit or NUL-containing strings, a relative path, or the same
    ///   GUID twice;
    /// * the file does not exist and cannot be created (including its `<path>.lock` file).
    ///
    /// Only available on Unix; elsewhere it always fails with E_FAIL.
    pub fn open(path: &Path) -> Result<Arc<AppRegistry>> {
        #[cfg(unix)]
        {
            let store = file::FileStore::open(path)?;
            let content = store.read(BTreeMap::clone);
            Ok(Arc::new_cyclic(|me| AppRegistry {
                backend: Backend::File(Box::new(store)),
                listeners: Mutex::new(Vec::new()),
                announced: Some(Mutex::new(content)),
                me: me.clone(),
                watcher: Mutex::new(None),
            }))
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            Err(E_FAIL)
        }
    }

    /// The absolute path of the registry file, or `None` for an in-memory registry.
    pub fn file_path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Memory(_) => None,
            #[cfg(unix)]
            Backend::File(f) => Some(f.path()),
        }
    }

    /// Registers an application (RegisterApplication).
    ///
    /// Checks, in this order:
    /// 1. `flags != 0` -> E_INVALIDARG;
    /// 2. `guid` not in the braced form (hex digits in either case) -> E_INVALIDARG;
    /// 3. `name`, `url` or `path` containing a NUL character, name over 256 characters, url
    ///    over 256 or path over 260 -> E_INVALIDARG;
    /// 4. `path` non-empty and not absolute -> E_INVALIDARG;
    /// 5. `path` non-empty and cannot be resolved (`std::fs::metadata` fails) -> E_FAIL;
    /// 6. the GUID is already registered (compared case-insensitively) ->
    ///    SR_APP_ALREADY_REGISTERED;
    /// 7. the registry file cannot be locked, read or written -> REGDB_E_WRITEREGDB, and
    ///    nothing changes, in memory or on disk.
    ///
    /// An empty `path` registers an application with no executable. The GUID is stored with
    /// uppercase digits. On success every live listener gets `app_registered`.
    pub fn register(
        &self,
        guid: &str,
        name: &str,
        url: &str,
        path: &str,
        flags: u32,
    ) -> Result<()> {
        if flags != 0 {
            detail!("flags: {flags}, must be 0");
            return Err(E_INVALIDARG);
        }
        let guid = normalize_guid(guid)?;
        for (arg, s) in [("name", name), ("url", url), ("path", path)] {
            if s.as_bytes().contains(&0) {
                detail!("{arg}: holds a NUL character");
                return Err(E_INVALIDARG);
            }
        }
        check_arg("name", name, limits::APP_NAME_CHARS, E_INVALIDARG)?;
        check_arg("url", url, limits::APP_URL_CHARS, E_INVALIDARG)?;
        check_arg("path", path, limits::APP_PATH_CHARS, E_INVALIDARG)?;
        if !path.is_empty() {
            if !Path::new(path).is_absolute() {
                detail!("path: {path:?} is relative: an absolute path is required");
                return Err(E_INVALIDARG);
            }
            if let Err(e) = std::fs::metadata(path) {
                return Err(if e.kind() == std::io::ErrorKind::NotFound {
                    detail!("path: {path:?} does not exist");
                    E_FILE_NOT_FOUND
                } else {
                    detail!("path: {path:?} cannot be examined: {e}");
                    E_FAIL
                });
            }
        }
        let entry = AppEntry {
            guid: guid.clone(),
            name: name.to_owned(),
            url: url.to_owned(),
            path: path.to_owned(),
        };
        self.change(Change::Registered, &guid, Some(&entry), |apps| {
            if apps.contains_key(&entry.guid) {
                detail!(
                    "guid: {} is registered already: unregister it first to change its name, URL or path",
                    entry.guid
                );
                return Err(SR_APP_ALREADY_REGISTERED);
            }
            apps.insert(entry.guid.clone(), entry.clone());
            Ok(())
        })
    }

    /// Unregisters an application (UnRegisterApplication).
    ///
    /// A malformed GUID -> E_INVALIDARG; not registered -> SR_APP_NOT_REGISTERED; the
    /// registry file cannot be locked, read or written -> REGDB_E_WRITEREGDB (nothing
    /// changes). On success every live listener gets `app_unregistered`.
    pub fn unregister(&self, guid: &str) -> Result<()> {
        let guid = normalize_guid(guid)?;
        self.change(Change::Unregistered, &guid, None, |apps| {
            match apps.remove(&guid) {
                Some(_) => Ok(()),
                None => {
                    detail!("guid: {guid} is not registered");
                    Err(SR_APP_NOT_REGISTERED)
                }
            }
        })
    }

    /// The application registered under `guid` (hex digits in either case); `None` when it is
    /// absent or `guid` is malformed.
    ///
    /// A file registry first reloads the file if another process changed it, waiting at most
    /// [`READ_LOCK_WAIT`] for a writer holding the lock (then reading without the lock, see
    /// the module documentation); when the file cannot be read (say a symbolic link was
    /// planted in its place) the last good content is used.
    pub fn get(&self, guid: &str) -> Option<AppEntry> {
        self.with(guid, AppEntry::clone)
    }

    /// Runs `f` on the entry for `guid` (any case) without copying it; None when absent or
    /// malformed. `f` runs under the registry's lock: keep it short and do not call back
    /// into the registry.
    pub fn with<R>(&self, guid: &str, f: impl FnOnce(&AppEntry) -> R) -> Option<R> {
        // GUIDs the core stores are already normalised: look them up without allocating.
        let owned;
        let key = if is_normalized_guid(guid) {
            guid
        } else {
            owned = normalize_guid(guid).ok()?;
            owned.as_str()
        };
        match &self.backend {
            Backend::Memory(m) => m.lock().get(key).map(f),
            #[cfg(unix)]
            Backend::File(file) => file.read(|apps| apps.get(key).map(f)),
        }
    }

    /// True when `guid` (any case) is registered.
    pub fn contains(&self, guid: &str) -> bool {
        self.with(guid, |_| ()).is_some()
    }

    /// Every registered application, sorted by GUID (same freshness rules as [`get`]).
    ///
    /// [`get`]: AppRegistry::get
    pub fn list(&self) -> Vec<AppEntry> {
        match &self.backend {
            Backend::Memory(m) => m.lock().values().cloned().collect(),
            #[cfg(unix)]
            Backend::File(f) => f.read(|apps| apps.values().cloned().collect()),
        }
    }

    /// Adds a listener. It is held weakly: once the last `Arc` to it is dropped it is no
    /// longer called and is pruned.
    ///
    /// After each successful [`register`]/[`unregister`] made through *this* `AppRegistry`
    /// object, every live listener is called exactly once per subscription, in subscription
    /// order, after all internal locks are released (a listener may call any method of the
    /// registry), on the thread that made the change. A listener subscribed during a
    /// notification is first called for the next change. A panic in a listener is caught
    /// and ignored, so the remaining listeners are still called and the change is still
    /// reported as done.
    ///
    /// A file registry also announces the changes made elsewhere (by another process, or
    /// through another `AppRegistry` object on the same file): from the first subscription
    /// on, a thread of the registry checks the file every [`WATCH_PERIOD`] and announces
    /// the difference from what its listeners were last told, in the same way: an
    /// application that appeared is registered, one that disappeared unregistered, one whose
    /// entry changed unregistered then registered. A change undone before the next check
    /// is not seen.
    ///
    /// [`register`]: AppRegistry::register
    /// [`unregister`]: AppRegistry::unregister
    pub fn subscribe(&self, listener: Weak<dyn RegistryListener>) {
        {
            let mut l = self.listeners.lock();
            // Prune dead listeners when the list reaches a power of two: amortised O(1) per
            // subscription instead of a walk over every client each time.
            if l.len().is_power_of_two() {
                l.retain(|w| w.strong_count() > 0);
            }
            l.push(listener);
        }
        if self.announced.is_some() {
            let mut w = self.watcher.lock();
            if w.is_none() {
                let me: Weak<dyn Poll> = self.me.clone();
                *w = Watcher::start(me, WATCH_PERIOD);
            }
        }
    }

    /// Makes a change (`apply`, see [`modify`](Self::modify)) and announces it: `guid` now
    /// has `entry` (None: is gone).
    fn change(
        &self,
        kind: Change,
        guid: &str,
        entry: Option<&AppEntry>,
        apply: impl FnMut(&mut BTreeMap<String, AppEntry>) -> Result<()>,
    ) -> Result<()> {
        {
            // Held across the commit: the watcher must not announce this change too.
            let mut announced = self.announced.as_ref().map(|a| a.lock());
            self.modify(apply)?;
            if let Some(a) = announced.as_mut() {
                match entry {
                    Some(e) => a.insert(guid.to_owned(), e.clone()),
                    None => a.remove(guid),
                };
            }
        }
        self.notify(kind, guid);
        Ok(())
    }

    /// Applies `change` to the current content, then commits it (file: under the lock, with an
    /// atomic replace). Nothing is changed when `change` or the commit fails. A file registry
    /// may call `change` again, on freshly read content, when a commit had to be started
    /// again.
    fn modify(
        &self,
        change: impl FnMut(&mut BTreeMap<String, AppEntry>) -> Result<()>,
    ) -> Result<()> {
        match &self.backend {
            Backend::Memory(m) => {
                let mut change = change;
                let mut map = m.lock();
                change(&mut map)
            }
            #[cfg(unix)]
            Backend::File(f) => f.modify(change),
        }
    }

    fn notify(&self, change: Change, guid: &str) {
        let live: Vec<Arc<dyn RegistryListener>> = {
            let mut l = self.listeners.lock();
            l.retain(|w| w.strong_count() > 0);
            l.iter().filter_map(Weak::upgrade).collect()
        };
        for listener in live {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match change {
                Change::Registered => listener.app_registered(guid),
                Change::Unregistered => listener.app_unregistered(guid),
            }));
        }
    }
}

impl Poll for AppRegistry {
    /// Announces what changed in the file since the listeners were last told.
    fn poll(&self) {
        #[cfg(unix)]
        {
            let (Backend::File(f), Some(announced)) = (&self.backend, &self.announced) else {
                return;
            };
            if !f.changed_since_poll() {
                return;
            }
            let changes = {
                let mut announced = announced.lock();
                let now = f.read(BTreeMap::clone);
                let changes = differences(&announced, &now);
                *announced = now;
                changes
            };
            for (kind, guid) in changes {
                self.notify(kind, &guid);
            }
        }
    }
}

/// The announcements that take listeners told `before` to `after`: removals (and the
/// removal half of a changed entry) first, then additions, each in GUID order.
fn differences(
    before: &BTreeMap<String, AppEntry>,
    after: &BTreeMap<String, AppEntry>,
) -> Vec<(Change, String)> {
    let gone = before
        .iter()
        .filter(|(g, e)| after.get(*g) != Some(e))
        .map(|(g, _)| (Change::Unregistered, g.clone()));
    let new = after
        .iter()
        .filter(|(g, e)| before.get(*g) != Some(e))
        .map(|(g, _)| (Change::Registered, g.clone()));
    gone.chain(new).collect()
}

impl std::fmt::Debug for AppRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRegistry")
            .field("file", &self.file_path())
            .finish_non_exhaustive()
    }
}

/// True when `e` is something `register` would have accepted (apart from the path existing).
fn entry_is_valid(e: &AppEntry) -> bool {
    let guid_ok = normalize_guid(&e.guid).is_ok();
    let no_nul = [&e.name, &e.url, &e.path]
        .iter()
        .all(|s| !s.as_bytes().contains(&0));
    guid_ok
        && no_nul
        && check_chars(&e.name, limits::APP_NAME_CHARS, E_INVALIDARG).is_ok()
        && check_chars(&e.url, limits::APP_URL_CHARS, E_INVALIDARG).is_ok()
        && check_chars(&e.path, limits::APP_PATH_CHARS, E_INVALIDARG).is_ok()
        && (e.path.is_empty() || Path::new(&e.path).is_absolute())
}

/// Parses a registry document; `None` when it is not a valid one.
fn parse_document(bytes: &[u8]) -> Option<BTreeMap<String, AppEntry>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        version: u32,
        apps: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        guid: String,
        name: String,
        url: String,
        path: String,
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Some(BTreeMap::new());
    }
    let doc: Doc = serde_json::from_slice(bytes).ok()?;
    if doc.version != 1 {
        return None;
    }
    let mut map = BTreeMap::new();
    for e in doc.apps {
        let mut e = AppEntry {
            guid: e.guid,
            name: e.name,
            url: e.url,
            path: e.path,
        };
        if !entry_is_valid(&e) {
            return None;
        }
        e.guid = e.guid.to_ascii_uppercase();
        if map.insert(e.guid.clone(), e).is_some() {
            return None;
        }
    }
    Some(map)
}

/// Serialises a registry document (pretty-printed, with a final newline).
fn render_document(apps: &BTreeMap<String, AppEntry>) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        version: u32,
        apps: Vec<&'a AppEntry>,
    }
    let doc = Doc {
        version: 1,
        apps: apps.values().collect(),
    };
    // Serialising plain strings into a Vec cannot fail.
    let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    out.push(b'\n');
    out
}

#[cfg(unix)]
mod file {
    //! The file backend (Unix: `flock`, `O_NOFOLLOW`, directory `fsync`).

    use super::{parse_document, render_document, AppEntry, Result, READ_LOCK_WAIT};
    use super::{E_FAIL, REGDB_E_WRITEREGDB};
    use crate::locks::Mutex;
    use std::collections::BTreeMap;
    use std::ffi::OsString;
    use std::fs::{File, OpenOptions};
    use std::io::{self, Read, Write};
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    use std::os::unix::io::AsRawFd;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    /// Refuse to load registry files bigger than this (a sane registry is a few KiB).
    const MAX_FILE_BYTES: u64 = 64 << 20;

    /// How many times the lock is taken again after it turned out to be on a lock file that
    /// is no longer the one at `<path>.lock`, and how many times a change is started again
    /// after its commit check failed, before giving up.
    const LOCK_ATTEMPTS: u32 = 100;

    /// Identity of one version of the data file. Since the cache also keeps that version's
    /// file open, its inode cannot be freed and its number reused, so an equal stamp means
    /// the same, unmodified content; size and mtime catch in-place edits by other tools.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    struct Stamp {
        dev: u64,
        ino: u64,
        size: u64,
        mtime: i64,
        mtime_nsec: i64,
    }

    impl Stamp {
        fn of(f: &File) -> io::Result<Stamp> {
            Ok(Stamp::from(&f.metadata()?))
        }

        fn from(m: &std::fs::Metadata) -> Stamp {
            Stamp {
                dev: m.dev(),
                ino: m.ino(),
                size: m.size(),
                mtime: m.mtime(),
                mtime_nsec: m.mtime_nsec(),
            }
        }
    }

    /// The cached content and the version of the file it came from.
    struct Cache {
        apps: BTreeMap<String, AppEntry>,
        /// `None`: the file did not exist when last looked at.
        stamp: Option<Stamp>,
        /// The file the content came from, kept open (see [`Stamp`]).
        _held: Option<File>,
    }

    pub(super) struct FileStore {
        path: PathBuf,
        lock_path: PathBuf,
        dir: PathBuf,
        temp_prefix: OsString,
        cache: Mutex<Cache>,
        /// What was at the path at the last [`changed_since_poll`](Self::changed_since_poll)
        /// (outer None: never asked).
        polled: Mutex<Option<Option<Stamp>>>,
    }

    /// A held `flock`; released when dropped, explicitly: closing the descriptor would not
    /// release it while a child forked meanwhile holds a copy of the descriptor (the lock
    /// belongs to the open file, which the child shares), and that child, or any other
    /// process, would then wait for it for as long as the child lives.
    struct FileLock {
        file: File,
        dev: u64,
        ino: u64,
    }

    impl Drop for FileLock {
        fn drop(&mut self) {
            // SAFETY: flock on a descriptor we own.
            unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
        }
    }

    impl FileLock {
        /// True while the locked file is still the one at `lock_path`. Since the lock keeps
        /// its file open, its inode number cannot be reused by a new lock file.
        fn is_current(&self, lock_path: &Path) -> bool {
            std::fs::symlink_metadata(lock_path)
                .map(|m| m.dev() == self.dev && m.ino() == self.ino)
                .unwrap_or(false)
        }
    }

    #[derive(Clone, Copy)]
    enum LockKind {
        Shared,
        Exclusive,
    }

    /// What reading the data file gave.
    enum Loaded {
        /// The file does not exist.
        Missing,
        /// Same version as the cache.
        Unchanged,
        /// A new version.
        New(BTreeMap<String, AppEntry>, Stamp, File),
    }

    /// Locks `f`, waiting for as long as it takes (`deadline` None) or until `deadline`
    /// (then fails with `TimedOut`).
    fn flock(f: &File, kind: LockKind, deadline: Option<Instant>) -> io::Result<()> {
        let op = match kind {
            LockKind::Shared => libc::LOCK_SH,
            LockKind::Exclusive => libc::LOCK_EX,
        } | if deadline.is_some() { libc::LOCK_NB } else { 0 };
        // flock has no timeout: with a deadline, poll, sleeping 1 ms, then 2, 4, 8 and 16.
        let mut pause = Duration::from_millis(1);
        loop {
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            match (e.kind(), deadline) {
                (io::ErrorKind::Interrupted, _) => {}
                (io::ErrorKind::WouldBlock, Some(deadline)) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(io::ErrorKind::TimedOut.into());
                    }
                    std::thread::sleep(pause.min(deadline - now));
                    pause = (pause * 2).min(Duration::from_millis(16));
                }
                _ => return Err(e),
            }
        }
    }

    fn is_regular(f: &File) -> bool {
        f.metadata()
            .map(|m| m.file_type().is_file())
            .unwrap_or(false)
    }

    /// Opens the data file for reading, refusing symbolic links; `O_NONBLOCK` so that a FIFO
    /// planted in its place cannot block us (it is then refused as not a regular file).
    fn open_data(path: &Path) -> io::Result<File> {
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)?;
        if !is_regular(&f) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a regular file",
            ));
        }
        Ok(f)
    }

    fn sync_dir(dir: &Path) {
        // Best effort: some file systems refuse fsync on directories (EINVAL). The rename
        // has already happened, so the change is visible whatever this returns.
        if let Ok(d) = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)
        {
            let _ = d.sync_all();
        }
    }

    static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

    impl FileStore {
        pub(super) fn open(path: &Path) -> Result<FileStore> {
            let path = std::path::absolute(path).map_err(|_| E_FAIL)?;
            let file_name = path.file_name().ok_or(E_FAIL)?.to_owned();
            let dir = path.parent().ok_or(E_FAIL)?.to_path_buf();
            let mut lock_name = path.as_os_str().to_owned();
            lock_name.push(".lock");
            let mut temp_prefix = OsString::from(".");
            temp_prefix.push(&file_name);
            temp_prefix.push(".tmp-");
            let store = FileStore {
                path,
                lock_path: PathBuf::from(lock_name),
                dir,
                temp_prefix,
                cache: Mutex::new(Cache {
                    apps: BTreeMap::new(),
                    stamp: None,
                    _held: None,
                }),
                polled: Mutex::new(None),
            };

            // Refuse unusable paths before creating anything next to them.
            let exists = match open_data(&store.path) {
                Ok(_) => true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(_) => return Err(E_FAIL),
            };

            let mut cache = store.cache.lock();
            for _ in 0..LOCK_ATTEMPTS {
                let mut guard = match store.lock(LockKind::Exclusive, None) {
                    Ok(guard) => guard,
                    // No lock file can be made or opened (a read-only directory, a lock file
                    // owned by someone else): still usable read-only if the file exists,
                    // since the file's content is only ever replaced atomically.
                    Err(_) if exists => match store.load(&cache).map_err(|_| E_FAIL)? {
                        Loaded::New(apps, stamp, file) => {
                            store.install(&mut cache, apps, stamp, file);
                            drop(cache);
                            return Ok(store);
                        }
                        _ => return Err(E_FAIL),
                    },
                    Err(_) => return Err(E_FAIL),
                };
                store.remove_stale_temps();
                match store.load(&cache).map_err(|_| E_FAIL)? {
                    Loaded::New(apps, stamp, file) => store.install(&mut cache, apps, stamp, file),
                    Loaded::Unchanged => {}
                    Loaded::Missing => {
                        let empty = BTreeMap::new();
                        let may_commit = || store.may_commit(&mut guard, None);
                        match store.write(&empty, may_commit) {
                            Ok(Some((file, stamp))) => {
                                store.install(&mut cache, empty, stamp, file)
                            }
                            Ok(None) => continue,
                            Err(_) if !guard.is_current(&store.lock_path) => continue,
                            Err(_) => return Err(E_FAIL),
                        }
                    }
                }
                drop(cache);
                return Ok(store);
            }
            Err(E_FAIL)
        }

        pub(super) fn path(&self) -> &Path {
            &self.path
        }

        /// Opens (creating it if needed, mode 0600) the lock file and locks it, waiting until
        /// `deadline` at most (None: for as long as it takes).
        ///
        /// Someone may delete or replace the lock file while we wait for it; a lock on the
        /// old file then excludes nobody who opens the path afterwards. So once locked, the
        /// file must still be the one at the path (same device and inode), else the lock is
        /// dropped and taken on the file now there, at most LOCK_ATTEMPTS times.
        ///
        /// An exclusive lock also sets the lock file's access and modification times to now
        /// (best effort), so that cleaners of old temporary files see it in use.
        fn lock(&self, kind: LockKind, deadline: Option<Instant>) -> io::Result<FileLock> {
            for _ in 0..LOCK_ATTEMPTS {
                let f = self.open_lock_file()?;
                flock(&f, kind, deadline)?;
                let m = f.metadata()?;
                let lock = FileLock {
                    file: f,
                    dev: m.dev(),
                    ino: m.ino(),
                };
                if lock.is_current(&self.lock_path) {
                    if let LockKind::Exclusive = kind {
                        // SAFETY: futimens on a descriptor we own; NULL means "now" for both.
                        unsafe { libc::futimens(lock.file.as_raw_fd(), std::ptr::null()) };
                    }
                    return Ok(lock);
                }
            }
            Err(io::Error::other(
                "the lock file kept being deleted or replaced while waiting for it",
            ))
        }

        /// Opens (creating it if needed, mode 0600) the lock file, never through a symbolic
        /// link.
        fn open_lock_file(&self) -> io::Result<File> {
            let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .mode(0o600)
                .custom_flags(flags)
                .open(&self.lock_path)
                .or_else(|_| {
                    // flock works on a read-only descriptor too.
                    OpenOptions::new()
                        .read(true)
                        .custom_flags(flags)
                        .open(&self.lock_path)
                })?;
            if !is_regular(&f) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "lock file is not a regular file",
                ));
            }
            Ok(f)
        }

        /// Whether what is at the data file's path differs from what was there at the last
        /// call (true at the first). One `lstat`, no read.
        pub(super) fn changed_since_poll(&self) -> bool {
            let now = self.on_disk();
            let mut polled = self.polled.lock();
            if *polled == Some(now) {
                return false;
            }
            *polled = Some(now);
            true
        }

        /// The stamp of what is at the data file's path now (never following a symbolic
        /// link); None when nothing is there or it cannot be examined.
        fn on_disk(&self) -> Option<Stamp> {
            std::fs::symlink_metadata(&self.path)
                .ok()
                .map(|m| Stamp::from(&m))
        }

        /// Reads the data file unless the cache already holds that version.
        fn load(&self, cache: &Cache) -> io::Result<Loaded> {
            let mut f = match open_data(&self.path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Loaded::Missing),
                Err(e) => return Err(e),
            };
            let stamp = Stamp::of(&f)?;
            if cache.stamp == Some(stamp) {
                return Ok(Loaded::Unchanged);
            }
            if stamp.size > MAX_FILE_BYTES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "registry file too large",
                ));
            }
            let mut bytes = Vec::with_capacity(stamp.size as usize);
            (&mut f).take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
            if bytes.len() as u64 > MAX_FILE_BYTES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "registry file too large",
                ));
            }
            // Re-stat: if a foreign tool changed the file while we read, don't cache a
            // stamp that does not match what we read.
            let after = Stamp::of(&f)?;
            let apps = parse_document(&bytes).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "not a registry document")
            })?;
            if after != stamp {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "file changed while read",
                ));
            }
            Ok(Loaded::New(apps, stamp, f))
        }

        fn install(
            &self,
            cache: &mut Cache,
            apps: BTreeMap<String, AppEntry>,
            stamp: Stamp,
            file: File,
        ) {
            cache.apps = apps;
            cache.stamp = Some(stamp);
            cache._held = Some(file);
        }

        /// True when the cache must be reloaded: the file changed, or was deleted. Not when
        /// it cannot be opened (a symbolic link, a directory, unreadable): the last good
        /// content is kept then.
        fn is_stale(&self, cache: &Cache) -> bool {
            let now = match open_data(&self.path) {
                Ok(f) => Stamp::of(&f).ok(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(_) => return false,
            };
            now != cache.stamp
        }

        /// Brings the cache up to date; on any failure the cache (last good content) is
        /// kept.
        fn reload(&self, cache: &mut Cache) {
            match self.load(cache) {
                Ok(Loaded::New(apps, stamp, file)) => self.install(cache, apps, stamp, file),
                Ok(Loaded::Unchanged) => {}
                Ok(Loaded::Missing) => {
                    // Deleted by someone: the registry is empty (a writer recreates it).
                    cache.apps.clear();
                    cache.stamp = None;
                    cache._held = None;
                }
                Err(_) => {}
            }
        }

        /// Runs `f` on the current content. When the file changed since it was last read,
        /// it is reloaded under a shared lock if one can be had within [`READ_LOCK_WAIT`],
        /// else without the lock (safe: versions are only ever replaced atomically).
        ///
        /// Lock order: the `flock` is never waited for while the cache mutex is held (here
        /// and in [`modify`](Self::modify)), so a writer of this process waiting for another
        /// process cannot stall readers of this process.
        pub(super) fn read<T>(&self, f: impl FnOnce(&BTreeMap<String, AppEntry>) -> T) -> T {
            {
                let cache = self.cache.lock();
                if !self.is_stale(&cache) {
                    return f(&cache.apps);
                }
            }
            let deadline = Instant::now() + READ_LOCK_WAIT;
            let guard = self.lock(LockKind::Shared, Some(deadline)).ok();
            let mut cache = self.cache.lock();
            self.reload(&mut cache);
            drop(guard);
            f(&cache.apps)
        }

        /// Applies `change` to the content read under the exclusive lock and commits it. When
        /// the commit check fails (see [`may_commit`](Self::may_commit)), everything is started
        /// again from the lock, at most LOCK_ATTEMPTS times, and `change` is applied again to
        /// what is then read.
        pub(super) fn modify(
            &self,
            mut change: impl FnMut(&mut BTreeMap<String, AppEntry>) -> Result<()>,
        ) -> Result<()> {
            for _ in 0..LOCK_ATTEMPTS {
                let mut guard = self
                    .lock(LockKind::Exclusive, None)
                    .map_err(|_| REGDB_E_WRITEREGDB)?;
                let data_lock = self.lock_data();
                // The cache mutex is not held while writing: `may_commit` may wait for the
                // lock.
                let (mut next, read) = {
                    let mut cache = self.cache.lock();
                    // Re-read: another process may have changed the file since we last looked.
                    match self.load(&cache).map_err(|_| REGDB_E_WRITEREGDB)? {
                        Loaded::Unchanged => (cache.apps.clone(), cache.stamp),
                        Loaded::Missing => (BTreeMap::new(), None),
                        Loaded::New(apps, stamp, file) => {
                            let copy = apps.clone();
                            self.install(&mut cache, apps, stamp, file);
                            (copy, Some(stamp))
                        }
                    }
                };
                change(&mut next)?;
                let locked = (guard.dev, guard.ino);
                let may_commit = || match &data_lock {
                    Some(d) => d.is_current(&self.path) && self.on_disk() == read,
                    None => self.may_commit(&mut guard, read),
                };
                match self.write(&next, may_commit) {
                    Ok(Some((file, stamp))) => {
                        // Any version with its stamp is a valid cache entry: a reader that
                        // installed a later one meanwhile reloads at its next read.
                        self.install(&mut self.cache.lock(), next, stamp, file);
                        return Ok(());
                    }
                    Ok(None) => {}
                    // The lock file was deleted during this attempt, so a process that locked
                    // a new one may have removed the temporary file as a killed writer's
                    // leftover.
                    Err(_)
                        if (guard.dev, guard.ino) != locked
                            || !guard.is_current(&self.lock_path) => {}
                    Err(_) => return Err(REGDB_E_WRITEREGDB),
                }
            }
            Err(REGDB_E_WRITEREGDB)
        }

        /// Takes an exclusive `flock` on the data file itself, on the version now at the path
        /// (it is never written, only replaced). Unlike the lock file, it cannot be deleted
        /// without deleting the registry's content, so it keeps writers apart even when the
        /// lock file was deleted under them. Called with the lock file's lock held (the only
        /// order in which the two are taken); a writer holding this lock never waits for the
        /// lock file's.
        ///
        /// None when there is no data file (a writer creating it relies on the lock file and
        /// [`may_commit`](Self::may_commit) alone), or when it cannot be opened or locked.
        fn lock_data(&self) -> Option<FileLock> {
            for _ in 0..LOCK_ATTEMPTS {
                let f = open_data(&self.path).ok()?;
                flock(&f, LockKind::Exclusive, None).ok()?;
                let m = f.metadata().ok()?;
                let lock = FileLock {
                    file: f,
                    dev: m.dev(),
                    ino: m.ino(),
                };
                // A writer that held it renamed a new version into place meanwhile.
                if lock.is_current(&self.path) {
                    return Some(lock);
                }
            }
            None
        }

        /// Whether a writer holding `guard` (the lock file's lock, but not the data file's),
        /// who read the version `read` of the data file (None: there was none), may rename
        /// its new version into place now: only while the data file is still `read` and the
        /// locked file still the one at `<path>.lock`.
        ///
        /// When the lock file was deleted or replaced since it was locked, another writer may
        /// hold a lock on the new one: the lock is then taken on the file now at the path
        /// (waiting for that writer) and the checks made again. False when the data file
        /// changed (the change must be started again) or no lock can be had.
        fn may_commit(&self, guard: &mut FileLock, read: Option<Stamp>) -> bool {
            for _ in 0..LOCK_ATTEMPTS {
                if self.on_disk() != read {
                    return false;
                }
                if guard.is_current(&self.lock_path) {
                    return true;
                }
                match self.lock(LockKind::Exclusive, None) {
                    Ok(g) => *guard = g,
                    Err(_) => return false,
                }
            }
            false
        }

        /// Creates a fresh temporary file next to the data file.
        fn create_temp(&self) -> io::Result<(PathBuf, File)> {
            let pid = std::process::id();
            let mut last = None;
            for _ in 0..64 {
                let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0);
                let mut name = self.temp_prefix.clone();
                name.push(format!("{pid}-{n}-{nanos}"));
                let p = self.dir.join(name);
                match OpenOptions::new()
                    .write(true)
                    .create_new(true) // O_CREAT | O_EXCL
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&p)
                {
                    Ok(f) => return Ok((p, f)),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                    Err(e) => return Err(e),
                }
            }
            Err(last.unwrap_or_else(|| io::Error::other("no temporary name")))
        }

        /// Writes `apps` as the new version of the file: temporary file, fsync, rename over
        /// the data file, fsync of the directory. Must be called with the exclusive lock held.
        /// `may_commit` is asked just before the rename; when it says no, the temporary file
        /// is removed and nothing changes (`Ok(None)`). Returns the new version's file (kept
        /// open by the cache) and its stamp.
        fn write(
            &self,
            apps: &BTreeMap<String, AppEntry>,
            may_commit: impl FnOnce() -> bool,
        ) -> io::Result<Option<(File, Stamp)>> {
            let data = render_document(apps);
            let (tmp, mut f) = self.create_temp()?;
            let staged = (|| {
                f.write_all(&data)?;
                f.sync_all()?;
                let stamp = Stamp::of(&f)?;
                if !may_commit() {
                    return Ok(None);
                }
                std::fs::rename(&tmp, &self.path)?;
                Ok(Some(stamp))
            })();
            match staged {
                Ok(Some(stamp)) => {
                    sync_dir(&self.dir);
                    Ok(Some((f, stamp)))
                }
                Ok(None) => {
                    let _ = std::fs::remove_file(&tmp);
                    Ok(None)
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    Err(e)
                }
            }
        }

        /// Removes temporary files left by killed writers. Only called with the exclusive lock
        /// held: every writer holds it from creating its temporary file to renaming it, so
        /// any temporary file seen now belongs to a writer that died.
        fn remove_stale_temps(&self) {
            let Ok(rd) = std::fs::read_dir(&self.dir) else {
                return;
            };
            let prefix = self.temp_prefix.as_encoded_bytes();
            for ent in rd.flatten() {
                let name = ent.file_name();
                // Exactly `<prefix><pid>-<n>-<nanos>`, so that the temporary files of a
                // registry file whose name merely starts like ours are left alone.
                let Some(rest) = name.as_encoded_bytes().strip_prefix(prefix) else {
                    continue;
                };
                let mut parts = rest.split(|&b| b == b'-');
                let numeric = |p: Option<&[u8]>| {
                    p.is_some_and(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit))
                };
                if !(numeric(parts.next())
                    && numeric(parts.next())
                    && numeric(parts.next())
                    && parts.next().is_none())
                {
                    continue;
                }
                if ent.file_type().map(|t| t.is_file()).unwrap_or(false) {
                    let _ = std::fs::remove_file(ent.path());
                }
            }
        }
    }
}

/// True for a GUID already in the stored form: braced, uppercase hex.
fn is_normalized_guid(g: &str) -> bool {
    crate::types::is_guid(g) && !g.bytes().any(|b| b.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Hr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const G1: &str = "{E3A3B1D9-5675-43C0-BF04-37BE11939FB7}";
    const G2: &str = "{00000000-0000-0000-0000-000000000002}";

    fn existing_abs_path() -> String {
        std::env::current_exe()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn register_get_list_unregister() {
        let r = AppRegistry::in_memory();
        assert_eq!(r.file_path(), None);
        assert_eq!(
            r.register(&G1.to_lowercase(), "App", "http://x", "", 0),
            Ok(())
        );
        let e = r.get(G1).unwrap();
        assert_eq!(e.guid, G1);
        assert_eq!(e.name, "App");
        assert_eq!(r.get(&G1.to_lowercase()), Some(e.clone()));
        let p = existing_abs_path();
        r.register(G2, "B", "", &p, 0).unwrap();
        let l = r.list();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].guid, G2, "sorted by guid");
        assert_eq!(l[1], e);
        assert_eq!(r.unregister(&G1.to_lowercase()), Ok(()));
        assert_eq!(r.get(G1), None);
        assert_eq!(r.unregister(G1), Err(SR_APP_NOT_REGISTERED));
        assert_eq!(r.get("garbage"), None);
    }

    #[test]
    fn each_code_in_validation_order() {
        let r = AppRegistry::in_memory();
        let long = |n| "x".repeat(n);
        // 1. flags first, even with everything else wrong.
        assert_eq!(
            r.register("bad", &long(999), "", "relative", 1),
            Err(E_INVALIDARG)
        );
        // 2. guid.
        assert_eq!(r.register("bad", "n", "u", "", 0), Err(E_INVALIDARG));
        assert_eq!(r.register(&G1[..37], "n", "u", "", 0), Err(E_INVALIDARG));
        assert_eq!(
            r.register(&format!("{G1}\0"), "n", "u", "", 0),
            Err(E_INVALIDARG)
        );
        // 3. NULs and limits (characters, not bytes).
        assert_eq!(r.register(G1, "a\0b", "", "", 0), Err(E_INVALIDARG));
        assert_eq!(r.register(G1, "", "a\0", "", 0), Err(E_INVALIDARG));
        assert_eq!(r.register(G1, "", "", "/\0", 0), Err(E_INVALIDARG));
        assert_eq!(r.register(G1, &long(257), "", "", 0), Err(E_INVALIDARG));
        assert_eq!(r.register(G1, "", &long(257), "", 0), Err(E_INVALIDARG));
        assert_eq!(
            r.register(G1, "", "", &format!("/{}", long(260)), 0),
            Err(E_INVALIDARG)
        );
        // Over-limit beats "relative" and "missing".
        assert_eq!(r.register(G1, "", "", &long(261), 0), Err(E_INVALIDARG));
        // 4. relative path beats a missing one.
        assert_eq!(
            r.register(G1, "n", "u", "no/such/file", 0),
            Err(E_INVALIDARG)
        );
        // 5. missing path.
        assert_eq!(
            r.register(G1, "n", "u", "/no/such/msgrpriv/file", 0),
            Err(E_FILE_NOT_FOUND)
        );
        assert!(r.list().is_empty(), "nothing changed");
        // At the limits is fine.
        let name = "é".repeat(256);
        r.register(G1, &name, &long(256), "", 0).unwrap();
        // 6. already registered (any case), beats nothing else failing.
        assert_eq!(
            r.register(&G1.to_lowercase(), "other", "", "", 0),
            Err(SR_APP_ALREADY_REGISTERED)
        );
        // ... but comes after the path check.
        assert_eq!(
            r.register(G1, "n", "u", "/no/such/msgrpriv/file", 0),
            Err(E_FILE_NOT_FOUND)
        );
        assert_eq!(r.get(G1).unwrap().name, name, "unchanged");
        // unregister codes.
        assert_eq!(r.unregister("{nope}"), Err(E_INVALIDARG));
        assert_eq!(r.unregister(G2), Err(SR_APP_NOT_REGISTERED));
    }

    type Log = Arc<Mutex<Vec<(usize, &'static str, String)>>>;

    #[derive(Default)]
    struct Recorder {
        id: usize,
        log: Log,
    }

    impl RegistryListener for Recorder {
        fn app_registered(&self, guid: &str) {
            self.log.lock().push((self.id, "reg", guid.to_owned()));
        }
        fn app_unregistered(&self, guid: &str) {
            self.log.lock().push((self.id, "unreg", guid.to_owned()));
        }
    }

    #[test]
    fn listeners_called_once_in_order_and_dead_ones_pruned() {
        let r = AppRegistry::in_memory();
        let log = Arc::new(Mutex::new(Vec::new()));
        let a: Arc<dyn RegistryListener> = Arc::new(Recorder {
            id: 1,
            log: log.clone(),
        });
        let b: Arc<dyn RegistryListener> = Arc::new(Recorder {
            id: 2,
            log: log.clone(),
        });
        let c: Arc<dyn RegistryListener> = Arc::new(Recorder {
            id: 3,
            log: log.clone(),
        });
        r.subscribe(Arc::downgrade(&a));
        r.subscribe(Arc::downgrade(&b));
        r.subscribe(Arc::downgrade(&c));
        r.register(&G1.to_lowercase(), "n", "", "", 0).unwrap();
        assert_eq!(
            *log.lock(),
            vec![
                (1, "reg", G1.to_owned()),
                (2, "reg", G1.to_owned()),
                (3, "reg", G1.to_owned())
            ]
        );
        log.lock().clear();
        // Failures notify nobody.
        assert!(r.register(G1, "n", "", "", 0).is_err());
        assert!(r.unregister(G2).is_err());
        assert!(r.register(G2, "n", "", "", 1).is_err());
        assert!(log.lock().is_empty());
        drop(b);
        r.unregister(G1).unwrap();
        assert_eq!(
            *log.lock(),
            vec![(1, "unreg", G1.to_owned()), (3, "unreg", G1.to_owned())]
        );
        assert_eq!(r.listeners.lock().len(), 2, "dead listener pruned");
    }

    /// A listener that calls back into the registry from inside the notification.
    struct Reentrant {
        reg: Arc<AppRegistry>,
        calls: AtomicUsize,
        seen: Mutex<Vec<Option<AppEntry>>>,
        nested_unregister: Mutex<Vec<Result<()>>>,
    }

    impl RegistryListener for Reentrant {
        fn app_registered(&self, guid: &str) {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.seen.lock().push(self.reg.get(guid));
            let _ = self.reg.list();
            if guid == G1 {
                // A nested change: notifies again (recursively), still no deadlock.
                self.reg.register(G2, "nested", "", "", 0).unwrap();
            }
            let me: Arc<dyn RegistryListener> = Arc::new(Recorder::default());
            self.reg.subscribe(Arc::downgrade(&me));
        }
        fn app_unregistered(&self, guid: &str) {
            self.calls.fetch_add(1, Ordering::SeqCst);
            // Already gone: the nested call sees the committed change.
            self.nested_unregister
                .lock()
                .push(self.reg.unregister(guid));
        }
    }

    fn reentrant_on(reg: Arc<AppRegistry>) {
        let l = Arc::new(Reentrant {
            reg: reg.clone(),
            calls: AtomicUsize::new(0),
            seen: Mutex::new(vec![]),
            nested_unregister: Mutex::new(vec![]),
        });
        let dyn_l: Arc<dyn RegistryListener> = l.clone();
        reg.subscribe(Arc::downgrade(&dyn_l));
        reg.register(G1, "n", "", "", 0).unwrap();
        assert_eq!(l.calls.load(Ordering::SeqCst), 2);
        let seen = l.seen.lock().clone();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].as_ref().unwrap().guid, G1);
        assert_eq!(seen[1].as_ref().unwrap().name, "nested");
        reg.unregister(G1).unwrap();
        assert_eq!(l.calls.load(Ordering::SeqCst), 3);
        assert_eq!(
            *l.nested_unregister.lock(),
            vec![Err(SR_APP_NOT_REGISTERED)]
        );
        assert_eq!(reg.list().len(), 1);
    }

    #[test]
    fn listener_can_call_back_without_deadlock_in_memory() {
        reentrant_on(AppRegistry::in_memory());
    }

    #[cfg(unix)]
    #[test]
    fn listener_can_call_back_without_deadlock_file() {
        let dir = test_dir("reentrant");
        reentrant_on(AppRegistry::open(&dir.join("apps.json")).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Waits (at most 5 s) until `log` holds `n` entries, then a little longer to see that
    /// no more come; returns them.
    fn settled(log: &Log, n: usize) -> Vec<(usize, &'static str, String)> {
        let start = std::time::Instant::now();
        while log.lock().len() < n && start.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(WATCH_PERIOD * 3);
        std::mem::take(&mut *log.lock())
    }

    #[cfg(unix)]
    #[test]
    fn changes_made_elsewhere_are_announced_once() {
        let dir = test_dir("watch");
        let path = dir.join("apps.json");
        let a = AppRegistry::open(&path).unwrap();
        let b = AppRegistry::open(&path).unwrap();
        let log: Log = Arc::default();
        let la: Arc<dyn RegistryListener> = Arc::new(Recorder {
            id: 1,
            log: log.clone(),
        });
        let lb: Arc<dyn RegistryListener> = Arc::new(Recorder {
            id: 2,
            log: log.clone(),
        });
        a.subscribe(Arc::downgrade(&la));
        b.subscribe(Arc::downgrade(&lb));
        a.register(G1, "one", "", "", 0).unwrap();
        assert_eq!(
            settled(&log, 2),
            vec![(1, "reg", G1.to_owned()), (2, "reg", G1.to_owned())],
            "A's own change at once, B's view once"
        );
        b.unregister(G1).unwrap();
        assert_eq!(
            settled(&log, 2),
            vec![(2, "unreg", G1.to_owned()), (1, "unreg", G1.to_owned())]
        );
        // A change and its undoing between two checks leave the others' view as it was;
        // a changed entry is announced as unregistered, then registered.
        a.register(G2, "two", "", "", 0).unwrap();
        settled(&log, 2);
        a.unregister(G2).unwrap();
        a.register(G2, "two, again", "", "", 0).unwrap();
        a.register(G1, "", "", "", 0).unwrap();
        a.unregister(G1).unwrap();
        let got = settled(&log, 6);
        let of_b: Vec<_> = got.iter().filter(|(id, _, _)| *id == 2).cloned().collect();
        assert_eq!(
            of_b,
            vec![(2, "unreg", G2.to_owned()), (2, "reg", G2.to_owned())],
            "{got:?}"
        );
        assert_eq!(
            got.len() - of_b.len(),
            4,
            "A told of each of its own changes once"
        );
        // Nobody listening: no thread keeps the registry.
        drop(lb);
        let weak = Arc::downgrade(&b);
        drop(b);
        assert!(weak.upgrade().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    struct Panicker;
    impl RegistryListener for Panicker {
        fn app_registered(&self, _: &str) {
            panic!("listener panic (expected in this test)");
        }
        fn app_unregistered(&self, _: &str) {}
    }

    #[test]
    fn panicking_listener_does_not_stop_the_others() {
        let r = AppRegistry::in_memory();
        let log = Arc::new(Mutex::new(Vec::new()));
        let p: Arc<dyn RegistryListener> = Arc::new(Panicker);
        let a: Arc<dyn RegistryListener> = Arc::new(Recorder {
            id: 7,
            log: log.clone(),
        });
        r.subscribe(Arc::downgrade(&p));
        r.subscribe(Arc::downgrade(&a));
        assert_eq!(r.register(G1, "", "", "", 0), Ok(()));
        assert_eq!(log.lock().len(), 1);
        assert!(r.get(G1).is_some());
    }

    #[test]
    fn document_round_trip_and_strict_parsing() {
        let r = AppRegistry::in_memory();
        r.register(G1, "n \"quoted\" ü", "u", "", 0).unwrap();
        let map: BTreeMap<_, _> = r.list().into_iter().map(|e| (e.guid.clone(), e)).collect();
        let bytes = render_document(&map);
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.contains("\"version\": 1"), "{text}");
        assert!(text.contains('\n'));
        assert_eq!(parse_document(&bytes), Some(map));
        assert_eq!(parse_document(b""), Some(BTreeMap::new()));
        assert_eq!(parse_document(b" \n"), Some(BTreeMap::new()));
        for bad in [
            &b"{"[..],
            b"[]",
            b"{\"version\":2,\"apps\":[]}",
            b"{\"version\":1}",
            b"{\"version\":1,\"apps\":[],\"x\":1}",
            b"{\"version\":1,\"apps\":[{\"guid\":\"x\",\"name\":\"\",\"url\":\"\",\"path\":\"\"}]}",
            b"{\"version\":1,\"apps\":[{\"guid\":\"{E3A3B1D9-5675-43C0-BF04-37BE11939FB7}\",\"name\":\"\\u0000\",\"url\":\"\",\"path\":\"\"}]}",
            b"{\"version\":1,\"apps\":[{\"guid\":\"{E3A3B1D9-5675-43C0-BF04-37BE11939FB7}\",\"name\":\"\",\"url\":\"\",\"path\":\"rel\"}]}",
            b"{\"version\":1,\"apps\":[{\"guid\":\"{E3A3B1D9-5675-43C0-BF04-37BE11939FB7}\",\"name\":\"\",\"url\":\"\",\"path\":\"\"},{\"guid\":\"{e3a3b1d9-5675-43c0-bf04-37be11939fb7}\",\"name\":\"\",\"url\":\"\",\"path\":\"\"}]}",
        ] {
            assert_eq!(parse_document(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        // Lowercase guids in a hand-edited file are accepted and normalised.
        let m = parse_document(b"{\"version\":1,\"apps\":[{\"guid\":\"{e3a3b1d9-5675-43c0-bf04-37be11939fb7}\",\"name\":\"\",\"url\":\"\",\"path\":\"\"}]}").unwrap();
        assert!(m.contains_key(G1));
    }

    #[cfg(unix)]
    fn test_dir(tag: &str) -> std::path::PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "msgrpriv-reg-unit-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[cfg(unix)]
    #[test]
    fn file_write_failure_changes_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = test_dir("wfail");
        let path = dir.join("apps.json");
        let r = AppRegistry::open(&path).unwrap();
        r.register(G1, "one", "", "", 0).unwrap();
        let before = std::fs::read(&path).unwrap();
        // Plant a symbolic link in place of the file: refused, never followed.
        let target = dir.join("target.json");
        std::fs::write(&target, b"").unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert_eq!(r.register(G2, "two", "", "", 0), Err(REGDB_E_WRITEREGDB));
        assert_eq!(r.unregister(G1), Err(REGDB_E_WRITEREGDB));
        assert_eq!(r.list().len(), 1, "stale data kept");
        assert_eq!(
            std::fs::read(&target).unwrap(),
            b"",
            "link target untouched"
        );
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, &before).unwrap();
        // A read-only directory (unless we are root, who ignores permissions).
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500)).unwrap();
        let probe = std::fs::File::create(dir.join("probe")).is_ok();
        if !probe {
            assert_eq!(r.register(G2, "two", "", "", 0), Err(REGDB_E_WRITEREGDB));
            assert_eq!(r.get(G2), None);
            assert_eq!(std::fs::read(&path).unwrap(), before);
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        r.register(G2, "two", "", "", 0).unwrap();
        assert_eq!(r.list().len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn registry_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<AppRegistry>();
        check::<Arc<AppRegistry>>();
    }

    #[test]
    fn hr_codes_are_failures() {
        for c in [
            E_INVALIDARG,
            E_FAIL,
            REGDB_E_WRITEREGDB,
            SR_APP_ALREADY_REGISTERED,
            SR_APP_NOT_REGISTERED,
        ] {
            assert!(Hr::failed(c));
        }
    }
}
