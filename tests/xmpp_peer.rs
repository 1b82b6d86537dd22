//! A peer written from docs/xmpp.md alone (raw Jingle IQs through tokio-xmpp, no msgrpriv
//! code), against a msgrpriv client through a real Prosody: the library's answers follow
//! XEP-0166 (an acknowledgement, or `unknown-session`, `out-of-order`, `unsupported-info`,
//! `bad-request`, `service-unavailable`), and a refused request changes nothing.
#![cfg(feature = "xmpp")]

mod common;
use common::prosody::Prosody;
use common::*;
use futures_util::StreamExt;
use msgrpriv::events::{ManagerEvent, ManagerEventKind};
use msgrpriv::xmpp::{Tls, XmppOptions, XmppService};
use msgrpriv::*;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_xmpp::connect::DnsConfig;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::jid::{BareJid, Jid};
use tokio_xmpp::parsers::minidom::Element;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use tokio_xmpp::xmlstream::Timeouts;
use tokio_xmpp::{Event, Stanza};

const USERS: &[(&str, &str)] = &[("bob", "bobpw"), ("carol", "carolpw"), ("mallory", "mpw")];
const SID: &str = "{8E1F7C2A-0B4D-4E5F-9A6B-7C8D9E0F1A2B}";

/// How a request was answered: Ok for a result, else the error's defined condition and its
/// Jingle condition (if any).
type Answer = std::result::Result<(), (String, Option<String>)>;

/// A hand-written peer: one XMPP connection, driven only while a call of it runs.
struct Peer {
    rt: tokio::runtime::Runtime,
    c: tokio_xmpp::Client,
    next: u32,
    /// Jingle requests received (and answered), oldest first.
    inbox: Vec<Element>,
    /// Answer Jingle requests with `<unknown-session/>` instead of acknowledging them.
    ended: bool,
    /// Answer Jingle requests with this error instead (type, condition).
    refuse: Option<(ErrorType, DefinedCondition)>,
}

