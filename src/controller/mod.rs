//! The companion controller: performs the cleanup of sanctioned backups (contract, "Cleanup").
//!
//! A kube-runtime `Controller` over Backups. Each reconcile observes a Backup and what belongs
//! to it, asks the pure [`plan::plan`] for the remaining steps, and applies them, re-checking
//! sanction — with the webhook's own [`crate::policy::stamps::sanction`] — right before every
//! step that starts or destroys something. Only the replica holding Lease
//! `backup-guard-controller` runs it ([`lease`]).

pub mod apply;
pub mod cleaner;
pub mod error;
pub mod kinds;
pub mod lease;
pub mod location;
pub mod observe;
pub mod plan;
pub mod reconcile;
pub mod report;
pub mod status;
pub mod steps;

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::controller::{Config, Controller};
use kube::runtime::watcher;
use kube::Client;
use tokio::sync::watch;

pub use apply::{Outcome, Report};
pub use cleaner::Cleaner;
pub use error::Error;
pub use lease::LeaseSettings;
pub use plan::{plan, Observed, Plan, Step};

use crate::metrics::Metrics;
use crate::server::Shared;
use crate::storage::ClientSettings;
use kinds::Kind;

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Namespace of Lease `backup-guard-controller` (the guard's own).
    pub lease_namespace: String,
    /// This replica's holder identity.
    pub identity: String,
    pub lease: LeaseSettings,
    /// Backups cleaned up at the same time.
    pub concurrency: u16,
    /// Watch Backups in this namespace only (`None`: every namespace).
    pub namespace: Option<String>,
    /// HTTP settings for object storage.
    pub storage: ClientSettings,
    /// `velero` engine: how long Velero may leave a DeleteBackupRequest untaken before each
    /// look counts as a failed cleanup (Event `CleanupFailed`, alert `BackupGuardCleanupFailing`).
    pub velero_idle_after: Duration,
}

impl ControllerConfig {
    /// Defaults for a guard running in `namespace`.
    pub fn new(lease_namespace: &str) -> ControllerConfig {
        ControllerConfig {
            lease_namespace: lease_namespace.into(),
            identity: lease::identity(),
            lease: LeaseSettings::default(),
            concurrency: 4,
            namespace: None,
            storage: ClientSettings::default(),
            velero_idle_after: cleaner::VELERO_IDLE_AFTER,
        }
    }
}

/// Runs leader election and, while leading, the controller, until `shutdown` completes; then
/// releases the lease. `policy` supplies the policy in force and the signing key; it must be fed
/// by a policy source (the controller waits until a policy has loaded).
pub async fn run(
    client: Client,
    policy: Arc<Shared>,
    metrics: Metrics,
    cfg: ControllerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let (leader_tx, leader_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let election = tokio::spawn(lease::elect(
        client.clone(),
        cfg.lease_namespace.clone(),
        cfg.identity.clone(),
        cfg.lease,
        leader_tx,
        stop_rx,
    ));
    tracing::info!(identity = %cfg.identity, namespace = %cfg.lease_namespace, "controller: standing for leader election");
    let cleaner = Arc::new(
        Cleaner::new(
            client,
            policy.clone(),
            metrics,
            leader_rx.clone(),
            &cfg.identity,
        )
        .with_storage_settings(cfg.storage.clone())
        .with_velero_idle_after(cfg.velero_idle_after),
    );
    tokio::select! {
        _ = lead(cleaner, policy, leader_rx, &cfg) => {}
        _ = shutdown => tracing::info!("controller: shutting down, releasing the lease"),
    }
    stop_tx.send_replace(true);
    if tokio::time::timeout(Duration::from_secs(5), election)
        .await
        .is_err()
    {
        tracing::warn!("controller: the lease was not released in time");
    }
}

/// Runs the controller whenever this replica leads; stops its writers the moment it does not.
async fn lead(
    cleaner: Arc<Cleaner>,
    policy: Arc<Shared>,
    mut leader: watch::Receiver<bool>,
    cfg: &ControllerConfig,
) {
    // The configured policy, not the lockdown an invalid one leaves: a cleanup in progress
    // would be called off under it.
    while !policy.readiness.policy_configured.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    loop {
        // The guards `wait_for` returns must not live across an await (they are not Send).
        if leader.wait_for(|l| *l).await.map(|_| ()).is_err() {
            return;
        }
        let mut lost = leader.clone();
        let lost = async move {
            let _ = lost.wait_for(|l| !*l).await.map(|_| ());
        };
        tokio::select! {
            _ = controller(cleaner.clone(), cfg.namespace.as_deref(), cfg.concurrency) => {
                tracing::warn!("controller: the Backup watch ended; restarting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            _ = lost => {
                tracing::warn!("controller: lost the lease; cleanups in progress stop and resume on the new leader");
            }
        }
    }
}

/// The kube-runtime controller over the Backups of `namespace` (`None`: the whole cluster).
pub async fn controller(cleaner: Arc<Cleaner>, namespace: Option<&str>, concurrency: u16) {
    let api = Kind::Backup.api(&cleaner.client, namespace);
    let changes = policy_changes(cleaner.clone(), Duration::from_secs(2));
    Controller::new_with(api, watcher::Config::default(), Kind::Backup.resource())
        .with_config(Config::default().concurrency(concurrency))
        .reconcile_all_on(changes)
        .run(reconcile::reconcile, reconcile::error_policy, cleaner)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller: reconcile error");
            }
        })
        .await;
}

/// Ticks whenever a new policy takes effect: a policy edit (approval no longer required, a longer
/// `request.ttl`) can sanction a backup without any change to the backup itself.
fn policy_changes(
    cleaner: Arc<Cleaner>,
    every: Duration,
) -> impl futures::Stream<Item = ()> + Send + 'static {
    let first = cleaner.policy();
    futures::stream::unfold((cleaner, first), move |(cleaner, seen)| async move {
        loop {
            tokio::time::sleep(every).await;
            let now = cleaner.policy();
            if !Arc::ptr_eq(&now, &seen) {
                return Some(((), (cleaner, now)));
            }
        }
    })
}
