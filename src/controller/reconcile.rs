//! One reconcile of one Backup: observe, plan, apply, then record what happened.

use std::sync::Arc;
use std::time::Duration;

use kube::api::DynamicObject;
use kube::runtime::controller::Action;

use super::apply::{Outcome, Report};
use super::cleaner::{Cleaner, FAILED};
use super::error::Error;
use super::kinds::view;
use super::kinds::Kind;
use super::observe::{engine_for, velero_only};
use super::plan::WAIT_FOR_BACKUP_S;
use super::plan::{plan, Engine, Observed, Plan, Step, Untaken, VeleroOnly};
use super::report::{self, backup_name, Left};
use super::steps;
use crate::policy::request::Object;
use crate::policy::stamps::{SanctionFacts, Unsanctioned, CLEANUP_FINALIZER};

/// Reconciles one Backup. Step failures are handled here (Event, metric, backoff); an error
/// returned means the Backup could not even be observed.
pub async fn reconcile(obj: Arc<DynamicObject>, cleaner: Arc<Cleaner>) -> Result<Action, Error> {
    let backup = view(&obj);
    let (facts, verdict) = cleaner.sanction(&backup);
    let finalized = backup
        .metadata
        .finalizers
        .iter()
        .any(|f| f == CLEANUP_FINALIZER);
    // The common case, answered without a single API call.
    if verdict.is_err() && !finalized {
        return Ok(Action::await_change());
    }
    if !cleaner.is_leader() {
        return Ok(Action::await_change());
    }
    let observed = match cleaner.observe(&backup).await {
        Ok(observed) => observed,
        Err(error) => return Ok(unobservable(&cleaner, &backup, &error).await),
    };
    match plan(&observed) {
        Plan::Ignore => Ok(Action::await_change()),
        Plan::Stop {
            why,
            release,
            withdraw,
        } => stop(&cleaner, &backup, why, release, &withdraw).await,
        Plan::NotVelero { release } => not_velero(&cleaner, &backup, release).await,
        Plan::Wait { phase } => {
            let note = report::waiting_note(&backup, &phase);
            tracing::info!(backup = %backup_name(&backup), "{note}");
            if cleaner.mark_waiting(&backup.metadata.uid) {
                cleaner.event(&backup, false, "CleanupWaiting", note).await;
            }
            Ok(Action::requeue(Duration::from_secs(WAIT_FOR_BACKUP_S)))
        }
        Plan::Clean(steps) => clean(&cleaner, &backup, &facts, &observed, &steps).await,
    }
}

/// A backup being cleaned whose state could not be read (its Restores, snapshots, requests):
/// a failed attempt like any other, with its Event and metric, retried with backoff.
async fn unobservable(cleaner: &Cleaner, backup: &Object, error: &Error) -> Action {
    let delay = cleaner.backoff(&backup.metadata.uid);
    // The engine as far as the Backup alone tells (under `auto`, its PodVolumeBackups are unseen).
    let engine = engine_for(
        cleaner.policy().cleanup.engine,
        &velero_only(backup, 0),
        false,
    );
    cleaner
        .metrics
        .cleanups
        .with_label_values(&[report::engine_name(engine), "failure"])
        .inc();
    let note = report::unobservable_note(backup, error, delay);
    tracing::warn!(backup = %backup_name(backup), "{note}");
    cleaner.event(backup, true, FAILED, note).await;
    Action::requeue(delay)
}

/// A sanctioned Backup outside Velero's namespace: nothing is cleaned, and the Event says why.
async fn not_velero(cleaner: &Cleaner, backup: &Object, release: bool) -> Result<Action, Error> {
    if release {
        steps::remove_finalizer(&cleaner.client, backup).await?;
    }
    cleaner.finish(&backup.metadata.uid);
    let velero = cleaner.policy().velero.namespace.clone();
    let note = report::not_velero_note(backup, &velero, release);
    tracing::warn!(backup = %backup_name(backup), "{note}");
    cleaner.event(backup, true, "CleanupSkipped", note).await;
    Ok(Action::await_change())
}

/// Backoff after a Backup could not be observed.
pub fn error_policy(obj: Arc<DynamicObject>, error: &Error, cleaner: Arc<Cleaner>) -> Action {
    let backup = view(&obj);
    let delay = cleaner.backoff(&backup.metadata.uid);
    tracing::warn!(backup = %backup_name(&backup), error = %error, retry_in = ?delay, "cannot observe the backup's cleanup state");
    Action::requeue(delay)
}

