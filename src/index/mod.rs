//! The compact in-memory view the webhook decides from: protected backups per namespace,
//! per storage location, snapshot contents, and object counts of the guarded CRDs.
//!
//! Pure data: fed by a watch in the server, by `--objects` files in `review`. Strings that
//! repeat (namespaces, locations) are interned; the sanction facts of a backup are boxed and
//! present only on backups that carry a delete request, so an ordinary backup costs little.

mod found;
mod load;

pub use found::Protected;
pub use load::{objects_from_text, LoadError};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;

use crate::policy::config::Policy;
use crate::policy::extension::extended_expiration;
use crate::policy::request::{Object, Resource};
use crate::policy::stamps::{label_value, sanction, SanctionFacts, VELERO_BACKUP_NAME};

/// The longest label value: a longer backup name is shortened in `velero.io/backup-name`.
const LABEL_MAX: usize = 63;

/// A Backup's labels, interned as a whole: the backups of one schedule share one set.
pub type Labels = BTreeMap<String, String>;

/// What the index remembers of one Backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupEntry {
    /// Its BackupStorageLocation (interned).
    pub location: Arc<str>,
    /// Its labels (interned), for the policy's `rules` when a request about the backup arrives
    /// on another object (a DeleteBackupRequest, a snapshot); `None` when it has none.
    pub labels: Option<Arc<Labels>>,
    /// `status.expiration`, unix seconds.
    pub expiration: Option<i64>,
    /// `status.expiration` was moved later than the one Velero uploaded
    /// ([`extended_expiration`]).
    pub extended: bool,
    /// Hold and request state; `None` for a backup with neither.
    pub facts: Option<Box<SanctionFacts>>,
}

impl BackupEntry {
    /// Whether it is on legal hold.
    pub fn held(&self) -> bool {
        self.facts.as_ref().is_some_and(|f| f.held)
    }

    /// Whether its expiration was moved later on the cluster and is still ahead at `now`: its
    /// cluster copy keeps the data past the uploaded expiration.
    pub fn extended_at(&self, now: i64) -> bool {
        self.extended && self.expiration.is_some_and(|e| e > now)
    }

    /// Whether deletion is sanctioned under `policy` at `now`.
    pub fn sanctioned(&self, policy: &Policy, now: i64) -> bool {
        self.facts
            .as_ref()
            .is_some_and(|f| sanction(f, policy, now).is_ok())
    }

    /// Its labels (empty when it has none).
    pub fn labels(&self) -> &Labels {
        static EMPTY: Labels = BTreeMap::new();
        self.labels.as_deref().unwrap_or(&EMPTY)
    }
}

/// What the index remembers of one VolumeSnapshotContent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentEntry {
    /// `spec.deletionPolicy` is `Delete`.
    pub deletes_storage: bool,
    /// `velero.io/backup-name`, when Velero made it.
    pub backup: Option<Arc<str>>,
    /// The VolumeSnapshot it belongs to (namespace, name).
    pub snapshot: Option<(Arc<str>, Box<str>)>,
}

#[derive(Debug, Default)]
struct NamespaceEntry {
    backups: HashMap<Box<str>, BackupEntry>,
    /// Backups whose facts might sanction them; zero means every backup here is protected.
    maybe_sanctioned: usize,
    /// Backups per storage location name.
    locations: HashMap<Arc<str>, usize>,
}

