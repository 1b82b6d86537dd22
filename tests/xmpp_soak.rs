//! The XMPP soak (scripts/soak-xmpp.sh runs it; ignored by a plain `cargo test`): clients in
//! two processes (this test binary, and itself run again as `soak_peer`) invite each other
//! through one Prosody for a while, each process through its own fault proxy that drops a
//! share of the stanzas and cuts one of its connections now and then. Every session must end
//! exactly once on each side; the counts and the resident memory are printed.
//!
//! Environment (defaults in brackets): MSGRPRIV_SOAK_SECONDS [600], MSGRPRIV_SOAK_CLIENTS
//! [100, half in each process], MSGRPRIV_SOAK_DROP_PER_MILLION [10000: 1 %],
//! MSGRPRIV_SOAK_CUT_SECONDS [120: each process cuts one connection that often, the two
//! together one a minute; at most half the run, so that a short run cuts too],
//! MSGRPRIV_SOAK_SEED [1].
//!
//! Each client invites a random client of the other process (when it is seen online), one
//! invitation at a time. An invitee accepts 80 % of the invitations, declines 10 % and leaves
//! 10 % unanswered (they time out); a connected session sends context data half the time and
//! is cancelled by one side, chosen by its SessionID, after up to half a second; a session
//! still connected 5 s later was left so by a lost cancel (docs/HARDENING.md, finding 7), and
//! the side that holds it cancels it (counted apart). When the run
//! is over no new invitation starts: each process ends what is still connected on its side
//! (a connected session whose peer's cancel was lost has nothing else to end it), waits for
//! the rest to end by themselves (invitation timeout, invitee grace, request timeout), then
//! signs its clients out; a side still live then ends with that sign-out and is counted
//! apart. A client whose connection was cut must be signed in again by the library
//! (reconnection): one left signed out for good when the run ends fails the soak.
#![cfg(feature = "xmpp")]

mod common;
#[path = "common/proxy.rs"]
mod proxy;

use common::prosody::Prosody;
use common::{Rng, APP};
use msgrpriv::error::E_FAIL;
use msgrpriv::events::{ManagerEvent, ManagerEventKind, SessionEvent, SessionEventKind};
use msgrpriv::xmpp::{Tls, XmppOptions, XmppService};
use msgrpriv::*;
use parking_lot::Mutex;
use proxy::Proxy;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const REQUEST: Duration = Duration::from_secs(2);
const INVITATION: Duration = Duration::from_secs(3);
/// The longest a session can take to end by itself once nobody acts on it: the invitee's
/// own deadline (the invitation timeout plus the library's five-second grace), a request
/// timeout for the last step's report, and a margin.
/// A connected session is cancelled within half a second by one side: one connected for
/// longer than this was left so by a lost cancel.
const STUCK: Duration = Duration::from_secs(5);
const DRAIN: Duration = Duration::from_secs(3 + 5 + 2 + 5);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Params {
    seconds: u64,
    /// Clients in each process.
    clients: usize,
    drop_per_million: u64,
    cut_every: Duration,
    seed: u64,
}

impl Params {
    fn from_env() -> Params {
        let seconds = env_u64("MSGRPRIV_SOAK_SECONDS", 600).max(1);
        let cut = env_u64("MSGRPRIV_SOAK_CUT_SECONDS", 120).min((seconds / 2).max(1));
        Params {
            seconds,
            clients: (env_u64("MSGRPRIV_SOAK_CLIENTS", 100) as usize / 2).max(1),
            drop_per_million: env_u64("MSGRPRIV_SOAK_DROP_PER_MILLION", 10_000),
            cut_every: Duration::from_secs(cut),
            seed: env_u64("MSGRPRIV_SOAK_SEED", 1),
        }
    }
}

/// Resident memory of this process, in kB (VmRSS of /proc/self/status).
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A SessionID as a number (compact bookkeeping of every session of the run).
fn sid_key(s: &Session) -> u128 {
    let hex: String = s
        .id()
        .as_str()
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect();
    u128::from_str_radix(&hex, 16).unwrap_or(0)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Inviter,
    Invitee,
}

/// Something a callback asks the driver to do (callbacks only record).
enum Todo {
    Answer(Session),
    Connected(Session, Role),
}

