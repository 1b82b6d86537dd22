//! One client's connection to the XMPP server: a task on the service's runtime that logs in
//! once (no retry loop: a refused login is final) over the TLS the options ask for, binds its
//! resource, announces its presence, then answers the server and carries the client's steps
//! until it is closed or the connection is lost.

use super::protocol::{self, Incoming};
use super::{Shared, Tls, XmppOptions};
use crate::error::{
    Hr, E_ACCESSDENIED, E_NOT_ENOUGH_QUOTA, MSGR_E_ALREADY_LOGGED_ON, MSGR_E_DISCONNECTED,
    SR_AUTHENTICATION_FAILED, SR_NETWORK_CONFIG_FAILURE,
};
use crate::service::{Delivery, Endpoint, Message, SendDone, Undeliverable};
use crate::types::Text;
use futures_util::{SinkExt, StreamExt};
use sasl::common::{ChannelBinding, Credentials};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, BufStream, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;
use tokio_xmpp::xmlstream::{
    initiate_stream, FallibleStreamElement, ReadError, StreamHeader, Timeouts, XmppStreamElement,
};
use tokio_xmpp::Stanza;
use xmpp_parsers::bind::{BindQuery, BindResponse};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::jingle::{Action, Jingle};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::ping::Ping;
use xmpp_parsers::presence::{self, Presence};
use xmpp_parsers::roster::{Roster, Subscription};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use xmpp_parsers::starttls;
use xmpp_parsers::stream_error::DefinedCondition as StreamCondition;

/// What the client asks of its connection.
pub(crate) enum Command {
    /// Sends a step of session `session_id` to user `to` (a bare JID); `done` learns
    /// whether the peer acknowledged it.
    Send {
        to: String,
        session_id: String,
        step: Step,
        jingle: Box<Jingle>,
        done: SendDone,
    },
    /// Signs out: closes the stream.
    Close,
}

/// What a step does to its session's binding to the peer's full JID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The invitation: goes to one available resource of the invitee, which the session is
    /// bound to from then on.
    Invite,
    /// A step in the session's course: goes to the bound resource.
    Continues,
    /// A step that ends the session: goes to the bound resource and unbinds it.
    Ends,
}

/// What a connection starts from.
pub(crate) struct Setup {
    pub(crate) jid: BareJid,
    /// The first sign-in's password (a reconnection asks the credentials again); wiped once
    /// used.
    pub(crate) password: String,
    pub(crate) options: XmppOptions,
    /// The TLS configuration; None for plain TCP.
    pub(crate) tls: Option<Arc<ClientConfig>>,
    pub(crate) endpoint: Weak<dyn Endpoint>,
    pub(crate) shared: Arc<Shared>,
    /// Told once whether the login succeeded.
    pub(crate) ready: std::sync::mpsc::SyncSender<Result<(), Hr>>,
}

/// The bytes under the XMPP stream: plain TCP, or TLS over it.
enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

type Stream = tokio_xmpp::xmlstream::XmppStream<BufStream<Transport>>;

fn stanza(s: impl Into<Stanza>) -> XmppStreamElement {
    XmppStreamElement::Stanza(s.into())
}

fn header(domain: &str) -> StreamHeader<'static> {
    StreamHeader {
        to: Some(Cow::Owned(domain.to_owned())),
        from: None,
        id: None,
    }
}

/// The TLS handshake over `tcp` for `domain` (the name the certificate must carry).
/// SR_NETWORK_CONFIG_FAILURE when TLS itself fails (the certificate does not verify, the
/// server sends an alert or offers nothing in common); MSGR_E_DISCONNECTED when the
/// connection does.
async fn handshake(
    config: &Arc<ClientConfig>,
    domain: &str,
    tcp: TcpStream,
) -> Result<Transport, Hr> {
    let name = ServerName::try_from(domain.to_owned()).map_err(|_| SR_NETWORK_CONFIG_FAILURE)?;
    let tls = TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await
        .map_err(|e| {
            // tokio-rustls hands TLS errors over as the source of an InvalidData io::Error.
            let tls_error = e
                .get_ref()
                .is_some_and(|inner| inner.is::<tokio_rustls::rustls::Error>());
            if tls_error {
                SR_NETWORK_CONFIG_FAILURE
            } else {
                MSGR_E_DISCONNECTED
            }
        })?;
    Ok(Transport::Tls(Box::new(tls)))
}

