//! What the handlers share: policy, index, key, metrics, readiness, and the Event queue.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use tokio::sync::mpsc;

use super::events::Notice;
use crate::index::Index;
use crate::metrics::Metrics;
use crate::policy::Policy;

/// Why the process is or is not ready.
#[derive(Debug, Default)]
pub struct Readiness {
    pub index_synced: AtomicBool,
    /// A policy is in force: the configured one, or the lockdown while it is invalid.
    pub policy_loaded: AtomicBool,
    /// The policy in force is the configured one (valid, or the default for an absent
    /// ConfigMap): the controller acts only then.
    pub policy_configured: AtomicBool,
    pub shutting_down: AtomicBool,
}

impl Readiness {
    /// Ready to answer: index synced, a policy in force, not draining.
    pub fn ready(&self) -> bool {
        self.index_synced.load(Ordering::Acquire)
            && self.policy_loaded.load(Ordering::Acquire)
            && !self.shutting_down.load(Ordering::Acquire)
    }
}

/// The state behind every request.
pub struct Shared {
    pub policy: ArcSwap<Policy>,
    pub index: RwLock<Index>,
    pub key: Vec<u8>,
    pub metrics: Metrics,
    pub readiness: Readiness,
    /// Blocked deletions to report as Events; `None` where nothing posts them (tests, offline).
    pub notices: Option<mpsc::Sender<Notice>>,
}

impl Shared {
    /// Shared state with an empty index.
    pub fn new(
        policy: Policy,
        key: Vec<u8>,
        metrics: Metrics,
        notices: Option<mpsc::Sender<Notice>>,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            policy: ArcSwap::from_pointee(policy),
            index: RwLock::new(Index::new()),
            key,
            metrics,
            readiness: Readiness::default(),
            notices,
        })
    }

    /// Reads the index; a writer that panicked left it whole (every write is one call), so use it.
    pub fn read_index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes the index.
    pub fn write_index(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
