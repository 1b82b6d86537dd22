//! A throwaway Prosody for the XMPP tests: a config in a temporary directory, a free
//! loopback port, users registered with prosodyctl, every user in one shared group (so
//! presence flows without subscriptions), offline storage off, Nagle off. Stopped (SIGTERM,
//! then waited for) when dropped, also when a test fails.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Prosody {
    pub dir: PathBuf,
    pub addr: SocketAddr,
    pub domain: String,
    child: Option<Child>,
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
        let d = dir.display();
        let config = format!(
            r#"pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
certificates = "{d}/certs"
log = {{ info = "{d}/prosody.log"; error = "{d}/prosody.err" }}
run_as_root = {root}
interfaces = {{ "{ip}" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{}}; s2s_ports = {{}}; component_ports = {{}}; http_ports = {{}}; https_ports = {{}}
network_settings = {{ nagle = false }}
modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping"; "posix"; "groups" }}
modules_disabled = {{ "offline" }}
groups_file = "{d}/groups.txt"
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
VirtualHost "{domain}"
"#
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
        let child = Command::new("prosody")
            .arg("--config")
            .arg(&cfg)
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prosody starts");
        let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
        let mut server = Prosody {
            dir,
            addr,
            domain,
            child: Some(child),
        };
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(Ok(Some(st))) = server.child.as_mut().map(|c| c.try_wait()) {
                panic!("prosody exited: {st}; log: {}", server.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "prosody not listening after 10 s; log: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        server
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

impl Drop for Prosody {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
