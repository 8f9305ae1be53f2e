//! What steers Velero's TTL collector: a Backup's `spec.ttl` and `status.expiration` may grow,
//! but not shrink, vanish (a removed value could later be set to any time), or appear earlier
//! than Velero itself would have set them.

use jiff::{SignedDuration, Timestamp};

use super::decision::{Actor, Class, Judging, Reason, Violation};
use super::duration::parse_go_duration;
use super::messages;
use super::request::{Object, Request};
use super::rules::self_sanction;
use super::stamps::{is_held, Unsanctioned};

/// Before Velero's first pass over a backup: phase empty or `New`, or (Velero 1.18's backup
/// queue) `Queued` or `ReadyToStart`, where the pass runs. That pass sets `spec.ttl` (Velero's
/// default when none is given) and `status.expiration`, overwriting what was there.
fn unprocessed(o: &Object) -> bool {
    matches!(
        o.status.phase.as_deref(),
        None | Some("" | "New" | "Queued" | "ReadyToStart")
    )
}

/// `spec.ttl` in seconds; `None` when absent or not a Go duration.
pub(super) fn ttl(o: &Object) -> Option<i64> {
    o.spec
        .ttl
        .as_deref()
        .and_then(|t| parse_go_duration(t).ok())
}

/// `status.expiration`; `None` when absent or not a time.
pub(super) fn expiration(o: &Object) -> Option<Timestamp> {
    o.status
        .expiration
        .as_deref()
        .and_then(|t| t.parse::<Timestamp>().ok())
}

/// The earliest expiration Velero could have given the stored backup with this ttl: the
/// earlier of its creation and its start, plus the ttl. Velero takes the time from its clock on
/// its first pass, after the backup was created and (to the second) not after the start it
/// records; a backup re-created by Velero's sync keeps its original start. Read from the stored
/// object only, so that an update cannot move the start it is judged against.
fn earliest_velero_expiration(stored: &Object, ttl: i64) -> Option<Timestamp> {
    let time = |t: &Option<String>| t.as_deref().and_then(|t| t.parse::<Timestamp>().ok());
    let created = time(&stored.metadata.creation_timestamp);
    let started = time(&stored.status.start_timestamp);
    let base = match (created, started) {
        (Some(c), Some(s)) => c.min(s),
        (one, other) => one.or(other)?,
    };
    base.checked_add(SignedDuration::from_secs(ttl)).ok()
}

/// How an update changes `spec.ttl`, when it is a change the TTL collector could act on.
enum TtlChange {
    Shortened {
        from: String,
        to: String,
    },
    Removed {
        was: String,
    },
    /// Set where there was none, on a backup Velero has processed.
    SetEarly {
        to: String,
        expiry: Option<(Timestamp, Timestamp)>,
    },
}

/// UPDATE of a Backup shortening or removing `spec.ttl`, or setting one (where there was none,
/// after Velero's first pass) that would put the expiry before the stored `status.expiration`.
pub fn ttl_shortened(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let (old, new) = (req.old_object.as_ref()?, req.object.as_ref()?);
    if old.spec.ttl == new.spec.ttl {
        return None;
    }
    let shown = |o: &Object| o.spec.ttl.clone().unwrap_or_default();
    let change = match (ttl(old), ttl(new)) {
        (Some(b), Some(a)) if a < b => TtlChange::Shortened {
            from: shown(old),
            to: shown(new),
        },
        (Some(_), Some(_)) => return None,
        // A value that is not a duration counts as removed: Velero cannot read it either.
        (Some(_), None) => TtlChange::Removed { was: shown(old) },
        (None, Some(_)) if unprocessed(old) => return None,
        (None, Some(a)) => {
            let implied = earliest_velero_expiration(old, a);
            match (implied, expiration(old)) {
                (Some(i), Some(e)) if i >= e => return None,
                (i, e) => TtlChange::SetEarly {
                    to: shown(new),
                    expiry: i.zip(e),
                },
            }
        }
        (None, None) => return None,
    };
    let held = self_sanction(req, ctx).err()? == Unsanctioned::Held;
    Some(ctx.holding(held).violation(
        Reason::TtlShortened,
        Class::Storage,
        || match &change {
            TtlChange::Shortened { from, to } => messages::tampering(
                req,
                &format!("shortens spec.ttl from {from} to {to}"),
                "A longer spec.ttl is allowed.",
                ctx.policy,
            ),
            TtlChange::Removed { was } => messages::removed(req, "spec.ttl", was, ctx.policy),
            TtlChange::SetEarly { to, expiry } => messages::tampering(
                req,
                &match expiry {
                    Some((at, e)) => format!(
                        "sets spec.ttl to {to} where it had none, which puts the backup's expiry at {at}, before its status.expiration {e}"
                    ),
                    None => format!(
                        "sets spec.ttl to {to} where it had none, on a backup Velero has already processed whose expiry backup-guard cannot compare it with"
                    ),
                },
                "A spec.ttl that keeps the expiry where it is, or later, is allowed.",
                ctx.policy,
            ),
        },
        || {
            messages::short(
                req,
                &match &change {
                    TtlChange::Shortened { from, to } => {
                        format!("spec.ttl shortened from {from} to {to}")
                    }
                    TtlChange::Removed { .. } => "spec.ttl removed".to_string(),
                    TtlChange::SetEarly { .. } => {
                        "spec.ttl set where there was none would bring the expiry forward"
                            .to_string()
                    }
                },
            )
        },
    ))
}