/// STARTTLS on a plain stream: asks, waits for `<proceed/>`, and hands the TCP connection
/// back for the handshake. SR_NETWORK_CONFIG_FAILURE when the server answers `<failure/>`.
/// Whatever came in the clear after `<proceed/>` goes with the discarded buffer: nothing
/// unencrypted reaches the TLS stream.
async fn starttls(mut stream: Stream) -> Result<TcpStream, Hr> {
    let request = XmppStreamElement::Starttls(starttls::Nonza::Request(starttls::Request));
    stream
        .send(&request)
        .await
        .map_err(|_| MSGR_E_DISCONNECTED)?;
    loop {
        match stream.next().await {
            Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Starttls(nonza)))) => {
                match nonza {
                    starttls::Nonza::Proceed(_) => break,
                    _ => return Err(SR_NETWORK_CONFIG_FAILURE),
                }
            }
            Some(Ok(_))
            | Some(Err(ReadError::ParseError(_)))
            | Some(Err(ReadError::SoftTimeout)) => {}
            _ => return Err(MSGR_E_DISCONNECTED),
        }
    }
    match stream.into_inner().into_inner() {
        Transport::Plain(tcp) => Ok(tcp),
        Transport::Tls(_) => Err(SR_NETWORK_CONFIG_FAILURE),
    }
}

/// Logs in once: TCP to the server (the host name resolved here) with Nagle's algorithm off
/// (every step is a small write waiting for an answer; with Nagle each would wait for the
/// delayed ACK of the last), TLS as the options say (direct, or STARTTLS, which the server
/// must offer), SASL, resource binding, presence.
/// A connection signed in: its stream and the user's contacts (the roster's bare JIDs,
/// lowercase; fetched only when the options refuse strangers' invitations).
struct LoggedIn {
    stream: Stream,
    contacts: HashSet<String>,
}

