//! Velero's deletion controller taking a DeleteBackupRequest. A request is judged when it is
//! created, but Velero works through requests one at a time (the TTL collector files one per
//! expired backup each hour), so one may wait in its queue while a hold is placed. Before it
//! deletes anything, Velero sets the Backup's `status.phase` to `Deleting` (and stops, marking
//! the request failed, when that update is refused): the hold is checked again there.

use super::decision::{Actor, Class, Judging, Reason, Violation};
use super::messages;
use super::request::{Object, Request};
use super::stamps::{is_held, CLEANUP_FINALIZER};

/// The Backup phase Velero's deletion controller sets before it deletes anything.
pub const DELETING: &str = "Deleting";

/// Velero writing `status.phase: Deleting` on a held Backup: the step before its deletion
/// controller deletes anything. Whatever let the request through (a sanction, the TTL
/// collector, an exempt user), a hold placed while it waited in Velero's queue stops it here.
/// Velero's write is judged even where the phase already is `Deleting`: a deletion that failed
/// part-way leaves it so, and Velero's next request writes it again (an empty merge patch that
/// still reaches the webhook). Anyone else's update of such a Backup (a hold manager holding
/// it) is not a deletion.
pub fn deletion_started(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let (old, new) = (req.old_object.as_deref()?, req.object.as_deref()?);
    let deleting = |o: &Object| o.status.phase.as_deref() == Some(DELETING);
    let velero = Actor::of(&req.user.username, ctx.policy) == Actor::Velero;
    if !deleting(new) || (deleting(old) && !velero) || !is_held(&old.metadata) {
        return None;
    }
    Some(ctx.holding(true).violation(
        Reason::DeletionStarted,
        Class::Storage,
        || messages::deletion_started(req, ctx.policy),
        || messages::short(req, "Velero starts deleting it, but it is on legal hold"),
    ))
}

/// UPDATE removing the controller's finalizer (`backup-guard.io/cleanup`) from a held Backup. The
/// controller keeps it while a backup is held, so that a cleanup stopped by the hold leaves the
/// Backup in place even when its deletion had begun; stripped by hand (as one unsticks a
/// terminating namespace), the Backup would go, and Velero's sync bring it back without its hold.
/// Refused for everyone, class storage: a hold manager releases the hold first.
pub fn finalizer_removed(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let (old, new) = (req.old_object.as_deref()?, req.object.as_deref()?);
    let has = |o: &Object| o.metadata.finalizers.iter().any(|f| f == CLEANUP_FINALIZER);
    if !is_held(&old.metadata) || !has(old) || has(new) {
        return None;
    }
    Some(ctx.holding(true).violation(
        Reason::FinalizerRemoved,
        Class::Storage,
        || messages::finalizer_removed(req),
        || messages::short(req, "the finalizer of a held backup removed"),
    ))
}
