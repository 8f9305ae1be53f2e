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
