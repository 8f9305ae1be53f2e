//! Velero's deletion controller taking a DeleteBackupRequest. A request is judged when it is
//! created, but Velero works through requests one at a time (the TTL collector files one per
//! expired backup each hour), so one may wait in its queue while a hold is placed or a sanction
//! withdrawn. Before it deletes anything, Velero sets the Backup's `status.phase` to `Deleting`
//! (and stops, marking the request failed, when that update is refused): the backup is judged
//! again there.

use jiff::Timestamp;

use super::decision::{Actor, Class, Judging, Reason, Violation};
use super::messages;
use super::request::{Object, Request};
use super::rules::self_sanction;
use super::stamps::{is_held, Unsanctioned, CLEANUP_FINALIZER};

/// The Backup phase Velero's deletion controller sets before it deletes anything.
pub const DELETING: &str = "Deleting";

/// UPDATE of a Backup into `status.phase: Deleting`: allowed for a sanctioned backup, or for
/// Velero's TTL collector at work on an expired, un-held backup when `expiry.allow` (as for the
/// request itself, judged now on the stored Backup).
pub fn deletion_started(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let (old, new) = (req.old_object.as_deref()?, req.object.as_deref()?);
    let deleting = |o: &Object| o.status.phase.as_deref() == Some(DELETING);
    if !deleting(new) || deleting(old) {
        return None;
    }
    let why = self_sanction(req, ctx).err()?;
    let held = why == Unsanctioned::Held;
    let velero = Actor::of(&req.user.username, ctx.policy) == Actor::Velero;
    let expired = old
        .status
        .expiration
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .is_some_and(|e| e.as_second() <= ctx.now);
    let (text, cause) = match () {
        () if held => (why.explain(), Some(why)),
        () if velero && expired && ctx.policy.expiry.allow => return None,
        () if velero && !expired => (
            "it has not expired and no one has sanctioned its deletion",
            None,
        ),
        () if velero => ("policy expiry.allow is false", None),
        () => (why.explain(), Some(why)),
    };
    Some(ctx.holding(held).violation(
        Reason::DeletionStarted,
        Class::Storage,
        || messages::deletion_started(req, text, cause, ctx.policy),
        || messages::short(req, &format!("Velero starts deleting it, but {text}")),
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
