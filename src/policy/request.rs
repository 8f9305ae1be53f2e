//! The domain view of one admission request: only the fields the rules read.
//!
//! Decoding skips everything else (managedFields, pod specs, …), which keeps a
//! decision cheap; a body that is not an AdmissionReview is an error value.

use std::collections::BTreeMap;

use serde::Deserialize;
use thiserror::Error;

#[path = "request_lenient.rs"]
mod lenient;

/// Why an AdmissionReview body could not be read.
#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("body is not a valid AdmissionReview: {0}")]
    Json(serde_json::Error),
    #[error("body is not UTF-8: {0}")]
    Utf8(std::str::Utf8Error),
    #[error("AdmissionReview has no request")]
    NoRequest,
    #[error("AdmissionReview kind is {0:?}, expected AdmissionReview")]
    WrongKind(String),
    #[error("unsupported operation {0:?}")]
    Operation(String),
}

/// The API operation being admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    /// The label value used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// The resources the guard knows; everything else is `Other` and allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Backup,
    DeleteBackupRequest,
    BackupStorageLocation,
    VolumeSnapshot,
    VolumeSnapshotContent,
    Namespace,
    CustomResourceDefinition,
    Other,
}

impl Resource {
    /// Every known resource, in a fixed order (metrics iterate it).
    pub const ALL: [Resource; 8] = [
        Resource::Backup,
        Resource::DeleteBackupRequest,
        Resource::BackupStorageLocation,
        Resource::VolumeSnapshot,
        Resource::VolumeSnapshotContent,
        Resource::Namespace,
        Resource::CustomResourceDefinition,
        Resource::Other,
    ];

    /// Maps an API group and plural resource name.
    pub fn from_group_resource(group: &str, resource: &str) -> Resource {
        match (group, resource) {
            ("velero.io", "backups") => Resource::Backup,
            ("velero.io", "deletebackuprequests") => Resource::DeleteBackupRequest,
            ("velero.io", "backupstoragelocations") => Resource::BackupStorageLocation,
            ("snapshot.storage.k8s.io", "volumesnapshots") => Resource::VolumeSnapshot,
            ("snapshot.storage.k8s.io", "volumesnapshotcontents") => {
                Resource::VolumeSnapshotContent
            }
            ("", "namespaces") => Resource::Namespace,
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                Resource::CustomResourceDefinition
            }
            _ => Resource::Other,
        }
    }

    /// Maps an `apiVersion` and `kind`, as objects in a `kubectl get` listing carry them.
    pub fn from_api_version_kind(api_version: &str, kind: &str) -> Resource {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let plural = match kind {
            "Backup" => "backups",
            "DeleteBackupRequest" => "deletebackuprequests",
            "BackupStorageLocation" => "backupstoragelocations",
            "VolumeSnapshot" => "volumesnapshots",
            "VolumeSnapshotContent" => "volumesnapshotcontents",
            "Namespace" => "namespaces",
            "CustomResourceDefinition" => "customresourcedefinitions",
            _ => "",
        };
        Resource::from_group_resource(group, plural)
    }

    /// The plural name: metric label and CRD name stem.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Backup => "backups",
            Resource::DeleteBackupRequest => "deletebackuprequests",
            Resource::BackupStorageLocation => "backupstoragelocations",
            Resource::VolumeSnapshot => "volumesnapshots",
            Resource::VolumeSnapshotContent => "volumesnapshotcontents",
            Resource::Namespace => "namespaces",
            Resource::CustomResourceDefinition => "customresourcedefinitions",
            Resource::Other => "other",
        }
    }

    /// The kind as people write it after `kubectl get`.
    pub fn kubectl_name(self) -> &'static str {
        match self {
            Resource::Backup => "backup",
            Resource::DeleteBackupRequest => "deletebackuprequest",
            Resource::BackupStorageLocation => "backupstoragelocation",
            Resource::VolumeSnapshot => "volumesnapshot",
            Resource::VolumeSnapshotContent => "volumesnapshotcontent",
            Resource::Namespace => "namespace",
            Resource::CustomResourceDefinition => "crd",
            Resource::Other => "object",
        }
    }
}

