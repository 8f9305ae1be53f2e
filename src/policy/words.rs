//! The integrity rules, denied in every mode but off: stamps are the guard's alone, holds are
//! released only by hold managers, approvals only count from approvers.

use super::decision::{Actor, Class, Judging, Reason, Violation};
use super::messages;
use super::request::{Object, Request};
use super::stamps::{
    is_held, stamps_verify, APPROVED_BY, DELETE_APPROVAL, DELETE_REQUEST, REQUESTED_BY, STAMP_KEYS,
};

/// UPDATE touching the user's words: forged stamps, hold released by a non-manager, refused approvals.
pub fn words_update(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let (old, new) = (req.old_object.as_ref()?, req.object.as_ref()?);
    hold_released(req, ctx, old, new)
        .or_else(|| stamps_written(req, ctx, old, new))
        .or_else(|| approval_refused(req, ctx, old, new))
}

fn hold_released(
    req: &Request,
    ctx: &Judging<'_>,
    old: &Object,
    new: &Object,
) -> Option<Violation> {
    let managers = &ctx.policy.hold.managers;
    if !is_held(&old.metadata)
        || is_held(&new.metadata)
        || managers.contains(&req.user.username, &req.user.groups)
    {
        return None;
    }
    Some(ctx.violation(
        Reason::HoldReleased,
        Class::Integrity,
        || messages::hold_release(req, ctx.policy),
        || messages::short(req, "only a hold manager may release a hold"),
    ))
}

fn stamps_written(
    req: &Request,
    ctx: &Judging<'_>,
    old: &Object,
    new: &Object,
) -> Option<Violation> {
    let changed = |k: &str| old.annotation(k) != new.annotation(k);
    if !STAMP_KEYS.iter().any(|k| changed(k)) {
        return None;
    }
    let user = req.user.username.as_str();
    let request_restamped = changed(DELETE_REQUEST) && new.annotation(DELETE_REQUEST).is_some();
    let own = stamps_verify(ctx.key, &new.metadata)
        && (!request_restamped || new.annotation(REQUESTED_BY) == Some(user))
        && (!changed(APPROVED_BY) || new.annotation(APPROVED_BY).is_none_or(|by| by == user));
    if own {
        return None;
    }
    Some(stamps_violation(req, ctx))
}

fn approval_refused(
    req: &Request,
    ctx: &Judging<'_>,
    old: &Object,
    new: &Object,
) -> Option<Violation> {
    let approval = new.annotation(DELETE_APPROVAL)?;
    if old.annotation(DELETE_APPROVAL) == Some(approval)
        && old.annotation(DELETE_REQUEST) == new.annotation(DELETE_REQUEST)
    {
        return None;
    }
    // The mutating webhook stamps only an approval it accepts.
    if new.annotation(APPROVED_BY) == Some(req.user.username.as_str()) {
        return None;
    }
    let requester = new.annotation(REQUESTED_BY).unwrap_or("");
    let why = if new.annotation(DELETE_REQUEST).is_none() {
        "there is no delete request to approve".to_string()
    } else if requester == req.user.username {
        "the requester cannot approve their own request (two-person rule)".to_string()
    } else if !ctx
        .policy
        .approval
        .approvers
        .contains(&req.user.username, &req.user.groups)
    {
        format!(
            "{} is not in the policy's approval.approvers",
            req.user.username
        )
    } else {
        format!(
            "the delete request carries no valid backup-guard stamp; renew it first with a different reason \
             (`kubectl annotate --overwrite {} {}{} {DELETE_REQUEST}='<a different reason>'`: backup-guard stamps \
             a request only when its value changes), then approve it",
            req.resource.kubectl_name(),
            req.name,
            if req.namespace.is_empty() { String::new() } else { format!(" -n {}", req.namespace) }
        )
    };
    Some(ctx.violation(
        Reason::ApprovalRefused,
        Class::Integrity,
        || messages::approval(req, &why),
        || messages::short(req, &why),
    ))
}

/// CREATE carrying stamps: they cannot be the guard's (no uid exists yet), so a person wrote them.
pub fn stamps_on_create(req: &Request, ctx: &Judging<'_>) -> Option<Violation> {
    let obj = req.object.as_ref()?;
    if !STAMP_KEYS
        .iter()
        .any(|k| obj.metadata.annotations.contains_key(*k))
        || Actor::of(&req.user.username, ctx.policy) == Actor::Velero
    {
        return None;
    }
    Some(stamps_violation(req, ctx))
}

/// Stamps written by someone other than the guard.
fn stamps_violation(req: &Request, ctx: &Judging<'_>) -> Violation {
    ctx.violation(
        Reason::StampWritten,
        Class::Integrity,
        || messages::stamps(req),
        || messages::short(req, "stamps are written only by backup-guard"),
    )
}
