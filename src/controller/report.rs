//! Events on the Backup: what a cleanup deleted and for whom, or exactly what failed.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};

use super::apply::{Failure, Report};
use super::cleaner::Cleaner;
use super::kinds::VELERO_RESTORE_NAME;
use super::plan::{Engine, Named, NotOwn, Step, VeleroOnly};
use crate::policy::config;
use crate::policy::request::Object;
use crate::policy::stamps::{
    SanctionFacts, Stamp, Unsanctioned, CLEANUP_FINALIZER, DELETE_REQUEST,
};

/// `namespace/name` of the Backup.
pub fn backup_name(backup: &Object) -> String {
    format!("{}/{}", backup.metadata.namespace, backup.metadata.name)
}

/// The engine's name, as the policy and the `engine` metric label write it.
pub fn engine_name(engine: Engine) -> &'static str {
    match engine {
        Engine::Native => "native",
        Engine::Velero => "velero",
    }
}

fn stamp_text(stamp: &Stamp) -> String {
    let at = Timestamp::from_second(stamp.at).map_or_else(|_| "?".into(), |t| t.to_string());
    format!("{} at {at}", stamp.by)
}

/// Who asked and who approved, as the verified stamps say.
pub fn who(backup: &Object, facts: &SanctionFacts) -> String {
    let reason = backup.annotation(DELETE_REQUEST).unwrap_or("").trim();
    let mut text = match &facts.request {
        Some(r) => format!("requested by {} ({reason:?})", stamp_text(r)),
        None => "requested by nobody verifiable".to_string(),
    };
    match &facts.approval {
        Some(a) => text.push_str(&format!(", approved by {}", stamp_text(a))),
        None => text.push_str(", no approval required"),
    }
    text
}

/// What only Velero can delete, in words ("" when nothing).
pub fn velero_only_text(only: &VeleroOnly) -> String {
    let parts = [
        (
            only.provider_snapshots,
            "volume snapshot(s) Velero's snapshotter plugins took or tried",
        ),
        (
            u64::try_from(only.pod_volume_backups).unwrap_or(u64::MAX),
            "PodVolumeBackup(s)' data in the kopia/restic repository",
        ),
        (
            only.moved_volumes,
            "data mover operation(s)' data in the backup repository",
        ),
    ];
    let parts: Vec<String> = parts
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    parts.join(", ")
}

/// The start note: who asked and approved, the engine, and under `auto` why it was chosen; with
/// the native engine, what it leaves in place.
pub fn started_note(
    backup: &Object,
    facts: &SanctionFacts,
    choice: config::Engine,
    engine: Engine,
    only: &VeleroOnly,
) -> String {
    let mut note = format!(
        "deletion of backup {} sanctioned ({}); cleaning up with the {} engine",
        backup_name(backup),
        who(backup, facts),
        engine_name(engine)
    );
    let what = velero_only_text(only);
    match (engine, choice) {
        (Engine::Velero, config::Engine::Auto) if what.is_empty() => note
            .push_str(" (cleanup.engine auto: Velero has the backup's deletion in hand already)"),
        (Engine::Velero, config::Engine::Auto) => note.push_str(&format!(
            " (cleanup.engine auto: the backup holds {what}, which only Velero deletes)"
        )),
        (Engine::Native, _) if !what.is_empty() => note.push_str(&format!(
            ". The native engine leaves in place {what}: only Velero deletes those (cleanup.engine \
             auto or velero hands such backups to Velero)"
        )),
        _ => {}
    }
    note
}

/// What a finished native cleanup did not delete, for its Event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Left {
    /// What only Velero deletes.
    pub velero_only: VeleroOnly,
    /// Snapshots labelled with the backup's name that are not its own.
    pub not_own: NotOwn,
}

