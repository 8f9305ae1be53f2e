//! Cleanup against real storage servers: s3s-fs, moto, Azurite, fake-gcs-server and a local directory.
//!
//! Servers come from `hack/storage/install.sh`; a missing one fails the test (never a silent skip).
//! Run: `cargo test --test storage_backends -- --nocapture` (prints the request counts).
//! The controller's own identity (`--ambient-credentials`): tests/storage_identity.rs.

#[path = "support/storage_backend.rs"]
mod storage_backend;
#[path = "support/storage_http.rs"]
mod storage_http;
#[path = "support/storage_scenario.rs"]
mod storage_scenario;
#[path = "support/storage_servers.rs"]
mod storage_servers;

use std::time::{Duration, Instant};

use backup_guard::storage::{
    delete_backup_files, delete_keys, delete_restore_files, list_backup_files, resolve, BslSpec,
    CleanupError,
};
use object_store::ObjectStoreExt;
use storage_backend::*;
use storage_http::{raw_request, Seen};
use storage_scenario::*;
use storage_servers::*;

/// What each cleanup step sent.
struct Requests {
    backup: Vec<Seen>,
    restore: Vec<Seen>,
    again: Vec<Seen>,
}

/// Delete daily-1 and its restore, check the bucket, repeat to prove idempotence.
async fn cleanup_daily_1(b: &Backend, objects: &Objects) -> Requests {
    b.counter.take();
    let started = Instant::now();
    let deleted = delete_backup_files(&b.loc, "daily-1")
        .await
        .expect("delete backup files");
    assert_eq!(deleted.keys, 12, "[{}] backup keys", b.name);
    let backup = b.counter.take();
    let deleted = delete_restore_files(&b.loc, "daily-1-20261101")
        .await
        .expect("delete restore files");
    assert_eq!(deleted.keys, 4, "[{}] restore keys", b.name);
    let restore = b.counter.take();
    let elapsed = started.elapsed();

    let mut gone = backup_files(PREFIX, "daily-1");
    gone.extend(restore_files(PREFIX, "daily-1-20261101"));
    assert_remaining(b.plain.store.as_ref(), objects, &gone).await;

    let again_backup = delete_backup_files(&b.loc, "daily-1")
        .await
        .expect("repeat backup cleanup");
    let again_restore = delete_restore_files(&b.loc, "daily-1-20261101")
        .await
        .expect("repeat restore cleanup");
    assert_eq!(
        (again_backup.keys, again_restore.keys),
        (0, 0),
        "[{}] idempotent",
        b.name
    );
    let again = b.counter.take();
    eprintln!(
        "[{}] backup: {} requests {:?}; restore: {} requests; repeat: {} requests; cleanup took {:?}",
        b.name,
        backup.len(),
        backup,
        restore.len(),
        again.len(),
        elapsed
    );
    Requests {
        backup,
        restore,
        again,
    }
}

fn count(reqs: &[Seen], method: &str, needle: &str) -> usize {
    reqs.iter().filter(|r| r.is(method, needle)).count()
}

/// S3: one ListObjectsV2 and one DeleteObjects per ≤ 1000 keys, nothing else.
fn assert_s3_requests(r: &Requests) {
    for (reqs, what) in [(&r.backup, "backup"), (&r.restore, "restore")] {
        assert_eq!(
            reqs.len(),
            2,
            "{what}: 1 list + 1 bulk delete, got {reqs:?}"
        );
        assert_eq!(count(reqs, "GET", "list-type=2"), 1, "{what}: {reqs:?}");
        assert_eq!(count(reqs, "POST", "delete"), 1, "{what}: {reqs:?}");
    }
    assert_eq!(
        r.again.len(),
        2,
        "repeat: one list each, no delete: {:?}",
        r.again
    );
    assert_eq!(count(&r.again, "GET", "list-type=2"), 2);
}