impl Peer {
    fn connect(server: &Prosody, user: &str, password: &str) -> Peer {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _entered = rt.enter();
        let mut c = tokio_xmpp::Client::new_plaintext(
            BareJid::new(&server.jid(user)).unwrap(),
            password.to_string(),
            DnsConfig::addr(&server.addr.to_string()),
            Timeouts::tight(),
        );
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    if let Some(Event::Online { .. }) = c.next().await {
                        break;
                    }
                }
            })
            .await
            .expect("the peer signs in")
        });
        Peer {
            rt,
            c,
            next: 0,
            inbox: Vec::new(),
            ended: false,
            refuse: None,
        }
    }

    /// Handles one event: answers (and keeps) Jingle requests; returns IQ answers.
    async fn step(
        c: &mut tokio_xmpp::Client,
        inbox: &mut Vec<Element>,
        ended: bool,
        refuse: Option<(ErrorType, DefinedCondition)>,
    ) -> Option<Iq> {
        match c.next().await {
            Some(Event::Stanza(Stanza::Iq(Iq::Set {
                from: Some(from),
                id,
                payload,
                ..
            }))) => {
                inbox.push(payload);
                let answer = if let Some((kind, condition)) = refuse {
                    Iq::from_error(id, StanzaError::new(kind, condition, "en", "")).with_to(from)
                } else if ended {
                    let mut e = StanzaError::new(
                        ErrorType::Cancel,
                        DefinedCondition::ItemNotFound,
                        "en",
                        "",
                    );
                    e.other = Some(
                        Element::builder("unknown-session", "urn:xmpp:jingle:errors:1").build(),
                    );
                    Iq::from_error(id, e).with_to(from)
                } else {
                    Iq::empty_result(from, id)
                };
                c.send_stanza(answer.into()).await.unwrap();
                None
            }
            Some(Event::Stanza(Stanza::Iq(iq @ (Iq::Result { .. } | Iq::Error { .. })))) => {
                Some(iq)
            }
            Some(_) => None,
            None => panic!("the peer's connection ended"),
        }
    }

    /// Sends `payload` (XML text) to `to` in an IQ of type `kind` and waits for the answer.
    fn request(&mut self, to: &str, kind: &str, payload: &str) -> Answer {
        self.next += 1;
        let id = format!("p{}", self.next);
        self.request_with_id(to, kind, payload, id)
    }

    /// [`request`](Self::request) with the IQ id given.
    fn request_with_id(&mut self, to: &str, kind: &str, payload: &str, id: String) -> Answer {
        let payload: Element = payload.parse().expect("the test's XML parses");
        let to: Jid = to.parse().unwrap();
        let iq = match kind {
            "set" => Iq::Set {
                from: None,
                to: Some(to),
                id: id.clone(),
                payload,
            },
            _ => Iq::Get {
                from: None,
                to: Some(to),
                id: id.clone(),
                payload,
            },
        };
        let Peer {
            rt,
            c,
            inbox,
            ended,
            refuse,
            ..
        } = self;
        let (ended, refuse) = (*ended, refuse.clone());
        rt.block_on(async {
            c.send_stanza(iq.into()).await.unwrap();
            tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    match Self::step(c, inbox, ended, refuse.clone()).await {
                        Some(Iq::Result { id: got, .. }) if got == id => return Ok(()),
                        Some(Iq::Error { id: got, error, .. }) if got == id => {
                            let condition =
                                Element::from(error.defined_condition).name().to_owned();
                            let jingle = error
                                .other
                                .filter(|e| e.ns() == "urn:xmpp:jingle:errors:1")
                                .map(|e| e.name().to_owned());
                            return Err((condition, jingle));
                        }
                        _ => {}
                    }
                }
            })
            .await
            .expect("an answer within 10 s")
        })
    }

    /// Waits (at most 10 s) for a Jingle request with `action`, already acknowledged.
    fn expect(&mut self, action: &str) -> Element {
        let Peer {
            rt,
            c,
            inbox,
            ended,
            refuse,
            ..
        } = self;
        let (ended, refuse) = (*ended, refuse.clone());
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    if let Some(i) = inbox.iter().position(|e| e.attr("action") == Some(action)) {
                        return inbox.remove(i);
                    }
                    Self::step(c, inbox, ended, refuse.clone()).await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("no {action} within 10 s"))
        })
    }

    /// Sends available presence: the peer's resource is then online for its contacts, and
    /// its going away is announced to them.
    fn announce(&mut self) {
        let Peer { rt, c, .. } = self;
        rt.block_on(async {
            c.send_stanza(tokio_xmpp::parsers::presence::Presence::available().into())
                .await
                .unwrap();
        });
    }

    /// Lets the connection run for `d` (acknowledging whatever arrives).
    fn idle(&mut self, d: Duration) {
        let Peer {
            rt,
            c,
            inbox,
            ended,
            refuse,
            ..
        } = self;
        let (ended, refuse) = (*ended, refuse.clone());
        rt.block_on(async {
            let _ = tokio::time::timeout(d, async {
                loop {
                    Self::step(c, inbox, ended, refuse.clone()).await;
                }
            })
            .await;
        });
    }
}

fn initiate(sid: &str) -> String {
    format!(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='{sid}'>\
           <content creator='initiator' name='app'>\
             <description xmlns='urn:x-msgrpriv:session:0' guid='{APP}' name='Chess' \
                          url='http://example.com/chess' timeout='120000'>\
               <app-data>let's play</app-data><address>192.0.2.1:6000</address>\
             </description>\
             <transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='4096' \
                        sid='{sid}' stanza='iq'/>\
           </content>\
         </jingle>"
    )
}

fn jingle(action: &str, sid: &str, inner: &str) -> String {
    format!("<jingle xmlns='urn:xmpp:jingle:1' action='{action}' sid='{sid}'>{inner}</jingle>")
}

