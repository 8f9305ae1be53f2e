//! The native engine: files, restores, snapshots, PodVolumeBackups, then the Backup.

use std::sync::Arc;

use backup_guard::controller::kinds::{view, Kind};
use backup_guard::controller::{plan, Cleaner, Outcome, Plan, Report, Step};
use backup_guard::policy::stamps::{Unsanctioned, CLEANUP_FINALIZER, HOLD};
use backup_guard::policy::Object;
use backup_guard::storage::ClientSettings;
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use serde_json::{json, Value};

use crate::engines::{credentials, put_secret, s3_location};
use crate::fixtures::*;
use crate::harness::*;
use crate::storage_hook::HoldOnListing;
use crate::storage_scenario::*;
use crate::storage_servers::{s3s_fs, S3_KEY, S3_SECRET};

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

/// The gone Backup as the controller sees it, and the steps of its cleanup plan (which starts
/// with the finalizer and the files).
async fn cleanup_plan(c: &Client, cleaner: &Cleaner, n: &Names) -> (Object, Vec<Step>) {
    let backup = view(
        &get(c, Kind::Backup, Some(&n.ns), &n.gone)
            .await
            .expect("backup"),
    );
    let Plan::Clean(steps) = plan(&cleaner.observe(&backup).await.expect("observe")) else {
        panic!("a sanctioned backup gets a cleanup plan");
    };
    assert_eq!(&steps[..2], &[Step::AddFinalizer, Step::DeleteBackupFiles]);
    (backup, steps)
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
    let (backup, steps) = cleanup_plan(&c, &first, &n).await;
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
    let (backup, steps) = cleanup_plan(&c, &cleaner, &n).await;
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

/// A hold placed while the backup's files are being listed (after the re-check before the step,
/// which can be minutes before the first delete) stops the cleanup before anything is deleted.
#[tokio::test]
async fn a_hold_placed_while_the_files_are_listed_stops_the_cleanup_before_any_delete() {
    let c = cluster().await;
    let n = Names::new(&namespace(&c, "ctl-listhold").await);
    let server = s3s_fs(BUCKET);
    let loc = s3_location(&c, &n.ns, &server.url()).await;
    let seeded = layout(&n);
    seed(loc.store.as_ref(), &seeded).await;
    put_secret(&c, &n.ns, credentials(S3_KEY, S3_SECRET)).await;
    objects(&n).await;

    let hook = HoldOnListing::new(&c, &n.ns, &n.gone);
    let settings = ClientSettings {
        connector: Some(Arc::new(hook.clone())),
        ..quick_storage()
    };
    let shared = policy_state(velero_in(&n.ns), KEY);
    let cleaner = Cleaner::new(c.clone(), shared, Default::default(), leading(), "t")
        .with_storage_settings(settings);
    let (backup, steps) = cleanup_plan(&c, &cleaner, &n).await;
    let mut report = Report::default();
    let outcome = cleaner
        .apply(&backup, &steps, &mut report)
        .await
        .expect("apply");
    assert!(hook.fired(), "the backup's files were listed");
    assert_eq!(outcome, Outcome::Stopped(Unsanctioned::Held));
    assert_eq!(report.backup_keys, 0);
    assert_remaining(loc.store.as_ref(), &seeded, &[]).await;
    assert!(exists(Kind::Restore, Some(&n.ns), &n.restore()).await);
    assert_eq!(
        finalizers(&c, Kind::Backup, Some(&n.ns), &n.gone).await,
        vec![CLEANUP_FINALIZER.to_string()],
        "a hold keeps the finalizer"
    );
    drop_namespace(&c, &n.ns).await;
}

/// A repeated Event (a failure at the backoff's cap) counts up the series of the first one; a
/// different one is an Event of its own, and so is the first again after it.
#[tokio::test]
async fn a_repeated_event_counts_up_its_series_instead_of_adding_events() {
    let c = cluster().await;
    let ns = namespace(&c, "ctl-series").await;
    let name = format!("{ns}-daily-1");
    create(&c, Kind::Backup, backup(&ns, &name, "default")).await;
    let shared = policy_state(velero_in(&ns), KEY);
    let cleaner = Cleaner::new(c.clone(), shared, Default::default(), leading(), "series");
    let b = view(
        &get(&c, Kind::Backup, Some(&ns), &name)
            .await
            .expect("backup"),
    );
    let (same, other) = ("storage unreachable; retry in 300s", "bucket not found");
    for note in [same, same, same, other, same] {
        cleaner.event(&b, true, "CleanupFailed", note.into()).await;
    }
    let api: kube::Api<Event> = kube::Api::namespaced(c.clone(), &ns);
    let mut posted: Vec<(String, i32)> = api
        .list(&Default::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name.as_str()))
        .map(|e| (e.note.unwrap_or_default(), e.series.map_or(1, |s| s.count)))
        .collect();
    posted.sort();
    let expected = vec![
        (other.to_string(), 1),
        (same.to_string(), 1),
        (same.to_string(), 3),
    ];
    assert_eq!(posted, expected);
    drop_namespace(&c, &ns).await;
}