async fn stop(
    cleaner: &Cleaner,
    backup: &Object,
    why: Unsanctioned,
    release: bool,
    withdraw: &[Untaken],
) -> Result<Action, Error> {
    // The requests first: with any still standing, Velero would delete the data anyway. Each
    // only as the version observed untaken: if Velero took it since, the delete fails and the
    // next look finds it taken, too late to withdraw.
    let ns = Some(backup.metadata.namespace.as_str());
    for r in withdraw {
        let (kind, version) = (Kind::DeleteBackupRequest, &r.resource_version);
        steps::delete_version(&cleaner.client, kind, ns, &r.name, version).await?;
    }
    let withdraw: Vec<&str> = withdraw.iter().map(|r| r.name.as_str()).collect();
    if release {
        steps::remove_finalizer(&cleaner.client, backup).await?;
    }
    cleaner.finish(&backup.metadata.uid);
    // A held backup keeps the finalizer and is looked at again on every policy reload: one
    // Event per reason it stopped for, not one per look.
    if !cleaner.mark_stopped(&backup.metadata.uid, why) && withdraw.is_empty() {
        return Ok(Action::await_change());
    }
    let note = report::stopped_note(backup, why, release, &withdraw);
    tracing::warn!(backup = %backup_name(backup), "{note}");
    cleaner.event(backup, true, "CleanupStopped", note).await;
    Ok(Action::await_change())
}

async fn clean(
    cleaner: &Cleaner,
    backup: &Object,
    facts: &SanctionFacts,
    observed: &Observed,
    plan: &[Step],
) -> Result<Action, Error> {
    let uid = backup.metadata.uid.as_str();
    let engine = observed.engine;
    cleaner.mark_started(uid);
    if plan.first() == Some(&Step::AddFinalizer) {
        let choice = cleaner.policy().cleanup.engine;
        let only = &observed.velero_only;
        let note = report::started_note(backup, facts, choice, engine, only);
        tracing::info!(backup = %backup_name(backup), "{note}");
        cleaner.event(backup, false, "CleanupStarted", note).await;
    }
    let mut pass = Report {
        delete_request: observed
            .delete_request
            .as_ref()
            .map(|r| r.name.clone())
            .or_else(|| cleaner.filed_request(uid)),
        ..Report::default()
    };
    let outcome = cleaner.apply(backup, plan, &mut pass).await;
    // What every pass of this process deleted, for the success Event: a retried step's earlier
    // passes count too.
    let resumed = plan.first() != Some(&Step::AddFinalizer);
    let done = cleaner.tally(uid, &pass, resumed);
    match outcome {
        Ok(Outcome::Completed) => {
            // What the native engine left: the data of the PodVolumeBackups it deleted (over
            // every pass of this process, or as this pass found them), and other backups'
            // snapshots.
            let pvbs = done
                .pod_volume_backups
                .max(observed.velero_only.pod_volume_backups);
            let left = match engine {
                Engine::Native => Left {
                    velero_only: VeleroOnly {
                        pod_volume_backups: pvbs,
                        ..observed.velero_only
                    },
                    not_own: observed.not_own,
                },
                Engine::Velero => Left::default(),
            };
            Ok(finished(cleaner, backup, facts, engine, &done, &left).await)
        }
        Ok(Outcome::Waiting(delay)) => {
            cleaner.succeeded(uid);
            Ok(Action::requeue(delay))
        }
        // The change that ended the sanction triggers the reconcile that calls the cleanup off.
        Ok(Outcome::Stopped(why)) => {
            tracing::info!(backup = %backup_name(backup), why = why.explain(), "cleanup interrupted before its next step or delete");
            Ok(Action::requeue(Duration::from_secs(1)))
        }
        Ok(Outcome::Gone) => {
            cleaner.finish(uid);
            Ok(Action::await_change())
        }
        Err(failure) if matches!(failure.error, Error::NotLeader) => Ok(Action::await_change()),
        Err(failure) => {
            let delay = cleaner.backoff(uid);
            cleaner
                .metrics
                .cleanups
                .with_label_values(&[report::engine_name(engine), "failure"])
                .inc();
            let note = report::failure_note(backup, &failure, delay);
            tracing::warn!(backup = %backup_name(backup), "{note}");
            cleaner.event(backup, true, FAILED, note).await;
            Ok(Action::requeue(delay))
        }
    }
}

async fn finished(
    cleaner: &Cleaner,
    backup: &Object,
    facts: &SanctionFacts,
    engine: Engine,
    done: &Report,
    left: &Left,
) -> Action {
    let took = cleaner.finish(&backup.metadata.uid);
    let m = &cleaner.metrics;
    m.cleanups
        .with_label_values(&[report::engine_name(engine), "success"])
        .inc();
    m.cleanup_duration.observe(took.as_secs_f64());
    let note = report::success_note(backup, facts, engine, done, left);
    tracing::info!(backup = %backup_name(backup), "{note}");
    cleaner.event(backup, false, "CleanupSucceeded", note).await;
    Action::await_change()
}
