//! The words people read: denial messages that say what is protected, why, and what to run.

use std::fmt::{self, Write as _};

use super::config::Policy;
use super::request::{Request, Resource};
use super::stamps::{Unsanctioned, DELETE_APPROVAL, DELETE_REQUEST, HOLD, VELERO_BACKUP_NAME};
use crate::index::Protected;

/// Kubernetes shows warnings up to 120 characters well.
pub fn clip(mut text: String) -> String {
    // A text of at most 119 bytes has at most 119 characters: most warnings need no count.
    if text.len() > 119 && text.chars().count() > 119 {
        text = text.chars().take(118).collect::<String>() + "…";
    }
    text
}

/// `backup velero/x` (`namespace velero` for a cluster-scoped object): written into the message
/// that holds it rather than allocated on its own, as are the other pieces below.
struct Target<'a>(&'a Request);

impl fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let req = self.0;
        f.write_str(req.resource.kubectl_name())?;
        f.write_char(' ')?;
        if !req.namespace.is_empty() {
            f.write_str(&req.namespace)?;
            f.write_char('/')?;
        }
        f.write_str(&req.name)
    }
}

fn target(req: &Request) -> Target<'_> {
    Target(req)
}

/// The short warning: `backup-guard: backup velero/x: <why>`.
pub fn short(req: &Request, why: &str) -> String {
    clip(format!("backup-guard: {}: {why}", target(req)))
}

/// ` -n <namespace>`, or nothing for a cluster-scoped object.
struct NsFlag<'a>(&'a str);

impl fmt::Display for NsFlag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        f.write_str(" -n ")?;
        f.write_str(self.0)
    }
}

/// The commands that sanction deleting one object.
pub fn how_to_sanction<'a>(
    kind: Resource,
    ns: &'a str,
    name: &'a str,
    policy: &Policy,
) -> impl fmt::Display + 'a {
    how_to(kind, ns, name, policy, false)
}

fn how_to<'a>(
    kind: Resource,
    ns: &'a str,
    name: &'a str,
    policy: &Policy,
    renew: bool,
) -> HowToSanction<'a> {
    HowToSanction {
        kind,
        ns: NsFlag(ns),
        name,
        approval: policy.approval.required,
        renew,
    }
}

/// The commands that sanction deleting an object whose request no longer counts (stale, or not
/// stamped by the guard). The mutating webhook stamps a request only when its value changes, so
/// setting the same reason again does nothing: it must be a different reason, or the request
/// removed and then set again.
pub fn how_to_renew<'a>(
    kind: Resource,
    ns: &'a str,
    name: &'a str,
    policy: &Policy,
) -> impl fmt::Display + 'a {
    how_to(kind, ns, name, policy, true)
}

struct HowToSanction<'a> {
    kind: Resource,
    ns: NsFlag<'a>,
    name: &'a str,
    approval: bool,
    /// A request is there but no longer counts: say how to have it stamped anew.
    renew: bool,
}

impl fmt::Display for HowToSanction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind_name, name, n) = (self.kind.kubectl_name(), self.name, &self.ns);
        let reason = if self.renew {
            write!(
                f,
                "To delete it on purpose, renew the request; backup-guard stamps a request only when its value changes, \
                 so set a different reason: `kubectl annotate --overwrite {kind_name} {name}{n} {DELETE_REQUEST}='<a different reason>'`"
            )?;
            "<a different reason>"
        } else {
            write!(
                f,
                "To delete it on purpose, request it: `kubectl annotate {kind_name} {name}{n} {DELETE_REQUEST}='<reason>'`"
            )?;
            "<reason>"
        };
        if self.kind == Resource::Backup {
            write!(
                f,
                " (or `kubectl backup-guard request-delete{n} {name} --reason '{reason}'`)"
            )?;
        }
        if self.renew {
            write!(
                f,
                ", or remove it (`kubectl annotate {kind_name} {name}{n} {DELETE_REQUEST}-`) and set it again"
            )?;
        }
        if self.approval {
            write!(
                f,
                "; then a second person among the approvers runs `kubectl annotate {kind_name} {name}{n} {DELETE_APPROVAL}='<note>'`"
            )?;
        }
        f.write_str(if self.kind == Resource::Backup {
            ". backup-guard's controller then deletes its files and snapshots and the Backup itself."
        } else {
            ", then delete it again."
        })
    }
}

