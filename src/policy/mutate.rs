//! The mutating rules: stamp the user's words, keep Velero's snapshot contents `Retain`, and in
//! neuter mode strip finalizers that would delete storage.

use std::collections::BTreeMap;

use jiff::Timestamp;
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation};
use serde_json::Value;

use super::config::Mode;
use super::decision::{Context, Decision};
use super::extension::original_expiration;
use super::modes::mode_for;
use super::request::{Object, Operation, Request, Resource};
use super::rules::STORAGE_DELETING_FINALIZERS;
use super::snapshots::snapshots_may_go;
use super::stamps::{
    sign, stamps_verify, APPROVED_AT, APPROVED_BY, DELETE_APPROVAL, DELETE_REQUEST,
    ORIGINAL_DELETION_POLICY, ORIGINAL_EXPIRATION, REQUESTED_AT, REQUESTED_BY, SIGNATURE,
    STAMP_KEYS, VELERO_BACKUP_NAME,
};

/// The mutating webhook's decision: always allowed, with a patch when something must change.
pub fn mutate(req: &Request, ctx: &Context<'_>) -> Decision {
    let mode = mode_for(req, ctx);
    let mut decision = Decision::allow(mode);
    if mode == Mode::Off || !matches!(req.operation, Operation::Create | Operation::Update) {
        return decision;
    }
    let Some(obj) = req.object.as_ref() else {
        return decision;
    };
    let mut ops = Vec::new();
    // Every rule below says which annotations it wants; one set of patch operations reaches them.
    let mut wanted = obj.metadata.annotations.clone();
    if matches!(
        req.resource,
        Resource::Backup
            | Resource::BackupStorageLocation
            | Resource::CustomResourceDefinition
            | Resource::VolumeSnapshot
            | Resource::VolumeSnapshotContent
    ) {
        stamp_words(req, ctx, obj, &mut wanted, &mut decision.warnings);
    }
    if req.resource == Resource::Backup {
        keep_original_expiration(req, ctx, &mut wanted);
    }
    if req.resource == Resource::VolumeSnapshotContent
        && matches!(mode, Mode::Enforce | Mode::Neuter)
    {
        retain_content(req, ctx, obj, &mut wanted, &mut ops);
    }
    annotation_ops(&obj.metadata.annotations, &wanted, &mut ops);
    if req.resource == Resource::Backup && mode == Mode::Neuter {
        strip_storage_finalizers(obj, &mut ops, &mut decision.warnings);
    }
    if !ops.is_empty() {
        decision.patch = Some(Patch(ops));
    }
    decision
}

fn annotation_path(key: &str) -> PointerBuf {
    PointerBuf::from_tokens(["metadata", "annotations", key])
}

/// Turns a wanted annotation map into patch operations against the object's current one.
fn annotation_ops(
    current: &BTreeMap<String, String>,
    wanted: &BTreeMap<String, String>,
    ops: &mut Vec<PatchOperation>,
) {
    if current == wanted {
        return;
    }
    if current.is_empty() {
        ops.push(PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(["metadata", "annotations"]),
            value: serde_json::to_value(wanted).unwrap_or(Value::Null),
        }));
        return;
    }
    for key in current.keys().filter(|k| !wanted.contains_key(*k)) {
        ops.push(PatchOperation::Remove(RemoveOperation {
            path: annotation_path(key),
        }));
    }
    for (key, value) in wanted.iter().filter(|(k, v)| current.get(*k) != Some(*v)) {
        ops.push(PatchOperation::Add(AddOperation {
            path: annotation_path(key),
            value: Value::String(value.clone()),
        }));
    }
}

/// A non-blank annotation value.
fn set(m: &BTreeMap<String, String>, k: &str) -> Option<String> {
    m.get(k).filter(|v| !v.trim().is_empty()).cloned()
}

