//! One reconcile of one Backup: observe, plan, apply, then record what happened.

use std::sync::Arc;
use std::time::Duration;

use kube::api::DynamicObject;
use kube::runtime::controller::Action;

use super::apply::{Outcome, Report};
use super::cleaner::Cleaner;
use super::error::Error;
use super::kinds::view;
use super::plan::{plan, Observed, Plan, Step};
use super::report::{self, backup_name};
use super::steps;
use crate::policy::config::Engine;
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
    let observed = cleaner.observe(&backup).await?;
    match plan(&observed) {
        Plan::Ignore => Ok(Action::await_change()),
        Plan::Stop { why, release } => stop(&cleaner, &backup, why, release).await,
        Plan::Clean(steps) => clean(&cleaner, &backup, &facts, &observed, &steps).await,
    }
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
) -> Result<Action, Error> {
    if release {
        steps::remove_finalizer(&cleaner.client, backup).await?;
    }
    cleaner.finish(&backup.metadata.uid);
    let note = report::stopped_note(backup, why, release);
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
        let note = format!(
            "deletion of backup {} sanctioned ({}); cleaning up with the {} engine",
            backup_name(backup),
            report::who(backup, facts),
            report::engine_name(engine)
        );
        tracing::info!(backup = %backup_name(backup), "{note}");
        cleaner.event(backup, false, "CleanupStarted", note).await;
    }
    let mut done = Report {
        delete_request: observed.delete_request.as_ref().map(|r| r.name.clone()),
        ..Report::default()
    };
    let outcome = cleaner.apply(backup, plan, &mut done).await;
    match outcome {
        Ok(Outcome::Completed) => Ok(finished(cleaner, backup, facts, engine, &done).await),
        Ok(Outcome::Waiting(delay)) => {
            cleaner.succeeded(uid);
            Ok(Action::requeue(delay))
        }
        // The change that ended the sanction triggers the reconcile that calls the cleanup off.
        Ok(Outcome::Stopped(why)) => {
            tracing::info!(backup = %backup_name(backup), why = why.explain(), "cleanup interrupted before its next step");
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
            cleaner.event(backup, true, "CleanupFailed", note).await;
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
) -> Action {
    let took = cleaner.finish(&backup.metadata.uid);
    let m = &cleaner.metrics;
    m.cleanups
        .with_label_values(&[report::engine_name(engine), "success"])
        .inc();
    m.cleanup_duration.observe(took.as_secs_f64());
    let note = report::success_note(backup, facts, engine, done);
    tracing::info!(backup = %backup_name(backup), "{note}");
    cleaner.event(backup, false, "CleanupSucceeded", note).await;
    Action::await_change()
}
