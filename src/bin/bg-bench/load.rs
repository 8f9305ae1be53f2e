//! `bg-bench load`: the load generator. Keep-alive HTTP/1.1 over TLS, one request in flight per
//! connection, the captured AdmissionReviews of tests/fixtures/admission sent compact as the API
//! server sends them; closed-loop or at a fixed offered rate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use backup_guard::tls;

use crate::FIXTURES;

#[derive(clap::Args)]
pub(crate) struct LoadArgs {
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

pub(crate) async fn load(args: LoadArgs) -> anyhow::Result<()> {
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
