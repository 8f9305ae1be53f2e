//! Leader election on a `coordination.k8s.io/v1` Lease, so that one replica writes at a time.
//!
//! kube-runtime 5 has no lease helper, so this is the small loop client-go runs: create the Lease
//! or renew it while we hold it (optimistic concurrency on `resourceVersion`), take it over once
//! its holder stopped renewing for a whole `leaseDurationSeconds` as *we* observed it (so clock
//! skew between replicas does not matter), step down when renewing fails past the deadline, and
//! release it on shutdown so a standby takes over at once.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::Client;
use tokio::sync::watch;

/// The Lease's name.
pub const LEASE_NAME: &str = "backup-guard-controller";

/// Timing of the election (client-go's defaults).
#[derive(Debug, Clone, Copy)]
pub struct LeaseSettings {
    /// How long a holder's lease lasts without renewal.
    pub duration: Duration,
    /// How long a leader keeps leading while renewals fail.
    pub renew_deadline: Duration,
    /// How often the leader renews and a standby tries.
    pub retry_period: Duration,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        LeaseSettings {
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What to do with the Lease as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nobody holds it, or its holder stopped renewing: take it.
    Acquire,
    /// We hold it: renew.
    Renew,
    /// Someone else holds it.
    Follow(String),
}

/// Decides from the holder and whether its lease has run out.
pub fn decide(holder: Option<&str>, me: &str, expired: bool) -> Decision {
    match holder.filter(|h| !h.is_empty()) {
        None => Decision::Acquire,
        Some(h) if h == me => Decision::Renew,
        Some(_) if expired => Decision::Acquire,
        Some(h) => Decision::Follow(h.to_string()),
    }
}

/// Tracks when this replica last saw the Lease record change, by its own clock.
#[derive(Debug, Default)]
pub struct Observer {
    last: Option<(String, Instant)>,
}

impl Observer {
    /// Whether the record (holder and renew time) has stayed unchanged longer than `duration`.
    pub fn expired(&mut self, record: &str, duration: Duration, now: Instant) -> bool {
        match &self.last {
            Some((seen, at)) if seen == record => now.duration_since(*at) > duration,
            _ => {
                self.last = Some((record.to_string(), now));
                false
            }
        }
    }
}

/// This replica's identity: the pod name (HOSTNAME) plus a random suffix, so two processes on
/// one host never both believe they hold the lease.
pub fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "backup-guard".into());
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    format!("{host}-{:08x}", hasher.finish() as u32)
}

fn spec(me: &str, settings: &LeaseSettings, transitions: i32, acquired: Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(me.into()),
        lease_duration_seconds: Some(settings.duration.as_secs().try_into().unwrap_or(15)),
        acquire_time: Some(MicroTime(acquired)),
        renew_time: Some(MicroTime(Timestamp::now())),
        lease_transitions: Some(transitions),
        ..Default::default()
    }
}

/// One election round; returns whether we hold the lease afterwards.
async fn round(
    api: &Api<Lease>,
    me: &str,
    settings: &LeaseSettings,
    observer: &mut Observer,
) -> Result<bool, kube::Error> {
    let Some(mut lease) = api.get_opt(LEASE_NAME).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(LEASE_NAME.into()),
                ..Default::default()
            },
            spec: Some(spec(me, settings, 0, Timestamp::now())),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(false),
            Err(e) => Err(e),
        };
    };
    let current = lease.spec.clone().unwrap_or_default();
    let holder = current.holder_identity.as_deref();
    let record = format!("{holder:?}/{:?}", current.renew_time.as_ref().map(|t| t.0));
    let duration = Duration::from_secs(
        current
            .lease_duration_seconds
            .map_or(15, |s| s.max(1) as u64),
    );
    let expired = observer.expired(&record, duration, Instant::now());
    let transitions = current.lease_transitions.unwrap_or(0);
    lease.spec = Some(match decide(holder, me, expired) {
        Decision::Follow(_) => return Ok(false),
        Decision::Renew => {
            let acquired = current.acquire_time.map_or_else(Timestamp::now, |t| t.0);
            spec(me, settings, transitions, acquired)
        }
        Decision::Acquire => spec(me, settings, transitions + 1, Timestamp::now()),
    });
    // `lease` carries the resourceVersion we read: a concurrent writer makes this a conflict.
    match api
        .replace(LEASE_NAME, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.is_conflict() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives the lease up if we hold it, so a standby need not wait for it to run out.
async fn release(api: &Api<Lease>, me: &str) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(LEASE_NAME).await? else {
        return Ok(());
    };
    let Some(spec) = lease.spec.as_mut() else {
        return Ok(());
    };
    if spec.holder_identity.as_deref() != Some(me) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    api.replace(LEASE_NAME, &PostParams::default(), &lease)
        .await
        .map(|_| ())
}

