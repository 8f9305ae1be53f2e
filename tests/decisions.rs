//! Every guarded path of the contract, decided from AdmissionReviews captured from a real
//! kube-apiserver 1.20.2 (tests/fixtures/admission/README.md says how each was made).

mod support;

use backup_guard::policy::stamps::{
    APPROVED_BY, DELETE_APPROVAL, HOLD, REQUESTED_AT, REQUESTED_BY, SIGNATURE,
};
use backup_guard::policy::{Actor, Mode, Outcome, Policy, Reason, Resource};
use serde_json::json;
use support::fixtures::*;

const MODES: [Mode; 4] = [Mode::Enforce, Mode::Neuter, Mode::Audit, Mode::Off];

fn in_mode(mode: Mode) -> Policy {
    policy(&format!("mode: {mode}\n"))
}

#[test]
fn kubectl_delete_backup_is_denied_with_the_command_that_would_sanction_it() {
    let d = validate(
        &review("delete-backup-by-user.json"),
        &Policy::default(),
        &index(),
        capture_day(),
    );
    assert!(!d.allowed);
    assert_eq!(d.outcome, Outcome::Denied);
    assert_eq!(d.reason, Some(Reason::BackupDelete));
    assert!(
        d.message.contains("backup velero/daily-1 is protected"),
        "{}",
        d.message
    );
    assert!(
        d.message.contains(
            "kubectl annotate backup daily-1 -n velero backup-guard.io/delete-request='<reason>'"
        ),
        "{}",
        d.message
    );
    assert_eq!(d.blocked, Some((Resource::Backup, Actor::User)));
}

#[test]
fn dry_run_delete_gets_the_same_verdict() {
    let idx = index();
    let real = validate(
        &review("delete-backup-by-user.json"),
        &Policy::default(),
        &idx,
        capture_day(),
    );
    let dry = validate(
        &review("delete-backup-dry-run.json"),
        &Policy::default(),
        &idx,
        capture_day(),
    );
    assert_eq!(
        (dry.allowed, dry.outcome, dry.message),
        (real.allowed, real.outcome, real.message)
    );
}

#[test]
fn delete_backup_in_each_mode() {
    let idx = index();
    let r = review("delete-backup-by-user.json");
    let got: Vec<_> = MODES
        .iter()
        .map(|m| {
            let d = validate(&r, &in_mode(*m), &idx, capture_day());
            (d.allowed, d.outcome, d.warnings.len())
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (false, Outcome::Denied, 0),
            (true, Outcome::Neutered, 1),
            (true, Outcome::Warned, 1),
            (true, Outcome::Allowed, 0),
        ]
    );
    let audit = validate(&r, &in_mode(Mode::Audit), &idx, capture_day());
    assert!(audit.warnings[0].len() < 120, "{}", audit.warnings[0]);
    assert!(audit.warnings[0].starts_with("backup-guard: backup velero/daily-1"));
}

#[test]
fn namespace_cascade_delete_without_a_name_is_read_from_old_object() {
    let d = validate(
        &review("delete-backup-namespace-cascade.json"),
        &Policy::default(),
        &index(),
        capture_day(),
    );
    assert!(!d.allowed);
    assert!(d.message.contains("backup velero/daily-2"), "{}", d.message);
    // Its request annotation was written without the guard: not stamped, so it sanctions nothing.
    assert!(
        d.message.contains("no valid backup-guard stamp"),
        "{}",
        d.message
    );
    assert_eq!(
        d.blocked,
        Some((Resource::Backup, Actor::NamespaceController))
    );
}

#[test]
fn kubectl_delete_namespace_velero_is_denied_naming_the_backups() {
    let d = validate(
        &review("delete-namespace-velero.json"),
        &Policy::default(),
        &index(),
        capture_day(),
    );
    assert!(!d.allowed);
    assert_eq!(d.reason, Some(Reason::NamespaceDelete));
    assert!(
        d.message
            .contains("namespace velero holds 8 protected Velero backup(s)"),
        "{}",
        d.message
    );
    let names = d
        .message
        .split('(')
        .nth(2)
        .and_then(|t| t.split(" and 3 more").next())
        .expect("names");
    let names: Vec<&str> = names.split(", ").collect();
    assert_eq!(names.len(), 5, "{}", d.message);
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted: {names:?}");
}

#[test]
fn namespace_without_backups_may_go_and_neuter_lets_the_namespace_go() {
    let mut r = review("delete-namespace-velero.json");
    r["request"]["name"] = json!("scratch");
    r["request"]["oldObject"]["metadata"]["name"] = json!("scratch");
    assert!(validate(&r, &Policy::default(), &index(), capture_day()).allowed);
    let d = validate(
        &review("delete-namespace-velero.json"),
        &in_mode(Mode::Neuter),
        &index(),
        capture_day(),
    );
    assert_eq!((d.allowed, d.outcome), (true, Outcome::Neutered));
    assert!(
        d.warnings[0].contains("8 protected backups"),
        "{:?}",
        d.warnings
    );
}

