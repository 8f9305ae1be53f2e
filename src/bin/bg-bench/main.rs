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
use std::path::{Path, PathBuf};

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

mod load;

use load::{load, LoadArgs};

pub(crate) const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
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
        .http1_only()
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