/// Runs the election until `stop` turns true, publishing leadership on `leader`.
pub async fn elect(
    client: Client,
    namespace: String,
    me: String,
    settings: LeaseSettings,
    leader: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let api: Api<Lease> = Api::namespaced(client, &namespace);
    let mut observer = Observer::default();
    let mut renewed: Option<Instant> = None;
    while !*stop.borrow() {
        // A round may not outlast the renew deadline: an API server that stops answering must
        // not keep a leader leading for the client's own timeout (minutes) while a standby takes
        // the lease over after `duration`.
        let budget = renewed.map_or(settings.renew_deadline, |t| {
            settings.renew_deadline.saturating_sub(t.elapsed())
        });
        let attempt = tokio::time::timeout(budget, round(&api, &me, &settings, &mut observer));
        match attempt.await {
            Ok(Ok(true)) => renewed = Some(Instant::now()),
            Ok(Ok(false)) => renewed = None,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, lease = LEASE_NAME, namespace, "leader election: cannot read or renew the Lease")
            }
            Err(_) => {
                tracing::warn!(lease = LEASE_NAME, namespace, waited = ?budget, "leader election: the API server did not answer in time")
            }
        }
        let leading = renewed.is_some_and(|t| t.elapsed() < settings.renew_deadline);
        if leading != *leader.borrow() {
            tracing::info!(identity = %me, leading, "leader election: {}", if leading { "now leading; the controller starts writing" } else { "not leading; the controller stands by" });
        }
        leader.send_replace(leading);
        tokio::select! {
            _ = tokio::time::sleep(settings.retry_period) => {}
            _ = stop.changed() => {}
        }
    }
    if leader.send_replace(false) {
        if let Err(e) = release(&api, &me).await {
            tracing::warn!(error = %e, "leader election: cannot release the Lease; a standby takes over once it runs out");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_or_own_lease_is_taken_someone_elses_is_followed_until_it_runs_out() {
        assert_eq!(decide(None, "a", false), Decision::Acquire);
        assert_eq!(decide(Some(""), "a", false), Decision::Acquire);
        assert_eq!(decide(Some("a"), "a", false), Decision::Renew);
        assert_eq!(decide(Some("b"), "a", false), Decision::Follow("b".into()));
        assert_eq!(decide(Some("b"), "a", true), Decision::Acquire);
    }

    #[test]
    fn expiry_is_measured_from_when_this_replica_saw_the_record_change() {
        let mut o = Observer::default();
        let t0 = Instant::now();
        let d = Duration::from_secs(15);
        assert!(!o.expired("b/1", d, t0), "first sight starts the clock");
        assert!(!o.expired("b/1", d, t0 + Duration::from_secs(10)));
        assert!(o.expired("b/1", d, t0 + Duration::from_secs(16)));
        assert!(
            !o.expired("b/2", d, t0 + Duration::from_secs(17)),
            "a renewal restarts it"
        );
    }

    #[test]
    fn identities_differ_between_processes_on_one_host() {
        assert_ne!(identity(), identity());
    }
}