#[test]
fn garbage_collector_deleting_a_scheduled_backup_is_denied() {
    let d = validate(
        &review("delete-backup-garbage-collector.json"),
        &Policy::default(),
        &index(),
        capture_day(),
    );
    assert!(!d.allowed);
    assert_eq!(d.blocked, Some((Resource::Backup, Actor::GarbageCollector)));
}

#[test]
fn velero_backup_delete_by_a_user_is_denied_in_enforce_and_neuter() {
    let idx = index();
    for mode in [Mode::Enforce, Mode::Neuter] {
        let d = validate(
            &review("create-dbr-by-user.json"),
            &in_mode(mode),
            &idx,
            capture_day(),
        );
        assert!(!d.allowed, "{mode}");
        assert_eq!(d.reason, Some(Reason::DeleteRequestCreate));
        assert!(
            d.message
                .contains("DeleteBackupRequest for backup velero/monthly-1"),
            "{}",
            d.message
        );
    }
    let audit = validate(
        &review("create-dbr-by-user.json"),
        &in_mode(Mode::Audit),
        &idx,
        capture_day(),
    );
    assert_eq!((audit.allowed, audit.outcome), (true, Outcome::Warned));
}

#[test]
fn velero_ttl_collector_deletes_only_expired_unheld_backups() {
    let idx = index();
    let r = review("create-dbr-by-velero.json");
    let p = Policy::default();
    assert!(
        !validate(&r, &p, &idx, capture_day()).allowed,
        "not expired yet"
    );
    let expired = at("2027-01-01T00:00:00Z");
    assert!(validate(&r, &p, &idx, expired).allowed, "expired");
    assert!(
        !validate(&r, &policy("expiry: {allow: false}"), &idx, expired).allowed,
        "expiry.allow false"
    );
    // weekly-3 is on legal hold.
    let mut held = r.clone();
    held["request"]["object"]["spec"]["backupName"] = json!("weekly-3");
    let d = validate(&held, &p, &idx, expired);
    assert!(!d.allowed);
    assert!(d.message.contains("legal hold"), "{}", d.message);
    // A user cannot pose as the collector.
    assert!(!validate(&review("create-dbr-by-user.json"), &p, &idx, expired).allowed);
}

#[test]
fn delete_request_for_an_unknown_backup_fails_closed() {
    let mut r = review("create-dbr-by-user.json");
    r["request"]["object"]["spec"]["backupName"] = json!("no-such-backup");
    let d = validate(&r, &Policy::default(), &index(), capture_day());
    assert!(!d.allowed);
    assert!(
        d.message.contains("does not know this backup"),
        "{}",
        d.message
    );
}

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
fn ttl_shortening_and_expiration_tampering_are_denied() {
    let idx = index();
    for (fixture, reason) in [
        ("update-backup-shorten-ttl.json", Reason::TtlShortened),
        (
            "update-backup-expiration-earlier.json",
            Reason::ExpirationMovedEarlier,
        ),
    ] {
        for mode in [Mode::Enforce, Mode::Neuter] {
            let d = validate(&review(fixture), &in_mode(mode), &idx, capture_day());
            assert!(!d.allowed, "{fixture} {mode}");
            assert_eq!(d.reason, Some(reason));
        }
        let d = validate(&review(fixture), &in_mode(Mode::Audit), &idx, capture_day());
        assert_eq!((d.allowed, d.outcome), (true, Outcome::Warned));
    }
    let d = validate(
        &review("update-backup-shorten-ttl.json"),
        &Policy::default(),
        &idx,
        capture_day(),
    );
    assert!(
        d.message
            .contains("shortens spec.ttl from 720h0m0s to 1h0m0s"),
        "{}",
        d.message
    );
    // Lengthening is fine.
    let mut longer = review("update-backup-shorten-ttl.json");
    longer["request"]["object"]["spec"]["ttl"] = json!("2160h0m0s");
    assert!(validate(&longer, &Policy::default(), &idx, capture_day()).allowed);
}

#[test]
fn crd_deletion_is_denied_while_backups_exist() {
    let d = validate(
        &review("delete-crd-backups.json"),
        &Policy::default(),
        &index(),
        capture_day(),
    );
    assert!(!d.allowed);
    assert_eq!(d.reason, Some(Reason::CrdDelete));
    assert!(
        d.message.contains("still holds 8 backups object(s)"),
        "{}",
        d.message
    );
    let empty = backup_guard::index::Index::new();
    assert!(
        validate(
            &review("delete-crd-backups.json"),
            &Policy::default(),
            &empty,
            capture_day()
        )
        .allowed
    );
}

