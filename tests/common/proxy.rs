//! A fault proxy for the XMPP tests: plain TCP on 127.0.0.1 between clients and a server,
//! which the test tells to cut connections (and refuse new ones), delay or blackhole the
//! traffic, and drop, duplicate or hold back whole stanzas of one direction.
//!
//! Each accepted connection gets its own connection to the server and two threads, one per
//! direction. A direction cuts its bytes into top-level pieces of the XML stream
//! ([`Splitter`]): the XML declaration and the stream header, stanzas (every child of the
//! stream: `<iq>`, `<presence>`, `<message>`, and the `<stream:features>`, SASL and error
//! elements), the whitespace between them and the stream's end tag. The stanza rules act on
//! stanzas only; the rest passes untouched. A direction whose bytes stop making sense as
//! XMPP (a comment, CDATA, text at the top level) forwards everything from then on as it
//! comes.
//!
//! Every wait is bounded: reads time out every [`POLL`] to look at the controls, a held
//! stanza goes on after its rule's bound ([`HOLD_MAX`] by default), and dropping the proxy closes every
//! connection and ends its threads.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often an idle direction looks at the controls.
pub const POLL: Duration = Duration::from_millis(20);
/// The longest a held stanza waits for the next one of its direction.
pub const HOLD_MAX: Duration = Duration::from_secs(2);

/// One top-level piece of an XMPP stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// `<?xml ...?>` or the stream's start tag `<stream:stream ...>` (a stream restart
    /// after SASL sends both again).
    Header(Vec<u8>),
    /// A whole child element of the stream, with its name (`iq`, `stream:features`, ...).
    Stanza { name: String, bytes: Vec<u8> },
    /// White space between stanzas (keep-alives).
    Space(Vec<u8>),
    /// The stream's end tag.
    Close(Vec<u8>),
}

impl Piece {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Piece::Header(b) | Piece::Space(b) | Piece::Close(b) => b,
            Piece::Stanza { bytes, .. } => bytes,
        }
    }
}