/// The index. Reads are `&self`; the watch applies changes through `&mut self`.
#[derive(Debug, Default)]
pub struct Index {
    namespaces: HashMap<Arc<str>, NamespaceEntry>,
    contents: HashMap<Box<str>, ContentEntry>,
    /// VolumeSnapshot (namespace, name) → its content, from `spec.volumeSnapshotRef`.
    content_of_snapshot: HashMap<(Arc<str>, Box<str>), Box<str>>,
    delete_requests: HashSet<(Arc<str>, Box<str>)>,
    storage_locations: HashSet<(Arc<str>, Box<str>)>,
    strings: HashSet<Arc<str>>,
    label_sets: HashSet<Arc<Labels>>,
    backups_total: usize,
}

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index::default()
    }

    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(existing) = self.strings.get(s) {
            return existing.clone();
        }
        let new: Arc<str> = s.into();
        self.strings.insert(new.clone());
        new
    }

    fn intern_labels(&mut self, labels: &Labels) -> Option<Arc<Labels>> {
        if labels.is_empty() {
            return None;
        }
        if let Some(existing) = self.label_sets.get(labels) {
            return Some(existing.clone());
        }
        let new = Arc::new(labels.clone());
        self.label_sets.insert(new.clone());
        Some(new)
    }

    /// Adds or replaces an object of a guarded kind; the signing key verifies stamps once here.
    pub fn apply(&mut self, resource: Resource, obj: &Object, key: &[u8]) {
        let ns = obj.metadata.namespace.as_str();
        let name = obj.metadata.name.as_str();
        match resource {
            Resource::Backup => {
                let facts = SanctionFacts::of(&obj.metadata, key);
                let entry = BackupEntry {
                    location: self.intern(obj.spec.storage_location.as_deref().unwrap_or("")),
                    labels: self.intern_labels(&obj.metadata.labels),
                    expiration: obj
                        .status
                        .expiration
                        .as_deref()
                        .and_then(|e| e.parse::<Timestamp>().ok())
                        .map(|t| t.as_second()),
                    extended: extended_expiration(obj).is_some(),
                    facts: (facts != SanctionFacts::default()).then(|| Box::new(facts)),
                };
                self.remove(resource, ns, name);
                let ns = self.intern(ns);
                let slot = self.namespaces.entry(ns).or_default();
                slot.maybe_sanctioned += usize::from(maybe(&entry));
                *slot.locations.entry(entry.location.clone()).or_default() += 1;
                slot.backups.insert(name.into(), entry);
                self.backups_total += 1;
            }
            Resource::VolumeSnapshotContent => {
                self.remove(resource, ns, name);
                let backup = obj.label(VELERO_BACKUP_NAME).map(|b| self.intern(b));
                let snapshot = obj
                    .spec
                    .volume_snapshot_ref
                    .as_ref()
                    .map(|r| (self.intern(&r.namespace), Box::<str>::from(r.name.as_str())));
                if let Some(s) = &snapshot {
                    self.content_of_snapshot.insert(s.clone(), name.into());
                }
                let entry = ContentEntry {
                    deletes_storage: obj.spec.deletion_policy.as_deref() == Some("Delete"),
                    backup,
                    snapshot,
                };
                self.contents.insert(name.into(), entry);
            }
            Resource::DeleteBackupRequest => {
                let key = (self.intern(ns), name.into());
                self.delete_requests.insert(key);
            }
            Resource::BackupStorageLocation => {
                let key = (self.intern(ns), name.into());
                self.storage_locations.insert(key);
            }
            _ => {}
        }
    }

    /// Forgets an object.
    pub fn remove(&mut self, resource: Resource, ns: &str, name: &str) {
        match resource {
            Resource::Backup => {
                let Some(slot) = self.namespaces.get_mut(ns) else {
                    return;
                };
                let Some(old) = slot.backups.remove(name) else {
                    return;
                };
                self.backups_total -= 1;
                // A label set no other backup shares goes with its last backup.
                if let Some(labels) = &old.labels {
                    if Arc::strong_count(labels) == 2 {
                        self.label_sets.remove(&**labels);
                    }
                }
                slot.maybe_sanctioned -= usize::from(maybe(&old));
                if let Some(n) = slot.locations.get_mut(&old.location) {
                    *n -= 1;
                    if *n == 0 {
                        slot.locations.remove(&old.location);
                    }
                }
                if slot.backups.is_empty() {
                    self.namespaces.remove(ns);
                }
            }
            Resource::VolumeSnapshotContent => {
                if let Some(old) = self.contents.remove(name) {
                    if let Some(s) = old.snapshot {
                        self.content_of_snapshot.remove(&s);
                    }
                }
            }
            Resource::DeleteBackupRequest => {
                self.delete_requests
                    .remove(&(Arc::from(ns), Box::from(name)));
            }
            Resource::BackupStorageLocation => {
                self.storage_locations
                    .remove(&(Arc::from(ns), Box::from(name)));
            }
            _ => {}
        }
    }

    /// Forgets every object of a kind (before a relist replaces them).
    pub fn clear(&mut self, resource: Resource) {
        match resource {
            Resource::Backup => {
                self.namespaces.clear();
                self.label_sets.clear();
                self.backups_total = 0;
            }
            Resource::VolumeSnapshotContent => {
                self.contents.clear();
                self.content_of_snapshot.clear();
            }
            Resource::DeleteBackupRequest => self.delete_requests.clear(),
            Resource::BackupStorageLocation => self.storage_locations.clear(),
            _ => {}
        }
    }

    /// A backup by namespace and name.
    ///
    /// `name` may also be the value Velero writes into a `velero.io/backup-name` label, which for
    /// a name longer than 63 characters is shortened with a hash (`label_value`): such a value
    /// finds its backup too, by a pass over the namespace's long names (rare).
    pub fn backup(&self, ns: &str, name: &str) -> Option<&BackupEntry> {
        let slot = self.namespaces.get(ns)?;
        if let Some(entry) = slot.backups.get(name) {
            return Some(entry);
        }
        if name.len() != LABEL_MAX {
            return None;
        }
        slot.backups
            .iter()
            .find(|(n, _)| n.len() > LABEL_MAX && label_value(n) == name)
            .map(|(_, e)| e)
    }

    /// Every backup in a namespace (for tools and the controller).
    pub fn backups_in<'a>(&'a self, ns: &str) -> impl Iterator<Item = (&'a str, &'a BackupEntry)> {
        self.namespaces
            .get(ns)
            .into_iter()
            .flat_map(|slot| slot.backups.iter().map(|(n, e)| (&**n, e)))
    }

    /// How many backups in `ns` are stored in location `location`.
    pub fn backups_at_location(&self, ns: &str, location: &str) -> usize {
        self.namespaces
            .get(ns)
            .and_then(|slot| slot.locations.get(location))
            .copied()
            .unwrap_or(0)
    }

    /// A VolumeSnapshotContent by name.
    pub fn content(&self, name: &str) -> Option<&ContentEntry> {
        self.contents.get(name)
    }

    /// A VolumeSnapshotContent by name, with the name as the index holds it.
    pub fn content_named(&self, name: &str) -> Option<(&str, &ContentEntry)> {
        self.contents.get_key_value(name).map(|(n, c)| (&**n, c))
    }

    /// The content bound to a VolumeSnapshot, by the content's `volumeSnapshotRef`.
    pub fn content_for_snapshot(&self, ns: &str, name: &str) -> Option<(&str, &ContentEntry)> {
        let content = self
            .content_of_snapshot
            .get(&(Arc::from(ns), Box::from(name)))?;
        self.contents.get(content).map(|c| (&**content, c))
    }

    /// How many objects of a guarded CRD exist (what a CRD deletion would take with it).
    pub fn count(&self, resource: Resource) -> usize {
        match resource {
            Resource::Backup => self.backups_total,
            Resource::DeleteBackupRequest => self.delete_requests.len(),
            Resource::BackupStorageLocation => self.storage_locations.len(),
            Resource::VolumeSnapshotContent => self.contents.len(),
            _ => 0,
        }
    }

    /// VolumeSnapshotContents made by Velero whose deletion would delete the storage snapshot.
    pub fn deleting_velero_contents(&self) -> usize {
        self.contents
            .values()
            .filter(|c| c.deletes_storage && c.backup.is_some())
            .count()
    }
}

fn maybe(entry: &BackupEntry) -> bool {
    entry.facts.as_ref().is_some_and(|f| f.may_be_sanctioned())
}

#[cfg(test)]
mod tests;
