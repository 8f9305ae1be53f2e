//! Deleting backups and what holds them: kubectl, dry runs, each mode, the namespace cascade,
//! the garbage collector, `velero backup delete` and the TTL collector, DeleteBackupRequests.

use backup_guard::policy::{Actor, Mode, Outcome, Policy, Reason, Resource};
use serde_json::json;

use crate::support::fixtures::*;
use crate::{in_mode, MODES};

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
            (d.allowed, d.outcome, d.warnings.len(), d.blocked.is_some())
        })
        .collect();
    // Only a refused deletion counts as blocked (the alerts on it say the record is intact).
    assert_eq!(
        got,
        vec![
            (false, Outcome::Denied, 0, true),
            (true, Outcome::Neutered, 1, false),
            (true, Outcome::Warned, 1, false),
            (true, Outcome::Allowed, 0, false),
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
    // Without its held backup (holds.rs: a namespace holding one stays, even in neuter mode).
    let mut idx = index();
    idx.remove(Resource::Backup, "velero", "weekly-3");
    let d = validate(
        &review("delete-namespace-velero.json"),
        &in_mode(Mode::Neuter),
        &idx,
        capture_day(),
    );
    assert_eq!((d.allowed, d.outcome), (true, Outcome::Neutered));
    assert!(
        d.warnings[0].contains("7 protected backups"),
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

/// An UPDATE of the captured DeleteBackupRequest, from `old` to `new` spec.backupName.
fn delete_request_update(user: &str, from: &str, to: &str) -> serde_json::Value {
    let mut r = as_user(review("create-dbr-by-user.json"), user, &[]);
    r["request"]["operation"] = json!("UPDATE");
    r["request"]["options"] = json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"});
    let mut old = r["request"]["object"].clone();
    old["spec"]["backupName"] = json!(from);
    let mut new = old.clone();
    new["spec"]["backupName"] = json!(to);
    r["request"]["oldObject"] = old;
    r["request"]["object"] = new;
    r
}

#[test]
fn a_delete_request_cannot_be_retargeted_to_another_backup() {
    let p = Policy::default();
    let mut idx = index();
    // daily-2 is sanctioned, so a DBR for it was allowed; then it is pointed at held weekly-3.
    let stamped = requested_daily_2(&p, &idx, capture_day());
    apply(&mut idx, Resource::Backup, &stamped);
    let r = delete_request_update("alice", "daily-2", "weekly-3");
    for mode in [Mode::Enforce, Mode::Neuter] {
        let d = validate(&r, &in_mode(mode), &idx, capture_day());
        assert!(!d.allowed, "{mode}");
        assert_eq!(d.reason, Some(Reason::DeleteRequestRetargeted));
        assert!(
            d.message
                .contains("deletebackuprequest velero/monthly-1-n6k2q"),
            "{}",
            d.message
        );
        assert!(
            d.message.contains("from backup daily-2 to weekly-3"),
            "{}",
            d.message
        );
    }
    // Even towards an unheld backup, and even by an exempt user towards a held one.
    let unheld = delete_request_update("alice", "daily-2", "monthly-1");
    assert!(!validate(&unheld, &p, &idx, capture_day()).allowed);
    let exempt = policy("exempt: {users: [alice]}");
    assert!(!validate(&r, &exempt, &idx, capture_day()).allowed);
    // Velero's own writes to the request (status, labels) pass, and so does Velero itself.
    let velero = "system:serviceaccount:velero:velero";
    let mut status = delete_request_update(velero, "daily-2", "daily-2");
    status["request"]["object"]["status"] = json!({"phase": "InProgress"});
    status["request"]["object"]["metadata"]["labels"]["velero.io/backup-name"] = json!("daily-2");
    assert!(validate(&status, &p, &idx, capture_day()).allowed);
    let by_velero = delete_request_update(velero, "daily-2", "weekly-3");
    assert!(validate(&by_velero, &p, &idx, capture_day()).allowed);
    // A user changing labels only changes nothing Velero acts on.
    let mut labels = delete_request_update("alice", "daily-2", "daily-2");
    labels["request"]["object"]["metadata"]["labels"]["team"] = json!("db");
    assert!(validate(&labels, &p, &idx, capture_day()).allowed);
}

#[test]
fn velero_deleting_an_expired_backups_csi_snapshots_is_not_kept_from_it() {
    let idx = index();
    let p = Policy::default();
    let velero = "system:serviceaccount:velero:velero";
    let expired = at("2027-01-01T00:00:00Z");
    // Velero's CSI delete action re-creates the content with Delete, then deletes it.
    let create = review("create-vsc-delete-policy.json");
    let delete = as_user(review("delete-vsc.json"), velero, &[]);
    assert!(
        mutate(&create, &p, &idx, expired).patch.is_none(),
        "no Retain patch"
    );
    assert!(validate(&delete, &p, &idx, expired).allowed);
    let vs = as_user(review("delete-vs.json"), velero, &[]);
    assert!(validate(&vs, &p, &idx, expired).allowed);
    // Not for anyone else, not before expiry, not with expiry.allow false.
    assert!(!validate(&review("delete-vsc.json"), &p, &idx, expired).allowed);
    assert!(!validate(&delete, &p, &idx, capture_day()).allowed);
    let kept = mutated_object(&create, &p, &idx, capture_day());
    assert_eq!(kept["spec"]["deletionPolicy"], "Retain");
    let no_expiry = policy("expiry: {allow: false}");
    assert!(!validate(&delete, &no_expiry, &idx, expired).allowed);
    let kept = mutated_object(&create, &no_expiry, &idx, expired);
    assert_eq!(kept["spec"]["deletionPolicy"], "Retain");
    // Nor for a backup on legal hold (weekly-3).
    let mut held = delete.clone();
    held["request"]["oldObject"]["metadata"]["labels"]["velero.io/backup-name"] = json!("weekly-3");
    assert!(!validate(&held, &p, &idx, expired).allowed);
    let mut held_create = create.clone();
    held_create["request"]["object"]["metadata"]["labels"]["velero.io/backup-name"] =
        json!("weekly-3");
    let kept = mutated_object(&held_create, &p, &idx, expired);
    assert_eq!(kept["spec"]["deletionPolicy"], "Retain");
}