/// A protected object (Backup) that someone tried to delete.
pub fn protected_object(req: &Request, policy: &Policy, why: Unsanctioned) -> String {
    let mut text = format!(
        "backup-guard: {} is protected: {}; deleting it would remove the cluster's record of a backup. ",
        target(req),
        why.explain()
    );
    // Writing into a String cannot fail.
    let _ = if why == Unsanctioned::Held {
        write!(
            text,
            "A hold manager must first release the hold: `kubectl label {} {}{} {HOLD}-`.",
            req.resource.kubectl_name(),
            req.name,
            NsFlag(&req.namespace)
        )
    } else if matches!(why, Unsanctioned::Stale | Unsanctioned::Unverified) {
        write!(
            text,
            "{}",
            how_to_renew(req.resource, &req.namespace, &req.name, policy)
        )
    } else {
        write!(
            text,
            "{}",
            how_to_sanction(req.resource, &req.namespace, &req.name, policy)
        )
    };
    text
}

/// A Backup whose finalizer would delete its storage data, deleted in neuter mode.
pub fn storage_finalizer(req: &Request, finalizer: &str, policy: &Policy) -> String {
    format!(
        "backup-guard: {} carries the finalizer {finalizer}, whose controller would delete the backup's files and snapshots \
         in storage when the Backup goes; so it may not be deleted, even in neuter mode, which lets only the cluster's copy go. \
         In neuter mode any update of the Backup strips that finalizer (e.g. `kubectl patch {} {}{} --type merge -p '{{}}'`); \
         then delete it again, and Velero's sync re-creates it from storage. {}",
        target(req),
        req.resource.kubectl_name(),
        req.name,
        NsFlag(&req.namespace),
        how_to_sanction(req.resource, &req.namespace, &req.name, policy)
    )
}

/// A namespace holding protected backups.
pub fn namespace(name: &str, found: &Protected, policy: &Policy) -> String {
    format!(
        "backup-guard: namespace {name} holds {} protected Velero backup(s) ({}); deleting the namespace would delete them. \
         Request the deletion of each backup first (`kubectl annotate backup <name> -n {name} {DELETE_REQUEST}='<reason>'`{}), \
         or set mode neuter for this namespace in the policy if only the cluster objects should go.",
        found.count,
        names_and_more(found),
        if policy.approval.required { ", approved by a second person" } else { "" },
    )
}

/// The names found, and how many more there are.
fn names_and_more(found: &Protected) -> String {
    let mut text = found.names.join(", ");
    if found.count > found.names.len() {
        let _ = write!(text, " and {} more", found.count - found.names.len());
    }
    text
}

/// A guarded CRD that still holds objects.
pub fn crd(req: &Request, holds: Resource, count: usize, policy: &Policy) -> String {
    format!(
        "backup-guard: CustomResourceDefinition {} still holds {count} {} object(s); deleting it deletes them all \
         without admission checks (this is what `velero uninstall` does). Delete or move those objects first. {}",
        req.name,
        holds.as_str(),
        how_to_sanction(Resource::CustomResourceDefinition, "", &req.name, policy)
    )
}

/// A DeleteBackupRequest for a backup that may not go; `cause` is why its own request (if any)
/// does not sanction it.
pub fn delete_request(
    ns: &str,
    backup: &str,
    why: &str,
    cause: Option<Unsanctioned>,
    policy: &Policy,
) -> String {
    let mut text = format!(
        "backup-guard: refusing a DeleteBackupRequest for backup {ns}/{backup}: {why}. \
         A DeleteBackupRequest makes Velero delete the backup's files and snapshots. "
    );
    // Writing into a String cannot fail.
    let _ = match cause {
        Some(Unsanctioned::Held) => write!(
            text,
            "A hold manager must first release the hold (`kubectl label backup {backup}{} {HOLD}-`). {}",
            NsFlag(ns),
            how_to_sanction(Resource::Backup, ns, backup, policy)
        ),
        Some(Unsanctioned::Stale | Unsanctioned::Unverified) => write!(
            text,
            "{}",
            how_to_renew(Resource::Backup, ns, backup, policy)
        ),
        _ => write!(
            text,
            "{}",
            how_to_sanction(Resource::Backup, ns, backup, policy)
        ),
    };
    text
}

