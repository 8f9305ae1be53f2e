//! The messages of the rules that keep a backup's files where the cleanup looks for them: a
//! Backup moved to another location (its field or its label), a location pointed elsewhere or
//! deleted while in use.

use super::super::config::Policy;
use super::super::request::Request;
use super::{how_to_sanction, target};

/// A Backup moved to another BackupStorageLocation (or its location removed).
pub fn location_moved(req: &Request, from: &str, to: &str) -> String {
    let change = if to.is_empty() {
        format!("removes spec.storageLocation {from} from")
    } else {
        format!("moves spec.storageLocation from {from} to {to} on")
    };
    format!(
        "backup-guard: this update {change} {}. The backup's files are in BackupStorageLocation {from}, and a \
         sanctioned deletion cleans the location the Backup names: a moved Backup would have the cleanup delete \
         another backup of the same name. Velero sets spec.storageLocation once, when it is empty; to keep this \
         backup in another location too, back it up there (`velero backup create --storage-location NAME`).",
        target(req)
    )
}

/// A BackupStorageLocation that backups refer to, pointed somewhere else.
pub fn location_repointed(req: &Request, changed: &str, count: usize) -> String {
    format!(
        "backup-guard: this update changes {changed} of {}, where {count} backup(s) are stored. Their files stay \
         where they are, and a sanctioned deletion would clean the new place instead: another backup of the same \
         name there. To store backups somewhere else, create a new BackupStorageLocation \
         (`velero backup-location create`); endpoint, region, credentials and CA may change here.",
        target(req)
    )
}

/// A BackupStorageLocation that backups still refer to.
pub fn location(req: &Request, count: usize, policy: &Policy) -> String {
    format!(
        "backup-guard: {} is where {count} backup(s) are stored; deleting it (as `velero backup-location delete` does) \
         also deletes their Backup objects and strands their cleanup. Move or delete those backups first. {}",
        target(req),
        how_to_sanction(req.resource, &req.namespace, &req.name, policy)
    )
}

/// A Backup's `velero.io/storage-location` label changed or removed.
pub fn location_relabelled(req: &Request, from: &str, to: &str) -> String {
    let change = if to.is_empty() {
        format!("removes the label velero.io/storage-location={from} from")
    } else {
        format!("changes the label velero.io/storage-location from {from} to {to} on")
    };
    format!(
        "backup-guard: this update {change} {}. Velero's sync reads that label: it deletes a Backup whose \
         location does not hold it, and re-creates it from the location that does, without its hold or a \
         later expiration, for its TTL collector. Velero sets the label with spec.storageLocation ({from}).",
        target(req)
    )
}
