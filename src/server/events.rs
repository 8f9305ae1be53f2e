//! Events on the objects whose deletion was blocked (or, in audit mode, would have been),
//! posted from a queue off the request path and rate-limited per object.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Client;
use tokio::sync::mpsc;

use crate::policy::{Decision, Outcome, Request};

/// One Event to post.
#[derive(Debug, Clone)]
pub struct Notice {
    pub reference: ObjectReference,
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

impl Notice {
    /// The Event for a decision on a request.
    pub fn from_decision(req: &Request, d: &Decision) -> Notice {
        let obj = req.current();
        let reason = match d.outcome {
            Outcome::Denied => "DeletionBlocked",
            Outcome::Neutered => "DeletionNeutered",
            _ => "DeletionWouldBeBlocked",
        };
        let note = if d.message.is_empty() {
            d.warnings.join("; ")
        } else {
            d.message.clone()
        };
        Notice {
            reference: ObjectReference {
                api_version: obj.map(|o| o.api_version.clone()).filter(|v| !v.is_empty()),
                kind: obj.map(|o| o.kind.clone()).filter(|k| !k.is_empty()),
                name: Some(req.name.clone()),
                // Events of cluster-scoped objects (Namespaces, CRDs) live in `default`; the API
                // server requires the reference to say so.
                namespace: Some(if req.namespace.is_empty() {
                    "default".to_string()
                } else {
                    req.namespace.clone()
                }),
                uid: obj
                    .map(|o| o.metadata.uid.clone())
                    .filter(|u| !u.is_empty()),
                ..Default::default()
            },
            warning: true,
            reason: reason.into(),
            note: format!("{note} (by {})", req.user.username),
        }
    }
}

/// How often one object may get an Event.
pub const PER_OBJECT_INTERVAL: Duration = Duration::from_secs(60);

/// Kind, namespace, name and reason: what one rate limit covers.
pub type NoticeKey = (Option<String>, Option<String>, Option<String>, String);

/// At most one Event per key per [`PER_OBJECT_INTERVAL`]; forgets old keys in one sweep per
/// interval, so a notice costs O(1) however many objects (a cascade of 10k Backups) came before.
#[derive(Debug)]
pub struct RateLimit {
    last: HashMap<NoticeKey, Instant>,
    swept: Instant,
}

impl RateLimit {
    pub fn new(now: Instant) -> RateLimit {
        RateLimit {
            last: HashMap::new(),
            swept: now,
        }
    }

    /// Whether `key` may get an Event at `now`; if so, its interval starts.
    pub fn allow(&mut self, key: NoticeKey, now: Instant) -> bool {
        if now.duration_since(self.swept) >= PER_OBJECT_INTERVAL {
            self.last
                .retain(|_, t| now.duration_since(*t) < PER_OBJECT_INTERVAL);
            self.swept = now;
        }
        match self.last.get(&key) {
            Some(t) if now.duration_since(*t) < PER_OBJECT_INTERVAL => false,
            _ => {
                self.last.insert(key, now);
                true
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.last.len()
    }
}

/// Posts queued notices until the queue closes.
pub async fn post_events(client: Client, mut rx: mpsc::Receiver<Notice>) {
    let recorder = Recorder::new(client, Reporter::from("backup-guard"));
    let mut limit = RateLimit::new(Instant::now());
    while let Some(n) = rx.recv().await {
        let key = (
            n.reference.kind.clone(),
            n.reference.namespace.clone(),
            n.reference.name.clone(),
            n.reason.clone(),
        );
        if !limit.allow(key, Instant::now()) {
            continue;
        }
        let event = Event {
            type_: if n.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: n.reason.clone(),
            note: Some(truncate(&n.note, 1000)),
            action: "Admission".into(),
            secondary: None,
        };
        match recorder.publish(&event, &n.reference).await {
            Ok(()) => {}
            Err(e) if refused_as_terminating(&e) => {
                tracing::debug!(reason = %n.reason, "no Event: its namespace is being deleted");
            }
            Err(e) => tracing::warn!(error = %e, reason = %n.reason, "cannot post Event"),
        }
    }
}

/// The API server refuses every new object, Events included, in a namespace being deleted
/// (NamespaceLifecycle: 403 with cause `NamespaceTerminating`): expected, not a fault to warn of.
fn refused_as_terminating(e: &kube::Error) -> bool {
    let kube::Error::Api(status) = e else {
        return false;
    };
    status.is_forbidden()
        && status
            .details
            .as_ref()
            .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> NoticeKey {
        (
            Some("Backup".into()),
            Some("velero".into()),
            Some(name.into()),
            "DeletionBlocked".into(),
        )
    }

    fn api_error(body: &str) -> kube::Error {
        kube::Error::Api(Box::new(serde_json::from_str(body).expect("a Status")))
    }

    #[test]
    fn an_event_refused_in_a_terminating_namespace_is_expected_other_refusals_are_not() {
        // As kube-apiserver 1.20.2 answered a POST of an events.k8s.io/v1 Event into a namespace
        // held in Terminating by a finalizer.
        let terminating = api_error(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"events.events.k8s.io \"probe.2\" is forbidden: unable to create new content in namespace term-x because it is being terminated","reason":"Forbidden","details":{"name":"probe.2","group":"events.k8s.io","kind":"events","causes":[{"reason":"NamespaceTerminating","message":"namespace term-x is being terminated","field":"metadata.namespace"}]},"code":403}"#,
        );
        assert!(refused_as_terminating(&terminating));
        let rbac = api_error(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"events.events.k8s.io is forbidden: User \"system:serviceaccount:backup-guard:backup-guard\" cannot create resource \"events\" in API group \"events.k8s.io\" in the namespace \"velero\"","reason":"Forbidden","details":{"group":"events.k8s.io","kind":"events"},"code":403}"#,
        );
        assert!(!refused_as_terminating(&rbac));
        let gone = api_error(
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"namespaces \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"namespaces"},"code":404}"#,
        );
        assert!(!refused_as_terminating(&gone));
    }

    #[test]
    fn one_event_per_object_per_interval() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(t0);
        assert!(limit.allow(key("a"), t0));
        assert!(!limit.allow(key("a"), t0 + Duration::from_secs(59)));
        assert!(limit.allow(key("b"), t0 + Duration::from_secs(1)));
        assert!(limit.allow(key("a"), t0 + PER_OBJECT_INTERVAL));
    }

    #[test]
    fn old_keys_are_forgotten_once_an_interval_not_on_every_notice() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(t0);
        for i in 0..10_000 {
            assert!(limit.allow(key(&i.to_string()), t0));
        }
        assert_eq!(limit.len(), 10_000);
        let later = t0 + PER_OBJECT_INTERVAL + Duration::from_secs(1);
        assert!(limit.allow(key("new"), later));
        assert_eq!(limit.len(), 1, "the sweep dropped every expired key");
    }
}