fn cancel(sid: &str) -> String {
    jingle(
        "session-terminate",
        sid,
        "<reason><cancel/></reason>\
         <hresult xmlns='urn:x-msgrpriv:session:0'>0x80004005</hresult>\
         <app-data xmlns='urn:x-msgrpriv:session:0'>bye</app-data>",
    )
}

fn refused(condition: &str, jingle: Option<&str>) -> Answer {
    Err((condition.to_owned(), jingle.map(str::to_owned)))
}

/// XEP-0166's answer about a session that is not live with the sender.
fn unknown_session() -> Answer {
    refused("item-not-found", Some("unknown-session"))
}

/// XEP-0166's answer to a step the session's state does not take.
fn out_of_order() -> Answer {
    refused("unexpected-request", Some("out-of-order"))
}

/// Bob: a msgrpriv client on the XMPP service, whose manager records invitations and the
/// events of each invited session as "B:..." lines.
struct Bob {
    client: Client,
    _manager: SessionManager,
    log: Log,
    received: Arc<Mutex<Vec<Session>>>,
}

impl Bob {
    fn sign_in(server: &Prosody) -> Bob {
        Self::sign_in_with(server, |_| {})
    }

    /// Bob, with the options `adjust` changes.
    fn sign_in_with(server: &Prosody, adjust: impl FnOnce(&mut XmppOptions)) -> Bob {
        let creds: msgrpriv::xmpp::Credentials = Arc::new(|_: &str| Some("bobpw".to_string()));
        let mut options = XmppOptions::new(server.addr.ip().to_string(), server.addr.port(), creds);
        options.tls = Tls::Plain;
        adjust(&mut options);
        let svc = XmppService::new(options).unwrap();
        let client = Client::new(Arc::new(svc), &server.jid("bob"), DispatchMode::Manual).unwrap();
        let manager = client.create_session_manager().unwrap();
        manager
            .register_application(APP, "Chess", "http://example.com/chess", "", 0)
            .unwrap();
        let log: Log = Arc::default();
        let received: Arc<Mutex<Vec<Session>>> = Arc::default();
        let (log2, received2) = (log.clone(), received.clone());
        manager
            .advise(ManagerEventKind::Invitation, move |e| {
                if let ManagerEvent::Invitation {
                    session, handled, ..
                } = e
                {
                    record_session(session, "B", &log2);
                    log2.lock().push("B:Invitation".into());
                    *handled = true;
                    received2.lock().push(session.clone());
                }
            })
            .unwrap();
        drain(&client);
        Bob {
            client,
            _manager: manager,
            log,
            received,
        }
    }

    /// Dispatches until `done` holds (at most 10 s), then returns the log lines so far.
    fn until(&self, what: &str, done: impl Fn(&Bob) -> bool) -> Vec<String> {
        let start = Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "timed out: {what}"
            );
            self.client
                .dispatch(Some(Duration::from_millis(2)))
                .unwrap();
        }
        drain(&self.client);
        std::mem::take(&mut *self.log.lock())
    }

    /// Dispatches what is queued; returns the log lines so far.
    fn take(&self) -> Vec<String> {
        drain(&self.client);
        std::mem::take(&mut *self.log.lock())
    }
}

impl Drop for Bob {
    fn drop(&mut self) {
        self.client.destroy();
        for s in self.received.lock().drain(..) {
            s.detach();
        }
    }
}