/// The bytes are not an XMPP stream this splitter understands.
#[derive(Debug, PartialEq, Eq)]
pub struct NotXmpp(pub &'static str);

/// Cuts an XMPP stream (RFC 6120: no comments, processing instructions other than the XML
/// declaration, DTDs or CDATA) into [`Piece`]s. It only looks for tag boundaries: '<' never
/// occurs in character data or attribute values (XML forbids it there), '>' may occur in
/// both and counts only outside a quoted attribute value. Bytes of a multi-byte UTF-8
/// character are all over 0x7F, so the scan works on bytes.
///
/// rxml (in Cargo.lock through minidom) parses one XML document: an XMPP stream restarts
/// inside the same connection (a new `<?xml?>` and `<stream:stream>` after SASL), which it
/// refuses, and the proxy needs byte ranges rather than events.
#[derive(Default)]
pub struct Splitter {
    buf: Vec<u8>,
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The end (index of '>') of the tag that starts at `start` ('<'), skipping quoted
/// attribute values; None when the tag is not complete yet.
fn tag_end(b: &[u8], start: usize) -> Result<Option<usize>, NotXmpp> {
    let mut quote = None;
    for (i, &c) in b.iter().enumerate().skip(start + 1) {
        match (quote, c) {
            (None, b'"' | b'\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (Some(_), b'<') | (None, b'<') => return Err(NotXmpp("'<' inside a tag")),
            (None, b'>') => return Ok(Some(i)),
            _ => {}
        }
    }
    Ok(None)
}

/// The element name of the start or end tag at `start`.
fn tag_name(b: &[u8], start: usize) -> String {
    let from = start
        + if b.get(start + 1) == Some(&b'/') {
            2
        } else {
            1
        };
    let len = b[from..]
        .iter()
        .position(|c| c.is_ascii_whitespace() || *c == b'/' || *c == b'>')
        .unwrap_or(b.len() - from);
    String::from_utf8_lossy(&b[from..from + len]).into_owned()
}

fn is_stream_header(name: &str) -> bool {
    name == "stream" || name.ends_with(":stream")
}

impl Splitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes taken but not yet cut into a piece.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// Takes the bytes not yet cut (after an error, to forward them as they are).
    pub fn take_pending(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// The next complete piece, None when more bytes are needed.
    pub fn next_piece(&mut self) -> Result<Option<Piece>, NotXmpp> {
        let Some((len, kind)) = Self::scan(&self.buf)? else {
            return Ok(None);
        };
        let bytes: Vec<u8> = self.buf.drain(..len).collect();
        Ok(Some(match kind {
            Kind::Header => Piece::Header(bytes),
            Kind::Space => Piece::Space(bytes),
            Kind::Close => Piece::Close(bytes),
            Kind::Stanza(name) => Piece::Stanza { name, bytes },
        }))
    }

    fn scan(b: &[u8]) -> Result<Option<(usize, Kind)>, NotXmpp> {
        let Some(&first) = b.first() else {
            return Ok(None);
        };
        if first.is_ascii_whitespace() {
            let n = b
                .iter()
                .position(|c| !c.is_ascii_whitespace())
                .unwrap_or(b.len());
            return Ok(Some((n, Kind::Space)));
        }
        if first != b'<' {
            return Err(NotXmpp("text at the top level"));
        }
        match b.get(1) {
            None => return Ok(None),
            Some(b'?') => return Ok(find(b, 2, b"?>").map(|i| (i + 2, Kind::Header))),
            Some(b'!') => return Err(NotXmpp("a comment, CDATA or DTD")),
            Some(b'/') => return Ok(tag_end(b, 0)?.map(|i| (i + 1, Kind::Close))),
            _ => {}
        }
        let name = tag_name(b, 0);
        let mut depth = 0usize;
        let mut i = 0;
        loop {
            // `i` is at a '<'.
            match b.get(i + 1) {
                None => return Ok(None),
                Some(b'?') | Some(b'!') => return Err(NotXmpp("markup inside a stanza")),
                Some(b'/') => {
                    let Some(end) = tag_end(b, i)? else {
                        return Ok(None);
                    };
                    depth = depth
                        .checked_sub(1)
                        .ok_or(NotXmpp("an unmatched end tag"))?;
                    if depth == 0 {
                        return Ok(Some((end + 1, Kind::Stanza(name))));
                    }
                    i = end + 1;
                }
                Some(_) => {
                    let Some(end) = tag_end(b, i)? else {
                        return Ok(None);
                    };
                    let self_closing = b[end - 1] == b'/';
                    if depth == 0 && is_stream_header(&name) {
                        return Ok(Some((end + 1, Kind::Header)));
                    }
                    if self_closing {
                        if depth == 0 {
                            return Ok(Some((end + 1, Kind::Stanza(name))));
                        }
                    } else {
                        depth += 1;
                    }
                    i = end + 1;
                }
            }
            // Character data up to the next tag.
            match b[i..].iter().position(|&c| c == b'<') {
                Some(p) => i += p,
                None => return Ok(None),
            }
        }
    }
}

enum Kind {
    Header,
    Space,
    Close,
    Stanza(String),
}

/// A direction of the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// From the client to the server.
    Up,
    /// From the server to the client.
    Down,
}

/// Which stanzas a rule matches: a test on the stanza's text.
pub type Pred = Box<dyn Fn(&str) -> bool + Send>;

/// What a rule does to the stanzas it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Drop,
    Duplicate,
    /// Held back, then sent after the next stanza of its direction (or after the duration).
    Hold(Duration),
    /// Passed on, and counted.
    Watch,
}

struct Rule {
    dir: Dir,
    pred: Pred,
    action: Action,
    remaining: usize,
    /// How many stanzas the rule acted on, shared with its [`RuleHandle`].
    fired: Arc<AtomicUsize>,
}

/// Counts the stanzas a rule acted on.
#[derive(Clone)]
pub struct RuleHandle(Arc<AtomicUsize>);

impl RuleHandle {
    pub fn fired(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// Waits (at most `bound`) until the rule has acted on `n` stanzas.
    pub fn wait(&self, n: usize, bound: Duration) -> bool {
        let start = Instant::now();
        while self.fired() < n {
            if start.elapsed() > bound {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }
}

/// Drops a share of the stanzas of established connections (after the client's first
/// presence), both directions.
struct RandomDrop {
    per_million: u64,
    rng: u64,
}

struct Controls {
    rules: Vec<Rule>,
    random: Option<RandomDrop>,
    delay: Duration,
}

/// A live connection, as the proxy controls it.
struct Conn {
    id: u64,
    client: TcpStream,
    server: TcpStream,
}

struct Shared {
    stop: AtomicBool,
    refuse: AtomicBool,
    blackhole: AtomicBool,
    controls: Mutex<Controls>,
    conns: Mutex<Vec<Conn>>,
    next_id: AtomicU64,
    /// Stanzas dropped by the random share.
    randomly_dropped: AtomicU64,
    accepted: AtomicU64,
    cuts: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// The proxy: listens on 127.0.0.1 (a free port) and forwards to `upstream`.
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the proxy listens");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            refuse: AtomicBool::new(false),
            blackhole: AtomicBool::new(false),
            controls: Mutex::new(Controls {
                rules: Vec::new(),
                random: None,
                delay: Duration::ZERO,
            }),
            conns: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            randomly_dropped: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
        });
        let sh = Arc::clone(&shared);
        let acceptor = std::thread::Builder::new()
            .name("proxy-accept".into())
            .spawn(move || accept_loop(listener, upstream, sh))
            .unwrap();
        Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The proxy's IP address, as a host option.
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Closes every live connection (both ends, at once).
    pub fn cut(&self) {
        let conns: Vec<Conn> = std::mem::take(&mut *self.shared.conns.lock().unwrap());
        for c in &conns {
            close(c);
        }
        self.shared
            .cuts
            .fetch_add(conns.len() as u64, Ordering::SeqCst);
    }

    /// Closes one live connection chosen by `pick` (from the number of live connections);
    /// false when none is live.
    pub fn cut_one(&self, pick: impl FnOnce(usize) -> usize) -> bool {
        let mut conns = self.shared.conns.lock().unwrap();
        if conns.is_empty() {
            return false;
        }
        let i = pick(conns.len()) % conns.len();
        let c = conns.swap_remove(i);
        drop(conns);
        close(&c);
        self.shared.cuts.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// While true, a new connection is closed as soon as it is accepted.
    pub fn refuse(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::SeqCst);
    }

    /// While true, nothing is forwarded (what arrives is read and thrown away) and nothing
    /// is closed.
    pub fn blackhole(&self, on: bool) {
        self.shared.blackhole.store(on, Ordering::SeqCst);
    }

    /// Every piece waits `d` before it goes on (both directions).
    pub fn delay(&self, d: Duration) {
        self.shared.controls.lock().unwrap().delay = d;
    }

    fn rule(&self, dir: Dir, n: usize, action: Action, pred: Pred) -> RuleHandle {
        let fired = Arc::new(AtomicUsize::new(0));
        self.shared.controls.lock().unwrap().rules.push(Rule {
            dir,
            pred,
            action,
            remaining: n,
            fired: Arc::clone(&fired),
        });
        RuleHandle(fired)
    }

    /// Counts the next `n` stanzas of `dir` that `pred` matches as they pass (to wait for a
    /// stanza to have gone through).
    pub fn watch_next(
        &self,
        dir: Dir,
        n: usize,
        pred: impl Fn(&str) -> bool + Send + 'static,
    ) -> RuleHandle {
        self.rule(dir, n, Action::Watch, Box::new(pred))
    }

    /// Drops the next `n` stanzas of `dir` that `pred` matches.
    pub fn drop_next(
        &self,
        dir: Dir,
        n: usize,
        pred: impl Fn(&str) -> bool + Send + 'static,
    ) -> RuleHandle {
        self.rule(dir, n, Action::Drop, Box::new(pred))
    }

    /// Sends the next `n` stanzas of `dir` that `pred` matches twice.
    pub fn duplicate_next(
        &self,
        dir: Dir,
        n: usize,
        pred: impl Fn(&str) -> bool + Send + 'static,
    ) -> RuleHandle {
        self.rule(dir, n, Action::Duplicate, Box::new(pred))
    }

    /// Holds the next stanza of `dir` that `pred` matches until the stanza after it in that
    /// direction has gone on (the two swap places), or `max` has passed (at most
    /// [`HOLD_MAX`] when `max` is zero).
    pub fn hold_next(
        &self,
        dir: Dir,
        max: Duration,
        pred: impl Fn(&str) -> bool + Send + 'static,
    ) -> RuleHandle {
        let max = if max.is_zero() { HOLD_MAX } else { max };
        self.rule(dir, 1, Action::Hold(max), Box::new(pred))
    }

    /// Drops `per_million` of every million stanzas of established connections (after the
    /// client's first presence), both directions, chosen by a generator seeded with `seed`.
    pub fn drop_randomly(&self, per_million: u64, seed: u64) {
        self.shared.controls.lock().unwrap().random = Some(RandomDrop {
            per_million,
            rng: seed | 1,
        });
    }

    /// Stanzas dropped by [`Proxy::drop_randomly`] so far.
    pub fn randomly_dropped(&self) -> u64 {
        self.shared.randomly_dropped.load(Ordering::SeqCst)
    }

    /// Connections accepted so far (refused ones included).
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections closed by [`Proxy::cut`] and [`Proxy::cut_one`] so far.
    pub fn cuts(&self) -> u64 {
        self.shared.cuts.load(Ordering::SeqCst)
    }

    /// Connections live now.
    pub fn live(&self) -> usize {
        self.shared.conns.lock().unwrap().len()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.cut();
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
        let threads = std::mem::take(&mut *self.shared.threads.lock().unwrap());
        for h in threads {
            let _ = h.join();
        }
    }
}

fn close(c: &Conn) {
    let _ = c.client.shutdown(Shutdown::Both);
    let _ = c.server.shutdown(Shutdown::Both);
}

fn accept_loop(listener: TcpListener, upstream: SocketAddr, sh: Arc<Shared>) {
    while !sh.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(_) => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        sh.accepted.fetch_add(1, Ordering::SeqCst);
        let _ = client.set_nonblocking(false);
        if sh.refuse.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(2)) else {
            // The server is down: the client sees its connection closed.
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let id = sh.next_id.fetch_add(1, Ordering::SeqCst);
        let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
            client.try_clone(),
            server.try_clone(),
            client.try_clone(),
            server.try_clone(),
        ) else {
            continue;
        };
        sh.conns.lock().unwrap().push(Conn { id, client, server });
        let established = Arc::new(AtomicBool::new(false));
        let mut threads = sh.threads.lock().unwrap();
        // Threads of connections that ended are joined as new ones come.
        threads.retain(|h| !h.is_finished());
        for (dir, from, to) in [(Dir::Up, c2, s2), (Dir::Down, s3, c3)] {
            let sh = Arc::clone(&sh);
            let established = Arc::clone(&established);
            let h = std::thread::Builder::new()
                .name(format!("proxy-{id}-{dir:?}"))
                .spawn(move || {
                    pump(&sh, dir, from, to, &established);
                    sh.conns.lock().unwrap().retain(|c| {
                        if c.id == id {
                            close(c);
                        }
                        c.id != id
                    });
                })
                .unwrap();
            threads.push(h);
        }
    }
}