/// The success note: who asked, who approved, what is gone, and (native engine) what was left.
pub fn success_note(
    backup: &Object,
    facts: &SanctionFacts,
    engine: Engine,
    r: &Report,
    left: &Left,
) -> String {
    let head = format!(
        "backup {} cleaned up ({} engine); {}.",
        backup_name(backup),
        engine_name(engine),
        who(backup, facts)
    );
    if engine == Engine::Velero {
        let request = r.delete_request.as_deref().unwrap_or("?");
        return format!("{head} Velero deleted its data through DeleteBackupRequest {request}.");
    }
    let provider = r
        .provider
        .map_or_else(|| "-".to_string(), |p| p.to_string());
    let mut parts = vec![format!(
        "{} storage object(s) of the backup (provider {provider})",
        r.backup_keys
    )];
    let counted = [
        (
            r.restores,
            format!("Restore(s) with {} storage object(s)", r.restore_keys),
        ),
        (
            r.contents,
            "VolumeSnapshotContent(s), set to Delete first so the CSI driver removes their \
             storage snapshots"
                .to_string(),
        ),
        (r.snapshots, "VolumeSnapshot(s)".to_string()),
        (r.pod_volume_backups, "PodVolumeBackup(s)".to_string()),
    ];
    parts.extend(
        counted
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}")),
    );
    let resumed = if r.resumed {
        " (this process resumed a cleanup an earlier one started: what that one deleted is not \
         counted)"
    } else {
        ""
    };
    let mut tail = match velero_only_text(&left.velero_only) {
        what if what.is_empty() => String::new(),
        what => format!(" Left in place, as only Velero deletes them: {what}."),
    };
    if left.not_own.any() {
        tail.push_str(&format!(
            " Left alone: {}.",
            not_own_text(backup, &left.not_own)
        ));
    }
    format!("{head} Deleted {}{resumed}.{tail}", parts.join("; "))
}

/// The snapshots labelled with the backup's name that are not its own, in words.
fn not_own_text(backup: &Object, not_own: &NotOwn) -> String {
    const SNAPSHOTS: &str =
        "VolumeSnapshot(s)/VolumeSnapshotContent(s) labelled with the backup's name but created";
    let mut parts = Vec::new();
    if not_own.outside_run > 0 {
        let status = &backup.status;
        let (from, until) = (&status.start_timestamp, &status.completion_timestamp);
        parts.push(format!(
            "{} {SNAPSHOTS} outside its run ({} to {}): another backup's of the same name, or \
             snapshots Velero only copied",
            not_own.outside_run,
            from.as_deref().unwrap_or("?"),
            until.as_deref().unwrap_or("-")
        ));
    }
    if not_own.restored > 0 {
        parts.push(format!(
            "{} {SNAPSHOTS} by a restore of it ({VELERO_RESTORE_NAME}): the restore's, not the \
             backup's",
            not_own.restored
        ));
    }
    parts.join("; ")
}

/// What a step does, in words.
pub fn describe(step: &Step, backup: &Object) -> String {
    let location = backup.spec.storage_location.as_deref().unwrap_or("?");
    match step {
        Step::AddFinalizer => format!("add finalizer {CLEANUP_FINALIZER}"),
        Step::DeleteBackupFiles => {
            format!("delete the backup's files in BackupStorageLocation {location}")
        }
        Step::DeleteRestoreFiles(r) => format!("delete the files of Restore {r} in {location}"),
        Step::ReleaseRestore(r) => format!("remove Velero's finalizer from Restore {r}"),
        Step::DeleteRestore(r) => format!("delete Restore {r}"),
        Step::SetContentDelete(c) => format!("set VolumeSnapshotContent {c} to Delete"),
        Step::DeleteSnapshot(Named { namespace, name }) => {
            format!("delete VolumeSnapshot {namespace}/{name}")
        }
        Step::DeleteContent(c) => format!("delete VolumeSnapshotContent {c}"),
        Step::DeletePodVolumeBackup(p) => format!("delete PodVolumeBackup {p}"),
        Step::FileDeleteRequest => "file a DeleteBackupRequest".into(),
        Step::AwaitDeleteRequest(r) => format!("wait for DeleteBackupRequest {r}"),
        Step::ReportIdleRequest { name, .. } | Step::ReportDeleteRequestErrors { name, .. } => {
            format!("follow DeleteBackupRequest {name}")
        }
        Step::DeleteBackup => "delete the Backup".into(),
        Step::RemoveFinalizer => format!("remove finalizer {CLEANUP_FINALIZER}"),
    }
}

