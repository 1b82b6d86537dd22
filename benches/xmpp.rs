//! The invitation round trip through a real XMPP server, against the server's own floor, its
//! parts measured apart, and 100 clients with 10 sessions each.
//!
//! `cargo bench --features xmpp --bench xmpp` starts a Prosody
//! (tests/common/prosody.rs) and measures, interleaved repetition by repetition so that the
//! figures of one repetition share the machine's phase:
//! - floors, raw tokio-xmpp streams (the XML stream and login the library itself uses, Nagle
//!   off as in the library), no msgrpriv code: a message ping-pong between two connections of
//!   one thread (`xmpp.pp.message.*`, the reference), the same with a Jingle
//!   session-initiate element as the message's payload (`xmpp.pp.jingle_message.*`), an IQ set
//!   carrying that element answered by an IQ result (`xmpp.pp.iq.*`), a message ping-pong
//!   between two processes (`xmpp.pp.message_2proc.*`), and the invitation's own exchange
//!   between two processes: session-initiate IQ, answered by its result and a session-accept
//!   IQ, acknowledged (`xmpp.raw_invite.*`);
//! - `xmpp.invite.*`: Invite to OnAccepted between two processes with msgrpriv (this one is
//!   alice; a child of it is bob, whose OnInvitation callback accepts at once), both clients
//!   in thread mode, each process with its own XMPP service;
//! - the thread hops and the Jingle costs of the invitation, in-process, no server
//!   (`xmpp.hop.*`, `xmpp.jingle.*`);
//! - `xmpp.fleet.*`: 100 clients in two processes (50 inviters, 50 invitees), 10 sessions
//!   each: invitations per second and resident memory per signed-in client.
//!
//! Every round trip starts after an idle gap (`MSGRPRIV_XMPP_BENCH_GAP_US`, 1000 us), as an
//! invitation does: the threads on the path are asleep when it starts. Output: `R` lines
//! (key, unit, median, min, max over the repetitions, repetitions) for benches/report.py,
//! then a summary. Numbers, never pass/fail.
//!
//! Environment: `MSGRPRIV_XMPP_BENCH_REPS` repetitions (5), `MSGRPRIV_XMPP_BENCH_N` round
//! trips per repetition (200), `MSGRPRIV_XMPP_BENCH_FLEET` 0 skips the 100 clients,
//! `MSGRPRIV_XMPP_BENCH_ROUNDS` rounds of the 100 clients' invitations (5).

#[path = "../tests/common/prosody.rs"]
#[allow(dead_code)] // the fixture as the tests have it; the bench uses part of it
mod prosody;

use futures_util::{SinkExt, StreamExt};
use msgrpriv::events::{ManagerEvent, ManagerEventKind, SessionEvent, SessionEventKind};
use msgrpriv::service::Message;
use msgrpriv::xmpp::{protocol, Tls, XmppOptions, XmppService};
use msgrpriv::{
    Client, DispatchMode, EmbeddedService, Service, ServiceOptions, SessionState, Text,
};
use sasl::common::{ChannelBinding, Credentials};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::jid::{BareJid, FullJid, Jid};
use tokio_xmpp::parsers::message::Message as XmppMessage;
use tokio_xmpp::parsers::presence::Presence;
use tokio_xmpp::xmlstream::{
    initiate_stream, FallibleStreamElement, StreamHeader, Timeouts, XmppStreamElement,
};
use tokio_xmpp::Stanza;
use xmpp_parsers::bind::{BindQuery, BindResponse};
use xmpp_parsers::minidom::Element;

const GUID: &str = "{11111111-2222-3333-4444-555555555555}";
const FLEET: usize = 50; // clients per fleet process (two processes: 100 clients)
const FLEET_SESSIONS: usize = 10; // sessions per client

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn gap() {
    std::thread::sleep(Duration::from_micros(
        env("MSGRPRIV_XMPP_BENCH_GAP_US", 1000) as u64,
    ));
}

fn service(server: &str, password: &'static str) -> Arc<dyn Service> {
    let creds: msgrpriv::xmpp::Credentials = Arc::new(move |_: &str| Some(password.to_string()));
    let addr: std::net::SocketAddr = server.parse().unwrap();
    // The fixture's Prosody speaks plain TCP on loopback.
    let mut options = XmppOptions::new(addr.ip().to_string(), addr.port(), creds);
    options.tls = Tls::Plain;
    // Hundreds of invitations a minute between the same two users: no rate limit.
    options.invitations_per_minute = 0;
    Arc::new(XmppService::new(options).unwrap())
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn rss_bytes() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64
}

