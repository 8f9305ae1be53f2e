//! Reads what a plan needs: the Backup's own state and the objects that belong to it.

use kube::api::{Api, DynamicObject, ListParams};
use kube::Client;
use serde_json::Value;

use super::error::{is_not_found, Error};
use super::kinds::{label_value, view, Kind, RESTORE_FINALIZER_PREFIX, VELERO_BACKUP_UID};
use super::plan::{ContentState, Engine, Named, Observed, RequestState, RestoreState, VeleroOnly};
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
        pod_volume_backups: vec![],
        velero_only: VeleroOnly::default(),
        delete_request: None,
    };
    if sanction.is_err() || !o.in_velero_namespace {
        // A cleanup called off must withdraw the request it filed, if Velero has not taken it.
        if sanction.is_err() && o.finalized && choice != config::Engine::Native {
            o.delete_request = delete_request(client, backup, reported, idle_after).await?;
        }
        return Ok(o);
    }
    let (ns, name) = (meta.namespace.as_str(), meta.name.as_str());
    let mut only = velero_only(backup, 0);
    // Under `auto`, a request already filed for the backup (by an earlier look, or by `velero
    // backup delete`) keeps it with Velero, so a cleanup never changes engine half-way.
    if choice != config::Engine::Native {
        o.delete_request = delete_request(client, backup, reported, idle_after).await?;
    }
    if choice != config::Engine::Velero {
        o.pod_volume_backups = labelled(client, Kind::PodVolumeBackup, Some(ns), name)
            .await?
            .into_iter()
            .map(|n| n.name)
            .collect();
        only.pod_volume_backups = o.pod_volume_backups.len();
    }
    o.velero_only = only;
    o.engine = engine_for(choice, &only, o.delete_request.is_some());
    match o.engine {
        Engine::Native => {
            o.delete_request = None;
            o.restores = restores(client, ns, name).await?;
            o.contents = contents(client, name).await?;
            o.snapshots = labelled(client, Kind::VolumeSnapshot, None, name).await?;
        }
        Engine::Velero => o.pod_volume_backups.clear(),
    }
    Ok(o)
}

/// The engine a backup's cleanup uses: the policy's, or under `auto` Velero when the backup
/// holds something only Velero deletes or Velero has a request for it already, else native.
pub fn engine_for(choice: config::Engine, only: &VeleroOnly, requested: bool) -> Engine {
    match choice {
        config::Engine::Native => Engine::Native,
        config::Engine::Velero => Engine::Velero,
        config::Engine::Auto if only.any() || requested => Engine::Velero,
        config::Engine::Auto => Engine::Native,
    }
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

async fn contents(client: &Client, backup: &str) -> Result<Vec<ContentState>, Error> {
    let api = Kind::VolumeSnapshotContent.api(client, None);
    let mut found: Vec<ContentState> = list(&api, Kind::VolumeSnapshotContent, &by_backup(backup))
        .await?
        .iter()
        .map(|c| ContentState {
            name: c.metadata.name.clone().unwrap_or_default(),
            deletes_storage: str_at(c, &["spec", "deletionPolicy"]) == Some("Delete"),
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

async fn labelled(
    client: &Client,
    kind: Kind,
    ns: Option<&str>,
    backup: &str,
) -> Result<Vec<Named>, Error> {
    let api = kind.api(client, ns);
    let mut found: Vec<Named> = list(&api, kind, &by_backup(backup))
        .await?
        .into_iter()
        .map(|o| Named {
            namespace: o.metadata.namespace.unwrap_or_default(),
            name: o.metadata.name.unwrap_or_default(),
        })
        .collect();
    found.sort();
    Ok(found)
}

/// The newest DeleteBackupRequest for this very backup (same uid when Velero labelled it).
async fn delete_request(
    client: &Client,
    backup: &Object,
    reported: &(dyn Fn(&str) -> bool + Sync),
    idle_after: i64,
) -> Result<Option<RequestState>, Error> {
    let meta = &backup.metadata;
    let api = Kind::DeleteBackupRequest.api(client, Some(&meta.namespace));
    let requests = list(&api, Kind::DeleteBackupRequest, &by_backup(&meta.name)).await?;
    let newest = requests
        .iter()
        .filter(|r| {
            let uid = r
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(VELERO_BACKUP_UID));
            uid.is_none_or(|u| *u == meta.uid)
        })
        .max_by_key(|r| r.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let Some(r) = newest else {
        return Ok(None);
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
    Ok(Some(RequestState {
        processed,
        taken,
        idle,
        errors,
        age,
        reported: reported(&name),
        resource_version: r.metadata.resource_version.clone().unwrap_or_default(),
        name,
    }))
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
mod tests {
    use super::*;
    use serde_json::json;

    fn backup(spec: Value, status: Value) -> Object {
        let backup = json!({"apiVersion": "velero.io/v1", "kind": "Backup",
            "metadata": {"name": "daily-1", "namespace": "velero"}, "spec": spec, "status": status});
        serde_json::from_value(backup).expect("a Backup")
    }

    #[test]
    fn the_backup_says_what_only_velero_deletes() {
        let plain = backup(
            json!({"storageLocation": "default"}),
            json!({"phase": "Completed"}),
        );
        assert!(!velero_only(&plain, 0).any());
        assert_eq!(velero_only(&plain, 2).pod_volume_backups, 2);

        let snapshots = backup(json!({}), json!({"volumeSnapshotsAttempted": 3}));
        assert_eq!(velero_only(&snapshots, 0).provider_snapshots, 3);

        // Item operations count as moved data only when the data mover was asked for: CSI
        // snapshots alone are operations too, and the native engine deletes those itself.
        let operations =
            json!({"backupItemOperationsAttempted": 2, "csiVolumeSnapshotsAttempted": 2});
        let csi = backup(json!({"snapshotMoveData": false}), operations.clone());
        assert!(!velero_only(&csi, 0).any());
        let moved = backup(json!({"snapshotMoveData": true}), operations);
        assert_eq!(velero_only(&moved, 0).moved_volumes, 2);

        // Nonsense where a count belongs reads as nothing, never as an error.
        let odd = backup(
            json!({"snapshotMoveData": "yes"}),
            json!({"volumeSnapshotsAttempted": "x"}),
        );
        assert!(!velero_only(&odd, 0).any());
    }

    #[test]
    fn auto_hands_to_velero_what_only_velero_deletes() {
        let nothing = VeleroOnly::default();
        let pvbs = VeleroOnly {
            pod_volume_backups: 1,
            ..nothing
        };
        let snapshots = VeleroOnly {
            provider_snapshots: 1,
            ..nothing
        };
        let moved = VeleroOnly {
            moved_volumes: 1,
            ..nothing
        };
        for only in [pvbs, snapshots, moved] {
            assert_eq!(
                engine_for(config::Engine::Auto, &only, false),
                Engine::Velero
            );
            assert_eq!(
                engine_for(config::Engine::Native, &only, false),
                Engine::Native
            );
        }
        assert_eq!(
            engine_for(config::Engine::Auto, &nothing, false),
            Engine::Native
        );
        // A request already filed keeps the cleanup with Velero.
        assert_eq!(
            engine_for(config::Engine::Auto, &nothing, true),
            Engine::Velero
        );
        assert_eq!(
            engine_for(config::Engine::Native, &nothing, true),
            Engine::Native
        );
        assert_eq!(
            engine_for(config::Engine::Velero, &nothing, false),
            Engine::Velero
        );
    }
}
