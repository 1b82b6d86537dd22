//! A throwaway Prosody for the XMPP tests: a config in a temporary directory, a free
//! loopback port, users registered with prosodyctl, every user in one shared group (so
//! presence flows without subscriptions), offline storage off, Nagle off. Plain TCP
//! ([`Prosody::start`]), or TLS ([`Prosody::start_tls`]: STARTTLS required on the client
//! port and direct TLS on a second one, with a self-signed leaf certificate for the domain
//! that `openssl` makes in the directory; a second domain, [`MISNAMED`], presents that
//! certificate too). Killed ([`Prosody::kill`], as a crash) and started again on the same
//! port and data directory ([`Prosody::restart`]) for the fault tests. Stopped (SIGTERM,
//! then waited for) when dropped, also when a test fails.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Prosody {
    pub dir: PathBuf,
    /// The client port: plain TCP, or STARTTLS (required) for a TLS server.
    pub addr: SocketAddr,
    pub domain: String,
    /// A TLS server's direct TLS port and its certificate (PEM), the one to trust.
    pub tls: Option<TlsInfo>,
    child: Option<Child>,
}

/// A TLS server's second domain, whose certificate is the first domain's.
pub const MISNAMED: &str = "misnamed.test";

pub struct TlsInfo {
    pub direct_port: u16,
    pub cert: PathBuf,
}

fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Prosody {
    /// Starts a server for `domain` on 127.0.0.1 with the given (user, password) pairs.
    pub fn start(users: &[(&str, &str)]) -> Prosody {
        Self::start_on("127.0.0.1", users)
    }

    pub fn start_on(ip: &str, users: &[(&str, &str)]) -> Prosody {
        Self::launch(ip, users, false)
    }

    /// Starts a TLS server on 127.0.0.1: STARTTLS required on `addr`, direct TLS on
    /// `tls.direct_port`, the certificate in `tls.cert`.
    pub fn start_tls(users: &[(&str, &str)]) -> Prosody {
        Self::launch("127.0.0.1", users, true)
    }

    fn launch(ip: &str, users: &[(&str, &str)], tls: bool) -> Prosody {
        let domain = "localhost".to_string();
        let dir = std::env::temp_dir().join(format!(
            "msgrpriv-prosody-{}-{}",
            std::process::id(),
            free_port(ip)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::create_dir_all(dir.join("certs")).unwrap();
        let port = free_port(ip);
        let root = unsafe { libc::getuid() } == 0;
        let mut groups = String::from("[msgrpriv]\n");
        for (u, _) in users {
            groups.push_str(&format!("{u}@{domain}\n"));
        }
        std::fs::write(dir.join("groups.txt"), groups).unwrap();
        let direct_port = if tls { free_port(ip) } else { 0 };
        if tls {
            let certs = dir.join("certs");
            make_certificate(&certs, &domain);
            // A second host that presents the first one's certificate: a name mismatch.
            for ext in ["crt", "key"] {
                std::fs::copy(
                    certs.join(format!("{domain}.{ext}")),
                    certs.join(format!("{MISNAMED}.{ext}")),
                )
                .unwrap();
            }
        }
        let tls_config = if tls {
            format!(
                r#"modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping"; "posix"; "groups"; "tls" }}
c2s_direct_tls_ports = {{ {direct_port} }}
c2s_require_encryption = true
"#
            )
        } else {
            r#"modules_enabled = { "roster"; "saslauth"; "disco"; "ping"; "posix"; "groups" }
c2s_direct_tls_ports = {}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
"#
            .to_string()
        };
        let misnamed = if tls {
            format!("VirtualHost \"{MISNAMED}\"\n")
        } else {
            String::new()
        };
        let d = dir.display();
        let config = format!(
            r#"pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}/certs"
log = {{ info = "{d}/prosody.log"; error = "{d}/prosody.err" }}
run_as_root = {root}
interfaces = {{ "{ip}" }}
c2s_ports = {{ {port} }}
s2s_ports = {{}}; component_ports = {{}}; http_ports = {{}}; https_ports = {{}}
network_settings = {{ nagle = false }}
{tls_config}modules_disabled = {{ "offline" }}
groups_file = "{d}/groups.txt"
authentication = "internal_hashed"
storage = "internal"
VirtualHost "{domain}"
{misnamed}"#
        );
        let cfg = dir.join("prosody.cfg.lua");
        std::fs::File::create(&cfg)
            .unwrap()
            .write_all(config.as_bytes())
            .unwrap();
        // prosodyctl takes ~25 ms a user, most of it starting Lua: several at a time
        for chunk in users.chunks(8) {
            let children: Vec<_> = chunk
                .iter()
                .map(|(u, p)| {
                    let child = Command::new("prosodyctl")
                        .arg("--config")
                        .arg(&cfg)
                        .args(["register", u, &domain, p])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("prosodyctl runs (install prosody: scripts/install-tools.sh does)");
                    (u, child)
                })
                .collect();
            for (u, mut child) in children {
                let st = child.wait().expect("prosodyctl ends");
                assert!(st.success(), "prosodyctl register {u}");
            }
        }
        let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
        let cert = dir.join("certs").join(format!("{domain}.crt"));
        let mut server = Prosody {
            dir,
            addr,
            domain,
            tls: tls.then_some(TlsInfo { direct_port, cert }),
            child: None,
        };
        server.run();
        server
    }

    /// Starts the server process with the config in `dir` and waits (at most 10 s) until it
    /// listens.
    fn run(&mut self) {
        let child = Command::new("prosody")
            .arg("--config")
            .arg(self.dir.join("prosody.cfg.lua"))
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prosody starts");
        self.child = Some(child);
        let start = Instant::now();
        let listening =
            |a: &SocketAddr| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok();
        let direct: Option<SocketAddr> = self
            .tls
            .as_ref()
            .map(|t| SocketAddr::new(self.addr.ip(), t.direct_port));
        while !listening(&self.addr) || direct.as_ref().is_some_and(|d| !listening(d)) {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("prosody exited: {st}; log: {}", self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "prosody not listening after 10 s; log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the server at once (SIGKILL, as a crash): its connections close without a
    /// word, its data directory stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same address and data directory (its users are
    /// there), after [`Prosody::stop`] or [`Prosody::kill`].
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart: the server still runs");
        self.run();
    }

    /// The server's IP address, as a host option.
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    pub fn jid(&self, user: &str) -> String {
        format!("{user}@{}", self.domain)
    }

    /// The server's logs, for failure messages.
    pub fn log(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "{}{}",
            read(&self.dir.join("prosody.log")),
            read(&self.dir.join("prosody.err"))
        )
    }

    /// Stops the server (SIGTERM, then waits up to 5 s, then SIGKILL).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A self-signed leaf certificate for `domain` (CA:FALSE, serverAuth; a CA certificate would
/// be refused as an end entity) and its key: `<dir>/<domain>.crt` and `.key`.
fn make_certificate(dir: &Path, domain: &str) {
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj"])
        .arg(format!("/CN={domain}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{domain}"))
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(dir.join(format!("{domain}.key")))
        .arg("-out")
        .arg(dir.join(format!("{domain}.crt")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(st.success(), "openssl req");
}

impl Drop for Prosody {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