/// Stamps who set a delete request or approval, and when, and signs the result.
///
/// On CREATE there is no uid to bind the signature to, so words set at creation stay unstamped
/// (and sanction nothing); the warning tells the user to set them on the existing object.
pub fn stamp_words(
    req: &Request,
    ctx: &Context<'_>,
    obj: &Object,
    wanted: &mut BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) {
    let new = &obj.metadata.annotations;
    let empty = BTreeMap::new();
    let old = req
        .old_object
        .as_ref()
        .map_or(&empty, |o| &o.metadata.annotations);
    let (request, approval) = (set(new, DELETE_REQUEST), set(new, DELETE_APPROVAL));
    if req.operation == Operation::Create {
        if request.is_some() || approval.is_some() {
            warnings.push("backup-guard: a delete request set at creation is not stamped; annotate the existing object".into());
        }
        return;
    }
    // Stamps the user changed are left as written, for the validating webhook to refuse.
    if STAMP_KEYS.iter().any(|k| new.get(*k) != old.get(*k)) {
        return;
    }
    let words = Words {
        req,
        ctx,
        old,
        now: Timestamp::from_second(ctx.now)
            .map(|t| t.to_string())
            .unwrap_or_default(),
        request_changed: request.is_some() && request != set(old, DELETE_REQUEST),
        request,
    };
    words.stamp_request(approval, wanted, warnings);
    words.stamp_approval(wanted, warnings);
    words.sign(obj, wanted);
}

/// One UPDATE's delete request, as [`stamp_words`] stamps it.
struct Words<'a> {
    req: &'a Request,
    ctx: &'a Context<'a>,
    /// The stored object's annotations.
    old: &'a BTreeMap<String, String>,
    /// `ctx.now` as the stamps write it.
    now: String,
    /// The request annotation as sent.
    request: Option<String>,
    /// Set, and not as stored: stamped anew.
    request_changed: bool,
}

impl Words<'_> {
    fn user(&self) -> &str {
        &self.req.user.username
    }

    /// Stamps a changed request for its user (clearing an approval of the earlier one), or
    /// removes every stamp with the request.
    fn stamp_request(
        &self,
        approval: Option<String>,
        wanted: &mut BTreeMap<String, String>,
        warnings: &mut Vec<String>,
    ) {
        if self.request.is_none() {
            for k in [
                REQUESTED_BY,
                REQUESTED_AT,
                APPROVED_BY,
                APPROVED_AT,
                SIGNATURE,
            ] {
                wanted.remove(k);
            }
            return;
        }
        if !self.request_changed {
            return;
        }
        let user = self.user();
        wanted.insert(REQUESTED_BY.into(), user.into());
        wanted.insert(REQUESTED_AT.into(), self.now.clone());
        wanted.remove(APPROVED_BY);
        wanted.remove(APPROVED_AT);
        if approval.is_some() && approval == set(self.old, DELETE_APPROVAL) {
            wanted.remove(DELETE_APPROVAL);
            warnings.push(short_warning(
                self.req,
                "the request changed, so its earlier approval was cleared",
            ));
        }
        warnings.push(short_warning(
            self.req,
            &format!("delete request stamped for {user}"),
        ));
    }

    /// Stamps a new approval by an approver who is not the requester, of a request the guard
    /// stamped; any other approval stays unstamped, for the validating webhook to refuse.
    fn stamp_approval(&self, wanted: &mut BTreeMap<String, String>, warnings: &mut Vec<String>) {
        let approval = set(wanted, DELETE_APPROVAL);
        let approval_changed = approval.is_some()
            && (approval != set(self.old, DELETE_APPROVAL) || self.request_changed);
        if approval.is_none() {
            wanted.remove(APPROVED_BY);
            wanted.remove(APPROVED_AT);
            return;
        }
        if !approval_changed {
            return;
        }
        let (req, user) = (self.req, self.user());
        // An approval builds on a request the guard stamped and signed, never on a bare annotation.
        let old_verified = req.old_object.as_ref().is_some_and(|o| {
            o.metadata.annotations.contains_key(SIGNATURE)
                && stamps_verify(self.ctx.key, &o.metadata)
        });
        let requester = wanted.get(REQUESTED_BY).map(String::as_str);
        let approver_ok = self
            .ctx
            .policy
            .approval
            .approvers
            .contains(user, &req.user.groups);
        let request_ok = self.request.is_some() && (self.request_changed || old_verified);
        if approver_ok && request_ok && requester != Some(user) {
            wanted.insert(APPROVED_BY.into(), user.into());
            wanted.insert(APPROVED_AT.into(), self.now.clone());
            warnings.push(short_warning(req, &format!("deletion approved by {user}")));
        } else {
            wanted.remove(APPROVED_BY);
            wanted.remove(APPROVED_AT);
        }
    }

    /// Signs the stamps when they changed (the signature goes with the request).
    fn sign(&self, obj: &Object, wanted: &mut BTreeMap<String, String>) {
        let new = &obj.metadata.annotations;
        let stamps_changed = [REQUESTED_BY, REQUESTED_AT, APPROVED_BY, APPROVED_AT]
            .iter()
            .any(|k| wanted.get(*k) != new.get(*k));
        if !stamps_changed {
            return;
        }
        if self.request.is_none() {
            wanted.remove(SIGNATURE);
            return;
        }
        let mut meta = obj.metadata.clone();
        meta.annotations = wanted.clone();
        // The uid of an UPDATE is the stored object's; take it from there if the new one lacks it.
        if meta.uid.is_empty() {
            meta.uid = self
                .req
                .old_object
                .as_ref()
                .map(|o| o.metadata.uid.clone())
                .unwrap_or_default();
        }
        wanted.insert(SIGNATURE.into(), sign(self.ctx.key, &meta));
    }
}

