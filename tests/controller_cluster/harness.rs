//! Helpers for `controller_cluster.rs`: a kube client from $KUBECONFIG, objects, stamps signed
//! as the webhook would, an in-process controller, and waiting.
#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backup_guard::controller::kinds::{view, Kind};
use backup_guard::controller::{self, ControllerConfig, LeaseSettings};
use backup_guard::metrics::Metrics;
use backup_guard::policy::stamps::{sign, DELETE_REQUEST, REQUESTED_AT, REQUESTED_BY, SIGNATURE};
use backup_guard::policy::Policy;
use backup_guard::server::Shared;
use backup_guard::storage::ClientSettings;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use object_store::RetryConfig;
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// A client for the cluster of $KUBECONFIG; the suite fails without one, and refuses a cluster
/// where the guard's webhook is registered (it writes stamps itself, which the webhook refuses).
pub async fn cluster() -> Client {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "KUBECONFIG is not set: bring up a cluster (hack/cluster/up.sh DIR; source DIR/env) and run \
         `cargo test --features e2e --test controller_cluster`"
    );
    let client = Client::try_default()
        .await
        .expect("a client for $KUBECONFIG");
    let hooks: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let registered = hooks
        .get_opt("backup-guard")
        .await
        .expect("read webhook configurations");
    assert!(
        registered.is_none(),
        "the backup-guard webhook is registered in this cluster; run this suite before the guard \
         is installed (it plays the webhook's part by signing stamps with its own key)"
    );
    client
}

/// A fresh namespace named `<prefix>-<random>`.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let name = format!("{prefix}-{:06x}", rand() & 0xff_ffff);
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).expect("ns");
    api.create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name
}

/// Deletes a test namespace and the test's cluster-wide VolumeSnapshotContents (named
/// `<namespace>-…`), first lifting the finalizers nobody would remove here (no Velero runs).
pub async fn drop_namespace(client: &Client, name: &str) {
    for kind in [Kind::Backup, Kind::Restore] {
        let api = kind.api(client, Some(name));
        let Ok(list) = api.list(&ListParams::default()).await else {
            continue;
        };
        for o in list.items {
            let n = o.metadata.name.unwrap_or_default();
            let lift = Patch::Merge(json!({"metadata": {"finalizers": null}}));
            let _ = api.patch(&n, &PatchParams::default(), &lift).await;
        }
    }
    let contents = Kind::VolumeSnapshotContent.api(client, None);
    if let Ok(list) = contents.list(&ListParams::default()).await {
        for o in list.items {
            let n = o.metadata.name.unwrap_or_default();
            if n.starts_with(&format!("{name}-")) {
                let _ = contents.delete(&n, &DeleteParams::default()).await;
            }
        }
    }
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::default()).await;
}

pub fn rand() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos(),
    );
    h.finish()
}

/// Creates an object of `kind` from JSON (namespace taken from its metadata, if any).
pub async fn create(client: &Client, kind: Kind, object: Value) -> DynamicObject {
    let ns = object["metadata"]["namespace"].as_str().map(String::from);
    let obj: DynamicObject = serde_json::from_value(object).expect("object JSON");
    kind.api(client, ns.as_deref())
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create {}: {e}", kind.name()))
}

/// Gets an object, if it exists.
pub async fn get(
    client: &Client,
    kind: Kind,
    ns: Option<&str>,
    name: &str,
) -> Option<DynamicObject> {
    kind.api(client, ns).get_opt(name).await.expect("get")
}

/// Merge-patches an object.
pub async fn patch(client: &Client, kind: Kind, ns: Option<&str>, name: &str, patch: Value) {
    kind.api(client, ns)
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap_or_else(|e| panic!("patch {} {name}: {e}", kind.name()));
}

/// A completed Backup as Velero writes it.
pub fn backup(ns: &str, name: &str, location: &str) -> Value {
    json!({"apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": name, "namespace": ns, "labels": {"velero.io/storage-location": location}},
        "spec": {"storageLocation": location, "ttl": "720h0m0s"},
        "status": {"phase": "Completed", "expiration": "2099-01-01T00:00:00Z"}})
}