/// A VolumeSnapshot `<name>-vs` in `ns` and its VolumeSnapshotContent `<name>-vsc` (`Retain`),
/// both labelled `labels`.
async fn snapshot_pair(c: &Client, ns: &str, name: &str, labels: &Value) {
    create(c, Kind::VolumeSnapshotContent, json!({"apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotContent", "metadata": {"name": format!("{name}-vsc"), "labels": labels},
        "spec": {"deletionPolicy": "Retain", "driver": "hostpath.csi.k8s.io",
            "source": {"snapshotHandle": format!("snap-{name}")},
            "volumeSnapshotRef": {"name": format!("{name}-vs"), "namespace": ns}}})).await;
    create(
        c,
        Kind::VolumeSnapshot,
        json!({"apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot", "metadata": {"name": format!("{name}-vs"), "namespace": ns,
            "labels": labels},
        "spec": {"source": {"volumeSnapshotContentName": format!("{name}-vsc")}}}),
    )
    .await;
}

/// CSI snapshots labelled with a backup's name are its own only if they were made while it ran,
/// PodVolumeBackups only if they carry its uid where they carry one: those of another backup of
/// the same name (another Velero installation's, an earlier one's) stay.
#[tokio::test]
async fn another_backups_snapshots_and_pod_volume_backups_are_left_alone() {
    let c = cluster().await;
    let ns = namespace(&c, "ctl-run").await;
    let repository = format!("{PREFIX}/kopia/default/kopia.repository");
    let seeded = Objects::from([(repository, b"repository".to_vec())]);
    let (_root, loc) = file_location(&ns, &seeded).await;
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).expect("now");
    let at = |minutes: i64| (now + jiff::SignedDuration::from_mins(minutes)).to_string();
    // `ran`'s run is around now, so the snapshots made below are its own; `old` finished an
    // hour ago, so the snapshots labelled with its name now are not.
    let runs = [("ran", at(-5), at(5)), ("old", at(-120), at(-60))];
    for (b, start, end) in &runs {
        let name = format!("{ns}-{b}");
        let mut object = backup(&ns, &name, "default");
        object["status"] = json!({"phase": "Completed", "startTimestamp": start,
            "completionTimestamp": end});
        let uid = create(&c, Kind::Backup, object).await.metadata.uid;
        let label = json!({"velero.io/backup-name": name});
        for (pvb, uid) in [
            ("own", uid.expect("uid")),
            ("other", "an-earlier-backup".into()),
        ] {
            let labels = json!({"velero.io/backup-name": name, "velero.io/backup-uid": uid});
            create(
                &c,
                Kind::PodVolumeBackup,
                json!({"apiVersion": "velero.io/v1",
                "kind": "PodVolumeBackup", "spec": pvb_spec(&ns),
                "metadata": {"name": format!("{name}-{pvb}"), "namespace": ns, "labels": labels}}),
            )
            .await;
        }
        snapshot_pair(&c, &ns, &name, &label).await;
        request_delete(&c, KEY, &ns, &name, &[]).await;
    }
    let running = start(&c, &ns, policy_state(velero_in(&ns), KEY));
    let (ran, old) = (format!("{ns}-ran"), format!("{ns}-old"));
    for b in [&ran, &old] {
        eventually(60, "the Backup to be gone", || async {
            !exists(Kind::Backup, Some(&ns), b).await
        })
        .await;
    }
    assert_remaining(loc.store.as_ref(), &seeded, &[]).await;
    assert!(!exists(Kind::VolumeSnapshotContent, None, &format!("{ran}-vsc")).await);
    assert!(!exists(Kind::VolumeSnapshot, Some(&ns), &format!("{ran}-vs")).await);
    let contents = Kind::VolumeSnapshotContent.api(&c, None);
    let kept = contents
        .get(&format!("{old}-vsc"))
        .await
        .expect("old's content stays");
    assert_eq!(
        kept.data["spec"]["deletionPolicy"],
        json!("Retain"),
        "not switched to Delete"
    );
    assert!(exists(Kind::VolumeSnapshot, Some(&ns), &format!("{old}-vs")).await);
    for b in [&ran, &old] {
        let pvb = |which: &str| format!("{b}-{which}");
        assert!(!exists(Kind::PodVolumeBackup, Some(&ns), &pvb("own")).await);
        assert!(exists(Kind::PodVolumeBackup, Some(&ns), &pvb("other")).await);
    }
    let said = format!(
        "Left alone: 2 VolumeSnapshot(s)/VolumeSnapshotContent(s) labelled with the backup's \
         name but created outside its run ({} to {})",
        runs[1].1, runs[1].2
    );
    eventually(10, "the Event saying what was left alone", || async {
        has_event(&c, &ns, &old, "CleanupSucceeded", &said).await
    })
    .await;
    running.stop().await;
    contents
        .delete(&format!("{old}-vsc"), &Default::default())
        .await
        .expect("tidy up");
    drop_namespace(&c, &ns).await;
}

