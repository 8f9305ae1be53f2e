//! The validating rules: one function per row of the contract's "What is guarded".
//!
//! Each rule returns the violation it finds, or `None`, built through [`Judging::violation`]
//! so that only the text its outcome shows is written; [`validate`] turns it into a decision.

use super::config::Mode;
use super::decision::{Actor, Class, Context, Decision, Judging, Reason, Violation};
use super::deletion::{deletion_started, finalizer_removed};
use super::expiry::{created_expired, expiration_moved_earlier, ttl_shortened};
use super::extension::{extension, original_expiration_written};
use super::locations::{location_moved, location_repointed, storage_location_delete};
use super::messages;
use super::modes::{mode_for, mode_lowered};
use super::request::{Object, Operation, Request, Resource};
use super::snapshots::{content_delete, snapshot_delete, snapshot_relabelled};
use super::stamps::{sanction, SanctionFacts, Unsanctioned, VELERO_BACKUP_NAME};
use super::words::{stamps_on_create, words_update};
use crate::index::BackupEntry;

/// Finalizers whose controllers delete storage data when the object goes (Ark 0.7's).
pub const STORAGE_DELETING_FINALIZERS: [&str; 1] = ["gc.ark.heptio.com"];

/// CRDs whose deletion is guarded, and the resource each holds.
pub fn guarded_crd(name: &str) -> Option<Resource> {
    match name {
        "backups.velero.io" => Some(Resource::Backup),
        "deletebackuprequests.velero.io" => Some(Resource::DeleteBackupRequest),
        "backupstoragelocations.velero.io" => Some(Resource::BackupStorageLocation),
        "volumesnapshotcontents.snapshot.storage.k8s.io" => Some(Resource::VolumeSnapshotContent),
        _ => None,
    }
}

/// The validating webhook's decision.
pub fn validate(req: &Request, ctx: &Context<'_>) -> Decision {
    let mode = mode_for(req, ctx);
    if mode == Mode::Off || req.resource == Resource::Other {
        return Decision::allow(mode);
    }
    let judging = Judging {
        ctx,
        mode,
        exempt: ctx
            .policy
            .exempt
            .contains(&req.user.username, &req.user.groups),
    };
    match find_violation(req, &judging) {
        Some(v) => Decision::from_violation(v, mode, req, ctx.policy),
        None => Decision::allow(mode),
    }
}

/// The backup a DeleteBackupRequest is about: `spec.backupName`, else Velero's label.
pub fn delete_request_target(obj: &Object) -> &str {
    obj.spec
        .backup_name
        .as_deref()
        .or_else(|| obj.label(VELERO_BACKUP_NAME))
        .unwrap_or("")
}

fn find_violation(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    use Operation::*;
    use Resource::*;
    match (req.resource, req.operation) {
        (Backup, Delete) => backup_delete(req, ctx),
        (Namespace, Delete) => namespace_delete(req, ctx),
        (CustomResourceDefinition, Delete) => crd_delete(req, ctx),
        (DeleteBackupRequest, Create) => delete_request_create(req, ctx),
        (DeleteBackupRequest, Update) => delete_request_retargeted(req, ctx),
        (BackupStorageLocation, Delete) => storage_location_delete(req, ctx),
        (VolumeSnapshot, Delete) => snapshot_delete(req, ctx),
        (VolumeSnapshotContent, Delete) => content_delete(req, ctx),
        (Backup, Update)
            if req.sub_resource.is_none() || req.sub_resource.as_deref() == Some("status") =>
        {
            words_update(req, ctx)
                .or_else(|| ttl_shortened(req, ctx))
                .or_else(|| expiration_moved_earlier(req, ctx))
                .or_else(|| location_moved(req, ctx))
                .or_else(|| deletion_started(req, ctx))
                .or_else(|| mode_lowered(req, ctx))
                .or_else(|| finalizer_removed(req, ctx))
                .or_else(|| original_expiration_written(req, ctx))
        }
        (VolumeSnapshot | VolumeSnapshotContent, Update) => {
            words_update(req, ctx).or_else(|| snapshot_relabelled(req, ctx))
        }
        (BackupStorageLocation, Update) => {
            words_update(req, ctx).or_else(|| location_repointed(req, ctx))
        }
        (CustomResourceDefinition, Update) => words_update(req, ctx),
        (Backup, Create) => stamps_on_create(req, ctx)
            .or_else(|| created_expired(req, ctx))
            .or_else(|| original_expiration_written(req, ctx)),
        (_, Create) => stamps_on_create(req, ctx),
        _ => None,
    }
}

fn facts_of(obj: &Object, ctx: &Context<'_>) -> SanctionFacts {
    SanctionFacts::of(&obj.metadata, ctx.key)
}

/// Sanctioned deletion of the object in the request itself (Backup, BSL, CRD…).
pub(super) fn self_sanction(req: &Request, ctx: &Context<'_>) -> Result<(), Unsanctioned> {
    let obj = req.current().ok_or(Unsanctioned::NoRequest)?;
    sanction(&facts_of(obj, ctx), ctx.policy, ctx.now)
}

