//! The controller's context: the API client, the policy in force, the signing key, metrics,
//! leadership, and what this process remembers between reconciles.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kube::runtime::events::{Recorder, Reporter};
use kube::Client;
use tokio::sync::watch;

use super::apply::Report;
use super::error::Error;
use super::observe;
use super::plan::Observed;
use crate::metrics::Metrics;
use crate::policy::request::Object;
use crate::policy::stamps::{sanction, SanctionFacts, Unsanctioned};
use crate::policy::Policy;
use crate::server::state::{now, Shared};
use crate::storage::ClientSettings;

/// The reason of the Event a failed cleanup attempt posts.
pub const FAILED: &str = "CleanupFailed";

/// Velero takes one DeleteBackupRequest at a time and a deletion with snapshots takes minutes,
/// so a queue of them is normal; half an hour with nothing taken is not.
pub const VELERO_IDLE_AFTER: Duration = Duration::from_secs(30 * 60);

/// What the controller needs to clean up backups.
pub struct Cleaner {
    pub(super) client: Client,
    /// The policy source (the same watch or file the webhook reads) and the signing key.
    policy: Arc<Shared>,
    pub(super) metrics: Metrics,
    leader: watch::Receiver<bool>,
    pub(super) settings: ClientSettings,
    /// How long Velero may leave a DeleteBackupRequest untaken before it counts as a failure.
    velero_idle_after: Duration,
    pub(super) reporter: Reporter,
    memory: Mutex<Memory>,
}

/// Per-backup bookkeeping that may be lost on restart without harm.
#[derive(Default)]
struct Memory {
    /// When this process started working on a backup (for the duration metric).
    started: HashMap<String, Instant>,
    /// DeleteBackupRequests whose errors were already reported.
    reported: HashSet<String>,
    /// Consecutive failures per backup (for the retry backoff).
    failures: HashMap<String, u32>,
    /// The DeleteBackupRequest filed per backup (velero engine): Velero deletes it once done.
    filed: HashMap<String, String>,
    /// Backups waiting for Velero to finish writing them (one Event per wait).
    waiting: HashSet<String>,
    /// What this process's passes deleted so far, per backup.
    tallies: HashMap<String, Report>,
    /// Why a cleanup was last stopped, per backup (one Event per reason).
    stopped: HashMap<String, Unsanctioned>,
    /// The last failure Event posted per backup (its note) and the recorder that posted it,
    /// while it is the backup's last Event: the same failure again counts up its series instead
    /// of adding an Event.
    failures_posted: HashMap<String, (String, Recorder)>,
}

impl Cleaner {
    /// A cleaner reading policy and key from `policy`, writing only while `leader` holds true.
    pub fn new(
        client: Client,
        policy: Arc<Shared>,
        metrics: Metrics,
        leader: watch::Receiver<bool>,
        identity: &str,
    ) -> Cleaner {
        Cleaner {
            client,
            policy,
            metrics,
            leader,
            settings: ClientSettings::default(),
            velero_idle_after: VELERO_IDLE_AFTER,
            reporter: Reporter {
                controller: "backup-guard-controller".into(),
                instance: Some(identity.into()),
            },
            memory: Mutex::new(Memory::default()),
        }
    }

    /// Uses these HTTP settings for object storage (tests shorten the retries).
    pub fn with_storage_settings(mut self, settings: ClientSettings) -> Cleaner {
        self.settings = settings;
        self
    }

    /// Counts a DeleteBackupRequest Velero has left untaken this long as a failed cleanup.
    pub fn with_velero_idle_after(mut self, after: Duration) -> Cleaner {
        self.velero_idle_after = after;
        self
    }

