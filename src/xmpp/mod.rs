//! The XMPP service: the same [`Service`] seam as the embedded service, carried by a real
//! XMPP server (built with the `xmpp` cargo feature).
//!
//! A sign-in name is a bare JID (`alice@example.com`); each client is one resource of it,
//! with its own connection to the server. Invitations and their steps travel as XEP-0166
//! Jingle IQs (see [`protocol`] and docs/xmpp.md); "signed in" is presence: a user none of
//! whose resources this service has seen available is not signed in.
//!
//! Threads: one single-threaded tokio runtime on a library-owned thread per service; each
//! connection is a task on it. Application threads talk to a connection through a channel
//! and never block on the runtime, except sign-in, which waits for the login with a bound.
//! Completions and deliveries run on the runtime thread and only queue events: callbacks
//! still run where each client's dispatch mode says.

mod connection;
mod login;
mod policy;
pub mod protocol;

use crate::error::{Result, E_FAIL, E_ILLEGAL_METHOD_CALL, E_INVALIDARG, MSGR_E_ALREADY_LOGGED_ON};
use crate::lock::{self, AppKeys};
use crate::locks::Mutex;
use crate::registry::AppRegistry;
use crate::service::{
    ChallengeDone, CheckDone, Endpoint, Message, SendDone, Service, Undeliverable,
};
use crate::timer::Timers;
use crate::types::Text;
use connection::Command;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use xmpp_parsers::jid::{BareJid, FullJid};

/// Overwrites `buf` with zeros in a way the compiler keeps (for passwords).
pub(crate) fn wipe(buf: &mut [u8]) {
    for b in buf.iter_mut() {
        // SAFETY: a valid, aligned pointer to a byte of `buf`.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// Gives the password of a sign-in name (None: refuse the sign-in). The returned string is
/// used once and dropped.
pub type Credentials = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// How a connection to the server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tls {
    /// STARTTLS, required (the default): the connection starts as plain TCP and is upgraded
    /// to TLS before anything else is said; the server's certificate must verify for the
    /// XMPP domain against the trust roots (the system's store, or `ca_file`). A server that
    /// offers no STARTTLS, or whose certificate does not verify, refuses the sign-in with
    /// SR_NETWORK_CONFIG_FAILURE.
    #[default]
    StartTls,
    /// Direct TLS (XEP-0368): TLS from the first byte (ALPN `xmpp-client`), to a port that
    /// expects it; the certificate is verified as for [`Tls::StartTls`].
    Direct,
    /// Plain TCP, no encryption: only to a loopback IP address (E_INVALIDARG otherwise).
    Plain,
}

/// Options of the XMPP service.
#[derive(Clone)]
pub struct XmppOptions {
    /// The server's host: an IP literal ("127.0.0.1", "::1") or a host name, resolved at
    /// each sign-in. [`Tls::Plain`] requires a loopback IP literal.
    pub server_host: String,
    /// The server's client port (5222 is the usual STARTTLS port, 5223 the usual direct TLS
    /// one).
    pub server_port: u16,
    /// How the connection is protected (default: STARTTLS required).
    pub tls: Tls,
    /// A PEM file of the certificates trusted to sign (or be) the server's certificate; when
    /// set, it replaces the system's store. Unreadable or holding no certificate:
    /// E_INVALIDARG at [`XmppService::new`].
    pub ca_file: Option<PathBuf>,
    /// The XMPP domain. When set, it is the name the server's certificate must carry and the
    /// stream's `to`, a sign-in name without '@' is completed with it (`alice` signs in as
    /// `alice@<domain>`), and a sign-in name at another domain is refused (E_INVALIDARG).
    /// None: each sign-in name's own domain.
    pub domain: Option<String>,
    /// The resource each client binds (a client number is appended when several clients of
    /// this service sign in the same user, which the service refuses).
    pub resource: String,
    /// The password source.
    pub credentials: Credentials,
    /// How long a sign-in (connect, TLS, authenticate, bind) may take.
    pub connect_timeout: Duration,
    /// How long a step may wait for the peer's acknowledgement before it counts as not
    /// delivered.
    pub request_timeout: Duration,
    /// How long an invitation may go unanswered.
    pub invitation_timeout: Duration,
    /// Whether invitations from users who are not among the invitee's contacts (its roster,
    /// which includes the server's shared groups) are taken. False (the default): they are
    /// refused, and the inviter ends declined with E_ACCESSDENIED.
    pub allow_strangers: bool,
    /// How many invitations one sender may send to one client in a minute; more are refused
    /// (the inviter ends declined with E_NOT_ENOUGH_QUOTA). Zero: no limit.
    pub invitations_per_minute: u32,
    /// How long the connection to the server may be quiet before the client pings the
    /// server (no answer within `request_timeout` then counts as a lost connection).
    pub keepalive: Duration,
    /// The longest pause between two attempts to sign in again after a lost connection
    /// (the first comes after about a second, each later one after twice the pause before,
    /// up to this); zero: a lost connection is not restored (the client stays signed out).
    pub reconnect_max: Duration,
    /// Registry file; None keeps the registry in memory.
    pub registry_path: Option<PathBuf>,
}

impl std::fmt::Debug for XmppOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmppOptions")
            .field("server_host", &self.server_host)
            .field("server_port", &self.server_port)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("domain", &self.domain)
            .field("resource", &self.resource)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("invitation_timeout", &self.invitation_timeout)
            .field("allow_strangers", &self.allow_strangers)
            .field("invitations_per_minute", &self.invitations_per_minute)
            .field("keepalive", &self.keepalive)
            .field("reconnect_max", &self.reconnect_max)
            .finish_non_exhaustive()
    }
}

