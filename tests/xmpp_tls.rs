//! The XMPP service's connection options against a real Prosody each test starts itself
//! (loopback only): STARTTLS and direct TLS with the server's certificate trusted through
//! `ca_file`, the refusals (a certificate the trust roots do not vouch for, a server that
//! offers no STARTTLS, plain TCP off loopback, a CA file without a certificate) and the
//! XMPP domain option.
#![cfg(feature = "xmpp")]

mod common;
use common::prosody::Prosody;
use common::*;
use msgrpriv::error::*;
use msgrpriv::xmpp::{Credentials, Tls, XmppOptions, XmppService};
use msgrpriv::*;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USERS: &[(&str, &str)] = &[("alice", "alicepw"), ("bob", "bobpw")];

fn creds() -> Credentials {
    Arc::new(|name: &str| {
        USERS
            .iter()
            .find(|(u, _)| name.starts_with(&format!("{u}@")))
            .map(|(_, p)| p.to_string())
    })
}

/// STARTTLS to the fixture's TLS server, its certificate trusted through `ca_file`.
fn trusted(server: &Prosody) -> XmppOptions {
    let mut o = XmppOptions::new(server.host(), server.addr.port(), creds());
    o.ca_file = Some(server.tls.as_ref().unwrap().cert.clone());
    o
}

fn sign_in(svc: &XmppService, name: &str) -> Result<Client> {
    Client::new(Arc::new(svc.clone()), name, DispatchMode::Manual)
}

/// Signs alice and bob in through `svc`, waits for their presence, then alice invites bob,
/// bob accepts, and both reach SS_CONNECTED; alice then cancels and both end.
fn invitation_round(svc: &XmppService, server: &Prosody) {
    let (alice, bob) = (server.jid("alice"), server.jid("bob"));
    let w = World::with_dyn_names(service(true), Arc::new(svc.clone()), &alice, &bob);
    let start = Instant::now();
    while svc.online(&bob).is_none() || svc.online(&alice).is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "no presence");
        std::thread::sleep(Duration::from_millis(2));
    }
    w.register_app("");
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !done() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "timed out waiting for {what}; {}",
                server.log()
            );
            w.a.dispatch(Some(Duration::from_millis(2))).unwrap();
            w.b.dispatch(Some(Duration::from_millis(2))).unwrap();
        }
    };
    let s = w.session();
    s.invite(&bob, Some("over tls")).unwrap();
    wait("the invitation", &|| !w.received.lock().is_empty());
    let r = w.received.lock()[0].clone();
    assert_eq!(r.context_data().as_str(), "over tls");
    r.accept(Some("yes")).unwrap();
    wait("the acceptance", &|| {
        s.state() == SessionState::Connected && r.state() == SessionState::Connected
    });
    assert_eq!(s.context_data().as_str(), "yes");
    s.cancel(E_FAIL, None).unwrap();
    wait("the end", &|| {
        s.state() == SessionState::Cancelled && r.state() == SessionState::Cancelled
    });
}

#[test]
fn starttls_with_the_servers_certificate_in_ca_file() {
    let server = Prosody::start_tls(USERS);
    let svc = XmppService::new(trusted(&server)).unwrap();
    invitation_round(&svc, &server);
}

#[test]
fn direct_tls_with_the_servers_certificate_in_ca_file() {
    let server = Prosody::start_tls(USERS);
    let mut o = trusted(&server);
    o.tls = Tls::Direct;
    o.server_port = server.tls.as_ref().unwrap().direct_port;
    let svc = XmppService::new(o).unwrap();
    invitation_round(&svc, &server);
}

#[test]
fn a_certificate_the_system_store_does_not_vouch_for_is_refused_at_once() {
    let server = Prosody::start_tls(USERS);
    for tls in [Tls::StartTls, Tls::Direct] {
        let mut o = trusted(&server);
        o.ca_file = None; // the system's store: the self-signed certificate is not in it
        o.tls = tls;
        if tls == Tls::Direct {
            o.server_port = server.tls.as_ref().unwrap().direct_port;
        }
        let svc = XmppService::new(o).unwrap();
        let t0 = Instant::now();
        let r = sign_in(&svc, &server.jid("alice"));
        assert_eq!(r.unwrap_err(), SR_NETWORK_CONFIG_FAILURE, "{tls:?}");
        // Final, not retried until the connect timeout (10 s).
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    }
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let server = Prosody::start_tls(USERS);
    // The server hosts MISNAMED with the certificate of its first domain ("localhost").
    let svc = XmppService::new(trusted(&server)).unwrap();
    let r = sign_in(&svc, &format!("alice@{}", common::prosody::MISNAMED));
    assert_eq!(
        r.unwrap_err(),
        SR_NETWORK_CONFIG_FAILURE,
        "{}",
        server.log()
    );
}

