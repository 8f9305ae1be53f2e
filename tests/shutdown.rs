//! Graceful shutdown of the real `backup-guard webhook` process: on SIGTERM it turns unready,
//! keeps answering through the shutdown delay, drains and exits 0; a second signal exits at once.
//! No API server is needed for this: the kubeconfig points at a closed port (watches just retry).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The webhook process, killed if a failed assertion leaves it running.
struct Webhook(Child);

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

fn start(dir: &Path, delay: u64) -> (Webhook, u16, u16) {
    let bin = env!("CARGO_BIN_EXE_backup-guard");
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

fn get(port: u16, path: &str) -> Option<String> {
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

fn wait_for(mut f: impl FnMut() -> bool, secs: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn signal(child: &Child, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill")
        .success());
}

#[test]
fn sigterm_turns_unready_keeps_serving_through_the_delay_then_exits_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, port, metrics) = start(dir.path(), 2);
    wait_for(
        || get(metrics, "/livez").is_some_and(|r| r.starts_with("HTTP/1.1 200")),
        20,
        "livez",
    );
    let ready = get(metrics, "/readyz").expect("readyz answers");
    assert!(ready.contains("shutting down=false"), "{ready}");
    // The log is buffered, but a running process writes it out within 200 ms.
    wait_for(
        || {
            std::fs::read_to_string(dir.path().join("stderr"))
                .is_ok_and(|l| l.contains("backup-guard webhook serving"))
        },
        2,
        "the start-up line in the log while serving",
    );
    signal(&child, "-TERM");
    wait_for(
        || get(metrics, "/readyz").is_some_and(|r| r.contains("shutting down=true")),
        5,
        "readyz to report shutting down",
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "still accepting during the delay"
    );
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    // The log is buffered: the last lines are written out when the command returns.
    let log = std::fs::read_to_string(dir.path().join("stderr")).expect("log");
    assert!(log.contains("drained; exiting"), "{log}");
}

#[test]
fn a_second_signal_exits_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, _, metrics) = start(dir.path(), 30);
    wait_for(|| get(metrics, "/livez").is_some(), 20, "livez");
    signal(&child, "-TERM");
    wait_for(
        || get(metrics, "/readyz").is_some_and(|r| r.contains("shutting down=true")),
        5,
        "shutdown to begin",
    );
    signal(&child, "-INT");
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "a second signal must exit at once"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    let log = std::fs::read_to_string(dir.path().join("stderr")).expect("log");
    assert!(log.contains("second signal: exiting now"), "{log}");
}