/// Figures over the repetitions: key -> one value per repetition.
#[derive(Default)]
struct Figures(BTreeMap<String, (String, Vec<f64>)>);

impl Figures {
    fn add(&mut self, key: &str, unit: &str, v: f64) {
        self.0
            .entry(key.to_string())
            .or_insert_with(|| (unit.to_string(), Vec::new()))
            .1
            .push(v);
    }

    /// p50 and p99 of one repetition's round trips.
    fn latency(&mut self, key: &str, mut times: Vec<f64>) {
        self.add(&format!("{key}.p50_us"), "us", percentile(&mut times, 0.5));
        self.add(&format!("{key}.p99_us"), "us", percentile(&mut times, 0.99));
    }

    fn med(&self, key: &str) -> Option<f64> {
        let (_, v) = self.0.get(key)?;
        let mut v = v.clone();
        Some(percentile(&mut v, 0.5))
    }

    fn print(&self) {
        for (key, (unit, v)) in &self.0 {
            let mut v = v.clone();
            let med = percentile(&mut v, 0.5);
            let (lo, hi) = (v[0], v[v.len() - 1]);
            println!("R\t{key}\t{unit}\t{med:.4}\t{lo:.4}\t{hi:.4}\t{}", v.len());
        }
    }
}

// --- raw streams: the XML stream and login of src/xmpp/connection.rs, without msgrpriv ---

type Stream = tokio_xmpp::xmlstream::XmppStream<BufStream<TcpStream>>;

fn header(domain: &str) -> StreamHeader<'static> {
    StreamHeader {
        to: Some(Cow::Owned(domain.to_owned())),
        from: None,
        id: None,
    }
}

fn el(s: impl Into<Stanza>) -> XmppStreamElement {
    XmppStreamElement::Stanza(s.into())
}

/// Plain TCP with Nagle off, SASL, bind, initial presence: what the library's connection does.
async fn raw_login(server: &str, user: &str, pw: &str) -> (Stream, FullJid) {
    let jid = BareJid::new(&format!("{user}@localhost")).unwrap();
    let tcp = TcpStream::connect(server).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let ns = xmpp_parsers::ns::JABBER_CLIENT;
    let pending = initiate_stream(
        BufStream::new(tcp),
        ns,
        header("localhost"),
        Timeouts::default(),
    )
    .await
    .unwrap();
    let (features, stream) = pending
        .recv_features::<FallibleStreamElement>()
        .await
        .unwrap();
    let creds = Credentials::default()
        .with_username(user)
        .with_password(pw)
        .with_channel_binding(ChannelBinding::None);
    let authed = tokio_xmpp::client_login(stream, features.sasl_mechanisms, creds)
        .await
        .unwrap();
    let (_, mut stream) = authed
        .send_header(header(jid.domain().as_str()))
        .await
        .unwrap()
        .recv_features::<FallibleStreamElement>()
        .await
        .unwrap();
    stream
        .send(&el(Iq::from_set("bind", BindQuery::new(None))))
        .await
        .unwrap();
    let full = loop {
        if let Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Stanza(Stanza::Iq(
            Iq::Result {
                id,
                payload: Some(p),
                ..
            },
        ))))) = stream.next().await
        {
            if id == "bind" {
                break FullJid::from(BindResponse::try_from(p).unwrap());
            }
        }
    };
    stream.send(&el(Presence::available())).await.unwrap();
    (stream, full)
}

/// The next stanza (presence and other elements skipped by the caller's match).
async fn next_stanza(s: &mut Stream) -> Stanza {
    loop {
        match s.next().await {
            Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::Stanza(st)))) => return st,
            Some(_) => {}
            None => panic!("stream closed"),
        }
    }
}

fn invite_message() -> Message {
    Message::Invite {
        session_id: msgrpriv::types::new_session_id(),
        app_guid: Text::new(GUID).unwrap(),
        app_name: Text::new("bench").unwrap(),
        app_url: Text::new("http://x").unwrap(),
        app_data: None,
        address: Text::new("127.0.0.1").unwrap(),
        timeout_ms: 120_000,
    }
}

