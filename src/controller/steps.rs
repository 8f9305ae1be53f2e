//! The API calls behind the steps. Each is idempotent: an object already gone is success.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, RemoveOperation, ReplaceOperation, TestOperation};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions};
use kube::Client;
use serde_json::{json, Value};

use super::error::{is_not_found, Error};
use super::kinds::{label_value, Kind, RESTORE_FINALIZER_PREFIX, VELERO_BACKUP_UID};
use crate::policy::request::Object;
use crate::policy::stamps::{CLEANUP_FINALIZER, VELERO_BACKUP_NAME};

/// Deletes one object; returns whether this call deleted it (false: it was already gone).
pub async fn delete(
    client: &Client,
    kind: Kind,
    namespace: Option<&str>,
    name: &str,
) -> Result<bool, Error> {
    delete_with(client, kind, namespace, name, &DeleteParams::default()).await
}

/// [`delete`], only if the object is still at `resource_version` (empty: any version).
pub async fn delete_version(
    client: &Client,
    kind: Kind,
    namespace: Option<&str>,
    name: &str,
    resource_version: &str,
) -> Result<bool, Error> {
    let mut params = DeleteParams::default();
    if !resource_version.is_empty() {
        params.preconditions = Some(Preconditions {
            resource_version: Some(resource_version.into()),
            uid: None,
        });
    }
    delete_with(client, kind, namespace, name, &params).await
}

async fn delete_with(
    client: &Client,
    kind: Kind,
    namespace: Option<&str>,
    name: &str,
    params: &DeleteParams,
) -> Result<bool, Error> {
    match kind.api(client, namespace).delete(name, params).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(Error::kube(
            format!("deleting {} {}", kind.name(), qualified(namespace, name)),
            e,
        )),
    }
}

