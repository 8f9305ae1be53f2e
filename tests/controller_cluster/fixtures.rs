//! The scenario: a bucket with four backups' files, two restores and shared repositories; the
//! Backups (one sanctioned, one unrequested, one with forged stamps, one held), Restores, CSI
//! snapshots and PodVolumeBackups around them.

use backup_guard::controller::kinds::Kind;
use backup_guard::policy::stamps::HOLD;
use backup_guard::storage::{resolve, BslSpec, ClientSettings, Location};
use kube::Client;
use serde_json::json;
use tokio::sync::watch;

use crate::harness::*;
use crate::storage_scenario::*;

pub const KEY: &[u8] = b"controller-cluster-test-key-0001";
pub const BUCKET: &str = "velero";
pub const RESTORE_FINALIZER: &str = "restores.velero.io/external-resources-finalizer";

/// Names unique to one test (VolumeSnapshotContents are cluster-wide, found by backup name).
pub struct Names {
    pub ns: String,
    pub gone: String,
    pub kept: String,
    pub forged: String,
    pub held: String,
}

impl Names {
    pub fn new(ns: &str) -> Names {
        Names {
            ns: ns.into(),
            gone: format!("{ns}-daily-1"),
            kept: format!("{ns}-daily-10"),
            forged: format!("{ns}-weekly-1"),
            held: format!("{ns}-held-1"),
        }
    }

    pub fn restore(&self) -> String {
        format!("{}-r1", self.gone)
    }

    pub fn other_restore(&self) -> String {
        format!("{}-r1", self.kept)
    }
}

/// The bucket: every backup's dozen files, two restores, kopia and restic, all under PREFIX.
pub fn layout(n: &Names) -> Objects {
    let mut keys = vec![];
    for b in [&n.gone, &n.kept, &n.forged, &n.held] {
        keys.extend(backup_files(PREFIX, b));
    }
    keys.extend(restore_files(PREFIX, &n.restore()));
    keys.extend(restore_files(PREFIX, &n.other_restore()));
    for k in [
        "kopia/default/kopia.repository",
        "kopia/default/p0a1",
        "restic/default/config",
    ] {
        keys.push(format!("{PREFIX}/{k}"));
    }
    keys.push(format!("{PREFIX}/backups/{}x/velero-backup.json", n.gone));
    keys.into_iter()
        .enumerate()
        .map(|(i, k)| {
            let bytes = format!("{k}#{i}").repeat(1 + i % 5).into_bytes();
            (k, bytes)
        })
        .collect()
}

/// A `file` BackupStorageLocation over a temporary directory, seeded with `objects`.
pub async fn file_location(ns: &str, objects: &Objects) -> (tempfile::TempDir, Location) {
    let root = tempfile::tempdir().expect("tempdir");
    seed_dir(root.path(), BUCKET, objects);
    let spec = json!({"provider": "file", "objectStorage": {"bucket": BUCKET, "prefix": PREFIX},
        "config": {"root": root.path().to_str().expect("utf-8")}});
    let bsl = json!({"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
        "metadata": {"name": "default", "namespace": ns}, "spec": spec});
    let client = cluster().await;
    create(&client, Kind::BackupStorageLocation, bsl.clone()).await;
    let spec = BslSpec::from_object(&bsl).expect("spec");
    let loc = resolve(&spec, None, &ClientSettings::default())
        .await
        .expect("location");
    (root, loc)
}

/// A fresh namespace holding the whole scenario: the files in a `file` location, and the objects.
pub async fn scenario(c: &Client, prefix: &str) -> (Names, Objects, tempfile::TempDir, Location) {
    let n = Names::new(&namespace(c, prefix).await);
    let seeded = layout(&n);
    let (root, loc) = file_location(&n.ns, &seeded).await;
    objects(&n).await;
    (n, seeded, root, loc)
}

/// Waits until the sanctioned Backup is gone, then checks what went and what stayed.
pub async fn cleaned_up(n: &Names, loc: &Location, seeded: &Objects, what: &str) {
    eventually(60, what, || async {
        !exists(Kind::Backup, Some(&n.ns), &n.gone).await
    })
    .await;
    assert_cleaned(n, loc, seeded).await;
}

