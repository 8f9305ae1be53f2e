//! The native engine: files, restores, snapshots, PodVolumeBackups, then the Backup.

use backup_guard::controller::kinds::{view, Kind};
use backup_guard::controller::{plan, Cleaner, Outcome, Plan, Report, Step};
use backup_guard::policy::stamps::{CLEANUP_FINALIZER, HOLD};
use serde_json::json;

use crate::fixtures::*;
use crate::harness::*;
use crate::storage_scenario::*;

/// The CleanupSucceeded Event on the cleaned backup says each of `words`.
async fn assert_success_says(n: &Names, words: &[&str]) {
    let events = events(&cluster().await, &n.ns, &n.gone).await;
    let success = events
        .iter()
        .find(|(reason, _)| reason == "CleanupSucceeded")
        .unwrap_or_else(|| panic!("a CleanupSucceeded Event: {events:?}"));
    for words in words {
        assert!(success.1.contains(words), "{words:?} in {}", success.1);
    }
}

#[tokio::test]
async fn a_sanctioned_backup_is_cleaned_up_and_nothing_else_is_touched() {
    let c = cluster().await;
    let (n, seeded, _root, loc) = scenario(&c, "ctl-clean").await;
    let running = start(&c, &n.ns, policy_state(velero_in(&n.ns), KEY));
    cleaned_up(&n, &loc, &seeded, "the sanctioned Backup to be gone").await;
    let success = [
        "requested by alice",
        "\"obsolete\"",
        "Deleted 12 storage object(s)",
        "1 Restore(s) with 4 storage object(s)",
        "1 VolumeSnapshotContent(s)",
        "1 PodVolumeBackup(s)",
        // Its file-system backup data is in the repository, which only Velero may prune.
        "Left in place, as only Velero deletes them: 1 PodVolumeBackup(s)' data in the \
         kopia/restic repository.",
    ];
    assert_success_says(&n, &success).await;
    let leaves = "with the native engine. The native engine leaves in place 1 PodVolumeBackup(s)'";
    assert!(has_event(&c, &n.ns, &n.gone, "CleanupStarted", leaves).await);
    assert_eq!(running.metric("cleanups", &["native", "success"]), 1);
    assert_eq!(running.metric("objects", &["file"]), 16);
    running.stop().await;
    drop_namespace(&c, &n.ns).await;
}

#[tokio::test]
async fn a_cleanup_killed_after_its_first_steps_finishes_after_restart() {
    let c = cluster().await;
    let (n, seeded, _root, loc) = scenario(&c, "ctl-resume").await;

    // The first controller gets as far as the finalizer and the backup's files, then dies.
    let shared = policy_state(velero_in(&n.ns), KEY);
    let first = Cleaner::new(
        c.clone(),
        shared.clone(),
        Default::default(),
        leading(),
        "first",
    )
    .with_storage_settings(quick_storage());
    let backup = view(
        &get(&c, Kind::Backup, Some(&n.ns), &n.gone)
            .await
            .expect("backup"),
    );
    let Plan::Clean(steps) = plan(&first.observe(&backup).await.expect("observe")) else {
        panic!("a sanctioned backup gets a cleanup plan");
    };
    assert_eq!(&steps[..2], &[Step::AddFinalizer, Step::DeleteBackupFiles]);
    let mut report = Report::default();
    let outcome = first.apply(&backup, &steps[..2], &mut report).await;
    assert_eq!(outcome.expect("first steps"), Outcome::Completed);
    assert_eq!(report.backup_keys, 12);
    drop(first);
    assert_eq!(
        finalizers(&c, Kind::Backup, Some(&n.ns), &n.gone).await,
        vec![CLEANUP_FINALIZER.to_string()]
    );
    assert!(
        exists(Kind::Restore, Some(&n.ns), &n.restore()).await,
        "restores are a later step"
    );

    let running = start(&c, &n.ns, shared);
    cleaned_up(&n, &loc, &seeded, "the restarted controller to finish").await;
    // The Event counts what this process deleted, and says an earlier one did the rest.
    let resumed = [
        "Deleted 0 storage object(s)",
        "resumed a cleanup an earlier one started",
    ];
    assert_success_says(&n, &resumed).await;
    running.stop().await;
    drop_namespace(&c, &n.ns).await;
}

#[tokio::test]
async fn a_hold_placed_mid_cleanup_stops_it_before_the_next_step() {
    let c = cluster().await;
    let (n, seeded, _root, loc) = scenario(&c, "ctl-hold").await;
    let shared = policy_state(velero_in(&n.ns), KEY);
    let cleaner = Cleaner::new(c.clone(), shared, Default::default(), leading(), "t")
        .with_storage_settings(quick_storage());
    let backup = view(
        &get(&c, Kind::Backup, Some(&n.ns), &n.gone)
            .await
            .expect("backup"),
    );
    let Plan::Clean(steps) = plan(&cleaner.observe(&backup).await.expect("observe")) else {
        panic!("a cleanup plan");
    };
    let mut report = Report::default();
    cleaner
        .apply(&backup, &steps[..1], &mut report)
        .await
        .expect("finalizer");
    patch(
        &c,
        Kind::Backup,
        Some(&n.ns),
        &n.gone,
        json!({"metadata": {"labels": {HOLD: "true"}}}),
    )
    .await;
    let outcome = cleaner
        .apply(&backup, &steps[1..], &mut report)
        .await
        .expect("apply");
    assert!(matches!(outcome, Outcome::Stopped(_)), "{outcome:?}");
    assert_remaining(loc.store.as_ref(), &seeded, &[]).await;
    let observed = cleaner
        .observe(&view(
            &get(&c, Kind::Backup, Some(&n.ns), &n.gone)
                .await
                .expect("b"),
        ))
        .await;
    assert!(matches!(
        plan(&observed.expect("observe")),
        Plan::Stop { release: false, .. }
    ));
    drop_namespace(&c, &n.ns).await;
}
