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

/// A rule that relaxes the mode for the nightly schedule's backups (label set by Velero).
fn nightly_in_audit() -> Policy {
    policy("rules:\n- selector: {matchLabels: {velero.io/schedule-name: nightly}}\n  mode: audit\n")
}

#[test]
fn a_delete_request_takes_the_mode_of_its_backup_not_its_own_labels() {
    let (p, idx) = (nightly_in_audit(), index());
    // monthly-1 is not a nightly backup: a DBR labelled as one is still judged in enforce.
    let mut r = review("create-dbr-by-user.json");
    r["request"]["object"]["metadata"]["labels"]["velero.io/schedule-name"] = json!("nightly");
    let d = validate(&r, &p, &idx, capture_day());
    assert_eq!((d.allowed, d.mode), (false, Mode::Enforce), "{d:?}");
    // A DBR for the nightly backup itself gets that backup's mode, whatever its own labels.
    let mut nightly = review("create-dbr-by-user.json");
    nightly["request"]["object"]["spec"]["backupName"] = json!("nightly-20261123010000");
    let d = validate(&nightly, &p, &idx, capture_day());
    assert_eq!(
        (d.allowed, d.outcome, d.mode),
        (true, Outcome::Warned, Mode::Audit)
    );
    // A namespace rule for the DBR's namespace still applies (the backup lives there).
    let ns_rule = policy("rules:\n- namespaces: [velero]\n  mode: audit\n");
    let d = validate(
        &review("create-dbr-by-user.json"),
        &ns_rule,
        &idx,
        capture_day(),
    );
    assert_eq!(d.mode, Mode::Audit);
}

#[test]
fn a_delete_request_for_a_held_backup_cannot_label_itself_into_audit() {
    let p = policy("rules:\n- selector: {matchLabels: {tier: scratch}}\n  mode: audit\n");
    let mut r = review("create-dbr-by-user.json");
    r["request"]["object"]["spec"]["backupName"] = json!("weekly-3");
    r["request"]["object"]["metadata"]["labels"]["tier"] = json!("scratch");
    let d = validate(&r, &p, &index(), capture_day());
    assert!(!d.allowed, "{d:?}");
    assert!(d.message.contains("legal hold"), "{}", d.message);
}

#[test]
fn velero_snapshots_take_the_mode_of_their_backup() {
    let idx = index();
    // Relabelling a snapshot content (or snapshot) does not change the mode it is judged in.
    let p = policy("rules:\n- selector: {matchLabels: {tier: scratch}}\n  mode: audit\n");
    for fixture in ["delete-vsc.json", "delete-vs.json"] {
        let mut r = review(fixture);
        r["request"]["oldObject"]["metadata"]["labels"]["tier"] = json!("scratch");
        let d = validate(&r, &p, &idx, capture_day());
        assert_eq!((d.allowed, d.mode), (false, Mode::Enforce), "{fixture}");
        // Nor does the VolumeSnapshot's own namespace: its backup lives in velero.
        let app = policy("rules:\n- namespaces: [app]\n  mode: audit\n");
        let d = validate(&review(fixture), &app, &idx, capture_day());
        assert_eq!((d.allowed, d.mode), (false, Mode::Enforce), "{fixture}");
        // A namespace rule reaches the cluster-scoped content through its backup's namespace.
        let velero = policy("rules:\n- namespaces: [velero]\n  mode: audit\n");
        let d = validate(&review(fixture), &velero, &idx, capture_day());
        assert_eq!(
            (d.allowed, d.outcome, d.mode),
            (true, Outcome::Warned, Mode::Audit),
            "{fixture}"
        );
    }
    // The mutating webhook reads the same mode: a relabelled content is still set to Retain.
    let mut create = review("create-vsc-delete-policy.json");
    create["request"]["object"]["metadata"]["labels"]["tier"] = json!("scratch");
    let obj = mutated_object(&create, &p, &idx, capture_day());
    assert_eq!(obj["spec"]["deletionPolicy"], "Retain");
}

#[test]
fn exemption_never_covers_a_legal_hold() {
    let idx = index();
    let p = policy("exempt: {users: [alice]}");
    // weekly-3 is on legal hold: alice, exempt, may neither file a DBR for it nor delete it.
    let mut dbr = review("create-dbr-by-user.json");
    dbr["request"]["object"]["spec"]["backupName"] = json!("weekly-3");
    let d = validate(&dbr, &p, &idx, capture_day());
    assert!(!d.allowed, "{d:?}");
    assert!(d.message.contains("legal hold"), "{}", d.message);
    let mut held = review("delete-backup-by-user.json");
    held["request"]["name"] = json!("weekly-3");
    held["request"]["oldObject"]["metadata"]["name"] = json!("weekly-3");
    held["request"]["oldObject"]["metadata"]["labels"]["backup-guard.io/hold"] = json!("true");
    let d = validate(&held, &p, &idx, capture_day());
    assert!(!d.allowed, "{d:?}");
    assert!(d.message.contains("backup-guard.io/hold-"), "{}", d.message);
    // Nor delete a snapshot content of it that would delete the storage snapshot.
    let mut vsc = review("delete-vsc.json");
    vsc["request"]["oldObject"]["metadata"]["labels"]["velero.io/backup-name"] = json!("weekly-3");
    assert!(!validate(&vsc, &p, &idx, capture_day()).allowed);
    // Without the hold, exemption still lets the same requests through.
    assert!(validate(&review("create-dbr-by-user.json"), &p, &idx, capture_day()).allowed);
    assert!(validate(&review("delete-vsc.json"), &p, &idx, capture_day()).allowed);
    // A hold is still a storage matter in audit mode: warned, not denied.
    let audit = policy("mode: audit\nexempt: {users: [alice]}");
    let d = validate(&held, &policy("mode: audit"), &idx, capture_day());
    assert_eq!((d.allowed, d.outcome), (true, Outcome::Warned));
    assert!(validate(&held, &audit, &idx, capture_day()).allowed);
}

#[test]
fn deleting_a_backup_whose_finalizer_would_delete_storage_says_so() {
    let mut del = review("delete-backup-by-user.json");
    del["request"]["oldObject"]["metadata"]["finalizers"] = json!(["gc.ark.heptio.com"]);
    let d = validate(&del, &in_mode(Mode::Neuter), &index(), capture_day());
    assert!(!d.allowed);
    let m = &d.message;
    assert!(
        m.contains("backup velero/daily-1 carries the finalizer gc.ark.heptio.com"),
        "{m}"
    );
    assert!(
        m.contains("would delete the backup's files and snapshots in storage"),
        "{m}"
    );
    assert!(m.contains("any update of the Backup strips"), "{m}");
    assert!(
        m.contains("kubectl patch backup daily-1 -n velero --type merge -p '{}'"),
        "{m}"
    );
    assert!(!m.contains("no one has requested its deletion"), "{m}");
    // Audit's warning names the finalizer too.
    let d = validate(&del, &in_mode(Mode::Audit), &index(), capture_day());
    assert!(
        d.warnings[0].contains("gc.ark.heptio.com"),
        "{:?}",
        d.warnings
    );
}
