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