/// What the rules make of one stanza.
enum Verdict {
    Pass,
    Drop,
    Duplicate,
    Hold(Duration),
}

fn judge(sh: &Shared, dir: Dir, name: &str, bytes: &[u8], established: bool) -> Verdict {
    let mut ctl = sh.controls.lock().unwrap();
    let text = String::from_utf8_lossy(bytes);
    if let Some(i) = ctl
        .rules
        .iter()
        .position(|r| r.dir == dir && r.remaining > 0 && (r.pred)(&text))
    {
        let r = &mut ctl.rules[i];
        r.remaining -= 1;
        r.fired.fetch_add(1, Ordering::SeqCst);
        let action = r.action;
        if r.remaining == 0 {
            ctl.rules.remove(i);
        }
        return match action {
            Action::Drop => Verdict::Drop,
            Action::Duplicate => Verdict::Duplicate,
            Action::Hold(max) => Verdict::Hold(max),
            Action::Watch => Verdict::Pass,
        };
    }
    let stanza = matches!(name, "iq" | "presence" | "message");
    if let (true, true, Some(r)) = (established, stanza, ctl.random.as_mut()) {
        r.rng ^= r.rng >> 12;
        r.rng ^= r.rng << 25;
        r.rng ^= r.rng >> 27;
        let x = r.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        if x % 1_000_000 < r.per_million {
            sh.randomly_dropped.fetch_add(1, Ordering::SeqCst);
            return Verdict::Drop;
        }
    }
    Verdict::Pass
}

