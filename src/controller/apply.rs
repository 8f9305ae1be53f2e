//! Carries out a plan, one step at a time, re-checking sanction and leadership before each step
//! that starts or destroys something, and again between listing files and deleting them.

use std::time::Duration;

use super::cleaner::Cleaner;
use super::error::Error;
use super::kinds::Kind;
use super::location;
use super::observe::current_backup;
use super::plan::{Named, Step};
use super::steps;
use crate::policy::request::Object;
use crate::policy::stamps::Unsanctioned;
use crate::storage::{self, Location, Provider};

/// What one pass deleted, for the Event and the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The location's provider, once resolved.
    pub provider: Option<Provider>,
    /// Keys deleted under `backups/<name>/`.
    pub backup_keys: usize,
    pub restores: usize,
    /// Keys deleted under `restores/<restore>/`.
    pub restore_keys: usize,
    /// VolumeSnapshotContents deleted (with `Delete`, so the driver removed the snapshots).
    pub contents: usize,
    pub snapshots: usize,
    pub pod_volume_backups: usize,
    /// The DeleteBackupRequest filed (velero engine).
    pub delete_request: Option<String>,
    /// The cleanup was started by an earlier process: the counts cover only this one's part.
    pub resumed: bool,
}

impl Report {
    /// Adds what a later pass deleted.
    pub fn add(&mut self, pass: &Report) {
        self.provider = pass.provider.or(self.provider);
        self.backup_keys += pass.backup_keys;
        self.restores += pass.restores;
        self.restore_keys += pass.restore_keys;
        self.contents += pass.contents;
        self.snapshots += pass.snapshots;
        self.pod_volume_backups += pass.pod_volume_backups;
        if pass.delete_request.is_some() {
            self.delete_request.clone_from(&pass.delete_request);
        }
    }
}

/// How a pass ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step ran.
    Completed,
    /// Velero is working on a DeleteBackupRequest; look again after this long.
    Waiting(Duration),
    /// Right before a step, or between listing files and deleting them, the backup was no longer
    /// sanctioned; nothing further was done.
    Stopped(Unsanctioned),
    /// The Backup is gone (or was replaced by another object of the same name).
    Gone,
}

/// A failed step and what the pass had done before it.
#[derive(Debug)]
pub struct Failure {
    pub step: Step,
    pub error: Error,
}

/// How often the velero engine looks at a DeleteBackupRequest in progress.
const POLL: Duration = Duration::from_secs(5);

impl Cleaner {
    /// Runs `steps` in order against `backup`; stops at the first failure.
    pub async fn apply(
        &self,
        backup: &Object,
        steps: &[Step],
        report: &mut Report,
    ) -> Result<Outcome, Failure> {
        let mut location: Option<Location> = None;
        let mut current = backup.clone();
        for step in steps {
            let fail = |error| Failure {
                step: step.clone(),
                error,
            };
            // Every step, even one that needs no fresh sanction, is this replica's only while it
            // leads.
            if !self.is_leader() {
                return Err(fail(Error::NotLeader));
            }
            if step.needs_sanction() {
                match self.recheck(backup).await.map_err(fail)? {
                    Ok(fresh) => current = fresh,
                    Err(outcome) => return Ok(outcome),
                }
            }
            let outcome = self
                .run_step(&current, step, &mut location, report)
                .await
                .map_err(fail)?;
            if let Some(outcome) = outcome {
                return Ok(outcome);
            }
        }
        Ok(Outcome::Completed)
    }

    /// The Backup as it is now, if it is still sanctioned and this replica still leads.
    async fn recheck(&self, backup: &Object) -> Result<Result<Object, Outcome>, Error> {
        if !self.is_leader() {
            return Err(Error::NotLeader);
        }
        let meta = &backup.metadata;
        let Some(now) =
            current_backup(&self.client, &meta.namespace, &meta.name, &meta.uid).await?
        else {
            return Ok(Err(Outcome::Gone));
        };
        Ok(match self.sanction(&now).1 {
            Ok(()) => Ok(now),
            Err(why) => Err(Outcome::Stopped(why)),
        })
    }

