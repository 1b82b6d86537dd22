//! The invitation round trip through a real XMPP server, against the server's own floor.
//!
//! `cargo bench --features xmpp --bench xmpp` starts a Prosody (tests/common/prosody.rs) and
//! measures, in the same run:
//! - `xmpp.ping_pong_rtt_us`: a raw XMPP message ping-pong between two clients of the same
//!   client library (tokio-xmpp, two connections, one process): the server's round trip;
//! - `xmpp.invite_to_accepted_us`: Invite to OnAccepted between two processes (this one is
//!   alice; a child of it is bob, whose OnInvitation callback accepts at once, in thread
//!   mode), each with its own XMPP service.
//!
//! It prints p50 and p99 of each and their ratio (the target: within 1.5x of the ping-pong).
//! Numbers, never pass/fail. `MSGRPRIV_XMPP_BENCH_N` sets the number of round trips (500).

#[path = "../tests/common/prosody.rs"]
#[allow(dead_code)] // the fixture as the tests have it; the bench uses part of it
mod prosody;

use futures_util::StreamExt;
use msgrpriv::events::{ManagerEvent, ManagerEventKind, SessionEvent, SessionEventKind};
use msgrpriv::xmpp::{Tls, XmppOptions, XmppService};
use msgrpriv::{Client, DispatchMode, Service, SessionState};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_xmpp::connect::DnsConfig;
use tokio_xmpp::parsers::jid::BareJid;
use tokio_xmpp::parsers::message::{Lang, Message};
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::{Event, Stanza};

const GUID: &str = "{11111111-2222-3333-4444-555555555555}";

fn service(server: &str, password: &'static str) -> Arc<dyn Service> {
    let creds: msgrpriv::xmpp::Credentials = Arc::new(move |_: &str| Some(password.to_string()));
    let addr: std::net::SocketAddr = server.parse().unwrap();
    // The fixture's Prosody speaks plain TCP on loopback.
    let mut options = XmppOptions::new(addr.ip().to_string(), addr.port(), creds);
    options.tls = Tls::Plain;
    Arc::new(XmppService::new(options).unwrap())
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

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

fn invitations(server: &str, n: usize) -> Vec<f64> {
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .args(["--bob", server])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let c = Client::new(
        service(server, "alicepw"),
        "alice@localhost",
        DispatchMode::Thread,
    )
    .unwrap();
    let m = c.create_session_manager().unwrap();
    m.register_application(GUID, "bench", "http://x", "", 0)
        .unwrap();
    let mut times = Vec::with_capacity(n);
    let start = Instant::now();
    while times.len() < n + 20 {
        let s = m.create_session().unwrap();
        s.set_application(GUID).unwrap();
        let (tx, rx) = mpsc::channel();
        s.advise(SessionEventKind::Accepted, move |_: &mut SessionEvent| {
            let _ = tx.send(Instant::now());
        })
        .unwrap();
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
        times.push((t1 - t0).as_secs_f64() * 1e6);
        assert_eq!(s.state(), SessionState::Connected);
        s.cancel(msgrpriv::error::E_FAIL, None).unwrap();
        s.detach();
    }
    c.destroy();
    let _ = child.kill();
    let _ = child.wait();
    times.split_off(20) // the first ones warm the connections up
}

/// Waits until `c` is online; returns its full JID.
async fn online(c: &mut tokio_xmpp::Client) -> tokio_xmpp::parsers::jid::Jid {
    loop {
        if let Some(Event::Online { bound_jid, .. }) = c.next().await {
            return bound_jid;
        }
    }
}

fn ping_pong(server: &str, n: usize) -> Vec<f64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let connect = |user: &str, pw: &str| {
            tokio_xmpp::Client::new_plaintext(
                BareJid::new(&format!("{user}@localhost")).unwrap(),
                pw.to_string(),
                DnsConfig::addr(server),
                Timeouts::tight(),
            )
        };
        let mut a = connect("carol", "carolpw");
        let mut b = connect("bob", "bobpw");
        let _ = online(&mut a).await;
        let bob_jid = online(&mut b).await;
        let mut times = Vec::with_capacity(n);
        for i in 0..n + 20 {
            let t0 = Instant::now();
            let msg =
                Message::new(Some(bob_jid.clone())).with_body(Lang(String::new()), format!("{i}"));
            a.send_stanza(msg.into()).await.unwrap();
            // bob answers the first message it gets; alice waits for the answer
            let from = loop {
                if let Some(Event::Stanza(Stanza::Message(m))) = b.next().await {
                    break m.from.unwrap();
                }
            };
            let reply = Message::new(Some(from)).with_body(Lang(String::new()), format!("{i}"));
            b.send_stanza(reply.into()).await.unwrap();
            loop {
                if let Some(Event::Stanza(Stanza::Message(_))) = a.next().await {
                    break;
                }
            }
            if i >= 20 {
                times.push(t0.elapsed().as_secs_f64() * 1e6);
            }
        }
        times
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "--bob" {
        bob(&args[2]);
        return;
    }
    if !args.iter().any(|a| a == "--bench") {
        // Not under cargo bench (cargo test --benches runs bench targets once, as tests).
        eprintln!("xmpp bench: run it with cargo bench --features xmpp --bench xmpp");
        return;
    }
    let n: usize = std::env::var("MSGRPRIV_XMPP_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let server =
        prosody::Prosody::start(&[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")]);
    let addr = server.addr.to_string();
    let mut pp = ping_pong(&addr, n);
    let mut inv = invitations(&addr, n);
    let (pp50, pp99) = (percentile(&mut pp, 0.5), percentile(&mut pp, 0.99));
    let (i50, i99) = (percentile(&mut inv, 0.5), percentile(&mut inv, 0.99));
    println!("R\txmpp.ping_pong_rtt_us\tus\t{pp50:.1}\t{pp99:.1}\t{n}");
    println!("R\txmpp.invite_to_accepted_us\tus\t{i50:.1}\t{i99:.1}\t{n}");
    println!(
        "xmpp: ping-pong p50 {pp50:.0} us p99 {pp99:.0} us; invitation p50 {i50:.0} us p99 {i99:.0} us; ratio p50 {:.2}x p99 {:.2}x (target 1.5x)",
        i50 / pp50,
        i99 / pp99
    );
}