async fn login(setup: &Setup, password: &str) -> Result<LoggedIn, Hr> {
    let down = |_| MSGR_E_DISCONNECTED;
    let o = &setup.options;
    let tcp = TcpStream::connect((o.server_host.as_str(), o.server_port))
        .await
        .map_err(down)?;
    tcp.set_nodelay(true).map_err(down)?;
    // The domain option, when set, is the sign-in name's domain (XmppService::sign_in).
    let domain = setup.jid.domain().as_str();
    let ns = xmpp_parsers::ns::JABBER_CLIENT;
    let tls = match (o.tls, &setup.tls) {
        (Tls::Plain, _) => None,
        (_, Some(config)) => Some(config),
        (_, None) => return Err(SR_NETWORK_CONFIG_FAILURE),
    };
    let transport = match (o.tls, tls) {
        (Tls::Direct, Some(config)) => handshake(config, domain, tcp).await?,
        _ => Transport::Plain(tcp),
    };
    let timeouts = Timeouts {
        read_timeout: o.keepalive,
        response_timeout: o.request_timeout,
    };
    let pending = initiate_stream(BufStream::new(transport), ns, header(domain), timeouts)
        .await
        .map_err(down)?;
    let (mut features, mut stream) = pending
        .recv_features::<FallibleStreamElement>()
        .await
        .map_err(|_| MSGR_E_DISCONNECTED)?;
    if let (Tls::StartTls, Some(config)) = (o.tls, tls) {
        if !features.can_starttls() {
            return Err(SR_NETWORK_CONFIG_FAILURE);
        }
        let tcp = starttls(stream).await?;
        let transport = handshake(config, domain, tcp).await?;
        (features, stream) =
            initiate_stream(BufStream::new(transport), ns, header(domain), timeouts)
                .await
                .map_err(down)?
                .recv_features::<FallibleStreamElement>()
                .await
                .map_err(|_| MSGR_E_DISCONNECTED)?;
    }
    let creds = Credentials::default()
        .with_username(setup.jid.node().map_or("", |n| n.as_str()))
        .with_password(password)
        .with_channel_binding(ChannelBinding::None);
    let authed = tokio_xmpp::client_login(stream, features.sasl_mechanisms, creds)
        .await
        .map_err(|e| match e {
            tokio_xmpp::Error::Auth(_) => SR_AUTHENTICATION_FAILED,
            _ => MSGR_E_DISCONNECTED,
        })?;
    let (_, mut stream) = authed
        .send_header(header(domain))
        .await
        .map_err(down)?
        .recv_features::<FallibleStreamElement>()
        .await
        .map_err(|_| MSGR_E_DISCONNECTED)?;
    let bind = Iq::from_set("bind", BindQuery::new(Some(setup.options.resource.clone())));
    stream
        .send(&stanza(bind))
        .await
        .map_err(|_| MSGR_E_DISCONNECTED)?;
    let full = loop {
        match stream.next().await {
            Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Stanza(Stanza::Iq(iq))))) => {
                match iq {
                    Iq::Result { id, payload, .. } if id == "bind" => {
                        let resp = payload
                            .and_then(|p| BindResponse::try_from(p).ok())
                            .ok_or(SR_AUTHENTICATION_FAILED)?;
                        break FullJid::from(resp);
                    }
                    // A resource conflict, or binding refused.
                    Iq::Error { id, .. } if id == "bind" => return Err(SR_AUTHENTICATION_FAILED),
                    _ => {}
                }
            }
            Some(Ok(_))
            | Some(Err(ReadError::ParseError(_)))
            | Some(Err(ReadError::SoftTimeout)) => {}
            _ => return Err(MSGR_E_DISCONNECTED),
        }
    };
    let _ = full;
    let mut contacts = HashSet::new();
    if !setup.options.allow_strangers {
        let get = Iq::from_get(
            "roster",
            Roster {
                ver: None,
                items: Vec::new(),
            },
        );
        stream
            .send(&stanza(get))
            .await
            .map_err(|_| MSGR_E_DISCONNECTED)?;
        loop {
            match stream.next().await {
                Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Stanza(Stanza::Iq(iq))))) => {
                    match iq {
                        Iq::Result { id, payload, .. } if id == "roster" => {
                            if let Some(roster) = payload.and_then(|p| Roster::try_from(p).ok()) {
                                update_contacts(&mut contacts, roster);
                            }
                            break;
                        }
                        // A server without rosters: no contacts.
                        Iq::Error { id, .. } if id == "roster" => break,
                        _ => {}
                    }
                }
                Some(Ok(_))
                | Some(Err(ReadError::ParseError(_)))
                | Some(Err(ReadError::SoftTimeout)) => {}
                _ => return Err(MSGR_E_DISCONNECTED),
            }
        }
    }
    stream
        .send(&stanza(Presence::available()))
        .await
        .map_err(|_| MSGR_E_DISCONNECTED)?;
    Ok(LoggedIn { stream, contacts })
}

/// Applies a roster (the whole one, or a push) to `contacts`: every item is a contact but
/// one the push removes.
fn update_contacts(contacts: &mut HashSet<String>, roster: Roster) {
    for item in roster.items {
        let jid = canonical_jid(item.jid.as_str());
        if item.subscription == Subscription::Remove {
            contacts.remove(&jid);
        } else {
            contacts.insert(jid);
        }
    }
}

fn canonical_jid(jid: &str) -> String {
    jid.to_ascii_lowercase()
}

/// How a connection's stream ended.
enum End {
    /// The client signed out (or is gone): the stream was closed by this side.
    Closed,
    /// The stream broke: the server went away, an I/O error, a stream error, no answer.
    Lost,
    /// The server replaced this connection with another sign-in of the same resource.
    Replaced,
}

/// The first pause before signing in again after a lost connection; each failed attempt
/// doubles it, up to the `reconnect_max` option.
const RECONNECT_FIRST: Duration = Duration::from_secs(1);

/// Logs in with the password `credentials` give, within the connect timeout; the password
/// is wiped after use.
async fn login_with(setup: &Setup, mut password: String) -> Result<LoggedIn, Hr> {
    let attempt =
        tokio::time::timeout(setup.options.connect_timeout, login(setup, &password)).await;
    let mut bytes = std::mem::take(&mut password).into_bytes();
    super::wipe(&mut bytes);
    attempt.unwrap_or(Err(MSGR_E_DISCONNECTED))
}