#[tokio::test]
async fn s3s_fs_cleanup_removes_only_the_backup_and_its_restore() {
    let objects = velero_layout();
    let b = s3s_fs_backend(&objects).await;
    assert_s3_requests(&cleanup_daily_1(&b, &objects).await);
}

#[tokio::test]
async fn moto_cleanup_removes_only_the_backup_and_its_restore() {
    let objects = velero_layout();
    let b = moto_backend(&objects).await;
    assert_s3_requests(&cleanup_daily_1(&b, &objects).await);
}

#[tokio::test]
async fn azurite_cleanup_uses_one_blob_batch() {
    let objects = velero_layout();
    let b = azurite_backend(&objects).await;
    let r = cleanup_daily_1(&b, &objects).await;
    for (reqs, what) in [(&r.backup, "backup"), (&r.restore, "restore")] {
        assert_eq!(reqs.len(), 2, "{what}: 1 list + 1 batch, got {reqs:?}");
        assert_eq!(count(reqs, "GET", "comp=list"), 1, "{what}: {reqs:?}");
        assert_eq!(count(reqs, "POST", "comp=batch"), 1, "{what}: {reqs:?}");
    }
    assert_eq!(r.again.len(), 2, "repeat: {:?}", r.again);
}

#[tokio::test]
async fn fake_gcs_cleanup_deletes_one_key_per_request() {
    let objects = velero_layout();
    let b = fake_gcs_backend(&objects).await;
    let r = cleanup_daily_1(&b, &objects).await;
    // object_store has no GCS batch delete: one DELETE per key after one list.
    let deletes = |reqs: &[Seen]| reqs.iter().filter(|s| s.method == "DELETE").count();
    assert_eq!(
        (r.backup.len(), deletes(&r.backup)),
        (13, 12),
        "{:?}",
        r.backup
    );
    assert_eq!(
        (r.restore.len(), deletes(&r.restore)),
        (5, 4),
        "{:?}",
        r.restore
    );
    assert_eq!(r.again.len(), 2, "repeat: {:?}", r.again);
}

#[tokio::test]
async fn local_directory_cleanup_removes_only_the_backup_and_its_restore() {
    let objects = velero_layout();
    let b = local_backend(&objects).await;
    let r = cleanup_daily_1(&b, &objects).await;
    assert!(
        r.backup.is_empty() && r.restore.is_empty(),
        "no HTTP for the file provider"
    );
    let root = b.dir.as_ref().expect("local root").path().join(BUCKET);
    assert!(
        !root.join(PREFIX).join("backups/daily-1").exists(),
        "empty directory left behind"
    );
    assert!(root.join(PREFIX).join("backups/daily-10").is_dir());
}

/// The controller lists, looks at the backup again, and only then deletes: the listing deletes
/// nothing (a caller that stops there leaves the bucket whole), and the delete removes exactly
/// the keys listed, not a file that arrived under the directory in between.
#[tokio::test]
async fn s3s_fs_listing_deletes_nothing_and_the_delete_removes_only_what_was_listed() {
    let objects = velero_layout();
    let b = s3s_fs_backend(&objects).await;
    b.counter.take();
    let listing = list_backup_files(&b.loc, "daily-1")
        .await
        .expect("list backup files");
    let mut listed: Vec<String> = listing.keys().iter().map(|k| k.to_string()).collect();
    listed.sort();
    let mut expected = backup_files(PREFIX, "daily-1");
    expected.sort();
    assert_eq!(listed, expected);
    let listing_requests = b.counter.take();
    assert_eq!(
        count(&listing_requests, "POST", "delete"),
        0,
        "a listing deletes nothing: {listing_requests:?}"
    );
    // A caller that stops here (a hold placed meanwhile) has deleted nothing.
    assert_remaining(b.plain.store.as_ref(), &objects, &[]).await;

    let late = format!("{PREFIX}/backups/daily-1/written-after-the-listing.json");
    let mut with_late = objects.clone();
    with_late.insert(late.clone(), b"late".to_vec());
    seed(b.plain.store.as_ref(), &with_late).await;
    let deleted = delete_keys(&b.loc, listing).await.expect("delete keys");
    assert_eq!(deleted.keys, 12);
    let delete_requests = b.counter.take();
    assert_eq!(
        (
            delete_requests.len(),
            count(&delete_requests, "POST", "delete")
        ),
        (1, 1),
        "one bulk delete and no listing: {delete_requests:?}"
    );
    assert_remaining(b.plain.store.as_ref(), &with_late, &expected).await;
}

