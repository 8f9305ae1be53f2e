//! `cleanup.engine: auto`: a backup holding what only Velero deletes goes to Velero, the rest is
//! cleaned up natively; and what the native engine leaves is said.

use backup_guard::controller::kinds::Kind;
use backup_guard::policy::config::Engine;
use serde_json::json;

use crate::fixtures::*;
use crate::harness::*;
use crate::storage_scenario::*;
use crate::velero::{delete_requests, filed_request, hold_withdraws, name_of, process};

#[tokio::test]
async fn auto_hands_velero_only_backups_to_velero_and_cleans_the_rest_itself() {
    let c = cluster().await;
    let (n, mut seeded, root, loc) = scenario(&c, "ctl-auto").await;
    // Beside the scenario's backup (with a PodVolumeBackup): one whose status records volume
    // snapshots taken by a snapshotter plugin, and a plain one with its files in the bucket.
    let (snap, plain) = (format!("{}-snap", n.ns), format!("{}-plain", n.ns));
    let mut with_snapshots = backup(&n.ns, &snap, "default");
    with_snapshots["status"] = json!({"phase": "Completed", "volumeSnapshotsAttempted": 2});
    create(&c, Kind::Backup, with_snapshots).await;
    create(&c, Kind::Backup, backup(&n.ns, &plain, "default")).await;
    let plain_files: Objects = backup_files(PREFIX, &plain)
        .into_iter()
        .map(|k| (k.clone(), k.into_bytes()))
        .collect();
    seed_dir(root.path(), BUCKET, &plain_files);
    seeded.extend(plain_files);
    for b in [&snap, &plain] {
        request_delete(&c, KEY, &n.ns, b, &[]).await;
    }
    let mut policy = velero_in(&n.ns);
    policy.cleanup.engine = Engine::Auto;
    let running = start(&c, &n.ns, policy_state(policy, KEY));

    // The plain backup: cleaned up natively, no request filed for it.
    eventually(60, "the plain backup to be gone", || async {
        !exists(Kind::Backup, Some(&n.ns), &plain).await
    })
    .await;
    assert!(delete_requests(&c, &n.ns, &plain).await.is_empty());
    assert_eq!(running.metric("cleanups", &["native", "success"]), 1);

    // The other two: a request each, and nothing of theirs touched by the guard.
    let (gone, snapped) = (
        filed_request(&c, &n.ns, &n.gone).await,
        filed_request(&c, &n.ns, &snap).await,
    );
    assert_remaining(loc.store.as_ref(), &seeded, &backup_files(PREFIX, &plain)).await;
    let ns = Some(n.ns.as_str());
    assert!(exists(Kind::PodVolumeBackup, ns, &format!("{}-pvb", n.gone)).await);
    assert!(exists(Kind::VolumeSnapshot, ns, &format!("{}-vs", n.gone)).await);
    let said = [
        (
            &n.gone,
            "cleanup.engine auto: the backup holds 1 PodVolumeBackup(s)' data",
        ),
        (
            &snap,
            "cleanup.engine auto: the backup holds 2 volume snapshot(s)",
        ),
    ];
    for (b, words) in said {
        eventually(10, "a CleanupStarted Event saying why", || async {
            has_event(&c, &n.ns, b, "CleanupStarted", words).await
        })
        .await;
    }

    // Velero does its part; the cleanups end there.
    for (request, b) in [(&gone, &n.gone), (&snapped, &snap)] {
        process(&c, &n.ns, &name_of(request), &[], b).await;
    }
    for b in [&n.gone, &snap] {
        eventually(30, "the Backup to be gone", || async {
            !exists(Kind::Backup, Some(&n.ns), b).await
        })
        .await;
    }
    eventually(10, "two velero-engine successes", || async {
        running.metric("cleanups", &["velero", "success"]) == 2
    })
    .await;
    assert_eq!(running.metric("cleanups", &["native", "success"]), 1);
    running.stop().await;
    drop_namespace(&c, &n.ns).await;
}

