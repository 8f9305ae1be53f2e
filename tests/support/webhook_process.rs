//! The real `backup-guard webhook` process (`$BG_TEST_BIN`, else the crate's own build) for the
//! tests that drive it from outside: its own certificates (`backup-guard certs`), `mode:
//! enforce`, and a kubeconfig pointing at a closed port (no API server is needed: the watches
//! just retry).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The webhook process, killed if a failed assertion leaves it running.
pub struct Webhook(Child);

impl Drop for Webhook {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl std::ops::Deref for Webhook {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Webhook {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Starts the webhook in `dir` (certificates in `dir/certs`, its log in `dir/stderr`); returns it
/// with its webhook and metrics ports.
pub fn start(dir: &Path, delay: u64) -> (Webhook, u16, u16) {
    // BG_TEST_BIN: another build of the same binary (make static: the container image's).
    let bin = std::env::var("BG_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_backup-guard").to_owned());
    let bin = bin.as_str();
    let ok = Command::new(bin)
        .args(["certs", "--out"])
        .arg(dir.join("certs"))
        .args(["--host", "127.0.0.1"])
        .status()
        .expect("certs runs");
    assert!(ok.success());
    std::fs::write(dir.join("key"), b"0123456789abcdef0123456789abcdef").expect("key");
    std::fs::write(dir.join("policy.yaml"), "mode: enforce\n").expect("policy");
    let kubeconfig = "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n";
    std::fs::write(dir.join("kubeconfig"), kubeconfig).expect("kubeconfig");
    let (port, metrics) = (free_port(), free_port());
    let child = Command::new(bin)
        .arg("webhook")
        .arg("--kubeconfig")
        .arg(dir.join("kubeconfig"))
        .arg("--policy-file")
        .arg(dir.join("policy.yaml"))
        .arg("--tls-dir")
        .arg(dir.join("certs"))
        .arg("--signing-key")
        .arg(dir.join("key"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            &format!("127.0.0.1:{metrics}"),
        ])
        .args(["--shutdown-delay-seconds", &delay.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr")).expect("log file"))
        .spawn()
        .expect("webhook starts");
    (Webhook(child), port, metrics)
}

/// A plain-HTTP GET (the metrics port); `None` while nothing answers.
pub fn get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

pub fn wait_for(mut f: impl FnMut() -> bool, secs: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}
