//! Feeds the index from Kubernetes watches of the guarded kinds. Decisions never call the API
//! server: they read what these watches have put in the index.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;

use super::state::{now, Shared};
use crate::policy::request::{Object, Resource};

/// The watched kinds and where they live in the API.
pub const WATCHED: [(Resource, &str, &str, &str, &str); 4] = [
    (Resource::Backup, "velero.io", "v1", "Backup", "backups"),
    (
        Resource::BackupStorageLocation,
        "velero.io",
        "v1",
        "BackupStorageLocation",
        "backupstoragelocations",
    ),
    (
        Resource::DeleteBackupRequest,
        "velero.io",
        "v1",
        "DeleteBackupRequest",
        "deletebackuprequests",
    ),
    (
        Resource::VolumeSnapshotContent,
        "snapshot.storage.k8s.io",
        "v1",
        "VolumeSnapshotContent",
        "volumesnapshotcontents",
    ),
];

/// The API resource of a watched kind.
pub fn api_resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn view(obj: &DynamicObject) -> Option<Object> {
    serde_json::to_value(obj)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// Runs every watch until the process ends; marks the index synced once each has listed once.
pub async fn run(client: Client, shared: Arc<Shared>) {
    let pending = Arc::new(Mutex::new(
        WATCHED.iter().map(|w| w.0).collect::<HashSet<_>>(),
    ));
    let tasks = WATCHED
        .iter()
        .map(|&(resource, group, version, kind, plural)| {
            let api: Api<DynamicObject> =
                Api::all_with(client.clone(), &api_resource(group, version, kind, plural));
            watch_one(api, resource, shared.clone(), pending.clone())
        });
    futures::future::join_all(tasks).await;
}

fn mark_synced(shared: &Shared, pending: &Mutex<HashSet<Resource>>, resource: Resource) {
    let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
    if p.remove(&resource) {
        tracing::info!(resource = resource.as_str(), "index synced");
    }
    if p.is_empty() {
        shared
            .readiness
            .index_synced
            .store(true, std::sync::atomic::Ordering::Release);
    }
}

async fn watch_one(
    api: Api<DynamicObject>,
    resource: Resource,
    shared: Arc<Shared>,
    pending: Arc<Mutex<HashSet<Resource>>>,
) {
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut buffer: Vec<Object> = Vec::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => buffer.clear(),
            Ok(Event::InitApply(obj)) => buffer.extend(view(&obj)),
            Ok(Event::InitDone) => {
                let mut index = shared.write_index();
                index.clear(resource);
                for obj in buffer.drain(..) {
                    index.apply(resource, &obj, &shared.key);
                }
                drop(index);
                mark_synced(&shared, &pending, resource);
                update_gauges(&shared);
            }
            Ok(Event::Apply(obj)) => {
                if let Some(o) = view(&obj) {
                    shared.write_index().apply(resource, &o, &shared.key);
                    update_gauges(&shared);
                }
            }
            Ok(Event::Delete(obj)) => {
                let (ns, name) = (
                    obj.metadata.namespace.unwrap_or_default(),
                    obj.metadata.name.unwrap_or_default(),
                );
                shared.write_index().remove(resource, &ns, &name);
                update_gauges(&shared);
            }
            Err(watcher::Error::InitialListFailed(kube::Error::Api(status)))
                if status.is_not_found() =>
            {
                // The CRD is not installed: nothing of this kind exists to protect yet.
                tracing::warn!(
                    resource = resource.as_str(),
                    "CRD not installed; treating as empty and retrying"
                );
                shared.write_index().clear(resource);
                mark_synced(&shared, &pending, resource);
            }
            Err(e) => {
                tracing::warn!(resource = resource.as_str(), error = %e, "watch failed; retrying with backoff")
            }
        }
    }
}

/// Refreshes `backup_guard_protected_objects`.
pub fn update_gauges(shared: &Shared) {
    let policy = shared.policy.load();
    let index = shared.read_index();
    let g = &shared.metrics.protected_objects;
    g.with_label_values(&["backups"])
        .set(index.protected_total(&policy, now()) as f64);
    g.with_label_values(&["backupstoragelocations"])
        .set(index.count(Resource::BackupStorageLocation) as f64);
    g.with_label_values(&["volumesnapshotcontents"])
        .set(index.deleting_velero_contents() as f64);
}