/// Keeps a Backup's `status.expiration` as Velero set it once anyone else moves it later, and
/// carries it on every update after ([`original_expiration`]).
fn keep_original_expiration(
    req: &Request,
    ctx: &Context<'_>,
    wanted: &mut BTreeMap<String, String>,
) {
    match original_expiration(req, ctx) {
        Some(original) => wanted.insert(ORIGINAL_EXPIRATION.into(), original),
        None => wanted.remove(ORIGINAL_EXPIRATION),
    };
}

fn short_warning(req: &Request, what: &str) -> String {
    super::messages::short(req, what)
}

/// Velero's VolumeSnapshotContents are kept with `Retain`, unless their backup is sanctioned or
/// this is Velero deleting an expired backup's snapshots (see `rules::ttl_collects`).
/// The backup is the content's label, or the stored one if an update removes it (the validating
/// webhook refuses that for a protected backup; this keeps the content safe regardless).
fn retain_content(
    req: &Request,
    ctx: &Context<'_>,
    obj: &Object,
    wanted: &mut BTreeMap<String, String>,
    ops: &mut Vec<PatchOperation>,
) {
    let stored = req.old_object.as_deref();
    let Some(backup) = obj
        .label(VELERO_BACKUP_NAME)
        .or_else(|| stored.and_then(|o| o.label(VELERO_BACKUP_NAME)))
    else {
        return;
    };
    if !ctx.policy.snapshots.retain_contents
        || obj.spec.deletion_policy.as_deref() != Some("Delete")
    {
        return;
    }
    if snapshots_may_go(backup, req, ctx).is_ok() {
        return;
    }
    ops.push(PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(["spec", "deletionPolicy"]),
        value: Value::String("Retain".into()),
    }));
    wanted.insert(ORIGINAL_DELETION_POLICY.into(), "Delete".into());
}

/// In neuter mode a Backup may go, but not with a finalizer whose controller deletes storage.
fn strip_storage_finalizers(
    obj: &Object,
    ops: &mut Vec<PatchOperation>,
    warnings: &mut Vec<String>,
) {
    let finalizers = &obj.metadata.finalizers;
    if !finalizers
        .iter()
        .any(|f| STORAGE_DELETING_FINALIZERS.contains(&f.as_str()))
    {
        return;
    }
    let kept: Vec<&String> = finalizers
        .iter()
        .filter(|f| !STORAGE_DELETING_FINALIZERS.contains(&f.as_str()))
        .collect();
    ops.push(PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(["metadata", "finalizers"]),
        value: serde_json::to_value(kept).unwrap_or(Value::Null),
    }));
    warnings.push(format!(
        "backup-guard: removed storage-deleting finalizer from backup {} (neuter mode)",
        obj.metadata.name
    ));
}