/// DELETE backups.velero.io by a user, the namespace controller or the garbage collector; by
/// Velero's own account (its sync removing a Backup missing from the location its label names)
/// only of a held backup. A held Backup's cluster copy is where its hold lives: Velero's sync
/// would re-create it from storage without the hold, and its TTL collector could then delete
/// the data, so that DELETE is a storage path (class storage, denied in neuter too). The same
/// holds for an expiration moved later on the cluster (`extension::extension`), which
/// exemption covers, as it covers every storage rule but a hold.
pub fn backup_delete(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let why = self_sanction(req, ctx).err()?;
    let held = why == Unsanctioned::Held;
    if !held && Actor::of(&req.user.username, ctx.policy) == Actor::Velero {
        return None;
    }
    // Without the object (the API server always sends it) `why` says so, and it is refused.
    let obj = req.current();
    let extension = obj
        .and_then(extension)
        .filter(|(until, _)| until.as_second() > ctx.now);
    let extended = extension.is_some();
    let deleting_finalizer = obj.and_then(|o| {
        o.metadata
            .finalizers
            .iter()
            .find(|f| STORAGE_DELETING_FINALIZERS.contains(&f.as_str()))
    });
    let neuter = ctx.mode == Mode::Neuter;
    Some(ctx.holding(held).violation(
        Reason::BackupDelete,
        if deleting_finalizer.is_some() || held || extended {
            Class::Storage
        } else {
            Class::Shadow
        },
        || match deleting_finalizer {
            // In neuter mode the Backup alone could go; the finalizer is what stops it.
            Some(f) if neuter && !held && !extended => {
                messages::storage_finalizer(req, f, ctx.policy)
            }
            _ if held && neuter => format!(
                "{} Neuter mode lets a Backup go from the cluster, but not a held one: {}",
                messages::protected_object(req, ctx.policy, why),
                messages::HELD_SHADOW
            ),
            _ if extended && neuter => format!(
                "{} Neuter mode lets a Backup go from the cluster, but not this one: {}",
                messages::protected_object(req, ctx.policy, why),
                extension
                    .map(|(until, uploaded)| messages::extended_shadow(until, uploaded))
                    .unwrap_or_default()
            ),
            _ => messages::protected_object(req, ctx.policy, why),
        },
        || match deleting_finalizer {
            Some(f) => messages::short(
                req,
                &format!("its finalizer {f} would delete the backup's storage data"),
            ),
            None if extended && !held => {
                messages::short(req, "its expiration was moved later on the cluster only")
            }
            None => messages::short(req, why.explain()),
        },
    ))
}

/// DELETE of a Namespace that holds protected backups.
pub fn namespace_delete(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let count = ctx
        .index
        .protected_in(&req.name, ctx.policy, ctx.now, 0)
        .count;
    if count == 0 {
        return None;
    }
    // Neuter mode and exempt users let the backups' cluster copies go, but not held ones (see
    // `backup_delete`): a namespace holding any is refused at its own DELETE rather than left
    // terminating. (Enforce refuses it anyway, with the list of every protected backup.)
    if ctx.mode == Mode::Neuter || (ctx.exempt && ctx.mode == Mode::Enforce) {
        let held = ctx.index.held_in(&req.name, 5);
        if held.count > 0 {
            return Some(ctx.holding(true).violation(
                Reason::NamespaceDelete,
                Class::Storage,
                || messages::namespace_held(&req.name, &held),
                || messages::short(req, &format!("it holds {} held backups", held.count)),
            ));
        }
    }
    // Nor, in neuter mode, backups whose expiration was moved later on the cluster. Not for an
    // exempt user either: the namespace controller's DELETEs of them that would follow are
    // refused, and the namespace would stay terminating.
    if ctx.mode == Mode::Neuter {
        let extended = ctx.index.extended_in(&req.name, ctx.now, 5);
        if extended.count > 0 {
            return Some(ctx.holding(true).violation(
                Reason::NamespaceDelete,
                Class::Storage,
                || messages::namespace_extended(&req.name, &extended),
                || {
                    let what = format!(
                        "it holds {} backups with a later expiration",
                        extended.count
                    );
                    messages::short(req, &what)
                },
            ));
        }
    }
    // The names (a pass over the namespace's backups) only for a denial's message.
    Some(ctx.violation(
        Reason::NamespaceDelete,
        Class::Shadow,
        || {
            let found = ctx.index.protected_in(&req.name, ctx.policy, ctx.now, 5);
            messages::namespace(&req.name, &found, ctx.policy)
        },
        || messages::short(req, &format!("it holds {count} protected backups")),
    ))
}

