//! Who and what the rules apply to: per-namespace modes, exempt users, Velero itself, requests
//! the guard does not guard, finalizers in neuter and enforce.

use backup_guard::policy::{Mode, Outcome, Policy};
use serde_json::json;

use crate::in_mode;
use crate::support::fixtures::*;

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
