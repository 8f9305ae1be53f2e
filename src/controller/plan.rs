//! What a cleanup must still do, decided from what was observed: a pure function, no I/O.
//!
//! The controller observes a Backup and its dependents, asks [`plan`] for the remaining steps
//! and applies them in order. Every step is idempotent, so a plan made after a crash simply
//! repeats what may already be done and continues.

use crate::policy::stamps::Unsanctioned;

/// The engine a cleanup runs with: the policy's `cleanup.engine`, with `auto` decided for the
/// backup (see [`super::observe::engine_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Native,
    Velero,
}

/// What a backup holds that only Velero can delete: the native engine leaves it in place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VeleroOnly {
    /// Volume snapshots Velero's snapshotter plugins took or tried (`status.volumeSnapshotsAttempted`):
    /// EBS, GCE or Azure disk snapshots, deleted through the provider's plugin.
    pub provider_snapshots: u64,
    /// PodVolumeBackups of the backup: file-system backups in the kopia or restic repository.
    pub pod_volume_backups: usize,
    /// Data mover operations (`spec.snapshotMoveData` with
    /// `status.backupItemOperationsAttempted`): CSI snapshot data moved into the repository.
    pub moved_volumes: u64,
}

impl VeleroOnly {
    /// Whether there is anything only Velero can delete.
    pub fn any(&self) -> bool {
        *self != VeleroOnly::default()
    }
}

/// VolumeSnapshots and VolumeSnapshotContents labelled with the backup's name that are not its
/// own: left alone, and counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NotOwn {
    /// Created outside its run: another backup's of the same name, or a snapshot Velero only
    /// copied.
    pub outside_run: usize,
    /// Created by a restore of it (`velero.io/restore-name`): Velero labels what it restores with
    /// the backup's name too.
    pub restored: usize,
}

impl NotOwn {
    /// Whether there are any.
    pub fn any(&self) -> bool {
        *self != NotOwn::default()
    }
}

/// A Restore of the backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreState {
    pub name: String,
    /// Velero's restore finalizers still on it.
    pub velero_finalizers: bool,
}

/// A VolumeSnapshotContent labelled with the backup's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentState {
    pub name: String,
    /// `spec.deletionPolicy` is `Delete` already.
    pub deletes_storage: bool,
}

/// A namespaced object: namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Named {
    pub namespace: String,
    pub name: String,
}

/// The newest DeleteBackupRequest for the backup (velero engine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestState {
    pub name: String,
    /// Velero has marked it `Processed`.
    pub processed: bool,
    /// `status.errors`.
    pub errors: Vec<String>,
    /// Seconds since it was created.
    pub age: i64,
    /// When it was created (RFC 3339; empty when unknown).
    pub created: String,
    /// Its errors were already reported (Event and metric) by this process.
    pub reported: bool,
    /// Velero has taken it (`InProgress`): too late to withdraw it.
    pub taken: bool,
    /// Neither taken nor processed, older than the controller's limit for that
    /// (`ControllerConfig::velero_idle_after`), and no request in the namespace `InProgress`:
    /// Velero is not running, or not acting on requests.
    pub idle: bool,
}

/// A DeleteBackupRequest for the backup that Velero has not taken (phase `New` or none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untaken {
    pub name: String,
    /// Its resourceVersion when observed: a withdrawal deletes only that version, so a request
    /// Velero took in between is not pulled from under it.
    pub resource_version: String,
}

/// Everything [`plan`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Whether the backup is sanctioned now, and if not, why.
    pub sanction: Result<(), Unsanctioned>,
    /// The engine this backup's cleanup uses (under `auto`, decided for the backup).
    pub engine: Engine,
    /// Our finalizer `backup-guard.io/cleanup` is on the Backup.
    pub finalized: bool,
    /// The Backup has a deletion timestamp.
    pub deleting: bool,
    /// The Backup's `status.phase`.
    pub phase: Option<String>,
    /// The Backup is in Velero's namespace (`policy.velero.namespace`), the only one Velero acts in.
    pub in_velero_namespace: bool,
    pub restores: Vec<RestoreState>,
    pub contents: Vec<ContentState>,
    pub snapshots: Vec<Named>,
    /// VolumeSnapshots and VolumeSnapshotContents labelled with the backup's name that are not
    /// its own (native engine).
    pub not_own: NotOwn,
    pub pod_volume_backups: Vec<String>,
    /// What only Velero can delete (counted for a backup being cleaned up in Velero's namespace).
    pub velero_only: VeleroOnly,
    /// Velero engine only.
    pub delete_request: Option<RequestState>,
    /// Every request for the backup Velero has not taken, oldest first (two `velero backup
    /// delete` file two): a cleanup called off withdraws them all, as Velero would act on any.
    pub untaken_requests: Vec<Untaken>,
}

