//! Sanctioning a deletion: the stamped request, stale and copied stamps, forgeries, two-person
//! approval, holds.

use backup_guard::policy::stamps::{
    APPROVED_BY, DELETE_APPROVAL, HOLD, REQUESTED_AT, REQUESTED_BY, SIGNATURE,
};
use backup_guard::policy::{Mode, Policy, Reason, Resource};
use serde_json::json;

use crate::in_mode;
use crate::support::fixtures::*;

#[test]
fn request_is_stamped_signed_and_then_sanctions_deletion() {
    let p = Policy::default();
    let mut idx = index();
    let now = capture_day();
    let m = mutate(&review("update-backup-delete-request.json"), &p, &idx, now);
    assert!(m.allowed);
    let patch = serde_json::to_value(m.patch.as_ref().expect("stamps patch")).expect("json");
    let paths: Vec<&str> = patch
        .as_array()
        .expect("ops")
        .iter()
        .map(|op| op["path"].as_str().expect("path"))
        .collect();
    assert!(
        paths.contains(&"/metadata/annotations/backup-guard.io~1delete-requested-by"),
        "{paths:?}"
    );
    let stamped = requested_daily_2(&p, &idx, now);
    let ann = &stamped["metadata"]["annotations"];
    assert_eq!(ann[REQUESTED_BY], "alice");
    assert_eq!(ann[REQUESTED_AT], "2026-11-23T21:00:00Z");
    assert!(ann[SIGNATURE].as_str().is_some_and(|s| s.len() == 44));
    // The validating webhook accepts the guard's own stamps.
    let update = update_of(
        &review("update-backup-delete-request.json")["request"]["oldObject"],
        &stamped,
    );
    assert!(validate(&update, &p, &idx, now).allowed);
    // Mutating the stamped object again changes nothing (idempotent).
    let again = update_of(
        &review("update-backup-delete-request.json")["request"]["oldObject"],
        &stamped,
    );
    assert_eq!(mutated_object(&again, &p, &idx, now), stamped);
    // Deleting it is now sanctioned, also as part of a namespace cascade; the DBR too.
    assert!(validate(&delete_of(&stamped), &p, &idx, now + 60).allowed);
    apply(&mut idx, Resource::Backup, &stamped);
    let mut dbr = review("create-dbr-by-user.json");
    dbr["request"]["object"]["spec"]["backupName"] = json!("daily-2");
    assert!(validate(&dbr, &p, &idx, now + 60).allowed);
    let protected = idx.protected_in("velero", &p, now + 60, 10);
    assert_eq!(protected.count, 7);
    assert!(!protected.names.contains(&"daily-2".to_string()));
}

#[test]
fn stale_request_sanctions_nothing() {
    let p = Policy::default();
    let idx = index();
    let stamped = requested_daily_2(&p, &idx, capture_day());
    let d = validate(&delete_of(&stamped), &p, &idx, capture_day() + 86_400 + 1);
    assert!(!d.allowed);
    assert!(d.message.contains("has expired"), "{}", d.message);
}

#[test]
fn stamps_copied_to_another_backup_are_inert() {
    let p = Policy::default();
    let idx = index();
    let mut copied = requested_daily_2(&p, &idx, capture_day());
    copied["metadata"]["uid"] = json!("00000000-0000-0000-0000-000000000000");
    let d = validate(&delete_of(&copied), &p, &idx, capture_day());
    assert!(!d.allowed);
    assert!(
        d.message.contains("no valid backup-guard stamp"),
        "{}",
        d.message
    );
}

#[test]
fn forged_stamps_are_refused_in_every_mode_but_off() {
    let idx = index();
    let r = review("update-backup-forged-stamp.json");
    for mode in [Mode::Enforce, Mode::Neuter, Mode::Audit] {
        let d = validate(&r, &in_mode(mode), &idx, capture_day());
        assert!(!d.allowed, "{mode}");
        assert_eq!(d.reason, Some(Reason::StampWritten));
        assert!(
            d.message.contains("written only by backup-guard"),
            "{}",
            d.message
        );
    }
    assert!(validate(&r, &in_mode(Mode::Off), &idx, capture_day()).allowed);
}

fn approval_of(
    stamped: &serde_json::Value,
    approver: &str,
    groups: &[&str],
    p: &Policy,
) -> (serde_json::Value, serde_json::Value) {
    let mut approved = stamped.clone();
    approved["metadata"]["annotations"][DELETE_APPROVAL] = json!("ok");
    let r = as_user(update_of(stamped, &approved), approver, groups);
    let obj = mutated_object(&r, p, &index(), capture_day() + 120);
    let mut final_review = r.clone();
    final_review["request"]["object"] = obj.clone();
    (final_review, obj)
}

