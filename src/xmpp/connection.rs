//! One client's connection to the XMPP server: a task on the service's runtime that logs in
//! once (no retry loop: a refused login is final) over the TLS the options ask for, binds its
//! resource, announces its presence, then answers the server and carries the client's steps
//! until it is closed or the connection is lost.

use super::protocol;
use super::{Shared, Tls, XmppOptions};
use crate::error::{
    Hr, MSGR_E_DISCONNECTED, SR_AUTHENTICATION_FAILED, SR_CONNECTION_FAILURE,
    SR_NETWORK_CONFIG_FAILURE,
};
use crate::service::{Endpoint, SendDone, Undeliverable};
use crate::types::Text;
use futures_util::{SinkExt, StreamExt};
use sasl::common::{ChannelBinding, Credentials};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
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
use xmpp_parsers::jingle::Jingle;
use xmpp_parsers::minidom::Element;
use xmpp_parsers::ping::Ping;
use xmpp_parsers::presence::{self, Presence};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use xmpp_parsers::starttls;

/// What the client asks of its connection.
pub(crate) enum Command {
    /// Sends a Jingle IQ to `to`; `done` learns whether the peer acknowledged it.
    Send {
        to: FullJid,
        jingle: Box<Jingle>,
        done: SendDone,
    },
    /// Signs out: closes the stream.
    Close,
}

/// What a connection starts from.
pub(crate) struct Setup {
    pub(crate) jid: BareJid,
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
async fn login(setup: &Setup) -> Result<(Stream, FullJid), Hr> {
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
    let pending = initiate_stream(
        BufStream::new(transport),
        ns,
        header(domain),
        Timeouts::default(),
    )
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
        (features, stream) = initiate_stream(
            BufStream::new(transport),
            ns,
            header(domain),
            Timeouts::default(),
        )
        .await
        .map_err(down)?
        .recv_features::<FallibleStreamElement>()
        .await
        .map_err(|_| MSGR_E_DISCONNECTED)?;
    }
    let creds = Credentials::default()
        .with_username(setup.jid.node().map_or("", |n| n.as_str()))
        .with_password(setup.password.as_str())
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
    stream
        .send(&stanza(Presence::available()))
        .await
        .map_err(|_| MSGR_E_DISCONNECTED)?;
    Ok((stream, full))
}