/// Who sent the request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct User {
    pub username: String,
    #[serde(deserialize_with = "lenient::null_default")]
    pub groups: Vec<String>,
}

/// Object metadata the rules read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Meta {
    #[serde(deserialize_with = "lenient::null_default")]
    pub name: String,
    #[serde(deserialize_with = "lenient::null_default")]
    pub namespace: String,
    #[serde(deserialize_with = "lenient::null_default")]
    pub uid: String,
    #[serde(deserialize_with = "lenient::null_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "lenient::null_default")]
    pub annotations: BTreeMap<String, String>,
    #[serde(deserialize_with = "lenient::null_default")]
    pub finalizers: Vec<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub deletion_timestamp: Option<String>,
    /// RFC 3339; set by the API server on every stored object.
    #[serde(deserialize_with = "lenient::string")]
    pub creation_timestamp: Option<String>,
}

/// The union of the `spec` fields the rules read across the guarded kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Spec {
    /// Backup: how long Velero keeps it (Go duration).
    #[serde(deserialize_with = "lenient::string")]
    pub ttl: Option<String>,
    /// Backup: its BackupStorageLocation.
    #[serde(deserialize_with = "lenient::string")]
    pub storage_location: Option<String>,
    /// DeleteBackupRequest / Restore: the backup it is about.
    #[serde(deserialize_with = "lenient::string")]
    pub backup_name: Option<String>,
    /// VolumeSnapshotContent: `Delete` or `Retain`.
    #[serde(deserialize_with = "lenient::string")]
    pub deletion_policy: Option<String>,
    /// VolumeSnapshotContent: the VolumeSnapshot it belongs to.
    #[serde(deserialize_with = "lenient::typed")]
    pub volume_snapshot_ref: Option<SnapshotRef>,
    /// BackupStorageLocation: its object store plugin.
    #[serde(deserialize_with = "lenient::string")]
    pub provider: Option<String>,
    /// BackupStorageLocation: the bucket and prefix its backups are under.
    #[serde(deserialize_with = "lenient::typed")]
    pub object_storage: Option<ObjectStorage>,
    /// BackupStorageLocation: the configuration keys that pick an account or a directory.
    #[serde(deserialize_with = "lenient::typed")]
    pub config: Option<LocationConfig>,
    /// Backup: CSI snapshot data moved into the backup repository (the controller reads it).
    #[serde(deserialize_with = "lenient::typed")]
    pub snapshot_move_data: Option<bool>,
}

/// A BackupStorageLocation's `spec.config`, the keys that say which storage, not how to reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LocationConfig {
    /// azure: the storage account (container names are unique only inside one).
    #[serde(deserialize_with = "lenient::string")]
    pub storage_account: Option<String>,
    /// file (the guard's own provider for local use): the directory buckets are under.
    #[serde(deserialize_with = "lenient::string")]
    pub root: Option<String>,
}

/// A BackupStorageLocation's `spec.objectStorage` (the parts that say where files are).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ObjectStorage {
    #[serde(deserialize_with = "lenient::null_default")]
    pub bucket: String,
    #[serde(deserialize_with = "lenient::null_default")]
    pub prefix: String,
}

/// A VolumeSnapshotContent's `spec.volumeSnapshotRef`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SnapshotRef {
    #[serde(deserialize_with = "lenient::null_default")]
    pub namespace: String,
    #[serde(deserialize_with = "lenient::null_default")]
    pub name: String,
}

/// The union of the `status` fields the rules (and the controller) read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Status {
    /// Backup: when Velero's TTL collector may delete it (RFC 3339).
    #[serde(deserialize_with = "lenient::string")]
    pub expiration: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub phase: Option<String>,
    /// Backup: when Velero started it (RFC 3339).
    #[serde(deserialize_with = "lenient::string")]
    pub start_timestamp: Option<String>,
    /// Backup: when Velero finished it (RFC 3339; the controller).
    #[serde(deserialize_with = "lenient::string")]
    pub completion_timestamp: Option<String>,
    /// VolumeSnapshot: the content it is bound to.
    #[serde(deserialize_with = "lenient::string")]
    pub bound_volume_snapshot_content_name: Option<String>,
    /// Backup: volume snapshots Velero's snapshotter plugins took or tried (the controller).
    #[serde(deserialize_with = "lenient::typed")]
    pub volume_snapshots_attempted: Option<u64>,
    /// Backup: asynchronous plugin operations, the data mover's uploads among them (the
    /// controller).
    #[serde(deserialize_with = "lenient::typed")]
    pub backup_item_operations_attempted: Option<u64>,
}