impl XmppOptions {
    /// Options for the server at `server_host`:`server_port` with the given password source
    /// and the defaults: STARTTLS required, the system's trust store, each sign-in name's own
    /// domain, resource "msgrpriv", 10 s connect and request timeouts, a two-minute
    /// invitation timeout, invitations from contacts only and at most 30 a minute from
    /// one sender, a ping after 30 quiet seconds, reconnection with pauses of up to
    /// 30 s, the registry in memory.
    pub fn new(server_host: impl Into<String>, server_port: u16, credentials: Credentials) -> Self {
        XmppOptions {
            server_host: server_host.into(),
            server_port,
            tls: Tls::StartTls,
            ca_file: None,
            domain: None,
            resource: "msgrpriv".into(),
            credentials,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            invitation_timeout: Duration::from_secs(120),
            allow_strangers: false,
            invitations_per_minute: 30,
            keepalive: Duration::from_secs(30),
            reconnect_max: Duration::from_secs(30),
            registry_path: None,
        }
    }
}

/// The TLS client configuration `options` ask for (None for plain TCP). E_INVALIDARG for a
/// `ca_file` that cannot be read or holds no certificate, or a `domain` that is no valid
/// server name.
fn tls_config(options: &XmppOptions) -> Result<Option<Arc<ClientConfig>>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let mut roots = RootCertStore::empty();
    if let Some(path) = &options.ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|_| E_INVALIDARG)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| E_INVALIDARG)?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(E_INVALIDARG);
        }
    }
    if options.tls == Tls::Plain {
        return Ok(None);
    }
    if let Some(d) = &options.domain {
        ServerName::try_from(d.as_str()).map_err(|_| E_INVALIDARG)?;
    }
    if options.ca_file.is_none() {
        // Certificates of the store that do not parse are skipped, as is a store that
        // cannot be read: no root then verifies, and sign-ins are refused.
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    }
    // ring, not aws-lc-rs (which needs cmake and a C build, and is much larger); rustls
    // 0.23.48 deprecates ring's provider only for its lack of post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| E_FAIL)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    if options.tls == Tls::Direct {
        config.alpn_protocols = vec![b"xmpp-client".to_vec()];
    }
    Ok(Some(Arc::new(config)))
}