    /// One step; `Some` ends the pass early.
    async fn run_step(
        &self,
        backup: &Object,
        step: &Step,
        location: &mut Option<Location>,
        report: &mut Report,
    ) -> Result<Option<Outcome>, Error> {
        let (c, ns) = (&self.client, backup.metadata.namespace.as_str());
        match step {
            Step::AddFinalizer => steps::add_finalizer(c, backup).await?,
            Step::DeleteBackupFiles => {
                return self.delete_files(backup, None, location, report).await
            }
            Step::DeleteRestoreFiles(r) => {
                return self.delete_files(backup, Some(r), location, report).await
            }
            Step::ReleaseRestore(r) => steps::release_restore(c, ns, r).await?,
            Step::DeleteRestore(r) => {
                report.restores += usize::from(steps::delete(c, Kind::Restore, Some(ns), r).await?)
            }
            Step::SetContentDelete(name) => {
                steps::set_content_delete(c, name).await?;
            }
            Step::DeleteSnapshot(Named { namespace, name }) => {
                let deleted = steps::delete(c, Kind::VolumeSnapshot, Some(namespace), name).await?;
                report.snapshots += usize::from(deleted);
            }
            Step::DeleteContent(name) => {
                let deleted = steps::delete(c, Kind::VolumeSnapshotContent, None, name).await?;
                report.contents += usize::from(deleted);
            }
            Step::DeletePodVolumeBackup(name) => {
                let deleted = steps::delete(c, Kind::PodVolumeBackup, Some(ns), name).await?;
                report.pod_volume_backups += usize::from(deleted);
            }
            Step::FileDeleteRequest => {
                let filed = steps::file_delete_request(c, backup).await?;
                self.mark_filed(&backup.metadata.uid, &filed);
                report.delete_request = Some(filed);
                return Ok(Some(Outcome::Waiting(POLL)));
            }
            Step::AwaitDeleteRequest(_) => return Ok(Some(Outcome::Waiting(POLL))),
            Step::ReportIdleRequest { name, since } => {
                return Err(Error::VeleroIdle {
                    namespace: ns.into(),
                    name: name.clone(),
                    since: match since.as_str() {
                        "" => "an unknown time".into(),
                        known => known.into(),
                    },
                })
            }
            Step::ReportDeleteRequestErrors { name, errors } => {
                self.mark_reported(name);
                return Err(Error::Velero {
                    name: name.clone(),
                    errors: errors.join("; "),
                });
            }
            Step::DeleteBackup => {
                steps::delete_backup(c, backup).await?;
            }
            Step::RemoveFinalizer => steps::remove_finalizer(c, backup).await?,
        }
        Ok(None)
    }

    /// Deletes the backup's files, or one of its restores' files, counting the keys that went.
    /// Listing can take minutes (location, credentials, page after page, with retries), so
    /// sanction is checked again between the listing and the first delete: `Some` when it no
    /// longer holds, and then nothing was deleted.
    async fn delete_files(
        &self,
        backup: &Object,
        restore: Option<&str>,
        location: &mut Option<Location>,
        report: &mut Report,
    ) -> Result<Option<Outcome>, Error> {
        let loc = self.location(backup, location).await?;
        report.provider = Some(loc.provider);
        let listed = match restore {
            None => storage::list_backup_files(loc, &backup.metadata.name).await,
            Some(r) => storage::list_restore_files(loc, r).await,
        };
        let result = match listed {
            Ok(listing) if listing.is_empty() => Ok(storage::Deleted::default()),
            Ok(listing) => match self.recheck(backup).await? {
                Ok(_) => storage::delete_keys(loc, listing).await,
                Err(outcome) => return Ok(Some(outcome)),
            },
            Err(e) => Err(e),
        };
        // A batch that failed part-way still deleted what it deleted: count it.
        let keys = match &result {
            Ok(deleted) => deleted.keys,
            Err(storage::CleanupError::Delete { deleted, .. }) => *deleted,
            Err(_) => 0,
        };
        self.metrics
            .cleanup_objects_deleted
            .with_label_values(&[&loc.provider.to_string()])
            .inc_by(keys as u64);
        match restore {
            None => report.backup_keys += keys,
            Some(_) => report.restore_keys += keys,
        }
        result?;
        Ok(None)
    }

    /// The backup's storage, resolved once per pass.
    async fn location<'a>(
        &self,
        backup: &Object,
        cache: &'a mut Option<Location>,
    ) -> Result<&'a Location, Error> {
        if let Some(loc) = cache {
            return Ok(loc);
        }
        let meta = &backup.metadata;
        let name = backup
            .spec
            .storage_location
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Error::NoStorageLocation(format!("{}/{}", meta.namespace, meta.name)))?;
        let velero_ns = self.policy().velero.namespace.clone();
        let loc = location::resolve(
            &self.client,
            &meta.namespace,
            name,
            &velero_ns,
            &self.settings,
        )
        .await?;
        Ok(cache.insert(loc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_add_up_and_the_last_request_named_wins() {
        let mut tally = Report::default();
        let first = Report {
            provider: Some(Provider::File),
            backup_keys: 7,
            ..Report::default()
        };
        let second = Report {
            backup_keys: 5,
            restores: 1,
            restore_keys: 4,
            delete_request: Some("daily-1-x".into()),
            ..Report::default()
        };
        tally.add(&first);
        tally.add(&second);
        assert_eq!(tally.provider, Some(Provider::File));
        assert_eq!(
            (tally.backup_keys, tally.restores, tally.restore_keys),
            (12, 1, 4)
        );
        assert_eq!(tally.delete_request.as_deref(), Some("daily-1-x"));
        tally.add(&Report::default());
        assert_eq!(tally.delete_request.as_deref(), Some("daily-1-x"));
    }
}
