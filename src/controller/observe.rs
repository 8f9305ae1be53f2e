//! Reads what a plan needs: the Backup's own state and the objects that belong to it.

use jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DynamicObject, ListParams};
use kube::Client;
use serde_json::Value;

use super::error::{is_not_found, Error};
use super::kinds::{
    label_value, view, Kind, RESTORE_FINALIZER_PREFIX, VELERO_BACKUP_UID, VELERO_RESTORE_NAME,
};
use super::plan::{
    ContentState, Engine, Named, NotOwn, Observed, RequestState, RestoreState, Untaken, VeleroOnly,
};
use crate::policy::config;
use crate::policy::request::Object;
use crate::policy::stamps::{Unsanctioned, CLEANUP_FINALIZER, VELERO_BACKUP_NAME};

/// Observes `backup` under a sanction verdict; dependents are listed only when they matter.
/// `choice` is the policy's engine; the observation carries the one this backup's cleanup uses.
pub async fn observe(
    client: &Client,
    backup: &Object,
    sanction: Result<(), Unsanctioned>,
    choice: config::Engine,
    velero_namespace: &str,
    reported: &(dyn Fn(&str) -> bool + Sync),
    idle_after: i64,
) -> Result<Observed, Error> {
    let meta = &backup.metadata;
    let mut o = Observed {
        sanction,
        engine: engine_for(choice, &VeleroOnly::default(), false),
        finalized: meta.finalizers.iter().any(|f| f == CLEANUP_FINALIZER),
        deleting: meta.deletion_timestamp.is_some(),
        phase: backup.status.phase.clone(),
        in_velero_namespace: meta.namespace == velero_namespace,
        restores: vec![],
        contents: vec![],
        snapshots: vec![],
        not_own: NotOwn::default(),
        pod_volume_backups: vec![],
        velero_only: VeleroOnly::default(),
        delete_request: None,
        untaken_requests: vec![],
    };
    if sanction.is_err() || !o.in_velero_namespace {
        // A cleanup called off must withdraw the requests Velero has not taken, whatever the
        // engine now: the policy may have changed since they were filed.
        if sanction.is_err() && o.finalized {
            (o.delete_request, o.untaken_requests) =
                delete_requests(client, backup, reported, idle_after).await?;
        }
        return Ok(o);
    }
    let (ns, name) = (meta.namespace.as_str(), meta.name.as_str());
    let mut only = velero_only(backup, 0);
    if choice != config::Engine::Native {
        (o.delete_request, o.untaken_requests) =
            delete_requests(client, backup, reported, idle_after).await?;
    }
    if choice != config::Engine::Velero {
        o.pod_volume_backups = pod_volume_backups(client, backup).await?;
        only.pod_volume_backups = o.pod_volume_backups.len();
    }
    o.velero_only = only;
    o.engine = engine_for(choice, &only, velero_has_it(&o));
    match o.engine {
        Engine::Native => {
            o.delete_request = None;
            o.restores = restores(client, ns, name).await?;
            let run = run_of(backup);
            let (contents, other_contents) = contents(client, name, run).await?;
            let (snapshots, other_snapshots) = snapshots(client, name, run).await?;
            (o.contents, o.snapshots) = (contents, snapshots);
            o.not_own = NotOwn {
                outside_run: other_contents.outside_run + other_snapshots.outside_run,
                restored: other_contents.restored + other_snapshots.restored,
            };
        }
        Engine::Velero => o.pod_volume_backups.clear(),
    }
    Ok(o)
}

/// The engine a backup's cleanup uses: the policy's, or under `auto` Velero when the backup
/// holds something only Velero deletes or Velero has it already (`velero_has_it`), else native.
pub fn engine_for(choice: config::Engine, only: &VeleroOnly, velero_has_it: bool) -> Engine {
    match choice {
        config::Engine::Native => Engine::Native,
        config::Engine::Velero => Engine::Velero,
        config::Engine::Auto if only.any() || velero_has_it => Engine::Velero,
        config::Engine::Auto => Engine::Native,
    }
}

/// Whether Velero has the backup's deletion in hand: a DeleteBackupRequest for it (filed by an
/// earlier look, by `velero backup delete` or by Velero's TTL collector), or the Backup marked
/// `Deleting` by Velero, which stays so after Velero deleted its requests. Under `auto` such a
/// backup stays with Velero: its cleanup is not switched back to native half-way.
fn velero_has_it(o: &Observed) -> bool {
    o.delete_request.is_some() || o.phase.as_deref() == Some("Deleting")
}

/// What the Backup's own spec and status say only Velero can delete; `pod_volume_backups` as
/// counted by the caller.
pub fn velero_only(backup: &Object, pod_volume_backups: usize) -> VeleroOnly {
    let status = &backup.status;
    let moves = backup.spec.snapshot_move_data == Some(true);
    VeleroOnly {
        provider_snapshots: status.volume_snapshots_attempted.unwrap_or(0),
        pod_volume_backups,
        moved_volumes: match moves {
            true => status.backup_item_operations_attempted.unwrap_or(0),
            false => 0,
        },
    }
}