    /// The policy in force now.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.policy.load_full()
    }

    /// The stamps on `backup` and whether they sanction its deletion now: the webhook's own test.
    pub fn sanction(&self, backup: &Object) -> (SanctionFacts, Result<(), Unsanctioned>) {
        let facts = SanctionFacts::of(&backup.metadata, &self.policy.key);
        let verdict = sanction(&facts, &self.policy(), now());
        (facts, verdict)
    }

    /// Whether this replica holds the lease.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Observes a backup for [`super::plan::plan`].
    pub async fn observe(&self, backup: &Object) -> Result<Observed, Error> {
        let (_, verdict) = self.sanction(backup);
        let policy = self.policy();
        let reported = |name: &str| self.memory().reported.contains(name);
        let velero = policy.velero.namespace.as_str();
        observe::observe(
            &self.client,
            backup,
            verdict,
            policy.cleanup.engine,
            velero,
            &reported,
            i64::try_from(self.velero_idle_after.as_secs()).unwrap_or(i64::MAX),
        )
        .await
    }

    fn memory(&self) -> MutexGuard<'_, Memory> {
        // Every update is a single insert or remove, so a panicked holder left it consistent.
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn mark_reported(&self, request: &str) {
        self.memory().reported.insert(request.into());
    }

    pub(super) fn mark_started(&self, uid: &str) {
        let mut memory = self.memory();
        memory.stopped.remove(uid);
        memory
            .started
            .entry(uid.into())
            .or_insert_with(Instant::now);
    }

    pub(super) fn mark_filed(&self, uid: &str, request: &str) {
        self.memory().filed.insert(uid.into(), request.into());
    }

    /// The DeleteBackupRequest this process filed for the backup, if any.
    pub(super) fn filed_request(&self, uid: &str) -> Option<String> {
        self.memory().filed.get(uid).cloned()
    }

    /// Records why a backup's cleanup stopped; true when that is news (the stop's Event).
    pub(super) fn mark_stopped(&self, uid: &str, why: Unsanctioned) -> bool {
        self.memory().stopped.insert(uid.into(), why) != Some(why)
    }

    /// Marks a backup as waiting for Velero; true the first time (the wait's Event).
    pub(super) fn mark_waiting(&self, uid: &str) -> bool {
        self.memory().waiting.insert(uid.into())
    }

    /// Adds a pass's report to the backup's tally and returns the tally. `resumed`: the pass did
    /// not start the cleanup, so when this process never saw its start, earlier processes did
    /// part of it.
    pub(super) fn tally(&self, uid: &str, pass: &Report, resumed: bool) -> Report {
        let mut memory = self.memory();
        let tally = memory.tallies.entry(uid.into()).or_insert_with(|| Report {
            resumed,
            ..Report::default()
        });
        tally.add(pass);
        tally.clone()
    }

    /// Forgets a finished backup; returns how long this process worked on it.
    pub(super) fn finish(&self, uid: &str) -> Duration {
        let mut memory = self.memory();
        memory.failures.remove(uid);
        memory.filed.remove(uid);
        memory.waiting.remove(uid);
        memory.tallies.remove(uid);
        memory.failures_posted.remove(uid);
        memory
            .started
            .remove(uid)
            .map_or(Duration::ZERO, |t| t.elapsed())
    }

    /// The recorder for an Event on a backup. A failure (`CleanupFailed`) that repeats the
    /// backup's last Event word for word gets the recorder that posted it, so it is counted in
    /// that Event's series; anything else a fresh one, as a recorder folds every Event of one
    /// reason into the first one's note. Only a failure is remembered, until the next Event.
    pub(super) fn recorder(&self, uid: &str, reason: &str, note: &str) -> Recorder {
        let mut memory = self.memory();
        if reason != FAILED {
            memory.failures_posted.remove(uid);
            return Recorder::new(self.client.clone(), self.reporter.clone());
        }
        if let Some((last, recorder)) = memory.failures_posted.get(uid) {
            if last == note {
                return recorder.clone();
            }
        }
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        let last = (note.to_string(), recorder.clone());
        memory.failures_posted.insert(uid.into(), last);
        recorder
    }

    /// Counts a failure; returns the delay before the next attempt (5 s doubling up to 5 min).
    pub(super) fn backoff(&self, uid: &str) -> Duration {
        let mut memory = self.memory();
        let n = memory.failures.entry(uid.into()).or_insert(0);
        *n = n.saturating_add(1);
        retry_delay(*n)
    }

    /// A success resets the backoff.
    pub(super) fn succeeded(&self, uid: &str) {
        self.memory().failures.remove(uid);
    }
}

/// The delay before attempt `n + 1` after `n` consecutive failures.
pub fn retry_delay(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(6);
    Duration::from_secs((5u64 << exp).min(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_five_seconds_to_five_minutes() {
        let delays: Vec<u64> = (1..=9).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, vec![5, 10, 20, 40, 80, 160, 300, 300, 300]);
    }
}