#[derive(Default)]
struct Book {
    /// OnTermination count of each side of each session (by SessionID and role).
    ends: HashMap<(u128, bool), u32>,
    /// Sides ended, per role and code.
    codes: BTreeMap<(String, String), u64>,
    send_errors: BTreeMap<String, u64>,
    /// OnLockEnable after the first sign-in of each client: signed in again after a loss.
    sign_ins: u64,
    todo: VecDeque<Todo>,
    /// Clients (by index) whose outgoing invitation ended.
    free: Vec<usize>,
}

type Shared = Arc<Mutex<Book>>;

fn watch(s: &Session, role: Role, client: usize, book: &Shared) {
    let key = (sid_key(s), role == Role::Inviter);
    book.lock().ends.insert(key, 0);
    for kind in [
        SessionEventKind::StateChanged,
        SessionEventKind::Termination,
        SessionEventKind::SendError,
    ] {
        let book = book.clone();
        let me = s.clone();
        // The callback holds its session: the driver detaches every session at the end.
        s.advise(kind, move |e| {
            let mut b = book.lock();
            match e {
                SessionEvent::StateChanged {
                    current: SessionState::Connected,
                    ..
                } => b.todo.push_back(Todo::Connected(me.clone(), role)),
                SessionEvent::Termination { hr, .. } => {
                    *b.ends.entry(key).or_default() += 1;
                    let code = hr.name().unwrap_or("?").to_string();
                    *b.codes.entry((format!("{role:?}"), code)).or_default() += 1;
                    if role == Role::Inviter {
                        b.free.push(client);
                    }
                }
                SessionEvent::SendError { hr } => {
                    *b.send_errors
                        .entry(hr.name().unwrap_or("?").to_string())
                        .or_default() += 1;
                }
                _ => {}
            }
        })
        .unwrap();
    }
}

struct Half {
    clients: Vec<Client>,
    managers: Vec<SessionManager>,
    /// Sessions of this process, whether this side invited, and when they ended (released
    /// some seconds after, when their count of ends is checked and forgotten: the
    /// bookkeeping stays as large as the sessions in play).
    sessions: Vec<(Session, bool, Option<Instant>)>,
    book: Shared,
    proxy: Proxy,
    svc: XmppService,
}

/// Signs in `names` through a proxy to `server` and returns them ready.
fn half(server: std::net::SocketAddr, names: &[String], p: &Params, seed: u64) -> Half {
    let proxy = Proxy::start(server);
    let creds: msgrpriv::xmpp::Credentials =
        Arc::new(|name: &str| name.split('@').next().map(|u| format!("{u}pw")));
    let mut o = XmppOptions::new(proxy.host(), proxy.port(), creds);
    o.tls = Tls::Plain;
    o.request_timeout = REQUEST;
    o.invitation_timeout = INVITATION;
    o.connect_timeout = Duration::from_secs(10);
    let svc = XmppService::new(o).unwrap();
    let book: Shared = Arc::default();
    let mut clients = Vec::new();
    let mut managers = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let c = Client::new(Arc::new(svc.clone()), n, DispatchMode::Manual).unwrap();
        let m = c.create_session_manager().unwrap();
        if i == 0 {
            m.register_application(APP, "Soak", "http://example.com/soak", "", 0)
                .unwrap();
        }
        let b = book.clone();
        m.advise(ManagerEventKind::Invitation, move |e| {
            if let ManagerEvent::Invitation {
                session, handled, ..
            } = e
            {
                *handled = true;
                watch(session, Role::Invitee, i, &b);
                b.lock().todo.push_back(Todo::Answer(session.clone()));
            }
        })
        .unwrap();
        let b = book.clone();
        m.advise(ManagerEventKind::LockEnable, move |_| {
            b.lock().sign_ins += 1
        })
        .unwrap();
        clients.push(c);
        managers.push(m);
    }
    for c in &clients {
        while c.dispatch(Some(Duration::ZERO)).unwrap() > 0 {}
    }
    book.lock().sign_ins = 0;
    // Every stanza after the sign-ins may be dropped.
    proxy.drop_randomly(p.drop_per_million, seed);
    Half {
        clients,
        managers,
        sessions: Vec::new(),
        book,
        proxy,
        svc,
    }
}

#[derive(Default, Debug)]
struct Memory {
    start: u64,
    end: u64,
    peak: u64,
    /// The RSS at each tenth of the run, in kB.
    tenths: Vec<u64>,
}