#[test]
fn a_hand_written_peer_gets_the_answers_xep_0166_prescribes() {
    let server = Prosody::start(USERS);
    let bob = Bob::sign_in(&server);
    let bob_jid = format!("{}/msgrpriv", server.jid("bob"));
    let mut carol = Peer::connect(&server, "carol", "carolpw");

    // Nothing known yet: a ping or a step of an unknown session.
    assert_eq!(
        carol.request(&bob_jid, "set", &jingle("session-info", SID, "")),
        unknown_session()
    );
    assert_eq!(
        carol.request(&bob_jid, "set", &cancel(SID)),
        unknown_session()
    );
    // Malformed or foreign requests.
    assert_eq!(
        carol.request(&bob_jid, "set", &jingle("session-initiate", SID, "")),
        refused("bad-request", None)
    );
    assert_eq!(
        carol.request(&bob_jid, "set", &jingle("content-add", SID, "")),
        refused("bad-request", None)
    );
    assert_eq!(
        carol.request(&bob_jid, "set", "<query xmlns='jabber:iq:version'/>"),
        refused("service-unavailable", None)
    );
    assert_eq!(
        carol.request(&bob_jid, "get", "<ping xmlns='urn:xmpp:ping'/>"),
        Ok(())
    );
    assert!(bob.take().is_empty(), "nothing reached bob's application");

    // The invitation, as docs/xmpp.md writes it.
    assert_eq!(carol.request(&bob_jid, "set", &initiate(SID)), Ok(()));
    let log = bob.until("the invitation", |b| !b.received.lock().is_empty());
    assert_eq!(log, lines(&["B:Invitation"]));
    let r = bob.received.lock()[0].clone();
    assert_eq!(r.id().as_str(), SID);
    assert_eq!(r.user().unwrap().as_str(), server.jid("carol"));
    assert_eq!(r.context_data().as_str(), "let's play");
    // The same SessionID again: out of order, the live session stays as it is.
    assert_eq!(
        carol.request(&bob_jid, "set", &initiate(SID)),
        out_of_order()
    );
    // Context data before the answer: out of order.
    let ctx = jingle(
        "session-info",
        SID,
        "<context xmlns='urn:x-msgrpriv:session:0'>early</context>",
    );
    assert_eq!(carol.request(&bob_jid, "set", &ctx), out_of_order());
    assert_eq!(r.state(), SessionState::Invitation);
    assert_eq!(bob.received.lock().len(), 1);

    r.accept(Some("glad to")).unwrap();
    let accept = carol.expect("session-accept");
    assert_eq!(accept.attr("sid"), Some(SID));
    bob.until("connected", |_| r.state() == SessionState::Connected);

    // A live session: a ping is answered, an unknown info is not supported, a second
    // session-accept (bob is the invitee) is out of order; none of them changes anything.
    assert_eq!(
        carol.request(&bob_jid, "set", &jingle("session-info", SID, "")),
        Ok(())
    );
    assert_eq!(
        carol.request(
            &bob_jid,
            "set",
            &jingle(
                "session-info",
                SID,
                "<ringing xmlns='urn:xmpp:jingle:apps:rtp:info:1'/>"
            )
        ),
        refused("feature-not-implemented", Some("unsupported-info"))
    );
    let again = jingle(
        "session-accept",
        SID,
        &format!(
            "<content creator='initiator' name='app'>\
               <description xmlns='urn:x-msgrpriv:session:0'><address>x</address></description>\
               <transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='4096' sid='{SID}' stanza='iq'/>\
             </content>"
        ),
    );
    assert_eq!(carol.request(&bob_jid, "set", &again), out_of_order());
    assert!(bob.take().is_empty());

    // Mallory learned the SessionID: nothing he says about it is taken.
    let mut mallory = Peer::connect(&server, "mallory", "mpw");
    assert_eq!(
        mallory.request(&bob_jid, "set", &cancel(SID)),
        unknown_session()
    );
    let forged = jingle(
        "session-info",
        SID,
        "<context xmlns='urn:x-msgrpriv:session:0'>forged</context>",
    );
    assert_eq!(mallory.request(&bob_jid, "set", &forged), unknown_session());
    assert_eq!(
        mallory.request(&bob_jid, "set", &jingle("session-info", SID, "")),
        unknown_session()
    );
    assert!(bob.take().is_empty());
    assert_eq!(r.state(), SessionState::Connected);
    // ... and bob's next step still goes to carol.
    r.send_context_data("to carol").unwrap();
    let info = carol.expect("session-info");
    assert_eq!(
        info.get_child("context", "urn:x-msgrpriv:session:0")
            .map(|c| c.text()),
        Some("to carol".to_string())
    );
    mallory.idle(Duration::from_millis(100));
    assert!(mallory.inbox.is_empty(), "mallory got {:?}", mallory.inbox);

    // Carol's context data and cancel are taken.
    assert_eq!(carol.request(&bob_jid, "set", &ctx), Ok(()));
    let log = bob.until("context data", |_| r.context_data().as_str() == "early");
    assert_eq!(log, lines(&["B:ContextData(early)@Connected"]));
    assert_eq!(carol.request(&bob_jid, "set", &cancel(SID)), Ok(()));
    let log = bob.until("the end", |b| {
        b.log.lock().iter().any(|l| l.starts_with("B:Termination"))
    });
    assert_eq!(
        log,
        lines(&[
            "B:StateChanged(Connected)@Cancelled",
            "B:Cancelled(\"bye\")@Cancelled",
            "B:Termination(E_FAIL,\"bye\")@Cancelled",
        ])
    );
    // Ended: every later request about it is an unknown session.
    assert_eq!(
        carol.request(&bob_jid, "set", &jingle("session-info", SID, "")),
        unknown_session()
    );
    assert_eq!(
        carol.request(&bob_jid, "set", &cancel(SID)),
        unknown_session()
    );
    assert!(bob.take().is_empty());
    assert_eq!(bob.client.live_sessions(), 0);
}