/// Backups, restores, snapshots and PodVolumeBackups of the scenario.
pub async fn objects(n: &Names) {
    let c = cluster().await;
    let ns = n.ns.as_str();
    for b in [&n.gone, &n.kept, &n.forged] {
        create(&c, Kind::Backup, backup(ns, b, "default")).await;
    }
    let mut held = backup(ns, &n.held, "default");
    held["metadata"]["labels"][HOLD] = json!("true");
    create(&c, Kind::Backup, held).await;
    for (r, b) in [(n.restore(), &n.gone), (n.other_restore(), &n.kept)] {
        create(
            &c,
            Kind::Restore,
            json!({"apiVersion": "velero.io/v1", "kind": "Restore",
            "metadata": {"name": r, "namespace": ns, "finalizers": [RESTORE_FINALIZER]},
            "spec": {"backupName": b}}),
        )
        .await;
    }
    for (b, policy) in [(&n.gone, "Retain"), (&n.kept, "Retain")] {
        create(
            &c,
            Kind::VolumeSnapshotContent,
            json!({"apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshotContent",
            "metadata": {"name": format!("{b}-vsc"), "labels": {"velero.io/backup-name": b}},
            "spec": {"deletionPolicy": policy, "driver": "hostpath.csi.k8s.io",
                "source": {"snapshotHandle": format!("snap-{b}")},
                "volumeSnapshotRef": {"name": format!("{b}-vs"), "namespace": ns}}}),
        )
        .await;
        create(&c, Kind::VolumeSnapshot, json!({"apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshot",
            "metadata": {"name": format!("{b}-vs"), "namespace": ns, "labels": {"velero.io/backup-name": b}},
            "spec": {"source": {"volumeSnapshotContentName": format!("{b}-vsc")}}})).await;
        create(&c, Kind::PodVolumeBackup, json!({"apiVersion": "velero.io/v1", "kind": "PodVolumeBackup",
            "metadata": {"name": format!("{b}-pvb"), "namespace": ns, "labels": {"velero.io/backup-name": b}},
            "spec": pvb_spec(ns)})).await;
    }
    request_delete(&c, KEY, ns, &n.gone, &[]).await;
    request_delete(&c, KEY, ns, &n.held, &[]).await;
    // Stamps signed with another key: what a user writing them by hand would produce.
    request_delete(&c, b"not-the-guard-key-at-all-000000", ns, &n.forged, &[]).await;
}

pub async fn exists(kind: Kind, ns: Option<&str>, name: &str) -> bool {
    get(&cluster().await, kind, ns, name).await.is_some()
}

/// What must be gone after the cleanup of `n.gone`, and what must not.
pub async fn assert_cleaned(n: &Names, loc: &Location, seeded: &Objects) {
    let ns = Some(n.ns.as_str());
    let mut gone = backup_files(PREFIX, &n.gone);
    gone.extend(restore_files(PREFIX, &n.restore()));
    assert_remaining(loc.store.as_ref(), seeded, &gone).await;
    assert!(!exists(Kind::Restore, ns, &n.restore()).await);
    assert!(
        !exists(
            Kind::VolumeSnapshotContent,
            None,
            &format!("{}-vsc", n.gone)
        )
        .await
    );
    assert!(!exists(Kind::VolumeSnapshot, ns, &format!("{}-vs", n.gone)).await);
    assert!(!exists(Kind::PodVolumeBackup, ns, &format!("{}-pvb", n.gone)).await);
    assert!(exists(Kind::Restore, ns, &n.other_restore()).await);
    assert!(
        exists(
            Kind::VolumeSnapshotContent,
            None,
            &format!("{}-vsc", n.kept)
        )
        .await
    );
    assert!(exists(Kind::VolumeSnapshot, ns, &format!("{}-vs", n.kept)).await);
    assert!(exists(Kind::PodVolumeBackup, ns, &format!("{}-pvb", n.kept)).await);
    let c = cluster().await;
    for b in [&n.kept, &n.forged, &n.held] {
        assert!(
            finalizers(&c, Kind::Backup, ns, b).await.is_empty(),
            "{b} must not be touched"
        );
    }
}

/// A leader that is always leading, for driving a `Cleaner` by hand.
pub fn leading() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(true);
    std::mem::forget(tx);
    rx
}

/// The fields Velero's PodVolumeBackup CRD requires.
pub fn pvb_spec(ns: &str) -> serde_json::Value {
    json!({"backupStorageLocation": "default", "node": "node-1",
        "pod": {"kind": "Pod", "name": "app-0", "namespace": ns},
        "repoIdentifier": "kopia:cluster-a", "volume": "data"})
}