/// The connection's task: the sign-in, then the stream's service; after a lost connection,
/// the client is told, and signed in again with growing pauses (when the options ask for it)
/// until it gets in, a login is refused, or the client no longer wants it.
pub(crate) async fn run(mut setup: Setup, mut commands: mpsc::UnboundedReceiver<Command>) {
    let password = std::mem::take(&mut setup.password);
    let (mut stream, contacts) = match login_with(&setup, password).await {
        Ok(l) => (l.stream, l.contacts),
        Err(hr) => {
            let _ = setup.ready.send(Err(hr));
            return;
        }
    };
    let _ = setup.ready.send(Ok(()));
    let mut conn = Connection {
        setup,
        pending: HashMap::new(),
        next_id: 0,
        peers: HashMap::new(),
        prune_peers_at: PRUNE_PEERS_MIN,
        contacts,
        invitations: HashMap::new(),
        prune_invitations_at: PRUNE_PEERS_MIN,
    };
    loop {
        let end = conn.serve(&mut stream, &mut commands).await;
        conn.setup.shared.observer_gone(conn.setup.jid.as_str());
        conn.peers.clear();
        for (_, p) in conn.pending.drain() {
            p.done.complete(Err(Undeliverable));
        }
        let hr = match end {
            End::Closed => {
                close(&mut stream).await;
                return;
            }
            End::Lost => MSGR_E_DISCONNECTED,
            End::Replaced => MSGR_E_ALREADY_LOGGED_ON,
        };
        let retrying = hr == MSGR_E_DISCONNECTED && !conn.setup.options.reconnect_max.is_zero();
        let Some(ep) = conn.setup.endpoint.upgrade() else {
            return;
        };
        ep.connection_lost(hr, retrying);
        drop(ep);
        if !retrying {
            return;
        }
        match conn.reconnect(&mut commands).await {
            Some(again) => stream = again,
            None => return,
        }
    }
}

/// Signs out on `stream`: unavailable presence, then the stream's end.
async fn close(stream: &mut Stream) {
    let _ = stream
        .send(&stanza(Presence::new(presence::Type::Unavailable)))
        .await;
    let _ = stream.shutdown().await;
}

/// A pause of about `d`: between three quarters and five quarters of it, so that clients
/// that lost their connections together do not all come back at once.
fn jittered(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = match getrandom::fill(&mut b) {
        Ok(()) => u16::from_le_bytes(b),
        Err(_) => u16::MAX / 2,
    };
    d.mul_f64(0.75 + 0.5 * f64::from(r) / f64::from(u16::MAX))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A request waiting for its answer.
struct Pending {
    done: SendDone,
    /// An invitation: its SessionID and its invitee, who may refuse it by policy.
    invite: Option<(String, FullJid)>,
    deadline: Instant,
    /// A session-terminate: a peer that answers it with `<unknown-session/>` has ended
    /// the session too, so the end counts as delivered.
    terminates: bool,
}

struct Connection {
    setup: Setup,
    /// Requests waiting for their answer.
    pending: HashMap<String, Pending>,
    next_id: u64,
    /// The peer's full JID of each session of this client, by SessionID: the resource the
    /// invitation went to or came from. Every later step goes there, and only that resource
    /// speaks for the session.
    peers: HashMap<String, FullJid>,
    /// `peers` is pruned of sessions the client no longer has (ended by a timeout, which
    /// sends nothing) when it reaches this length.
    prune_peers_at: usize,
    /// The user's contacts (bare JIDs, lowercase), kept up to date by the server's roster
    /// pushes: only they may invite, unless the options allow strangers.
    contacts: HashSet<String>,
    /// When each sender's invitations of the last minute arrived (bare JIDs, lowercase).
    invitations: HashMap<String, VecDeque<Instant>>,
    /// `invitations` is pruned of senders quiet for a minute when it reaches this length.
    prune_invitations_at: usize,
}

/// The window of the invitation rate limit.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// The smallest length at which [`Connection::peers`] is pruned.
const PRUNE_PEERS_MIN: usize = 64;

/// The namespace of Jingle's own error conditions (XEP-0166).
const JINGLE_ERRORS: &str = "urn:xmpp:jingle:errors:1";

/// Why a request is refused: the IQ error answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Not a request this client takes (not Jingle): service-unavailable.
    NotHandled,
    /// A request that does not parse or has no full JID sender: bad-request.
    BadRequest,
    /// item-not-found with `<unknown-session/>`.
    UnknownSession,
    /// unexpected-request with `<out-of-order/>`.
    OutOfOrder,
    /// feature-not-implemented with `<unsupported-info/>`.
    UnsupportedInfo,
    /// An invitation from a user who is not a contact: forbidden.
    Stranger,
    /// One invitation too many from that sender in the last minute: policy-violation.
    TooMany,
}