/// Bob invited by carol: the invitation taken, the log emptied.
fn invited_by_carol(server: &Prosody, bob: &Bob, carol: &mut Peer, bob_jid: &str) -> Session {
    assert_eq!(carol.request(bob_jid, "set", &initiate(SID)), Ok(()));
    bob.until("the invitation", |b| !b.received.lock().is_empty());
    let r = bob.received.lock()[0].clone();
    assert_eq!(r.user().unwrap().as_str(), server.jid("carol"));
    r
}

#[test]
fn ends_that_cross_are_no_send_errors() {
    let server = Prosody::start(USERS);
    let bob = Bob::sign_in(&server);
    let bob_jid = format!("{}/msgrpriv", server.jid("bob"));
    let mut carol = Peer::connect(&server, "carol", "carolpw");
    let r = invited_by_carol(&server, &bob, &mut carol, &bob_jid);

    // Bob declines while carol cancels: carol has ended too, so she answers bob's decline
    // with unknown-session, and bob answers her cancel the same way.
    carol.ended = true;
    r.decline(Some("no")).unwrap();
    assert_eq!(
        carol.request(&bob_jid, "set", &cancel(SID)),
        unknown_session()
    );
    let terminate = carol.expect("session-terminate");
    assert!(terminate
        .get_child("reason", "urn:xmpp:jingle:1")
        .and_then(|r| r.get_child("decline", "urn:xmpp:jingle:1"))
        .is_some());
    let log = bob.until("the end", |b| {
        b.log.lock().iter().any(|l| l.starts_with("B:Termination"))
    });
    assert_eq!(
        log,
        lines(&[
            "B:StateChanged(Invitation)@Declined",
            "B:Termination(SR_INVITATION_DECLINED,\"no\")@Declined",
        ]),
        "one end, no OnSendError"
    );

    // A step that does not end the session, refused: OnSendError.
    bob.received.lock().clear();
    let r = invited_by_carol(&server, &bob, &mut carol, &bob_jid);
    assert_ne!(r.id().as_str(), "");
    carol.ended = false;
    r.accept(None).unwrap();
    carol.expect("session-accept");
    bob.until("connected", |_| r.state() == SessionState::Connected);
    carol.ended = true;
    r.send_context_data("lost").unwrap();
    carol.expect("session-info");
    let log = bob.until("the send error", |b| {
        b.log.lock().iter().any(|l| l.starts_with("B:SendError"))
    });
    assert_eq!(
        log,
        lines(&["B:SendError(SR_CONTEXT_DATA_SEND_FAILURE)@Connected"])
    );
}

