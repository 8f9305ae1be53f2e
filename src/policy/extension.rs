//! An expiration moved later on the cluster. Velero keeps a backup longer only while the
//! Backup's `status.expiration` says so, and its sync re-creates a deleted Backup from
//! `velero-backup.json` with the expiration it was uploaded with, for its TTL collector to delete
//! the data once that is past. So the mutating webhook keeps that expiration in
//! `backup-guard.io/original-expiration` once anyone else moves it later, and neuter mode keeps
//! such a Backup's cluster copy (`rules::backup_delete`, `rules::namespace_delete`).

use jiff::{SignedDuration, Timestamp};

use super::decision::{Actor, Class, Context, Judging, Reason, Violation};
use super::expiry::{expiration, ttl};
use super::messages;
use super::request::{Object, Request};
use super::stamps::ORIGINAL_EXPIRATION;

/// What a Backup's cluster copy tells of the expiration it was uploaded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uploaded<'a> {
    /// Kept in `backup-guard.io/original-expiration` by the mutating webhook.
    Kept(&'a str),
    /// Moved later before the guard kept it: Velero's was no later than this.
    AtMost(Timestamp),
}

/// A Backup whose `status.expiration` is later than the one it was uploaded with: that later
/// expiration, and what is known of the uploaded one. Known from the kept value, else (moved
/// before the guard kept it) from the latest expiration Velero can have set.
pub fn extension(o: &Object) -> Option<(Timestamp, Uploaded<'_>)> {
    let current = expiration(o)?;
    let latest = latest_velero_expiration(o);
    match (kept(o), latest) {
        // A kept value that was itself moved later (before the guard kept it) is not the
        // uploaded one: the latest Velero can have set says more.
        (Some((value, at)), latest) if current > at && latest.is_none_or(|l| at <= l) => {
            Some((current, Uploaded::Kept(value)))
        }
        (_, Some(latest)) if current > latest => Some((current, Uploaded::AtMost(latest))),
        _ => None,
    }
}

/// The value kept in `backup-guard.io/original-expiration`, when it is a time.
fn kept(o: &Object) -> Option<(&String, Timestamp)> {
    let value = o.metadata.annotations.get(ORIGINAL_EXPIRATION)?;
    Some((value, value.parse().ok()?))
}

/// The later expiration of an extended Backup ([`extension`]), in unix seconds.
pub fn extended_expiration(o: &Object) -> Option<i64> {
    extension(o).map(|(until, _)| until.as_second())
}

/// The latest `status.expiration` Velero can have given this Backup: it takes the time from its
/// clock on its first pass, before the `status.startTimestamp` it records from the same clock, and
/// adds `spec.ttl` (one second more: both are written to the second). A `spec.ttl` lengthened
/// since hides an expiration moved later; one shortened makes the guard stricter. `None` without
/// a start or a ttl (Velero sets a zero ttl to its default).
fn latest_velero_expiration(o: &Object) -> Option<Timestamp> {
    let start = o
        .status
        .start_timestamp
        .as_deref()?
        .parse::<Timestamp>()
        .ok()?;
    let ttl = ttl(o).filter(|&t| t > 0)?.checked_add(1)?;
    start.checked_add(SignedDuration::from_secs(ttl)).ok()
}

/// The value `backup-guard.io/original-expiration` has after this CREATE or UPDATE of a Backup:
///
/// - the one the stored Backup keeps (on CREATE: the one written), but never later than that
///   object's own expiration, so that a value written by hand can only make the guard stricter;
/// - else, where anyone but Velero moves `status.expiration` later on a Backup Velero is done
///   with ([`uploaded_for_good`]), the stored expiration;
/// - else none.
pub fn original_expiration(req: &Request, ctx: &Context<'_>) -> Option<String> {
    let new = req.object.as_deref()?;
    let basis = req.old_object.as_deref().unwrap_or(new);
    if let (Some((value, at)), Some(bound)) = (kept(basis), expiration(basis)) {
        return Some(match at <= bound {
            true => value.clone(),
            false => basis.status.expiration.clone()?,
        });
    }
    let stored = req.old_object.as_deref()?;
    let by_velero = Actor::of(&req.user.username, ctx.policy) == Actor::Velero;
    let later = expiration(new)? > expiration(stored)?;
    (later && !by_velero && uploaded_for_good(stored)).then(|| stored.status.expiration.clone())?
}

/// Whether Velero has uploaded `velero-backup.json` for the last time. Until a backup is done,
/// Velero's finalizing step uploads the Backup as the cluster has it, with an expiration moved
/// later meanwhile: nothing to keep then.
fn uploaded_for_good(o: &Object) -> bool {
    matches!(
        o.status.phase.as_deref(),
        Some("Completed" | "PartiallyFailed" | "Failed" | "FailedValidation")
    )
}

/// CREATE or UPDATE of a Backup whose `backup-guard.io/original-expiration` is not what the
/// mutating webhook makes it ([`original_expiration`]): written by hand where that webhook did
/// not run (its failure policy `Ignore`, and the guard away). Class integrity, as stamps.
pub fn original_expiration_written(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let new = req.object.as_deref()?;
    let wanted = original_expiration(req, ctx);
    let written = new.metadata.annotations.get(ORIGINAL_EXPIRATION);
    if written == wanted.as_ref() {
        return None;
    }
    Some(ctx.violation(
        Reason::StampWritten,
        Class::Integrity,
        || messages::original_expiration_written(req, wanted.as_deref()),
        || {
            messages::short(
                req,
                &format!("{ORIGINAL_EXPIRATION} is written only by backup-guard"),
            )
        },
    ))
}