/// One step of a cleanup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Put `backup-guard.io/cleanup` on the Backup.
    AddFinalizer,
    /// Delete every key under `<prefix>/backups/<backup>/`.
    DeleteBackupFiles,
    /// Delete every key under `<prefix>/restores/<restore>/`.
    DeleteRestoreFiles(String),
    /// Remove Velero's finalizers from a Restore whose files are gone.
    ReleaseRestore(String),
    DeleteRestore(String),
    /// Set a VolumeSnapshotContent to `deletionPolicy: Delete`, so the driver removes the snapshot.
    SetContentDelete(String),
    DeleteSnapshot(Named),
    DeleteContent(String),
    DeletePodVolumeBackup(String),
    /// Velero engine: create a DeleteBackupRequest, as `velero backup delete` does.
    FileDeleteRequest,
    /// Velero engine: Velero is still working on this request; look again in a few seconds.
    AwaitDeleteRequest(String),
    /// Velero engine: Velero has not taken the request in a long time; report it as a failure
    /// (an Event and the failure metric), keep the request and look again.
    /// `since`: when the request was filed (RFC 3339), so the report reads the same at every
    /// look and repeats fold into one Event.
    ReportIdleRequest {
        name: String,
        since: String,
    },
    /// Velero engine: the request finished with errors; report them, retry later.
    ReportDeleteRequestErrors {
        name: String,
        errors: Vec<String>,
    },
    /// Delete the Backup object (our finalizer holds it until the last step).
    DeleteBackup,
    /// Remove `backup-guard.io/cleanup`: the Backup object goes if it was deleted.
    RemoveFinalizer,
}

impl Step {
    /// Whether sanction must be re-checked right before the step: every step that destroys
    /// something, and the finalizer that starts a cleanup.
    pub fn needs_sanction(&self) -> bool {
        !matches!(
            self,
            Step::AwaitDeleteRequest(_)
                | Step::ReportIdleRequest { .. }
                | Step::ReportDeleteRequestErrors { .. }
                | Step::RemoveFinalizer
        )
    }
}

/// What to do with a Backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Not sanctioned and not being cleaned: leave it alone.
    Ignore,
    /// Sanctioned: these steps, in order, end with the Backup gone.
    Clean(Vec<Step>),
    /// Our finalizer is on it but it is no longer sanctioned: stop. `release` removes the
    /// finalizer (request withdrawn, stale or unverified); a hold keeps it, so the Backup stays
    /// until the hold is released and cleanup resumes or is called off. `withdraw` lists the
    /// backup's DeleteBackupRequests Velero has not taken yet, as observed: they must go too, or
    /// Velero would still delete the data.
    Stop {
        why: Unsanctioned,
        release: bool,
        withdraw: Vec<Untaken>,
    },
    /// Sanctioned, but outside Velero's namespace: Velero does not act there, and the storage
    /// location and credentials such a Backup names are not Velero's to use. Nothing is cleaned;
    /// `release` removes our finalizer if an earlier policy put it on.
    NotVelero { release: bool },
    /// Sanctioned, but Velero is still writing the backup (`phase`): nothing is touched until it
    /// is done, as Velero itself refuses to delete a backup in progress.
    Wait { phase: String },
}

