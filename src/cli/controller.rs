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
use crate::storage::AmbientCredentials;

/// Flags of `controller` and `run`: the serving flags and the controller's own.
#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// For an aws BackupStorageLocation without any credentials Secret (`velero install
    /// --no-secret`), sign with the controller's own AWS identity, as Velero's AWS plugin does:
    /// keys in its environment, IAM Roles for Service Accounts, EKS Pod Identity, or the instance
    /// metadata service.
    #[arg(long)]
    pub ambient_credentials: bool,
    /// velero engine: minutes Velero may leave a DeleteBackupRequest untaken, while it works on
    /// no other request, before each look counts as a failed cleanup (Event CleanupFailed, alert
    /// BackupGuardCleanupFailing).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub velero_idle_minutes: u64,
}

impl ControllerArgs {
    fn config(&self) -> anyhow::Result<ControllerConfig> {
        let mut cfg = ControllerConfig::new(&lease_namespace(&self.serve)?);
        cfg.velero_idle_after = Duration::from_secs(self.velero_idle_minutes * 60);
        if self.ambient_credentials {
            let ambient = AmbientCredentials::from_env();
            tracing::info!(
                identity = ambient.aws_source().unwrap_or("none (AWS_EC2_METADATA_DISABLED)"),
                "controller: aws locations without a credentials Secret use the controller's own identity"
            );
            cfg.storage.ambient = Some(ambient);
        }
        Ok(cfg)
    }
}

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
pub fn controller(args: &ControllerArgs) -> anyhow::Result<()> {
    let _log = init_tracing(args.serve.log_format);
    let cfg = args.config()?;
    let args = &args.serve;
    let key = signing_key(&args.signing_key)?;
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
pub fn run(args: &ControllerArgs) -> anyhow::Result<()> {
    let _log = init_tracing(args.serve.log_format);
    let cfg = args.config()?;
    let args = &args.serve;
    let serve_cfg = ServeConfig {
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        tls_dir: args.tls_dir.clone(),
        policy: configured_source(args)?,
        signing_key: signing_key(&args.signing_key)?,
        shutdown_delay: Duration::from_secs(args.shutdown_delay_seconds),
        drain_timeout: Duration::from_secs(20),
    };
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

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::{Cli, Command};

    fn ambient(line: &[&str]) -> Option<&'static str> {
        let cli = Cli::try_parse_from(line).expect("parses");
        let (Command::Controller(args) | Command::Run(args)) = cli.command else {
            panic!("not controller or run: {line:?}");
        };
        let cfg = args.config().expect("config");
        cfg.storage.ambient.as_ref().and_then(|a| a.aws_source())
    }

    #[test]
    fn ambient_credentials_only_when_asked_for() {
        assert_eq!(ambient(&["backup-guard", "controller"]), None);
        assert_eq!(ambient(&["backup-guard", "run"]), None);
        for command in ["controller", "run"] {
            assert!(
                ambient(&["backup-guard", command, "--ambient-credentials"]).is_some(),
                "{command}"
            );
        }
        let webhook = Cli::try_parse_from(["backup-guard", "webhook", "--ambient-credentials"]);
        assert!(webhook.is_err(), "the webhook signs nothing");
    }

    #[test]
    fn the_velero_idle_limit_is_in_minutes() {
        let cfg = |line: &[&str]| {
            let Command::Run(args) = Cli::try_parse_from(line).expect("parses").command else {
                panic!("run");
            };
            args.config().expect("config").velero_idle_after.as_secs()
        };
        assert_eq!(cfg(&["backup-guard", "run"]), 30 * 60);
        assert_eq!(
            cfg(&["backup-guard", "run", "--velero-idle-minutes", "90"]),
            90 * 60
        );
        let zero = Cli::try_parse_from(["backup-guard", "run", "--velero-idle-minutes", "0"]);
        assert!(zero.is_err(), "0 would count every request as idle");
    }
}
