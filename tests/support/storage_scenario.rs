//! A Velero bucket layout to seed, and checks that a cleanup removed exactly its own keys.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path as FsPath;

use futures::{stream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

/// Key -> content.
pub type Objects = BTreeMap<String, Vec<u8>>;

/// The location prefix every scenario uses.
pub const PREFIX: &str = "cluster-a";

/// The dozen files Velero writes per backup (VELERO.md).
pub fn backup_files(prefix: &str, name: &str) -> Vec<String> {
    let mut files = vec![
        "velero-backup.json".to_string(),
        format!("{name}.tar.gz"),
        format!("{name}-logs.gz"),
        format!("{name}-results.gz"),
    ];
    for kind in [
        "podvolumebackups",
        "volumesnapshots",
        "itemoperations",
        "resource-list",
        "volumeinfo",
        "csi-volumesnapshots",
        "csi-volumesnapshotcontents",
        "csi-volumesnapshotclasses",
    ] {
        files.push(format!("{name}-{kind}.json.gz"));
    }
    files
        .into_iter()
        .map(|f| format!("{prefix}/backups/{name}/{f}"))
        .collect()
}

/// The four files Velero writes per restore.
pub fn restore_files(prefix: &str, name: &str) -> Vec<String> {
    [
        "logs.gz",
        "results.gz",
        "resource-list.json.gz",
        "itemoperations.json.gz",
    ]
    .iter()
    .map(|f| format!("{prefix}/restores/{name}/restore-{name}-{f}"))
    .collect()
}

fn content(key: &str, i: usize) -> Vec<u8> {
    // Distinct bytes per key, including non-UTF-8 ones, sized differently.
    let mut bytes = format!("{key}#{i}\n").repeat(1 + i % 7).into_bytes();
    bytes.extend((0..(i % 13) as u8).map(|b| b.wrapping_mul(37).wrapping_add(200)));
    bytes
}

/// daily-1 (the target), its look-alike daily-10, weekly-1, two restores, kopia, restic, metadata,
/// plus copies outside the prefix.
pub fn velero_layout() -> Objects {
    let mut keys = Vec::new();
    for b in ["daily-1", "daily-10", "weekly-1"] {
        keys.extend(backup_files(PREFIX, b));
    }
    keys.extend(restore_files(PREFIX, "daily-1-20261101"));
    keys.extend(restore_files(PREFIX, "weekly-1-x"));
    for k in [
        "kopia/default/kopia.repository",
        "kopia/default/p0a1b2c3d4",
        "kopia/backups/daily-1/velero-backup.json",
        "restic/default/config",
        "restic/default/data/ab/abcdef01",
        "metadata/revision",
        "plugins/x/state",
        "backups/daily-1-x/velero-backup.json",
        "restores/daily-1-20261101x/restore-log",
    ] {
        keys.push(format!("{PREFIX}/{k}"));
    }
    keys.push("cluster-b/backups/daily-1/velero-backup.json".into());
    keys.push("backups/daily-1/velero-backup.json".into());
    keys.into_iter()
        .enumerate()
        .map(|(i, k)| {
            let c = content(&k, i);
            (k, c)
        })
        .collect()
}

/// `n` small files in backup `name` plus the standard layout around it.
pub fn many_files(name: &str, n: usize) -> Objects {
    let mut objects = velero_layout();
    for i in 0..n {
        let key = format!("{PREFIX}/backups/{name}/part-{i:05}.bin");
        let c = content(&key, i);
        objects.insert(key, c);
    }
    objects
}

/// The keys of `objects` inside `dir` (a directory with trailing `/`).
pub fn keys_under(objects: &Objects, dir: &str) -> Vec<String> {
    objects
        .keys()
        .filter(|k| k.starts_with(dir))
        .cloned()
        .collect()
}

/// Upload `objects` through object_store.
pub async fn seed(store: &dyn ObjectStore, objects: &Objects) {
    stream::iter(objects)
        .map(|(k, v)| async move {
            store
                .put(&Path::from(k.as_str()), v.clone().into())
                .await
                .unwrap_or_else(|e| panic!("seeding {k}: {e}"));
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

/// Write `objects` as files under `root/bucket/` (fake-gcs `-data` and the file provider read them).
pub fn seed_dir(root: &FsPath, bucket: &str, objects: &Objects) {
    for (k, v) in objects {
        let path = root.join(bucket).join(k);
        std::fs::create_dir_all(path.parent().expect("key has a parent")).expect("mkdir");
        std::fs::write(&path, v).expect("write seed file");
    }
}

/// Every key in the bucket with its content.
pub async fn snapshot(store: &dyn ObjectStore) -> Objects {
    let metas: Vec<_> = store.list(None).try_collect().await.expect("list bucket");
    stream::iter(metas)
        .map(|m| async move {
            let got = store.get(&m.location).await;
            let bytes = match got {
                Ok(r) => r.bytes().await,
                Err(e) => Err(e),
            }
            .unwrap_or_else(|e| panic!("get {}: {e}", m.location));
            (m.location.to_string(), bytes.to_vec())
        })
        .buffer_unordered(16)
        .collect()
        .await
}

/// Assert the bucket holds exactly `seeded` minus `gone`, byte for byte.
pub async fn assert_remaining(store: &dyn ObjectStore, seeded: &Objects, gone: &[String]) {
    let mut expected = seeded.clone();
    for k in gone {
        assert!(expected.remove(k).is_some(), "{k} was never seeded");
    }
    let actual = snapshot(store).await;
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !actual.contains_key(*k))
        .collect();
    let extra: Vec<_> = actual
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "keys that must survive are gone: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "keys that must be gone survive: {extra:?}"
    );
    for (k, v) in &expected {
        assert!(actual[k] == *v, "content of {k} changed");
    }
}