/// DELETE of a guarded CRD while objects exist (CRD deletion skips per-object admission).
pub fn crd_delete(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let holds = guarded_crd(&req.name)?;
    let count = ctx.index.count(holds);
    if count == 0 {
        return None;
    }
    // Deleting the Backup CRD deletes every Backup without a call per object (`velero
    // uninstall`): not while one keeps its cluster copy, as `backup_delete` keeps it.
    if holds == Resource::Backup {
        let held = ctx.index.held_anywhere(5);
        if held.count > 0 {
            return Some(ctx.holding(true).violation(
                Reason::CrdDelete,
                Class::Storage,
                || messages::crd_held(req, &held),
                || {
                    messages::short(
                        req,
                        &format!("{} held backups would go with it", held.count),
                    )
                },
            ));
        }
    }
    let held = self_sanction(req, ctx).err()? == Unsanctioned::Held;
    if holds == Resource::Backup && ctx.mode == Mode::Neuter {
        let extended = ctx.index.extended_anywhere(ctx.now, 5);
        if extended.count > 0 {
            return Some(ctx.holding(held).violation(
                Reason::CrdDelete,
                Class::Storage,
                || messages::crd_extended(req, &extended),
                || {
                    let what = format!(
                        "{} backups with a later expiration would go with it",
                        extended.count
                    );
                    messages::short(req, &what)
                },
            ));
        }
    }
    let storage =
        holds == Resource::VolumeSnapshotContent && ctx.index.deleting_velero_contents() > 0;
    Some(ctx.holding(held).violation(
        Reason::CrdDelete,
        if storage {
            Class::Storage
        } else {
            Class::Shadow
        },
        || messages::crd(req, holds, count, ctx.policy),
        || messages::short(req, &format!("{count} {} would go with it", holds.as_str())),
    ))
}

/// CREATE of a DeleteBackupRequest: only for sanctioned backups, or Velero's TTL collector on an
/// expired, un-held backup when `expiry.allow`.
pub fn delete_request_create(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let backup = delete_request_target(req.object.as_ref()?);
    let ns = req.namespace.as_str();
    let entry = ctx.index.backup(ns, backup);
    let (why, cause) = match entry {
        None => (
            "backup-guard does not know this backup, so cannot tell that it may go",
            None,
        ),
        Some(entry) => {
            let facts = entry.facts.as_deref().cloned().unwrap_or_default();
            let sanctioned = sanction(&facts, ctx.policy, ctx.now);
            let expired = entry.expiration.is_some_and(|e| e <= ctx.now);
            let velero = Actor::of(&req.user.username, ctx.policy) == Actor::Velero;
            match sanctioned {
                Ok(()) => return None,
                Err(_) if ttl_collects(entry, req, ctx) => return None,
                Err(Unsanctioned::Held) => (Unsanctioned::Held.explain(), Some(Unsanctioned::Held)),
                Err(_) if velero && !expired => ("it has not expired", None),
                Err(_) if velero && !ctx.policy.expiry.allow => {
                    ("policy expiry.allow is false", None)
                }
                Err(why) => (why.explain(), Some(why)),
            }
        }
    };
    Some(ctx.holding(cause == Some(Unsanctioned::Held)).violation(
        Reason::DeleteRequestCreate,
        Class::Storage,
        || messages::delete_request(ns, backup, why, cause, ctx.policy),
        || {
            messages::clip(format!(
                "backup-guard: deleting backup {ns}/{backup}: {why}"
            ))
        },
    ))
}

/// Velero's TTL collector at work on a backup: Velero's own service account, the backup expired
/// and not on hold, and `expiry.allow`. It counts as sanctioned for the DeleteBackupRequest the
/// collector files and for the CSI snapshots Velero's deletion then removes (it re-creates each
/// content with `deletionPolicy: Delete` and deletes it, so the driver removes the snapshot).
pub fn ttl_collects(entry: &BackupEntry, req: &Request, ctx: &Context<'_>) -> bool {
    ctx.policy.expiry.allow
        && !entry.held()
        && entry.expiration.is_some_and(|e| e <= ctx.now)
        && Actor::of(&req.user.username, ctx.policy) == Actor::Velero
}

/// UPDATE of a DeleteBackupRequest changing the backup it names. A request is judged when it is
/// created; changed before Velero processes it, it would delete a backup nobody checked. Velero
/// itself writes the request's status and labels (no status subresource), never its target.
pub fn delete_request_retargeted(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let (old, new) = (req.old_object.as_ref()?, req.object.as_ref()?);
    let (from, to) = (delete_request_target(old), delete_request_target(new));
    if from == to || Actor::of(&req.user.username, ctx.policy) == Actor::Velero {
        return None;
    }
    let held = ctx
        .index
        .backup(&req.namespace, to)
        .is_some_and(|b| b.held());
    Some(ctx.holding(held).violation(
        Reason::DeleteRequestRetargeted,
        Class::Storage,
        || messages::delete_request_retargeted(req, from, to, held, ctx.policy),
        || messages::short(req, &format!("spec.backupName changed from {from} to {to}")),
    ))
}