fn accept_message(session_id: Text) -> Message {
    Message::Accept {
        session_id,
        app_data: None,
        address: Text::new("127.0.0.1").unwrap(),
    }
}

fn initiate_element() -> Element {
    protocol::to_jingle(&invite_message()).into()
}

fn accept_element() -> Element {
    protocol::to_jingle(&accept_message(msgrpriv::types::new_session_id())).into()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The one-process floors: two connections on one thread. Returns (message, jingle message,
/// iq) round trips.
struct OneProcess {
    rt: tokio::runtime::Runtime,
    a: Stream,
    b: Stream,
    b_jid: FullJid,
}

#[derive(Clone, Copy)]
enum Kind {
    Message,
    JingleMessage,
    Iq,
}

impl OneProcess {
    fn new(server: &str) -> Self {
        let rt = runtime();
        let (a, b, b_jid) = rt.block_on(async {
            let (a, _) = raw_login(server, "carol", "carolpw").await;
            let (b, b_jid) = raw_login(server, "erin", "erinpw").await;
            (a, b, b_jid)
        });
        OneProcess { rt, a, b, b_jid }
    }

    fn run(&mut self, kind: Kind, n: usize) -> Vec<f64> {
        let payload = initiate_element();
        let mut times = Vec::with_capacity(n);
        let OneProcess { rt, a, b, b_jid } = self;
        for i in 0..n + 5 {
            gap();
            let t = rt.block_on(async {
                let t0 = Instant::now();
                let to = Jid::from(b_jid.clone());
                let out = match kind {
                    Kind::Message => XmppMessage::new(Some(to))
                        .with_body(Default::default(), format!("{i}"))
                        .into(),
                    Kind::JingleMessage => {
                        let mut m = XmppMessage::new(Some(to));
                        m.payloads.push(payload.clone());
                        m.into()
                    }
                    Kind::Iq => Stanza::from(
                        Iq::from_set(format!("q{i}"), ElementPayload(payload.clone())).with_to(to),
                    ),
                };
                a.send(&XmppStreamElement::Stanza(out)).await.unwrap();
                // b answers what it gets; a waits for the answer
                let reply: Stanza = loop {
                    match next_stanza(b).await {
                        Stanza::Message(m) => {
                            break XmppMessage::new(m.from)
                                .with_body(Default::default(), format!("{i}"))
                                .into()
                        }
                        Stanza::Iq(Iq::Set { from, id, .. }) => {
                            break Iq::empty_result(from.unwrap(), id).into()
                        }
                        _ => {}
                    }
                };
                b.send(&XmppStreamElement::Stanza(reply)).await.unwrap();
                loop {
                    match next_stanza(a).await {
                        Stanza::Message(_) | Stanza::Iq(Iq::Result { .. }) => break,
                        _ => {}
                    }
                }
                t0.elapsed().as_secs_f64() * 1e6
            });
            if i >= 5 {
                times.push(t);
            }
        }
        times
    }
}

/// An IQ set payload that is a ready element.
struct ElementPayload(Element);
impl From<ElementPayload> for Element {
    fn from(p: ElementPayload) -> Element {
        p.0
    }
}
impl From<Element> for ElementPayload {
    fn from(e: Element) -> Self {
        ElementPayload(e)
    }
}
impl xmpp_parsers::iq::IqSetPayload for ElementPayload {}

/// The child of the two-process floors ("dave"): answers a message with a message, and an IQ
/// set with its result and, for a session-initiate, a session-accept IQ set, as a msgrpriv
/// invitee does (ack first, then the accept).
fn pong(server: &str) {
    let rt = runtime();
    rt.block_on(async {
        let (mut s, jid) = raw_login(server, "dave", "davepw").await;
        println!("{jid}");
        std::io::stdout().flush().unwrap();
        let accept = accept_element();
        let mut n = 0u64;
        loop {
            match next_stanza(&mut s).await {
                Stanza::Message(m) => {
                    let r = XmppMessage::new(m.from).with_body(Default::default(), "p".into());
                    s.send(&el(r)).await.unwrap();
                }
                Stanza::Iq(Iq::Set { from, id, .. }) => {
                    let from = from.unwrap();
                    s.send(&el(Iq::empty_result(from.clone(), id)))
                        .await
                        .unwrap();
                    n += 1;
                    let iq =
                        Iq::from_set(format!("a{n}"), ElementPayload(accept.clone())).with_to(from);
                    s.send(&el(iq)).await.unwrap();
                }
                _ => {}
            }
        }
    });
}

struct TwoProcess {
    rt: tokio::runtime::Runtime,
    a: Stream,
    peer: Jid,
    child: std::process::Child,
}

impl TwoProcess {
    fn new(server: &str) -> Self {
        let exe = std::env::current_exe().unwrap();
        let mut child = std::process::Command::new(exe)
            .args(["--pong", server])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let peer = Jid::new(line.trim()).unwrap();
        let rt = runtime();
        let (a, _) = rt.block_on(raw_login(server, "frank", "frankpw"));
        TwoProcess { rt, a, peer, child }
    }

    /// Message ping-pong (false) or the invitation's exchange (true).
    fn run(&mut self, invitation: bool, n: usize) -> Vec<f64> {
        let initiate = initiate_element();
        let mut times = Vec::with_capacity(n);
        let TwoProcess { rt, a, peer, .. } = self;
        for i in 0..n + 5 {
            gap();
            let t = rt.block_on(async {
                let t0 = Instant::now();
                if invitation {
                    let iq = Iq::from_set(format!("i{i}"), ElementPayload(initiate.clone()))
                        .with_to(peer.clone());
                    a.send(&el(iq)).await.unwrap();
                    loop {
                        if let Stanza::Iq(Iq::Set { from, id, .. }) = next_stanza(a).await {
                            let t = t0.elapsed().as_secs_f64() * 1e6;
                            a.send(&el(Iq::empty_result(from.unwrap(), id)))
                                .await
                                .unwrap();
                            break t;
                        }
                    }
                } else {
                    let m = XmppMessage::new(Some(peer.clone()))
                        .with_body(Default::default(), format!("{i}"));
                    a.send(&el(m)).await.unwrap();
                    loop {
                        if let Stanza::Message(_) = next_stanza(a).await {
                            break t0.elapsed().as_secs_f64() * 1e6;
                        }
                    }
                }
            });
            if i >= 5 {
                times.push(t);
            }
        }
        // the last acknowledgement of the peer's accept, and stray results, are read by the
        // next run's loops
        times
    }
}

impl Drop for TwoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- the invitation with msgrpriv ---

/// The child process: bob accepts every invitation, until killed.
fn bob(server: &str) {
    let c = Client::new(
        service(server, "bobpw"),
        "bob@localhost",
        DispatchMode::Thread,
    )
    .unwrap();
    let m = c.create_session_manager().unwrap();
    m.register_application(GUID, "bench", "http://x", "", 0)
        .unwrap();
    m.advise(ManagerEventKind::Invitation, |e| {
        if let ManagerEvent::Invitation {
            session, handled, ..
        } = e
        {
            *handled = true;
            let _ = session.accept(None);
        }
    })
    .unwrap();
    println!("ready");
    std::thread::sleep(Duration::from_secs(3600));
}

struct Invitations {
    client: Client,
    manager: msgrpriv::SessionManager,
    child: std::process::Child,
}

impl Invitations {
    fn new(server: &str) -> Self {
        let exe = std::env::current_exe().unwrap();
        let mut child = std::process::Command::new(exe)
            .args(["--bob", server])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let client = Client::new(
            service(server, "alicepw"),
            "alice@localhost",
            DispatchMode::Thread,
        )
        .unwrap();
        let manager = client.create_session_manager().unwrap();
        manager
            .register_application(GUID, "bench", "http://x", "", 0)
            .unwrap();
        Invitations {
            client,
            manager,
            child,
        }
    }

    fn run(&mut self, n: usize) -> Vec<f64> {
        let mut times = Vec::with_capacity(n);
        let start = Instant::now();
        let mut i = 0;
        while times.len() < n {
            let s = self.manager.create_session().unwrap();
            s.set_application(GUID).unwrap();
            let (tx, rx) = mpsc::channel();
            s.advise(SessionEventKind::Accepted, move |_: &mut SessionEvent| {
                let _ = tx.send(Instant::now());
            })
            .unwrap();
            gap();
            let t0 = Instant::now();
            if s.invite("bob@localhost", None).is_err() {
                // bob's presence has not arrived yet
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "bob never came online"
                );
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            let t1 = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("OnAccepted");
            i += 1;
            if i > 5 {
                times.push((t1 - t0).as_secs_f64() * 1e6);
            }
            assert_eq!(s.state(), SessionState::Connected);
            s.cancel(msgrpriv::error::E_FAIL, None).unwrap();
            s.detach();
        }
        times
    }
}

impl Drop for Invitations {
    fn drop(&mut self) {
        self.client.destroy();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- the parts, in-process ---

/// One-way latency of `n` hops after an idle gap each: `send(t0)` hands the start time to the
/// other side, which returns the elapsed time through `back`.
fn hops(n: usize, mut send: impl FnMut(Instant), back: &mpsc::Receiver<f64>) -> Vec<f64> {
    let mut v = Vec::with_capacity(n);
    for i in 0..n + 5 {
        gap();
        send(Instant::now());
        let t = back.recv().unwrap();
        if i >= 5 {
            v.push(t);
        }
    }
    v
}

/// An application thread waking the XMPP runtime thread: a tokio unbounded channel into a
/// task of a `current_thread` runtime (with its I/O driver) on its own thread, parked.
fn hop_app_to_runtime(n: usize) -> Vec<f64> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let (btx, brx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        runtime().block_on(async move {
            while let Some(t0) = rx.recv().await {
                btx.send(t0.elapsed().as_secs_f64() * 1e6).unwrap();
            }
        })
    });
    let v = hops(n, |t0| tx.send(t0).unwrap(), &brx);
    drop(tx);
    t.join().unwrap();
    v
}

/// A thread (the runtime, in the XMPP service) raising an event that a thread-mode client's
/// sleeping delivery thread delivers: OnAppRegistered, raised by `register_application`.
fn hop_to_dispatch(n: usize) -> Vec<f64> {
    let svc: Arc<dyn Service> = Arc::new(
        EmbeddedService::new(ServiceOptions {
            invitation_timeout: Duration::from_secs(120),
            manual_clock: true,
            registry_path: None,
        })
        .unwrap(),
    );
    let c = Client::new(svc, "hop@localhost", DispatchMode::Thread).unwrap();
    let m = c.create_session_manager().unwrap();
    let (btx, brx) = mpsc::channel();
    let start = Arc::new(Mutex::new(Instant::now()));
    let s2 = Arc::clone(&start);
    m.advise(ManagerEventKind::AppRegistered, move |_| {
        let t0 = *s2.lock().unwrap();
        let _ = btx.send(t0.elapsed().as_secs_f64() * 1e6);
    })
    .unwrap();
    let mut k = 0;
    let v = hops(
        n,
        |t0| {
            *start.lock().unwrap() = t0;
            k += 1;
            let guid = format!("{{11111111-2222-3333-4444-{k:012}}}");
            m.register_application(&guid, "hop", "http://x", "", 0)
                .unwrap();
        },
        &brx,
    );
    c.destroy();
    v
}

/// The benchmark's own hop: the delivery thread's callback wakes the application thread
/// blocked on a std channel.
fn hop_to_app(n: usize) -> Vec<f64> {
    let (tx, rx) = mpsc::channel::<Instant>();
    let (btx, brx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        while let Ok(t0) = rx.recv() {
            btx.send(t0.elapsed().as_secs_f64() * 1e6).unwrap();
        }
    });
    let v = hops(n, |t0| tx.send(t0).unwrap(), &brx);
    drop(tx);
    t.join().unwrap();
    v
}

/// Microseconds per call of `f`, median of 15 batches of 200 calls.
fn per_call(mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..15)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..200 {
                f();
            }
            t0.elapsed().as_secs_f64() * 1e6 / 200.0
        })
        .collect();
    percentile(&mut v, 0.5)
}

