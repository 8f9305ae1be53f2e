//! What would destroy the record another way: TTL and expiration tampering, CRD deletion,
//! snapshots whose deletion policy would delete storage (locations: locations.rs).

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
    // (The fixture's held backup gone: tests/decisions/holds.rs has the CRD with a held one.)
    let mut idx = index();
    idx.remove(Resource::Backup, "velero", "weekly-3");
    let d = validate(
        &review("delete-crd-backups.json"),
        &Policy::default(),
        &idx,
        capture_day(),
    );
    assert!(!d.allowed);
    assert_eq!(d.reason, Some(Reason::CrdDelete));
    assert!(
        d.message.contains("still holds 7 backups object(s)"),
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
    // Velero's first pass over a new backup sets spec.ttl (its default) and the expiration: from
    // `New` before Velero 1.18, from `ReadyToStart` (after `Queued`) with 1.18's backup queue.
    for phase in ["New", "Queued", "ReadyToStart"] {
        let first_pass = as_user(
            expiration_update(|old, new| {
                remove(old, "status", "expiration");
                remove(old, "spec", "ttl");
                old["status"] = json!({ "phase": phase });
                new["status"]["phase"] = json!("InProgress");
                new["status"]["startTimestamp"] = json!("2026-11-23T20:35:06Z");
                new["status"]["expiration"] = json!("2026-12-23T20:35:06Z");
            }),
            "system:serviceaccount:velero:velero",
            &[],
        );
        let d = validate(&first_pass, &p, &idx, capture_day());
        assert!(d.allowed, "first pass from {phase}: {}", d.message);
    }
    // Once Velero has run it, the same update is judged: a backup cannot go back to unprocessed.
    let after_run = expiration_update(|old, new| {
        remove(old, "status", "expiration");
        remove(old, "spec", "ttl");
        old["status"] = json!({"phase": "InProgress"});
        new["status"]["phase"] = json!("InProgress");
        new["status"]["expiration"] = json!("2026-11-23T21:00:00Z");
    });
    assert!(!validate(&after_run, &p, &idx, capture_day()).allowed);
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
