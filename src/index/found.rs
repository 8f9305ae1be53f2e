//! What the index finds in a namespace for a namespace DELETE: its protected, held and
//! extended backups, counted and named the same way on every replica.

use super::{BackupEntry, Index, NamespaceEntry};
use crate::policy::config::Policy;

/// Protected backups found in a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protected {
    pub count: usize,
    /// Up to the number of names asked for, sorted.
    pub names: Vec<String>,
}

/// The first `max` names, in name order, of the namespace's backups that `keep` accepts: the
/// same names from every replica and on every retry. One pass, keeping the smallest sorted: most
/// names lose one comparison to the last kept.
fn first_names(
    slot: &NamespaceEntry,
    max: usize,
    keep: impl Fn(&BackupEntry) -> bool,
) -> Vec<String> {
    let mut first: Vec<&str> = Vec::with_capacity(max + 1);
    if max > 0 {
        for (name, e) in &slot.backups {
            let name: &str = name;
            if first.len() == max && first.last().is_some_and(|last| name >= *last) {
                continue;
            }
            if !keep(e) {
                continue;
            }
            first.insert(first.partition_point(|n| *n < name), name);
            first.truncate(max);
        }
    }
    first.into_iter().map(str::to_owned).collect()
}

impl Index {
    /// Unsanctioned backups in all namespaces.
    pub fn protected_total(&self, policy: &Policy, now: i64) -> usize {
        self.namespaces
            .keys()
            .map(|ns| self.protected_in(ns, policy, now, 0).count)
            .sum()
    }

    /// Unsanctioned backups in a namespace, with the first `max_names` of their names in name
    /// order: the same names from every replica and on every retry.
    ///
    /// The count is O(1) unless some backup there carries a signed request; the names take one
    /// pass over the namespace's backups (a namespace DELETE, not the per-Backup path).
    pub fn protected_in(&self, ns: &str, policy: &Policy, now: i64, max_names: usize) -> Protected {
        let Some(slot) = self
            .namespaces
            .get(ns)
            .filter(|slot| slot.maybe_sanctioned == 0)
        else {
            return self.found_in(ns, max_names, |e| !e.sanctioned(policy, now));
        };
        Protected {
            count: slot.backups.len(),
            names: first_names(slot, max_names, |_| true),
        }
    }

    /// Backups on legal hold in a namespace, with the first `max_names` of their names in name
    /// order. One pass over the namespace's backups: a namespace DELETE in neuter mode only.
    pub fn held_in(&self, ns: &str, max_names: usize) -> Protected {
        self.found_in(ns, max_names, BackupEntry::held)
    }

    /// Backups in a namespace whose expiration was moved later and is still ahead at `now`
    /// ([`BackupEntry::extended_at`]), named as by [`Index::held_in`].
    pub fn extended_in(&self, ns: &str, now: i64, max_names: usize) -> Protected {
        self.found_in(ns, max_names, |e| e.extended_at(now))
    }

    fn found_in(
        &self,
        ns: &str,
        max_names: usize,
        keep: impl Fn(&BackupEntry) -> bool,
    ) -> Protected {
        let Some(slot) = self.namespaces.get(ns) else {
            return Protected {
                count: 0,
                names: vec![],
            };
        };
        Protected {
            count: slot.backups.values().filter(|e| keep(e)).count(),
            names: first_names(slot, max_names, keep),
        }
    }

    /// Backups on legal hold in every namespace, named `namespace/name`, the first `max_names`
    /// in that order. One pass over every backup: a DELETE of the Backup CRD only.
    pub fn held_anywhere(&self, max_names: usize) -> Protected {
        self.found_anywhere(max_names, BackupEntry::held)
    }

    /// Backups in every namespace whose expiration was moved later and is still ahead at `now`,
    /// named as by [`Index::held_anywhere`].
    pub fn extended_anywhere(&self, now: i64, max_names: usize) -> Protected {
        self.found_anywhere(max_names, |e| e.extended_at(now))
    }

    fn found_anywhere(&self, max_names: usize, keep: impl Fn(&BackupEntry) -> bool) -> Protected {
        let mut namespaces: Vec<&str> = self.namespaces.keys().map(|ns| &**ns).collect();
        namespaces.sort_unstable();
        let mut found = Protected {
            count: 0,
            names: vec![],
        };
        for ns in namespaces {
            let here = self.found_in(ns, max_names - found.names.len(), &keep);
            found.count += here.count;
            found
                .names
                .extend(here.names.into_iter().map(|name| format!("{ns}/{name}")));
        }
        found
    }
}