/// A DeleteBackupRequest pointed at another backup after it was checked.
pub fn delete_request_retargeted(
    req: &Request,
    from: &str,
    to: &str,
    held: bool,
    policy: &Policy,
) -> String {
    let ns = req.namespace.as_str();
    let mut text = format!(
        "backup-guard: {} was checked for backup {from} when it was created; this update would point it \
         from backup {from} to {to}, and Velero would delete {to}'s files and snapshots unchecked. \
         A DeleteBackupRequest's spec.backupName may not change (Velero's own status and label writes may). \
         Delete this request and create one for {to} instead, which is allowed once {to} is sanctioned. ",
        target(req)
    );
    // Writing into a String cannot fail.
    let _ = if held {
        write!(
            text,
            "{to} is on legal hold: a hold manager must first release it (`kubectl label backup {to}{} {HOLD}-`).",
            NsFlag(ns)
        )
    } else {
        write!(
            text,
            "{}",
            how_to_sanction(Resource::Backup, ns, to, policy)
        )
    };
    text
}

/// A change that would make Velero's TTL collector delete a backup sooner; `allowed` says what
/// change would pass.
pub fn tampering(req: &Request, what: &str, allowed: &str, policy: &Policy) -> String {
    format!(
        "backup-guard: this update of {} {what}, which would let Velero's TTL collector delete the backup sooner. {allowed} {}",
        target(req),
        how_to_sanction(req.resource, &req.namespace, &req.name, policy)
    )
}

/// A `spec.ttl` or `status.expiration` removed: the collector could be steered later.
pub fn removed(req: &Request, field: &str, was: &str, policy: &Policy) -> String {
    format!(
        "backup-guard: this update removes {field} (it was {was}) from {}. A removed value could later be set to any time, \
         which would let Velero's TTL collector delete the backup sooner. Keep {field}, or change it to a later expiry. {}",
        target(req),
        how_to_sanction(req.resource, &req.namespace, &req.name, policy)
    )
}

/// A snapshot whose deletion would delete the storage snapshot of a backup.
pub fn snapshot(req: &Request, backup: &str, content: &str, policy: &Policy) -> String {
    format!(
        "backup-guard: {} belongs to Velero backup {backup} and its content {content} has deletionPolicy Delete, \
         so deleting it would delete the storage snapshot. Set the content's deletionPolicy to Retain first \
         (`kubectl patch volumesnapshotcontent {content} --type merge -p '{{\"spec\":{{\"deletionPolicy\":\"Retain\"}}}}'`), \
         or request deletion of the backup: {}",
        target(req),
        how_to_sanction(Resource::Backup, &policy.velero.namespace, backup, policy)
    )
}

/// The Velero label removed from, or changed on, a snapshot of a protected backup.
pub fn snapshot_label(req: &Request, backup: &str, policy: &Policy) -> String {
    format!(
        "backup-guard: {} belongs to Velero backup {backup}, which is protected; removing or changing its label \
         {VELERO_BACKUP_NAME} would take it out of backup-guard's sight, and its storage snapshot could then be deleted. \
         Keep the label as it is (other labels may change). To delete the backup and its snapshots on purpose: {}",
        target(req),
        how_to_sanction(Resource::Backup, &policy.velero.namespace, backup, policy)
    )
}

/// A hold released by someone who is not a hold manager.
pub fn hold_release(req: &Request, policy: &Policy) -> String {
    let m = &policy.hold.managers;
    format!(
        "backup-guard: {} is on legal hold and {} is not a hold manager (policy hold.managers: users [{}], groups [{}]). \
         Ask a hold manager to remove the label {HOLD}.",
        target(req),
        req.user.username,
        m.users.join(", "),
        m.groups.join(", ")
    )
}

/// Stamps written by someone other than the guard.
pub fn stamps(req: &Request) -> String {
    format!(
        "backup-guard: the annotations backup-guard.io/delete-requested-*, delete-approved-* and delete-signature on {} \
         are written only by backup-guard's mutating webhook. Set only {DELETE_REQUEST} (or {DELETE_APPROVAL}) \
         and leave the stamps alone.",
        target(req)
    )
}

/// An approval that cannot count.
pub fn approval(req: &Request, why: &str) -> String {
    format!(
        "backup-guard: approval of {} refused: {why}. Approval must come from someone in the policy's \
         approval.approvers other than the requester.",
        target(req)
    )
}

#[path = "messages_holds.rs"]
mod holds;
pub use holds::*;

#[path = "messages_locations.rs"]
mod locations;
pub use locations::*;
