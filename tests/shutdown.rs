//! Graceful shutdown of the real `backup-guard webhook` process: on SIGTERM it turns unready,
//! keeps answering through the shutdown delay, drains and exits 0; a second signal exits at once.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

#[path = "support/webhook_process.rs"]
mod webhook_process;
use webhook_process::{get, start, wait_for};

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
