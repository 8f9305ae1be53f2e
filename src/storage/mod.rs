//! Object storage for the native cleanup engine: resolve a Velero BackupStorageLocation,
//! know Velero's layout, and delete exactly one backup's or restore's files.
//!
//! Nothing here deletes a key that [`layout::may_delete`] rejects.

pub mod cleanup;
pub mod layout;
pub mod location;

pub use cleanup::{
    delete_backup_files, delete_keys, delete_restore_files, delete_scope, list_backup_files,
    list_restore_files, list_scope, CleanupError, Deleted, Listing,
};
pub use layout::{backup_prefix, may_delete, restore_prefix, LayoutError, Scope, ScopeKind};
pub use location::{
    resolve, AmbientCredentials, BslSpec, ClientSettings, Identity, Location, LocationError,
    Provider, HELM_CREDENTIALS_SECRET,
};
