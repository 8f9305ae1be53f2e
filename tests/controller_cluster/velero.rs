//! The velero engine, with Velero played by the test: a request filed and followed to the end,
//! Velero's errors reported, a request Velero leaves untaken, a withdrawal on a hold.

use backup_guard::controller::kinds::Kind;
use backup_guard::controller::steps;
use backup_guard::policy::config::Engine;
use backup_guard::policy::stamps::{CLEANUP_FINALIZER, HOLD};
use backup_guard::policy::Policy;
use kube::api::ListParams;
use kube::Client;
use serde_json::{json, Value};

use crate::fixtures::*;
use crate::harness::*;

pub async fn delete_requests(c: &Client, ns: &str, backup: &str) -> Vec<Value> {
    let lp = ListParams::default().labels(&format!("velero.io/backup-name={backup}"));
    let list = Kind::DeleteBackupRequest
        .api(c, Some(ns))
        .list(&lp)
        .await
        .expect("list");
    list.items
        .into_iter()
        .map(|o| serde_json::to_value(o).expect("json"))
        .collect()
}

/// Plays Velero's deletion controller on `request`, in its order: takes the request, marks the
/// Backup `Deleting`, then either records `errors` or deletes the Backup, marks the request
/// `Processed` and deletes every request for the backup (by name and uid labels).
pub async fn process(c: &Client, ns: &str, request: &str, errors: &[&str], backup: &str) {
    let (requests, backups) = (Kind::DeleteBackupRequest, Kind::Backup);
    let taken = json!({"status": {"phase": "InProgress"}});
    patch(c, requests, Some(ns), request, taken).await;
    let deleting = json!({"status": {"phase": "Deleting"}});
    patch(c, backups, Some(ns), backup, deleting).await;
    if errors.is_empty() {
        let api = backups.api(c, Some(ns));
        api.delete(backup, &Default::default())
            .await
            .expect("Velero deletes the Backup");
    }
    let status = json!({"status": {"phase": "Processed", "errors": errors}});
    patch(c, requests, Some(ns), request, status).await;
    if errors.is_empty() {
        let api = requests.api(c, Some(ns));
        for r in delete_requests(c, ns, backup).await {
            api.delete(&name_of(&r), &Default::default())
                .await
                .expect("Velero deletes the backup's requests");
        }
    }
}

/// A sanctioned backup in a fresh namespace `prefix-…`, and the velero-engine policy for it.
async fn sanctioned_for_velero(c: &Client, prefix: &str) -> (String, String, Policy) {
    let ns = namespace(c, prefix).await;
    let name = format!("{ns}-daily-1");
    create(c, Kind::Backup, backup(&ns, &name, "default")).await;
    request_delete(c, KEY, &ns, &name, &[]).await;
    let mut policy = velero_in(&ns);
    policy.cleanup.engine = Engine::Velero;
    (ns, name, policy)
}

/// Waits for the controller's DeleteBackupRequest; returns it as JSON.
pub async fn filed_request(c: &Client, ns: &str, name: &str) -> Value {
    eventually(30, "a DeleteBackupRequest", || async {
        !delete_requests(c, ns, name).await.is_empty()
    })
    .await;
    delete_requests(c, ns, name).await.remove(0)
}

/// Holds the backup and waits for the cleanup to withdraw `filed`, the request Velero has not
/// taken, and say so in a CleanupStopped Event.
pub async fn hold_withdraws(c: &Client, ns: &str, name: &str, filed: &str) {
    let hold = json!({"metadata": {"labels": {HOLD: "true"}}});
    patch(c, Kind::Backup, Some(ns), name, hold).await;
    eventually(30, "the request withdrawn", || async {
        delete_requests(c, ns, name).await.is_empty()
    })
    .await;
    eventually(10, "a CleanupStopped Event naming the request", || async {
        has_event(c, ns, name, "CleanupStopped", filed).await
    })
    .await;
}

