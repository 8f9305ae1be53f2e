//! An expiration moved later lives on the Backup only: Velero's sync would bring a deleted Backup
//! back from storage with the expiration it was uploaded with, for the TTL collector to delete
//! its data then. The mutating webhook keeps the uploaded one, and neuter mode keeps the Backup.

use backup_guard::policy::{Mode, Outcome, Policy, Reason, Resource};
use serde_json::{json, Value};

use crate::in_mode;
use crate::support::fixtures::*;

const VELERO: &str = "system:serviceaccount:velero:velero";
const ORIGINAL: &str = "backup-guard.io/original-expiration";
/// The captured Backup's expiration, as Velero set it.
const UPLOADED: &str = "2026-12-20T02:00:00Z";
const LATER: &str = "2027-06-01T00:00:00Z";

/// The Backup of the captured `kubectl delete backup` (daily-1 in velero).
fn backup() -> Value {
    review("delete-backup-by-user.json")["request"]["oldObject"].clone()
}

fn expiring(b: &Value, at: &str) -> Value {
    let mut new = b.clone();
    new["status"]["expiration"] = json!(at);
    new
}

fn original(b: &Value) -> &Value {
    &b["metadata"]["annotations"][ORIGINAL]
}

/// What the mutating webhook makes of an update from `old` to `new` by alice.
fn mutated(old: &Value, new: &Value) -> Value {
    mutated_object(
        &update_of(old, new),
        &Policy::default(),
        &index(),
        capture_day(),
    )
}

/// daily-1 after alice moved its expiration later, as the mutating webhook leaves it.
fn extended() -> Value {
    mutated(&backup(), &expiring(&backup(), LATER))
}

#[test]
fn moving_the_expiration_later_keeps_the_one_velero_uploaded() {
    let b = extended();
    assert_eq!(original(&b), UPLOADED);
    assert_eq!(b["status"]["expiration"], LATER);
    // Moved later again, the uploaded one stays; removed or changed by hand, it comes back.
    assert_eq!(
        original(&mutated(&b, &expiring(&b, "2028-01-01T00:00:00Z"))),
        UPLOADED
    );
    let mut stripped = b.clone();
    stripped["metadata"]["annotations"]
        .as_object_mut()
        .expect("annotations")
        .remove(ORIGINAL);
    assert_eq!(original(&mutated(&b, &stripped)), UPLOADED);
    let mut changed = b.clone();
    changed["metadata"]["annotations"][ORIGINAL] = json!(LATER);
    assert_eq!(original(&mutated(&b, &changed)), UPLOADED);
    // Nothing is kept for Velero's own writes, an update that leaves the expiration alone, or a
    // value written by hand on a Backup that had none.
    let later = expiring(&backup(), LATER);
    let by_velero = as_user(
        update_of(&backup(), &later),
        VELERO,
        &["system:serviceaccounts"],
    );
    let p = Policy::default();
    assert!(original(&mutated_object(&by_velero, &p, &index(), capture_day())).is_null());
    let mut labelled = backup();
    labelled["metadata"]["labels"]["team"] = json!("a");
    assert!(original(&mutated(&backup(), &labelled)).is_null());
    let mut by_hand = backup();
    by_hand["metadata"]["annotations"][ORIGINAL] = json!("2020-01-01T00:00:00Z");
    assert!(original(&mutated(&backup(), &by_hand)).is_null());
    // Mode off mutates nothing.
    let off = mutate(
        &update_of(&backup(), &later),
        &in_mode(Mode::Off),
        &index(),
        capture_day(),
    );
    assert!(off.patch.is_none());
}