async fn assert_1500_keys_take_two_bulk_deletes(b: &Backend, objects: &Objects) {
    b.counter.take();
    let started = Instant::now();
    let deleted = delete_backup_files(&b.loc, "big")
        .await
        .expect("delete 1500 keys");
    let took = started.elapsed();
    assert_eq!(deleted.keys, 1500);
    let reqs = b.counter.take();
    eprintln!(
        "[{}] 1500 keys: {} requests in {took:?}: {reqs:?}",
        b.name,
        reqs.len()
    );
    assert_eq!(count(&reqs, "POST", "delete"), 2, "{reqs:?}");
    assert_eq!(
        count(&reqs, "GET", "list-type=2"),
        2,
        "two list pages of ≤ 1000: {reqs:?}"
    );
    assert_eq!(reqs.len(), 4, "{reqs:?}");
    let gone = keys_under(objects, &format!("{PREFIX}/backups/big/"));
    assert_remaining(b.plain.store.as_ref(), objects, &gone).await;
}

#[tokio::test]
async fn s3s_fs_deletes_1500_keys_in_two_bulk_requests() {
    let objects = many_files("big", 1500);
    let b = s3s_fs_backend(&objects).await;
    assert_1500_keys_take_two_bulk_deletes(&b, &objects).await;
}

#[tokio::test]
async fn moto_deletes_1500_keys_in_two_bulk_requests() {
    let objects = many_files("big", 1500);
    let b = moto_backend(&objects).await;
    assert_1500_keys_take_two_bulk_deletes(&b, &objects).await;
}

/// Cleanup with `creds` must fail at the listing, quickly, and leave every key in place.
async fn assert_rejected_credentials(b: &Backend, creds: &[u8], objects: &Objects) {
    let wrong = resolve(&b.spec, Some(creds), &settings(None))
        .await
        .expect("resolve");
    let started = Instant::now();
    let err = delete_backup_files(&wrong, "daily-1")
        .await
        .expect_err("wrong credentials must fail");
    let msg = err.to_string();
    eprintln!(
        "[{}] wrong credentials after {:?}: {msg}",
        b.name,
        started.elapsed()
    );
    assert!(matches!(err, CleanupError::List { .. }), "{msg}");
    assert!(
        msg.contains("nothing was deleted") && msg.contains("rejected the credentials"),
        "{msg}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert_remaining(b.plain.store.as_ref(), objects, &[]).await;
}

#[tokio::test]
async fn s3s_fs_wrong_credentials_fail_clearly_and_delete_nothing() {
    let objects = velero_layout();
    let b = s3s_fs_backend(&objects).await;
    assert_rejected_credentials(&b, &aws_creds(S3_KEY, "wrong-secret"), &objects).await;
}

#[tokio::test]
async fn azurite_wrong_key_fails_clearly_and_deletes_nothing() {
    let objects = velero_layout();
    let b = azurite_backend(&objects).await;
    let wrong = azure_creds("d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmc=");
    assert_rejected_credentials(&b, &wrong, &objects).await;
}

#[tokio::test]
async fn unreachable_endpoints_fail_fast_with_a_clear_error() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let quick = give_up_quickly(settings(None));
    let cases = [
        ("aws", aws_spec(&url), aws_creds("k", "s")),
        ("azure", azure_spec(&url), azure_creds(AZURITE_KEY)),
        ("gcp", gcs_spec(), gcs_creds(&url)),
    ];
    for (name, spec, creds) in cases {
        let loc = resolve(&spec, Some(&creds), &quick).await.expect("resolve");
        let started = Instant::now();
        let err = delete_backup_files(&loc, "daily-1")
            .await
            .expect_err("unreachable must fail");
        let took = started.elapsed();
        let msg = err.to_string();
        eprintln!("[{name}] unreachable after {took:?}: {msg}");
        assert!(matches!(err, CleanupError::List { .. }), "{name}: {msg}");
        assert!(msg.contains("cannot be reached"), "{name}: {msg}");
        assert!(took < Duration::from_secs(10), "{name} took {took:?}");
    }
}

