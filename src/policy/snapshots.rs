//! Velero's snapshots: a VolumeSnapshot(Content) of a backup that is not sanctioned may not take
//! the storage snapshot with it, by a DELETE or by leaving the guard's sight (its label).

use super::decision::{Class, Context, Judging, Reason, Violation};
use super::messages;
use super::request::{Request, Resource};
use super::rules::ttl_collects;
use super::stamps::VELERO_BACKUP_NAME;
use crate::index::ContentEntry;

/// The VolumeSnapshotContent a VolumeSnapshot is bound to, from the index: by the snapshot's
/// `status.boundVolumeSnapshotContentName`, else by a content's `volumeSnapshotRef`.
fn bound_content<'a>(req: &Request, ctx: &'a Context<'_>) -> Option<(&'a str, &'a ContentEntry)> {
    let bound = req
        .current()
        .and_then(|o| o.status.bound_volume_snapshot_content_name.as_deref());
    match bound {
        Some(name) => ctx.index.content_named(name),
        None => ctx.index.content_for_snapshot(&req.namespace, &req.name),
    }
}

/// The Velero backup a VolumeSnapshot(Content) belongs to: its `velero.io/backup-name` label
/// (as stored, else as sent), or for an unlabelled VolumeSnapshot its bound content's label.
/// Backups are looked up in `policy.velero.namespace`, where Velero keeps them.
pub fn snapshot_backup<'a>(req: &'a Request, ctx: &'a Context<'_>) -> Option<&'a str> {
    let labelled = [req.old_object.as_deref(), req.object.as_deref()]
        .into_iter()
        .flatten()
        .find_map(|o| o.label(VELERO_BACKUP_NAME));
    match labelled {
        Some(b) => Some(b),
        None if req.resource == Resource::VolumeSnapshot => {
            bound_content(req, ctx).and_then(|(_, c)| c.backup.as_deref())
        }
        None => None,
    }
}

/// DELETE of a Velero VolumeSnapshot whose content would delete the storage snapshot. The
/// backup is the snapshot's label, or for an unlabelled snapshot its bound content's.
pub fn snapshot_delete(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let obj = req.current()?;
    let (content, entry) = bound_content(req, ctx)?;
    let backup = obj.label(VELERO_BACKUP_NAME).or(entry.backup.as_deref())?;
    snapshot_violation(req, ctx, backup, entry.deletes_storage, content)
}

/// DELETE of a Velero-labelled VolumeSnapshotContent with `deletionPolicy: Delete`.
pub fn content_delete(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let obj = req.current()?;
    let backup = obj.label(VELERO_BACKUP_NAME)?;
    let deletes = obj.spec.deletion_policy.as_deref() == Some("Delete");
    snapshot_violation(req, ctx, backup, deletes, &req.name)
}

/// Whether this request may remove the snapshots of `backup`: the backup is sanctioned, or it is
/// Velero's TTL collector at work on it. `Err(held)` when not.
pub fn snapshots_may_go(backup: &str, req: &Request, ctx: &Context<'_>) -> Result<(), bool> {
    let entry = ctx.index.backup(&ctx.policy.velero.namespace, backup);
    if entry.is_some_and(|b| b.sanctioned(ctx.policy, ctx.now) || ttl_collects(b, req, ctx)) {
        return Ok(());
    }
    Err(entry.is_some_and(|b| b.held()))
}

fn snapshot_violation(
    req: &Request,
    ctx: &Judging<'_>,
    backup: &str,
    deletes_storage: bool,
    content: &str,
) -> Option<Violation> {
    if !deletes_storage {
        return None;
    }
    let held = snapshots_may_go(backup, req, ctx).err()?;
    Some(ctx.holding(held).violation(
        Reason::SnapshotDelete,
        Class::Storage,
        || messages::snapshot(req, backup, content, ctx.policy),
        || messages::short(req, "it would delete the storage snapshot of a backup"),
    ))
}

/// UPDATE removing or changing `velero.io/backup-name` on a VolumeSnapshot(Content) of a backup
/// that is not sanctioned: unlabelled, it would leave the guard's sight (the webhooks select
/// Velero's snapshots by that label), and its DELETE would take the storage snapshot with it.
pub fn snapshot_relabelled(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let (old, new) = (req.old_object.as_ref()?, req.object.as_ref()?);
    let backup = old.label(VELERO_BACKUP_NAME)?;
    if new.label(VELERO_BACKUP_NAME) == Some(backup) {
        return None;
    }
    let held = snapshots_may_go(backup, req, ctx).err()?;
    Some(ctx.holding(held).violation(
        Reason::SnapshotRelabelled,
        Class::Storage,
        || messages::snapshot_label(req, backup, ctx.policy),
        || messages::short(req, &format!("{VELERO_BACKUP_NAME} removed or changed")),
    ))
}