/// A backup Velero has in hand already (here: `velero backup delete` ran first) stays with
/// Velero under `auto` to the end, even once Velero has deleted the request and nothing else
/// marks the backup as Velero's: it is not cleaned up natively a second time.
#[tokio::test]
async fn under_auto_a_backup_velero_has_in_hand_stays_with_velero() {
    let c = cluster().await;
    let ns = namespace(&c, "ctl-inhand").await;
    let name = format!("{ns}-daily-1");
    let seeded: Objects = backup_files(PREFIX, &name)
        .into_iter()
        .map(|k| (k.clone(), k.into_bytes()))
        .collect();
    let (_root, loc) = file_location(&ns, &seeded).await;
    let created = create(&c, Kind::Backup, backup(&ns, &name, "default")).await;
    let uid = created.metadata.uid.expect("uid");
    request_delete(&c, KEY, &ns, &name, &[]).await;
    // What `velero backup delete` files.
    create(
        &c,
        Kind::DeleteBackupRequest,
        json!({"apiVersion": "velero.io/v1",
        "kind": "DeleteBackupRequest", "metadata": {"name": format!("{name}-cli"), "namespace": ns,
            "labels": {"velero.io/backup-name": name, "velero.io/backup-uid": uid}},
        "spec": {"backupName": name}}),
    )
    .await;
    let mut policy = velero_in(&ns);
    policy.cleanup.engine = Engine::Auto;
    let running = start(&c, &ns, policy_state(policy, KEY));
    eventually(30, "a CleanupStarted Event: Velero has it", || async {
        let words = "with the velero engine (cleanup.engine auto: Velero has the backup's deletion";
        has_event(&c, &ns, &name, "CleanupStarted", words).await
    })
    .await;
    // Velero deletes the data (in this test: nothing does), the Backup (our finalizer holds
    // it), then every request, while the controller is away (restarted, say); back, it finds
    // no request and nothing only Velero deletes, only the Backup Velero marked `Deleting`.
    running.stop().await;
    process(&c, &ns, &format!("{name}-cli"), &[], &name).await;
    let mut policy = velero_in(&ns);
    policy.cleanup.engine = Engine::Auto;
    let running = start(&c, &ns, policy_state(policy, KEY));
    eventually(30, "the Backup to be gone", || async {
        !exists(Kind::Backup, Some(&ns), &name).await
    })
    .await;
    eventually(10, "a velero-engine success", || async {
        running.metric("cleanups", &["velero", "success"]) == 1
    })
    .await;
    assert_eq!(running.metric("cleanups", &["native", "success"]), 0);
    assert_remaining(loc.store.as_ref(), &seeded, &[]).await;
    assert!(
        delete_requests(&c, &ns, &name).await.is_empty(),
        "none filed again"
    );
    running.stop().await;
    drop_namespace(&c, &ns).await;
}

/// A request filed under `auto` is withdrawn when the cleanup is called off, even after the
/// policy has gone back to `native`: otherwise Velero would still delete the held backup's data.
#[tokio::test]
async fn a_request_filed_under_auto_is_withdrawn_on_a_hold_after_a_switch_to_native() {
    let c = cluster().await;
    let ns = namespace(&c, "ctl-autohold").await;
    let name = format!("{ns}-daily-1");
    let mut with_snapshots = backup(&ns, &name, "default");
    with_snapshots["status"] = json!({"phase": "Completed", "volumeSnapshotsAttempted": 1});
    create(&c, Kind::Backup, with_snapshots).await;
    request_delete(&c, KEY, &ns, &name, &[]).await;
    let mut policy = velero_in(&ns);
    policy.cleanup.engine = Engine::Auto;
    let shared = policy_state(policy.clone(), KEY);
    let running = start(&c, &ns, shared.clone());
    let filed = name_of(&filed_request(&c, &ns, &name).await);

    policy.cleanup.engine = Engine::Native;
    shared.policy.store(std::sync::Arc::new(policy));
    hold_withdraws(&c, &ns, &name, &filed).await;
    assert!(exists(Kind::Backup, Some(&ns), &name).await);
    running.stop().await;
    drop_namespace(&c, &ns).await;
}