/// The Jingle work of one step on each side: build the payload from the Message, turn the IQ
/// into XML text, and parse XML text back into the Message. (xmpp-parsers is compiled at
/// the opt-level of Cargo.toml's profile.)
fn jingle_costs(f: &mut Figures) {
    let msg = invite_message();
    let build = per_call(|| {
        std::hint::black_box(protocol::to_jingle(std::hint::black_box(&msg)));
    });
    let iq_text = |m: &Message| {
        let iq = Iq::from_set("m1", protocol::to_jingle(m))
            .with_to(Jid::new("bob@localhost/msgrpriv").unwrap())
            .with_from(Jid::new("alice@localhost/msgrpriv").unwrap());
        let mut out = Vec::new();
        Element::from(iq).write_to(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    let jingle = protocol::to_jingle(&msg);
    let to_xml = per_call(|| {
        let iq = Iq::from_set("m1", jingle.clone());
        let mut out = Vec::new();
        Element::from(iq).write_to(&mut out).unwrap();
        std::hint::black_box(out);
    });
    let clone = per_call(|| {
        std::hint::black_box(jingle.clone());
    });
    let to_element = per_call(|| {
        std::hint::black_box(Element::from(Iq::from_set("m1", jingle.clone())));
    });
    let text = iq_text(&msg);
    let parse = per_call(|| {
        let e: Element = text.parse().unwrap();
        let Ok(Iq::Set { payload, .. }) = Iq::try_from(e) else {
            panic!("an IQ set")
        };
        std::hint::black_box(protocol::message_from_payload(payload).unwrap());
    });
    let parse_iq_only = per_call(|| {
        let e: Element = text.parse().unwrap();
        std::hint::black_box(Iq::try_from(e).unwrap());
    });
    f.add("xmpp.jingle.build_us", "us", build);
    f.add("xmpp.jingle.serialize_us", "us", (to_xml - clone).max(0.0));
    f.add(
        "xmpp.jingle.to_element_us",
        "us",
        (to_element - clone).max(0.0),
    );
    f.add("xmpp.jingle.parse_us", "us", parse);
    f.add("xmpp.jingle.parse_xml_and_iq_us", "us", parse_iq_only);
    f.add("xmpp.jingle.initiate_bytes", "bytes", text.len() as f64);
}

// --- 100 clients, 10 sessions each ---

/// A fleet process: `FLEET` clients `u{first}`.. signed in on one XMPP service, thread mode.
/// Invitees accept everything; inviters invite `FLEET_SESSIONS` invitees each, `rounds`
/// times. Prints `I` lines for the parent.
fn fleet(server: &str, role: &str, first: usize, rounds: usize) {
    let svc = service(server, "fleetpw");
    let rss0 = rss_bytes();
    let accepted = Arc::new((Mutex::new(0usize), Condvar::new()));
    let mut clients = Vec::new();
    for i in 0..FLEET {
        let c = Client::new(
            Arc::clone(&svc),
            &format!("u{}@localhost", first + i),
            DispatchMode::Thread,
        )
        .unwrap();
        let m = c.create_session_manager().unwrap();
        if i == 0 {
            // the registry is the service's, shared by its clients
            m.register_application(GUID, "bench", "http://x", "", 0)
                .unwrap();
        }
        if role == "invitee" {
            m.advise(ManagerEventKind::Invitation, |e| {
                if let ManagerEvent::Invitation {
                    session, handled, ..
                } = e
                {
                    *handled = true;
                    let _ = session.accept(None);
                }
            })
            .unwrap();
        }
        clients.push((c, m));
    }
    let rss1 = rss_bytes();
    println!("I\tsignin_per_client\t{}", (rss1 - rss0) / FLEET as f64);
    println!("ready");
    std::io::stdout().flush().unwrap();
    if role == "invitee" {
        // until the parent closes our input
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 {
            line.clear();
        }
        return;
    }
    // inviter: wait until every invitee is online (presence), then the rounds
    let start = Instant::now();
    for (c, m) in &clients {
        let _ = c;
        loop {
            let s = m.create_session().unwrap();
            s.set_application(GUID).unwrap();
            if s.invite(&format!("u{}@localhost", first + 2 * FLEET - 1), None)
                .is_ok()
            {
                s.cancel(msgrpriv::error::E_FAIL, None).unwrap();
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "invitees never came online"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let peers = first + FLEET;
    for round in 0..rounds {
        *accepted.0.lock().unwrap() = 0;
        let mut sessions = Vec::with_capacity(FLEET * FLEET_SESSIONS);
        for _ in 0..FLEET * FLEET_SESSIONS {
            let (_, m) = &clients[sessions.len() % FLEET];
            let s = m.create_session().unwrap();
            s.set_application(GUID).unwrap();
            let a = Arc::clone(&accepted);
            s.advise(SessionEventKind::Accepted, move |_: &mut SessionEvent| {
                *a.0.lock().unwrap() += 1;
                a.1.notify_one();
            })
            .unwrap();
            sessions.push(s);
        }
        let total = sessions.len();
        let t0 = Instant::now();
        for (k, s) in sessions.iter().enumerate() {
            // client k % FLEET invites FLEET_SESSIONS different invitees; each invitee gets
            // FLEET_SESSIONS invitations
            let i = k % FLEET;
            let j = k / FLEET;
            let peer = peers + (i + j) % FLEET;
            s.invite(&format!("u{peer}@localhost"), None).unwrap();
        }
        let (lock, cv) = &*accepted;
        let mut n = lock.lock().unwrap();
        while *n < total {
            let (g, to) = cv.wait_timeout(n, Duration::from_secs(30)).unwrap();
            n = g;
            assert!(!to.timed_out(), "{} of {total} accepted", *n);
        }
        drop(n);
        let secs = t0.elapsed().as_secs_f64();
        println!("I\tinvitations_per_s\t{}", total as f64 / secs);
        if round == 0 {
            println!(
                "I\twith_sessions_per_client\t{}",
                (rss_bytes() - rss0) / FLEET as f64
            );
        }
        for s in &sessions {
            let _ = s.cancel(msgrpriv::error::E_FAIL, None);
        }
        drop(sessions);
        std::thread::sleep(Duration::from_millis(300));
    }
    println!("done");
    std::io::stdout().flush().unwrap();
    for (c, _) in &clients {
        c.destroy();
    }
}

fn fleet_run(server: &str, rounds: usize, f: &mut Figures) {
    let exe = std::env::current_exe().unwrap();
    let spawn = |role: &str, first: usize| {
        let mut child = std::process::Command::new(&exe)
            .args([
                "--fleet",
                server,
                role,
                &first.to_string(),
                &rounds.to_string(),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        (child, out.lines())
    };
    let t0 = Instant::now();
    let (mut invitee, mut invitee_out) = spawn("invitee", FLEET);
    let mut lines = Vec::new();
    for l in invitee_out.by_ref() {
        let l = l.unwrap();
        if l == "ready" {
            break;
        }
        lines.push(l);
    }
    let (mut inviter, inviter_out) = spawn("inviter", 0);
    let mut signed_in = false;
    for l in inviter_out {
        let l = l.unwrap();
        if l == "ready" && !signed_in {
            signed_in = true;
            f.add("xmpp.fleet.signin_s", "s", t0.elapsed().as_secs_f64());
        }
        if l == "done" {
            break;
        }
        lines.push(l);
    }
    let _ = inviter.wait();
    drop(invitee.stdin.take());
    let _ = invitee.wait();
    for l in lines {
        let p: Vec<&str> = l.split('\t').collect();
        if p.len() == 3 && p[0] == "I" {
            let v: f64 = p[2].parse().unwrap();
            match p[1] {
                "invitations_per_s" => f.add("xmpp.fleet.invitations_per_s", "inv/s", v),
                "signin_per_client" => f.add("xmpp.fleet.rss_per_client_bytes", "bytes", v),
                "with_sessions_per_client" => {
                    f.add("xmpp.fleet.rss_per_client_10_sessions_bytes", "bytes", v)
                }
                _ => {}
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--bob") => return bob(&args[2]),
        Some("--pong") => return pong(&args[2]),
        Some("--fleet") => {
            return fleet(
                &args[2],
                &args[3],
                args[4].parse().unwrap(),
                args[5].parse().unwrap(),
            )
        }
        _ => {}
    }
    if !args.iter().any(|a| a == "--bench") {
        // Not under cargo bench (cargo test --benches runs bench targets once, as tests).
        eprintln!("xmpp bench: run it with cargo bench --features xmpp --bench xmpp");
        return;
    }
    let n = env("MSGRPRIV_XMPP_BENCH_N", 200);
    let reps = env("MSGRPRIV_XMPP_BENCH_REPS", 5);
    let fleet_on = env("MSGRPRIV_XMPP_BENCH_FLEET", 1) == 1;
    let mut users: Vec<(String, String)> = ["alice", "bob", "carol", "dave", "erin", "frank"]
        .iter()
        .map(|u| (u.to_string(), format!("{u}pw")))
        .collect();
    if fleet_on {
        users.extend((0..2 * FLEET).map(|i| (format!("u{i}"), "fleetpw".to_string())));
    }
    let users: Vec<(&str, &str)> = users
        .iter()
        .map(|(u, p)| (u.as_str(), p.as_str()))
        .collect();
    let server = prosody::Prosody::start(&users);
    let addr = server.addr.to_string();

    let mut f = Figures::default();
    jingle_costs(&mut f);
    let mut one = OneProcess::new(&addr);
    let mut two = TwoProcess::new(&addr);
    let mut inv = Invitations::new(&addr);
    for _ in 0..reps {
        f.latency("xmpp.pp.message", one.run(Kind::Message, n));
        f.latency("xmpp.pp.jingle_message", one.run(Kind::JingleMessage, n));
        f.latency("xmpp.pp.iq", one.run(Kind::Iq, n));
        f.latency("xmpp.pp.message_2proc", two.run(false, n));
        f.latency("xmpp.raw_invite", two.run(true, n));
        let times = inv.run(n);
        f.latency("xmpp.invite", times);
        let (i50, p50) = (
            *f.0["xmpp.invite.p50_us"].1.last().unwrap(),
            *f.0["xmpp.pp.message.p50_us"].1.last().unwrap(),
        );
        let (i99, p99) = (
            *f.0["xmpp.invite.p99_us"].1.last().unwrap(),
            *f.0["xmpp.pp.message.p99_us"].1.last().unwrap(),
        );
        f.add("xmpp.ratio.invite_to_pp.p50", "x", i50 / p50);
        f.add("xmpp.ratio.invite_to_pp.p99", "x", i99 / p99);
        let r50 = *f.0["xmpp.raw_invite.p50_us"].1.last().unwrap();
        f.add("xmpp.ratio.invite_to_raw_invite.p50", "x", i50 / r50);
        f.latency("xmpp.hop.app_to_runtime", hop_app_to_runtime(n));
        f.latency("xmpp.hop.to_dispatch_thread", hop_to_dispatch(n));
        f.latency("xmpp.hop.to_app_thread", hop_to_app(n));
    }
    drop(inv);
    drop(two);
    drop(one);
    if fleet_on {
        fleet_run(&addr, env("MSGRPRIV_XMPP_BENCH_ROUNDS", 5), &mut f);
    }
    f.print();
    let g = |k: &str| f.med(k).unwrap_or(f64::NAN);
    println!(
        "xmpp: message ping-pong p50 {:.0} us p99 {:.0} us; invitation p50 {:.0} us p99 {:.0} us; ratio p50 {:.2}x p99 {:.2}x (target 1.5x)",
        g("xmpp.pp.message.p50_us"),
        g("xmpp.pp.message.p99_us"),
        g("xmpp.invite.p50_us"),
        g("xmpp.invite.p99_us"),
        g("xmpp.ratio.invite_to_pp.p50"),
        g("xmpp.ratio.invite_to_pp.p99"),
    );
    println!(
        "xmpp: floors p50: jingle message {:.0}, iq {:.0}, message between processes {:.0}, the invitation's exchange between processes (raw) {:.0} us",
        g("xmpp.pp.jingle_message.p50_us"),
        g("xmpp.pp.iq.p50_us"),
        g("xmpp.pp.message_2proc.p50_us"),
        g("xmpp.raw_invite.p50_us"),
    );
    println!(
        "xmpp: hops p50: app->runtime {:.1}, ->delivery thread {:.1}, ->app thread {:.1} us; jingle per step: build {:.1}, serialize {:.1}, parse {:.1} us",
        g("xmpp.hop.app_to_runtime.p50_us"),
        g("xmpp.hop.to_dispatch_thread.p50_us"),
        g("xmpp.hop.to_app_thread.p50_us"),
        g("xmpp.jingle.build_us"),
        g("xmpp.jingle.serialize_us"),
        g("xmpp.jingle.parse_us"),
    );
    if fleet_on {
        println!(
            "xmpp: 100 clients x 10 sessions: {:.0} invitations/s; {:.0} bytes/client signed in, {:.0} with 10 sessions",
            g("xmpp.fleet.invitations_per_s"),
            g("xmpp.fleet.rss_per_client_bytes"),
            g("xmpp.fleet.rss_per_client_10_sessions_bytes"),
        );
    }
}