/// Lists a kind; a kind whose CRD is not installed has no objects.
pub async fn list(
    api: &Api<DynamicObject>,
    kind: Kind,
    params: &ListParams,
) -> Result<Vec<DynamicObject>, Error> {
    match api.list(params).await {
        Ok(list) => Ok(list.items),
        Err(e) if is_not_found(&e) => Ok(vec![]),
        Err(e) => Err(Error::kube(format!("listing {}s", kind.name()), e)),
    }
}

fn by_backup(name: &str) -> ListParams {
    ListParams::default().labels(&format!("{VELERO_BACKUP_NAME}={}", label_value(name)))
}

fn str_at<'a>(obj: &'a DynamicObject, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(&obj.data, |v: &Value, k| v.get(*k))
        .and_then(Value::as_str)
}

async fn restores(client: &Client, ns: &str, backup: &str) -> Result<Vec<RestoreState>, Error> {
    let api = Kind::Restore.api(client, Some(ns));
    let mut found: Vec<RestoreState> = list(&api, Kind::Restore, &ListParams::default())
        .await?
        .iter()
        .filter(|r| str_at(r, &["spec", "backupName"]) == Some(backup))
        .map(|r| RestoreState {
            name: r.metadata.name.clone().unwrap_or_default(),
            velero_finalizers: r
                .metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f.starts_with(RESTORE_FINALIZER_PREFIX)),
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// The backup's own contents (see [`own`]), and how many others carry its name.
async fn contents(
    client: &Client,
    backup: &str,
    run: Option<Run>,
) -> Result<(Vec<ContentState>, NotOwn), Error> {
    let api = Kind::VolumeSnapshotContent.api(client, None);
    let labelled = list(&api, Kind::VolumeSnapshotContent, &by_backup(backup)).await?;
    let (labelled, not_own) = own(labelled, run);
    let mut found: Vec<ContentState> = labelled
        .iter()
        .map(|c| ContentState {
            name: c.metadata.name.clone().unwrap_or_default(),
            deletes_storage: str_at(c, &["spec", "deletionPolicy"]) == Some("Delete"),
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((found, not_own))
}

/// The backup's own VolumeSnapshots, in any namespace (see [`own`]), and how many others carry
/// its name.
async fn snapshots(
    client: &Client,
    backup: &str,
    run: Option<Run>,
) -> Result<(Vec<Named>, NotOwn), Error> {
    let api = Kind::VolumeSnapshot.api(client, None);
    let labelled = list(&api, Kind::VolumeSnapshot, &by_backup(backup)).await?;
    let (labelled, not_own) = own(labelled, run);
    let mut found: Vec<Named> = labelled.into_iter().map(named).collect();
    found.sort();
    Ok((found, not_own))
}

/// When a backup ran: from its start (less [`START_SLACK`]) to its completion (plus
/// [`END_SLACK`]; open while unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub from: Timestamp,
    pub until: Option<Timestamp>,
}

/// Before a run's start: Velero records it before it makes any snapshot, so only the difference
/// between its clock and the API server's (and whole seconds). Kept short, as a snapshot made
/// just before (a user's own, taken by a scheduler at the same minute) is not the backup's.
pub const START_SLACK: SignedDuration = SignedDuration::from_secs(5);

/// After a run's completion: the snapshot controller creates a content moments after its
/// snapshot, on the API server's clock rather than Velero's.
pub const END_SLACK: SignedDuration = SignedDuration::from_secs(60);

/// The backup's run, from `status.startTimestamp` and `status.completionTimestamp`; `None` when
/// the start is unknown (then every labelled snapshot counts as the backup's).
pub fn run_of(backup: &Object) -> Option<Run> {
    let time = |t: &Option<String>| t.as_deref().and_then(|t| t.parse::<Timestamp>().ok());
    let from = time(&backup.status.start_timestamp)?
        .checked_sub(START_SLACK)
        .ok()?;
    let until =
        time(&backup.status.completion_timestamp).and_then(|t| t.checked_add(END_SLACK).ok());
    Some(Run { from, until })
}

/// Whether something created at `created` was made during `run` (always when either is unknown).
pub fn made_during(created: Option<Timestamp>, run: Option<Run>) -> bool {
    match (created, run) {
        (Some(t), Some(run)) => t >= run.from && run.until.is_none_or(|u| t <= u),
        _ => true,
    }
}

/// Whether Velero made `obj` restoring a backup (`velero.io/restore-name`), rather than backing
/// one up.
fn restored(obj: &DynamicObject) -> bool {
    let labels = obj.metadata.labels.as_ref();
    labels.is_some_and(|l| l.contains_key(VELERO_RESTORE_NAME))
}

/// Splits objects labelled with the backup's name into its own, made during its run (see
/// [`made_during`]) and not by a restore, and the counts of the rest. A restore labels what it
/// creates with the backup's name, moments after the backup or at any time, so the run alone
/// does not tell: only its restore-name label does.
fn own(objects: Vec<DynamicObject>, run: Option<Run>) -> (Vec<DynamicObject>, NotOwn) {
    let (mut mine, mut not_own) = (Vec::new(), NotOwn::default());
    for o in objects {
        let created = o.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if restored(&o) {
            not_own.restored += 1;
        } else if !made_during(created, run) {
            not_own.outside_run += 1;
        } else {
            mine.push(o);
        }
    }
    (mine, not_own)
}

fn named(o: DynamicObject) -> Named {
    Named {
        namespace: o.metadata.namespace.unwrap_or_default(),
        name: o.metadata.name.unwrap_or_default(),
    }
}

/// The backup's PodVolumeBackups, in its namespace: labelled with its name, and with its uid
/// where Velero labelled one (another backup of the same name has another uid).
async fn pod_volume_backups(client: &Client, backup: &Object) -> Result<Vec<String>, Error> {
    let (ns, name) = (&backup.metadata.namespace, &backup.metadata.name);
    let api = Kind::PodVolumeBackup.api(client, Some(ns));
    let mut found: Vec<String> = list(&api, Kind::PodVolumeBackup, &by_backup(name))
        .await?
        .into_iter()
        .filter(|p| of_backup(p, &backup.metadata.uid))
        .map(|p| p.metadata.name.unwrap_or_default())
        .collect();
    found.sort();
    Ok(found)
}

/// Whether an object Velero labelled for a backup is this one's: the same uid, when labelled
/// with one.
fn of_backup(obj: &DynamicObject, uid: &str) -> bool {
    let labels = obj.metadata.labels.as_ref();
    labels
        .and_then(|l| l.get(VELERO_BACKUP_UID))
        .is_none_or(|u| u == uid)
}

/// The newest DeleteBackupRequest for this very backup (same uid when Velero labelled it), and
/// every one of them Velero has not taken, oldest first.
async fn delete_requests(
    client: &Client,
    backup: &Object,
    reported: &(dyn Fn(&str) -> bool + Sync),
    idle_after: i64,
) -> Result<(Option<RequestState>, Vec<Untaken>), Error> {
    let meta = &backup.metadata;
    let api = Kind::DeleteBackupRequest.api(client, Some(&meta.namespace));
    let mut requests = list(&api, Kind::DeleteBackupRequest, &by_backup(&meta.name)).await?;
    requests.retain(|r| of_backup(r, &meta.uid));
    requests.sort_by_key(|r| r.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let untaken = untaken(&requests);
    let Some(r) = requests.last() else {
        return Ok((None, untaken));
    };
    let name = r.metadata.name.clone().unwrap_or_default();
    let errors = r
        .data
        .pointer("/status/errors")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let created = r.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let age = created.map_or(0, |t| {
        k8s_openapi::jiff::Timestamp::now().as_second() - t.as_second()
    });
    let phase = str_at(r, &["status", "phase"]);
    let (processed, taken) = (phase == Some("Processed"), phase == Some("InProgress"));
    // Past the limit and untaken: idle only if Velero is not at work on another request (it
    // takes one at a time, and a queue of them is normal).
    let idle = !processed && !taken && age >= idle_after && {
        let all = list(&api, Kind::DeleteBackupRequest, &ListParams::default()).await?;
        !all.iter()
            .any(|o| str_at(o, &["status", "phase"]) == Some("InProgress"))
    };
    let newest = RequestState {
        created: created.map_or_else(String::new, |t| t.to_string()),
        processed,
        taken,
        idle,
        errors,
        age,
        reported: reported(&name),
        name,
    };
    Ok((Some(newest), untaken))
}

/// The requests Velero has not taken (phase `New` or none), in the order given.
pub fn untaken(requests: &[DynamicObject]) -> Vec<Untaken> {
    requests
        .iter()
        .filter(|r| matches!(str_at(r, &["status", "phase"]), None | Some("" | "New")))
        .map(|r| Untaken {
            name: r.metadata.name.clone().unwrap_or_default(),
            resource_version: r.metadata.resource_version.clone().unwrap_or_default(),
        })
        .collect()
}

/// The Backup as it is now, by name; `None` when it is gone or was replaced (another uid).
pub async fn current_backup(
    client: &Client,
    namespace: &str,
    name: &str,
    uid: &str,
) -> Result<Option<Object>, Error> {
    let got = Kind::Backup
        .api(client, Some(namespace))
        .get_opt(name)
        .await
        .map_err(|e| Error::kube(format!("reading Backup {namespace}/{name}"), e))?;
    Ok(got.map(|b| view(&b)).filter(|b| b.metadata.uid == uid))
}

#[cfg(test)]
#[path = "observe_tests.rs"]
mod tests;
