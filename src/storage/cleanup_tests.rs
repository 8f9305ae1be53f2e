use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};

use super::*;
use crate::storage::location::Provider;
use futures::TryStreamExt;

fn memory_location() -> Location {
    Location {
        store: Arc::new(InMemory::new()),
        bucket: "b".into(),
        prefix: "cluster-a".into(),
        provider: Provider::File,
        identity: None,
    }
}

async fn put(store: &dyn ObjectStore, key: &str) {
    store
        .put(&Path::from(key), key.as_bytes().to_vec().into())
        .await
        .unwrap();
}

async fn keys(store: &dyn ObjectStore) -> Vec<String> {
    let metas: Vec<_> = store.list(None).try_collect().await.unwrap();
    let mut keys: Vec<_> = metas.into_iter().map(|m| m.location.to_string()).collect();
    keys.sort();
    keys
}

#[test]
fn one_foreign_key_rejects_the_whole_listing() {
    let scope = Scope::backup("cluster-a", "daily-1").unwrap();
    let listed = vec![
        Path::from("cluster-a/backups/daily-1/velero-backup.json"),
        Path::from("cluster-a/backups/daily-10/velero-backup.json"),
    ];
    let err = plan_deletion(&scope, listed).unwrap_err();
    assert!(
        matches!(&err, CleanupError::OutsideScope { key, .. } if key.ends_with("daily-10/velero-backup.json")),
        "{err}"
    );
    assert!(err.to_string().contains("refusing to delete anything"));
}

#[test]
fn a_clean_listing_is_kept_whole() {
    let scope = Scope::restore("", "r-1").unwrap();
    let listed = vec![
        Path::from("restores/r-1/restore-r-1-logs.gz"),
        Path::from("restores/r-1/restore-r-1-results.gz"),
    ];
    assert_eq!(plan_deletion(&scope, listed.clone()).unwrap(), listed);
    assert!(plan_deletion(&scope, vec![]).unwrap().is_empty());
}

#[test]
fn a_folder_marker_is_skipped_not_refused() {
    let scope = Scope::backup("p", "b").unwrap();
    let listed = vec![Path::from("p/backups/b"), Path::from("p/backups/b/f")];
    assert_eq!(
        plan_deletion(&scope, listed).unwrap(),
        [Path::from("p/backups/b/f")]
    );
}

#[tokio::test]
async fn deletes_only_the_scope_and_is_idempotent() {
    let loc = memory_location();
    for k in [
        "cluster-a/backups/daily-1/velero-backup.json",
        "cluster-a/backups/daily-1/daily-1.tar.gz",
        "cluster-a/backups/daily-10/velero-backup.json",
        "cluster-a/restores/daily-1-x/restore-daily-1-x-logs.gz",
        "cluster-a/kopia/default/kopia.repository",
    ] {
        put(loc.store.as_ref(), k).await;
    }
    assert_eq!(delete_backup_files(&loc, "daily-1").await.unwrap().keys, 2);
    assert_eq!(delete_backup_files(&loc, "daily-1").await.unwrap().keys, 0);
    assert_eq!(
        delete_restore_files(&loc, "daily-1-x").await.unwrap().keys,
        1
    );
    assert_eq!(
        keys(loc.store.as_ref()).await,
        [
            "cluster-a/backups/daily-10/velero-backup.json",
            "cluster-a/kopia/default/kopia.repository"
        ]
    );
}

#[tokio::test]
async fn keys_in_sub_directories_of_the_backup_are_deleted_too() {
    let loc = memory_location();
    for k in [
        "cluster-a/backups/daily-1/velero-backup.json",
        "cluster-a/backups/daily-1/extra/a.json",
        "cluster-a/backups/daily-1/extra/deeper/b.json",
        "cluster-a/backups/daily-10/extra/c.json",
    ] {
        put(loc.store.as_ref(), k).await;
    }
    assert_eq!(delete_backup_files(&loc, "daily-1").await.unwrap().keys, 3);
    assert_eq!(
        keys(loc.store.as_ref()).await,
        ["cluster-a/backups/daily-10/extra/c.json"]
    );
}

#[tokio::test]
async fn invalid_names_touch_nothing() {
    let loc = memory_location();
    put(loc.store.as_ref(), "cluster-a/backups/x/f").await;
    for name in ["", "..", "x/..", "X"] {
        let err = delete_backup_files(&loc, name).await.unwrap_err();
        assert!(matches!(err, CleanupError::Layout(_)), "{name:?}: {err}");
    }
    assert_eq!(keys(loc.store.as_ref()).await, ["cluster-a/backups/x/f"]);
}
