//! The policy ConfigMap holding an invalid policy when the guard starts: the webhook answers
//! under the lockdown policy instead of staying unready, and the controller does not act until a
//! valid policy is applied.

use std::sync::atomic::Ordering;

use backup_guard::controller::kinds::Kind;
use backup_guard::controller::{self, ControllerConfig, LeaseSettings};
use backup_guard::metrics::Metrics;
use backup_guard::policy::Policy;
use backup_guard::server::policy_source::{watch_configmap, POLICY_KEY};
use backup_guard::server::Shared;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::time::Duration;

use crate::fixtures::*;
use crate::harness::*;
use crate::storage_scenario::*;

#[tokio::test]
async fn an_invalid_policy_at_start_locks_down_and_the_controller_waits_for_a_valid_one() {
    let c = cluster().await;
    let (n, seeded, _root, loc) = scenario(&c, "ctl-lockdown").await;
    let maps: Api<ConfigMap> = Api::namespaced(c.clone(), &n.ns);
    let invalid = "mode: enforce\napproval: {required: maybe}\n";
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "backup-guard-policy"},
        "data": {POLICY_KEY: invalid}}))
    .expect("configmap");
    maps.create(&PostParams::default(), &cm)
        .await
        .expect("create");

    // What `backup-guard run` builds: the default policy until the source says otherwise.
    let shared = Shared::new(Policy::default(), KEY.to_vec(), Metrics::new(), None);
    shared.readiness.index_synced.store(true, Ordering::Release);
    let source = tokio::spawn(watch_configmap(
        c.clone(),
        shared.clone(),
        n.ns.clone(),
        "backup-guard-policy".into(),
    ));
    eventually(20, "a policy in force", || async {
        shared.readiness.policy_loaded.load(Ordering::Acquire)
    })
    .await;
    assert!(shared.readiness.ready(), "the webhook is ready");
    assert_eq!(**shared.policy.load(), Policy::lockdown());
    assert!(!shared.readiness.policy_configured.load(Ordering::Acquire));
    eventually(20, "an InvalidPolicy Event saying lockdown", || async {
        events(&c, &n.ns, "backup-guard-policy")
            .await
            .iter()
            .any(|(r, note)| r == "InvalidPolicy" && note.contains("lockdown policy is in force"))
    })
    .await;

    let metrics = Metrics::new();
    let mut cfg = ControllerConfig::new(&n.ns);
    cfg.namespace = Some(n.ns.clone());
    cfg.storage = quick_storage();
    cfg.lease = LeaseSettings {
        duration: Duration::from_secs(4),
        renew_deadline: Duration::from_secs(3),
        retry_period: Duration::from_millis(500),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(controller::run(
        c.clone(),
        shared.clone(),
        metrics,
        cfg,
        async move {
            let _ = stopped.await;
        },
    ));
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        finalizers(&c, Kind::Backup, Some(&n.ns), &n.gone)
            .await
            .is_empty(),
        "no cleanup starts under the lockdown"
    );
    assert_remaining(loc.store.as_ref(), &seeded, &[]).await;

    let valid = format!("velero: {{namespace: {}}}\n", n.ns);
    let fix = json!({"data": {POLICY_KEY: valid}});
    maps.patch(
        "backup-guard-policy",
        &PatchParams::default(),
        &Patch::Merge(&fix),
    )
    .await
    .expect("patch");
    cleaned_up(&n, &loc, &seeded, "the cleanup under the valid policy").await;
    assert!(shared.readiness.policy_configured.load(Ordering::Acquire));
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), run).await;
    source.abort();
    drop_namespace(&c, &n.ns).await;
}