/// The connection's task.
pub(crate) async fn run(mut setup: Setup, mut commands: mpsc::UnboundedReceiver<Command>) {
    let attempt = tokio::time::timeout(setup.options.connect_timeout, login(&setup)).await;
    let mut password = std::mem::take(&mut setup.password).into_bytes();
    super::wipe(&mut password);
    let (mut stream, _bound) = match attempt {
        Ok(Ok(logged_in)) => logged_in,
        Ok(Err(hr)) => {
            let _ = setup.ready.send(Err(hr));
            return;
        }
        Err(_) => {
            let _ = setup.ready.send(Err(MSGR_E_DISCONNECTED));
            return;
        }
    };
    let _ = setup.ready.send(Ok(()));
    let mut conn = Connection {
        setup,
        pending: HashMap::new(),
        next_id: 0,
    };
    let lost = loop {
        let deadline = conn.pending.values().map(|(_, d)| *d).min();
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Stanza(st)))) => {
                    if let Some(reply) = conn.incoming(st) {
                        if stream.send(&stanza(reply)).await.is_err() {
                            break true;
                        }
                    }
                }
                Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::StreamError(_)))) => break true,
                // A stanza that does not parse: nothing to answer it from.
                Some(Ok(_)) | Some(Err(ReadError::ParseError(_))) => {}
                Some(Err(ReadError::SoftTimeout)) => {
                    let ping = conn.request(Iq::from_get("", Ping), None, SendDone::nobody());
                    if stream.send(&stanza(ping)).await.is_err() {
                        break true;
                    }
                }
                Some(Err(_)) | None => break true,
            },
            cmd = commands.recv() => match cmd {
                Some(Command::Send { to, jingle, done }) => {
                    let iq = conn.request(Iq::from_set("", *jingle), Some(to.into()), done);
                    if stream.send(&stanza(iq)).await.is_err() {
                        break true;
                    }
                }
                Some(Command::Close) | None => break false,
            },
            _ = sleep_until(deadline), if deadline.is_some() => conn.expire(),
        }
    };
    conn.setup.shared.observer_gone(conn.setup.jid.as_str());
    for (_, (done, _)) in conn.pending.drain() {
        done.complete(Err(Undeliverable));
    }
    if lost {
        if let Some(ep) = conn.setup.endpoint.upgrade() {
            ep.connection_lost(SR_CONNECTION_FAILURE);
        }
    } else {
        let _ = stream
            .send(&stanza(Presence::new(presence::Type::Unavailable)))
            .await;
        let _ = stream.shutdown().await;
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

struct Connection {
    setup: Setup,
    /// Requests waiting for their answer: completion and deadline.
    pending: HashMap<String, (SendDone, Instant)>,
    next_id: u64,
}

fn error_reply(id: String, to: Option<Jid>, condition: DefinedCondition) -> Iq {
    let kind = match condition {
        DefinedCondition::BadRequest => ErrorType::Modify,
        _ => ErrorType::Cancel,
    };
    let e = StanzaError::new(kind, condition, "en", "");
    let iq = Iq::from_error(id, e);
    match to {
        Some(to) => iq.with_to(to),
        None => iq,
    }
}

impl Connection {
    /// Gives `iq` a fresh id and an address, and records its completion.
    fn request(&mut self, iq: Iq, to: Option<Jid>, done: SendDone) -> Iq {
        self.next_id += 1;
        let id = format!("m{}", self.next_id);
        let deadline = Instant::now() + self.setup.options.request_timeout;
        self.pending.insert(id.clone(), (done, deadline));
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
            .filter(|(_, (_, d))| *d <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in overdue {
            if let Some((done, _)) = self.pending.remove(&id) {
                done.complete(Err(Undeliverable));
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
                            self.setup.shared.presence_changed(me, &from, false)
                        }
                        _ => {}
                    }
                }
                None
            }
            Stanza::Iq(Iq::Result { id, .. }) => {
                if let Some((done, _)) = self.pending.remove(&id) {
                    done.complete(Ok(()));
                }
                None
            }
            Stanza::Iq(Iq::Error { id, .. }) => {
                if let Some((done, _)) = self.pending.remove(&id) {
                    done.complete(Err(Undeliverable));
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
                error_reply(id, from, DefinedCondition::ServiceUnavailable)
            }),
            Stanza::Iq(Iq::Set {
                from, id, payload, ..
            }) => Some(self.jingle(from, id, payload)),
            Stanza::Message(_) => None,
        }
    }

    /// An IQ set: a step of a session from a peer. Acknowledged (or refused) at once, then
    /// handed to the client.
    fn jingle(&mut self, from: Option<Jid>, id: String, payload: Element) -> Iq {
        if !payload.is("jingle", xmpp_parsers::ns::JINGLE) {
            return error_reply(id, from, DefinedCondition::ServiceUnavailable);
        }
        let Some(peer) = from.clone().and_then(|j| j.try_into_full().ok()) else {
            return error_reply(id, from, DefinedCondition::BadRequest);
        };
        let msg = match protocol::message_from_payload(payload) {
            Ok(m) => m,
            Err(_) => return error_reply(id, from, DefinedCondition::BadRequest),
        };
        let reply = Iq::empty_result(Jid::from(peer.clone()), id);
        let Some(msg) = msg else { return reply };
        let Ok(sender) = Text::new(peer.to_bare().as_str()) else {
            return reply;
        };
        let me = self.setup.jid.as_str();
        if super::ends_session(&msg) {
            self.setup
                .shared
                .forget_session(me, msg.session_id().as_str());
        } else {
            self.setup
                .shared
                .learn_peer(me, msg.session_id().as_str(), &peer);
        }
        if let Some(ep) = self.setup.endpoint.upgrade() {
            ep.deliver(&sender, msg);
        }
        reply
    }
}
