//! The user's words on an object (request, approval, hold), the guard's stamps, and their signature.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::config::Policy;
use super::request::Meta;

/// "please delete this backup"; value = the reason.
pub const DELETE_REQUEST: &str = "backup-guard.io/delete-request";
/// Stamped: who set the request.
pub const REQUESTED_BY: &str = "backup-guard.io/delete-requested-by";
/// Stamped: when the request was set.
pub const REQUESTED_AT: &str = "backup-guard.io/delete-requested-at";
/// Approval note by a second person.
pub const DELETE_APPROVAL: &str = "backup-guard.io/delete-approval";
/// Stamped: who approved.
pub const APPROVED_BY: &str = "backup-guard.io/delete-approved-by";
/// Stamped: when they approved.
pub const APPROVED_AT: &str = "backup-guard.io/delete-approved-at";
/// Stamped: HMAC over uid, namespace, name and the values above.
pub const SIGNATURE: &str = "backup-guard.io/delete-signature";
/// Label: legal hold.
pub const HOLD: &str = "backup-guard.io/hold";
/// Finalizer: storage cleanup in progress.
pub const CLEANUP_FINALIZER: &str = "backup-guard.io/cleanup";
/// The deletion policy a VolumeSnapshotContent had before the guard set `Retain`.
pub const ORIGINAL_DELETION_POLICY: &str = "backup-guard.io/original-deletion-policy";
/// A Backup's `status.expiration` as Velero set it (and uploaded it in `velero-backup.json`),
/// kept by the mutating webhook once anyone else moves the expiration later.
pub const ORIGINAL_EXPIRATION: &str = "backup-guard.io/original-expiration";
/// Velero's label naming the backup an object belongs to.
pub const VELERO_BACKUP_NAME: &str = "velero.io/backup-name";

/// The annotations only the mutating webhook writes.
pub const STAMP_KEYS: [&str; 5] = [
    REQUESTED_BY,
    REQUESTED_AT,
    APPROVED_BY,
    APPROVED_AT,
    SIGNATURE,
];

/// Whether the legal-hold label is set.
pub fn is_held(meta: &Meta) -> bool {
    meta.labels.get(HOLD).is_some_and(|v| v == "true")
}

fn annotation<'a>(meta: &'a Meta, key: &str) -> &'a str {
    meta.annotations.get(key).map_or("", String::as_str)
}

/// HMAC-SHA256 over the object's identity and its request/approval values and stamps.
///
/// Fields are length-prefixed so that no two different annotation sets share a message.
fn mac(key: &[u8], meta: &Meta) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    let fields = [
        meta.uid.as_str(),
        meta.namespace.as_str(),
        meta.name.as_str(),
        annotation(meta, DELETE_REQUEST),
        annotation(meta, REQUESTED_BY),
        annotation(meta, REQUESTED_AT),
        annotation(meta, DELETE_APPROVAL),
        annotation(meta, APPROVED_BY),
        annotation(meta, APPROVED_AT),
    ];
    for field in fields {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field.as_bytes());
    }
    mac
}

/// The signature annotation's value (base64) for the object as it stands.
pub fn sign(key: &[u8], meta: &Meta) -> String {
    base64::engine::general_purpose::STANDARD.encode(mac(key, meta).finalize().into_bytes())
}

/// Whether the stamps on `meta` are the guard's own: signed, or absent altogether.
pub fn stamps_verify(key: &[u8], meta: &Meta) -> bool {
    match meta.annotations.get(SIGNATURE) {
        Some(sig) => base64::engine::general_purpose::STANDARD
            .decode(sig)
            .is_ok_and(|given| mac(key, meta).verify_slice(&given).is_ok()),
        None => STAMP_KEYS[..4]
            .iter()
            .all(|k| !meta.annotations.contains_key(*k)),
    }
}

/// One stamp: who and when (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub by: Box<str>,
    pub at: i64,
}