/// Writes a delete request with stamps signed by `key`, exactly as the mutating webhook would.
pub async fn request_delete(
    client: &Client,
    key: &[u8],
    ns: &str,
    name: &str,
    extra: &[(&str, &str)],
) {
    let current = get(client, Kind::Backup, Some(ns), name)
        .await
        .expect("backup exists");
    let mut meta = view(&current).metadata;
    let at = jiff::Timestamp::now().to_string();
    let mut words = vec![
        (DELETE_REQUEST, "obsolete"),
        (REQUESTED_BY, "alice"),
        (REQUESTED_AT, at.as_str()),
    ];
    words.extend_from_slice(extra);
    for (k, v) in &words {
        meta.annotations.insert(k.to_string(), v.to_string());
    }
    let signature = sign(key, &meta);
    let mut annotations = serde_json::Map::new();
    for (k, v) in words {
        annotations.insert(k.into(), v.into());
    }
    annotations.insert(SIGNATURE.into(), signature.into());
    patch(
        client,
        Kind::Backup,
        Some(ns),
        name,
        json!({"metadata": {"annotations": annotations}}),
    )
    .await;
}

/// Finalizers on an object (empty when it is gone).
pub async fn finalizers(client: &Client, kind: Kind, ns: Option<&str>, name: &str) -> Vec<String> {
    get(client, kind, ns, name)
        .await
        .and_then(|o| o.metadata.finalizers)
        .unwrap_or_default()
}

/// Events about one object: (reason, note).
pub async fn events(client: &Client, ns: &str, name: &str) -> Vec<(String, String)> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let list = api.list(&ListParams::default()).await.expect("list events");
    list.items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

/// Waits until `f` holds, up to `secs`.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out after {secs}s waiting for: {what}");
}

/// The default policy with Velero in `ns`: each test's namespace is its Velero namespace.
pub fn velero_in(ns: &str) -> Policy {
    let mut policy = Policy::default();
    policy.velero.namespace = ns.into();
    policy
}

/// Policy and key as the controller reads them, already loaded.
pub fn policy_state(policy: Policy, key: &[u8]) -> Arc<Shared> {
    let shared = Shared::new(policy, key.to_vec(), Metrics::new(), None);
    for flag in [
        &shared.readiness.policy_loaded,
        &shared.readiness.policy_configured,
    ] {
        flag.store(true, Ordering::Release);
    }
    shared
}

/// Storage settings that give up quickly.
pub fn quick_storage() -> ClientSettings {
    ClientSettings {
        retry: RetryConfig {
            max_retries: 1,
            retry_timeout: Duration::from_secs(3),
            ..RetryConfig::default()
        },
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        connector: None,
        ambient: None,
    }
}

/// A controller running in this process for one namespace (Lease there too).
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    pub metrics: Metrics,
}

/// Starts the controller on the Backups of `ns`.
pub fn start(client: &Client, ns: &str, shared: Arc<Shared>) -> Running {
    start_with(client, ns, shared, |_| {})
}

/// [`start`] with the configuration changed by `adjust`.
pub fn start_with(
    client: &Client,
    ns: &str,
    shared: Arc<Shared>,
    adjust: impl FnOnce(&mut ControllerConfig),
) -> Running {
    let metrics = Metrics::new();
    let mut cfg = ControllerConfig::new(ns);
    cfg.namespace = Some(ns.into());
    cfg.storage = quick_storage();
    cfg.lease = LeaseSettings {
        duration: Duration::from_secs(4),
        renew_deadline: Duration::from_secs(3),
        retry_period: Duration::from_millis(500),
    };
    adjust(&mut cfg);
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(controller::run(
        client.clone(),
        shared,
        metrics.clone(),
        cfg,
        async move {
            let _ = rx.await;
        },
    ));
    Running {
        stop: Some(tx),
        task,
        metrics,
    }
}

impl Running {
    /// Stops it (releasing the lease) and waits.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }

    /// One series of the controller's metrics.
    pub fn metric(&self, name: &str, labels: &[&str]) -> u64 {
        match name {
            "cleanups" => self.metrics.cleanups.with_label_values(labels).get(),
            "objects" => self
                .metrics
                .cleanup_objects_deleted
                .with_label_values(labels)
                .get(),
            _ => panic!("unknown metric {name}"),
        }
    }
}

/// Any change to the Backup makes the controller look again at once (instead of after backoff).
pub async fn touch(c: &Client, ns: &str, name: &str) {
    let stamp = rand().to_string();
    patch(
        c,
        Kind::Backup,
        Some(ns),
        name,
        json!({"metadata": {"labels": {"test/touch": stamp}}}),
    )
    .await;
}

pub async fn has_event(c: &Client, ns: &str, name: &str, reason: &str, words: &str) -> bool {
    events(c, ns, name)
        .await
        .iter()
        .any(|(r, note)| r == reason && note.contains(words))
}