/// What the service knows of the network, shared with its connections.
pub(crate) struct Shared {
    /// Available resources of each bare JID (lowercase), with the local users (lowercase)
    /// whose connections saw them available: what a connection saw goes with it.
    presence: Mutex<HashMap<String, BTreeMap<FullJid, BTreeSet<String>>>>,
}

impl Shared {
    /// `observer`'s connection saw `who` become available or unavailable.
    pub(crate) fn presence_changed(&self, observer: &str, who: &FullJid, available: bool) {
        let bare = canonical(who.to_bare().as_str());
        let observer = canonical(observer);
        let mut p = self.presence.lock();
        if available {
            let resources = p.entry(bare).or_default();
            resources.entry(who.clone()).or_default().insert(observer);
        } else if let Some(resources) = p.get_mut(&bare) {
            if let Some(seen_by) = resources.get_mut(who) {
                seen_by.remove(&observer);
                if seen_by.is_empty() {
                    resources.remove(who);
                }
            }
            if resources.is_empty() {
                p.remove(&bare);
            }
        }
    }

    /// `observer`'s connection ended: what it alone saw is no longer known.
    pub(crate) fn observer_gone(&self, observer: &str) {
        let observer = canonical(observer);
        let mut p = self.presence.lock();
        p.retain(|_, resources| {
            resources.retain(|_, seen_by| {
                seen_by.remove(&observer);
                !seen_by.is_empty()
            });
            !resources.is_empty()
        });
    }

    /// One available resource of user `to` (a bare JID), as this service's connections
    /// saw them.
    pub(crate) fn resource_of(&self, to: &str) -> Option<FullJid> {
        self.presence
            .lock()
            .get(&canonical(to))
            .and_then(|resources| resources.keys().next().cloned())
    }
}

struct User {
    commands: mpsc::UnboundedSender<Command>,
    /// The client the connection serves.
    endpoint: Weak<dyn Endpoint>,
}

struct Inner {
    options: XmppOptions,
    /// The TLS configuration (None: plain TCP), made once.
    tls: Option<Arc<ClientConfig>>,
    runtime: tokio::runtime::Handle,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    users: Mutex<HashMap<String, User>>,
    shared: Arc<Shared>,
    keys: AppKeys,
    registry: Arc<AppRegistry>,
    timers: Timers,
}

std::thread_local!(static ON_RUNTIME: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.get_mut().take() {
            let _ = stop.send(());
        }
        if let Some(h) = self.thread.get_mut().take() {
            if !ON_RUNTIME.with(|r| r.get()) {
                let _ = h.join();
            }
        }
    }
}

/// The XMPP service.
#[derive(Clone)]
pub struct XmppService {
    inner: Arc<Inner>,
}

/// Whether `msg` ends its session on both sides (the peer's address is then forgotten).
pub(crate) fn ends_session(msg: &Message) -> bool {
    matches!(
        msg,
        Message::Decline { .. }
            | Message::Cancel { .. }
            | Message::LaunchFailed { .. }
            | Message::PeerGone { .. }
            | Message::Timeout { .. }
            | Message::Refused { .. }
    )
}