/// What decides whether an object is sanctioned, extracted once (the index keeps this).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SanctionFacts {
    pub held: bool,
    /// Present only when the request annotation is set, stamped and the signature verifies.
    pub request: Option<Stamp>,
    /// Present only when the approval annotation is set, stamped and the signature verifies.
    pub approval: Option<Stamp>,
    /// A request annotation is set but its stamps are missing or do not verify.
    pub unverified_request: bool,
}

fn stamp(meta: &Meta, value: &str, by: &str, at: &str) -> Option<Stamp> {
    meta.annotations
        .get(value)
        .filter(|v| !v.trim().is_empty())?;
    let by = meta.annotations.get(by).filter(|v| !v.is_empty())?;
    let at = meta.annotations.get(at)?.parse::<Timestamp>().ok()?;
    Some(Stamp {
        by: by.as_str().into(),
        at: at.as_second(),
    })
}

impl SanctionFacts {
    /// Reads the facts from an object's metadata, verifying the signature with `key`.
    pub fn of(meta: &Meta, key: &[u8]) -> SanctionFacts {
        let held = is_held(meta);
        let has_request = meta
            .annotations
            .get(DELETE_REQUEST)
            .is_some_and(|v| !v.trim().is_empty());
        if !has_request {
            return SanctionFacts {
                held,
                ..Default::default()
            };
        }
        let verified = meta.annotations.contains_key(SIGNATURE) && stamps_verify(key, meta);
        if !verified {
            return SanctionFacts {
                held,
                unverified_request: true,
                ..Default::default()
            };
        }
        SanctionFacts {
            held,
            request: stamp(meta, DELETE_REQUEST, REQUESTED_BY, REQUESTED_AT),
            approval: stamp(meta, DELETE_APPROVAL, APPROVED_BY, APPROVED_AT),
            unverified_request: false,
        }
    }

    /// Whether this object might be sanctioned at some `now` (cheap pre-filter for the index).
    pub fn may_be_sanctioned(&self) -> bool {
        !self.held && self.request.is_some()
    }
}

/// Why an object is not sanctioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsanctioned {
    /// No delete request at all.
    NoRequest,
    /// A request exists but its stamps are missing or forged.
    Unverified,
    /// On legal hold.
    Held,
    /// The request (or approval) is older than `request.ttl`.
    Stale,
    /// Policy requires an approval and there is none.
    NeedsApproval,
    /// The approver is the requester.
    SelfApproved,
}

impl Unsanctioned {
    /// A short explanation for messages.
    pub fn explain(self) -> &'static str {
        match self {
            Unsanctioned::NoRequest => "no one has requested its deletion",
            Unsanctioned::Unverified => "its delete request carries no valid backup-guard stamp",
            Unsanctioned::Held => "it is on legal hold",
            Unsanctioned::Stale => "its delete request has expired (older than request.ttl)",
            Unsanctioned::NeedsApproval => "its delete request awaits approval by a second person",
            Unsanctioned::SelfApproved => "it was approved by the requester themself",
        }
    }
}

/// Whether the facts sanction deletion under `policy` at `now` (unix seconds).
pub fn sanction(facts: &SanctionFacts, policy: &Policy, now: i64) -> Result<(), Unsanctioned> {
    if facts.held {
        return Err(Unsanctioned::Held);
    }
    let Some(request) = &facts.request else {
        return Err(if facts.unverified_request {
            Unsanctioned::Unverified
        } else {
            Unsanctioned::NoRequest
        });
    };
    let ttl = policy.request.ttl.0;
    if now - request.at > ttl {
        return Err(Unsanctioned::Stale);
    }
    if policy.approval.required {
        let Some(approval) = &facts.approval else {
            return Err(Unsanctioned::NeedsApproval);
        };
        if approval.by == request.by {
            return Err(Unsanctioned::SelfApproved);
        }
        if now - approval.at > ttl {
            return Err(Unsanctioned::Stale);
        }
    }
    Ok(())
}