/// Velero labels what it restores with the backup's name too: a VolumeSnapshot and content a
/// restore made (labelled `velero.io/restore-name`) are not the backup's, even made during its
/// run or when its start is unknown, while its own go.
#[tokio::test]
async fn snapshots_a_restore_made_from_the_backup_are_left_alone() {
    let c = cluster().await;
    let ns = namespace(&c, "ctl-restored").await;
    let repository = format!("{PREFIX}/kopia/default/kopia.repository");
    let seeded = Objects::from([(repository, b"repository".to_vec())]);
    let (_root, loc) = file_location(&ns, &seeded).await;
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).expect("now");
    let at = |minutes: i64| (now + jiff::SignedDuration::from_mins(minutes)).to_string();
    // `ran` completed just now and is restored at once, within its run's slack after the
    // completion; `unstarted` has no start, so its run is no help.
    let ran = json!({"phase": "Completed", "startTimestamp": at(-5), "completionTimestamp": at(0)});
    let unstarted = json!({"phase": "Completed"});
    let names = [format!("{ns}-ran"), format!("{ns}-unstarted")];
    for (name, status) in names.iter().zip([ran, unstarted]) {
        let mut object = backup(&ns, name, "default");
        object["status"] = status;
        create(&c, Kind::Backup, object).await;
        let own = json!({"velero.io/backup-name": name});
        snapshot_pair(&c, &ns, name, &own).await;
        let restored = json!({"velero.io/backup-name": name,
            "velero.io/restore-name": format!("{name}-20261124")});
        snapshot_pair(&c, &ns, &format!("{name}-restored"), &restored).await;
        request_delete(&c, KEY, &ns, name, &[]).await;
    }
    let running = start(&c, &ns, policy_state(velero_in(&ns), KEY));
    let contents = Kind::VolumeSnapshotContent.api(&c, None);
    let said = "Left alone: 2 VolumeSnapshot(s)/VolumeSnapshotContent(s) labelled with the \
                backup's name but created by a restore of it (velero.io/restore-name)";
    for name in &names {
        eventually(60, "the Backup to be gone", || async {
            !exists(Kind::Backup, Some(&ns), name).await
        })
        .await;
        assert!(!exists(Kind::VolumeSnapshot, Some(&ns), &format!("{name}-vs")).await);
        assert!(!exists(Kind::VolumeSnapshotContent, None, &format!("{name}-vsc")).await);
        let restored = format!("{name}-restored");
        assert!(exists(Kind::VolumeSnapshot, Some(&ns), &format!("{restored}-vs")).await);
        let kept = contents
            .get(&format!("{restored}-vsc"))
            .await
            .expect("the restored content stays");
        assert_eq!(
            kept.data["spec"]["deletionPolicy"],
            json!("Retain"),
            "not switched to Delete"
        );
        eventually(10, "the Event saying what was left alone", || async {
            has_event(&c, &ns, name, "CleanupSucceeded", said).await
        })
        .await;
    }
    assert_remaining(loc.store.as_ref(), &seeded, &[]).await;
    running.stop().await;
    for name in &names {
        contents
            .delete(&format!("{name}-restored-vsc"), &Default::default())
            .await
            .expect("tidy up");
    }
    drop_namespace(&c, &ns).await;
}
