//! One client's connection to the XMPP server: a task on the service's runtime that signs in
//! ([`super::login`]), then answers the server and carries the client's steps until it is
//! closed; after a lost connection it tells the client and signs in again with growing
//! pauses. It binds each session to its peer's full JID, sends unanswered steps again,
//! answers copies of requests it has taken without taking them twice, pings quiet peers and
//! applies the invitation policy ([`super::policy`]).

use super::login::{login_with, stanza, Account, Stream};
use super::policy::{Policy, Refused};
use super::protocol::{self, Incoming};
use super::{Shared, XmppOptions};
use crate::error::{
    Hr, E_ACCESSDENIED, E_NOT_ENOUGH_QUOTA, MSGR_E_ALREADY_LOGGED_ON, MSGR_E_DISCONNECTED,
    SR_AUTHENTICATION_FAILED, SR_NETWORK_CONFIG_FAILURE,
};
use crate::service::{Delivery, Endpoint, Message, SendDone, Undeliverable};
use crate::types::Text;
use futures_util::{SinkExt, StreamExt};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::rustls::ClientConfig;
use tokio_xmpp::xmlstream::{FallibleStreamElement, ReadError, XmppStreamElement};
use tokio_xmpp::Stanza;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::jingle::{Action, Jingle};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::ping::Ping;
use xmpp_parsers::presence::{self, Presence};
use xmpp_parsers::roster::Roster;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
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

/// Who `setup` signs in as, with the roster when `policy` needs it.
fn account<'a>(setup: &'a Setup, policy: &Policy) -> Account<'a> {
    Account {
        jid: &setup.jid,
        options: &setup.options,
        tls: setup.tls.as_ref(),
        roster: policy.wants_roster(),
    }
}

