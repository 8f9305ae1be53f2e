//! The messages of the rules that keep a hold, an expiry and a mode from being lost on the way
//! to Velero: held Backups, Velero starting to delete, a milder mode, a Backup created already
//! expired, an expiration moved later.

use super::super::config::{Mode, Policy};
use super::super::extension::Uploaded;
use super::super::request::{Request, Resource};
use super::super::stamps::{CLEANUP_FINALIZER, HOLD, ORIGINAL_EXPIRATION};
use super::{how_to_sanction, names_and_more, target, NsFlag};
use crate::index::Protected;
use jiff::Timestamp;

/// A namespace holding backups on legal hold, deleted in neuter mode.
pub fn namespace_held(name: &str, held: &Protected) -> String {
    format!(
        "backup-guard: namespace {name} holds {} Velero backup(s) on legal hold ({}). A namespace's backups \
         may go from the cluster (in neuter mode, or for an exempt user), but not held ones: {HELD_SHADOW} A hold \
         manager must first release each hold (`kubectl label backup <name> -n {name} {HOLD}-`).",
        held.count,
        names_and_more(held),
    )
}

/// Why a held Backup's cluster copy stays, even in neuter mode.
pub const HELD_SHADOW: &str =
    "the hold lives on the Backup, and Velero's sync would re-create it from storage \
     without the hold, for its TTL collector to delete once expired.";

/// Velero about to delete a held backup whose DeleteBackupRequest was let through earlier.
pub fn deletion_started(req: &Request, policy: &Policy) -> String {
    let (ns, name) = (req.namespace.as_str(), req.name.as_str());
    format!(
        "backup-guard: refusing to let Velero start deleting {} (status.phase Deleting): it is on legal hold. \
         Its DeleteBackupRequest was let through before the hold; Velero marks it failed with this message. \
         To delete the backup, a hold manager must first release the hold (`kubectl label backup {name}{} {HOLD}-`), \
         then file a new request. {}",
        target(req),
        NsFlag(ns),
        how_to_sanction(Resource::Backup, ns, name, policy)
    )
}

/// A Backup created with an expiration already past.
pub fn created_expired(req: &Request, at: jiff::Timestamp) -> String {
    format!(
        "backup-guard: this creates {} with status.expiration {at}, already past. Velero's TTL collector would \
         then delete the files and snapshots of the backup of that name in storage at its next pass. Create it \
         without a status (Velero's sync brings back a backup that is in storage, with its own times), or with \
         an expiration still ahead.",
        target(req)
    )
}

/// The controller's finalizer removed from a held Backup.
pub fn finalizer_removed(req: &Request) -> String {
    format!(
        "backup-guard: this update removes the finalizer {CLEANUP_FINALIZER} from {}, which is on legal hold. \
         The finalizer keeps a held Backup in the cluster while its deletion waits: without it the Backup would \
         go, and {HELD_SHADOW} A hold manager must first release the hold (`kubectl label backup {}{} {HOLD}-`); \
         the controller then finishes or calls off the cleanup and removes the finalizer itself.",
        target(req),
        req.name,
        NsFlag(&req.namespace)
    )
}

/// A Backup relabelled into a milder mode of the policy's rules.
pub fn mode_lowered(req: &Request, from: Mode, to: Mode) -> String {
    format!(
        "backup-guard: this update changes the labels of {} so that the policy's rules would judge it in mode \
         {to} instead of {from}. Its DeleteBackupRequests and snapshots are judged in the mode of its labels, so \
         that would let through a deletion mode {from} refuses. To change how a backup is guarded, change the \
         policy's rules (the policy ConfigMap); labels that keep its mode, or make it stricter, may change.",
        target(req)
    )
}

/// Why the cluster copy of a Backup whose expiration was moved later stays in neuter mode.
pub fn extended_shadow(until: Timestamp, uploaded: Uploaded<'_>) -> String {
    let uploaded = match uploaded {
        Uploaded::Kept(at) => format!("({at})"),
        Uploaded::AtMost(at) => format!("(no later than {at}: its start plus spec.ttl)"),
    };
    format!(
        "its status.expiration ({until}) was moved later on the cluster only. Velero's sync would re-create it \
         from storage with the expiration it was uploaded with {uploaded}, for its TTL collector to delete its \
         data once that is past. Sanction its deletion with its data, or let it expire (an exempt user may \
         delete it, giving up the later expiration).",
    )
}

/// Why the cluster copies of Backups whose expiration was moved later stay in neuter mode.
const EXTENDED_SHADOW: &str =
    "Velero's sync would re-create them from storage with the expiration they were \
     uploaded with, for its TTL collector to delete their data once that is past.";

/// A namespace holding backups whose expiration was moved later, deleted in neuter mode.
pub fn namespace_extended(name: &str, extended: &Protected) -> String {
    format!(
        "backup-guard: namespace {name} holds {} Velero backup(s) whose status.expiration was moved later on the \
         cluster ({}). Neuter mode lets a namespace's backups go from the cluster, but not these: \
         {EXTENDED_SHADOW} Delete them first with their data (sanctioned), or let them expire (an exempt user may \
         delete them, giving up the later expirations).",
        extended.count,
        names_and_more(extended),
    )
}

/// `backup-guard.io/original-expiration` not as the mutating webhook makes it.
pub fn original_expiration_written(req: &Request, wanted: Option<&str>) -> String {
    format!(
        "backup-guard: the annotation {ORIGINAL_EXPIRATION} on {} is written only by backup-guard's mutating \
         webhook: it keeps the expiration Velero uploaded once status.expiration is moved later ({}). Leave it \
         alone. If you did not touch it, the mutating webhook did not run for this request: check that \
         backup-guard's MutatingWebhookConfiguration is registered and its pods ready.",
        target(req),
        match wanted {
            Some(v) => format!("here: {v}"),
            None => "here: none".into(),
        }
    )
}

/// The Backup CRD deleted while backups on legal hold exist.
pub fn crd_held(req: &Request, held: &Protected) -> String {
    format!(
        "backup-guard: CustomResourceDefinition {} still holds {} Backup(s) on legal hold ({}). Deleting it deletes \
         every Backup without admission checks (this is what `velero uninstall` does), but a held Backup must \
         stay: {HELD_SHADOW} A hold \
         manager must first release each hold (`kubectl label backup <name> -n <namespace> {HOLD}-`).",
        req.name,
        held.count,
        names_and_more(held),
    )
}

/// The Backup CRD deleted in neuter mode while backups whose expiration was moved later exist.
pub fn crd_extended(req: &Request, extended: &Protected) -> String {
    format!(
        "backup-guard: CustomResourceDefinition {} still holds {} Backup(s) whose status.expiration was moved later \
         on the cluster ({}). Deleting it deletes every Backup without admission checks (this is what `velero \
         uninstall` does); neuter mode lets them go from the cluster, but not these: {EXTENDED_SHADOW} Delete \
         them first with their data (sanctioned), or let them expire (an exempt user may delete the CRD, giving \
         up the later expirations).",
        req.name,
        extended.count,
        names_and_more(extended),
    )
}
