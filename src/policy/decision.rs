//! What the core answers: a verdict, its reason, warnings, and for the mutating webhook a patch.

use super::config::{Mode, Policy};
use super::request::{Request, Resource};
use crate::index::Index;

/// Everything a decision reads besides the request. No clock, no I/O: `now` is given.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub policy: &'a Policy,
    pub index: &'a Index,
    /// Unix seconds.
    pub now: i64,
    /// The signing key (Secret `backup-guard-signing-key`, key `key`).
    pub key: &'a [u8],
}

/// How much a violation is worth guarding, which decides what each mode does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Only the cluster's copy would go (the record stays in storage).
    Shadow,
    /// Storage data or snapshots would be destroyed, now or by Velero later.
    Storage,
    /// The user's words or stamps would be forged, or a hold released by a non-manager.
    Integrity,
}

/// Why a request was flagged; one per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    BackupDelete,
    NamespaceDelete,
    CrdDelete,
    DeleteRequestCreate,
    TtlShortened,
    ExpirationMovedEarlier,
    StorageLocationDelete,
    SnapshotDelete,
    StampWritten,
    HoldReleased,
    ApprovalRefused,
}

impl Reason {
    /// The name in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::BackupDelete => "backup_delete",
            Reason::NamespaceDelete => "namespace_delete",
            Reason::CrdDelete => "crd_delete",
            Reason::DeleteRequestCreate => "delete_request_create",
            Reason::TtlShortened => "ttl_shortened",
            Reason::ExpirationMovedEarlier => "expiration_moved_earlier",
            Reason::StorageLocationDelete => "storage_location_delete",
            Reason::SnapshotDelete => "snapshot_delete",
            Reason::StampWritten => "stamp_written",
            Reason::HoldReleased => "hold_released",
            Reason::ApprovalRefused => "approval_refused",
        }
    }
}

/// The label a decision carries in `backup_guard_admission_requests_total{decision}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Denied,
    Neutered,
    Warned,
}

impl Outcome {
    /// Metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Neutered => "neutered",
            Outcome::Warned => "warned",
        }
    }
}

/// The namespace controller's username: it deletes only what a terminating namespace holds.
pub const NAMESPACE_CONTROLLER: &str = "system:serviceaccount:kube-system:namespace-controller";

/// Who sent a request, as the `actor` metric label names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User,
    ServiceAccount,
    NamespaceController,
    GarbageCollector,
    Velero,
}

impl Actor {
    /// Classifies a username.
    pub fn of(username: &str, policy: &Policy) -> Actor {
        match username {
            NAMESPACE_CONTROLLER => Actor::NamespaceController,
            "system:serviceaccount:kube-system:generic-garbage-collector" => {
                Actor::GarbageCollector
            }
            u if u == policy.velero.service_account => Actor::Velero,
            u if u.starts_with("system:serviceaccount:") => Actor::ServiceAccount,
            _ => Actor::User,
        }
    }

    /// Metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::User => "user",
            Actor::ServiceAccount => "serviceaccount",
            Actor::NamespaceController => "namespace_controller",
            Actor::GarbageCollector => "garbage_collector",
            Actor::Velero => "velero",
        }
    }
}

/// A rule's finding, before the mode turns it into a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub reason: Reason,
    pub class: Class,
    /// The full denial message: what is protected, why, and the command that would sanction it.
    pub message: String,
    /// The short form (< 120 characters) sent as a kubectl warning when the request is let through.
    pub warning: String,
}

/// The core's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub outcome: Outcome,
    /// The mode that applied.
    pub mode: Mode,
    pub reason: Option<Reason>,
    /// Denial message (empty when allowed).
    pub message: String,
    pub warnings: Vec<String>,
    /// RFC 6902 patch (mutating webhook only).
    pub patch: Option<json_patch::Patch>,
    /// Set when a deletion was blocked, or would have been (audit), for the blocked-deletions metric.
    pub blocked: Option<(Resource, Actor)>,
}

impl Decision {
    /// Allow, nothing to say.
    pub fn allow(mode: Mode) -> Decision {
        Decision {
            allowed: true,
            outcome: Outcome::Allowed,
            mode,
            reason: None,
            message: String::new(),
            warnings: vec![],
            patch: None,
            blocked: None,
        }
    }

    /// Applies the mode to a violation.
    pub fn from_violation(v: Violation, mode: Mode, req: &Request, policy: &Policy) -> Decision {
        use Class::*;
        use Mode::*;
        let outcome = match (v.class, mode) {
            (_, Off) => return Decision::allow(mode),
            (Integrity, _) | (Storage, Enforce | Neuter) | (Shadow, Enforce) => Outcome::Denied,
            (Shadow, Neuter) => Outcome::Neutered,
            (Storage | Shadow, Audit) => Outcome::Warned,
        };
        let is_deletion = matches!(
            v.reason,
            Reason::BackupDelete
                | Reason::NamespaceDelete
                | Reason::CrdDelete
                | Reason::DeleteRequestCreate
                | Reason::StorageLocationDelete
                | Reason::SnapshotDelete
        );
        let blocked = (is_deletion && outcome != Outcome::Neutered)
            .then(|| (req.resource, Actor::of(&req.user.username, policy)));
        let allowed = outcome != Outcome::Denied;
        Decision {
            allowed,
            outcome,
            mode,
            reason: Some(v.reason),
            message: if allowed { String::new() } else { v.message },
            warnings: if allowed { vec![v.warning] } else { vec![] },
            patch: None,
            blocked,
        }
    }
}