/// The value Velero writes into a `velero.io/backup-name` label: the name itself, or for names
/// longer than a label value may be, its first 57 characters and 6 hex digits of its SHA-256
/// (Velero's `label.GetValidName`).
pub fn label_value(name: &str) -> String {
    const MAX: usize = 63;
    if name.len() <= MAX {
        return name.to_string();
    }
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    // Object names are ASCII (DNS-1123), so byte slicing stays on character boundaries.
    let head: String = name.chars().take(MAX - 6).collect();
    format!("{head}{}", &hex[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> Meta {
        Meta {
            name: "daily-1".into(),
            namespace: "velero".into(),
            uid: "uid-1".into(),
            annotations: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn signed(pairs: &[(&str, &str)]) -> Meta {
        let mut m = meta(pairs);
        let sig = sign(b"k", &m);
        m.annotations.insert(SIGNATURE.into(), sig);
        m
    }

    const REQ: [(&str, &str); 3] = [
        (DELETE_REQUEST, "gone"),
        (REQUESTED_BY, "alice"),
        (REQUESTED_AT, "2026-11-23T10:00:00Z"),
    ];

    #[test]
    fn signature_binds_the_uid() {
        let m = signed(&REQ);
        assert!(stamps_verify(b"k", &m));
        let mut moved = m.clone();
        moved.uid = "uid-2".into();
        assert!(
            !stamps_verify(b"k", &moved),
            "stamps copied to a new object are inert"
        );
        assert!(!stamps_verify(b"other-key", &m));
    }

    #[test]
    fn no_stamps_at_all_verifies_but_stray_stamps_do_not() {
        assert!(stamps_verify(b"k", &meta(&[])));
        assert!(!stamps_verify(b"k", &meta(&[(REQUESTED_BY, "admin")])));
    }

    #[test]
    fn signed_request_sanctions_until_stale() {
        let facts = SanctionFacts::of(&signed(&REQ), b"k");
        let p = Policy::default();
        let at = Timestamp::from_second(facts.request.as_ref().expect("stamped").at)
            .expect("valid")
            .as_second();
        assert_eq!(sanction(&facts, &p, at + 60), Ok(()));
        assert_eq!(sanction(&facts, &p, at + 86_401), Err(Unsanctioned::Stale));
    }

    #[test]
    fn forged_or_held_requests_sanction_nothing() {
        let forged = SanctionFacts::of(&meta(&REQ), b"k");
        assert_eq!(
            sanction(&forged, &Policy::default(), 0),
            Err(Unsanctioned::Unverified)
        );
        let mut held = signed(&REQ);
        held.labels.insert(HOLD.into(), "true".into());
        let facts = SanctionFacts::of(&held, b"k");
        assert_eq!(
            sanction(&facts, &Policy::default(), 0),
            Err(Unsanctioned::Held)
        );
    }

    #[test]
    fn approval_rule_needs_a_second_person() {
        let mut p = Policy::default();
        p.approval.required = true;
        let now = "2026-11-23T10:05:00Z"
            .parse::<Timestamp>()
            .expect("ts")
            .as_second();
        let facts = SanctionFacts::of(&signed(&REQ), b"k");
        assert_eq!(sanction(&facts, &p, now), Err(Unsanctioned::NeedsApproval));
        let mut pairs = REQ.to_vec();
        pairs.extend([
            (DELETE_APPROVAL, "ok"),
            (APPROVED_BY, "alice"),
            (APPROVED_AT, "2026-11-23T10:01:00Z"),
        ]);
        let facts = SanctionFacts::of(&signed(&pairs), b"k");
        assert_eq!(sanction(&facts, &p, now), Err(Unsanctioned::SelfApproved));
        pairs[4] = (APPROVED_BY, "bob");
        let facts = SanctionFacts::of(&signed(&pairs), b"k");
        assert_eq!(sanction(&facts, &p, now), Ok(()));
    }
}
