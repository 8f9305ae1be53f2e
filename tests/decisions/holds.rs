//! What keeps a hold (and an expiry) from being lost: Velero judged again when it starts
//! deleting a backup whose request was let through earlier, a held Backup's cluster copy kept
//! even in neuter mode and from Velero's sync, and the location label the sync reads.

use backup_guard::policy::{Mode, Outcome, Policy, Reason, Resource};
use serde_json::{json, Value};

use crate::in_mode;
use crate::support::fixtures::*;

const VELERO: &str = "system:serviceaccount:velero:velero";

/// The Backup of the captured `kubectl delete backup` (expires 2026-12-21T02:00:00Z).
fn backup() -> Value {
    review("delete-backup-by-user.json")["request"]["oldObject"].clone()
}

fn held(mut b: Value) -> Value {
    b["metadata"]["labels"]["backup-guard.io/hold"] = json!("true");
    b
}

/// Velero's deletion controller setting `status.phase: Deleting` on `old`.
fn deleting(old: &Value) -> Value {
    let mut new = old.clone();
    new["status"]["phase"] = json!("Deleting");
    as_user(update_of(old, &new), VELERO, &["system:serviceaccounts"])
}

#[test]
fn a_hold_placed_while_velero_s_request_waits_stops_it_as_velero_starts_deleting() {
    let idx = index();
    let p = Policy::default();
    let expired = at("2027-01-01T00:00:00Z");
    // The TTL collector's request for an expired, un-held backup: Velero may go on.
    assert!(validate(&deleting(&backup()), &p, &idx, expired).allowed);
    // So may a request an exempt user filed, or one for an unexpired backup (judged when filed).
    assert!(validate(&deleting(&backup()), &p, &idx, capture_day()).allowed);
    // Held after the request was let through: refused, and the message says why and what to do.
    for mode in [Mode::Enforce, Mode::Neuter] {
        let d = validate(&deleting(&held(backup())), &in_mode(mode), &idx, expired);
        assert!(!d.allowed, "{mode}");
        assert_eq!(d.reason, Some(Reason::DeletionStarted));
        assert!(
            d.message
                .contains("refusing to let Velero start deleting backup"),
            "{}",
            d.message
        );
        assert!(d.message.contains("it is on legal hold"), "{}", d.message);
        assert!(d.message.contains("backup-guard.io/hold-"), "{}", d.message);
    }
    let d = validate(
        &deleting(&held(backup())),
        &in_mode(Mode::Audit),
        &idx,
        expired,
    );
    assert_eq!((d.allowed, d.outcome), (true, Outcome::Warned));
    // A deletion that failed part-way leaves the phase `Deleting`; Velero's next request writes
    // it again, and is judged the same.
    let mut already = held(backup());
    already["status"]["phase"] = json!("Deleting");
    assert!(!validate(&deleting(&already), &p, &idx, expired).allowed);
    // Anyone else's update of such a Backup is not a deletion: a hold manager may still hold it.
    let mut stuck = backup();
    stuck["status"]["phase"] = json!("Deleting");
    let r = as_user(
        update_of(&stuck, &held(stuck.clone())),
        "bob",
        &["backup-admins"],
    );
    assert!(validate(&r, &p, &idx, expired).allowed);
}

#[test]
fn a_held_backup_keeps_its_cluster_copy_in_neuter_mode_and_from_velero() {
    let idx = index();
    let neuter = in_mode(Mode::Neuter);
    // Neuter lets an unheld Backup go from the cluster, with a warning...
    let d = validate(&delete_of(&backup()), &neuter, &idx, capture_day());
    assert_eq!((d.allowed, d.outcome), (true, Outcome::Neutered));
    // ...but not a held one: the hold lives on the Backup.
    let d = validate(&delete_of(&held(backup())), &neuter, &idx, capture_day());
    assert!(!d.allowed);
    assert_eq!(d.reason, Some(Reason::BackupDelete));
    assert!(d.message.contains("not a held one"), "{}", d.message);
    assert!(
        d.message
            .contains("re-create it from storage without the hold"),
        "{}",
        d.message
    );
    // Velero's own account (its sync) may remove an unheld Backup, not a held one.
    let as_velero = |b: Value| as_user(delete_of(&b), VELERO, &["system:serviceaccounts"]);
    let p = Policy::default();
    assert!(validate(&as_velero(backup()), &p, &idx, capture_day()).allowed);
    let d = validate(&as_velero(held(backup())), &p, &idx, capture_day());
    assert!(!d.allowed);
    assert!(d.message.contains("legal hold"), "{}", d.message);
    // An exempt user does not pass a hold.
    let exempt = policy("mode: neuter\nexempt: {users: [alice]}");
    assert!(!validate(&delete_of(&held(backup())), &exempt, &idx, capture_day()).allowed);
}

