//! Which mode a request is judged in: the policy's `rules` by namespace and labels, and a
//! Backup may not be relabelled into a milder one.

use super::config::Mode;
use super::decision::{Actor, Class, Context, Judging, Reason, Violation};
use super::messages;
use super::request::{Request, Resource};
use super::rules::{delete_request_target, self_sanction};
use super::snapshots::snapshot_backup;
use super::stamps::Unsanctioned;
use crate::index::Labels;

/// The mode for this request. Rules match the object's namespace and labels, except for the
/// objects that only act on a backup — a DeleteBackupRequest, Velero's VolumeSnapshots and
/// VolumeSnapshotContents — which take the mode of that backup (its namespace and its labels
/// from the index), so that no label written on them can choose a milder mode.
pub fn mode_for(req: &Request, ctx: &Context<'_>) -> Mode {
    let policy = ctx.policy;
    if policy.rules.is_empty() {
        return policy.mode;
    }
    let empty = Labels::new();
    let own = || req.current().map_or(&empty, |o| &o.metadata.labels);
    let backup_labels = |ns: &str, name: Option<&str>| {
        name.and_then(|n| ctx.index.backup(ns, n))
            .map_or(&empty, |b| b.labels())
    };
    match req.resource {
        Resource::Namespace => policy.mode_for(&req.name, own()),
        Resource::DeleteBackupRequest => {
            let target = req.object.as_deref().or(req.old_object.as_deref());
            let backup = target.map(delete_request_target);
            policy.mode_for(&req.namespace, backup_labels(&req.namespace, backup))
        }
        Resource::VolumeSnapshot | Resource::VolumeSnapshotContent => {
            let ns = policy.velero.namespace.as_str();
            policy.mode_for(ns, backup_labels(ns, snapshot_backup(req, ctx)))
        }
        _ => policy.mode_for(&req.namespace, own()),
    }
}

/// How much a mode refuses, for [`mode_lowered`].
fn strictness(mode: Mode) -> u8 {
    match mode {
        Mode::Off => 0,
        Mode::Audit => 1,
        Mode::Neuter => 2,
        Mode::Enforce => 3,
    }
}

/// UPDATE of a Backup whose new labels would put it under a milder mode of the policy's `rules`
/// (say `enforce` to `audit`). Its DeleteBackupRequests and snapshots are judged in the mode of
/// its labels, so the relabel would let through a deletion the mode it is under refuses.
/// Velero's own account passes (it labels backups as it makes them); so does a sanctioned backup.
pub fn mode_lowered(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let (old, new) = (req.old_object.as_deref()?, req.object.as_deref()?);
    if ctx.policy.rules.is_empty()
        || old.metadata.labels == new.metadata.labels
        || Actor::of(&req.user.username, ctx.policy) == Actor::Velero
    {
        return None;
    }
    // `ctx.mode` is the mode of the stored labels (`mode_for` reads the old object).
    let to = ctx.policy.mode_for(&req.namespace, &new.metadata.labels);
    if strictness(to) >= strictness(ctx.mode) {
        return None;
    }
    let held = self_sanction(req, ctx).err()? == Unsanctioned::Held;
    Some(ctx.holding(held).violation(
        Reason::ModeLowered,
        Class::Storage,
        || messages::mode_lowered(req, ctx.mode, to),
        || {
            messages::short(
                req,
                &format!("its new labels put it in mode {to}, not {}", ctx.mode),
            )
        },
    ))
}