#[test]
fn neuter_keeps_a_backup_whose_expiration_was_moved_later() {
    let idx = index();
    let neuter = in_mode(Mode::Neuter);
    let d = validate(&delete_of(&extended()), &neuter, &idx, capture_day());
    assert!(!d.allowed);
    assert_eq!(d.reason, Some(Reason::BackupDelete));
    for part in [
        "backup velero/daily-1 is protected",
        "but not this one: its status.expiration (2027-06-01T00:00:00Z) was moved later on the cluster only",
        "with the expiration it was uploaded with (2026-12-20T02:00:00Z)",
    ] {
        assert!(d.message.contains(part), "{part}: {}", d.message);
    }
    // The Backup as Velero left it goes, with a warning, as neuter says.
    let d = validate(&delete_of(&backup()), &neuter, &idx, capture_day());
    assert_eq!((d.allowed, d.outcome), (true, Outcome::Neutered));
    // Once the later expiration is past, or moved back, nothing is kept that expiry keeps.
    let past = at("2027-07-01T00:00:00Z");
    let d = validate(&delete_of(&extended()), &neuter, &idx, past);
    assert_eq!((d.allowed, d.outcome), (true, Outcome::Neutered));
    let back = expiring(&extended(), UPLOADED);
    let d = validate(&delete_of(&back), &neuter, &idx, capture_day());
    assert_eq!((d.allowed, d.outcome), (true, Outcome::Neutered));
    // Exempt users pass it (it is not a hold), and so does Velero's sync.
    let exempt = policy("mode: neuter\nexempt: {users: [alice]}");
    assert!(validate(&delete_of(&extended()), &exempt, &idx, capture_day()).allowed);
    let by_velero = as_user(delete_of(&extended()), VELERO, &["system:serviceaccounts"]);
    assert!(validate(&by_velero, &neuter, &idx, capture_day()).allowed);
    // Enforce refuses it as any protected backup; audit warns.
    let d = validate(
        &delete_of(&extended()),
        &Policy::default(),
        &idx,
        capture_day(),
    );
    assert!(!d.allowed);
    let d = validate(
        &delete_of(&extended()),
        &in_mode(Mode::Audit),
        &idx,
        capture_day(),
    );
    assert_eq!((d.allowed, d.outcome), (true, Outcome::Warned));
    assert!(
        d.warnings
            .iter()
            .any(|w| w.contains("its expiration was moved later on the cluster only")),
        "{:?}",
        d.warnings
    );
}

#[test]
fn neuter_refuses_a_namespace_holding_a_backup_whose_expiration_was_moved_later() {
    let mut idx = index();
    let mut kept = extended();
    kept["metadata"]["namespace"] = json!("keep");
    apply(&mut idx, Resource::Backup, &kept);
    let mut gone = backup();
    gone["metadata"]["namespace"] = json!("keep");
    gone["metadata"]["name"] = json!("daily-0");
    apply(&mut idx, Resource::Backup, &gone);
    let mut r = review("delete-namespace-velero.json");
    r["request"]["name"] = json!("keep");
    let neuter = in_mode(Mode::Neuter);
    let d = validate(&r, &neuter, &idx, capture_day());
    assert!(!d.allowed);
    assert_eq!(d.reason, Some(Reason::NamespaceDelete));
    assert!(
        d.message.contains(
            "namespace keep holds 1 Velero backup(s) whose status.expiration was moved later on the cluster (daily-1)"
        ),
        "{}",
        d.message
    );
    // Not for an exempt user either: the cascade's DELETEs of it would be refused.
    let exempt = policy("mode: neuter\nexempt: {users: [alice]}");
    assert!(!validate(&r, &exempt, &idx, capture_day()).allowed);
    // Once that expiration is past, the namespace goes as neuter says.
    let d = validate(&r, &neuter, &idx, at("2027-07-01T00:00:00Z"));
    assert_eq!((d.allowed, d.outcome), (true, Outcome::Neutered));
}

fn create_of(obj: &Value) -> Value {
    let mut r = update_of(obj, obj);
    r["request"]["operation"] = json!("CREATE");
    r["request"]["oldObject"] = Value::Null;
    r
}

