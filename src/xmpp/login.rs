//! Signing in to the server: TCP, TLS (direct or STARTTLS) verified as the options say,
//! SASL, resource binding, the roster when the invitation policy needs it, and presence. A
//! refused login is final (SR_AUTHENTICATION_FAILED, SR_NETWORK_CONFIG_FAILURE); a server
//! that cannot be reached in time gives MSGR_E_DISCONNECTED.

use super::{Tls, XmppOptions};
use crate::error::{Hr, MSGR_E_DISCONNECTED, SR_AUTHENTICATION_FAILED, SR_NETWORK_CONFIG_FAILURE};
use futures_util::{SinkExt, StreamExt};
use sasl::common::{ChannelBinding, Credentials};
use std::borrow::Cow;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, BufStream, ReadBuf};
use tokio::net::TcpStream;
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
use xmpp_parsers::jid::{BareJid, FullJid};
use xmpp_parsers::presence::Presence;
use xmpp_parsers::roster::Roster;
use xmpp_parsers::starttls;

/// The bytes under the XMPP stream: plain TCP, or TLS over it.
pub(super) enum Transport {
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

pub(super) type Stream = tokio_xmpp::xmlstream::XmppStream<BufStream<Transport>>;

pub(super) fn stanza(s: impl Into<Stanza>) -> XmppStreamElement {
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

/// Who signs in, and how.
pub(super) struct Account<'a> {
    pub(super) jid: &'a BareJid,
    pub(super) options: &'a XmppOptions,
    /// The TLS configuration; None for plain TCP.
    pub(super) tls: Option<&'a Arc<ClientConfig>>,
    /// Fetch the roster (the invitation policy needs the contacts).
    pub(super) roster: bool,
}

/// A connection signed in: its stream, and the user's roster when it was asked for.
pub(super) struct LoggedIn {
    pub(super) stream: Stream,
    pub(super) roster: Option<Roster>,
}

/// Logs in once: TCP to the server (the host name resolved here) with Nagle's algorithm off
/// (every step is a small write waiting for an answer; with Nagle each would wait for the
/// delayed ACK of the last), TLS as the options say (direct, or STARTTLS, which the server
/// must offer), SASL, resource binding, the roster when asked for, presence.
async fn login(account: &Account<'_>, password: &str) -> Result<LoggedIn, Hr> {
    let down = |_| MSGR_E_DISCONNECTED;
    let o = account.options;
    let tcp = TcpStream::connect((o.server_host.as_str(), o.server_port))
        .await
        .map_err(down)?;
    tcp.set_nodelay(true).map_err(down)?;
    // The domain option, when set, is the sign-in name's domain (XmppService::sign_in).
    let domain = account.jid.domain().as_str();
    let ns = xmpp_parsers::ns::JABBER_CLIENT;
    let tls = match (o.tls, account.tls) {
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
        .with_username(account.jid.node().map_or("", |n| n.as_str()))
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
    let bind = Iq::from_set("bind", BindQuery::new(Some(o.resource.clone())));
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
    let mut roster = None;
    if account.roster {
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
                            roster = payload.and_then(|p| Roster::try_from(p).ok());
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
    Ok(LoggedIn { stream, roster })
}

/// Logs in with the password `credentials` give, within the connect timeout; the password
/// is wiped after use.
pub(super) async fn login_with(
    account: &Account<'_>,
    mut password: String,
) -> Result<LoggedIn, Hr> {
    let attempt =
        tokio::time::timeout(account.options.connect_timeout, login(account, &password)).await;
    let mut bytes = std::mem::take(&mut password).into_bytes();
    super::wipe(&mut bytes);
    attempt.unwrap_or(Err(MSGR_E_DISCONNECTED))
}