/// Another tool wrote a key under the backup's directory that object_store cannot parse: the
/// listing fails naming that key and saying to remove it by hand, and nothing is deleted.
#[tokio::test]
async fn moto_a_key_object_store_cannot_address_is_named_and_nothing_is_deleted() {
    let objects = velero_layout();
    let b = moto_backend(&objects).await;
    let port = b.server.as_ref().expect("moto runs").port;
    // (backup, the key written there percent-encoded for the request line, what the listing
    // stumbles on: a "directory" prefix, or the key itself)
    let cases = [
        ("daily-1", "logs//x.gz", "logs//"),
        ("daily-10", "./x", "./"),
        ("weekly-1", "bad%01name", "bad\u{1}name"),
    ];
    for (backup, encoded, named) in cases {
        let dir = format!("{PREFIX}/backups/{backup}");
        let target = format!("/{BUCKET}/{dir}/{encoded}");
        let (status, text) = raw_request(port, "PUT", &target, &[], b"x").await;
        assert_eq!(status, 200, "moto put {target}: {text}");
        let err = delete_backup_files(&b.loc, backup)
            .await
            .expect_err("an unparsable key fails the listing");
        let msg = err.to_string();
        eprintln!("[{target}] {msg}");
        assert!(matches!(err, CleanupError::List { .. }), "{msg}");
        let named = format!("{:?}", format!("{dir}/{named}"));
        assert!(msg.contains(&named), "{named} in {msg}");
        assert!(msg.contains("not a key object_store can address"), "{msg}");
        assert!(msg.contains("remove it by hand"), "{msg}");
    }
    for key in objects.keys() {
        let path = object_store::path::Path::from(key.as_str());
        let kept = b.plain.store.head(&path).await;
        assert!(kept.is_ok(), "{key} was deleted: {kept:?}");
    }
}

/// The same BSL pointing at another bucket.
fn with_bucket(spec: &BslSpec, bucket: &str) -> BslSpec {
    let mut spec = spec.clone();
    spec.object_storage.bucket = bucket.into();
    spec
}

#[tokio::test]
async fn a_missing_bucket_is_an_error_not_an_empty_success() {
    let none = Objects::new();
    let backends = [
        s3s_fs_backend(&none).await,
        moto_backend(&none).await,
        azurite_backend(&none).await,
        fake_gcs_backend(&none).await,
    ];
    for b in &backends {
        let loc = resolve(
            &with_bucket(&b.spec, "absent"),
            b.creds.as_deref(),
            &settings(None),
        )
        .await
        .expect("resolve");
        let err = delete_backup_files(&loc, "daily-1")
            .await
            .expect_err("missing bucket must fail");
        let msg = err.to_string();
        eprintln!("[{}] missing bucket: {msg}", b.name);
        assert!(
            matches!(err, CleanupError::List { .. }),
            "[{}] {msg}",
            b.name
        );
        // fake-gcs-server answers 500 "no bucket named" where GCS answers 404, so no bucket hint there.
        let expected = if b.name == "fake-gcs-server" {
            "no bucket named absent"
        } else {
            "does not exist"
        };
        assert!(msg.contains(expected), "[{}] {msg}", b.name);
    }
}

#[test]
#[should_panic(expected = "hack/storage/install.sh")]
fn a_missing_server_binary_fails_naming_the_installer() {
    let _ = storage_servers::find_binary("no-such-storage-server-binary", &[]);
}
