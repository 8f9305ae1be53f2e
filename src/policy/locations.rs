//! Where a backup's files are: the BackupStorageLocation a Backup names, and the provider,
//! bucket and prefix that location points at. A sanctioned cleanup deletes there, so neither may
//! move while backups depend on them, and a location that backups use is not deleted.

use super::decision::{Actor, Class, Judging, Reason, Violation};
use super::messages;
use super::request::{Object, Request};
use super::rules::self_sanction;
use super::stamps::{is_held, Unsanctioned};

/// An UPDATE touches a held object when the hold is on it before or after.
fn held_before_or_after(old: &Object, new: &Object) -> bool {
    is_held(&old.metadata) || is_held(&new.metadata)
}

/// UPDATE of a Backup changing or removing a set `spec.storageLocation`. A sanctioned deletion
/// cleans `<prefix>/backups/<name>/` in the location the Backup names, so a Backup moved after
/// (or before) the sanction would point the cleanup at a backup of the same name elsewhere.
/// Velero sets the field once, when it is empty; Velero itself may still write it.
///
/// The same for its `velero.io/storage-location` label, which Velero's sync reads: it deletes a
/// Backup whose label names a location that does not hold it, and re-creates it from the
/// location that does, without its hold or a later expiration.
pub fn location_moved(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let (old, new) = (req.old_object.as_ref()?, req.object.as_ref()?);
    if Actor::of(&req.user.username, ctx.policy) == Actor::Velero {
        return None;
    }
    fn spec(o: &Object) -> &str {
        o.spec.storage_location.as_deref().unwrap_or_default()
    }
    fn label(o: &Object) -> &str {
        o.label(LOCATION_LABEL).unwrap_or_default()
    }
    let moved = |from: &str, to: &str| !from.is_empty() && from != to;
    let (relabelled, from, to) = if moved(spec(old), spec(new)) {
        (false, spec(old), spec(new))
    } else if moved(label(old), label(new)) {
        (true, label(old), label(new))
    } else {
        return None;
    };
    let field = if relabelled {
        "label velero.io/storage-location"
    } else {
        "spec.storageLocation"
    };
    let held = held_before_or_after(old, new);
    Some(ctx.holding(held).violation(
        Reason::StorageLocationMoved,
        Class::Storage,
        || match relabelled {
            true => messages::location_relabelled(req, from, to),
            false => messages::location_moved(req, from, to),
        },
        || messages::short(req, &format!("{field} changed from {from} to {to:?}")),
    ))
}

/// Velero's label naming a Backup's location.
const LOCATION_LABEL: &str = "velero.io/storage-location";

/// The fields of a BackupStorageLocation that say where its backups' files are, as Velero
/// reads them: the provider without `velero.io/`, bucket and prefix without surrounding slashes,
/// azure's storage account (container names are unique only inside one), the file provider's root.
fn location_place(o: &Object) -> [(&'static str, String); 5] {
    let storage = o.spec.object_storage.clone().unwrap_or_default();
    let config = o.spec.config.clone().unwrap_or_default();
    let provider = o.spec.provider.clone().unwrap_or_default();
    let trim = |v: &str| v.trim().trim_matches('/').to_string();
    [
        (
            "spec.provider",
            provider
                .strip_prefix("velero.io/")
                .unwrap_or(&provider)
                .to_string(),
        ),
        ("spec.objectStorage.bucket", trim(&storage.bucket)),
        ("spec.objectStorage.prefix", trim(&storage.prefix)),
        (
            "spec.config.storageAccount",
            config.storage_account.unwrap_or_default(),
        ),
        ("spec.config.root", config.root.unwrap_or_default()),
    ]
}

/// UPDATE of a BackupStorageLocation that backups refer to, changing where their files are
/// ([`location_place`]). The files stay where they were, and a sanctioned cleanup would delete
/// a backup of the same name at the new place. Endpoint, region and credentials may change (the
/// same bucket, reached another way).
pub fn location_repointed(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let (old, new) = (req.old_object.as_ref()?, req.object.as_ref()?);
    let (from, to) = (location_place(old), location_place(new));
    if from == to || Actor::of(&req.user.username, ctx.policy) == Actor::Velero {
        return None;
    }
    let count = ctx.index.backups_at_location(&req.namespace, &req.name);
    if count == 0 {
        return None;
    }
    let changed = from
        .iter()
        .zip(&to)
        .filter(|((_, a), (_, b))| a != b)
        .map(|((field, a), (_, b))| format!("{field} from {a:?} to {b:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let held = held_before_or_after(old, new);
    Some(ctx.holding(held).violation(
        Reason::StorageLocationRepointed,
        Class::Storage,
        || messages::location_repointed(req, &changed, count),
        || {
            messages::short(
                req,
                &format!("{changed}, with {count} backups stored there"),
            )
        },
    ))
}

/// DELETE of a BackupStorageLocation that backups still refer to.
pub fn storage_location_delete(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let count = ctx.index.backups_at_location(&req.namespace, &req.name);
    if count == 0 {
        return None;
    }
    let held = self_sanction(req, ctx).err()? == Unsanctioned::Held;
    Some(ctx.holding(held).violation(
        Reason::StorageLocationDelete,
        Class::Shadow,
        || messages::location(req, count, ctx.policy),
        || messages::short(req, &format!("{count} backups are stored there")),
    ))
}
