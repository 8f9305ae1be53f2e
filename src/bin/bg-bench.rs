//! `bg-bench`: the servers and the load generator behind `make bench` (hack/bench/run.sh).
//!
//! - `serve --mode real` serves the project's own `webhook_router` (index seeded from
//!   tests/fixtures/objects, optionally plus N synthetic Backups) on the project's TLS stack
//!   (`tls::server_config` + axum-server), in a process of its own.
//! - `serve --mode null` is the same axum + rustls stack and layers; its handler returns a fixed
//!   allow review without decoding — the ceiling the real webhook is compared with.
//! - `load` drives either over keep-alive HTTP/1.1 TLS connections with the captured
//!   AdmissionReviews of tests/fixtures/admission, closed-loop or at a fixed offered rate.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use backup_guard::index::{objects_from_text, Index};
use backup_guard::logging::{init_tracing, LogFormat};
use backup_guard::metrics::Metrics;
use backup_guard::policy::request::Resource;
use backup_guard::policy::Policy;
use backup_guard::server::routes::{webhook_router, with_limits};
use backup_guard::server::Shared;
use backup_guard::tls;
use clap::{Parser, Subcommand, ValueEnum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const KEY: &[u8] = b"bench-signing-key-0123456789abcdef";
/// What the null webhook answers to everything.
const ALLOW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"00000000-0000-0000-0000-000000000000","allowed":true}}"#;

#[derive(Parser)]
#[command(about = "backup-guard benchmark servers and load generator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the real or the null webhook on 127.0.0.1 (prints `listening <addr> …`).
    Serve(ServeArgs),
    /// Drive a webhook and print `requests=… rps=… p50_ms=… p99_ms=… errors=…`.
    Load(LoadArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Real,
    Null,
}

#[derive(clap::Args)]
struct ServeArgs {
    #[arg(long, value_enum)]
    mode: Mode,
    /// Directory with tls.crt and tls.key (`backup-guard certs --host 127.0.0.1`).
    #[arg(long)]
    tls_dir: PathBuf,
    /// Synthetic Backups (copies of the fixture Backups, all in `velero`) added to the index.
    #[arg(long, default_value_t = 0)]
    synthetic_backups: usize,
    #[arg(long, default_value = FIXTURES)]
    fixtures: PathBuf,
}

#[derive(clap::Args)]
struct LoadArgs {
    #[arg(long)]
    addr: SocketAddr,
    /// The CA that signed the server's certificate.
    #[arg(long)]
    ca: PathBuf,
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Total offered reviews/s, spread evenly over the connections; closed-loop when absent.
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, default_value = FIXTURES)]
    fixtures: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    match cli.command {
        Command::Serve(args) => rt.block_on(serve(args)),
        Command::Load(args) => rt.block_on(load(args)),
    }
}

/// VmRSS of this process in KiB.
fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // As in production: JSON logs of every denial, to stderr (run.sh sends them to a file).
    let _log = init_tracing(LogFormat::Json);
    let rss_start = vm_rss_kib();
    let shared = Shared::new(Policy::default(), KEY.to_vec(), Metrics::new(), None);
    let objects_dir = args.fixtures.join("objects");
    if args.mode == Mode::Real {
        let mut index = shared.write_index();
        for entry in std::fs::read_dir(&objects_dir)
            .with_context(|| format!("cannot list {}", objects_dir.display()))?
        {
            let path = entry?.path();
            let text = std::fs::read_to_string(&path)?;
            index
                .load_text(&text, KEY)
                .with_context(|| format!("cannot load {}", path.display()))?;
        }
        seed(
            &mut index,
            &objects_dir.join("velero-namespace.yaml"),
            args.synthetic_backups,
        )?;
    }
    let rss_seeded = vm_rss_kib();

    let loaded = tls::load_dir(&args.tls_dir)?;
    let config = RustlsConfig::from_config(tls::server_config(tls::Resolver::new(&loaded))?);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let router = match args.mode {
        Mode::Real => webhook_router(shared),
        Mode::Null => null_router(),
    };
    let mut out = std::io::stdout();
    writeln!(
        out,
        "listening {addr} rss_start_kib={rss_start} rss_seeded_kib={rss_seeded} synthetic_backups={}",
        args.synthetic_backups
    )?;
    out.flush()?;
    axum_server::from_tcp_rustls(listener, config)?
        .serve(router.into_make_service())
        .await?;
    Ok(())
}

/// Adds `n` Backups to the index: copies of the fixture Backups, renamed as a schedule names them.
fn seed(index: &mut Index, objects: &Path, n: usize) -> anyhow::Result<()> {
    if n == 0 {
        return Ok(());
    }
    let text = std::fs::read_to_string(objects)?;
    let templates: Vec<_> = objects_from_text(&text)?
        .into_iter()
        .filter(|(r, _)| *r == Resource::Backup)
        .map(|(_, o)| o)
        .collect();
    if templates.is_empty() {
        bail!("{} holds no Backup to copy", objects.display());
    }
    for i in 0..n {
        let mut o = templates[i % templates.len()].clone();
        let schedule = o
            .label("velero.io/schedule-name")
            .unwrap_or("daily")
            .to_owned();
        // One backup an hour, going back from 2026-11-23: the names Velero gives scheduled ones.
        let at = jiff::Timestamp::from_second(1_795_467_600 - 3600 * i as i64)?;
        o.metadata.name = format!("{schedule}-{}", at.strftime("%Y%m%d%H%M%S"));
        o.metadata.uid = format!("{:08x}-1c22-4448-a150-{:012x}", i, i);
        index.apply(Resource::Backup, &o, KEY);
    }
    Ok(())
}