/// How an update changes `status.expiration`, when it is a change the collector could act on.
enum ExpirationChange {
    Earlier {
        from: Timestamp,
        to: Timestamp,
    },
    Removed {
        was: String,
    },
    /// Set where there was none, before the earliest time Velero could have set.
    BeforeVelero {
        to: Timestamp,
        earliest: Timestamp,
    },
    /// Set where there was none on a processed backup, with nothing to compare it with.
    Unknown {
        to: Timestamp,
        no_ttl: bool,
    },
}

/// UPDATE of a Backup moving `status.expiration` earlier, removing it, or setting one where there
/// was none earlier than Velero would have (Backups have no status subresource).
pub fn expiration_moved_earlier(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let (old, new) = (req.old_object.as_ref()?, req.object.as_ref()?);
    if old.status.expiration == new.status.expiration {
        return None;
    }
    let change = match (expiration(old), expiration(new)) {
        (Some(from), Some(to)) if to < from => ExpirationChange::Earlier { from, to },
        (Some(_), Some(_)) => return None,
        (Some(_), None) if new.status.expiration.is_none() => ExpirationChange::Removed {
            was: old.status.expiration.clone().unwrap_or_default(),
        },
        // A value that is not a time: as early as can be.
        (Some(from), None) => ExpirationChange::Earlier {
            from,
            to: Timestamp::UNIX_EPOCH,
        },
        (None, Some(to)) => {
            let ttl = ttl(old).or_else(|| ttl(new));
            match ttl.and_then(|t| earliest_velero_expiration(old, t)) {
                Some(earliest) if to >= earliest => return None,
                Some(earliest) => ExpirationChange::BeforeVelero { to, earliest },
                None if unprocessed(old) => return None,
                None => ExpirationChange::Unknown {
                    to,
                    no_ttl: ttl.is_none(),
                },
            }
        }
        (None, None) => return None,
    };
    let held = self_sanction(req, ctx).err()? == Unsanctioned::Held;
    let later = "A later status.expiration is allowed.";
    Some(ctx.holding(held).violation(
        Reason::ExpirationMovedEarlier,
        Class::Storage,
        || match &change {
            ExpirationChange::Earlier { from, to } => messages::tampering(
                req,
                &format!("moves status.expiration earlier, from {from} to {to}"),
                later,
                ctx.policy,
            ),
            ExpirationChange::Removed { was } => {
                messages::removed(req, "status.expiration", was, ctx.policy)
            }
            ExpirationChange::BeforeVelero { to, earliest } => messages::tampering(
                req,
                &format!(
                    "sets status.expiration to {to} where it had none, earlier than Velero would have set it ({earliest}: the backup's start plus spec.ttl)"
                ),
                &format!("An expiration at {earliest} or later is allowed."),
                ctx.policy,
            ),
            ExpirationChange::Unknown { to, no_ttl } => messages::tampering(
                req,
                &format!(
                    "sets status.expiration to {to} where it had none, and with {} backup-guard cannot tell when Velero would have let it expire",
                    if *no_ttl { "no spec.ttl" } else { "no creation or start time" }
                ),
                "Only Velero's first pass over a new backup may set it.",
                ctx.policy,
            ),
        },
        || {
            messages::short(
                req,
                match &change {
                    ExpirationChange::Earlier { .. } => "status.expiration moved earlier",
                    ExpirationChange::Removed { .. } => "status.expiration removed",
                    ExpirationChange::BeforeVelero { .. } => {
                        "status.expiration set earlier than Velero would set it"
                    }
                    ExpirationChange::Unknown { .. } => "status.expiration set where there was none",
                },
            )
        },
    ))
}

/// CREATE of a Backup already expired (`status.expiration` at or before now), by anyone but
/// Velero's own account. Velero's TTL collector would file a DeleteBackupRequest for it at its
/// next pass and delete the files of the backup of that name in storage: a Backup copied back in
/// with an old status (deleted and re-created in neuter mode, or applied from an export) would
/// bring the data's end forward. Velero's sync re-creating a Backup from storage keeps its own
/// times and passes.
pub fn created_expired(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let new = req.object.as_deref()?;
    let at = expiration(new).filter(|e| e.as_second() <= ctx.now)?;
    if Actor::of(&req.user.username, ctx.policy) == Actor::Velero {
        return None;
    }
    Some(ctx.holding(is_held(&new.metadata)).violation(
        Reason::ExpirationMovedEarlier,
        Class::Storage,
        || messages::created_expired(req, at),
        || {
            messages::short(
                req,
                &format!("created with status.expiration {at}, already past"),
            )
        },
    ))
}