#[test]
fn a_kept_expiration_written_by_hand_only_makes_the_guard_stricter() {
    let p = Policy::default();
    // Created with a value far ahead (copied from somewhere): bounded by its own expiration, so
    // moving the expiration later is still seen.
    let mut copied = backup();
    copied["metadata"]["annotations"][ORIGINAL] = json!("2999-01-01T00:00:00Z");
    let created = mutated_object(&create_of(&copied), &p, &index(), capture_day());
    assert_eq!(original(&created), UPLOADED);
    let b = mutated(&created, &expiring(&created, LATER));
    assert_eq!(original(&b), UPLOADED);
    let d = validate(
        &delete_of(&b),
        &in_mode(Mode::Neuter),
        &index(),
        capture_day(),
    );
    assert!(!d.allowed, "{}", d.message);
    // The same bound holds for one already stored that way.
    let mut stored = backup();
    stored["metadata"]["annotations"][ORIGINAL] = json!("2999-01-01T00:00:00Z");
    assert_eq!(
        original(&mutated(&stored, &expiring(&stored, LATER))),
        UPLOADED
    );
}

#[test]
fn where_the_mutating_webhook_did_not_run_the_update_is_refused() {
    let idx = index();
    let later = update_of(&backup(), &expiring(&backup(), LATER));
    let mut stripped = extended();
    stripped["metadata"]["annotations"]
        .as_object_mut()
        .expect("annotations")
        .remove(ORIGINAL);
    for mode in [Mode::Enforce, Mode::Neuter, Mode::Audit] {
        let p = in_mode(mode);
        // Moved later, but nothing kept.
        let d = validate(&later, &p, &idx, capture_day());
        assert!(!d.allowed, "{mode}");
        assert_eq!(d.reason, Some(Reason::StampWritten));
        assert!(
            d.message
                .contains("is written only by backup-guard's mutating webhook")
                && d.message.contains("here: 2026-12-20T02:00:00Z"),
            "{}",
            d.message
        );
        // The kept value removed.
        let d = validate(&update_of(&extended(), &stripped), &p, &idx, capture_day());
        assert!(!d.allowed, "{mode}");
        // As the mutating webhook leaves them, both pass.
        let mutated = update_of(&backup(), &extended());
        assert!(
            validate(&mutated, &p, &idx, capture_day()).allowed,
            "{mode}"
        );
        let kept = update_of(
            &extended(),
            &mutated_object(&update_of(&extended(), &stripped), &p, &idx, capture_day()),
        );
        assert!(validate(&kept, &p, &idx, capture_day()).allowed, "{mode}");
    }
    assert!(validate(&later, &in_mode(Mode::Off), &idx, capture_day()).allowed);
}