/// One direction of one connection: reads, cuts into pieces, applies the controls, writes.
fn pump(sh: &Shared, dir: Dir, mut from: TcpStream, mut to: TcpStream, established: &AtomicBool) {
    let _ = from.set_read_timeout(Some(POLL));
    let mut splitter = Splitter::new();
    let mut raw = false;
    // Pieces waiting for their time (the delay), in order.
    let mut line: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    // A held stanza and when it goes on at the latest.
    let mut held: Option<(Instant, Vec<u8>)> = None;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if sh.stop.load(Ordering::SeqCst) {
            return;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => 0,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let now = Instant::now();
        let delay = sh.controls.lock().unwrap().delay;
        if n > 0 && !sh.blackhole.load(Ordering::SeqCst) {
            let mut out: Vec<Vec<u8>> = Vec::new();
            if raw {
                out.push(buf[..n].to_vec());
            } else {
                splitter.push(&buf[..n]);
                loop {
                    match splitter.next_piece() {
                        Ok(None) => break,
                        Ok(Some(Piece::Stanza { name, bytes })) => {
                            if dir == Dir::Up && name == "presence" {
                                established.store(true, Ordering::SeqCst);
                            }
                            let est = established.load(Ordering::SeqCst);
                            match judge(sh, dir, &name, &bytes, est) {
                                Verdict::Drop => continue,
                                Verdict::Hold(max) if held.is_none() => {
                                    held = Some((now + max, bytes));
                                    continue;
                                }
                                Verdict::Duplicate => {
                                    out.push(bytes.clone());
                                    out.push(bytes);
                                }
                                Verdict::Pass | Verdict::Hold(_) => out.push(bytes),
                            }
                            // A stanza went on after the held one: the held one follows it.
                            if let Some((_, h)) = held.take() {
                                out.push(h);
                            }
                        }
                        Ok(Some(p)) => out.push(p.bytes().to_vec()),
                        Err(_) => {
                            raw = true;
                            out.push(splitter.take_pending());
                            break;
                        }
                    }
                }
            }
            for b in out {
                line.push_back((now + delay, b));
            }
        } else if n > 0 && !raw {
            // Blackholed: the bytes are gone; a stanza cut in two must not confuse the next.
            splitter.take_pending();
        }
        if let Some((until, _)) = &held {
            if *until <= Instant::now() {
                let (_, h) = held.take().unwrap();
                line.push_back((Instant::now() + delay, h));
            }
        }
        while line.front().is_some_and(|(due, _)| *due <= Instant::now()) {
            let (_, b) = line.pop_front().unwrap();
            if to.write_all(&b).is_err() {
                return;
            }
        }
        // Wait for the next piece that is due, reading meanwhile.
        let wait = line
            .front()
            .map(|(due, _)| due.saturating_duration_since(Instant::now()))
            .unwrap_or(POLL)
            .clamp(Duration::from_millis(1), POLL);
        let _ = from.set_read_timeout(Some(wait));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(input: &[&[u8]]) -> Vec<Piece> {
        let mut s = Splitter::new();
        let mut out = Vec::new();
        for chunk in input {
            s.push(chunk);
            while let Some(p) = s.next_piece().unwrap() {
                out.push(p);
            }
        }
        assert!(s.pending().is_empty(), "left: {:?}", s.pending());
        out
    }

    fn stanza(name: &str, text: &str) -> Piece {
        Piece::Stanza {
            name: name.into(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    const STREAM: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

    fn whole(text: &str) -> Vec<Piece> {
        pieces(&[text.as_bytes()])
    }

    #[test]
    fn a_stream_is_cut_at_its_top_level() {
        let iq = "<iq type='set' id='m1'><jingle xmlns='urn:xmpp:jingle:1' \
                  action='session-info' sid='s'><context>a &gt; b</context></jingle></iq>";
        let text = format!("{STREAM}<presence/>\n {iq}<r a=\"x\"/></stream:stream>");
        let got = whole(&text);
        assert_eq!(
            got,
            vec![
                Piece::Header(b"<?xml version='1.0'?>".to_vec()),
                Piece::Header(STREAM.as_bytes()[21..].to_vec()),
                stanza("presence", "<presence/>"),
                Piece::Space(b"\n ".to_vec()),
                stanza("iq", iq),
                stanza("r", "<r a=\"x\"/>"),
                Piece::Close(b"</stream:stream>".to_vec()),
            ]
        );
        // Byte by byte, the same pieces (white space may come in several).
        let bytes: Vec<&[u8]> = text.as_bytes().chunks(1).collect();
        let mut merged: Vec<Piece> = Vec::new();
        for p in pieces(&bytes) {
            match (merged.last_mut(), p) {
                (Some(Piece::Space(a)), Piece::Space(b)) => a.extend(b),
                (_, p) => merged.push(p),
            }
        }
        assert_eq!(merged, got);
    }

    #[test]
    fn quoted_attribute_values_may_hold_a_greater_than_sign() {
        let s = "<message to='a@b' x=\"1>2\" y='/>'><body>x > y</body></message>";
        assert_eq!(whole(s), vec![stanza("message", s)]);
        let selfclosing = "<presence id='a>b/'/>";
        assert_eq!(whole(selfclosing), vec![stanza("presence", selfclosing)]);
    }

    #[test]
    fn nested_elements_of_the_same_name_and_prefixes() {
        let s = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
                 <mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms>\
                 <x><x><x/></x></x></stream:features>";
        assert_eq!(whole(s), vec![stanza("stream:features", s)]);
    }

    #[test]
    fn a_stream_restart_and_multibyte_text() {
        let s = format!(
            "{STREAM}<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>{STREAM}\
             <iq id='é'><q>ünïcödé ✓</q></iq>"
        );
        let got = whole(&s);
        let names: Vec<&str> = got
            .iter()
            .map(|p| match p {
                Piece::Header(_) => "H",
                Piece::Stanza { name, .. } => name,
                Piece::Space(_) => "_",
                Piece::Close(_) => "/",
            })
            .collect();
        assert_eq!(names, ["H", "H", "success", "H", "H", "iq"]);
    }

    #[test]
    fn an_incomplete_stanza_waits_for_more() {
        let mut s = Splitter::new();
        s.push(b"<iq id='a'><q>text");
        assert_eq!(s.next_piece(), Ok(None));
        s.push(b"</q></i");
        assert_eq!(s.next_piece(), Ok(None));
        s.push(b"q><pres");
        assert_eq!(
            s.next_piece(),
            Ok(Some(stanza("iq", "<iq id='a'><q>text</q></iq>")))
        );
        assert_eq!(s.next_piece(), Ok(None));
        assert_eq!(s.pending(), b"<pres");
        s.push(b"ence id=\"x'\"");
        assert_eq!(s.next_piece(), Ok(None));
        s.push(b"/>");
        assert_eq!(
            s.next_piece(),
            Ok(Some(stanza("presence", "<presence id=\"x'\"/>")))
        );
    }

    #[test]
    fn what_xmpp_does_not_use_is_refused() {
        for bad in [
            "<!-- c -->",
            "<a><![CDATA[x]]></a>",
            "text",
            "<a><?pi?></a>",
            "<a x='<'/>",
        ] {
            let mut s = Splitter::new();
            s.push(bad.as_bytes());
            assert!(s.next_piece().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_proxy_forwards_drops_duplicates_and_holds() {
        use std::io::BufRead;
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = echo.local_addr().unwrap();
        // A server that sends back each line it reads.
        let server = std::thread::spawn(move || {
            let (s, _) = echo.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = std::io::BufReader::new(s);
            let mut got = Vec::new();
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                w.write_all(line.as_bytes()).unwrap();
                got.push(std::mem::take(&mut line));
            }
            got
        });
        let proxy = Proxy::start(upstream);
        let dropped = proxy.drop_next(Dir::Up, 1, |s| s.contains("drop"));
        let twice = proxy.duplicate_next(Dir::Up, 1, |s| s.contains("twice"));
        let held = proxy.hold_next(Dir::Up, Duration::ZERO, |s| s.contains("held"));
        let mut c = TcpStream::connect(proxy.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        for s in ["a", "drop", "twice", "held", "b", "c"] {
            c.write_all(format!("<m id='{s}'/>\n").as_bytes()).unwrap();
        }
        // Space between stanzas passes; the newlines end the echo server's lines.
        let mut r = std::io::BufReader::new(c.try_clone().unwrap());
        let mut lines = Vec::new();
        for _ in 0..6 {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            lines.push(l);
        }
        assert_eq!(dropped.fired() + twice.fired() + held.fired(), 3);
        let joined: String = lines.concat();
        assert_eq!(
            joined,
            "<m id='a'/>\n\n<m id='twice'/><m id='twice'/>\n\n\
             <m id='b'/><m id='held'/>\n<m id='c'/>\n"
        );
        proxy.cut();
        assert!(server.join().unwrap().len() >= 5);
    }
}