/// Phases in which Velero is still writing a backup's files or snapshots, or is about to
/// (Velero 1.18's backup queue: `Queued`, `ReadyToStart`). Not `New` nor no phase: those are
/// also the Backups no Velero has taken up (none running, or made by hand), and users expect
/// those cleaned at once rather than waited on forever.
pub const WRITING_PHASES: [&str; 7] = [
    "Queued",
    "ReadyToStart",
    "InProgress",
    "WaitingForPluginOperations",
    "WaitingForPluginOperationsPartiallyFailed",
    "Finalizing",
    "FinalizingPartiallyFailed",
];

/// How often a cleanup waiting for Velero to finish a backup looks again.
pub const WAIT_FOR_BACKUP_S: u64 = 30;

/// How long after a failed DeleteBackupRequest the velero engine files a new one (seconds).
pub const VELERO_RETRY_AFTER: i64 = 300;

/// The remaining steps for what was observed.
pub fn plan(o: &Observed) -> Plan {
    if let Err(why) = o.sanction {
        return match o.finalized {
            false => Plan::Ignore,
            true => Plan::Stop {
                why,
                release: why != Unsanctioned::Held,
                withdraw: o.untaken_requests.clone(),
            },
        };
    }
    if !o.in_velero_namespace {
        return Plan::NotVelero {
            release: o.finalized,
        };
    }
    if let Some(phase) = o.phase.as_deref().filter(|p| WRITING_PHASES.contains(p)) {
        return Plan::Wait {
            phase: phase.into(),
        };
    }
    // A Backup already being deleted cannot take a new finalizer: it goes as a shadow deletion.
    if !o.finalized && o.deleting {
        return Plan::Ignore;
    }
    let mut steps = Vec::new();
    if !o.finalized {
        steps.push(Step::AddFinalizer);
    }
    let finished = match o.engine {
        Engine::Native => native_steps(o, &mut steps),
        Engine::Velero => velero_steps(o, &mut steps),
    };
    if finished {
        if !o.deleting {
            steps.push(Step::DeleteBackup);
        }
        steps.push(Step::RemoveFinalizer);
    }
    Plan::Clean(steps)
}

/// Files, restores, CSI snapshots and PodVolumeBackups; always ends the cleanup.
fn native_steps(o: &Observed, steps: &mut Vec<Step>) -> bool {
    steps.push(Step::DeleteBackupFiles);
    for r in &o.restores {
        steps.push(Step::DeleteRestoreFiles(r.name.clone()));
        if r.velero_finalizers {
            steps.push(Step::ReleaseRestore(r.name.clone()));
        }
        steps.push(Step::DeleteRestore(r.name.clone()));
    }
    for c in o.contents.iter().filter(|c| !c.deletes_storage) {
        steps.push(Step::SetContentDelete(c.name.clone()));
    }
    for s in &o.snapshots {
        steps.push(Step::DeleteSnapshot(s.clone()));
    }
    for c in &o.contents {
        steps.push(Step::DeleteContent(c.name.clone()));
    }
    for p in &o.pod_volume_backups {
        steps.push(Step::DeletePodVolumeBackup(p.clone()));
    }
    true
}

/// File a DeleteBackupRequest and follow it; the cleanup ends once Velero processed it cleanly.
fn velero_steps(o: &Observed, steps: &mut Vec<Step>) -> bool {
    let Some(request) = &o.delete_request else {
        // Velero deletes the Backup only when everything else went, then every request for it:
        // a Backup it marked `Deleting` and deleted, with no request left, is done.
        if o.deleting && o.phase.as_deref() == Some("Deleting") {
            return true;
        }
        steps.push(Step::FileDeleteRequest);
        return false;
    };
    if !request.processed {
        steps.push(if request.idle {
            Step::ReportIdleRequest {
                name: request.name.clone(),
                since: request.created.clone(),
            }
        } else {
            Step::AwaitDeleteRequest(request.name.clone())
        });
        return false;
    }
    if request.errors.is_empty() {
        return true;
    }
    if !request.reported {
        steps.push(Step::ReportDeleteRequestErrors {
            name: request.name.clone(),
            errors: request.errors.clone(),
        });
    } else if request.age >= VELERO_RETRY_AFTER {
        steps.push(Step::FileDeleteRequest);
    } else {
        steps.push(Step::AwaitDeleteRequest(request.name.clone()));
    }
    false
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