#[test]
fn starttls_required_but_not_offered_is_refused() {
    // The plain fixture loads no TLS module: it offers no STARTTLS.
    let server = Prosody::start(USERS);
    let o = XmppOptions::new(server.host(), server.addr.port(), creds());
    assert_eq!(o.tls, Tls::StartTls, "the default policy");
    let svc = XmppService::new(o).unwrap();
    let t0 = Instant::now();
    let r = sign_in(&svc, &server.jid("alice"));
    assert_eq!(r.unwrap_err(), SR_NETWORK_CONFIG_FAILURE);
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    // The same server with the plain policy (loopback): signed in.
    let mut o = XmppOptions::new(server.host(), server.addr.port(), creds());
    o.tls = Tls::Plain;
    let svc = XmppService::new(o).unwrap();
    sign_in(&svc, &server.jid("alice")).unwrap();
}

#[test]
fn plain_tcp_only_to_a_loopback_ip_address() {
    let plain = |host: &str| {
        let mut o = XmppOptions::new(host, 1, creds());
        o.tls = Tls::Plain;
        XmppService::new(o).map(|_| ())
    };
    assert_eq!(plain("192.0.2.1"), Err(E_INVALIDARG));
    assert_eq!(plain("2001:db8::1"), Err(E_INVALIDARG));
    // A host name, even one that resolves to loopback: not an IP literal.
    assert_eq!(plain("localhost"), Err(E_INVALIDARG));
    assert_eq!(plain(""), Err(E_INVALIDARG));
    assert_eq!(plain("127.0.0.1"), Ok(()));
    assert_eq!(plain("127.0.0.2"), Ok(()));
    assert_eq!(plain("::1"), Ok(()));
    // TLS to any host, IP literal or name (nothing connects until a sign-in).
    for host in ["192.0.2.1", "xmpp.example.com"] {
        assert!(XmppService::new(XmppOptions::new(host, 1, creds())).is_ok());
    }
}

#[test]
fn a_ca_file_must_hold_a_certificate() {
    let dir = std::env::temp_dir().join(format!("msgrpriv-xmpp-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let key_only = dir.join("key.pem");
    std::fs::write(
        &key_only,
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let with_ca = |path: PathBuf, tls: Tls| {
        let mut o = XmppOptions::new("127.0.0.1", 1, creds());
        o.tls = tls;
        o.ca_file = Some(path);
        XmppService::new(o).map(|_| ())
    };
    for tls in [Tls::StartTls, Tls::Direct, Tls::Plain] {
        assert_eq!(with_ca(dir.join("missing.pem"), tls), Err(E_INVALIDARG));
        assert_eq!(with_ca(garbage.clone(), tls), Err(E_INVALIDARG));
        assert_eq!(with_ca(empty.clone(), tls), Err(E_INVALIDARG));
        assert_eq!(with_ca(key_only.clone(), tls), Err(E_INVALIDARG));
        assert_eq!(with_ca(dir.clone(), tls), Err(E_INVALIDARG));
    }
    let _ = std::fs::remove_dir_all(&dir);
    // A file that holds one: accepted.
    let server = Prosody::start_tls(&[]);
    assert!(XmppService::new(trusted(&server)).is_ok());
}

#[test]
fn the_domain_option_completes_and_restricts_sign_in_names() {
    let server = Prosody::start_tls(USERS);
    let mut o = trusted(&server);
    // A host name, resolved at sign-in; the domain is the certificate's name.
    o.server_host = "localhost".into();
    o.domain = Some(server.domain.clone());
    let svc = XmppService::new(o).unwrap();
    let alice = sign_in(&svc, "alice").unwrap();
    assert_eq!(alice.sign_in_name().as_str(), server.jid("alice"));
    assert_eq!(
        sign_in(&svc, "bob@example.com").unwrap_err(),
        E_INVALIDARG,
        "a name at another domain"
    );
    let bob = sign_in(&svc, &server.jid("bob")).unwrap();
    // Invitees' names are completed the same way.
    let start = Instant::now();
    while svc.online("bob").is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "no presence");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(svc.online("bob").unwrap().as_str(), server.jid("bob"));
    assert!(svc.same_user("alice", &server.jid("alice")));
    drop((alice, bob));
    // An invalid domain: refused at creation.
    for d in ["", "a@b", "a/b"] {
        let mut o = trusted(&server);
        o.domain = Some(d.into());
        assert_eq!(XmppService::new(o).map(|_| ()), Err(E_INVALIDARG), "{d:?}");
    }
}