#[test]
fn neuter_refuses_a_namespace_holding_a_held_backup_naming_it() {
    let idx = index();
    let r = review("delete-namespace-velero.json");
    let d = validate(&r, &in_mode(Mode::Neuter), &idx, capture_day());
    assert!(!d.allowed);
    // An exempt user, in enforce, passes the shadow rules but not a hold.
    let exempt = policy("exempt: {users: [alice]}");
    let e = validate(&r, &exempt, &idx, capture_day());
    assert!(!e.allowed);
    assert!(
        e.message.contains("on legal hold (weekly-3)"),
        "{}",
        e.message
    );
    assert_eq!(d.reason, Some(Reason::NamespaceDelete));
    assert!(
        d.message
            .contains("namespace velero holds 1 Velero backup(s) on legal hold (weekly-3)"),
        "{}",
        d.message
    );
    // Enforce says what it always said: every protected backup.
    let d = validate(&r, &Policy::default(), &idx, capture_day());
    assert!(
        d.message.contains("8 protected Velero backup(s)"),
        "{}",
        d.message
    );
}

#[test]
fn the_location_label_velero_sync_reads_may_not_change() {
    let idx = index();
    let p = Policy::default();
    let old = backup();
    let relabel = |to: Option<&str>| {
        let mut new = old.clone();
        match to {
            Some(l) => new["metadata"]["labels"]["velero.io/storage-location"] = json!(l),
            None => {
                new["metadata"]["labels"]
                    .as_object_mut()
                    .expect("labels")
                    .remove("velero.io/storage-location");
            }
        }
        update_of(&old, &new)
    };
    let d = validate(&relabel(Some("dr")), &p, &idx, capture_day());
    assert!(!d.allowed);
    assert_eq!(d.reason, Some(Reason::StorageLocationMoved));
    assert!(
        d.message
            .contains("changes the label velero.io/storage-location from default to dr"),
        "{}",
        d.message
    );
    let d = validate(&relabel(None), &p, &idx, capture_day());
    assert!(!d.allowed);
    assert!(d.message.contains("removes the label"), "{}", d.message);
    // Velero sets it itself; other labels stay free.
    let velero = as_user(relabel(Some("dr")), VELERO, &[]);
    assert!(validate(&velero, &p, &idx, capture_day()).allowed);
    let mut other = old.clone();
    other["metadata"]["labels"]["team"] = json!("payments");
    assert!(validate(&update_of(&old, &other), &p, &idx, capture_day()).allowed);
}

#[test]
fn a_backup_may_not_be_relabelled_into_a_milder_mode() {
    let idx = index();
    let p = policy(
        "rules:\n- selector: {matchLabels: {env: dev}}\n  mode: audit\n- selector: {matchLabels: {env: scratch}}\n  mode: off\n",
    );
    let old = backup();
    let labelled = |b: &Value, env: &str| {
        let mut b = b.clone();
        b["metadata"]["labels"]["env"] = json!(env);
        b
    };
    // enforce (no rule matches) to audit: its DeleteBackupRequests would only be warned about.
    let d = validate(
        &update_of(&old, &labelled(&old, "dev")),
        &p,
        &idx,
        capture_day(),
    );
    assert!(!d.allowed);
    assert_eq!(d.reason, Some(Reason::ModeLowered));
    assert!(
        d.message.contains("in mode audit instead of enforce"),
        "{}",
        d.message
    );
    let d = validate(
        &update_of(&old, &labelled(&old, "scratch")),
        &p,
        &idx,
        capture_day(),
    );
    assert!(!d.allowed, "enforce to off");
    // A label that keeps the mode, or makes it stricter, passes.
    let dev = labelled(&old, "dev");
    assert!(
        validate(
            &update_of(&old, &labelled(&old, "prod")),
            &p,
            &idx,
            capture_day()
        )
        .allowed
    );
    let d = validate(
        &update_of(&dev, &labelled(&old, "prod")),
        &p,
        &idx,
        capture_day(),
    );
    assert_eq!(d.outcome, Outcome::Allowed, "audit to enforce");
    // audit to off is milder still: warned under audit.
    let d = validate(
        &update_of(&dev, &labelled(&old, "scratch")),
        &p,
        &idx,
        capture_day(),
    );
    assert_eq!((d.allowed, d.outcome), (true, Outcome::Warned));
    // A sanctioned backup, and Velero, may relabel it.
    let stamped = requested_daily_2(&p, &idx, capture_day());
    assert!(
        validate(
            &update_of(&stamped, &labelled(&stamped, "dev")),
            &p,
            &idx,
            capture_day() + 60
        )
        .allowed
    );
    let velero = as_user(update_of(&old, &labelled(&old, "dev")), VELERO, &[]);
    assert!(validate(&velero, &p, &idx, capture_day()).allowed);
    // Without rules, labels choose nothing.
    assert!(
        validate(
            &update_of(&old, &labelled(&old, "dev")),
            &Policy::default(),
            &idx,
            capture_day()
        )
        .allowed
    );
}