#[test]
fn two_person_approval() {
    let p = policy("approval: {required: true, approvers: {groups: [backup-admins]}}");
    let idx = index();
    let stamped = requested_daily_2(&p, &idx, capture_day());
    let later = capture_day() + 300;
    let d = validate(&delete_of(&stamped), &p, &idx, later);
    assert!(!d.allowed);
    assert!(d.message.contains("awaits approval"), "{}", d.message);
    assert!(
        d.message
            .contains("backup-guard.io/delete-approval='<note>'"),
        "{}",
        d.message
    );

    // bob, a backup-admin, approves: stamped, and deletion is sanctioned.
    let (r, bob_approved) = approval_of(&stamped, "bob", &["backup-admins"], &p);
    assert_eq!(bob_approved["metadata"]["annotations"][APPROVED_BY], "bob");
    assert!(validate(&r, &p, &idx, later).allowed);
    assert!(validate(&delete_of(&bob_approved), &p, &idx, later).allowed);

    // alice approving her own request is refused, and sanctions nothing.
    let (r, self_approved) = approval_of(&stamped, "alice", &["backup-admins"], &p);
    let d = validate(&r, &p, &idx, later);
    assert!(!d.allowed);
    assert!(d.message.contains("two-person rule"), "{}", d.message);
    assert!(!validate(&delete_of(&self_approved), &p, &idx, later).allowed);

    // mallory is not an approver.
    let (r, _) = approval_of(&stamped, "mallory", &[], &p);
    let d = validate(&r, &p, &idx, later);
    assert!(!d.allowed);
    assert!(
        d.message
            .contains("mallory is not in the policy's approval.approvers"),
        "{}",
        d.message
    );
}

#[test]
fn approving_a_request_the_guard_never_stamped_is_refused() {
    let d = validate(
        &review("update-backup-delete-approval.json"),
        &Policy::default(),
        &index(),
        capture_day(),
    );
    // bob is a backup-admin, but alice's request was set while no guard ran.
    let m = mutate(
        &review("update-backup-delete-approval.json"),
        &Policy::default(),
        &index(),
        capture_day(),
    );
    assert!(m.patch.is_none());
    assert!(!d.allowed);
    assert!(
        d.message.contains("no valid backup-guard stamp"),
        "{}",
        d.message
    );
    // The way out: a different reason, which the mutating webhook stamps.
    assert!(
        d.message.contains(
            "`kubectl annotate --overwrite backup daily-2 -n velero backup-guard.io/delete-request='<a different reason>'`"
        ),
        "{}",
        d.message
    );
}

#[test]
fn hold_release_needs_a_hold_manager() {
    let idx = index();
    let r = review("update-backup-remove-hold.json");
    let d = validate(&r, &Policy::default(), &idx, capture_day());
    assert!(!d.allowed);
    assert_eq!(d.reason, Some(Reason::HoldReleased));
    assert!(
        d.message.contains("mallory is not a hold manager"),
        "{}",
        d.message
    );
    let bob = as_user(r, "bob", &["backup-admins"]);
    assert!(validate(&bob, &Policy::default(), &idx, capture_day()).allowed);
}

#[test]
fn held_backup_cannot_be_deleted_even_when_requested() {
    let p = Policy::default();
    let idx = index();
    let mut stamped = requested_daily_2(&p, &idx, capture_day());
    stamped["metadata"]["labels"][HOLD] = json!("true");
    let d = validate(&delete_of(&stamped), &p, &idx, capture_day());
    assert!(!d.allowed);
    assert!(
        d.message
            .contains("kubectl label backup daily-2 -n velero backup-guard.io/hold-"),
        "{}",
        d.message
    );
}

#[test]
fn a_stale_or_unstamped_request_is_renewed_by_changing_its_value_as_the_message_says() {
    let p = Policy::default();
    let idx = index();
    let now = capture_day();
    let stamped = requested_daily_2(&p, &idx, now);
    let later = now + 86_400 + 1;
    let stale = validate(&delete_of(&stamped), &p, &idx, later);
    let mut copied = stamped.clone();
    copied["metadata"]["uid"] = json!("00000000-0000-0000-0000-000000000000");
    let unverified = validate(&delete_of(&copied), &p, &idx, now);
    for d in [&stale, &unverified] {
        assert!(!d.allowed);
        let m = &d.message;
        assert!(
            m.contains("kubectl annotate --overwrite backup daily-2 -n velero backup-guard.io/delete-request='<a different reason>'"),
            "{m}"
        );
        assert!(
            m.contains("kubectl annotate backup daily-2 -n velero backup-guard.io/delete-request-"),
            "{m}"
        );
        assert!(!m.contains("set the request again"), "{m}");
    }
    // What the message says is what restamps: the same value again is no change...
    let same = update_of(&stamped, &stamped);
    assert!(mutate(&same, &p, &idx, later).patch.is_none());
    // ...a different reason is stamped anew and sanctions the deletion.
    let mut renewed = stamped.clone();
    renewed["metadata"]["annotations"]["backup-guard.io/delete-request"] = json!("still unneeded");
    let restamped = mutated_object(&update_of(&stamped, &renewed), &p, &idx, later);
    assert!(validate(&delete_of(&restamped), &p, &idx, later + 60).allowed);
    // ...and so is a request removed, then set again (the same reason).
    let mut removed = stamped.clone();
    for k in [
        "backup-guard.io/delete-request",
        REQUESTED_BY,
        REQUESTED_AT,
        SIGNATURE,
    ] {
        removed["metadata"]["annotations"]
            .as_object_mut()
            .expect("annotations")
            .remove(k);
    }
    let cleared = mutated_object(&update_of(&stamped, &removed), &p, &idx, later);
    let mut again = cleared.clone();
    again["metadata"]["annotations"]["backup-guard.io/delete-request"] =
        stamped["metadata"]["annotations"]["backup-guard.io/delete-request"].clone();
    let restamped = mutated_object(&update_of(&cleared, &again), &p, &idx, later);
    assert!(validate(&delete_of(&restamped), &p, &idx, later + 60).allowed);
}
