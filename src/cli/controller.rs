//! `controller` (cleanup of sanctioned backups) and `run` (webhook and controller in one process).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use kube::Client;

use super::serve::{
    client, policy_configmap, policy_source as configured_source, signing_key, ServeArgs,
};
use crate::controller::{self, ControllerConfig};
use crate::logging::init_tracing;
use crate::metrics::Metrics;
use crate::policy::Policy;
use crate::server::{self, policy_source, routes, ServeConfig, Shared};

/// The guard's namespace, where the Lease lives: that of `--policy-configmap`.
fn lease_namespace(args: &ServeArgs) -> anyhow::Result<String> {
    Ok(policy_configmap(args)?.0)
}

/// The policy in force, fed by the same source the webhook reads. The controller reads no
/// index, so readiness waits only for the policy.
fn policy_state(
    client: &Client,
    args: &ServeArgs,
    key: Vec<u8>,
    metrics: Metrics,
) -> anyhow::Result<Arc<Shared>> {
    let shared = Shared::new(Policy::default(), key, metrics, None);
    shared.readiness.index_synced.store(true, Ordering::Release);
    policy_source::start(client, &shared, configured_source(args)?)?;
    Ok(shared)
}

/// `backup-guard controller`: the controller alone, with metrics and probes on --metrics-listen.
pub fn controller(args: &ServeArgs) -> anyhow::Result<()> {
    let _log = init_tracing(args.log_format);
    let key = signing_key(&args.signing_key)?;
    let cfg = ControllerConfig::new(&lease_namespace(args)?);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = client(args.kubeconfig.as_ref()).await?;
        let metrics = Metrics::new();
        let policy = policy_state(&client, args, key, metrics.clone())?;
        let listener = tokio::net::TcpListener::bind(args.metrics_listen)
            .await
            .with_context(|| format!("cannot listen on {} for metrics", args.metrics_listen))?;
        let app = routes::metrics_router(policy.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        tracing::info!(metrics = %args.metrics_listen, "backup-guard controller starting");
        let shutdown = {
            let policy = policy.clone();
            async move {
                server::wait_for_signal().await;
                policy
                    .readiness
                    .shutting_down
                    .store(true, Ordering::Release);
            }
        };
        controller::run(client, policy, metrics, cfg, shutdown).await;
        Ok(())
    })
}

/// `backup-guard run`: the webhook on every replica, the controller on the lease holder, one
/// `/metrics` for both.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let _log = init_tracing(args.log_format);
    let serve_cfg = ServeConfig {
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        tls_dir: args.tls_dir.clone(),
        policy: configured_source(args)?,
        signing_key: signing_key(&args.signing_key)?,
        shutdown_delay: Duration::from_secs(args.shutdown_delay_seconds),
        drain_timeout: Duration::from_secs(20),
    };
    let cfg = ControllerConfig::new(&lease_namespace(args)?);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = client(args.kubeconfig.as_ref()).await?;
        let metrics = Metrics::new();
        // One policy source for both: the controller reads the webhook's policy and key.
        let webhook = server::start(&client, serve_cfg, metrics.clone())?;
        let cleanup = tokio::spawn(controller::run(
            client.clone(),
            webhook.shared.clone(),
            metrics,
            cfg,
            server::wait_for_signal(),
        ));
        let served = webhook.serve().await;
        if served.is_err() {
            cleanup.abort();
        } else if tokio::time::timeout(Duration::from_secs(10), cleanup)
            .await
            .is_err()
        {
            tracing::warn!("the controller did not stop in time");
        }
        served
    })
}