/// What one process reports.
#[derive(Default)]
struct Report {
    invitations: u64,
    sides: u64,
    bad: Vec<String>,
    ended_by_sign_out: u64,
    cancelled_in_drain: u64,
    /// Sessions this side ended after 5 s connected: left so by a lost cancel of the other
    /// side.
    stuck: u64,
    codes: BTreeMap<(String, String), u64>,
    send_errors: BTreeMap<String, u64>,
    dropped: u64,
    cuts: u64,
    sign_ins: u64,
    /// Clients not signed in when the run ended: on their way back, or for good.
    reconnecting_at_end: u64,
    signed_out_at_end: u64,
    memory: Memory,
}

/// Runs one process's half: `mine` invite `theirs` for the run, then the drain and the
/// sign-out; returns the report.
fn run(h: &mut Half, theirs: &[String], p: &Params, seed: u64, cut_offset: Duration) -> Report {
    let mut rng = Rng(seed | 1);
    let n = h.clients.len();
    let mut busy = vec![false; n];
    let mut next_try = vec![Instant::now(); n];
    // When a connected session is to be cancelled (and whether to send context data first).
    let mut to_cancel: Vec<(Instant, Session, bool)> = Vec::new();
    // When each session of this process connected.
    let mut connected_at: HashMap<u128, Instant> = HashMap::new();
    let mut rep = Report::default();
    let start = Instant::now();
    let end = start + Duration::from_secs(p.seconds);
    let mut next_cut = start + cut_offset;
    let mut next_sample = start;
    let tenth = Duration::from_secs(p.seconds).max(Duration::from_secs(10)) / 10;
    let mut next_tenth = start + tenth;
    let warm = start + Duration::from_secs(p.seconds / 5).min(Duration::from_secs(30));
    let mut draining_since: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if draining_since.is_none() && now >= end {
            draining_since = Some(now);
            rep.memory.end = rss_kb();
            for c in &h.clients {
                match c.connection_state().0 {
                    ConnectionState::SignedIn => {}
                    ConnectionState::Reconnecting => rep.reconnecting_at_end += 1,
                    _ => rep.signed_out_at_end += 1,
                }
            }
            // Whatever is connected on this side ends now.
            for (s, _, _) in &h.sessions {
                if matches!(s.state(), SessionState::Connected) && s.cancel(E_FAIL, None).is_ok() {
                    rep.cancelled_in_drain += 1;
                }
            }
        }
        if let Some(since) = draining_since {
            let live = h.clients.iter().map(|c| c.live_sessions()).sum::<usize>();
            if live == 0 || now.duration_since(since) > DRAIN {
                break;
            }
        }
        let mut work = 0;
        for c in &h.clients {
            work += c.dispatch(Some(Duration::ZERO)).unwrap();
        }
        let todo: Vec<Todo> = {
            let mut b = h.book.lock();
            for i in std::mem::take(&mut b.free) {
                busy[i] = false;
                next_try[i] = now + Duration::from_millis(rng.below(200));
            }
            b.todo.drain(..).collect()
        };
        for t in todo {
            work += 1;
            match t {
                Todo::Answer(s) => {
                    let r = rng.below(10);
                    let _ = if r < 8 {
                        s.accept(None)
                    } else if r < 9 {
                        s.decline(None)
                    } else {
                        Ok(())
                    };
                    h.sessions.push((s, false, None));
                }
                Todo::Connected(s, role) => {
                    connected_at.insert(sid_key(&s), now);
                    // One side cancels, chosen by the SessionID.
                    let mine = (sid_key(&s) & 1 == 0) == (role == Role::Inviter);
                    if mine && draining_since.is_none() {
                        let at = now + Duration::from_millis(rng.below(500));
                        to_cancel.push((at, s, rng.below(2) == 0));
                    } else if mine {
                        let _ = s.cancel(E_FAIL, None);
                    }
                }
            }
        }
        let mut i = 0;
        while i < to_cancel.len() {
            if to_cancel[i].0 <= now {
                let (_, s, ctx) = to_cancel.swap_remove(i);
                if ctx {
                    let _ = s.send_context_data("soak");
                }
                let _ = s.cancel(E_FAIL, Some("done"));
                work += 1;
            } else {
                i += 1;
            }
        }
        if draining_since.is_none() {
            for (i, c) in h.clients.iter().enumerate() {
                // A client whose connection was cut is signed in again by the library.
                if !c.is_signed_in() || busy[i] || next_try[i] > now {
                    continue;
                }
                let peer = &theirs[rng.below(theirs.len() as u64) as usize];
                next_try[i] = now + Duration::from_millis(50);
                if h.svc.online(peer).is_none() {
                    continue;
                }
                let Ok(s) = h.managers[i].create_session() else {
                    continue;
                };
                if s.set_application(APP).is_err() {
                    continue;
                }
                watch(&s, Role::Inviter, i, &h.book);
                if s.invite(peer, None).is_ok() {
                    rep.invitations += 1;
                    busy[i] = true;
                } else {
                    h.book.lock().ends.remove(&(sid_key(&s), true));
                }
                h.sessions.push((s, true, None));
            }
            if now >= next_cut {
                next_cut = now + p.cut_every;
                h.proxy.cut_one(|live| rng.below(live as u64) as usize);
            }
        }
        // Ended sessions are released a while after their end (a second OnTermination
        // would still be seen until then).
        h.sessions.retain_mut(|(s, inviter, ended)| match ended {
            None => {
                if s.state().is_terminal() || s.state() == SessionState::Ready {
                    *ended = Some(now);
                }
                true
            }
            Some(t) if now.duration_since(*t) > Duration::from_secs(5) => {
                let sid = sid_key(s);
                connected_at.remove(&sid);
                s.detach();
                if let Some(count) = h.book.lock().ends.remove(&(sid, *inviter)) {
                    rep.sides += 1;
                    if count != 1 {
                        let role = if *inviter { "inviter" } else { "invitee" };
                        rep.bad
                            .push(format!("{sid:032X} {role} ended {count} times"));
                    }
                }
                false
            }
            Some(_) => true,
        });
        if now >= next_sample {
            next_sample = now + Duration::from_secs(1);
            // A session connected for over 5 s was left so by a lost cancel of the other
            // side (HARDENING finding 7): this side ends it, as an application would.
            for (s, _, _) in &h.sessions {
                if s.state() == SessionState::Connected
                    && connected_at
                        .get(&sid_key(s))
                        .is_some_and(|t| now.duration_since(*t) > STUCK)
                    && s.cancel(E_FAIL, Some("stuck")).is_ok()
                {
                    rep.stuck += 1;
                }
            }
            let kb = rss_kb();
            if now >= warm && rep.memory.start == 0 {
                rep.memory.start = kb;
            }
            rep.memory.peak = rep.memory.peak.max(kb);
            if now >= next_tenth && draining_since.is_none() {
                next_tenth += tenth;
                rep.memory.tenths.push(kb);
            }
        }
        if work == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // Whatever is still live ends with the sign-out.
    let live: u64 = h.clients.iter().map(|c| c.live_sessions() as u64).sum();
    rep.ended_by_sign_out = live;
    for c in &h.clients {
        let _ = c.sign_out();
    }
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_millis(500) {
        for c in &h.clients {
            c.dispatch(Some(Duration::ZERO)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    for (s, _, _) in h.sessions.drain(..) {
        s.detach();
    }
    let b = h.book.lock();
    for (&(sid, inviter), &count) in &b.ends {
        rep.sides += 1;
        if count != 1 {
            let role = if inviter { "inviter" } else { "invitee" };
            rep.bad
                .push(format!("{sid:032X} {role} ended {count} times"));
        }
    }
    rep.codes = b.codes.clone();
    rep.send_errors = b.send_errors.clone();
    rep.sign_ins = b.sign_ins;
    rep.dropped = h.proxy.randomly_dropped();
    rep.cuts = h.proxy.cuts();
    if rep.memory.start == 0 {
        rep.memory.start = rss_kb();
    }
    rep
}

/// The report as "key value" lines (the child prints them; the parent reads them back).
fn lines_of(r: &Report) -> Vec<String> {
    let mut out = vec![
        format!("invitations {}", r.invitations),
        format!("sides {}", r.sides),
        format!("ended_by_sign_out {}", r.ended_by_sign_out),
        format!("cancelled_in_drain {}", r.cancelled_in_drain),
        format!("stuck {}", r.stuck),
        format!("dropped {}", r.dropped),
        format!("cuts {}", r.cuts),
        format!("sign_ins {}", r.sign_ins),
        format!("reconnecting_at_end {}", r.reconnecting_at_end),
        format!("signed_out_at_end {}", r.signed_out_at_end),
        format!(
            "memory {} {} {}",
            r.memory.start, r.memory.end, r.memory.peak
        ),
        format!(
            "tenths {}",
            r.memory
                .tenths
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        ),
    ];
    for ((role, code), n) in &r.codes {
        out.push(format!("code {role} {code} {n}"));
    }
    for (code, n) in &r.send_errors {
        out.push(format!("send_error {code} {n}"));
    }
    for b in &r.bad {
        out.push(format!("bad {b}"));
    }
    out
}

fn parse_report(lines: &[String]) -> Report {
    let mut r = Report::default();
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        match f.first().copied() {
            Some("invitations") => r.invitations = num(1),
            Some("sides") => r.sides = num(1),
            Some("ended_by_sign_out") => r.ended_by_sign_out = num(1),
            Some("cancelled_in_drain") => r.cancelled_in_drain = num(1),
            Some("stuck") => r.stuck = num(1),
            Some("dropped") => r.dropped = num(1),
            Some("cuts") => r.cuts = num(1),
            Some("sign_ins") => r.sign_ins = num(1),
            Some("reconnecting_at_end") => r.reconnecting_at_end = num(1),
            Some("signed_out_at_end") => r.signed_out_at_end = num(1),
            Some("memory") => {
                r.memory.start = num(1);
                r.memory.end = num(2);
                r.memory.peak = num(3);
            }
            Some("tenths") => r.memory.tenths = (1..f.len()).map(num).collect(),
            Some("code") => {
                r.codes.insert((f[1].to_string(), f[2].to_string()), num(3));
            }
            Some("send_error") => {
                r.send_errors.insert(f[1].to_string(), num(2));
            }
            Some("bad") => r.bad.push(f[1..].join(" ")),
            _ => {}
        }
    }
    r
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}@localhost")).collect()
}

/// The second process: signs in its clients, says "ready", waits for "go" on its standard
/// input, runs, prints its report as "SOAK:<line>" lines. Does nothing without
/// MSGRPRIV_SOAK_SERVER.
#[test]
#[ignore = "the soak's second process (scripts/soak-xmpp.sh)"]
fn soak_peer() {
    let Ok(server) = std::env::var("MSGRPRIV_SOAK_SERVER") else {
        return;
    };
    let p = Params::from_env();
    let say = |l: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "\nSOAK:{l}");
        let _ = out.flush();
    };
    let mine = names("c", p.clients);
    let theirs = names("p", p.clients);
    let mut h = half(
        server.parse().unwrap(),
        &mine,
        &p,
        p.seed.wrapping_mul(31) + 7,
    );
    say("ready");
    let mut go = String::new();
    let _ = std::io::stdin().lock().read_line(&mut go);
    if go.trim() != "go" {
        // The first process is gone.
        return;
    }
    // The first process keeps this process's standard input open until it has the report:
    // its end (a failed test, a kill) ends this process too.
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let finished = finished.clone();
        std::thread::spawn(move || {
            let mut rest = String::new();
            while std::io::stdin().lock().read_line(&mut rest).unwrap_or(0) > 0 {
                rest.clear();
            }
            if !finished.load(std::sync::atomic::Ordering::SeqCst) {
                std::process::exit(3);
            }
        });
    }
    // The child's cuts fall between the parent's.
    let offset = p.cut_every + p.cut_every / 2;
    let r = run(&mut h, &theirs, &p, p.seed.wrapping_mul(17) + 3, offset);
    for l in lines_of(&r) {
        say(&l);
    }
    finished.store(true, std::sync::atomic::Ordering::SeqCst);
    say("done");
    for c in &h.clients {
        c.destroy();
    }
}

