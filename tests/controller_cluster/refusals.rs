//! Sanctioned backups the controller must not clean yet, or at all: a ReadOnly location, a
//! backup Velero is still writing, a backup outside Velero's namespace.

use backup_guard::controller::kinds::Kind;
use backup_guard::policy::stamps::CLEANUP_FINALIZER;
use backup_guard::policy::Policy;
use serde_json::json;

use crate::fixtures::*;
use crate::harness::*;
use crate::storage_scenario::*;

async fn has_event(ns: &str, name: &str, reason: &str, words: &str) -> bool {
    events(&cluster().await, ns, name)
        .await
        .iter()
        .any(|(r, note)| r == reason && note.contains(words))
}

#[tokio::test]
async fn a_read_only_location_is_not_deleted_from_until_it_is_read_write() {
    let c = cluster().await;
    let (n, seeded, _root, loc) = scenario(&c, "ctl-readonly").await;
    let read_only = json!({"spec": {"accessMode": "ReadOnly"}});
    patch(
        &c,
        Kind::BackupStorageLocation,
        Some(&n.ns),
        "default",
        read_only,
    )
    .await;
    let running = start(&c, &n.ns, policy_state(velero_in(&n.ns), KEY));
    eventually(
        30,
        "a CleanupFailed Event naming the ReadOnly location",
        || async {
            has_event(
                &n.ns,
                &n.gone,
                "CleanupFailed",
                "is ReadOnly (spec.accessMode)",
            )
            .await
        },
    )
    .await;
    assert_remaining(loc.store.as_ref(), &seeded, &[]).await;
    assert!(exists(Kind::Restore, Some(&n.ns), &n.restore()).await);
    assert!(running.metric("cleanups", &["native", "failure"]) >= 1);

    let read_write = json!({"spec": {"accessMode": "ReadWrite"}});
    patch(
        &c,
        Kind::BackupStorageLocation,
        Some(&n.ns),
        "default",
        read_write,
    )
    .await;
    cleaned_up(&n, &loc, &seeded, "the cleanup to resume and finish").await;
    running.stop().await;
    drop_namespace(&c, &n.ns).await;
}

/// Velero 1.18 queues a backup (`Queued`, then `ReadyToStart`) before it writes it: those
/// wait as `InProgress` and the plugin and finalizing phases do.
#[tokio::test]
async fn a_backup_velero_is_still_writing_waits_until_it_is_finished() {
    let c = cluster().await;
    let (n, seeded, _root, loc) = scenario(&c, "ctl-inprogress").await;
    let shared = policy_state(velero_in(&n.ns), KEY);
    // A controller per phase: each posts CleanupWaiting once, naming the phase it saw first.
    for phase in ["Queued", "ReadyToStart", "WaitingForPluginOperations"] {
        let writing = json!({"status": {"phase": phase}});
        patch(&c, Kind::Backup, Some(&n.ns), &n.gone, writing).await;
        let running = start(&c, &n.ns, shared.clone());
        let named = format!("(phase {phase})");
        eventually(
            30,
            &format!("a CleanupWaiting Event naming {phase}"),
            || async { has_event(&n.ns, &n.gone, "CleanupWaiting", &named).await },
        )
        .await;
        running.stop().await;
        assert_remaining(loc.store.as_ref(), &seeded, &[]).await;
        assert!(exists(Kind::Backup, Some(&n.ns), &n.gone).await, "{phase}");
        assert!(
            finalizers(&c, Kind::Backup, Some(&n.ns), &n.gone)
                .await
                .is_empty(),
            "{phase}"
        );
    }

    let done = json!({"status": {"phase": "Completed"}});
    patch(&c, Kind::Backup, Some(&n.ns), &n.gone, done).await;
    let running = start(&c, &n.ns, shared);
    cleaned_up(&n, &loc, &seeded, "the cleanup once Velero finished").await;
    running.stop().await;
    drop_namespace(&c, &n.ns).await;
}

#[tokio::test]
async fn a_backup_outside_veleros_namespace_is_not_cleaned() {
    let c = cluster().await;
    let (n, seeded, _root, loc) = scenario(&c, "ctl-elsewhere").await;
    // Velero lives in `velero`; this namespace's Backup and location are somebody else's.
    let mut policy = Policy::default();
    policy.velero.namespace = format!("{}-velero", n.ns);
    let running = start(&c, &n.ns, policy_state(policy, KEY));
    eventually(30, "a CleanupSkipped Event", || async {
        has_event(
            &n.ns,
            &n.gone,
            "CleanupSkipped",
            "not in Velero's namespace",
        )
        .await
    })
    .await;
    assert_remaining(loc.store.as_ref(), &seeded, &[]).await;
    assert!(exists(Kind::Backup, Some(&n.ns), &n.gone).await);
    let finalizers = finalizers(&c, Kind::Backup, Some(&n.ns), &n.gone).await;
    assert!(!finalizers.contains(&CLEANUP_FINALIZER.to_string()));
    assert_eq!(running.metric("cleanups", &["native", "success"]), 0);
    running.stop().await;
    drop_namespace(&c, &n.ns).await;
}
