//! Where the kinds the controller touches live in the API, and Velero's label conventions.

use kube::api::{Api, ApiResource, DynamicObject};
use kube::Client;

use crate::policy::request::Object;
pub use crate::policy::stamps::label_value;
use crate::server::feed::api_resource;

/// A kind the controller reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Backup,
    BackupStorageLocation,
    Restore,
    PodVolumeBackup,
    DeleteBackupRequest,
    VolumeSnapshot,
    VolumeSnapshotContent,
}

impl Kind {
    /// Group, version, kind and plural.
    fn gvkp(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Kind::Backup => ("velero.io", "v1", "Backup", "backups"),
            Kind::BackupStorageLocation => (
                "velero.io",
                "v1",
                "BackupStorageLocation",
                "backupstoragelocations",
            ),
            Kind::Restore => ("velero.io", "v1", "Restore", "restores"),
            Kind::PodVolumeBackup => ("velero.io", "v1", "PodVolumeBackup", "podvolumebackups"),
            Kind::DeleteBackupRequest => (
                "velero.io",
                "v1",
                "DeleteBackupRequest",
                "deletebackuprequests",
            ),
            Kind::VolumeSnapshot => (
                "snapshot.storage.k8s.io",
                "v1",
                "VolumeSnapshot",
                "volumesnapshots",
            ),
            Kind::VolumeSnapshotContent => (
                "snapshot.storage.k8s.io",
                "v1",
                "VolumeSnapshotContent",
                "volumesnapshotcontents",
            ),
        }
    }

    /// The API resource, for dynamic clients.
    pub fn resource(self) -> ApiResource {
        let (group, version, kind, plural) = self.gvkp();
        api_resource(group, version, kind, plural)
    }

    /// The kind as people read it in messages.
    pub fn name(self) -> &'static str {
        self.gvkp().2
    }

    /// A client for this kind in `namespace` (`None`: all namespaces, or cluster-scoped).
    pub fn api(self, client: &Client, namespace: Option<&str>) -> Api<DynamicObject> {
        let ar = self.resource();
        match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        }
    }
}

/// Velero's label holding the backup's uid.
pub const VELERO_BACKUP_UID: &str = "velero.io/backup-uid";

/// Velero's label on every object a Restore created (beside `velero.io/backup-name`, the backup
/// restored from).
pub const VELERO_RESTORE_NAME: &str = "velero.io/restore-name";

/// Velero's finalizers on Restores (its controller deletes `restores/<name>/` when they go).
pub const RESTORE_FINALIZER_PREFIX: &str = "restores.velero.io/";

/// The slim view of a dynamic object, as the policy core reads it.
pub fn view(obj: &DynamicObject) -> Object {
    serde_json::to_value(obj)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_backup_names_are_shortened_as_velero_does() {
        assert_eq!(label_value("daily-1"), "daily-1");
        let long = "a".repeat(70);
        let v = label_value(&long);
        assert_eq!(v.len(), 63);
        assert!(v.starts_with(&"a".repeat(57)));
        assert!(v[57..].chars().all(|c| c.is_ascii_hexdigit()));
    }
}
