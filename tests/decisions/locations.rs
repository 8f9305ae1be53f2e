//! Where a backup's files are: a Backup moved to another location, a location pointed at
//! another bucket or deleted while backups use it.

use backup_guard::policy::{Mode, Outcome, Policy, Reason};
use serde_json::json;

use crate::in_mode;
use crate::support::fixtures::*;

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

/// The cleanup of a sanctioned backup deletes in the location the Backup names: moving a Backup
/// would point it at another backup of the same name. Velero sets the field once, from empty.
#[test]
fn moving_a_backup_to_another_storage_location_is_denied() {
    let p = Policy::default();
    let idx = index();
    // Sanctioned (alice's stamped request): the move is what would retarget the cleanup.
    let stamped = requested_daily_2(&p, &idx, capture_day());
    assert!(validate(&delete_of(&stamped), &p, &idx, capture_day()).allowed);
    let moved = |to: Option<&str>| {
        let mut new = stamped.clone();
        match to {
            Some(to) => new["spec"]["storageLocation"] = json!(to),
            None => drop(
                new["spec"]
                    .as_object_mut()
                    .map(|s| s.remove("storageLocation")),
            ),
        }
        update_of(&stamped, &new)
    };
    for mode in [Mode::Enforce, Mode::Neuter] {
        let d = validate(&moved(Some("dr-site")), &in_mode(mode), &idx, capture_day());
        assert!(!d.allowed, "{mode}");
        assert_eq!(d.reason, Some(Reason::StorageLocationMoved), "{mode}");
    }
    let d = validate(&moved(Some("dr-site")), &p, &idx, capture_day());
    assert!(
        d.message.contains(
            "moves spec.storageLocation from default to dr-site on backup velero/daily-2"
        ),
        "{}",
        d.message
    );
    let d = validate(&moved(None), &p, &idx, capture_day());
    assert_eq!(d.reason, Some(Reason::StorageLocationMoved));
    assert!(
        d.message
            .contains("removes spec.storageLocation default from"),
        "{}",
        d.message
    );
    let d = validate(
        &moved(Some("dr-site")),
        &in_mode(Mode::Audit),
        &idx,
        capture_day(),
    );
    assert_eq!((d.allowed, d.outcome), (true, Outcome::Warned));
    assert!(
        validate(
            &moved(Some("dr-site")),
            &in_mode(Mode::Off),
            &idx,
            capture_day()
        )
        .allowed
    );

    // Velero's own writes, and its first pass setting the location of a new backup, go through.
    let velero = as_user(
        moved(Some("dr-site")),
        &p.velero.service_account,
        &["system:serviceaccounts"],
    );
    assert!(validate(&velero, &p, &idx, capture_day()).allowed);
    let mut new_backup = stamped.clone();
    new_backup["spec"]["storageLocation"] = json!("");
    let mut located = new_backup.clone();
    located["spec"]["storageLocation"] = json!("default");
    let d = validate(&update_of(&new_backup, &located), &p, &idx, capture_day());
    assert!(d.allowed, "{}", d.message);
    // Unchanged, it is no move.
    assert!(validate(&update_of(&stamped, &stamped), &p, &idx, capture_day()).allowed);
}

/// The moved-Backup rule for an unsanctioned backup and for exempt users (never on a hold).
#[test]
fn a_backup_moves_for_nobody_but_velero_and_exempt_users_off_hold() {
    let idx = index();
    let r = review("update-backup-shorten-ttl.json");
    let old = r["request"]["oldObject"].clone();
    assert_eq!(old["spec"]["storageLocation"], json!("default"));
    let mut new = old.clone();
    new["spec"]["storageLocation"] = json!("dr-site");
    let moved = update_of(&old, &new);
    // Unsanctioned: denied all the same.
    let d = validate(&moved, &Policy::default(), &idx, capture_day());
    assert_eq!(
        (d.allowed, d.reason),
        (false, Some(Reason::StorageLocationMoved))
    );
    let exempt = policy("exempt: {users: [alice]}");
    assert!(validate(&moved, &exempt, &idx, capture_day()).allowed);
    let (mut held_old, mut held_new) = (old.clone(), new.clone());
    for o in [&mut held_old, &mut held_new] {
        o["metadata"]["labels"]["backup-guard.io/hold"] = json!("true");
    }
    let d = validate(
        &update_of(&held_old, &held_new),
        &exempt,
        &idx,
        capture_day(),
    );
    assert_eq!(
        (d.allowed, d.reason),
        (false, Some(Reason::StorageLocationMoved))
    );
}

/// A BackupStorageLocation with backups may not be pointed at another provider, bucket or
/// prefix (their files stay where they were); endpoint, region and credentials may change.
#[test]
fn a_storage_location_with_backups_keeps_its_bucket_and_prefix() {
    let idx = index();
    // An UPDATE of the captured location setting each JSON pointer to its value.
    let update = |changes: &[(&str, &str)], user: &str| {
        let mut r = as_user(review("delete-bsl-default.json"), user, &[]);
        let mut new = r["request"]["oldObject"].clone();
        for (pointer, value) in changes {
            let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
            new.pointer_mut(parent).expect("parent exists")[key] = json!(value);
        }
        r["request"]["operation"] = json!("UPDATE");
        r["request"]["object"] = new;
        r["request"]["options"] = json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"});
        r
    };
    let p = Policy::default();
    for (pointer, value, words) in [
        (
            "/spec/objectStorage/bucket",
            "other-bucket",
            "spec.objectStorage.bucket from \"velero-backups\" to \"other-bucket\"",
        ),
        (
            "/spec/objectStorage/prefix",
            "cluster-b",
            "spec.objectStorage.prefix from \"cluster-a\" to \"cluster-b\"",
        ),
        (
            "/spec/provider",
            "gcp",
            "spec.provider from \"aws\" to \"gcp\"",
        ),
        (
            "/spec/config/storageAccount",
            "otheraccount",
            "spec.config.storageAccount from \"\" to \"otheraccount\"",
        ),
    ] {
        let r = update(&[(pointer, value)], "alice");
        let d = validate(&r, &p, &idx, capture_day());
        assert_eq!(
            (d.allowed, d.reason),
            (false, Some(Reason::StorageLocationRepointed)),
            "{words}"
        );
        assert!(
            d.message.contains(words) && d.message.contains("where 8 backup(s) are stored"),
            "{}",
            d.message
        );
        let d = validate(&r, &in_mode(Mode::Audit), &idx, capture_day());
        assert_eq!((d.allowed, d.outcome), (true, Outcome::Warned), "{words}");
    }
    // The same place written another way, another endpoint or region, Velero's own writes.
    let same_place = [
        ("/spec/provider", "velero.io/aws"),
        ("/spec/objectStorage/prefix", "/cluster-a/"),
        ("/spec/config/s3Url", "https://minio.internal:9000"),
        ("/spec/config/region", "eu-west-1"),
    ];
    assert!(validate(&update(&same_place, "alice"), &p, &idx, capture_day()).allowed);
    let bucket = [("/spec/objectStorage/bucket", "x")];
    let velero = update(&bucket, &p.velero.service_account);
    assert!(validate(&velero, &p, &idx, capture_day()).allowed);
    // No backups stored there: nothing to strand.
    let empty = backup_guard::index::Index::new();
    assert!(validate(&update(&bucket, "alice"), &p, &empty, capture_day()).allowed);
}