fn null_router() -> Router {
    with_limits(
        Router::new()
            .route("/validate", post(allow))
            .route("/mutate", post(allow)),
    )
}

async fn allow(_body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], ALLOW).into_response()
}

/// One keep-alive HTTP/1.1 connection over TLS, one request in flight at a time.
struct Conn {
    stream: TlsStream<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr, tls: &TlsConnector) -> anyhow::Result<Conn> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
        let stream = tls.connect(name, tcp).await?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends one request and reads its response; true when the status is 200.
    async fn round_trip(&mut self, request: &[u8]) -> std::io::Result<bool> {
        self.stream.write_all(request).await?;
        self.stream.flush().await?;
        self.buf.clear();
        loop {
            if let Some(head) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let (status, length) = parse_head(&self.buf[..head])?;
                let total = head + 4 + length;
                while self.buf.len() < total {
                    self.read_more().await?;
                }
                return Ok(status == 200);
            }
            self.read_more().await?;
        }
    }

    async fn read_more(&mut self) -> std::io::Result<()> {
        self.buf.reserve(16 * 1024);
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

fn parse_head(head: &[u8]) -> std::io::Result<(u16, usize)> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let text = std::str::from_utf8(head).map_err(|_| bad("response head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .ok_or_else(|| bad("no content-length (chunked answers are not expected here)"))?;
    Ok((status, length))
}

/// Every admission fixture as a ready-to-send `POST /validate`, compact as the API server sends
/// it (Go's encoder; the fixtures are stored indented for reading).
fn requests(fixtures: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let dir = fixtures.join("admission");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let indented = std::fs::read(&p)?;
        let body = compact(&indented);
        let same: serde_json::Value = serde_json::from_slice(&body)
            .with_context(|| format!("{} is not JSON", p.display()))?;
        if same != serde_json::from_slice::<serde_json::Value>(&indented)? {
            bail!("compacting {} changed it", p.display());
        }
        let mut req = format!(
            "POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(&body);
        out.push(req);
    }
    if out.is_empty() {
        bail!("no *.json AdmissionReview in {}", dir.display());
    }
    Ok(out)
}

/// JSON without the whitespace between tokens (the order of keys kept).
fn compact(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            out.push(b);
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if !b.is_ascii_whitespace() {
            in_string = b == b'"';
            out.push(b);
        }
    }
    out
}

fn connector(ca: &Path) -> anyhow::Result<TlsConnector> {
    let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

struct Window {
    measure_from: Instant,
    end: Instant,
    /// Per-connection send interval at a fixed offered rate.
    interval: Option<Duration>,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
}

async fn drive(
    mut conn: Conn,
    requests: Arc<Vec<Vec<u8>>>,
    w: Arc<Window>,
    nth: usize,
    of: usize,
) -> Tally {
    let mut tally = Tally::default();
    let start = Instant::now();
    for k in 0usize.. {
        // At a fixed rate, a request sent late because the previous answer came late is timed
        // from when it was due, so a slow answer is not hidden by the request it delayed (no
        // coordinated omission). One that waited for its time is timed from when the timer woke
        // it: tokio's timer ticks in milliseconds, and its lateness is not the server's.
        let scheduled = match w.interval {
            Some(iv) => {
                let at = start + iv.mul_f64(k as f64 + nth as f64 / of as f64);
                if Instant::now() < at {
                    tokio::time::sleep_until(at).await;
                    Instant::now()
                } else {
                    at
                }
            }
            None => Instant::now(),
        };
        if scheduled >= w.end {
            break;
        }
        let ok = conn.round_trip(&requests[(nth + k) % requests.len()]).await;
        if scheduled < w.measure_from {
            continue;
        }
        let us = scheduled.elapsed().as_micros().min(u32::MAX as u128) as u32;
        match ok {
            Ok(true) => tally.latencies_us.push(us),
            Ok(false) => tally.errors += 1,
            Err(_) => {
                tally.errors += 1;
                break;
            }
        }
    }
    tally
}

async fn load(args: LoadArgs) -> anyhow::Result<()> {
    let requests = Arc::new(requests(&args.fixtures)?);
    let tls = connector(&args.ca)?;
    let mut conns = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        conns.push(Conn::open(args.addr, &tls).await?);
    }
    let now = Instant::now();
    let window = Arc::new(Window {
        measure_from: now + Duration::from_secs_f64(args.warmup),
        end: now + Duration::from_secs_f64(args.warmup + args.seconds),
        interval: args
            .rate
            .map(|r| Duration::from_secs_f64(args.connections as f64 / r)),
    });
    let of = conns.len();
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(nth, c)| tokio::spawn(drive(c, requests.clone(), window.clone(), nth, of)))
        .collect();
    let (mut all, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let tally = t.await?;
        all.extend(tally.latencies_us);
        errors += tally.errors;
    }
    all.sort_unstable();
    let pct = |p: usize| -> f64 {
        if all.is_empty() {
            return f64::NAN;
        }
        let i = (all.len() * p).div_ceil(100).saturating_sub(1);
        f64::from(all[i]) / 1000.0
    };
    println!(
        "requests={} seconds={} rps={:.0} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} errors={errors}",
        all.len(),
        args.seconds,
        all.len() as f64 / args.seconds,
        pct(50),
        pct(99),
        pct(100),
    );
    Ok(())
}
