//! Driving the real kubectl against the suite's cluster, as the users of the suite.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Who runs a command (impersonated through the admin kubeconfig, so kind users can run it too).
#[derive(Clone, Copy, Debug)]
pub enum Who {
    Admin,
    Alice,
    Bob,
    Mallory,
    Velero,
}

impl Who {
    fn args(self) -> Vec<&'static str> {
        match self {
            Who::Admin => vec![],
            Who::Alice => vec!["--as=alice", "--as-group=backup-operators"],
            Who::Bob => vec!["--as=bob", "--as-group=backup-admins"],
            Who::Mallory => vec!["--as=mallory"],
            Who::Velero => vec![
                "--as=system:serviceaccount:velero:velero",
                "--as-group=system:serviceaccounts",
            ],
        }
    }
}

/// What kubectl printed.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

fn finish(cmd: &str, out: Output) -> Run {
    let run = Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!("$ kubectl {cmd}\n{}{}", run.stdout, run.stderr);
    run
}

/// `kubectl ARGS` as `who`.
pub fn kubectl(who: Who, args: &str) -> Run {
    let mut cmd =
        Command::new(std::env::var("KUBECTL").unwrap_or_else(|_| "/usr/bin/kubectl".into()));
    cmd.args(who.args()).args(shell_words(args));
    finish(args, cmd.output().expect("kubectl runs"))
}

/// `kubectl ARGS -f -` with `stdin` as `who`.
pub fn kubectl_stdin(who: Who, args: &str, stdin: &str) -> Run {
    let mut cmd =
        Command::new(std::env::var("KUBECTL").unwrap_or_else(|_| "/usr/bin/kubectl".into()));
    cmd.args(who.args())
        .args(shell_words(args))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("kubectl runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    finish(args, child.wait_with_output().expect("kubectl finishes"))
}

/// Splits on spaces, keeping single-quoted parts together.
fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Waits until `f` holds, up to `secs`.
pub fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out after {secs}s waiting for: {what}");
}

/// The value of one series on the guard's /metrics (0 when absent).
pub fn metric(series: &str) -> f64 {
    let url = format!(
        "{}/metrics",
        std::env::var("E2E_METRICS_URL").expect("E2E_METRICS_URL is set by make e2e")
    );
    let out = Command::new("curl")
        .args(["-fsS", &url])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