/// The connection's task: the sign-in, then the stream's service; after a lost connection,
/// the client is told, and signed in again with growing pauses (when the options ask for it)
/// until it gets in, a login is refused, or the client stops it.
pub(crate) async fn run(mut setup: Setup, mut commands: mpsc::UnboundedReceiver<Command>) {
    let password = std::mem::take(&mut setup.password);
    let mut policy = Policy::new(
        setup.options.allow_strangers,
        setup.options.invitations_per_minute,
    );
    let (mut stream, roster) = match login_with(&account(&setup, &policy), password).await {
        Ok(l) => (l.stream, l.roster),
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
        policy: {
            policy.set_roster(roster);
            policy
        },
        answered: HashMap::new(),
        answered_order: VecDeque::new(),
        id_prefix: random_hex(),
        heard: HashMap::new(),
    };
    loop {
        let end = conn.serve(&mut stream, &mut commands).await;
        conn.setup.shared.observer_gone(conn.setup.jid.as_str());
        conn.peers.clear();
        conn.heard.clear();
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

/// Eight random hex digits.
fn random_hex() -> String {
    let mut b = [0u8; 4];
    if getrandom::fill(&mut b).is_err() {
        b = std::process::id().to_le_bytes();
    }
    format!("{:08x}", u32::from_le_bytes(b))
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
    /// A session step and when to send it again (the same IQ, the same id) while no answer
    /// came: a lost stanza is made up for, and the receiver answers a copy of a request it
    /// has taken with the answer it gave, without taking it twice.
    resend: Option<(Iq, Instant)>,
    /// An invitation: its SessionID and its invitee, who may refuse it by policy.
    invite: Option<(String, FullJid)>,
    /// A ping of a quiet peer about one of its sessions (see [`Connection::probe`]).
    probe: Option<(String, FullJid)>,
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
    /// `peers` is pruned of ended sessions (a timeout ends one without a message) when it
    /// reaches this length.
    prune_peers_at: usize,
    /// Who may invite this client (its contacts, kept up to date by the server's roster
    /// pushes, and the rate limit).
    policy: Policy,
    /// The answers given to the session requests of the last [`REMEMBERED`] request
    /// timeouts (at most [`ANSWERED`]), by sender (full JID) and id, with a digest of the
    /// request's payload; the keys oldest first, with when they were answered.
    answered: HashMap<(String, String), (u64, Iq)>,
    answered_order: VecDeque<((String, String), Instant)>,
    /// The first part of this connection's request ids (random).
    id_prefix: String,
    /// When each bound peer was last heard from (see [`Connection::probe`]).
    heard: HashMap<FullJid, Instant>,
}

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

impl Pending {
    /// When this request needs attention next: a copy to send, or its end.
    fn next_due(&self) -> Instant {
        match &self.resend {
            Some((_, at)) => (*at).min(self.deadline),
            None => self.deadline,
        }
    }
}

/// How many copies of a session step are sent in all while no answer comes, spread over the
/// request timeout.
const COPIES: u32 = 3;

/// How many answered requests are remembered at most, to answer a copy the same way.
const ANSWERED: usize = 4096;

/// For how many request timeouts an answer is remembered: every copy of a request leaves
/// within one, so this covers copies that travel slowly too.
const REMEMBERED: u32 = 2;

/// A digest of a request's payload, to tell a copy from another request with the same id
/// (without keeping the payload).
fn digest(payload: &Element) -> u64 {
    use std::hash::Hasher;
    struct Digest(std::hash::DefaultHasher);
    impl std::io::Write for Digest {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.write(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut d = Digest(std::hash::DefaultHasher::new());
    let _ = payload.write_to(&mut d);
    d.0.finish()
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
        let every = self.setup.options.keepalive / 2;
        let mut next_probe = Instant::now() + every;
        loop {
            let deadline = self.pending.values().map(Pending::next_due).min();
            tokio::select! {
                _ = tokio::time::sleep_until(next_probe) => {
                    next_probe = Instant::now() + every;
                    for iq in self.probe() {
                        if stream.send(&stanza(iq)).await.is_err() {
                            return End::Lost;
                        }
                    }
                }
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
                        let ping = self.request(Iq::from_get("", Ping), None, SendDone::nobody(), false, None, None);
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
                        let iq = self.request(Iq::from_set("", *jingle), to, done, terminates, invite, None);
                        if stream.send(&stanza(iq)).await.is_err() {
                            return End::Lost;
                        }
                    }
                    Some(Command::Close) | None => return End::Closed,
                },
                _ = sleep_until(deadline), if deadline.is_some() => {
                    for iq in self.expire() {
                        if stream.send(&stanza(iq)).await.is_err() {
                            return End::Lost;
                        }
                    }
                }
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
            match login_with(&account(&self.setup, &self.policy), password).await {
                Ok(mut l) => {
                    if ep.reconnected() {
                        self.policy.set_roster(l.roster);
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

    /// Binds `session_id` to `peer`; prunes the bindings of ended sessions when there are
    /// many.
    fn bind(&mut self, session_id: String, peer: FullJid) {
        self.heard.entry(peer.clone()).or_insert_with(Instant::now);
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
        // Its next requests come from a new stream of its: forget what it was answered.
        let gone_jid = who.to_string();
        self.answered.retain(|(from, _), _| *from != gone_jid);
        self.answered_order
            .retain(|((from, _), _)| *from != gone_jid);
        let gone: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, jid)| *jid == who)
            .map(|(sid, _)| sid.clone())
            .collect();
        for sid in gone {
            self.peers.remove(&sid);
            self.tell(who, &sid, |session_id| Message::PeerGone { session_id });
        }
    }

    /// Hands the client a message about `session_id` that the network stands for, as if
    /// `peer` had sent it.
    fn tell(&self, peer: &FullJid, session_id: &str, message: impl FnOnce(Text) -> Message) {
        if let (Some(ep), Ok(from), Ok(sid)) = (
            self.setup.endpoint.upgrade(),
            Text::new(peer.to_bare().as_str()),
            Text::new(session_id),
        ) {
            let _ = ep.deliver(&from, message(sid));
        }
    }

    /// Something came from `from`: a bound peer is alive.
    fn heard_from(&mut self, from: Option<&Jid>) {
        if let Some(Ok(full)) = from.cloned().map(Jid::try_into_full) {
            if let Some(at) = self.heard.get_mut(&full) {
                *at = Instant::now();
            }
        }
    }

    /// Pings, about one of its sessions, each bound peer quiet for the keepalive period
    /// (an empty `session-info`, XEP-0166's ping): a peer whose process or network died
    /// without its server noticing yet answers none of the copies, and its sessions end
    /// here (as on its unavailable presence); one that does not know the session answers
    /// `<unknown-session/>`, and that session ends.
    fn probe(&mut self) -> Vec<Iq> {
        let now = Instant::now();
        let quiet = self.setup.options.keepalive;
        let bound: HashMap<&FullJid, &String> =
            self.peers.iter().map(|(sid, jid)| (jid, sid)).collect();
        self.heard.retain(|jid, _| bound.contains_key(jid));
        let probing: HashSet<FullJid> = self
            .pending
            .values()
            .filter_map(|p| p.probe.as_ref().map(|(_, jid)| jid.clone()))
            .collect();
        let due: Vec<(String, FullJid)> = self
            .heard
            .iter()
            .filter(|(jid, at)| now - **at >= quiet && !probing.contains(*jid))
            .filter_map(|(jid, _)| bound.get(jid).map(|sid| ((*sid).clone(), jid.clone())))
            .collect();
        let mut out = Vec::new();
        for (sid, peer) in due {
            let ping = Jingle::new(
                Action::SessionInfo,
                xmpp_parsers::jingle::SessionId(sid.clone()),
            );
            let to = Some(Jid::from(peer.clone()));
            let iq = Iq::from_set("", ping);
            out.push(self.request(iq, to, SendDone::nobody(), false, None, Some((sid, peer))));
        }
        out
    }

    /// A ping of a quiet peer was answered with an error.
    fn probe_refused(&mut self, session_id: &str, peer: &FullJid, error: &StanzaError) {
        let unknown = error
            .other
            .as_ref()
            .is_some_and(|e| e.is("unknown-session", JINGLE_ERRORS));
        if unknown {
            // The peer has no such session: it ends here too.
            if self.peers.get(session_id) == Some(peer) {
                self.peers.remove(session_id);
                self.tell(peer, session_id, |session_id| Message::PeerGone {
                    session_id,
                });
            }
            return;
        }
        match error.defined_condition {
            // The server says nobody is there.
            DefinedCondition::ServiceUnavailable
            | DefinedCondition::RecipientUnavailable
            | DefinedCondition::RemoteServerNotFound
            | DefinedCondition::RemoteServerTimeout => self.peer_unavailable(peer),
            _ => self.heard_from(Some(&Jid::from(peer.clone()))),
        }
    }

    /// The invitation `session_id` to `invitee` was refused by its service's policy.
    fn refused(&self, invitee: &FullJid, session_id: String, hr: Hr) {
        self.tell(invitee, &session_id, |session_id| Message::Refused {
            session_id,
            hr,
        });
    }

    /// Gives `iq` a fresh id and an address, and records its completion.
    fn request(
        &mut self,
        iq: Iq,
        to: Option<Jid>,
        done: SendDone,
        terminates: bool,
        invite: Option<(String, FullJid)>,
        probe: Option<(String, FullJid)>,
    ) -> Iq {
        self.next_id += 1;
        // Unique across this client's connections: a peer remembers the ids it answered.
        let id = format!("m{}-{}", self.id_prefix, self.next_id);
        let now = Instant::now();
        let timeout = self.setup.options.request_timeout;
        let iq = iq.with_id(id.clone());
        let iq = match to {
            Some(to) => iq.with_to(to),
            None => iq,
        };
        let session_step = matches!(iq, Iq::Set { .. });
        let pending = Pending {
            done,
            resend: session_step.then(|| (iq.clone(), now + timeout / COPIES)),
            invite,
            probe,
            deadline: now + timeout,
            terminates,
        };
        self.pending.insert(id, pending);
        iq
    }

    /// Requests whose answer is overdue count as not delivered.
    /// Returns the copies of requests due to be sent again.
    fn expire(&mut self) -> Vec<Iq> {
        let now = Instant::now();
        let overdue: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        let mut dead = Vec::new();
        for id in overdue {
            if let Some(p) = self.pending.remove(&id) {
                p.done.complete(Err(Undeliverable));
                if let Some((_, peer)) = p.probe {
                    dead.push(peer);
                }
            }
        }
        // A quiet peer that answered none of the copies of a ping: gone.
        for peer in dead {
            self.peer_unavailable(&peer);
        }
        let every = self.setup.options.request_timeout / COPIES;
        let mut copies = Vec::new();
        for p in self.pending.values_mut() {
            if let Some((iq, at)) = &mut p.resend {
                if *at <= now {
                    copies.push(iq.clone());
                    *at = now + every;
                }
            }
        }
        copies
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
            Stanza::Iq(Iq::Result { id, from, .. }) => {
                self.heard_from(from.as_ref());
                if let Some(p) = self.pending.remove(&id) {
                    p.done.complete(Ok(()));
                }
                None
            }
            Stanza::Iq(Iq::Error { id, error, .. }) => {
                if let Some((sid, peer)) = self.pending.get(&id).and_then(|p| p.probe.clone()) {
                    if let Some(p) = self.pending.remove(&id) {
                        p.done.complete(Err(Undeliverable));
                    }
                    self.probe_refused(&sid, &peer, &error);
                    return None;
                }
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
                        self.policy.update(roster);
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
    /// A copy of a request already answered (the same sender, id and payload: the sender
    /// sent it again, not having seen the answer) gets the same answer and is not taken
    /// again.
    fn jingle(&mut self, from: Option<Jid>, id: String, payload: Element) -> Iq {
        self.heard_from(from.as_ref());
        let now = Instant::now();
        let keep = self.setup.options.request_timeout * REMEMBERED;
        while let Some((key, at)) = self.answered_order.front() {
            if now - *at < keep && self.answered.len() < ANSWERED {
                break;
            }
            self.answered.remove(key);
            self.answered_order.pop_front();
        }
        let key = from.as_ref().map(|f| (f.to_string(), id.clone()));
        let seen = digest(&payload);
        if let Some(key) = &key {
            if let Some((d, answer)) = self.answered.get(key) {
                if *d == seen {
                    return answer.clone();
                }
            }
        }
        let answer = match self.take_jingle(from.clone(), payload) {
            Ok(peer) => Iq::empty_result(Jid::from(peer), id),
            Err(refusal) => error_reply(id, from, refusal),
        };
        if let Some(key) = key {
            if self
                .answered
                .insert(key.clone(), (seen, answer.clone()))
                .is_none()
            {
                self.answered_order.push_back((key, now));
            }
        }
        answer
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
            self.policy
                .admit(sender.as_str(), std::time::Instant::now())
                .map_err(|r| match r {
                    Refused::Stranger => Refusal::Stranger,
                    Refused::TooMany => Refusal::TooMany,
                })?;
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