#[test]
fn a_session_is_bound_to_its_peers_resource_and_ends_when_that_resource_goes() {
    let server = Prosody::start(USERS);
    let bob = Bob::sign_in(&server);
    let bob_jid = format!("{}/msgrpriv", server.jid("bob"));
    let mut carol = Peer::connect(&server, "carol", "carolpw");
    carol.announce();
    let r = invited_by_carol(&server, &bob, &mut carol, &bob_jid);

    // Another resource of carol's speaks for nothing of the session her first one opened.
    let mut other = Peer::connect(&server, "carol", "carolpw");
    other.announce();
    assert_eq!(
        other.request(&bob_jid, "set", &cancel(SID)),
        unknown_session()
    );
    assert_eq!(
        other.request(&bob_jid, "set", &jingle("session-info", SID, "")),
        unknown_session()
    );
    assert_eq!(r.state(), SessionState::Invitation);
    r.accept(None).unwrap();
    carol.expect("session-accept");
    bob.until("connected", |_| r.state() == SessionState::Connected);
    let forged = jingle(
        "session-info",
        SID,
        "<context xmlns='urn:x-msgrpriv:session:0'>forged</context>",
    );
    assert_eq!(other.request(&bob_jid, "set", &forged), unknown_session());
    assert!(bob.take().is_empty());
    r.send_context_data("to the first").unwrap();
    carol.expect("session-info");
    other.idle(Duration::from_millis(100));
    assert!(
        other.inbox.is_empty(),
        "the other resource got {:?}",
        other.inbox
    );

    // The other resource leaving changes nothing; the bound one leaving without a word
    // (its connection dropped) ends the session here.
    drop(other);
    carol.idle(Duration::from_millis(200));
    assert!(bob.take().is_empty());
    assert_eq!(r.state(), SessionState::Connected);
    drop(carol);
    let log = bob.until("the end", |b| {
        b.log.lock().iter().any(|l| l.starts_with("B:Termination"))
    });
    assert_eq!(
        log,
        lines(&[
            "B:StateChanged(Connected)@Terminated",
            "B:Termination(SR_CONNECTION_FAILURE,NULL)@Terminated",
        ])
    );
    assert_eq!(bob.client.live_sessions(), 0);
}

/// Registers `user` on the running `server` without putting them in its shared group: a
/// user nobody has among their contacts.
fn register_stranger(server: &Prosody, user: &str, password: &str) {
    let st = std::process::Command::new("prosodyctl")
        .arg("--config")
        .arg(server.dir.join("prosody.cfg.lua"))
        .args(["register", user, &server.domain, password])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("prosodyctl runs");
    assert!(st.success(), "prosodyctl register {user}");
}