/// Deletes the Backup, but only the very object that was checked (uid precondition).
pub async fn delete_backup(client: &Client, backup: &Object) -> Result<bool, Error> {
    let meta = &backup.metadata;
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(meta.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    delete_with(
        client,
        Kind::Backup,
        Some(&meta.namespace),
        &meta.name,
        &params,
    )
    .await
}

fn qualified(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

fn pointer(tokens: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(tokens.iter().copied())
}

/// Replaces `metadata.finalizers` if it still is `current` (a JSON patch `test` guards races).
async fn set_finalizers(
    api: &Api<DynamicObject>,
    name: &str,
    current: &[String],
    wanted: Vec<String>,
) -> Result<bool, kube::Error> {
    let path = pointer(&["metadata", "finalizers"]);
    // The API server omits an empty list, so "no finalizers" reads as null.
    let expected = match current.is_empty() {
        true => Value::Null,
        false => json!(current),
    };
    let mut ops = vec![PatchOperation::Test(TestOperation {
        path: path.clone(),
        value: expected,
    })];
    if current.is_empty() {
        ops.push(PatchOperation::Add(AddOperation {
            path,
            value: json!(wanted),
        }));
    } else {
        ops.push(if wanted.is_empty() {
            PatchOperation::Remove(RemoveOperation { path })
        } else {
            PatchOperation::Replace(ReplaceOperation {
                path,
                value: json!(wanted),
            })
        });
    }
    let patch: Patch<Value> = Patch::Json(json_patch::Patch(ops));
    match api.patch(name, &PatchParams::default(), &patch).await {
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Puts our finalizer on the Backup (no-op when it is there).
pub async fn add_finalizer(client: &Client, backup: &Object) -> Result<(), Error> {
    let meta = &backup.metadata;
    if meta.finalizers.iter().any(|f| f == CLEANUP_FINALIZER) {
        return Ok(());
    }
    let mut wanted = meta.finalizers.clone();
    wanted.push(CLEANUP_FINALIZER.into());
    let api = Kind::Backup.api(client, Some(&meta.namespace));
    set_finalizers(&api, &meta.name, &meta.finalizers, wanted)
        .await
        .map(|_| ())
        .map_err(|e| {
            Error::kube(
                format!(
                    "adding finalizer {CLEANUP_FINALIZER} to Backup {}/{}",
                    meta.namespace, meta.name
                ),
                e,
            )
        })
}

/// Removes our finalizer from the Backup as it is now (no-op when gone or absent).
pub async fn remove_finalizer(client: &Client, backup: &Object) -> Result<(), Error> {
    let meta = &backup.metadata;
    let action = || {
        format!(
            "removing finalizer {CLEANUP_FINALIZER} from Backup {}/{}",
            meta.namespace, meta.name
        )
    };
    let api = Kind::Backup.api(client, Some(&meta.namespace));
    let Some(current) = api
        .get_opt(&meta.name)
        .await
        .map_err(|e| Error::kube(action(), e))?
    else {
        return Ok(());
    };
    if current.metadata.uid.as_deref() != Some(meta.uid.as_str()) {
        return Ok(());
    }
    let finalizers = current.metadata.finalizers.unwrap_or_default();
    if !finalizers.iter().any(|f| f == CLEANUP_FINALIZER) {
        return Ok(());
    }
    let wanted = finalizers
        .iter()
        .filter(|f| *f != CLEANUP_FINALIZER)
        .cloned()
        .collect();
    set_finalizers(&api, &meta.name, &finalizers, wanted)
        .await
        .map(|_| ())
        .map_err(|e| Error::kube(action(), e))
}

/// Removes Velero's finalizers from a Restore whose files are already gone.
pub async fn release_restore(client: &Client, namespace: &str, name: &str) -> Result<(), Error> {
    let action = || format!("removing Velero's finalizer from Restore {namespace}/{name}");
    let api = Kind::Restore.api(client, Some(namespace));
    let Some(restore) = api
        .get_opt(name)
        .await
        .map_err(|e| Error::kube(action(), e))?
    else {
        return Ok(());
    };
    let finalizers = restore.metadata.finalizers.unwrap_or_default();
    let wanted: Vec<String> = finalizers
        .iter()
        .filter(|f| !f.starts_with(RESTORE_FINALIZER_PREFIX))
        .cloned()
        .collect();
    if wanted.len() == finalizers.len() {
        return Ok(());
    }
    set_finalizers(&api, name, &finalizers, wanted)
        .await
        .map(|_| ())
        .map_err(|e| Error::kube(action(), e))
}

/// Sets a VolumeSnapshotContent to `deletionPolicy: Delete`; false when it is gone.
pub async fn set_content_delete(client: &Client, name: &str) -> Result<bool, Error> {
    let api = Kind::VolumeSnapshotContent.api(client, None);
    let patch = Patch::Merge(json!({"spec": {"deletionPolicy": "Delete"}}));
    match api.patch(name, &PatchParams::default(), &patch).await {
        // What was stored, after every mutating webhook: deleting a content still `Retain` would
        // leave its storage snapshot behind while the Event says the driver removed it.
        Ok(stored) if stored.data.pointer("/spec/deletionPolicy") != Some(&json!("Delete")) => {
            Err(Error::ContentRetained(name.into()))
        }
        Ok(_) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(Error::kube(
            format!("setting VolumeSnapshotContent {name} to deletionPolicy Delete"),
            e,
        )),
    }
}

/// Files a DeleteBackupRequest exactly as `velero backup delete` does; returns its name.
pub async fn file_delete_request(client: &Client, backup: &Object) -> Result<String, Error> {
    let meta = &backup.metadata;
    let request: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "velero.io/v1",
        "kind": "DeleteBackupRequest",
        "metadata": {
            "generateName": format!("{}-", meta.name),
            "namespace": meta.namespace,
            "labels": {VELERO_BACKUP_NAME: label_value(&meta.name), VELERO_BACKUP_UID: meta.uid},
        },
        "spec": {"backupName": meta.name},
    }))
    .map_err(|e| Error::Velero {
        name: String::new(),
        errors: format!("cannot build the request: {e}"),
    })?;
    let api = Kind::DeleteBackupRequest.api(client, Some(&meta.namespace));
    let created = api
        .create(&PostParams::default(), &request)
        .await
        .map_err(|e| {
            Error::kube(
                format!(
                    "creating a DeleteBackupRequest for backup {}/{}",
                    meta.namespace, meta.name
                ),
                e,
            )
        })?;
    Ok(created.metadata.name.unwrap_or_default())
}
