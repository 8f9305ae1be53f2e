//! What would destroy the record another way: TTL and expiration tampering, CRD and storage
//! location deletion, snapshots whose deletion policy would delete storage.

use backup_guard::policy::{Mode, Outcome, Policy, Reason, Resource};
use serde_json::json;

use crate::in_mode;
use crate::support::fixtures::*;

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

/// The captured `status.expiration` patch of weekly-2, with the old and new objects edited.
fn expiration_update(
    edit: impl FnOnce(&mut serde_json::Value, &mut serde_json::Value),
) -> serde_json::Value {
    let mut r = review("update-backup-expiration-earlier.json");
    let mut old = r["request"]["oldObject"].take();
    let mut new = r["request"]["object"].take();
    edit(&mut old, &mut new);
    r["request"]["oldObject"] = old;
    r["request"]["object"] = new;
    r
}

fn remove(obj: &mut serde_json::Value, section: &str, key: &str) {
    obj[section].as_object_mut().expect("section").remove(key);
}

#[test]
fn removing_the_expiration_or_the_ttl_is_denied_like_moving_it_earlier() {
    let idx = index();
    let no_expiration = expiration_update(|old, new| {
        new["status"]["expiration"] = old["status"]["expiration"].clone();
        remove(new, "status", "expiration");
    });
    let no_ttl = expiration_update(|old, new| {
        new["status"]["expiration"] = old["status"]["expiration"].clone();
        remove(new, "spec", "ttl");
    });
    for (r, reason, field) in [
        (
            &no_expiration,
            Reason::ExpirationMovedEarlier,
            "status.expiration",
        ),
        (&no_ttl, Reason::TtlShortened, "spec.ttl"),
    ] {
        for mode in [Mode::Enforce, Mode::Neuter] {
            let d = validate(r, &in_mode(mode), &idx, capture_day());
            assert!(!d.allowed, "{field} {mode}");
            assert_eq!(d.reason, Some(reason));
            assert!(
                d.message.contains(&format!("removes {field}")),
                "{}",
                d.message
            );
            assert!(
                d.message.contains("could later be set to any time"),
                "{}",
                d.message
            );
            assert!(
                d.message.contains("backup velero/weekly-2"),
                "{}",
                d.message
            );
        }
        let d = validate(r, &in_mode(Mode::Audit), &idx, capture_day());
        assert_eq!((d.allowed, d.outcome), (true, Outcome::Warned), "{field}");
        // Exempt users pass, as for any storage rule.
        let exempt = policy("exempt: {users: [alice]}");
        assert!(validate(r, &exempt, &idx, capture_day()).allowed, "{field}");
    }
}

#[test]
fn an_expiration_set_where_there_was_none_may_not_be_earlier_than_velero_would_set_it() {
    let idx = index();
    let p = Policy::default();
    // weekly-2 started 2026-11-16T03:00:00Z with spec.ttl 720h: Velero's expiration is
    // 2026-12-16T03:00:00Z. Its expiration was removed (as the guard used to allow).
    let set_to = |when: &'static str| {
        expiration_update(move |old, new| {
            remove(old, "status", "expiration");
            new["status"]["expiration"] = json!(when);
        })
    };
    let d = validate(&set_to("2026-11-23T21:35:07Z"), &p, &idx, capture_day());
    assert!(!d.allowed);
    assert_eq!(d.reason, Some(Reason::ExpirationMovedEarlier));
    assert!(d.message.contains("2026-12-16T03:00:00Z"), "{}", d.message);
    assert!(validate(&set_to("2026-12-16T03:00:00Z"), &p, &idx, capture_day()).allowed);
    assert!(validate(&set_to("2027-03-01T00:00:00Z"), &p, &idx, capture_day()).allowed);
    // No spec.ttl: a Completed backup cannot say when Velero would let it expire.
    let unknown = expiration_update(|old, new| {
        remove(old, "status", "expiration");
        remove(old, "spec", "ttl");
        remove(new, "spec", "ttl");
        new["status"]["expiration"] = json!("2027-03-01T00:00:00Z");
    });
    let d = validate(&unknown, &p, &idx, capture_day());
    assert!(!d.allowed);
    assert!(d.message.contains("no spec.ttl"), "{}", d.message);
    // Velero's first pass over a new backup sets spec.ttl (its default) and the expiration.
    let first_pass = as_user(
        expiration_update(|old, new| {
            remove(old, "status", "expiration");
            remove(old, "spec", "ttl");
            old["status"] = json!({"phase": "New"});
            new["status"]["phase"] = json!("InProgress");
            new["status"]["startTimestamp"] = json!("2026-11-23T20:35:06Z");
            new["status"]["expiration"] = json!("2026-12-23T20:35:06Z");
        }),
        "system:serviceaccount:velero:velero",
        &[],
    );
    assert!(validate(&first_pass, &p, &idx, capture_day()).allowed);
}