/// A Kubernetes object reduced to what the guard reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Object {
    #[serde(rename = "apiVersion", deserialize_with = "lenient::null_default")]
    pub api_version: String,
    #[serde(deserialize_with = "lenient::null_default")]
    pub kind: String,
    #[serde(deserialize_with = "lenient::null_default")]
    pub metadata: Meta,
    #[serde(deserialize_with = "lenient::null_default")]
    pub spec: Spec,
    #[serde(deserialize_with = "lenient::null_default")]
    pub status: Status,
}

impl Object {
    /// A label's value, if set.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.metadata.labels.get(key).map(String::as_str)
    }

    /// An annotation's value, if set.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata.annotations.get(key).map(String::as_str)
    }
}

/// One admission request, as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `apiVersion` of the review, echoed in the response.
    pub api_version: String,
    pub uid: String,
    pub operation: Operation,
    pub resource: Resource,
    pub sub_resource: Option<String>,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    /// From the request, or from the object when the request has none (namespace cascades).
    pub name: String,
    pub user: User,
    /// Boxed: decoding moves it through several layers of `Option` and `Result`; a box moves
    /// as one pointer (≈ 2 000 instructions a review less than moving the struct).
    pub object: Option<Box<Object>>,
    pub old_object: Option<Box<Object>>,
    pub dry_run: bool,
}

impl Request {
    /// Decodes an AdmissionReview body.
    pub fn from_review_json(body: &[u8]) -> Result<Request, DecodeError> {
        // One UTF-8 check of the whole body, then serde_json's `str` reader, which does not check
        // every string again: decoding is most of what a request costs (docs/performance.md).
        let text = std::str::from_utf8(body).map_err(DecodeError::Utf8)?;
        let review: ReviewIn = serde_json::from_str(text).map_err(DecodeError::Json)?;
        if review.kind != "AdmissionReview" {
            return Err(DecodeError::WrongKind(review.kind));
        }
        let r = review.request.ok_or(DecodeError::NoRequest)?;
        let operation = match r.operation.as_str() {
            "CREATE" => Operation::Create,
            "UPDATE" => Operation::Update,
            "DELETE" => Operation::Delete,
            "CONNECT" => Operation::Connect,
            other => return Err(DecodeError::Operation(other.to_owned())),
        };
        let resource = Resource::from_group_resource(&r.resource.group, &r.resource.resource);
        let from_object = |o: &Option<Box<Object>>| o.as_ref().map(|o| o.metadata.name.clone());
        let name = r
            .name
            .filter(|n| !n.is_empty())
            .or_else(|| from_object(&r.old_object))
            .or_else(|| from_object(&r.object))
            .unwrap_or_default();
        Ok(Request {
            api_version: review.api_version,
            uid: r.uid,
            operation,
            resource,
            sub_resource: r.sub_resource.filter(|s| !s.is_empty()),
            // A Namespace DELETE names the namespace as its own namespace; it is cluster-scoped.
            namespace: match resource {
                Resource::Namespace => String::new(),
                _ => r.namespace.unwrap_or_default(),
            },
            name,
            user: r.user_info,
            object: r.object,
            old_object: r.old_object,
            dry_run: r.dry_run.unwrap_or(false),
        })
    }

    /// The object as it was before (DELETE, UPDATE) or as it will be (CREATE).
    pub fn current(&self) -> Option<&Object> {
        self.old_object.as_deref().or(self.object.as_deref())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    request: Option<RequestIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestIn {
    uid: String,
    resource: GroupVersionResource,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    operation: String,
    #[serde(default)]
    user_info: User,
    #[serde(default)]
    object: Option<Box<Object>>,
    #[serde(default)]
    old_object: Option<Box<Object>>,
    #[serde(default)]
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
struct GroupVersionResource {
    #[serde(default)]
    group: String,
    resource: String,
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