#[test]
fn a_delete_request_and_a_later_expiration_in_one_update_both_hold() {
    let p = Policy::default();
    let idx = index();
    let mut bare = backup();
    bare["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("annotations");
    let mut new = expiring(&bare, LATER);
    new["metadata"]["annotations"] = json!({"backup-guard.io/delete-request": "retired"});
    let r = update_of(&bare, &new);
    let b = mutated_object(&r, &p, &idx, capture_day());
    assert_eq!(original(&b), UPLOADED);
    assert_eq!(
        b["metadata"]["annotations"]["backup-guard.io/delete-requested-by"],
        "alice"
    );
    // Signed and kept: the webhook lets the update through, and the backup is sanctioned.
    assert!(validate(&update_of(&bare, &b), &p, &idx, capture_day()).allowed);
    assert!(validate(&delete_of(&b), &p, &idx, capture_day()).allowed);
}

#[test]
fn a_storage_deleting_finalizer_does_not_hide_the_later_expiration() {
    let mut b = extended();
    b["metadata"]["finalizers"] = json!(["gc.ark.heptio.com"]);
    let d = validate(
        &delete_of(&b),
        &in_mode(Mode::Neuter),
        &index(),
        capture_day(),
    );
    assert!(!d.allowed);
    assert!(
        d.message.contains("was moved later on the cluster only"),
        "{}",
        d.message
    );
}

#[test]
fn an_expiration_moved_later_before_the_guard_kept_it_is_told_by_start_plus_ttl() {
    let idx = index();
    let neuter = in_mode(Mode::Neuter);
    // daily-1 started 2026-11-20T02:00:00Z with spec.ttl 720h: Velero's expiration is no later
    // than 2026-12-20T02:00:00Z. Moved later with nothing kept (before the guard ran):
    let before = expiring(&backup(), LATER);
    let d = validate(&delete_of(&before), &neuter, &idx, capture_day());
    assert!(!d.allowed);
    assert!(
        d.message.contains(
            "uploaded with (no later than 2026-12-20T02:00:01Z: its start plus spec.ttl)"
        ),
        "{}",
        d.message
    );
    let mut r = review("delete-namespace-velero.json");
    r["request"]["name"] = json!("before");
    let mut kept = before.clone();
    kept["metadata"]["namespace"] = json!("before");
    let mut with_it = idx;
    apply(&mut with_it, Resource::Backup, &kept);
    assert!(!validate(&r, &neuter, &with_it, capture_day()).allowed);
    // Without a start, or with spec.ttl lengthened as far, it cannot be told: not kept.
    let mut no_start = before.clone();
    no_start["status"]
        .as_object_mut()
        .expect("status")
        .remove("startTimestamp");
    let d = validate(&delete_of(&no_start), &neuter, &index(), capture_day());
    assert_eq!((d.allowed, d.outcome), (true, Outcome::Neutered));
    let mut longer = before.clone();
    longer["spec"]["ttl"] = json!("8760h0m0s");
    let d = validate(&delete_of(&longer), &neuter, &index(), capture_day());
    assert_eq!((d.allowed, d.outcome), (true, Outcome::Neutered));
}

#[test]
fn neuter_keeps_the_backup_crd_while_an_expiration_was_moved_later() {
    let mut idx = index();
    idx.remove(Resource::Backup, "velero", "weekly-3");
    let mut kept = extended();
    kept["metadata"]["namespace"] = json!("keep");
    apply(&mut idx, Resource::Backup, &kept);
    let r = review("delete-crd-backups.json");
    let d = validate(&r, &in_mode(Mode::Neuter), &idx, capture_day());
    assert!(!d.allowed);
    assert_eq!(d.reason, Some(Reason::CrdDelete));
    assert!(
        d.message.contains(
            "still holds 1 Backup(s) whose status.expiration was moved later on the cluster (keep/daily-1)"
        ),
        "{}",
        d.message
    );
    // An exempt user may (giving the later expiration up); past it, neuter lets the CRD go.
    let exempt = policy("mode: neuter\nexempt: {users: [admin]}");
    assert!(validate(&r, &exempt, &idx, capture_day()).allowed);
    let d = validate(&r, &in_mode(Mode::Neuter), &idx, at("2027-07-01T00:00:00Z"));
    assert_eq!((d.allowed, d.outcome), (true, Outcome::Neutered));
}

#[test]
fn a_move_before_velero_is_done_is_uploaded_and_not_kept() {
    // Until a backup is done, Velero's finalizing step uploads the Backup as the cluster has it.
    let mut finalizing = backup();
    finalizing["status"]["phase"] = json!("Finalizing");
    assert!(original(&mutated(&finalizing, &expiring(&finalizing, LATER))).is_null());
    // A kept value that was itself moved later is not named as the uploaded one.
    let mut twice = expiring(&backup(), "2027-01-01T00:00:00Z");
    twice["metadata"]["annotations"][ORIGINAL] = json!("2027-01-01T00:00:00Z");
    let twice = mutated(&twice, &expiring(&twice, LATER));
    let d = validate(
        &delete_of(&twice),
        &in_mode(Mode::Neuter),
        &index(),
        capture_day(),
    );
    assert!(
        d.message.contains(
            "uploaded with (no later than 2026-12-20T02:00:01Z: its start plus spec.ttl)"
        ),
        "{}",
        d.message
    );
}