fn canonical(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl XmppService {
    /// Starts the service's runtime thread. E_INVALIDARG for an empty `server_host`, a
    /// plain-TCP server that is not a loopback IP address, a `ca_file` that cannot be read or
    /// holds no certificate, an empty `resource` or a `domain` that is not a valid XMPP
    /// domain (or, with TLS, server name); E_FAIL when the registry file cannot be opened or
    /// the thread cannot start.
    pub fn new(options: XmppOptions) -> Result<Self> {
        if options.server_host.is_empty() || options.resource.is_empty() {
            return Err(E_INVALIDARG);
        }
        if options.tls == Tls::Plain
            && !options
                .server_host
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
        {
            return Err(E_INVALIDARG);
        }
        if let Some(d) = &options.domain {
            let jid = BareJid::new(d).map_err(|_| E_INVALIDARG)?;
            if jid.node().is_some() || d.is_empty() {
                return Err(E_INVALIDARG);
            }
        }
        let tls = tls_config(&options)?;
        let registry = match &options.registry_path {
            Some(p) => AppRegistry::open(p)?,
            None => AppRegistry::in_memory(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|_| E_FAIL)?;
        let runtime = rt.handle().clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("msgrpriv-xmpp".into())
            .spawn(move || {
                ON_RUNTIME.with(|r| r.set(true));
                rt.block_on(async {
                    let _ = stop_rx.await;
                });
                rt.shutdown_timeout(Duration::from_millis(100));
            })
            .map_err(|_| E_FAIL)?;
        Ok(XmppService {
            inner: Arc::new(Inner {
                options,
                tls,
                runtime,
                stop: Mutex::new(Some(stop_tx)),
                thread: Mutex::new(Some(thread)),
                users: Mutex::new(HashMap::new()),
                shared: Arc::new(Shared {
                    presence: Mutex::new(HashMap::new()),
                }),
                keys: AppKeys::default(),
                registry,
                timers: Timers::new(false),
            }),
        })
    }

    /// `name` completed with the `domain` option when it has no '@' (unchanged otherwise).
    fn completed<'a>(&self, name: &'a str) -> std::borrow::Cow<'a, str> {
        match &self.inner.options.domain {
            Some(d) if !name.contains('@') => format!("{name}@{d}").into(),
            _ => name.into(),
        }
    }

    /// The bare JID `name` signs in as: completed with the `domain` option, which it must
    /// then be at. E_INVALIDARG for a name that is no bare JID with a local part, or one at
    /// another domain than the option's.
    fn sign_in_jid(&self, name: &str) -> Result<BareJid> {
        let jid = BareJid::new(&self.completed(name)).map_err(|_| E_INVALIDARG)?;
        if jid.node().is_none() {
            return Err(E_INVALIDARG);
        }
        if let Some(d) = &self.inner.options.domain {
            if !jid.domain().as_str().eq_ignore_ascii_case(d) {
                return Err(E_INVALIDARG);
            }
        }
        Ok(jid)
    }

    /// Adds (or replaces) a Lock and Key application ID/key pair, kept by this service.
    /// E_INVALIDARG for an empty or over-long ID or key.
    pub fn add_app_key(&self, app_id: &str, key: &str) -> Result<()> {
        self.inner.keys.add(app_id, key)
    }
}

impl Service for XmppService {
    fn sign_in(&self, name: &str, endpoint: Weak<dyn Endpoint>) -> Result<Text> {
        if ON_RUNTIME.with(|r| r.get()) {
            return Err(E_ILLEGAL_METHOD_CALL);
        }
        let jid = self.sign_in_jid(name)?;
        let key = canonical(jid.as_str());
        let signed_in = |users: &HashMap<String, User>| {
            users.get(&key).is_some_and(|u| !u.commands.is_closed())
        };
        {
            let mut users = self.inner.users.lock();
            // The same client signing in while its lost connection is being restored takes
            // over: the attempts stop.
            if let Some(u) = users.get(&key) {
                if Weak::ptr_eq(&u.endpoint, &endpoint) {
                    let _ = u.commands.send(Command::Close);
                    users.remove(&key);
                }
            }
            if signed_in(&users) {
                return Err(MSGR_E_ALREADY_LOGGED_ON);
            }
        }
        let password = (self.inner.options.credentials)(jid.as_str())
            .ok_or(crate::error::SR_AUTHENTICATION_FAILED)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let setup = connection::Setup {
            jid: jid.clone(),
            password,
            options: self.inner.options.clone(),
            tls: self.inner.tls.clone(),
            endpoint: endpoint.clone(),
            shared: Arc::clone(&self.inner.shared),
            ready: ready_tx,
        };
        self.inner.runtime.spawn(connection::run(setup, rx));
        // Bounded by the connection's own connect timeout; the margin covers the hop.
        let wait = self.inner.options.connect_timeout + Duration::from_secs(2);
        match ready_rx.recv_timeout(wait) {
            Ok(Ok(())) => {}
            Ok(Err(hr)) => return Err(hr),
            Err(_) => {
                let _ = tx.send(Command::Close);
                return Err(crate::error::MSGR_E_DISCONNECTED);
            }
        }
        let mut users = self.inner.users.lock();
        if signed_in(&users) {
            let _ = tx.send(Command::Close);
            return Err(MSGR_E_ALREADY_LOGGED_ON);
        }
        users.insert(
            key,
            User {
                commands: tx,
                endpoint,
            },
        );
        Text::new(jid.as_str())
    }

