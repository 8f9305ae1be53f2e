//! Where the policy comes from: a file (polled) or a ConfigMap (watched). An invalid policy
//! never takes effect: the last good one stays, and the failure is logged, counted and, for a
//! ConfigMap, reported as an Event on it.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use kube::api::Api;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, Resource as _};

use anyhow::Context as _;

use super::state::{now, Shared};
use super::PolicySource;
use crate::policy::Policy;

/// The key holding the policy in the ConfigMap.
pub const POLICY_KEY: &str = "policy.yaml";

/// Applies a policy text; returns the error text when it was refused.
pub fn reload(shared: &Shared, text: &str, source: &str) -> Result<(), String> {
    match Policy::parse(text) {
        Ok(policy) => {
            let changed = **shared.policy.load() != policy;
            shared.policy.store(Arc::new(policy));
            shared
                .metrics
                .policy_reloads
                .with_label_values(&["success"])
                .inc();
            shared.metrics.policy_last_reload_success.set(now() as f64);
            shared
                .readiness
                .policy_loaded
                .store(true, Ordering::Release);
            shared
                .readiness
                .policy_configured
                .store(true, Ordering::Release);
            if changed {
                tracing::info!(source, mode = %shared.policy.load().mode, "policy loaded");
            }
            Ok(())
        }
        Err(e) => {
            shared
                .metrics
                .policy_reloads
                .with_label_values(&["failure"])
                .inc();
            tracing::error!(source, error = %e, "invalid policy refused; the last good policy stays in force");
            Err(e.to_string())
        }
    }
}

/// Loads the policy from its source and keeps it fresh: a file must be readable and valid at
/// start; a ConfigMap is watched (absent, the default policy applies).
pub fn start(client: &Client, shared: &Arc<Shared>, source: PolicySource) -> anyhow::Result<()> {
    match source {
        PolicySource::File(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read policy file {}", path.display()))?;
            reload(shared, &text, &path.display().to_string())
                .map_err(|e| anyhow::anyhow!("invalid policy file {}: {e}", path.display()))?;
            tokio::spawn(watch_file(shared.clone(), path, Duration::from_secs(2)));
        }
        PolicySource::ConfigMap { namespace, name } => {
            tokio::spawn(watch_configmap(
                client.clone(),
                shared.clone(),
                namespace,
                name,
            ));
        }
    }
    Ok(())
}

/// Polls a policy file; the first read must succeed.
pub async fn watch_file(shared: Arc<Shared>, path: PathBuf, every: Duration) {
    let mut last: Option<String> = None;
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match tokio::fs::read_to_string(&path).await {
            Ok(text) if last.as_deref() != Some(text.as_str()) => {
                let _ = reload(&shared, &text, &path.display().to_string());
                last = Some(text);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read policy file; keeping the policy in force")
            }
        }
    }
}

/// Watches one ConfigMap; absent, the default policy applies.
pub async fn watch_configmap(client: Client, shared: Arc<Shared>, namespace: String, name: String) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let recorder = Recorder::new(client, Reporter::from("backup-guard"));
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    let mut seen = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => seen = false,
            Ok(Event::Apply(cm) | Event::InitApply(cm)) => {
                seen = true;
                let text = cm
                    .data
                    .as_ref()
                    .and_then(|d| d.get(POLICY_KEY))
                    .cloned()
                    .unwrap_or_default();
                let source = format!("configmap {namespace}/{name}");
                if let Err(message) = reload(&shared, &text, &source) {
                    let lockdown = lock_down(&shared);
                    report_invalid(&recorder, &cm, &message, lockdown).await;
                }
            }
            Ok(Event::InitDone) if !seen => {
                tracing::warn!(
                    namespace,
                    name,
                    "policy ConfigMap not found; the default policy (mode enforce) applies"
                );
                let _ = reload(&shared, "", "default");
            }
            Ok(Event::InitDone) => {}
            Ok(Event::Delete(_)) => {
                tracing::warn!(
                    namespace,
                    name,
                    "policy ConfigMap deleted; keeping the policy in force"
                );
            }
            Err(e) => tracing::warn!(error = %e, "policy watch failed; retrying"),
        }
    }
}

/// An invalid policy before any valid one: the webhook answers under [`Policy::lockdown`] rather
/// than staying unready (every guarded request, and Velero's own Backup updates, would be
/// refused by failurePolicy Fail), and the controller does not act. Returns whether it did.
pub fn lock_down(shared: &Shared) -> bool {
    if shared.readiness.policy_loaded.load(Ordering::Acquire) {
        return false;
    }
    shared.policy.store(Arc::new(Policy::lockdown()));
    shared
        .readiness
        .policy_loaded
        .store(true, Ordering::Release);
    tracing::error!(
        "no valid policy since start: the lockdown policy is in force (enforce, nothing \
         sanctioned, no TTL deletions, no hold released) and the controller waits, until a valid \
         policy is applied"
    );
    true
}

async fn report_invalid(recorder: &Recorder, cm: &ConfigMap, message: &str, lockdown: bool) {
    let reference: ObjectReference = cm.object_ref(&());
    let in_force = if lockdown {
        "no valid policy was seen since start, so the lockdown policy is in force (enforce, \
         nothing sanctioned, no TTL deletions) and cleanups wait"
    } else {
        "the last good policy stays in force"
    };
    let event = KubeEvent {
        type_: EventType::Warning,
        reason: "InvalidPolicy".into(),
        note: Some(
            format!("policy refused, {in_force}: {message}")
                .chars()
                .take(1000)
                .collect(),
        ),
        action: "Reload".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &reference).await {
        tracing::warn!(error = %e, "cannot post InvalidPolicy Event");
    }
}
