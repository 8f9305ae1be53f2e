//! `backup-guard webhook`: the HTTPS admission endpoints, the metrics port, the watch-fed index,
//! the policy source, Events, certificate reload and graceful shutdown, wired together.

pub mod events;
pub mod feed;
pub mod policy_source;
pub mod routes;
pub mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum_server::tls_rustls::RustlsConfig;
use axum_server::Handle;
use kube::Client;
use tokio::sync::mpsc;

pub use state::Shared;

use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::tls;

/// Where the policy comes from.
#[derive(Debug, Clone)]
pub enum PolicySource {
    File(PathBuf),
    ConfigMap { namespace: String, name: String },
}

/// What `webhook` needs to run.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub tls_dir: PathBuf,
    pub policy: PolicySource,
    pub signing_key: Vec<u8>,
    /// How long to stay up, unready, before draining (lets endpoints update).
    pub shutdown_delay: Duration,
    /// How long in-flight requests may take to finish.
    pub drain_timeout: Duration,
}

/// Runs the webhook until SIGTERM/SIGINT (a second signal exits at once).
pub async fn serve(client: Client, cfg: ServeConfig) -> anyhow::Result<()> {
    start(&client, cfg, Metrics::new())?.serve().await
}

/// The webhook with its state live (certificate reload, watch feed, policy source, Events) but
/// not yet listening: `backup-guard run` hands [`Started::shared`] to the controller, so both
/// read one policy source and record into one set of metrics.
pub struct Started {
    /// The policy in force, the index, readiness and metrics, as the webhook's handlers see them.
    pub shared: Arc<Shared>,
    cfg: ServeConfig,
    tls: RustlsConfig,
}

/// Loads the serving certificate (refusing to start without a usable one) and starts everything
/// the handlers read from. Needs a tokio runtime.
pub fn start(client: &Client, cfg: ServeConfig, metrics: Metrics) -> anyhow::Result<Started> {
    let loaded = tls::load_dir(&cfg.tls_dir).with_context(|| {
        format!(
            "no usable serving certificate in {} (make one with `backup-guard certs`)",
            cfg.tls_dir.display()
        )
    })?;
    metrics.certificate_expiry.set(loaded.not_after as f64);
    let resolver = tls::Resolver::new(&loaded);
    let tls = RustlsConfig::from_config(tls::server_config(resolver.clone())?);

    let (tx, rx) = mpsc::channel(1024);
    let shared = Shared::new(
        Policy::default(),
        cfg.signing_key.clone(),
        metrics,
        Some(tx),
    );

    let cert_metric = shared.metrics.certificate_expiry.clone();
    tokio::spawn(tls::watch_dir(
        cfg.tls_dir.clone(),
        resolver,
        loaded,
        Duration::from_secs(2),
        move |l| cert_metric.set(l.not_after as f64),
    ));
    tokio::spawn(events::post_events(client.clone(), rx));
    tokio::spawn(feed::run(client.clone(), shared.clone()));
    policy_source::start(client, &shared, cfg.policy.clone())?;
    {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(15));
            loop {
                tick.tick().await;
                feed::update_gauges(&shared);
            }
        });
    }
    Ok(Started { shared, cfg, tls })
}

impl Started {
    /// Serves the admission endpoints and the metrics port until SIGTERM/SIGINT, then drains.
    pub async fn serve(self) -> anyhow::Result<()> {
        let Started { shared, cfg, tls } = self;
        let handle = Handle::new();
        let metrics_listener = tokio::net::TcpListener::bind(cfg.metrics_listen)
            .await
            .with_context(|| format!("cannot listen on {} for metrics", cfg.metrics_listen))?;
        let metrics_app = routes::metrics_router(shared.clone());
        let metrics_task =
            tokio::spawn(async move { axum::serve(metrics_listener, metrics_app).await });

        tokio::spawn(shutdown_on_signal(
            shared.clone(),
            handle.clone(),
            cfg.shutdown_delay,
            cfg.drain_timeout,
        ));
        tracing::info!(listen = %cfg.listen, metrics = %cfg.metrics_listen, "backup-guard webhook serving");
        // HTTP/1.1 only, as the API server speaks it, also to clients that skip ALPN (see tls).
        axum_server::bind_rustls(cfg.listen, tls)
            .http1_only()
            .handle(handle)
            .serve(routes::webhook_router(shared).into_make_service())
            .await
            .with_context(|| format!("cannot serve on {}", cfg.listen))?;
        metrics_task.abort();
        tracing::info!("drained; exiting");
        Ok(())
    }
}

async fn shutdown_on_signal(
    shared: Arc<Shared>,
    handle: Handle<SocketAddr>,
    delay: Duration,
    drain: Duration,
) {
    wait_for_signal().await;
    tracing::info!(
        "signal received: not ready, draining in-flight requests (a second signal exits at once)"
    );
    shared
        .readiness
        .shutting_down
        .store(true, Ordering::Release);
    tokio::spawn(async {
        wait_for_signal().await;
        tracing::warn!("second signal: exiting now");
        crate::logging::flush();
        std::process::exit(130);
    });
    tokio::time::sleep(delay).await;
    handle.graceful_shutdown(Some(drain));
}

/// Completes on SIGTERM or SIGINT.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