    fn sign_out(&self, name: &Text) {
        let removed = self.inner.users.lock().remove(&canonical(name.as_str()));
        if let Some(u) = removed {
            let _ = u.commands.send(Command::Close);
        }
    }

    fn stop_reconnecting(&self, name: &Text, endpoint: &Weak<dyn Endpoint>) {
        let mut users = self.inner.users.lock();
        let key = canonical(name.as_str());
        if users
            .get(&key)
            .is_some_and(|u| Weak::ptr_eq(&u.endpoint, endpoint))
        {
            if let Some(u) = users.remove(&key) {
                let _ = u.commands.send(Command::Close);
            }
        }
    }

    fn online(&self, name: &str) -> Option<Text> {
        let bare = BareJid::new(&self.completed(name)).ok()?;
        let p = self.inner.shared.presence.lock();
        p.get(&canonical(bare.as_str()))
            .filter(|set| !set.is_empty())
            .and_then(|_| Text::new(bare.as_str()).ok())
    }

    fn same_user(&self, a: &str, b: &str) -> bool {
        self.completed(a).eq_ignore_ascii_case(&self.completed(b))
    }

    fn lock_enforced(&self) -> bool {
        self.inner.keys.enforced()
    }

    fn issue_challenge(&self, done: ChallengeDone) {
        done(Text::new(&lock::new_challenge()));
    }

    fn check_response(&self, challenge: &str, app_id: &str, response: &str, done: CheckDone) {
        done(self.inner.keys.check(challenge, app_id, response));
    }

    fn send(&self, from: &Text, to: &Text, msg: Message, done: SendDone) {
        let step = match msg {
            Message::Invite { .. } => connection::Step::Invite,
            _ if ends_session(&msg) => connection::Step::Ends,
            _ => connection::Step::Continues,
        };
        let command = Command::Send {
            to: self.completed(to.as_str()).into_owned(),
            session_id: msg.session_id().as_str().to_owned(),
            step,
            jingle: Box::new(protocol::to_jingle(&msg)),
            done,
        };
        let users = self.inner.users.lock();
        let refused = match users.get(&canonical(from.as_str())) {
            Some(u) => u.commands.send(command).err().map(|e| e.0),
            None => Some(command),
        };
        drop(users);
        if let Some(Command::Send { done, .. }) = refused {
            done.complete(Err(Undeliverable));
        }
    }

    fn timers(&self) -> &Timers {
        &self.inner.timers
    }

    fn invitation_timeout(&self) -> Duration {
        self.inner.options.invitation_timeout
    }

    fn registry(&self) -> Arc<AppRegistry> {
        Arc::clone(&self.inner.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared {
            presence: Mutex::new(HashMap::new()),
        }
    }

    fn full(s: &str) -> FullJid {
        FullJid::new(s).unwrap()
    }

    #[test]
    fn presence_goes_with_the_connection_that_saw_it() {
        let s = shared();
        let bob = full("bob@x/msgrpriv");
        s.presence_changed("alice@x", &bob, true);
        s.presence_changed("carol@x", &bob, true);
        assert_eq!(s.resource_of("BOB@x"), Some(bob.clone()));
        s.observer_gone("alice@x");
        assert_eq!(s.resource_of("bob@x"), Some(bob.clone()));
        s.presence_changed("carol@x", &bob, false);
        assert_eq!(s.resource_of("bob@x"), None);
        assert!(s.presence.lock().is_empty());
    }
}
