//! Why a cleanup step failed, worded for the Event on the Backup: what failed and what to do.

use thiserror::Error;

use crate::storage::{CleanupError, LocationError};

/// A failed cleanup step. The Backup keeps its finalizer and the controller retries with backoff.
#[derive(Debug, Error)]
pub enum Error {
    /// An API call failed.
    #[error("{action}: {detail}")]
    Kube {
        /// What was being done, e.g. `deleting Restore velero/r1`.
        action: String,
        /// The API server's message, without the client's debug dump.
        detail: String,
        #[source]
        source: kube::Error,
    },
    /// The Backup names no storage location.
    #[error(
        "backup {0} has no spec.storageLocation, so its files cannot be found; set it to the \
         BackupStorageLocation that holds them"
    )]
    NoStorageLocation(String),
    /// The BackupStorageLocation does not exist.
    #[error(
        "BackupStorageLocation {namespace}/{name} does not exist, so the backup's files cannot be \
         reached; re-create it (velero backup-location create) and the cleanup resumes"
    )]
    LocationMissing { namespace: String, name: String },
    /// The BackupStorageLocation is `ReadOnly`.
    #[error(
        "BackupStorageLocation {namespace}/{name} is ReadOnly (spec.accessMode), so nothing is \
         deleted from it, as Velero refuses too; set spec.accessMode to ReadWrite if this \
         cluster is meant to delete from that storage, and the cleanup resumes"
    )]
    LocationReadOnly { namespace: String, name: String },
    /// The credentials Secret lacks the key.
    #[error(
        "Secret {namespace}/{name} has no key {key:?} (named by the BackupStorageLocation's \
         spec.credential, default cloud-credentials/cloud); add the credentials file under that key"
    )]
    SecretKeyMissing {
        namespace: String,
        name: String,
        key: String,
    },
    /// The BackupStorageLocation cannot be turned into a storage client.
    #[error("BackupStorageLocation {namespace}/{name}: {source}")]
    Location {
        namespace: String,
        name: String,
        #[source]
        source: LocationError,
    },
    /// Deleting files failed (the error carries the bucket, directory and a hint).
    #[error("{0}")]
    Storage(#[from] CleanupError),
    /// A VolumeSnapshotContent set to `Delete` was stored as something else.
    #[error(
        "VolumeSnapshotContent {0} was set to deletionPolicy Delete but stored otherwise (a \
         mutating admission webhook changed it back), so it is not deleted: its storage snapshot \
         would be left behind; check the webhooks on VolumeSnapshotContents"
    )]
    ContentRetained(String),
    /// Velero processed the DeleteBackupRequest and reported errors.
    #[error(
        "Velero processed DeleteBackupRequest {name} with errors: {errors}; a new request is \
         filed in a few minutes (see `velero backup describe` and Velero's logs)"
    )]
    Velero { name: String, errors: String },
    /// Velero has not taken the DeleteBackupRequest (`velero` engine) for too long.
    #[error(
        "Velero has not taken DeleteBackupRequest {namespace}/{name}, filed at {since}: is \
         Velero running and acting on requests (`kubectl -n {namespace} get deployment velero`, \
         its logs; no other request is in progress)? The request stays \
         and the cleanup goes on once Velero takes it"
    )]
    VeleroIdle {
        namespace: String,
        name: String,
        /// When the request was filed (RFC 3339): the same at every look, so repeats fold.
        since: String,
    },
    /// This replica lost the leader lease mid-cleanup; the new leader resumes.
    #[error("lost the leader lease; the replica holding it resumes the cleanup")]
    NotLeader,
}

impl Error {
    /// An API error, with what was being done.
    pub fn kube(action: impl Into<String>, source: kube::Error) -> Error {
        Error::Kube {
            action: action.into(),
            detail: api_message(&source),
            source,
        }
    }
}

/// The API server's own words for an API error (`message (code)`), else the client's error.
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} (HTTP {})", status.message, status.code),
        other => other.to_string(),
    }
}

/// Whether an API error says the object is gone (a deletion that already happened).
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.is_not_found())
}