#[test]
fn strangers_invitations_are_refused_unless_allowed() {
    let server = Prosody::start(USERS);
    register_stranger(&server, "eve", "evepw");
    let bob_jid = format!("{}/msgrpriv", server.jid("bob"));
    let mut eve = Peer::connect(&server, "eve", "evepw");
    {
        let bob = Bob::sign_in(&server);
        assert_eq!(
            eve.request(&bob_jid, "set", &initiate(SID)),
            refused("forbidden", None)
        );
        bob.client
            .dispatch(Some(Duration::from_millis(50)))
            .unwrap();
        assert!(bob.take().is_empty(), "nothing reached bob's application");
        assert!(bob.received.lock().is_empty());
        // Nothing was opened: a later step about it is about an unknown session.
        assert_eq!(
            eve.request(&bob_jid, "set", &cancel(SID)),
            unknown_session()
        );
        // A roster push from anyone but the server changes nothing.
        let add_eve = format!(
            "<query xmlns='jabber:iq:roster'><item jid='{}'/></query>",
            server.jid("eve")
        );
        assert_eq!(
            eve.request(&bob_jid, "set", &add_eve),
            refused("service-unavailable", None)
        );
        assert_eq!(
            eve.request(&bob_jid, "set", &initiate(SID)),
            refused("forbidden", None)
        );
        // Bob adds eve to his roster from another of his resources: the server pushes the
        // change to every resource, and eve is a contact from then on.
        let mut other = Peer::connect(&server, "bob", "bobpw");
        assert_eq!(other.request(&server.jid("bob"), "set", &add_eve), Ok(()));
        let start = Instant::now();
        loop {
            match eve.request(&bob_jid, "set", &initiate(SID)) {
                Ok(()) => break,
                r => assert_eq!(r, refused("forbidden", None)),
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the push is not taken"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let log = bob.until("eve's invitation", |b| !b.received.lock().is_empty());
        assert_eq!(log, lines(&["B:Invitation"]));
        // A contact's invitation is taken.
        let mut carol = Peer::connect(&server, "carol", "carolpw");
        let sid2 = "{8E1F7C2A-0B4D-4E5F-9A6B-7C8D9E0F1A2C}";
        assert_eq!(carol.request(&bob_jid, "set", &initiate(sid2)), Ok(()));
        bob.until("carol's invitation", |b| b.received.lock().len() == 2);
        // Eve is removed again: a stranger once more.
        let remove_eve = format!(
            "<query xmlns='jabber:iq:roster'><item jid='{}' subscription='remove'/></query>",
            server.jid("eve")
        );
        assert_eq!(
            other.request(&server.jid("bob"), "set", &remove_eve),
            Ok(())
        );
        let start = Instant::now();
        for n in 0u32.. {
            // A fresh SessionID each time: one taken before the removal stays live.
            let sid = format!("{{8E1F7C2A-0B4D-4E5F-9A6B-{n:012X}}}");
            match eve.request(&bob_jid, "set", &initiate(&sid)) {
                r if r == refused("forbidden", None) => break,
                r => assert_eq!(r, Ok(()), "before the removal"),
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the removal is not taken"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let bob = Bob::sign_in_with(&server, |o| o.allow_strangers = true);
    assert_eq!(eve.request(&bob_jid, "set", &initiate(SID)), Ok(()));
    let log = bob.until("the invitation", |b| !b.received.lock().is_empty());
    assert_eq!(log, lines(&["B:Invitation"]));
}

#[test]
fn invitations_per_sender_per_minute_are_limited() {
    let server = Prosody::start(USERS);
    let bob = Bob::sign_in_with(&server, |o| o.invitations_per_minute = 2);
    let bob_jid = format!("{}/msgrpriv", server.jid("bob"));
    let mut carol = Peer::connect(&server, "carol", "carolpw");
    let sid = |n: u32| format!("{{8E1F7C2A-0B4D-4E5F-9A6B-7C8D9E0F1A{n:02X}}}");
    for n in 0..2 {
        assert_eq!(carol.request(&bob_jid, "set", &initiate(&sid(n))), Ok(()));
    }
    assert_eq!(
        carol.request(&bob_jid, "set", &initiate(&sid(2))),
        refused("policy-violation", None)
    );
    bob.until("two invitations", |b| b.received.lock().len() == 2);
    // Another sender has a limit of its own.
    let mut mallory = Peer::connect(&server, "mallory", "mpw");
    assert_eq!(mallory.request(&bob_jid, "set", &initiate(&sid(3))), Ok(()));
    bob.until("the third", |b| b.received.lock().len() == 3);
}

#[test]
fn an_invitation_refused_by_the_invitees_policy_ends_declined_with_its_code() {
    let server = Prosody::start(USERS);
    let mut carol = Peer::connect(&server, "carol", "carolpw");
    carol.announce();
    let bob = Bob::sign_in(&server);
    let m = bob.client.create_session_manager().unwrap();
    for (condition, kind, code) in [
        ("forbidden", ErrorType::Auth, "E_ACCESSDENIED"),
        ("policy-violation", ErrorType::Wait, "E_NOT_ENOUGH_QUOTA"),
    ] {
        let condition = match condition {
            "forbidden" => DefinedCondition::Forbidden,
            _ => DefinedCondition::PolicyViolation,
        };
        carol.refuse = Some((kind, condition));
        let s = m.create_session().unwrap();
        s.set_application(APP).unwrap();
        record_session(&s, "A", &bob.log);
        let start = Instant::now();
        while s.invite(&server.jid("carol"), None) == Err(msgrpriv::error::MSGR_E_NOT_LOGGED_ON) {
            assert!(start.elapsed() < Duration::from_secs(10), "no presence");
            std::thread::sleep(Duration::from_millis(5));
        }
        carol.expect("session-initiate");
        let mut log = bob.until("the end", |b| {
            b.log.lock().iter().any(|l| l.starts_with("A:Termination"))
        });
        // The state read in the first callback is the one at its delivery: the refusal
        // may have come by then.
        assert!(log[0].starts_with("A:StateChanged(Ready)@"), "{log:?}");
        log.remove(0);
        assert_eq!(
            log,
            lines(&[
                "A:StateChanged(Invitation)@Declined",
                "A:Declined(NULL)@Declined",
                &format!("A:Termination({code},NULL)@Declined"),
            ])
        );
    }
}

#[test]
fn a_copy_of_a_request_is_answered_again_and_taken_once() {
    let server = Prosody::start(USERS);
    let bob = Bob::sign_in(&server);
    let bob_jid = format!("{}/msgrpriv", server.jid("bob"));
    let mut carol = Peer::connect(&server, "carol", "carolpw");
    let r = invited_by_carol(&server, &bob, &mut carol, &bob_jid);
    r.accept(None).unwrap();
    carol.expect("session-accept");
    bob.until("connected", |_| r.state() == SessionState::Connected);
    bob.take();
    let ctx = |text: &str| {
        jingle(
            "session-info",
            SID,
            &format!("<context xmlns='urn:x-msgrpriv:session:0'>{text}</context>"),
        )
    };
    // The sender did not see the first answer and sends the same request again.
    for _ in 0..2 {
        assert_eq!(
            carol.request_with_id(&bob_jid, "set", &ctx("once"), "same".into()),
            Ok(())
        );
    }
    // The same id with another payload is another request.
    assert_eq!(
        carol.request_with_id(&bob_jid, "set", &ctx("twice"), "same".into()),
        Ok(())
    );
    let log = bob.until("the context data", |_| r.context_data().as_str() == "twice");
    assert_eq!(
        log,
        lines(&[
            "B:ContextData(once)@Connected",
            "B:ContextData(twice)@Connected",
        ])
    );
}

#[test]
fn a_quiet_peer_is_pinged_and_its_sessions_end_when_it_does_not_answer() {
    let server = Prosody::start(USERS);
    let bob = Bob::sign_in_with(&server, |o| {
        o.keepalive = Duration::from_millis(400);
        o.request_timeout = Duration::from_millis(600);
    });
    let bob_jid = format!("{}/msgrpriv", server.jid("bob"));
    let mut carol = Peer::connect(&server, "carol", "carolpw");
    let r = invited_by_carol(&server, &bob, &mut carol, &bob_jid);
    r.accept(None).unwrap();
    carol.expect("session-accept");
    bob.until("connected", |_| r.state() == SessionState::Connected);
    // Carol answers while she runs: bob's pings about the session are acknowledged, and it
    // stays.
    carol.idle(Duration::from_millis(1500));
    let pings = carol
        .inbox
        .iter()
        .filter(|e| e.attr("action") == Some("session-info") && e.children().next().is_none())
        .count();
    assert!(pings >= 1, "no ping in {:?}", carol.inbox);
    assert!(bob.take().is_empty());
    assert_eq!(r.state(), SessionState::Connected);
    // Carol stops answering (her process hangs; her connection stays open): the session
    // ends once a ping goes unanswered.
    let log = bob.until("the end", |b| {
        b.log.lock().iter().any(|l| l.starts_with("B:Termination"))
    });
    assert_eq!(
        log,
        lines(&[
            "B:StateChanged(Connected)@Terminated",
            "B:Termination(SR_CONNECTION_FAILURE,NULL)@Terminated",
        ])
    );
    // Carol, back, learns the session is gone when she asks.
    assert_eq!(
        carol.request(&bob_jid, "set", &jingle("session-info", SID, "")),
        unknown_session()
    );
}