pub fn name_of(request: &Value) -> String {
    request["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string()
}

#[tokio::test]
async fn velero_engine_files_a_delete_backup_request_and_follows_it_to_the_end() {
    let c = cluster().await;
    let (ns, name, policy) = sanctioned_for_velero(&c, "ctl-velero").await;
    let uid = get(&c, Kind::Backup, Some(&ns), &name)
        .await
        .and_then(|b| b.metadata.uid)
        .expect("uid");
    let running = start(&c, &ns, policy_state(policy, KEY));

    let first = filed_request(&c, &ns, &name).await;
    assert_eq!(first["spec"]["backupName"], json!(name));
    let labels = &first["metadata"]["labels"];
    assert_eq!(labels["velero.io/backup-uid"], json!(uid));
    assert_eq!(first["metadata"]["generateName"], json!(format!("{name}-")));
    let denied = ["error deleting backup files: AccessDenied"];
    process(&c, &ns, &name_of(&first), &denied, &name).await;
    eventually(30, "Velero's errors in a CleanupFailed Event", || async {
        has_event(&c, &ns, &name, "CleanupFailed", "AccessDenied").await
    })
    .await;
    assert_eq!(running.metric("cleanups", &["velero", "failure"]), 1);
    assert!(exists(Kind::Backup, Some(&ns), &name).await);

    // Velero removes older requests when it takes a new one; a new request follows.
    let requests = Kind::DeleteBackupRequest.api(&c, Some(&ns));
    let gone = requests.delete(&name_of(&first), &Default::default()).await;
    gone.expect("delete the failed request");
    touch(&c, &ns, &name).await;
    let second = name_of(&filed_request(&c, &ns, &name).await);
    process(&c, &ns, &second, &[], &name).await;
    eventually(30, "the Backup to be gone", || async {
        !exists(Kind::Backup, Some(&ns), &name).await
    })
    .await;
    eventually(
        10,
        "a CleanupSucceeded Event naming the request",
        || async { has_event(&c, &ns, &name, "CleanupSucceeded", &second).await },
    )
    .await;
    assert_eq!(running.metric("cleanups", &["velero", "success"]), 1);
    // Done means done: no request filed again for the gone backup.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert!(delete_requests(&c, &ns, &name).await.is_empty());
    running.stop().await;
    drop_namespace(&c, &ns).await;
}

/// Velero down: the request it never takes is a failed cleanup (Event, metric, so the alert
/// fires), the request stays the only one, and the cleanup ends once Velero is back.
#[tokio::test]
async fn a_request_velero_leaves_untaken_is_reported_as_a_failure() {
    let c = cluster().await;
    let (ns, name, policy) = sanctioned_for_velero(&c, "ctl-idle").await;
    // Velero at work on another backup's request: a queue, not an idle Velero.
    let other = json!({"apiVersion": "velero.io/v1", "kind": "DeleteBackupRequest",
        "metadata": {"name": "other-backup-x1", "namespace": ns},
        "spec": {"backupName": "other-backup"}});
    create(&c, Kind::DeleteBackupRequest, other).await;
    let working = json!({"status": {"phase": "InProgress"}});
    patch(
        &c,
        Kind::DeleteBackupRequest,
        Some(&ns),
        "other-backup-x1",
        working,
    )
    .await;
    let idle_after = std::time::Duration::from_secs(2);
    let running = start_with(&c, &ns, policy_state(policy, KEY), |cfg| {
        cfg.velero_idle_after = idle_after;
    });

    let request = filed_request(&c, &ns, &name).await;
    let (filed, at) = (name_of(&request), &request["metadata"]["creationTimestamp"]);
    let at = at.as_str().expect("creationTimestamp").to_string();
    tokio::time::sleep(idle_after * 3).await;
    touch(&c, &ns, &name).await;
    tokio::time::sleep(idle_after * 2).await;
    let idle = "Velero has not taken DeleteBackupRequest";
    let reported = has_event(&c, &ns, &name, "CleanupFailed", idle).await;
    assert!(!reported, "a busy Velero is not an idle one");
    assert_eq!(running.metric("cleanups", &["velero", "failure"]), 0);
    let api = Kind::DeleteBackupRequest.api(&c, Some(&ns));
    let done = api.delete("other-backup-x1", &Default::default()).await;
    done.expect("Velero finishes the other request");
    eventually(
        30,
        "a CleanupFailed Event: Velero has not taken it",
        || async {
            // When it was filed, not how long ago: the same words at every look, so the
            // reports fold into one Event once the backoff is at its cap.
            let words =
                format!("Velero has not taken DeleteBackupRequest {ns}/{filed}, filed at {at}:");
            has_event(&c, &ns, &name, "CleanupFailed", &words).await
        },
    )
    .await;
    assert!(running.metric("cleanups", &["velero", "failure"]) >= 1);
    let requests = delete_requests(&c, &ns, &name).await;
    assert_eq!(requests.len(), 1, "kept, not filed again: {requests:?}");
    assert_eq!(name_of(&requests[0]), filed);
    assert!(exists(Kind::Backup, Some(&ns), &name).await);

    process(&c, &ns, &filed, &[], &name).await;
    eventually(60, "the Backup to be gone once Velero took it", || async {
        !exists(Kind::Backup, Some(&ns), &name).await
    })
    .await;
    assert_eq!(running.metric("cleanups", &["velero", "success"]), 1);
    running.stop().await;
    drop_namespace(&c, &ns).await;
}

#[tokio::test]
async fn a_hold_withdraws_the_delete_backup_request_velero_has_not_taken() {
    let c = cluster().await;
    let (ns, name, policy) = sanctioned_for_velero(&c, "ctl-withdraw").await;
    let running = start(&c, &ns, policy_state(policy, KEY));

    // Velero is busy: the request stays New, and then a hold manager holds the backup.
    let filed = name_of(&filed_request(&c, &ns, &name).await);
    hold_withdraws(&c, &ns, &name, &filed).await;
    assert!(exists(Kind::Backup, Some(&ns), &name).await);
    assert_eq!(
        finalizers(&c, Kind::Backup, Some(&ns), &name).await,
        vec![CLEANUP_FINALIZER.to_string()],
        "a hold keeps the finalizer"
    );
    // Looked at again (any change, a policy reload): the same stop is not reported again.
    touch(&c, &ns, &name).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let stops = events(&c, &ns, &name)
        .await
        .into_iter()
        .filter(|(reason, _)| reason == "CleanupStopped")
        .count();
    assert_eq!(stops, 1, "one CleanupStopped per reason");
    running.stop().await;
    drop_namespace(&c, &ns).await;
}

/// `velero backup delete` run again while the first request waits: a hold withdraws both, as
/// Velero would act on either.
#[tokio::test]
async fn a_hold_withdraws_every_delete_backup_request_velero_has_not_taken() {
    let c = cluster().await;
    let (ns, name, policy) = sanctioned_for_velero(&c, "ctl-withdraw2").await;
    let uid = get(&c, Kind::Backup, Some(&ns), &name)
        .await
        .and_then(|b| b.metadata.uid)
        .expect("uid");
    let running = start(&c, &ns, policy_state(policy, KEY));
    let filed = name_of(&filed_request(&c, &ns, &name).await);
    let again = format!("{name}-again");
    let labels = json!({"velero.io/backup-name": name, "velero.io/backup-uid": uid});
    let request = json!({"apiVersion": "velero.io/v1", "kind": "DeleteBackupRequest",
        "metadata": {"name": again, "namespace": ns, "labels": labels},
        "spec": {"backupName": name}});
    create(&c, Kind::DeleteBackupRequest, request).await;
    assert_eq!(delete_requests(&c, &ns, &name).await.len(), 2);

    hold_withdraws(&c, &ns, &name, &filed).await;
    assert!(has_event(&c, &ns, &name, "CleanupStopped", &again).await);
    running.stop().await;
    drop_namespace(&c, &ns).await;
}

/// A withdrawal deletes the request only as it was observed: one Velero has taken since (its
/// status written, so another resourceVersion) is not pulled from under it.
#[tokio::test]
async fn a_request_is_withdrawn_only_as_it_was_observed() {
    let c = cluster().await;
    let ns = namespace(&c, "ctl-precond").await;
    let request = json!({"apiVersion": "velero.io/v1", "kind": "DeleteBackupRequest",
        "metadata": {"name": "daily-1-x1", "namespace": ns}, "spec": {"backupName": "daily-1"}});
    create(&c, Kind::DeleteBackupRequest, request).await;
    let seen = get(&c, Kind::DeleteBackupRequest, Some(&ns), "daily-1-x1")
        .await
        .and_then(|r| r.metadata.resource_version)
        .expect("resourceVersion");
    let taken = json!({"status": {"phase": "InProgress"}});
    patch(
        &c,
        Kind::DeleteBackupRequest,
        Some(&ns),
        "daily-1-x1",
        taken,
    )
    .await;
    let kind = Kind::DeleteBackupRequest;
    let stale = steps::delete_version(&c, kind, Some(&ns), "daily-1-x1", &seen).await;
    assert!(
        stale.is_err(),
        "deleted a request Velero had taken: {stale:?}"
    );
    assert!(exists(kind, Some(&ns), "daily-1-x1").await);
    let now = get(&c, kind, Some(&ns), "daily-1-x1")
        .await
        .and_then(|r| r.metadata.resource_version)
        .expect("resourceVersion");
    let current = steps::delete_version(&c, kind, Some(&ns), "daily-1-x1", &now).await;
    assert!(current.expect("the observed version goes"));
    drop_namespace(&c, &ns).await;
}