/// The failure note: the step, the error (with its hint), and that the controller retries.
pub fn failure_note(backup: &Object, failure: &Failure, retry_in: std::time::Duration) -> String {
    format!(
        "cleanup of backup {} failed at step \"{}\": {}. Later steps were not attempted; the \
         finalizer {CLEANUP_FINALIZER} stays and the controller retries in {}s.",
        backup_name(backup),
        describe(&failure.step, backup),
        failure.error,
        retry_in.as_secs()
    )
}

/// The note when a Backup's state could not be read before a cleanup step.
pub fn unobservable_note(
    backup: &Object,
    error: &super::error::Error,
    retry_in: std::time::Duration,
) -> String {
    format!(
        "cleanup of backup {} cannot see what is left to do: {error}. Nothing was deleted in this \
         attempt; the controller retries in {}s.",
        backup_name(backup),
        retry_in.as_secs()
    )
}

/// The note for a sanctioned Backup outside Velero's namespace.
pub fn not_velero_note(backup: &Object, velero_namespace: &str, released: bool) -> String {
    let then = if released {
        format!("; finalizer {CLEANUP_FINALIZER} removed")
    } else {
        String::new()
    };
    format!(
        "backup {} is sanctioned for deletion but is not in Velero's namespace {velero_namespace} \
         (policy velero.namespace), where Velero and its storage credentials are: backup-guard \
         cleans up only Velero's backups, so no storage was touched{then}.",
        backup_name(backup)
    )
}

/// The note while Velero is still writing a sanctioned backup.
pub fn waiting_note(backup: &Object, phase: &str) -> String {
    format!(
        "deletion of backup {} is sanctioned, but Velero is still writing it (phase {phase}); the \
         cleanup starts once the backup is finished, as Velero itself refuses to delete a backup \
         in progress.",
        backup_name(backup)
    )
}

/// The note when a cleanup is called off because the backup is no longer sanctioned.
pub fn stopped_note(
    backup: &Object,
    why: Unsanctioned,
    released: bool,
    withdrawn: &[&str],
) -> String {
    let then = if released {
        format!(
            "finalizer {CLEANUP_FINALIZER} removed. Steps already done are not undone; set a new \
             delete request to finish the cleanup"
        )
    } else {
        format!(
            "finalizer {CLEANUP_FINALIZER} kept while the hold lasts; releasing the hold resumes \
             the cleanup if the request is still valid"
        )
    };
    let request = match withdrawn {
        [] => String::new(),
        [r] => format!("; DeleteBackupRequest {r}, which Velero had not taken yet, deleted"),
        all => format!(
            "; DeleteBackupRequests {}, which Velero had not taken yet, deleted",
            all.join(", ")
        ),
    };
    format!(
        "cleanup of backup {} stopped: {}{request}; {then}.",
        backup_name(backup),
        why.explain()
    )
}

/// The Backup as an Event's subject.
pub fn reference(backup: &Object) -> ObjectReference {
    ObjectReference {
        api_version: Some("velero.io/v1".into()),
        kind: Some("Backup".into()),
        name: Some(backup.metadata.name.clone()),
        namespace: Some(backup.metadata.namespace.clone()),
        uid: Some(backup.metadata.uid.clone()).filter(|u| !u.is_empty()),
        ..Default::default()
    }
}

impl Cleaner {
    /// Posts an Event on the Backup; a failure to post is logged, never fatal. The same Event
    /// as the backup's last one (a failure repeating at the backoff's cap) counts up that
    /// Event's series (`kubectl describe` shows "x3 over 15m") rather than adding one.
    pub async fn event(&self, backup: &Object, warning: bool, reason: &str, note: String) {
        let note: String = note.chars().take(1000).collect();
        let recorder = self.recorder(&backup.metadata.uid, reason, &note);
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: "Cleanup".into(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&event, &reference(backup)).await {
            tracing::warn!(backup = %backup_name(backup), reason, error = %e, "cannot post Event");
        }
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