#[test]
fn the_cleanup_finalizer_stays_on_a_held_backup() {
    let idx = index();
    let p = Policy::default();
    let with = |b: Value| {
        let mut b = b;
        b["metadata"]["finalizers"] = json!(["backup-guard.io/cleanup"]);
        b["metadata"]["deletionTimestamp"] = json!("2026-11-23T21:00:00Z");
        b
    };
    let stripped = |old: &Value| {
        let mut new = old.clone();
        new["metadata"]["finalizers"] = json!([]);
        update_of(old, &new)
    };
    let old = with(held(backup()));
    for mode in [Mode::Enforce, Mode::Neuter] {
        let d = validate(&stripped(&old), &in_mode(mode), &idx, capture_day());
        assert!(!d.allowed, "{mode}");
        assert_eq!(d.reason, Some(Reason::FinalizerRemoved));
        assert!(
            d.message.contains("which is on legal hold"),
            "{}",
            d.message
        );
    }
    // Not for exempt users either, nor Velero; an unheld Backup's finalizer is the controller's
    // to remove (it does when a cleanup ends or is called off).
    let exempt = policy("exempt: {users: [alice]}");
    assert!(!validate(&stripped(&old), &exempt, &idx, capture_day()).allowed);
    let velero = as_user(stripped(&old), VELERO, &[]);
    assert!(!validate(&velero, &p, &idx, capture_day()).allowed);
    assert!(validate(&stripped(&with(backup())), &p, &idx, capture_day()).allowed);
}

/// A CREATE of `obj` (from the captured annotate), as `user`.
fn create_of(obj: &Value, user: &str) -> Value {
    let mut r = update_of(obj, obj);
    r["request"]["operation"] = json!("CREATE");
    r["request"]["oldObject"] = Value::Null;
    as_user(r, user, &[])
}

#[test]
fn a_backup_created_already_expired_is_refused_but_for_velero_s_sync() {
    let idx = index();
    let p = Policy::default();
    // The Backup of the captured delete expires 2026-12-21T02:00:00Z.
    let expired = at("2027-01-01T00:00:00Z");
    let d = validate(&create_of(&backup(), "alice"), &p, &idx, expired);
    assert!(!d.allowed);
    assert_eq!(d.reason, Some(Reason::ExpirationMovedEarlier));
    assert!(d.message.contains("already past"), "{}", d.message);
    assert!(d.message.contains("TTL collector"), "{}", d.message);
    // Velero's sync brings a backup back from storage with its own times.
    assert!(validate(&create_of(&backup(), VELERO), &p, &idx, expired).allowed);
    // An expiration still ahead, or none (`velero backup create`, GitOps), passes.
    assert!(validate(&create_of(&backup(), "alice"), &p, &idx, capture_day()).allowed);
    let mut bare = backup();
    bare.as_object_mut().expect("object").remove("status");
    assert!(validate(&create_of(&bare, "alice"), &p, &idx, expired).allowed);
    // Neuter closes it too (the path is delete, then re-create with the old status).
    assert!(
        !validate(
            &create_of(&backup(), "alice"),
            &in_mode(Mode::Neuter),
            &idx,
            expired
        )
        .allowed
    );
}

#[test]
fn the_backup_crd_may_not_go_while_a_backup_is_held() {
    // Deleting the CRD (as `velero uninstall` does) removes every Backup without a call per
    // object, so the hold is checked at the CRD: in every mode that judges, exempt or not.
    let idx = index();
    let r = review("delete-crd-backups.json");
    for p in [
        Policy::default(),
        in_mode(Mode::Neuter),
        policy("exempt: {users: [admin]}"),
        policy("mode: neuter\nexempt: {users: [admin]}"),
    ] {
        let d = validate(&r, &p, &idx, capture_day());
        assert!(!d.allowed);
        assert_eq!(d.reason, Some(Reason::CrdDelete));
        assert!(
            d.message
                .contains("still holds 1 Backup(s) on legal hold (velero/weekly-3)"),
            "{}",
            d.message
        );
    }
    let d = validate(&r, &in_mode(Mode::Audit), &idx, capture_day());
    assert_eq!((d.allowed, d.outcome), (true, Outcome::Warned));
    // Released, neuter lets the CRD go with a warning, as before.
    let mut released = index();
    released.remove(Resource::Backup, "velero", "weekly-3");
    let d = validate(&r, &in_mode(Mode::Neuter), &released, capture_day());
    assert_eq!((d.allowed, d.outcome), (true, Outcome::Neutered));
}