fn error_reply(id: String, to: Option<Jid>, refusal: Refusal) -> Iq {
    let (kind, condition, jingle) = match refusal {
        Refusal::NotHandled => (
            ErrorType::Cancel,
            DefinedCondition::ServiceUnavailable,
            None,
        ),
        Refusal::BadRequest => (ErrorType::Modify, DefinedCondition::BadRequest, None),
        Refusal::UnknownSession => (
            ErrorType::Cancel,
            DefinedCondition::ItemNotFound,
            Some("unknown-session"),
        ),
        Refusal::OutOfOrder => (
            ErrorType::Wait,
            DefinedCondition::UnexpectedRequest,
            Some("out-of-order"),
        ),
        Refusal::UnsupportedInfo => (
            ErrorType::Modify,
            DefinedCondition::FeatureNotImplemented,
            Some("unsupported-info"),
        ),
        Refusal::Stranger => (ErrorType::Auth, DefinedCondition::Forbidden, None),
        Refusal::TooMany => (ErrorType::Wait, DefinedCondition::PolicyViolation, None),
    };
    let mut e = StanzaError::new(kind, condition, "en", "");
    e.other = jingle.map(|name| Element::builder(name, JINGLE_ERRORS).build());
    let iq = Iq::from_error(id, e);
    match to {
        Some(to) => iq.with_to(to),
        None => iq,
    }
}