fn print_report(who: &str, r: &Report) {
    println!(
        "soak [{who}]: invitations sent {}, session sides {}, ended by the final sign-out {}, \
         cancelled in the drain {}, cancelled by this side after 5 s connected (the other \
         side's cancel was lost) {}",
        r.invitations, r.sides, r.ended_by_sign_out, r.cancelled_in_drain, r.stuck
    );
    for ((role, code), n) in &r.codes {
        println!("soak [{who}]:   ended, {role} side, {code}: {n}");
    }
    for (code, n) in &r.send_errors {
        println!("soak [{who}]:   OnSendError {code}: {n}");
    }
    println!(
        "soak [{who}]: stanzas dropped {}, connections cut {}, signed in again {} times \
         (OnLockEnable); at the end of the run {} clients reconnecting, {} signed out",
        r.dropped, r.cuts, r.sign_ins, r.reconnecting_at_end, r.signed_out_at_end
    );
    println!(
        "soak [{who}]: RSS start {} kB, end {} kB, peak {} kB; at each tenth of the run: {:?}",
        r.memory.start, r.memory.end, r.memory.peak, r.memory.tenths
    );
}

#[test]
#[ignore = "a soak: scripts/soak-xmpp.sh runs it"]
fn soak() {
    let p = Params::from_env();
    let all: Vec<(String, String)> = ["p", "c"]
        .iter()
        .flat_map(|x| (0..p.clients).map(move |i| (format!("{x}{i}"), format!("{x}{i}pw"))))
        .collect();
    let users: Vec<(&str, &str)> = all.iter().map(|(u, w)| (u.as_str(), w.as_str())).collect();
    let server = Prosody::start(&users);
    println!(
        "soak: {} clients ({} in each of two processes), {} s, {} per million stanzas \
         dropped, one connection cut every {} s in each process",
        2 * p.clients,
        p.clients,
        p.seconds,
        p.drop_per_million,
        p.cut_every.as_secs()
    );
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "soak_peer", "--ignored", "--nocapture"])
        .args(["--test-threads=1"])
        .env("MSGRPRIV_SOAK_SERVER", server.addr.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the second process starts");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if let Some(i) = l.find("SOAK:") {
                if tx.send(l[i + 5..].to_string()).is_err() {
                    break;
                }
            }
        }
    });
    let mine = names("p", p.clients);
    let theirs = names("c", p.clients);
    let mut h = half(server.addr, &mine, &p, p.seed);
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(l) if l == "ready" => {}
        other => {
            let _ = child.kill();
            panic!("the second process did not start: {other:?}");
        }
    }
    // Kept open until the report is in: the second process ends if this one does.
    let mut go = child.stdin.take().unwrap();
    go.write_all(b"go\n").expect("the second process listens");
    let t0 = Instant::now();
    let mine_report = run(&mut h, &theirs, &p, p.seed, p.cut_every);
    // The second process finishes at about the same time.
    let mut theirs_lines = Vec::new();
    let bound = Duration::from_secs(60) + DRAIN;
    loop {
        match rx.recv_timeout(bound) {
            Ok(l) if l == "done" => break,
            Ok(l) => theirs_lines.push(l),
            Err(_) => {
                let _ = child.kill();
                panic!("the second process did not finish");
            }
        }
    }
    drop(go);
    let status = {
        let start = Instant::now();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    for c in &h.clients {
        c.destroy();
    }
    let theirs_report = parse_report(&theirs_lines);
    print_report("process 1", &mine_report);
    print_report("process 2", &theirs_report);
    let sessions = mine_report.invitations + theirs_report.invitations;
    let sides = mine_report.sides + theirs_report.sides;
    println!(
        "soak: {sessions} sessions started in {:.0} s, {sides} sides counted, each ended \
         exactly once: {}",
        t0.elapsed().as_secs_f64(),
        if mine_report.bad.is_empty() && theirs_report.bad.is_empty() {
            "yes"
        } else {
            "NO"
        }
    );
    let bad: Vec<&String> = mine_report.bad.iter().chain(&theirs_report.bad).collect();
    assert!(
        bad.is_empty(),
        "sides that did not end exactly once: {bad:#?}"
    );
    assert!(status.success(), "the second process failed: {status}");
    assert_eq!(
        mine_report.signed_out_at_end + theirs_report.signed_out_at_end,
        0,
        "clients the library did not sign in again after a cut"
    );
    assert!(sessions > 0, "no session started");
    // Memory: on a long run, flat over its second half (caches and pools fill during the
    // first): the RSS at the end within a tenth plus 4 MB of the RSS half-way.
    if p.seconds >= 300 {
        for (who, r) in [("process 1", &mine_report), ("process 2", &theirs_report)] {
            let half = r.memory.tenths.get(4).copied().unwrap_or(r.memory.start);
            let end = r.memory.end;
            assert!(
                end <= half + half / 10 + 4 * 1024,
                "{who}: RSS grew from {half} kB half-way to {end} kB at the end \
                 (each tenth: {:?})",
                r.memory.tenths
            );
        }
    }
}