#[test]
fn a_ttl_set_where_there_was_none_may_not_bring_the_expiry_forward() {
    let idx = index();
    let p = Policy::default();
    let set_ttl = |ttl: &'static str| {
        expiration_update(move |old, new| {
            new["status"]["expiration"] = old["status"]["expiration"].clone();
            remove(old, "spec", "ttl");
            new["spec"]["ttl"] = json!(ttl);
        })
    };
    let d = validate(&set_ttl("1h0m0s"), &p, &idx, capture_day());
    assert!(!d.allowed);
    assert_eq!(d.reason, Some(Reason::TtlShortened));
    assert!(validate(&set_ttl("720h0m0s"), &p, &idx, capture_day()).allowed);
}

/// An UPDATE of the snapshot (content) in a captured DELETE fixture, to `edit`ed labels.
fn snapshot_update(fixture: &str, edit: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
    let mut r = review(fixture);
    let old = r["request"]["oldObject"].clone();
    let mut new = old.clone();
    edit(&mut new["metadata"]["labels"]);
    r["request"]["operation"] = json!("UPDATE");
    r["request"]["object"] = new;
    r
}

#[test]
fn the_velero_label_of_a_protected_backups_snapshot_stays() {
    let idx = index();
    for fixture in ["delete-vsc.json", "delete-vs.json"] {
        let unlabel = snapshot_update(fixture, |l| {
            l.as_object_mut()
                .expect("labels")
                .remove("velero.io/backup-name");
        });
        let relabel = snapshot_update(fixture, |l| l["velero.io/backup-name"] = json!("gone"));
        for r in [&unlabel, &relabel] {
            for mode in [Mode::Enforce, Mode::Neuter] {
                let d = validate(r, &in_mode(mode), &idx, capture_day());
                assert!(!d.allowed, "{fixture} {mode}");
                assert_eq!(d.reason, Some(Reason::SnapshotRelabelled));
                assert!(d.message.contains("velero.io/backup-name"), "{}", d.message);
                assert!(d.message.contains("backup daily-2"), "{}", d.message);
            }
            let d = validate(r, &in_mode(Mode::Audit), &idx, capture_day());
            assert_eq!((d.allowed, d.outcome), (true, Outcome::Warned), "{fixture}");
        }
        // Other label changes are fine.
        let other = snapshot_update(fixture, |l| l["team"] = json!("db"));
        assert!(validate(&other, &Policy::default(), &idx, capture_day()).allowed);
        // Once daily-2 is sanctioned its snapshots may be relabelled.
        let p = Policy::default();
        let mut sanctioned = index();
        apply(
            &mut sanctioned,
            Resource::Backup,
            &requested_daily_2(&p, &idx, capture_day()),
        );
        assert!(
            validate(&unlabel, &p, &sanctioned, capture_day()).allowed,
            "{fixture}"
        );
    }
    // Should the update get through anyway, the content is still kept with Retain.
    let unlabel = snapshot_update("delete-vsc.json", |l| {
        l.as_object_mut()
            .expect("labels")
            .remove("velero.io/backup-name");
    });
    let obj = mutated_object(&unlabel, &Policy::default(), &idx, capture_day());
    assert_eq!(obj["spec"]["deletionPolicy"], "Retain");
}

#[test]
fn an_unlabelled_snapshot_is_judged_by_its_bound_velero_content() {
    let idx = index();
    let mut r = review("delete-vs.json");
    r["request"]["oldObject"]["metadata"]["labels"]
        .as_object_mut()
        .expect("labels")
        .remove("velero.io/backup-name");
    for mode in [Mode::Enforce, Mode::Neuter] {
        let d = validate(&r, &in_mode(mode), &idx, capture_day());
        assert!(!d.allowed, "{mode}");
        assert_eq!(d.reason, Some(Reason::SnapshotDelete));
        assert!(d.message.contains("backup daily-2"), "{}", d.message);
    }
    // Bound by status.boundVolumeSnapshotContentName as well as by the content's reference.
    r["request"]["oldObject"]["status"] = json!({"boundVolumeSnapshotContentName": "snapcontent-7bd16569-599a-4894-92a3-4fdcc01d566a"});
    assert!(!validate(&r, &Policy::default(), &idx, capture_day()).allowed);
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