#[test]
fn storage_location_deletion_is_denied_while_backups_use_it() {
    let d = validate(
        &review("delete-bsl-default.json"),
        &Policy::default(),
        &index(),
        capture_day(),
    );
    assert!(!d.allowed);
    assert_eq!(d.reason, Some(Reason::StorageLocationDelete));
    assert!(
        d.message.contains("where 8 backup(s) are stored"),
        "{}",
        d.message
    );
}

#[test]
fn velero_snapshot_content_created_with_delete_comes_back_retain() {
    let r = review("create-vsc-delete-policy.json");
    let obj = mutated_object(&r, &Policy::default(), &index(), capture_day());
    assert_eq!(obj["spec"]["deletionPolicy"], "Retain");
    assert_eq!(
        obj["metadata"]["annotations"]["backup-guard.io/original-deletion-policy"],
        "Delete"
    );
    assert!(mutate(&r, &in_mode(Mode::Audit), &index(), capture_day())
        .patch
        .is_none());
    assert!(mutate(
        &r,
        &policy("snapshots: {retainContents: false}"),
        &index(),
        capture_day()
    )
    .patch
    .is_none());
}

#[test]
fn deleting_velero_snapshots_that_would_delete_storage_is_denied() {
    let idx = index();
    for fixture in ["delete-vsc.json", "delete-vs.json"] {
        for mode in [Mode::Enforce, Mode::Neuter] {
            let d = validate(&review(fixture), &in_mode(mode), &idx, capture_day());
            assert!(!d.allowed, "{fixture} {mode}");
            assert_eq!(d.reason, Some(Reason::SnapshotDelete));
        }
    }
    // Once the content is Retain, deleting the VolumeSnapshot loses nothing.
    let mut retained = index();
    let vsc = review("create-vsc-delete-policy.json");
    let mut obj = mutated_object(&vsc, &Policy::default(), &retained, capture_day());
    obj["metadata"]["name"] = vsc["request"]["name"].clone();
    apply(&mut retained, Resource::VolumeSnapshotContent, &obj);
    assert!(
        validate(
            &review("delete-vs.json"),
            &Policy::default(),
            &retained,
            capture_day()
        )
        .allowed
    );
}

#[test]
fn per_namespace_rules_override_the_mode() {
    let p = policy("rules:\n- namespaces: [velero]\n  mode: audit\n");
    let d = validate(
        &review("delete-backup-by-user.json"),
        &p,
        &index(),
        capture_day(),
    );
    assert_eq!(
        (d.allowed, d.outcome, d.mode),
        (true, Outcome::Warned, Mode::Audit)
    );
}

#[test]
fn exempt_users_pass_deletion_rules_but_not_stamp_rules() {
    let p = policy("exempt: {users: [alice]}");
    assert!(
        validate(
            &review("delete-backup-by-user.json"),
            &p,
            &index(),
            capture_day()
        )
        .allowed
    );
    let p = policy("exempt: {users: [mallory]}");
    assert!(
        !validate(
            &review("update-backup-forged-stamp.json"),
            &p,
            &index(),
            capture_day()
        )
        .allowed
    );
}

#[test]
fn velero_itself_may_delete_backup_objects() {
    let r = as_user(
        review("delete-backup-by-user.json"),
        "system:serviceaccount:velero:velero",
        &[],
    );
    assert!(validate(&r, &Policy::default(), &index(), capture_day()).allowed);
}

#[test]
fn unrelated_requests_are_allowed_untouched() {
    let mut r = review("delete-backup-by-user.json");
    r["request"]["resource"] = json!({"group": "", "version": "v1", "resource": "pods"});
    let d = validate(&r, &Policy::default(), &index(), capture_day());
    assert_eq!((d.allowed, d.outcome), (true, Outcome::Allowed));
    assert!(mutate(&r, &Policy::default(), &index(), capture_day())
        .patch
        .is_none());
}

#[test]
fn neuter_strips_storage_deleting_finalizers_and_enforce_guards_them() {
    let mut r = review("update-backup-shorten-ttl.json");
    r["request"]["object"]["spec"]["ttl"] = r["request"]["oldObject"]["spec"]["ttl"].clone();
    r["request"]["object"]["metadata"]["finalizers"] =
        json!(["gc.ark.heptio.com", "example.com/keep"]);
    let obj = mutated_object(&r, &in_mode(Mode::Neuter), &index(), capture_day());
    assert_eq!(obj["metadata"]["finalizers"], json!(["example.com/keep"]));
    assert!(mutate(&r, &in_mode(Mode::Enforce), &index(), capture_day())
        .patch
        .is_none());
    // A Backup still carrying such a finalizer may not be deleted even in neuter mode.
    let mut del = review("delete-backup-by-user.json");
    del["request"]["oldObject"]["metadata"]["finalizers"] = json!(["gc.ark.heptio.com"]);
    let d = validate(&del, &in_mode(Mode::Neuter), &index(), capture_day());
    assert!(!d.allowed);
}