impl Connection {
    /// Serves the stream until it ends: answers the server, carries the client's steps,
    /// expires requests whose answer is overdue, and pings the server when it has been quiet
    /// for the `keepalive` option (tokio-xmpp's soft timeout; no answer within the request
    /// timeout then ends the stream).
    async fn serve(
        &mut self,
        stream: &mut Stream,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> End {
        loop {
            let deadline = self.pending.values().map(|p| p.deadline).min();
            tokio::select! {
                item = stream.next() => match item {
                    Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Stanza(st)))) => {
                        if let Some(reply) = self.incoming(st) {
                            if stream.send(&stanza(reply)).await.is_err() {
                                return End::Lost;
                            }
                        }
                    }
                    Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::StreamError(e)))) => {
                        return if e.0.condition == StreamCondition::Conflict {
                            End::Replaced
                        } else {
                            End::Lost
                        };
                    }
                    // A stanza that does not parse: nothing to answer it from.
                    Some(Ok(_)) | Some(Err(ReadError::ParseError(_))) => {}
                    Some(Err(ReadError::SoftTimeout)) => {
                        let ping = self.request(Iq::from_get("", Ping), None, SendDone::nobody(), false, None);
                        if stream.send(&stanza(ping)).await.is_err() {
                            return End::Lost;
                        }
                    }
                    Some(Err(_)) | None => return End::Lost,
                },
                cmd = commands.recv() => match cmd {
                    Some(Command::Send { to, session_id, step, jingle, done }) => {
                        let invite = (step == Step::Invite).then(|| session_id.clone());
                        let Some(peer) = self.route(&to, session_id, step) else {
                            done.complete(Err(Undeliverable));
                            continue;
                        };
                        let terminates = jingle.action == Action::SessionTerminate;
                        let invite = invite.map(|sid| (sid, peer.clone()));
                        let to = Some(peer.into());
                        let iq = self.request(Iq::from_set("", *jingle), to, done, terminates, invite);
                        if stream.send(&stanza(iq)).await.is_err() {
                            return End::Lost;
                        }
                    }
                    Some(Command::Close) | None => return End::Closed,
                },
                _ = sleep_until(deadline), if deadline.is_some() => self.expire(),
            }
        }
    }

    /// Signs in again after a lost connection, pausing before each attempt (doubling from
    /// [`RECONNECT_FIRST`] to the `reconnect_max` option): the new stream once the client
    /// took it; None when the client stopped it (sign-out, sign-in, shutdown, destruction)
    /// or a login was refused (final: the client is told).
    async fn reconnect(
        &mut self,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Option<Stream> {
        let mut pause = RECONNECT_FIRST.min(self.setup.options.reconnect_max);
        loop {
            let wake = Instant::now() + jittered(pause);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(wake) => break,
                    cmd = commands.recv() => match cmd {
                        Some(Command::Send { done, .. }) => done.complete(Err(Undeliverable)),
                        Some(Command::Close) | None => return None,
                    },
                }
            }
            let ep = self.setup.endpoint.upgrade()?;
            let jid = self.setup.jid.as_str();
            let Some(password) = (self.setup.options.credentials)(jid) else {
                ep.reconnect_failed(SR_AUTHENTICATION_FAILED);
                return None;
            };
            match login_with(&self.setup, password).await {
                Ok(mut l) => {
                    if ep.reconnected() {
                        self.contacts = l.contacts;
                        return Some(l.stream);
                    }
                    close(&mut l.stream).await;
                    return None;
                }
                Err(hr) if hr == SR_AUTHENTICATION_FAILED || hr == SR_NETWORK_CONFIG_FAILURE => {
                    ep.reconnect_failed(hr);
                    return None;
                }
                Err(_) => {}
            }
            pause = (pause * 2).min(self.setup.options.reconnect_max);
        }
    }

    /// Where a step of `session_id` to user `to` goes (None: nowhere, the step is not
    /// delivered), binding or unbinding the session as `step` says.
    fn route(&mut self, to: &str, session_id: String, step: Step) -> Option<FullJid> {
        match step {
            Step::Invite => {
                let peer = self.setup.shared.resource_of(to)?;
                self.bind(session_id, peer.clone());
                Some(peer)
            }
            Step::Continues => self.peers.get(&session_id).cloned(),
            Step::Ends => self.peers.remove(&session_id),
        }
    }

    /// Binds `session_id` to `peer`; prunes the bindings of sessions the client no longer
    /// has when there are many.
    fn bind(&mut self, session_id: String, peer: FullJid) {
        if self.peers.len() >= self.prune_peers_at {
            if let Some(ep) = self.setup.endpoint.upgrade() {
                self.peers.retain(|sid, jid| {
                    let (Ok(from), Ok(sid)) = (Text::new(jid.to_bare().as_str()), Text::new(sid))
                    else {
                        return false;
                    };
                    ep.has_session(&from, &sid)
                });
            }
            self.prune_peers_at = (2 * self.peers.len()).max(PRUNE_PEERS_MIN);
        }
        self.peers.insert(session_id, peer);
    }

    /// `who` became unavailable: every session bound to it ends here as if it had sent
    /// `<gone/>` (the peer's process died, or its connection did).
    fn peer_unavailable(&mut self, who: &FullJid) {
        let gone: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, jid)| *jid == who)
            .map(|(sid, _)| sid.clone())
            .collect();
        if gone.is_empty() {
            return;
        }
        let Some(ep) = self.setup.endpoint.upgrade() else {
            return;
        };
        let Ok(from) = Text::new(who.to_bare().as_str()) else {
            return;
        };
        for sid in gone {
            self.peers.remove(&sid);
            if let Ok(session_id) = Text::new(&sid) {
                let _ = ep.deliver(&from, Message::PeerGone { session_id });
            }
        }
    }

    /// The invitation `session_id` to `invitee` was refused by its service's policy.
    fn refused(&self, invitee: &FullJid, session_id: String, hr: Hr) {
        let (Some(ep), Ok(from), Ok(session_id)) = (
            self.setup.endpoint.upgrade(),
            Text::new(invitee.to_bare().as_str()),
            Text::new(&session_id),
        ) else {
            return;
        };
        let _ = ep.deliver(&from, Message::Refused { session_id, hr });
    }

    /// Whether this client takes an invitation from `sender` (a bare JID), as the options'
    /// policy says: from contacts only (unless strangers are allowed), and at most
    /// `invitations_per_minute` from one sender in a minute.
    fn admit(&mut self, sender: &str) -> Result<(), Refusal> {
        let key = canonical_jid(sender);
        let options = &self.setup.options;
        if !options.allow_strangers && !self.contacts.contains(&key) {
            return Err(Refusal::Stranger);
        }
        let limit = options.invitations_per_minute as usize;
        if limit == 0 {
            return Ok(());
        }
        let now = Instant::now();
        if self.invitations.len() >= self.prune_invitations_at {
            self.invitations
                .retain(|_, times| times.back().is_some_and(|t| now - *t < RATE_WINDOW));
            self.prune_invitations_at = (2 * self.invitations.len()).max(PRUNE_PEERS_MIN);
        }
        let times = self.invitations.entry(key).or_default();
        while times.front().is_some_and(|t| now - *t >= RATE_WINDOW) {
            times.pop_front();
        }
        if times.len() >= limit {
            return Err(Refusal::TooMany);
        }
        times.push_back(now);
        Ok(())
    }

    /// Gives `iq` a fresh id and an address, and records its completion.
    fn request(
        &mut self,
        iq: Iq,
        to: Option<Jid>,
        done: SendDone,
        terminates: bool,
        invite: Option<(String, FullJid)>,
    ) -> Iq {
        self.next_id += 1;
        let id = format!("m{}", self.next_id);
        let deadline = Instant::now() + self.setup.options.request_timeout;
        let pending = Pending {
            done,
            invite,
            deadline,
            terminates,
        };
        self.pending.insert(id.clone(), pending);
        let iq = iq.with_id(id);
        match to {
            Some(to) => iq.with_to(to),
            None => iq,
        }
    }

    /// Requests whose answer is overdue count as not delivered.
    fn expire(&mut self) {
        let now = Instant::now();
        let overdue: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in overdue {
            if let Some(p) = self.pending.remove(&id) {
                p.done.complete(Err(Undeliverable));
            }
        }
    }

    /// Handles one stanza from the server; returns the answer to send, if any.
    fn incoming(&mut self, st: Stanza) -> Option<Iq> {
        match st {
            Stanza::Presence(p) => {
                if let Some(Ok(from)) = p.from.clone().map(Jid::try_into_full) {
                    let me = self.setup.jid.as_str();
                    match p.type_ {
                        presence::Type::None => self.setup.shared.presence_changed(me, &from, true),
                        presence::Type::Unavailable | presence::Type::Error => {
                            self.setup.shared.presence_changed(me, &from, false);
                            self.peer_unavailable(&from);
                        }
                        _ => {}
                    }
                }
                None
            }
            Stanza::Iq(Iq::Result { id, .. }) => {
                if let Some(p) = self.pending.remove(&id) {
                    p.done.complete(Ok(()));
                }
                None
            }
            Stanza::Iq(Iq::Error { id, error, .. }) => {
                if let Some(p) = self.pending.remove(&id) {
                    let ended_there = error
                        .other
                        .as_ref()
                        .is_some_and(|e| e.is("unknown-session", JINGLE_ERRORS));
                    let refused = match error.defined_condition {
                        DefinedCondition::Forbidden => Some(E_ACCESSDENIED),
                        DefinedCondition::PolicyViolation => Some(E_NOT_ENOUGH_QUOTA),
                        _ => None,
                    };
                    match (p.invite, refused) {
                        (Some((sid, invitee)), Some(hr)) => {
                            // Delivered, and refused by the invitee's policy: the session
                            // ends declined.
                            p.done.complete(Ok(()));
                            self.peers.remove(&sid);
                            self.refused(&invitee, sid, hr);
                        }
                        _ => {
                            let r = if p.terminates && ended_there {
                                Ok(())
                            } else {
                                Err(Undeliverable)
                            };
                            p.done.complete(r);
                        }
                    }
                }
                None
            }
            Stanza::Iq(Iq::Get {
                from, id, payload, ..
            }) => Some(if payload.is("ping", xmpp_parsers::ns::PING) {
                Iq::Result {
                    from: None,
                    to: from,
                    id,
                    payload: None,
                }
            } else {
                error_reply(id, from, Refusal::NotHandled)
            }),
            Stanza::Iq(Iq::Set {
                from, id, payload, ..
            }) if payload.is("query", xmpp_parsers::ns::ROSTER) => {
                // A roster push: only from the server (no sender, or the user's own bare
                // JID); anyone else's is refused (RFC 6121 2.1.6).
                let own = from.as_ref().map_or(true, |f| {
                    f.as_str().eq_ignore_ascii_case(self.setup.jid.as_str())
                });
                match Roster::try_from(payload) {
                    Ok(roster) if own => {
                        update_contacts(&mut self.contacts, roster);
                        Some(Iq::Result {
                            from: None,
                            to: from,
                            id,
                            payload: None,
                        })
                    }
                    Ok(_) => Some(error_reply(id, from, Refusal::NotHandled)),
                    Err(_) => Some(error_reply(id, from, Refusal::BadRequest)),
                }
            }
            Stanza::Iq(Iq::Set {
                from, id, payload, ..
            }) => Some(self.jingle(from, id, payload)),
            Stanza::Message(_) => None,
        }
    }

    /// An IQ set: a step of a session from a peer. Answered (acknowledged or refused, as
    /// XEP-0166 says) once the client has taken it: the answer leaves before anything the
    /// step makes the client send.
    fn jingle(&mut self, from: Option<Jid>, id: String, payload: Element) -> Iq {
        match self.take_jingle(from.clone(), payload) {
            Ok(peer) => Iq::empty_result(Jid::from(peer), id),
            Err(refusal) => error_reply(id, from, refusal),
        }
    }

    fn take_jingle(&mut self, from: Option<Jid>, payload: Element) -> Result<FullJid, Refusal> {
        if !payload.is("jingle", xmpp_parsers::ns::JINGLE) {
            return Err(Refusal::NotHandled);
        }
        let peer = from
            .and_then(|j| j.try_into_full().ok())
            .ok_or(Refusal::BadRequest)?;
        let incoming = protocol::message_from_payload(payload).map_err(|_| Refusal::BadRequest)?;
        let sender = Text::new(peer.to_bare().as_str()).map_err(|_| Refusal::BadRequest)?;
        let ep = self
            .setup
            .endpoint
            .upgrade()
            .ok_or(Refusal::UnknownSession)?;
        let sid = incoming.session_id().clone();
        // Only the resource the session is bound to speaks for it: anyone else (a third
        // party that learned the SessionID, another resource of the same user) learns
        // nothing, and none of its steps is taken.
        let bound = self.peers.get(sid.as_str()) == Some(&peer);
        let known = |ep: &Arc<dyn Endpoint>| bound && ep.has_session(&sender, &sid);
        let msg = match incoming {
            Incoming::Ping(_) if known(&ep) => return Ok(peer),
            Incoming::UnsupportedInfo(_) if known(&ep) => return Err(Refusal::UnsupportedInfo),
            Incoming::Ping(_) | Incoming::UnsupportedInfo(_) => {
                return Err(Refusal::UnknownSession)
            }
            Incoming::Step(msg) => msg,
        };
        let invite = matches!(msg, Message::Invite { .. });
        if invite {
            if self.peers.contains_key(sid.as_str()) {
                return Err(Refusal::OutOfOrder);
            }
            self.admit(sender.as_str())?;
            // Before the client sees the invitation: what it sends in answer goes to this
            // resource.
            self.bind(sid.as_str().to_owned(), peer.clone());
        } else if !known(&ep) {
            return Err(Refusal::UnknownSession);
        }
        let ends = super::ends_session(&msg);
        match ep.deliver(&sender, msg) {
            Delivery::Taken => {
                if ends {
                    self.peers.remove(sid.as_str());
                }
                Ok(peer)
            }
            refused => {
                if invite {
                    self.peers.remove(sid.as_str());
                }
                Err(match refused {
                    Delivery::OutOfOrder => Refusal::OutOfOrder,
                    _ => Refusal::UnknownSession,
                })
            }
        }
    }
}
