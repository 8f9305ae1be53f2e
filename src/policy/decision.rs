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
    DeleteRequestRetargeted,
    DeletionStarted,
    ModeLowered,
    FinalizerRemoved,
    TtlShortened,
    ExpirationMovedEarlier,
    StorageLocationDelete,
    StorageLocationMoved,
    StorageLocationRepointed,
    SnapshotDelete,
    SnapshotRelabelled,
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
            Reason::DeleteRequestRetargeted => "delete_request_retargeted",
            Reason::DeletionStarted => "deletion_started",
            Reason::ModeLowered => "mode_lowered",
            Reason::FinalizerRemoved => "finalizer_removed",
            Reason::TtlShortened => "ttl_shortened",
            Reason::ExpirationMovedEarlier => "expiration_moved_earlier",
            Reason::StorageLocationDelete => "storage_location_delete",
            Reason::StorageLocationMoved => "storage_location_moved",
            Reason::StorageLocationRepointed => "storage_location_repointed",
            Reason::SnapshotDelete => "snapshot_delete",
            Reason::SnapshotRelabelled => "snapshot_relabelled",
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

/// One request being judged: the context, the mode in force for its object, and whether its
/// user is exempt. Rules read the context through it and build their findings with
/// [`Judging::violation`], so that only the text the outcome shows is ever written.
pub struct Judging<'a> {
    pub ctx: &'a Context<'a>,
    pub mode: Mode,
    /// `policy.exempt` holds the user: everything but the integrity rules lets them through,
    /// unless the object is on legal hold (see [`Judging::holding`]).
    pub exempt: bool,
}

impl<'a> std::ops::Deref for Judging<'a> {
    type Target = Context<'a>;
    fn deref(&self) -> &Context<'a> {
        self.ctx
    }
}

impl<'a> Judging<'a> {
    /// The same judging for a finding about an object on legal hold when `held`: exemption
    /// never covers a hold, as it never covers the integrity of the user's words.
    pub fn holding(&self, held: bool) -> Judging<'a> {
        Judging {
            ctx: self.ctx,
            mode: self.mode,
            exempt: self.exempt && !held,
        }
    }

    /// What a violation of `class` comes to for this request.
    pub fn outcome(&self, class: Class) -> Outcome {
        use Class::*;
        use Mode::*;
        if class != Integrity && self.exempt {
            return Outcome::Allowed;
        }
        match (class, self.mode) {
            (_, Off) => Outcome::Allowed,
            (Integrity, _) | (Storage, Enforce | Neuter) | (Shadow, Enforce) => Outcome::Denied,
            (Shadow, Neuter) => Outcome::Neutered,
            (Storage | Shadow, Audit) => Outcome::Warned,
        }
    }

    /// A rule's finding, with the full message rendered only if the request is denied and the
    /// short warning only if it is let through with one.
    pub fn violation(
        &self,
        reason: Reason,
        class: Class,
        message: impl FnOnce() -> String,
        warning: impl FnOnce() -> String,
    ) -> Violation {
        let outcome = self.outcome(class);
        Violation {
            reason,
            class,
            outcome,
            message: if outcome == Outcome::Denied {
                message()
            } else {
                String::new()
            },
            warning: if matches!(outcome, Outcome::Neutered | Outcome::Warned) {
                warning()
            } else {
                String::new()
            },
        }
    }
}

/// A rule's finding and what it comes to (built by [`Judging::violation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub reason: Reason,
    pub class: Class,
    pub outcome: Outcome,
    /// The full denial message: what is protected, why, and the command that would sanction it.
    /// Empty unless the outcome is `Denied`.
    pub message: String,
    /// The short form (< 120 characters) sent as a kubectl warning when the request is let
    /// through. Empty unless the outcome is `Neutered` or `Warned`.
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

    /// The verdict on a violation, in the mode it was judged in.
    pub fn from_violation(v: Violation, mode: Mode, req: &Request, policy: &Policy) -> Decision {
        let outcome = v.outcome;
        if outcome == Outcome::Allowed {
            return Decision::allow(mode);
        }
        let is_deletion = matches!(
            v.reason,
            Reason::BackupDelete
                | Reason::NamespaceDelete
                | Reason::CrdDelete
                | Reason::DeleteRequestCreate
                | Reason::DeleteRequestRetargeted
                | Reason::DeletionStarted
                | Reason::StorageLocationDelete
                | Reason::SnapshotDelete
        );
        // Blocked means refused: a deletion audit mode only warned about went through, and the
        // alerts on this counter say the record is intact.
        let blocked = (is_deletion && outcome == Outcome::Denied)
            .then(|| (req.resource, Actor::of(&req.user.username, policy)));
        let allowed = outcome != Outcome::Denied;
        Decision {
            allowed,
            outcome,
            mode,
            reason: Some(v.reason),
            message: v.message,
            warnings: if allowed { vec![v.warning] } else { vec![] },
            patch: None,
            blocked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` with a context of the default policy and an empty index.
    fn in_context<R>(f: impl FnOnce(&Context<'_>) -> R) -> R {
        let (policy, index) = (Policy::default(), Index::new());
        f(&Context {
            policy: &policy,
            index: &index,
            now: 0,
            key: b"k",
        })
    }

    fn judged(mode: Mode, exempt: bool, class: Class) -> Violation {
        in_context(|ctx| {
            let judging = Judging { ctx, mode, exempt };
            judging.violation(
                Reason::BackupDelete,
                class,
                || "message".into(),
                || "warning".into(),
            )
        })
    }

    #[test]
    fn only_the_text_the_outcome_shows_is_written() {
        let texts = |v: Violation| (v.outcome, v.message, v.warning);
        let denied = (Outcome::Denied, "message".to_string(), String::new());
        let neutered = (Outcome::Neutered, String::new(), "warning".to_string());
        let warned = (Outcome::Warned, String::new(), "warning".to_string());
        let allowed = (Outcome::Allowed, String::new(), String::new());
        assert_eq!(texts(judged(Mode::Enforce, false, Class::Shadow)), denied);
        assert_eq!(texts(judged(Mode::Neuter, false, Class::Shadow)), neutered);
        assert_eq!(texts(judged(Mode::Neuter, false, Class::Storage)), denied);
        assert_eq!(texts(judged(Mode::Audit, false, Class::Storage)), warned);
        assert_eq!(texts(judged(Mode::Audit, false, Class::Integrity)), denied);
        assert_eq!(texts(judged(Mode::Off, false, Class::Integrity)), allowed);
        // Exempt users pass every rule but the integrity ones.
        assert_eq!(texts(judged(Mode::Enforce, true, Class::Storage)), allowed);
        assert_eq!(texts(judged(Mode::Enforce, true, Class::Integrity)), denied);
    }

    #[test]
    fn exemption_never_covers_a_hold() {
        in_context(|ctx| {
            let exempt = |mode| Judging {
                ctx,
                mode,
                exempt: true,
            };
            let j = exempt(Mode::Enforce);
            assert_eq!(j.holding(false).outcome(Class::Storage), Outcome::Allowed);
            assert_eq!(j.holding(true).outcome(Class::Storage), Outcome::Denied);
            assert_eq!(j.holding(true).outcome(Class::Shadow), Outcome::Denied);
            // Audit still only warns about a held object, exempt or not.
            let j = exempt(Mode::Audit);
            assert_eq!(j.holding(true).outcome(Class::Storage), Outcome::Warned);
        });
    }
}
