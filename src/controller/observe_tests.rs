//! Tests of `observe.rs`.
use super::*;
use serde_json::json;

fn backup(spec: Value, status: Value) -> Object {
    let backup = json!({"apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": "daily-1", "namespace": "velero"}, "spec": spec, "status": status});
    serde_json::from_value(backup).expect("a Backup")
}

#[test]
fn the_backup_says_what_only_velero_deletes() {
    let plain = backup(
        json!({"storageLocation": "default"}),
        json!({"phase": "Completed"}),
    );
    assert!(!velero_only(&plain, 0).any());
    assert_eq!(velero_only(&plain, 2).pod_volume_backups, 2);

    let snapshots = backup(json!({}), json!({"volumeSnapshotsAttempted": 3}));
    assert_eq!(velero_only(&snapshots, 0).provider_snapshots, 3);

    // Item operations count as moved data only when the data mover was asked for: CSI
    // snapshots alone are operations too, and the native engine deletes those itself.
    let operations = json!({"backupItemOperationsAttempted": 2, "csiVolumeSnapshotsAttempted": 2});
    let csi = backup(json!({"snapshotMoveData": false}), operations.clone());
    assert!(!velero_only(&csi, 0).any());
    let moved = backup(json!({"snapshotMoveData": true}), operations);
    assert_eq!(velero_only(&moved, 0).moved_volumes, 2);

    // Nonsense where a count belongs reads as nothing, never as an error.
    let odd = backup(
        json!({"snapshotMoveData": "yes"}),
        json!({"volumeSnapshotsAttempted": "x"}),
    );
    assert!(!velero_only(&odd, 0).any());
}

#[test]
fn a_snapshot_is_the_backups_only_if_made_during_its_run() {
    let t = |s: &str| s.parse::<Timestamp>().ok();
    let status = json!({"startTimestamp": "2026-11-24T20:00:00Z",
        "completionTimestamp": "2026-11-24T20:10:00Z"});
    let run = run_of(&backup(json!({}), status));
    assert!(made_during(t("2026-11-24T20:05:00Z"), run));
    assert!(
        made_during(t("2026-11-24T19:59:55Z"), run),
        "within the clocks' slack"
    );
    assert!(
        made_during(t("2026-11-24T20:10:59Z"), run),
        "a content made just after"
    );
    assert!(
        !made_during(t("2026-11-24T19:59:54Z"), run),
        "a snapshot made before it started (a user's, say)"
    );
    assert!(
        !made_during(t("2026-11-24T20:11:01Z"), run),
        "made after it finished"
    );
    // Not finished (or its completion unknown): open-ended.
    let start = json!({"startTimestamp": "2026-11-24T20:00:00Z"});
    let open = run_of(&backup(json!({}), start));
    assert!(made_during(t("2026-11-25T00:00:00Z"), open));
    // An unknown start, or an unknown creation: the label alone decides.
    let completed = backup(json!({}), json!({"phase": "Completed"}));
    assert_eq!(run_of(&completed), None);
    assert!(made_during(t("2000-01-01T00:00:00Z"), None));
    assert!(made_during(None, run));
    let nonsense = backup(json!({}), json!({"startTimestamp": "yesterday"}));
    assert_eq!(run_of(&nonsense), None);
}

#[test]
fn a_snapshot_a_restore_made_is_never_the_backups() {
    let snapshot = |name: &str, created: &str, restore: Option<&str>| {
        let mut labels = json!({"velero.io/backup-name": "daily-1"});
        if let Some(r) = restore {
            labels["velero.io/restore-name"] = json!(r);
        }
        serde_json::from_value::<DynamicObject>(json!({
            "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": name, "namespace": "app", "creationTimestamp": created,
                "labels": labels}}))
        .expect("a VolumeSnapshot")
    };
    let status = json!({"startTimestamp": "2026-11-24T20:00:00Z",
        "completionTimestamp": "2026-11-24T20:10:00Z"});
    let run = run_of(&backup(json!({}), status));
    let during = "2026-11-24T20:05:00Z";
    let labelled = || {
        vec![
            snapshot("own", during, None),
            snapshot("restored", during, Some("daily-1-20261124")),
            snapshot("earlier", "2026-11-24T19:00:00Z", None),
        ]
    };
    let (mine, not_own) = own(labelled(), run);
    let names: Vec<_> = mine.iter().map(|o| o.metadata.name.as_deref()).collect();
    assert_eq!(names, [Some("own")]);
    let expected = NotOwn {
        outside_run: 1,
        restored: 1,
    };
    assert_eq!(not_own, expected);
    // With no start, every labelled snapshot is the backup's, but a restore's still is not.
    let (mine, not_own) = own(labelled(), None);
    assert_eq!(mine.len(), 2);
    assert_eq!(not_own.restored, 1);
    assert_eq!(not_own.outside_run, 0);
}

#[test]
fn auto_hands_to_velero_what_only_velero_deletes() {
    let nothing = VeleroOnly::default();
    let pvbs = VeleroOnly {
        pod_volume_backups: 1,
        ..nothing
    };
    let snapshots = VeleroOnly {
        provider_snapshots: 1,
        ..nothing
    };
    let moved = VeleroOnly {
        moved_volumes: 1,
        ..nothing
    };
    for only in [pvbs, snapshots, moved] {
        assert_eq!(
            engine_for(config::Engine::Auto, &only, false),
            Engine::Velero
        );
        assert_eq!(
            engine_for(config::Engine::Native, &only, false),
            Engine::Native
        );
    }
    assert_eq!(
        engine_for(config::Engine::Auto, &nothing, false),
        Engine::Native
    );
    // A request already filed keeps the cleanup with Velero.
    assert_eq!(
        engine_for(config::Engine::Auto, &nothing, true),
        Engine::Velero
    );
    assert_eq!(
        engine_for(config::Engine::Native, &nothing, true),
        Engine::Native
    );
    assert_eq!(
        engine_for(config::Engine::Velero, &nothing, false),
        Engine::Velero
    );
}

#[test]
fn every_request_velero_has_not_taken_is_untaken() {
    let request = |name: &str, status: Value| -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "velero.io/v1", "kind": "DeleteBackupRequest",
            "metadata": {"name": name, "namespace": "velero", "resourceVersion": format!("{name}-v")},
            "spec": {"backupName": "daily-1"}, "status": status}))
        .expect("a DeleteBackupRequest")
    };
    let requests = [
        request("fresh", json!(null)),
        request("new", json!({"phase": "New"})),
        request("blank", json!({"phase": ""})),
        request("taken", json!({"phase": "InProgress"})),
        request("done", json!({"phase": "Processed"})),
    ];
    let got: Vec<(String, String)> = untaken(&requests)
        .into_iter()
        .map(|u| (u.name, u.resource_version))
        .collect();
    let want = ["fresh", "new", "blank"].map(|n| (n.to_string(), format!("{n}-v")));
    assert_eq!(got, want);
}
